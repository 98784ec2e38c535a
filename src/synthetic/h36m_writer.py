"""Write (or reuse) a synthetic Human3.6M-format dataset in the 3DMPPE repository's layout.

Layout under ``root``::

    annotations/Human36M_subject{S}_data.json      images + one annotation (bbox) per image
    annotations/Human36M_subject{S}_camera.json    {"1": {"R", "t", "f", "c"}, ...}
    annotations/Human36M_subject{S}_joint_3d.json  {action: {subaction: {frame: 17 x [x, y, z]}}}
    images/s_XX_act_XX_subact_XX_ca_XX/s_XX_act_XX_subact_XX_ca_XX_XXXXXX.jpg
    manifest.json                                  generator version + hash of every parameter

The studio. World frame: x, y on the floor, z up, millimetres, origin on the floor at the studio
centre (Human3.6M's world is z-up in mm too). Each subject is one person with a fixed body shape
and clothing, filmed by ``num_cameras`` calibrated cameras that stand on a circle of radius
4.5-5.5 m round the centre, 1.2-1.8 m high, spread evenly in azimuth, each looking at the
centre (about hip height) with a small random pitch and roll; f = 1.1-1.2 x the image width
(about Human3.6M's field of view, so a person is ~40 % of the image tall) and the principal
point near the image centre. As in Human3.6M, where every subject is filmed in the same lab by
the same four cameras, the rig and the backgrounds (one per camera) are shared by all subjects;
each subject's calibration moves every camera a little (CALIBRATION_JITTER_MM in position,
CALIBRATION_JITTER_DEG in orientation, 0.5 % in focal length), as Human3.6M recalibrates per
subject. The light (fixed in the world) belongs to the subject. Validation on other subjects
therefore tests new bodies, clothes and motions in a known studio, not new rooms.

Motion. Every (action, subaction) is a sequence of ``frames`` frames, FRAME_TIME_S apart (the
spacing of 3DMPPE's every-5th-frame subsample of the 50 Hz videos). The joint angles ease
(cosine) between keyframe poses of ``figure.sample_pose`` whose kinds suit the action
(``ACTION_STYLES``); walking keyframes alternate the leading leg. Walkers go round a loop of
radius 0.5-0.85 m about the centre, facing along it; everyone else sways about a spot within
0.6 m of the centre and slowly turns. ``figure.balance`` keeps standing kinds upright over
their feet (its tilt blends in and out where keyframes of sitting / free kinds meet standing
ones), and each frame's lowest foot surface touches the floor (z = 0).

Annotations. World joints: the 17 Human3.6M joints (``H36M17`` order) taken from the figure's
joints through ``LAYOUT_JOINTS["h36m17"]`` (pelvis, hips, knees, ankles; torso = mid-spine,
neck = upper_neck, nose, head = head_top; shoulders, elbows, wrists), rounded to 0.001 mm.
Image ids (= annotation ids) count from 0 over subjects, actions, subactions, cameras and
frames in that order; frame_idx is 0-based, the file name's number is frame_idx + 1. bbox is
[x, y, w, h] of the pixels where the rendered figure is the nearest surface (0-based pixel
columns and rows, w = last - first + 1, as the COCO writer's boxes); keypoints_vis is all true.

Every image is rendered on its own from random streams seeded by (seed, subject, ...) only, so
the output does not depend on the order or the number of worker processes, and adding frames
only extends the sequences. Caching and the manifest are ``cache.ensure_cached``'s.

CLI: ``python -m src.synthetic.h36m_writer --root data/synthetic_h36m [--subjects 1 5 --frames 8 ...]``
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.camera import Camera
from src.layouts import H36M17
from src.readers.h36m_naming import action_name, image_file_name, sequence_dir, subject_files
from src.synthetic import cache
from src.synthetic.appearance import Style, figure_primitives, sample_style
from src.synthetic.background import noise_field, render_background
from src.synthetic.figure import (
    JOINT_INDEX,
    JOINT_LIMITS,
    BodyShape,
    Skeleton,
    balance,
    forward_kinematics,
    layout_indices,
    rot_x,
    rot_y,
    rot_z,
    sample_body_shape,
    sample_pose,
)
from src.synthetic.params import H36MParams
from src.synthetic.render import rasterise
from src.synthetic.scene import NEAR_MM

GENERATOR = "src.synthetic.h36m"
VERSION = 2  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
ANNOTATIONS = "annotations"  # the folder of the annotation files under the root


H36M_INDICES = layout_indices("h36m17")  # (17,) superset joints in H36M17 order
FRAME_TIME_S = 0.1

# studio (mm, degrees)
CAMERA_RADIUS_MM = (4500.0, 5500.0)
CAMERA_HEIGHT_MM = (1200.0, 1800.0)
CAMERA_TARGET_HEIGHT_MM = (850.0, 1000.0)  # the point on the centre's vertical each camera looks at
CAMERA_AZIMUTH_JITTER_DEG = 8.0
CALIBRATION_JITTER_MM = 30.0  # sd of a camera's position change between subjects
CALIBRATION_JITTER_DEG = 0.5  # sd of its orientation change (pitch, yaw, roll)
CAMERA_TILT_DEG = 1.5  # sd of the extra pitch and roll, clipped at 2 sd
FOCAL_PER_WIDTH = (1.1, 1.2)
LIGHT_ELEVATION_DEG = (35.0, 60.0)
WALK_RADIUS_MM = (500.0, 850.0)
SPOT_RADIUS_MM = 600.0
SWAY_MM = (30.0, 200.0)
TURN_DEG_PER_S = 30.0
MAX_BLUR_SIGMA = 0.7
MAX_NOISE = 3.0
UNBALANCED_KINDS = frozenset({"sit", "free"})  # kinds that do not stand over their feet (as in scene.py)

# Random stream tags: every stream is SeedSequence([seed, tag, subject, ...]).
_PERSON, _RIG, _VIEW, _SEQUENCE, _KEYFRAME, _IMAGE = range(6)
_MIRRORED = ("spine_side", "spine_twist", "neck_side", "neck_twist")  # angles whose sign flips in a mirror


@dataclass(frozen=True)
class ActionStyle:
    """How an action moves.

    Attributes:
        kinds: ``figure.sample_pose`` kinds its keyframes are drawn from (uniformly).
        keyframe_s: (low, high) seconds between keyframes.
        walk_speed: (low, high) m/s round the studio loop; None: the person stays near one spot.
    """

    kinds: tuple[str, ...]
    keyframe_s: tuple[float, float] = (0.8, 1.5)
    walk_speed: tuple[float, float] | None = None


_STEP_S = (0.45, 0.6)  # a walking step (half a gait cycle)
ACTION_STYLES: dict[str, ActionStyle] = {
    "Directions": ActionStyle(("arms_raised", "wave", "stand")),
    "Discussion": ActionStyle(("wave", "stand", "arms_raised")),
    "Eating": ActionStyle(("sit", "stand")),
    "Greeting": ActionStyle(("wave", "arms_raised", "stand")),
    "Phoning": ActionStyle(("stand", "wave")),
    "Posing": ActionStyle(("arms_raised", "lunge", "stand")),
    "Purchases": ActionStyle(("stand", "walk", "crouch")),
    "Sitting": ActionStyle(("sit",), keyframe_s=(1.2, 2.0)),
    "SittingDown": ActionStyle(("sit", "crouch")),
    "Smoking": ActionStyle(("stand", "free")),
    "Photo": ActionStyle(("arms_raised", "stand")),
    "Waiting": ActionStyle(("stand", "free")),
    "Walking": ActionStyle(("walk",), keyframe_s=_STEP_S, walk_speed=(0.9, 1.4)),
    "WalkDog": ActionStyle(("walk",), keyframe_s=_STEP_S, walk_speed=(0.6, 1.1)),
    "WalkTogether": ActionStyle(("walk",), keyframe_s=_STEP_S, walk_speed=(0.7, 1.2)),
}

# Body frame (x left, y up, z facing) -> world (z up) for heading 0: facing +x, left +y.
BODY_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def annotation_files(subject: int) -> tuple[str, ...]:
    """(data, camera, joint_3d) JSON paths of a subject, relative to the root."""
    return tuple(str(path) for path in subject_files(ANNOTATIONS, subject).values())


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


# ----------------------------------------------------------------------------------------------
# the studio: person, cameras, backgrounds


@dataclass(frozen=True)
class Person:
    """One subject's look: body shape, clothing and the studio light (world unit vector towards it)."""

    shape: BodyShape
    style: Style
    light: np.ndarray


