"""Articulated 3D human skeleton: joint superset, body proportions, joint limits, pose sampling.

Body frame (millimetres): x points to the person's left, y up, z the way the person faces; the
pelvis is the origin. J is the number of joints in the superset ``JOINT_NAMES``; every layout
(COCO-17, MPII-16, H36M-17) is a selection from it, declared once in ``LAYOUT_JOINTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from src.layouts import COCO17, H36M17, MPII16, MUCO21, MUPOTS17

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "spine",
    "thorax",
    "upper_neck",
    "head_center",
    "head_top",
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_toe",
    "right_toe",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Layout name -> {layout keypoint name: superset joint index}, in the layout's channel order.
# MPII-16 names coincide with superset names; H36M-17's "torso", "neck" and "head" are the
# superset's mid-spine, upper_neck (base of the skull) and head_top (the rest keep their names).
H36M17_SOURCES: dict[str, str] = {"torso": "spine", "neck": "upper_neck", "head": "head_top"}
LAYOUT_JOINTS: dict[str, dict[str, int]] = {
    "coco17": {name: JOINT_INDEX[name] for name in COCO17.keypoint_names},
    "mpii16": {name: JOINT_INDEX[name] for name in MPII16.keypoint_names},
    "h36m17": {name: JOINT_INDEX[H36M17_SOURCES.get(name, name)] for name in H36M17.keypoint_names},
    # MuCo-3DHP / MuPoTS-3D names coincide with superset names: "thorax" is the base of the neck,
    # "spine" the mid-spine, "head_center" the centre of the skull sphere (3DHP's "head", between
    # the neck and the top of the head), "pelvis" the root between the hips, "*_hand" the end of
    # the hand and "*_toe" the tip of the shoe.
    "muco21": {name: JOINT_INDEX[name] for name in MUCO21.keypoint_names},
    "mupots17": {name: JOINT_INDEX[name] for name in MUPOTS17.keypoint_names},
}


def layout_indices(layout: str) -> np.ndarray:
    """Superset joint indices (K,) of a layout, in the layout's channel order."""
    try:
        return np.array(list(LAYOUT_JOINTS[layout].values()), dtype=np.int64)
    except KeyError:
        raise KeyError(f"no superset mapping for layout {layout!r}; known: {sorted(LAYOUT_JOINTS)}") from None


# Joint limits in degrees. Signs: *_flex > 0 moves the distal segment forward (knee > 0 bends
# backwards, the only way knees bend; elbow > 0 bends forwards); *_abd > 0 moves the limb away
# from the body's midline; shoulder_twist > 0 is internal rotation, hip_twist > 0 turns the toes
# outwards; ankle > 0 points the toes down; neck_flex > 0 looks down.
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "spine_flex": (-20.0, 60.0),
    "spine_side": (-25.0, 25.0),
    "spine_twist": (-40.0, 40.0),
    "neck_flex": (-40.0, 50.0),
    "neck_side": (-30.0, 30.0),
    "neck_twist": (-70.0, 70.0),
}
for _s in ("l", "r"):
    JOINT_LIMITS.update(
        {
            f"{_s}_shoulder_flex": (-60.0, 180.0),
            f"{_s}_shoulder_abd": (-10.0, 170.0),
            f"{_s}_shoulder_twist": (-50.0, 90.0),
            f"{_s}_elbow": (0.0, 150.0),
            f"{_s}_hip_flex": (-30.0, 130.0),
            f"{_s}_hip_abd": (-15.0, 50.0),
            f"{_s}_hip_twist": (-25.0, 45.0),
            f"{_s}_knee": (0.0, 150.0),
            f"{_s}_ankle": (-30.0, 45.0),
        }
    )

POSE_KINDS: dict[str, float] = {  # kind -> sampling probability
    "stand": 0.20,
    "walk": 0.20,
    "run": 0.08,
    "arms_raised": 0.14,
    "wave": 0.08,
    "crouch": 0.08,
    "sit": 0.10,
    "lunge": 0.05,
    "free": 0.07,
}

