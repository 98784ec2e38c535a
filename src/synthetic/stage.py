"""People standing on a floor at chosen distances from one calibrated camera, rendered with
per-person joints, visibility and masks: the scenes of the MuCo-3DHP and MuPoTS-3D writers.

World frame (as ``h36m_writer``'s studio): x, y on the floor, z up, millimetres. The camera stands
at (0, 0, height) 1.0-1.5 m above the floor and looks along +x at a point 5 m away and 0.7-1.0 m
high (a few degrees down), with a small roll; its intrinsics are ``camera.sample_camera``'s. A
person is placed by the camera depth of their pelvis (the root joint) and its image column, their
lowest foot surface on the floor, so farther people stand higher in the image and look smaller,
as in a photograph. Rendering, the visibility rule and the image's blur and noise are those of
``scene.render_scene``, so a `scene.Scene` comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from src.camera import Camera
from src.synthetic.appearance import Style, figure_primitives
from src.synthetic.background import noise_field
from src.synthetic.camera import sample_camera
from src.synthetic.figure import (
    JOINT_INDEX,
    JOINT_LIMITS,
    BodyShape,
    Skeleton,
    rot_z,
)
from src.synthetic.h36m_writer import UNBALANCED_KINDS, look_at, pose_in_world
from src.synthetic.render import rasterise
from src.synthetic.scene import NEAR_MM, PersonInstance, Scene, joint_visibility

CAMERA_HEIGHT_MM = (1000.0, 1500.0)
CAMERA_TARGET_DISTANCE_MM = 5000.0
CAMERA_TARGET_HEIGHT_MM = (700.0, 1000.0)
CAMERA_ROLL_DEG = 1.5  # sd, clipped at 2 sd
MAX_BLUR_SIGMA = 0.9  # as scene.SceneConfig
MAX_NOISE = 4.0
PELVIS = JOINT_INDEX["pelvis"]


@dataclass(frozen=True)
class Figure:
    """One person to draw: world-frame skeleton (floor z = 0) and clothing."""

    skeleton: Skeleton
    style: Style
    pose_kind: str = ""


def sample_stage_camera(rng: np.random.Generator, image_size: tuple[int, int]) -> Camera:
    """A camera at (0, 0, height) looking along +x, slightly down, with ``sample_camera``'s intrinsics
    (rounded to 0.01 px, so the stored values are the rendered ones) and the world -> camera R, t."""
    intrinsics = sample_camera(rng, image_size)
    centre = np.array([0.0, 0.0, rng.uniform(*CAMERA_HEIGHT_MM)])
    target = np.array([CAMERA_TARGET_DISTANCE_MM, 0.0, rng.uniform(*CAMERA_TARGET_HEIGHT_MM)])
    roll = float(np.clip(rng.normal(0.0, CAMERA_ROLL_DEG), -2 * CAMERA_ROLL_DEG, 2 * CAMERA_ROLL_DEG))
    R = rot_z(roll) @ look_at(centre, target)
    return Camera(fx=intrinsics.fx, fy=intrinsics.fy, cx=intrinsics.cx, cy=intrinsics.cy, R=R, t=-R @ centre)


def spread_depths(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """(n,) depths in mm, one in each of n equal bins of [low, high] (in random order): neighbours are
    at least 0.4 bin widths apart, e.g. 600 mm for 4 people over 2-8 m."""
    width = (high - low) / max(n, 1)
    return rng.permutation(low + width * (np.arange(n) + rng.uniform(0.2, 0.8, n)))


def floor_offset(camera: Camera, pelvis: np.ndarray, depth: float, column: float) -> np.ndarray:
    """(2,) floor translation (mm) that moves a world point ``pelvis`` (3,) to camera depth ``depth``
    (mm) and image column ``column`` (px), keeping its height."""
    q = camera.world_to_camera(pelvis)
    want = np.array([(column - camera.cx) / camera.fx * depth - q[0], depth - q[2]])
    # camera x and z of a floor step (dx, dy): rows 0 and 2 of R restricted to the floor axes
    return np.linalg.solve(camera.R[[0, 2], :2], want)


def stand_at(
    camera: Camera,
    shape: BodyShape,
    angles: np.ndarray,
    balance_weight: float,
    heading: float,
    *,
    depth: float,
    column: float,
) -> tuple[Skeleton, np.ndarray]:
    """(world skeleton, (2,) floor position of its pelvis) of a person posed by ``angles`` (A,) in
    ``JOINT_LIMITS`` order, turned to heading (deg, 0 faces +x, counterclockwise), feet on the floor,
    whose pelvis is at camera depth ``depth`` mm and projects onto image column ``column``."""
    at_origin = pose_in_world(shape, angles, balance_weight, np.zeros(2), heading)
    xy = floor_offset(camera, at_origin.joints[PELVIS], depth, column)
    return pose_in_world(shape, angles, balance_weight, xy, heading), xy


def pose_angles(pose: dict[str, float], kind: str) -> tuple[np.ndarray, float]:
    """(A,) angles of a ``figure.sample_pose`` pose in ``JOINT_LIMITS`` order and its balance weight
    (0 for kinds that do not stand over their feet, as in ``h36m_writer``)."""
    return np.array([pose[name] for name in JOINT_LIMITS]), 0.0 if kind in UNBALANCED_KINDS else 1.0


def scene_light(rng: np.random.Generator) -> np.ndarray:
    """(3,) camera-frame direction towards the light: above and behind the camera, as in ``scene``."""
    return np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.3), -1.0])


def render_figures(
    camera: Camera,
    figures: list[Figure],
    *,
    background: np.ndarray,
    light: np.ndarray,
    blur_sigma: float,
    noise_rng: np.random.Generator,
) -> Scene:
    """Draw world-frame figures (P) over a (H, W, 3) float32 background; light (3,) in the camera frame.

    Returns a `scene.Scene` whose persons follow ``figures``' order: camera-frame superset joints,
    their projections, visibility (``scene``'s rule: 0 outside / 1 occluded / 2 visible) and masks of
    visible pixels. The image is blurred by ``blur_sigma`` and gets noise drawn from ``noise_rng``.
    """
    h, w = background.shape[:2]
    in_camera = [f.skeleton.transformed(camera.R, camera.t) for f in figures]
    prims = []
    for i, (skeleton, figure) in enumerate(zip(in_camera, figures)):
        prims.extend(figure_primitives(skeleton, figure.style, owner=i, near=NEAR_MM))
    colour, depth, ids = rasterise(prims, camera=camera, background=background, light=light)
    owners = np.array([p.owner for p in prims] + [-1], dtype=np.int64)
    parts = [p.part for p in prims]
    owner_map = owners[ids]  # ids == -1 picks the trailing -1
    persons = []
    for i, (skeleton, figure) in enumerate(zip(in_camera, figures)):
        uv, vis = joint_visibility(i, skeleton, camera, depth, ids, owners, parts)
        persons.append(
            PersonInstance(
                joints_3d=skeleton.joints,
                joints_2d=uv,
                visibility=vis,
                mask=owner_map == i,
                keypoint_less=False,
                stature_px=float(camera.fx * skeleton.shape.height / skeleton.joints[PELVIS, 2]),
                pose_kind=figure.pose_kind,
            )
        )
    img = cv2.GaussianBlur(colour, (0, 0), sigmaX=blur_sigma)
    img += noise_field(noise_rng, h, w) * np.float32(noise_rng.uniform(0.0, MAX_NOISE))
    np.clip(img, 0.0, 255.0, out=img)
    return Scene(image=(img + 0.5).astype(np.uint8), camera=camera, persons=persons, crowd_mask=None)


def project_rounded(camera: Camera, joints: np.ndarray, decimals: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """((K, 3) camera-frame joints rounded to ``decimals`` mm, (K, 2) their exact projections rounded
    to ``decimals`` px): what the writers store, so that the stored pixels are the pinhole projection
    of the stored 3D joints with the stored intrinsics."""
    cam = np.round(np.asarray(joints, dtype=np.float64), decimals)
    return cam, np.round(camera.project(cam), decimals)


def inside_image(uv: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(K,) bool: pixels (K, 2) inside a (w, h) image (0 <= u <= w - 1, 0 <= v <= h - 1, as ``scene``)."""
    w, h = image_size
    return (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)


#: Padding of `body_box` on each side, as a fraction of the joints' extent (limb and head thickness).
BODY_BOX_PAD = 0.06


def body_box(uv: np.ndarray, image_size: tuple[int, int]) -> list[int] | None:
    """[x, y, w, h] (0-based pixel columns and rows, integers) of a whole person, hidden parts included:
    the extent of the projected superset joints ``uv`` (J, 2), padded by `BODY_BOX_PAD` of it on each
    side and cut to the image; None when nothing of it lies in the image. MuCo-3DHP and MuPoTS-3D
    boxes are of this kind, made from the annotated body rather than from the visible pixels, so that
    a person's box says how far they are even when someone stands in front of them."""
    w, h = image_size
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    pad = BODY_BOX_PAD * (hi - lo)
    x0, y0 = np.floor(np.maximum(lo - pad, 0.0))
    x1, y1 = np.ceil(np.minimum(hi + pad, [w - 1, h - 1]))
    if not (np.isfinite([x0, y0, x1, y1]).all() and x1 >= x0 and y1 >= y0):
        return None
    return [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)]