@lru_cache(maxsize=16)
def subject_person(seed: int, subject: int) -> Person:
    """The subject's body, clothing and light (independent of every other parameter)."""
    rng = _rng(seed, _PERSON, subject)
    shape = sample_body_shape(rng)
    style = sample_style(rng)
    azimuth, elevation = np.deg2rad(rng.uniform(0.0, 360.0)), np.deg2rad(rng.uniform(*LIGHT_ELEVATION_DEG))
    light = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return Person(shape=shape, style=style, light=light)


def look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) world -> camera rotation of a camera at ``centre`` looking at ``target`` (world, z up),
    level: the camera's x axis (image right) is horizontal and its y axis (image down) points down."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


@lru_cache(maxsize=16)
def studio_cameras(seed: int, subject: int, num_cameras: int, image_size: tuple[int, int]) -> tuple[Camera, ...]:
    """The subject's ``num_cameras`` calibrated cameras (cam_idx k is element k - 1); module docstring.

    The rig is drawn from ``seed`` alone (shared by all subjects); the subject's calibration moves
    each camera by a small random offset. Intrinsics are rounded to 0.01 px, so the stored cameras
    are exactly those used for rendering.
    """
    rig = _rng(seed, _RIG)
    calibration = _rng(seed, _RIG, subject)
    w, h = image_size
    start = rig.uniform(0.0, 360.0)
    cameras = []
    for k in range(num_cameras):
        azimuth = np.deg2rad(start + 360.0 * k / num_cameras + rig.normal(0.0, CAMERA_AZIMUTH_JITTER_DEG))
        radius = rig.uniform(*CAMERA_RADIUS_MM)
        centre = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), rig.uniform(*CAMERA_HEIGHT_MM)])
        target = np.array([0.0, 0.0, rig.uniform(*CAMERA_TARGET_HEIGHT_MM)])
        pitch, roll = np.clip(rig.normal(0.0, CAMERA_TILT_DEG, 2), -2 * CAMERA_TILT_DEG, 2 * CAMERA_TILT_DEG)
        f = w * rig.uniform(*FOCAL_PER_WIDTH)
        cx, cy = (w - 1) / 2 + rig.normal(0.0, 0.01 * w), (h - 1) / 2 + rig.normal(0.0, 0.01 * h)
        # this subject's calibration of the camera
        centre = centre + calibration.normal(0.0, CALIBRATION_JITTER_MM, 3)
        d_pitch, d_yaw, d_roll = calibration.normal(0.0, CALIBRATION_JITTER_DEG, 3)
        R = rot_x(pitch + d_pitch) @ rot_y(d_yaw) @ rot_z(roll + d_roll) @ look_at(centre, target)
        f = round(float(f * (1.0 + calibration.normal(0.0, 0.005))), 2)
        cx, cy = round(float(cx + calibration.normal(0.0, 0.5)), 2), round(float(cy + calibration.normal(0.0, 0.5)), 2)
        cameras.append(Camera(fx=f, fy=f, cx=cx, cy=cy, R=R, t=-R @ centre))
    return tuple(cameras)


