"""How a posed skeleton looks: clothing/skin/hair styles and the primitives of one figure.

Left and right are never colour-coded. What tells them apart is what tells them apart on real
people: the face (eyes, nose, mouth) is on the front of the head and hair covers the back, the
shirt has a collar (and often a print or buttons) on its front only, and the feet point forward.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from src.synthetic.figure import (
    EAR_RADIUS,
    EYE_DIRECTION,
    JOINT_INDEX,
    NOSE_RADIUS,
    Skeleton,
)
from src.synthetic.render import Material, Primitive

SKIN_TONES = np.array(
    [
        [247, 214, 190],
        [234, 192, 160],
        [222, 172, 132],
        [198, 144, 104],
        [170, 116, 80],
        [134, 88, 58],
        [100, 66, 44],
        [72, 48, 34],
    ],
    dtype=np.float64,
)
HAIR_COLOURS = np.array(
    [
        [28, 24, 22],
        [52, 36, 26],
        [86, 58, 36],
        [130, 92, 56],
        [196, 164, 108],
        [150, 150, 148],
        [140, 66, 34],
    ],
    dtype=np.float64,
)

# Joint -> the figure parts that form the joint itself. A joint whose pixel shows one of these
# parts of the same person is unoccluded; any other part there must lie no nearer than the
# joint's own surface (see figure.joint_surface_radius) for it to count as unoccluded.
JOINT_PARTS: dict[str, tuple[str, ...]] = {
    "pelvis": ("spine_lower", "hip_left", "hip_right"),
    "spine": ("spine_lower", "spine_upper"),
    "thorax": ("spine_upper", "shoulder_left", "shoulder_right", "neck"),
    "upper_neck": ("neck",),
    "head_center": ("head",),
    "head_top": ("head",),
    "nose": ("nose",),
    "left_eye": (),
    "right_eye": (),
    "left_ear": ("ear_left",),
    "right_ear": ("ear_right",),
}
for _side in ("left", "right"):
    JOINT_PARTS.update(
        {
            f"{_side}_shoulder": (f"shoulder_{_side}", f"upper_arm_{_side}", f"torso_{_side}"),
            f"{_side}_elbow": (f"upper_arm_{_side}", f"forearm_{_side}"),
            f"{_side}_wrist": (f"forearm_{_side}", f"hand_{_side}"),
            f"{_side}_hand": (f"hand_{_side}",),
            f"{_side}_hip": (f"hip_{_side}", f"thigh_{_side}", f"torso_{_side}"),
            f"{_side}_knee": (f"thigh_{_side}", f"shin_{_side}"),
            f"{_side}_ankle": (f"shin_{_side}", f"foot_{_side}"),
            f"{_side}_heel": (f"foot_{_side}",),
            f"{_side}_toe": (f"foot_{_side}",),
        }
    )


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


@dataclass(frozen=True)
class Style:
    """Colours (RGB 0-255, (3,)) and garment choices of one person."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    trousers: np.ndarray
    shoes: np.ndarray
    mark: np.ndarray  # colour of the chest print / buttons
    long_sleeves: bool
    shorts: bool
    hair_style: str  # "short" | "long" | "bald" | "cap"
    collar: str  # "v" | "round"
    chest_mark: str  # "none" | "print" | "buttons" | "band"


def sample_style(rng: np.random.Generator) -> Style:
    i = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(np.floor(i))
    skin = SKIN_TONES[lo] + (i - lo) * (SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[lo])
    skin = np.clip(skin * rng.uniform(0.94, 1.06), 0, 255)
    hair = np.clip(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15), 0, 255)
    shirt_h = rng.random()
    shirt = _hsv(shirt_h, rng.uniform(0.0, 0.9), rng.uniform(0.25, 0.95))
    trousers = _hsv(shirt_h + rng.uniform(0.2, 0.8), rng.uniform(0.0, 0.7), rng.uniform(0.15, 0.7))
    shoes = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.08, 0.9))
    mark = _hsv(shirt_h + rng.uniform(0.3, 0.7), rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0))
    if np.abs(mark - shirt).sum() < 120:
        mark = 255.0 - shirt
    hair_style = ("short", "long", "bald", "cap")[int(rng.choice(4, p=[0.55, 0.3, 0.05, 0.1]))]
    if hair_style == "cap":
        hair = _hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.9))
    return Style(
        skin=skin,
        hair=hair,
        shirt=shirt,
        trousers=trousers,
        shoes=shoes,
        mark=mark,
        long_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.25),
        hair_style=hair_style,
        collar="v" if rng.random() < 0.5 else "round",
        chest_mark=("none", "print", "buttons", "band")[int(rng.choice(4, p=[0.25, 0.35, 0.2, 0.2]))],
    )