# Eye direction on the head sphere (head frame, x = left); ears and nose are small spheres.
EYE_DIRECTION = np.array([0.34, 0.16, 0.93]) / np.linalg.norm([0.34, 0.16, 0.93])
EAR_OFFSET = np.array([0.97, -0.02, -0.08])  # times the head radius, left ear
NOSE_OFFSET = np.array([0.0, -0.22, 0.98])  # times the head radius
EAR_RADIUS = 0.2  # times the head radius
NOSE_RADIUS = 0.2  # times the head radius


def rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths and limb radii of one person, in millimetres."""

    height: float
    spine: float  # pelvis -> thorax
    neck: float  # thorax -> upper_neck
    head_radius: float
    shoulder_half: float  # thorax -> shoulder, sideways
    hip_half: float  # pelvis -> hip, sideways
    hip_drop: float  # pelvis -> hip, downwards
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    ankle_height: float
    foot: float
    # radii
    r_waist: float
    r_chest: float
    r_side: float  # the hip -> shoulder side columns of the torso
    r_neck: float
    r_upper_arm: float
    r_forearm: float
    r_wrist: float
    r_hand: float
    r_thigh: float
    r_knee: float
    r_ankle: float
    r_foot: float


def sample_body_shape(rng: np.random.Generator, height: float | None = None) -> BodyShape:
    """Human proportions (fractions of stature) with small per-person variation."""
    h = min(max(rng.normal(1700.0, 90.0), 1450.0), 1950.0) if height is None else float(height)

    def seg(frac: float) -> float:
        return h * frac * min(max(1.0 + rng.normal(0.0, 0.03), 0.92), 1.08)

    build = float(rng.uniform(0.85, 1.25))  # slim .. heavy
    chest = float(rng.uniform(0.9, 1.1))

    def rad(frac: float, k: float = 1.0) -> float:
        return h * frac * build * k * float(rng.uniform(0.95, 1.05))

    return BodyShape(
        height=h,
        spine=seg(0.27),
        neck=seg(0.055),
        head_radius=seg(0.062),
        shoulder_half=seg(0.118),
        hip_half=seg(0.062),
        hip_drop=seg(0.025),
        upper_arm=seg(0.180),
        forearm=seg(0.150),
        hand=seg(0.085),
        thigh=seg(0.240),
        shin=seg(0.240),
        ankle_height=seg(0.040),
        foot=seg(0.150),
        r_waist=rad(0.066),
        r_chest=rad(0.074, chest),
        r_side=rad(0.052, chest),
        r_neck=rad(0.030),
        r_upper_arm=rad(0.031),
        r_forearm=rad(0.026),
        r_wrist=rad(0.019),
        r_hand=rad(0.022),
        r_thigh=rad(0.048),
        r_knee=rad(0.034),
        r_ankle=rad(0.024),
        r_foot=rad(0.022),
    )


def joint_surface_radius(shape: BodyShape) -> np.ndarray:
    """(J,) distance from each joint to the body surface in front of it, in mm.

    Used by the visibility test: a joint counts as unoccluded when the nearest rendered surface
    at its pixel is no closer than this (plus a margin).
    """
    s = shape
    r = {
        "pelvis": s.r_waist,
        "spine": s.r_waist,
        "thorax": s.r_chest,
        "upper_neck": s.r_neck,
        "head_center": s.head_radius,
        "head_top": 0.0,
        "nose": NOSE_RADIUS * s.head_radius,
        "left_eye": 0.0,
        "right_eye": 0.0,
        "left_ear": EAR_RADIUS * s.head_radius,
        "right_ear": EAR_RADIUS * s.head_radius,
        "left_shoulder": s.r_side,
        "right_shoulder": s.r_side,
        "left_elbow": s.r_upper_arm,
        "right_elbow": s.r_upper_arm,
        "left_wrist": s.r_forearm,
        "right_wrist": s.r_forearm,
        "left_hand": s.r_hand,
        "right_hand": s.r_hand,
        "left_hip": s.r_thigh,
        "right_hip": s.r_thigh,
        "left_knee": s.r_knee,
        "right_knee": s.r_knee,
        "left_ankle": s.r_ankle,
        "right_ankle": s.r_ankle,
        "left_heel": s.r_foot,
        "right_heel": s.r_foot,
        "left_toe": s.r_foot,
        "right_toe": s.r_foot,
    }
    return np.array([r[name] for name in JOINT_NAMES])


@dataclass
class Skeleton:
    """Posed joints plus the segment frames the renderer needs.

    Attributes:
        joints: (J, 3) joint positions, superset order.
        frames: segment name -> (3, 3) rotation whose columns are the segment's x/y/z axes
            ("pelvis", "chest", "head", "left_foot", ...).
        shape: the person's BodyShape.
    """

    joints: np.ndarray
    frames: dict[str, np.ndarray]
    shape: BodyShape
    pose: dict[str, float] = field(default_factory=dict)

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> Skeleton:
        """Rigidly move the skeleton: x -> R x + t (e.g. body frame -> camera frame)."""
        joints = self.joints @ rotation.T + translation
        frames = {k: rotation @ v for k, v in self.frames.items()}
        return Skeleton(joints=joints, frames=frames, shape=self.shape, pose=self.pose)

    def joint(self, name: str) -> np.ndarray:
        return self.joints[JOINT_INDEX[name]]


def clamp_pose(pose: dict[str, float]) -> dict[str, float]:
    """Clip every angle into JOINT_LIMITS; missing angles are 0."""
    return {k: min(max(float(pose.get(k, 0.0)), lo), hi) for k, (lo, hi) in JOINT_LIMITS.items()}


def forward_kinematics(shape: BodyShape, pose: dict[str, float]) -> Skeleton:
    """Pose angles (degrees, see JOINT_LIMITS) -> Skeleton in the body frame."""
    p = clamp_pose(pose)
    s = shape
    j = np.zeros((len(JOINT_NAMES), 3))
    frames: dict[str, np.ndarray] = {"pelvis": np.eye(3)}

    def put(name: str, value: np.ndarray) -> np.ndarray:
        j[JOINT_INDEX[name]] = value
        return value

    half = rot_x(p["spine_flex"] / 2) @ rot_z(p["spine_side"] / 2) @ rot_y(p["spine_twist"] / 2)
    chest = rot_x(p["spine_flex"]) @ rot_z(p["spine_side"]) @ rot_y(p["spine_twist"])
    frames["chest"] = chest
    spine = put("spine", half @ np.array([0.0, s.spine / 2, 0.0]))
    thorax = put("thorax", spine + chest @ np.array([0.0, s.spine / 2, 0.0]))
    neck_top = put("upper_neck", thorax + chest @ rot_x(0.4 * p["neck_flex"]) @ np.array([0.0, s.neck, 0.1 * s.neck]))
    head = chest @ rot_y(p["neck_twist"]) @ rot_x(p["neck_flex"]) @ rot_z(p["neck_side"])
    frames["head"] = head
    r = s.head_radius
    center = put("head_center", neck_top + head @ np.array([0.0, 0.75 * r, 0.12 * r]))
    put("head_top", center + head @ np.array([0.0, r, 0.0]))
    put("nose", center + head @ (NOSE_OFFSET * r))
    mirror = np.array([-1.0, 1.0, 1.0])
    put("left_eye", center + head @ (EYE_DIRECTION * r))
    put("right_eye", center + head @ (EYE_DIRECTION * mirror * r))
    put("left_ear", center + head @ (EAR_OFFSET * r))
    put("right_ear", center + head @ (EAR_OFFSET * mirror * r))

    for side, sign in (("left", 1.0), ("right", -1.0)):
        c = side[0]
        offset = np.array([sign * s.shoulder_half, -0.02 * s.height, -0.012 * s.height])
        shoulder = put(f"{side}_shoulder", thorax + chest @ offset)
        upper = (
            chest
            @ rot_z(sign * p[f"{c}_shoulder_abd"])
            @ rot_x(-p[f"{c}_shoulder_flex"])
            @ rot_y(-sign * p[f"{c}_shoulder_twist"])
        )
        elbow = put(f"{side}_elbow", shoulder + upper @ np.array([0.0, -s.upper_arm, 0.0]))
        fore = upper @ rot_x(-p[f"{c}_elbow"])
        wrist = put(f"{side}_wrist", elbow + fore @ np.array([0.0, -s.forearm, 0.0]))
        put(f"{side}_hand", wrist + fore @ np.array([0.0, -s.hand, 0.15 * s.hand]))
        frames[f"{side}_upper_arm"], frames[f"{side}_forearm"] = upper, fore

        hip = put(f"{side}_hip", np.array([sign * s.hip_half, -s.hip_drop, 0.0]))
        thigh = rot_z(sign * p[f"{c}_hip_abd"]) @ rot_x(-p[f"{c}_hip_flex"]) @ rot_y(sign * p[f"{c}_hip_twist"])
        knee = put(f"{side}_knee", hip + thigh @ np.array([0.0, -s.thigh, 0.0]))
        shin = thigh @ rot_x(p[f"{c}_knee"])
        ankle = put(f"{side}_ankle", knee + shin @ np.array([0.0, -s.shin, 0.0]))
        foot = shin @ rot_x(p[f"{c}_ankle"])
        put(f"{side}_heel", ankle + foot @ np.array([0.0, -0.55 * s.ankle_height, -0.22 * s.foot]))
        put(f"{side}_toe", ankle + foot @ np.array([0.0, -0.7 * s.ankle_height, 0.72 * s.foot]))
        frames[f"{side}_thigh"], frames[f"{side}_shin"], frames[f"{side}_foot"] = thigh, shin, foot
    return Skeleton(joints=j, frames=frames, shape=shape, pose=p)


def balance(skeleton: Skeleton) -> Skeleton:
    """Tilt the whole body about the pelvis so the thorax is straight above the mid-ankle point.

    Keeps the centre of mass over the feet for standing, walking and crouching poses; the
    heading (yaw) is unchanged.
    """
    j = skeleton.joints
    v = j[JOINT_INDEX["thorax"]] - 0.5 * (j[JOINT_INDEX["left_ankle"]] + j[JOINT_INDEX["right_ankle"]])
    v = v / np.linalg.norm(v)
    up = np.array([0.0, 1.0, 0.0])
    axis = np.cross(v, up)
    sin, cos = float(np.linalg.norm(axis)), float(v @ up)
    if sin < 1e-9:
        return skeleton
    k = axis / sin
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rot = np.eye(3) + sin * kx + (1.0 - cos) * (kx @ kx)  # Rodrigues: takes v onto up
    return skeleton.transformed(rot, np.zeros(3))


def _standing_legs(rng: np.random.Generator, pose: dict[str, float]) -> None:
    for c in "lr":
        pose[f"{c}_hip_flex"] = rng.normal(0.0, 6.0)
        pose[f"{c}_hip_abd"] = rng.uniform(0.0, 12.0)
        pose[f"{c}_hip_twist"] = rng.uniform(-5.0, 25.0)
        pose[f"{c}_knee"] = rng.uniform(0.0, 12.0)
        pose[f"{c}_ankle"] = rng.normal(0.0, 5.0)


def _relaxed_arms(rng: np.random.Generator, pose: dict[str, float]) -> None:
    for c in "lr":
        pose[f"{c}_shoulder_flex"] = rng.normal(0.0, 12.0)
        pose[f"{c}_shoulder_abd"] = rng.uniform(4.0, 25.0)
        pose[f"{c}_shoulder_twist"] = rng.uniform(0.0, 40.0)
        pose[f"{c}_elbow"] = rng.uniform(0.0, 40.0)


def _raised_arm(rng: np.random.Generator, pose: dict[str, float], c: str) -> None:
    if rng.random() < 0.5:  # forwards / overhead
        pose[f"{c}_shoulder_flex"] = rng.uniform(50.0, 180.0)
        pose[f"{c}_shoulder_abd"] = rng.uniform(0.0, 40.0)
    else:  # sideways
        pose[f"{c}_shoulder_flex"] = rng.uniform(-20.0, 40.0)
        pose[f"{c}_shoulder_abd"] = rng.uniform(50.0, 165.0)
    pose[f"{c}_shoulder_twist"] = rng.uniform(-30.0, 60.0)
    pose[f"{c}_elbow"] = rng.uniform(0.0, 130.0)


def sample_pose(rng: np.random.Generator, kind: str | None = None) -> tuple[str, dict[str, float]]:
    """Sample (kind, pose angles); kind is drawn from POSE_KINDS when None. Left/right symmetric."""
    if kind is None:
        names = list(POSE_KINDS)
        probs = np.array([POSE_KINDS[k] for k in names])
        kind = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    p: dict[str, float] = {
        "spine_flex": rng.normal(3.0, 5.0),
        "spine_side": rng.normal(0.0, 4.0),
        "spine_twist": rng.normal(0.0, 8.0),
        "neck_flex": rng.normal(0.0, 12.0),
        "neck_side": rng.normal(0.0, 7.0),
        "neck_twist": rng.normal(0.0, 22.0),
    }
    _standing_legs(rng, p)
    _relaxed_arms(rng, p)
    lead, other = ("l", "r") if rng.random() < 0.5 else ("r", "l")
    if kind == "walk" or kind == "run":
        amp = rng.uniform(15.0, 35.0) if kind == "walk" else rng.uniform(35.0, 60.0)
        phase = rng.uniform(0.0, 2 * np.pi)
        for c, sgn in (("l", 1.0), ("r", -1.0)):
            swing = sgn * np.sin(phase)
            p[f"{c}_hip_flex"] = amp * swing
            # the trailing leg bends its knee as it swings through
            p[f"{c}_knee"] = rng.uniform(3.0, 15.0) + (1.6 if kind == "run" else 0.9) * amp * max(0.0, 0.3 - swing)
            p[f"{c}_shoulder_flex"] = -0.8 * amp * swing
            p[f"{c}_elbow"] = rng.uniform(10.0, 40.0) if kind == "walk" else rng.uniform(60.0, 110.0)
        if kind == "run":
            p["spine_flex"] = rng.uniform(8.0, 25.0)
    elif kind == "arms_raised":
        _raised_arm(rng, p, lead)
        if rng.random() < 0.7:
            _raised_arm(rng, p, other)
    elif kind == "wave":
        p[f"{lead}_shoulder_flex"] = rng.uniform(-10.0, 40.0)
        p[f"{lead}_shoulder_abd"] = rng.uniform(60.0, 130.0)
        p[f"{lead}_shoulder_twist"] = rng.uniform(-50.0, -10.0)
        p[f"{lead}_elbow"] = rng.uniform(50.0, 130.0)
    elif kind == "crouch":
        p["spine_flex"] = rng.uniform(15.0, 50.0)
        for c in "lr":
            p[f"{c}_hip_flex"] = rng.uniform(60.0, 120.0)
            p[f"{c}_knee"] = rng.uniform(80.0, 145.0)
            p[f"{c}_hip_abd"] = rng.uniform(5.0, 35.0)
            p[f"{c}_ankle"] = rng.uniform(-30.0, -5.0)
            p[f"{c}_shoulder_flex"] = rng.uniform(10.0, 80.0)
            p[f"{c}_elbow"] = rng.uniform(10.0, 100.0)
    elif kind == "sit":
        p["spine_flex"] = rng.uniform(-5.0, 20.0)
        for c in "lr":
            p[f"{c}_hip_flex"] = rng.uniform(70.0, 105.0)
            p[f"{c}_knee"] = rng.uniform(60.0, 110.0)
            p[f"{c}_hip_abd"] = rng.uniform(0.0, 25.0)
            p[f"{c}_shoulder_flex"] = rng.uniform(0.0, 60.0)
            p[f"{c}_elbow"] = rng.uniform(20.0, 100.0)
    elif kind == "lunge":
        p[f"{lead}_hip_flex"] = rng.uniform(30.0, 95.0)
        p[f"{lead}_knee"] = rng.uniform(0.0, 100.0)
        p[f"{other}_hip_flex"] = rng.uniform(-25.0, 0.0)
        p[f"{other}_knee"] = rng.uniform(0.0, 40.0)
        for c in "lr":
            p[f"{c}_shoulder_abd"] = rng.uniform(10.0, 100.0)
            p[f"{c}_elbow"] = rng.uniform(0.0, 90.0)
    elif kind == "free":
        for name, (lo, hi) in JOINT_LIMITS.items():
            if "shoulder" in name or "elbow" in name:
                p[name] = rng.uniform(lo, hi)
        for c in "lr":
            p[f"{c}_hip_flex"] = rng.uniform(-20.0, 90.0)
            p[f"{c}_knee"] = rng.uniform(0.0, 110.0)
            p[f"{c}_hip_abd"] = rng.uniform(-5.0, 40.0)
    elif kind != "stand":
        raise ValueError(f"unknown pose kind {kind!r}; known: {sorted(POSE_KINDS)}")
    return kind, clamp_pose(p)