@lru_cache(maxsize=16)
def view_background(
    seed: int, subject: int, cam_idx: int, image_size: tuple[int, int], clutter: float
) -> tuple[np.ndarray, float]:
    """((H, W, 3) float32 RGB background, blur sigma in px) of one camera: the same for every subject
    (``subject`` is accepted for symmetry with `studio_cameras` and not used)."""
    del subject
    rng = _rng(seed, _VIEW, cam_idx)
    background = render_background(rng, image_size, clutter)
    background.flags.writeable = False  # shared by every frame of the view
    return background, float(rng.uniform(0.2, MAX_BLUR_SIGMA))


# ----------------------------------------------------------------------------------------------
# motion


def mirror_pose(pose: dict[str, float]) -> dict[str, float]:
    """The left-right mirror image of a pose: sides swapped, sideways and twisting angles negated."""
    out = {}
    for name, value in pose.items():
        if name[:2] in ("l_", "r_"):
            out[("r_" if name[0] == "l" else "l_") + name[2:]] = value
        else:
            out[name] = -value if name in _MIRRORED else value
    return out


def keyframe_pose(seed: int, subject: int, action_idx: int, subaction_idx: int, k: int) -> tuple[np.ndarray, float]:
    """Keyframe k of a sequence: ((A,) angles, A = len(JOINT_LIMITS) in its order; balance weight 0 or 1).

    Walking keyframes lead with the left leg on even k and the right leg on odd k.
    """
    style = ACTION_STYLES[action_name(action_idx)]
    rng = _rng(seed, _KEYFRAME, subject, action_idx, subaction_idx, k)
    kind, pose = sample_pose(rng, style.kinds[int(rng.integers(len(style.kinds)))])
    if kind == "walk" and (pose["l_hip_flex"] >= 0) != (k % 2 == 0):
        pose = mirror_pose(pose)
    weight = 0.0 if kind in UNBALANCED_KINDS else 1.0
    return np.array([pose[name] for name in JOINT_LIMITS]), weight