class HeadMaterial:
    """Face (eyes, mouth) on the front of the head sphere, hair on top and back."""

    def __init__(self, *, frame: np.ndarray, style: Style) -> None:
        self.frame = frame  # (3, 3) head axes in camera coordinates
        self.style = style
        mirror = np.array([-1.0, 1.0, 1.0])
        self.eyes = np.stack([EYE_DIRECTION, EYE_DIRECTION * mirror])
        self.skin = style.skin
        self.lips = style.skin * 0.6 + np.array([70.0, 10.0, 10.0])
        self.eye_colour = np.array([25.0, 20.0, 20.0])
        self.sclera = np.array([235.0, 235.0, 230.0])
        back = {"short": -0.35, "long": -0.8, "bald": 2.0, "cap": 0.25}[style.hair_style]
        front = {"short": 0.45, "long": 0.42, "bald": 2.0, "cap": 0.5}[style.hair_style]
        self.hair_levels = (back, front)

    def __call__(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        n = normals @ self.frame  # head-local normals (P, 3): x left, y up, z face
        out = np.tile(self.skin, (len(n), 1))
        back, front = self.hair_levels
        level = np.interp(n[:, 2], [-1.0, -0.15, 0.3, 1.0], [back, back, front, front])
        out[n[:, 1] > level] = self.style.hair
        mouth = (n[:, 2] > 0.55) & (np.abs(n[:, 0]) < 0.2) & (n[:, 1] > -0.6) & (n[:, 1] < -0.48)
        out[mouth] = self.lips
        # a light eye with a dark pupil at the keypoint: large enough to be seen on small people
        closeness = (n @ self.eyes.T).max(axis=1)
        out[closeness > np.cos(0.27)] = self.sclera
        out[closeness > np.cos(0.14)] = self.eye_colour
        return out


class TorsoMaterial:
    """Shirt with a front-only collar opening and chest mark, trousers below the waist."""

    def __init__(self, *, skeleton: Skeleton, style: Style) -> None:
        self.thorax = skeleton.joint("thorax")
        self.pelvis = skeleton.joint("pelvis")
        self.chest = skeleton.frames["chest"]
        self.hips = skeleton.frames["pelvis"]
        self.h = skeleton.shape.height
        self.depth = skeleton.shape.r_chest
        self.style = style

    def __call__(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        st, h = self.style, self.h
        q = (points - self.thorax) @ self.chest  # chest-local (P, 3)
        w = (points - self.pelvis) @ self.hips  # pelvis-local
        out = np.tile(st.shirt, (len(q), 1))
        front = q[:, 2] > 0.35 * self.depth
        ax = np.abs(q[:, 0])
        if st.chest_mark == "print":
            out[front & (np.hypot(q[:, 0], q[:, 1] + 0.11 * h) < 0.042 * h)] = st.mark
        elif st.chest_mark == "buttons":
            yy = (q[:, 1] + 0.07 * h) / (0.045 * h)
            dots = (ax < 0.009 * h) & (np.abs(yy - np.round(yy)) < 0.2) & (q[:, 1] < -0.05 * h) & (q[:, 1] > -0.25 * h)
            out[front & ((ax < 0.004 * h) | dots)] = st.mark
        elif st.chest_mark == "band":
            out[front & (q[:, 1] < -0.08 * h) & (q[:, 1] > -0.13 * h)] = st.mark
        if st.collar == "v":
            collar = front & (q[:, 1] > -0.075 * h + 1.6 * ax)
        else:
            collar = front & (q[:, 1] > -0.035 * h + 0.25 * ax) & (ax < 0.06 * h)
        out[collar] = st.skin
        out[w[:, 1] < 0.05 * h] = st.trousers
        out[(w[:, 1] >= 0.05 * h) & (w[:, 1] < 0.062 * h)] = st.trousers * 0.45
        return out


def figure_primitives(skeleton: Skeleton, style: Style, owner: int, *, near: float = 50.0) -> list[Primitive]:
    """All primitives of one person; skeleton in camera coordinates (mm). Parts behind ``near`` are dropped."""
    s, j, fr = skeleton.shape, skeleton.joints, skeleton.frames
    J = JOINT_INDEX
    chest = fr["chest"]
    torso = TorsoMaterial(skeleton=skeleton, style=style)
    sleeve = style.shirt
    forearm = style.shirt if style.long_sleeves else style.skin
    shin = style.skin if style.shorts else style.trousers
    thorax = j[J["thorax"]]
    prims: list[Primitive] = []

    def capsule(part: str, a: np.ndarray, b: np.ndarray, ra: float, rb: float, material: Material) -> None:
        if min(a[2] - ra, b[2] - rb) > near:
            prims.append(
                Primitive(
                    kind="capsule",
                    part=part,
                    owner=owner,
                    depth=float(a[2] + b[2]) / 2,
                    material=material,
                    a=a,
                    b=b,
                    ra=ra,
                    rb=rb,
                )
            )

    def sphere(part: str, c: np.ndarray, r: float, material: Material) -> None:
        if c[2] - r > near:
            prims.append(
                Primitive(
                    kind="sphere", part=part, owner=owner, depth=float(c[2]), material=material, center=c, radius=r
                )
            )

    chest_top = thorax + chest @ np.array([0.0, -0.72 * s.r_chest, -0.1 * s.r_chest])
    capsule("spine_lower", j[J["pelvis"]], j[J["spine"]], s.r_waist, 0.5 * (s.r_waist + s.r_chest), torso)
    capsule("spine_upper", j[J["spine"]], chest_top, 0.5 * (s.r_waist + s.r_chest), s.r_chest, torso)
    capsule("neck", thorax, j[J["upper_neck"]], s.r_neck * 1.1, s.r_neck, style.skin)
    sphere("head", j[J["head_center"]], s.head_radius, HeadMaterial(frame=fr["head"], style=style))
    nose_colour = np.clip(style.skin * 0.7 + np.array([60.0, 0.0, 0.0]), 0, 255)  # reddish, darker than the face
    sphere("nose", j[J["nose"]], NOSE_RADIUS * s.head_radius, nose_colour)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sh, hip = j[J[f"{side}_shoulder"]], j[J[f"{side}_hip"]]
        side_top = sh + chest @ np.array([-sign * 0.6 * s.r_side, -0.9 * s.r_side, 0.0])
        capsule(f"torso_{side}", hip, side_top, s.r_side, s.r_side, torso)
        capsule(f"shoulder_{side}", thorax, sh, 1.25 * s.r_neck, s.r_upper_arm, torso)
        capsule(f"hip_{side}", j[J["pelvis"]], hip, 0.8 * s.r_waist, s.r_thigh, torso)
        capsule(f"upper_arm_{side}", sh, j[J[f"{side}_elbow"]], s.r_upper_arm, 0.85 * s.r_upper_arm, sleeve)
        capsule(f"forearm_{side}", j[J[f"{side}_elbow"]], j[J[f"{side}_wrist"]], s.r_forearm, s.r_wrist, forearm)
        capsule(f"hand_{side}", j[J[f"{side}_wrist"]], j[J[f"{side}_hand"]], s.r_hand * 0.9, s.r_hand, style.skin)
        capsule(f"thigh_{side}", hip, j[J[f"{side}_knee"]], s.r_thigh, s.r_knee * 1.05, style.trousers)
        capsule(f"shin_{side}", j[J[f"{side}_knee"]], j[J[f"{side}_ankle"]], s.r_knee, s.r_ankle, shin)
        capsule(f"foot_{side}", j[J[f"{side}_heel"]], j[J[f"{side}_toe"]], s.r_foot * 1.1, s.r_foot * 0.85, style.shoes)
        sphere(f"ear_{side}", j[J[f"{side}_ear"]], EAR_RADIUS * s.head_radius, style.skin * 0.78)
    return prims
