"""One synthetic image: people, a crowd, occluders and clutter, with masks and keypoint visibility.

``render_scene`` is format-agnostic: it returns every person's superset joints in 3D (camera
frame, mm) and 2D, their visibility, and their visible-pixel masks. Writers for COCO (and later
MPII / H36M style data) select and format from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from src.synthetic.appearance import JOINT_PARTS, figure_primitives, sample_style
from src.synthetic.background import noise_field, render_background
from src.synthetic.camera import Camera, body_to_camera_rotation, sample_camera
from src.synthetic.figure import (
    JOINT_NAMES,
    Skeleton,
    balance,
    forward_kinematics,
    joint_surface_radius,
    sample_body_shape,
    sample_pose,
)
from src.synthetic.params import SceneConfig
from src.synthetic.render import Primitive, rasterise

NEAR_MM = 50.0
FACE_JOINTS = frozenset({"nose", "left_eye", "right_eye", "left_ear", "right_ear"})


@dataclass
class PersonInstance:
    """One rendered person. J = len(JOINT_NAMES)."""

    joints_3d: np.ndarray  # (J, 3) camera frame, mm
    joints_2d: np.ndarray  # (J, 2) pixels
    visibility: np.ndarray  # (J,) int: 0 outside image / behind camera, 1 occluded, 2 visible
    mask: np.ndarray  # (H, W) bool, the person's visible pixels
    keypoint_less: bool  # too small to annotate keypoints
    stature_px: float
    pose_kind: str


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    camera: Camera
    persons: list[PersonInstance]
    crowd_mask: np.ndarray | None  # (H, W) bool, visible pixels of the crowd figures


def sample_yaw(rng: np.random.Generator, facing_camera_prob: float) -> float:
    """Heading in degrees: photos mostly show people turned towards the camera, some from any side.

    With probability facing_camera_prob the yaw is N(0, 35) clipped to +-80 (0 faces the camera),
    otherwise uniform over 360 (backs and profiles included); left and right then remain
    decidable only from the figure (face, hair, collar, feet), as for real people.
    """
    if rng.random() < facing_camera_prob:
        return float(np.clip(rng.normal(0.0, 35.0), -80.0, 80.0)) % 360.0
    return float(rng.uniform(0.0, 360.0))


def _place(
    rng: np.random.Generator,
    camera: Camera,
    *,
    stature_px: float,
    u0: float,
    v0: float,
    yaw: float | None = None,
    tilt: tuple[float, float] = (0.0, 0.0),
    pose_kind: str | None = None,
) -> tuple[Skeleton, str]:
    """Sample a person and place them so that their body centre projects to (u0, v0)."""
    shape = sample_body_shape(rng)
    kind, pose = sample_pose(rng, pose_kind)
    body = forward_kinematics(shape, pose)
    if kind not in ("sit", "free"):
        body = balance(body)
    rot = body_to_camera_rotation(
        yaw=rng.uniform(0.0, 360.0) if yaw is None else yaw,
        pitch=min(max(rng.normal(0.0, 4.0), -12.0), 12.0),
        roll=min(max(rng.normal(0.0, 4.0), -12.0), 12.0),
        camera_pitch=tilt[0],
        camera_roll=tilt[1],
    )
    rotated = body.joints @ rot.T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    mid = (lo + hi) / 2
    z = camera.fx * shape.height / stature_px
    t = np.array([(u0 - camera.cx) / camera.fx * z - mid[0], (v0 - camera.cy) / camera.fy * z - mid[1], z - mid[2]])
    return body.transformed(rot, t), kind


def joint_visibility(
    person: int,
    skel: Skeleton,
    camera: Camera,
    depth: np.ndarray,
    ids: np.ndarray,
    owners: np.ndarray,
    parts: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """(J, 2) projections and (J,) visibility of one person from the rasteriser's depth and id buffers:
    0 behind the camera or outside the image; at the joint's (rounded) pixel, 2 where the nearest
    surface is one of the person's own parts that form the joint (``appearance.JOINT_PARTS``) or lies
    no nearer than the joint's own surface (``figure.joint_surface_radius``) plus a margin (0.15 head
    radii for face joints, 2 % of the stature otherwise), else 1 (occluded). Every writer uses it."""
    joints = skel.joints
    z = joints[:, 2]
    safe = np.where(z > NEAR_MM, z, 1.0)
    uv = np.stack([camera.fx * joints[:, 0] / safe + camera.cx, camera.fy * joints[:, 1] / safe + camera.cy], 1)
    h, w = depth.shape
    inside = (z > NEAR_MM) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    radius = joint_surface_radius(skel.shape)
    vis = np.zeros(len(JOINT_NAMES), dtype=np.int64)
    for k in np.nonzero(inside)[0]:
        name = JOINT_NAMES[k]
        px, py = int(round(uv[k, 0])), int(round(uv[k, 1]))
        top = int(ids[py, px])
        if top >= 0 and owners[top] == person and parts[top] in JOINT_PARTS[name]:
            vis[k] = 2
            continue
        margin = 0.15 * skel.shape.head_radius if name in FACE_JOINTS else 0.02 * skel.shape.height
        vis[k] = 2 if depth[py, px] >= z[k] - radius[k] - margin else 1
    return uv, vis


def _sample_people(
    rng: np.random.Generator, camera: Camera, config: SceneConfig, tilt: tuple[float, float]
) -> tuple[list[Skeleton], list[str], list[float]]:
    """min_people..max_people people (none with probability empty_prob), spread over the image width."""
    w, h = config.image_size
    n = 0 if rng.random() < config.empty_prob else int(rng.integers(config.min_people, config.max_people + 1))
    skeletons, kinds, statures = [], [], []
    slots = (rng.permutation(n) + rng.uniform(0.15, 0.85, n)) / max(n, 1)
    for i in range(n):
        if rng.random() < config.tiny_prob:
            stature = rng.uniform(16.0, config.keypoint_min_height)
        else:
            # uniform in sqrt(stature), i.e. roughly uniform in area: median ~130 px for h = 256
            lo, hi = np.sqrt(config.min_height), np.sqrt(max(config.max_height_frac * h, config.min_height + 1))
            stature = float(rng.uniform(lo, hi) ** 2)
        u0 = (-0.08 + 1.16 * slots[i]) * w
        lo_v, hi_v = 0.47 * stature, h - 0.47 * stature
        v0 = rng.uniform(lo_v, hi_v) if lo_v < hi_v else h / 2
        if rng.random() < config.truncation_prob:
            v0 += rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.45) * stature
        skel, kind = _place(
            rng, camera, stature_px=stature, u0=u0, v0=v0, tilt=tilt, yaw=sample_yaw(rng, config.facing_camera_prob)
        )
        skeletons.append(skel)
        kinds.append(kind)
        statures.append(stature)
    return skeletons, kinds, statures


def _sample_crowd(
    rng: np.random.Generator, camera: Camera, config: SceneConfig, tilt: tuple[float, float]
) -> list[Skeleton]:
    """A cluster of 5-12 small figures (annotated together as one iscrowd region)."""
    w, h = config.image_size
    m = int(rng.integers(5, 13))
    uc, vc = rng.uniform(0.15, 0.85) * w, rng.uniform(0.3, 0.7) * h
    spread = rng.uniform(0.06, 0.14) * w
    base = rng.uniform(18.0, 38.0)
    crowd = []
    for _ in range(m):
        stature = base * rng.uniform(0.85, 1.15)
        skel, _ = _place(
            rng,
            camera,
            stature_px=stature,
            u0=uc + rng.normal(0.0, spread),
            v0=vc + rng.normal(0.0, 0.15 * stature),
            tilt=tilt,
            pose_kind="walk" if rng.random() < 0.5 else "stand",
        )
        crowd.append(skel)
    return crowd


def _occluder(rng: np.random.Generator, camera: Camera, target: Skeleton) -> Primitive | None:
    """A flat object (low box or post) standing in front of ``target``."""
    uv = camera.project(target.joints)
    x0, y0 = uv.min(axis=0)
    x1, y1 = uv.max(axis=0)
    bw, bh = x1 - x0, y1 - y0
    if rng.random() < 0.6:  # a low object in front of the legs
        top = y0 + rng.uniform(0.45, 0.8) * bh
        box = [x0 - rng.uniform(0.1, 1.0) * bw, top, x1 + rng.uniform(0.1, 1.0) * bw, y1 + 0.2 * bh + 2]
    else:  # a post or panel at one side
        cx = rng.uniform(x0, x1)
        half = rng.uniform(0.1, 0.3) * bw + 2
        box = [cx - half, y0 - rng.uniform(0, 0.3) * bh, cx + half, y1 + rng.uniform(0, 0.3) * bh]
    pts = np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]])
    colour = np.array([rng.uniform(30, 230) for _ in range(3)])
    depth = float(target.joints[:, 2].min() - rng.uniform(150.0, 600.0))
    if depth <= NEAR_MM:
        return None
    return Primitive(kind="polygon", part="occluder", owner=-1, depth=depth, material=colour, points2d=pts)


def render_scene(rng: np.random.Generator, config: SceneConfig) -> Scene:
    """Sample and render one image with its per-person geometry and visibility."""
    w, h = config.image_size
    camera = sample_camera(rng, config.image_size)
    tilt = (min(max(rng.normal(0.0, 4.0), -10.0), 10.0), min(max(rng.normal(0.0, 3.0), -8.0), 8.0))
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.3), -1.0])
    background = render_background(rng, config.image_size, config.clutter)
    skeletons, kinds, statures = _sample_people(rng, camera, config, tilt)
    n = len(skeletons)
    crowd = _sample_crowd(rng, camera, config, tilt) if n > 0 and rng.random() < config.crowd_prob else []

    prims: list[Primitive] = []
    for i, skel in enumerate(skeletons + crowd):  # owners: people 0..n-1, crowd figures n..
        prims.extend(figure_primitives(skel, sample_style(rng), owner=i, near=NEAR_MM))
    if n > 0 and rng.random() < config.occluder_prob:
        occluder = _occluder(rng, camera, skeletons[int(rng.integers(n))])
        if occluder is not None:
            prims.append(occluder)

    color, depth, ids = rasterise(prims, camera=camera, background=background, light=light)
    owners = np.array([p.owner for p in prims] + [-1], dtype=np.int64)
    parts = [p.part for p in prims]
    owner_map = owners[ids]  # ids == -1 picks the trailing -1

    persons = []
    for i, skel in enumerate(skeletons):
        uv, vis = joint_visibility(i, skel, camera, depth, ids, owners, parts)
        persons.append(
            PersonInstance(
                joints_3d=skel.joints,
                joints_2d=uv,
                visibility=vis,
                mask=owner_map == i,
                keypoint_less=statures[i] < config.keypoint_min_height,
                stature_px=float(statures[i]),
                pose_kind=kinds[i],
            )
        )
    crowd_mask = (owner_map >= n) if crowd else None

    img = cv2.GaussianBlur(color, (0, 0), sigmaX=rng.uniform(0.2, config.max_blur_sigma))
    img += noise_field(rng, h, w) * np.float32(rng.uniform(0.0, config.max_noise))
    np.clip(img, 0.0, 255.0, out=img)
    image = (img + 0.5).astype(np.uint8)
    return Scene(image=image, camera=camera, persons=persons, crowd_mask=crowd_mask)