def _partial_rotation(rotation: np.ndarray, fraction: float) -> np.ndarray:
    """The rotation about the same axis as ``rotation`` (3, 3) by ``fraction`` of its angle."""
    if fraction >= 1.0:
        return rotation
    angle = math.acos(min(max((np.trace(rotation) - 1.0) / 2.0, -1.0), 1.0))
    if fraction <= 0.0 or angle < 1e-9:
        return np.eye(3)
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    axis /= np.linalg.norm(axis)
    kx = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    a = fraction * angle
    return np.eye(3) + math.sin(a) * kx + (1.0 - math.cos(a)) * (kx @ kx)


def trajectory(rng: np.random.Generator, style: ActionStyle, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis floor position (T, 2) mm and heading (T,) degrees (0 faces +x, counterclockwise)
    at times (T,) s: round a loop for walkers, swaying about a spot for everyone else."""
    if style.walk_speed is not None:
        radius = rng.uniform(*WALK_RADIUS_MM)
        direction = 1.0 if rng.random() < 0.5 else -1.0
        theta = rng.uniform(0.0, 2 * np.pi) + direction * rng.uniform(*style.walk_speed) * 1000.0 / radius * times
        xy = radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        return xy, np.rad2deg(theta) + direction * 90.0
    distance, direction = SPOT_RADIUS_MM * math.sqrt(rng.random()), rng.uniform(0.0, 2 * np.pi)
    spot = distance * np.array([math.cos(direction), math.sin(direction)])  # uniform over the disc
    sway = rng.uniform(*SWAY_MM)
    rate, phases = rng.uniform(0.05, 0.25), rng.uniform(0.0, 2 * np.pi, 2)
    xy = spot + sway * np.sin(2 * np.pi * rate * times[:, None] + phases)
    return xy, rng.uniform(0.0, 360.0) + rng.uniform(-TURN_DEG_PER_S, TURN_DEG_PER_S) * times


def pose_in_world(shape: BodyShape, angles: np.ndarray, balance_weight: float, xy: np.ndarray, yaw: float) -> Skeleton:
    """Skeleton in the world frame: posed, balanced by balance_weight, turned to heading yaw (deg),
    pelvis above xy (2,) mm, lowest foot surface on the floor (z = 0)."""
    body = forward_kinematics(shape, dict(zip(JOINT_LIMITS, angles.tolist())))
    tilt = _partial_rotation(balance(body).frames["pelvis"], balance_weight)
    skeleton = body.transformed(rot_z(yaw) @ BODY_TO_WORLD @ tilt, np.zeros(3))
    z = skeleton.joints[:, 2]
    lowest = min(
        min(z[JOINT_INDEX[f"{side}_heel"]] - 1.1 * shape.r_foot, z[JOINT_INDEX[f"{side}_toe"]] - 0.85 * shape.r_foot)
        for side in ("left", "right")
    )  # the foot capsules' radii (appearance.figure_primitives)
    return skeleton.transformed(np.eye(3), np.array([xy[0], xy[1], -lowest]))


@lru_cache(maxsize=8)
def sequence_skeletons(
    seed: int, subject: int, action_idx: int, subaction_idx: int, frames: int
) -> tuple[Skeleton, ...]:
    """The world-frame skeletons of one (subject, action, subaction) sequence, one per frame."""
    style = ACTION_STYLES[action_name(action_idx)]
    rng = _rng(seed, _SEQUENCE, subject, action_idx, subaction_idx)
    spacing, offset = rng.uniform(*style.keyframe_s), rng.random()
    times = np.arange(frames) * FRAME_TIME_S
    xy, yaw = trajectory(rng, style, times)
    position = times / spacing + offset  # keyframe k sits at position k
    keys = [keyframe_pose(seed, subject, action_idx, subaction_idx, k) for k in range(int(position[-1]) + 2)]
    shape = subject_person(seed, subject).shape
    skeletons = []
    for i, p in enumerate(position):
        k = int(p)
        ease = (1.0 - math.cos(math.pi * (p - k))) / 2.0
        (a0, w0), (a1, w1) = keys[k], keys[k + 1]
        angles = a0 + ease * (a1 - a0)
        skeletons.append(pose_in_world(shape, angles, w0 + ease * (w1 - w0), xy[i], float(yaw[i])))
    return tuple(skeletons)


def sequence_joints(seed: int, subject: int, action_idx: int, subaction_idx: int, frames: int) -> np.ndarray:
    """(T, 17, 3) world joints in mm (H36M17 order) of one sequence of T = frames frames."""
    skeletons = sequence_skeletons(seed, subject, action_idx, subaction_idx, frames)
    return np.stack([s.joints[H36M_INDICES] for s in skeletons])


# ----------------------------------------------------------------------------------------------
# rendering and writing


def render_frame(
    params: dict, subject: int, action_idx: int, subaction_idx: int, cam_idx: int, frame_idx: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image: ((H, W, 3) uint8 RGB, (H, W) bool mask of the figure's visible pixels)."""
    seed, size = params["seed"], tuple(params["image_size"])
    w, h = size
    person = subject_person(seed, subject)
    camera = studio_cameras(seed, subject, params["num_cameras"], size)[cam_idx - 1]
    body = sequence_skeletons(seed, subject, action_idx, subaction_idx, params["frames"])[frame_idx]
    background, blur = view_background(seed, subject, cam_idx, size, params["clutter"])
    prims = figure_primitives(body.transformed(camera.R, camera.t), person.style, owner=0, near=NEAR_MM)
    colour, _, ids = rasterise(prims, camera=camera, background=background, light=camera.R @ person.light)
    rng = _rng(seed, _IMAGE, subject, action_idx, subaction_idx, cam_idx, frame_idx)
    img = cv2.GaussianBlur(colour, (0, 0), sigmaX=blur)
    img += noise_field(rng, h, w) * np.float32(rng.uniform(0.0, MAX_NOISE))
    np.clip(img, 0.0, 255.0, out=img)
    return (img + 0.5).astype(np.uint8), ids >= 0


def mask_box(mask: np.ndarray) -> list[int] | None:
    """[x, y, w, h] of a (H, W) bool mask's pixels (0-based columns / rows), None when empty."""
    xs, ys = np.nonzero(mask.any(axis=0))[0], np.nonzero(mask.any(axis=1))[0]
    if len(xs) == 0:
        return None
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def _render_image(task: tuple) -> list[int]:
    """Render and save one image; task = (image_dir, params, subject, action, subaction, cam, frame) -> bbox."""
    image_dir, params, subject, action_idx, subaction_idx, cam_idx, frame_idx = task
    name = image_file_name(subject, action_idx, subaction_idx, cam_idx, frame_idx)
    image, mask = render_frame(params, subject, action_idx, subaction_idx, cam_idx, frame_idx)
    box = mask_box(mask)
    if box is None:
        raise RuntimeError(f"{name}: the person is not in the image (camera {cam_idx} of subject {subject})")
    path = Path(image_dir) / name
    ok = cv2.imwrite(
        str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]]
    )
    if not ok:
        raise OSError(f"could not write {path}")
    return box


def _map(tasks: list[tuple], workers: int) -> list[list[int]]:
    return cache.parallel_map(_render_image, tasks, workers)


def h36m_generation_params(params: H36MParams) -> dict:
    """The manifest's parameters of a synthetic Human3.6M dataset: this writer's name and version
    and `H36MParams.cache_key` (also what each worker renders from)."""
    return {"generator": GENERATOR, "version": VERSION, **params.cache_key()}


def _views(params: dict, subject: int) -> list[tuple[int, int, int, int]]:
    """(action, subaction, cam, frame) of every image of a subject, in id order."""
    return [
        (action, sub, cam, frame)
        for action in params["actions"]
        for sub in range(1, params["subactions"] + 1)
        for cam in range(1, params["num_cameras"] + 1)
        for frame in range(params["frames"])
    ]


def _write_subject(out: Path, params: dict, subject: int, boxes: list[list[int]], first_id: int) -> dict:
    """The three annotation files of one subject; boxes in ``_views`` order. Returns its summary."""
    seed, (w, h) = params["seed"], params["image_size"]
    images, annotations = [], []
    for i, ((action, sub, cam, frame), box) in enumerate(zip(_views(params, subject), boxes)):
        image_id = first_id + i
        images.append(
            {
                "id": image_id,
                "file_name": image_file_name(subject, action, sub, cam, frame),
                "width": w,
                "height": h,
                "subject": subject,
                "action_name": action_name(action),
                "action_idx": action,
                "subaction_idx": sub,
                "cam_idx": cam,
                "frame_idx": frame,
            }
        )
        annotations.append(
            {"id": image_id, "image_id": image_id, "keypoints_vis": [True] * H36M17.num_keypoints, "bbox": box}
        )
    cameras = studio_cameras(seed, subject, params["num_cameras"], (w, h))
    joints = {
        str(action): {
            str(sub): {
                str(frame): np.round(points, 3).tolist()
                for frame, points in enumerate(sequence_joints(seed, subject, action, sub, params["frames"]))
            }
            for sub in range(1, params["subactions"] + 1)
        }
        for action in params["actions"]
    }
    data_file, camera_file, joint_file = (out / name for name in annotation_files(subject))
    data_file.write_text(json.dumps({"images": images, "annotations": annotations}, separators=(",", ":")))
    camera_file.write_text(json.dumps({str(k + 1): c.to_h36m_json() for k, c in enumerate(cameras)}))
    joint_file.write_text(json.dumps(joints, separators=(",", ":")))
    return {"images": len(images), "annotations": len(annotations)}


def _write_dataset(out: Path, params: dict, workers: int) -> dict:
    (out / "annotations").mkdir(parents=True)
    image_dir = out / "images"
    for subject in params["subjects"]:
        for action, sub, cam, _ in _views(params, subject):
            (image_dir / sequence_dir(subject, action, sub, cam)).mkdir(parents=True, exist_ok=True)
    tasks = [(str(image_dir), params, s, *view) for s in params["subjects"] for view in _views(params, s)]
    boxes = _map(tasks, workers)
    summary, start = {}, 0
    for subject in params["subjects"]:
        count = len(_views(params, subject))
        summary[f"S{subject}"] = _write_subject(out, params, subject, boxes[start : start + count], start)
        start += count
    return summary


def ensure_synthetic_h36m(
    root: str | Path,
    params: H36MParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic Human3.6M dataset for these parameters; return root.

    ``params`` (`H36MParams`) and ``options``, keyword arguments named as its fields that replace
    some of them, give the dataset; an unknown or out-of-range one is a ValueError naming it.
    Returns at once when the manifest matches (same generator version and parameters); otherwise
    renders len(subjects) x len(actions) x subactions x num_cameras x frames images (into a
    temporary folder, then renamed into place). ``workers`` (default: available cores, at most 8)
    and ``force`` do not change the output.

    Raises:
        ValueError: a parameter is unknown or out of range.
        FileExistsError: root exists, is not empty and was not written by this generator.
    """
    key = h36m_generation_params(H36MParams.from_options(params, **options))
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=VERSION,
        params=key,
        write=lambda out: _write_dataset(out, key, workers if workers is not None else cache.default_workers()),
        required=[name for s in key["subjects"] for name in annotation_files(s)],
        force=force,
        what="synthetic Human3.6M dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_h36m,
        H36MParams,
        argv,
        description="Generate the synthetic Human3.6M-format dataset (3DMPPE layout).",
        default_root="data/synthetic_h36m",
        what="synthetic Human3.6M dataset",
        count="annotations",
    )


if __name__ == "__main__":
    main()
