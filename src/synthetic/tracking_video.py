"""A synthetic video for tracking and smoothing: people on known paths with stable identities.

`render_tracking_video` renders T frames of P = 4 people from one fixed camera (``stage``: a
calibrated camera 1.0-1.5 m above a floor, looking across it), each person in a lane of the
image of their own, so that who meets whom is fixed by the plan:

* ``cross`` (two people): one near, one farther, walk across the middle of the image in opposite
  directions and pass each other half-way through the clip; the nearer one hides the farther;
* ``reenter``: walks out of the image at the right edge (from a pelvis beyond 1.04 W fewer than 3
  joints show), turns round wholly outside it and walks back in, the pelvis beyond 1.04 W for
  ``away_frames`` frames: out of sight for a few frames more than that;
* ``steady``: stands near the left edge, waving, raising the arms or standing, swaying a little.

Sizes are given in pixels (the standing stature of each person at their depth), so that they
resemble the synthetic training images of `src.synthetic.scene` (statures 50-240 px in 320x256
images): the depth follows from the camera's focal length. Walkers face the way they go, turned
20 degrees towards the camera (a three-quarter view), with the walking keyframes of
`figure.sample_pose` alternating the leading leg; joint angles ease between keyframes as in the
MuPoTS writer. Rendering, visibility and image noise are `stage.render_figures`'s.

Ground truth per frame and person, in COCO-17 order: keypoints (x, y) with COCO's visibility
(0 outside the image, 1 inside but hidden, 2 visible; `scene.joint_visibility`'s rule), the
whole-person box (`stage.body_box`, hidden parts included, cut to the image), the visible area
in pixels (COCO's ``area``: the mask's pixel count) and ``present``: at least ``min_visible``
visible joints. `coco_ground_truth` writes the present people as a COCO keypoint dataset with
one image per frame (image id = frame index) and the person's ``track_id``.

Everything is drawn from random streams seeded by (seed, tag, person, ...) only: the same seed
gives the same video, frame for frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from src.camera import Camera
from src.synthetic.appearance import sample_style
from src.synthetic.background import render_background
from src.synthetic.coco_writer import coco_categories
from src.synthetic.figure import layout_indices, sample_body_shape, sample_pose
from src.synthetic.h36m_writer import mirror_pose
from src.synthetic.stage import (
    MAX_BLUR_SIGMA,
    Figure,
    body_box,
    pose_angles,
    render_figures,
    sample_stage_camera,
    scene_light,
    stand_at,
)

COCO_INDICES = layout_indices("coco17")  # (17,) superset joints in COCO-17 order
ROLES = ("cross", "reenter", "steady")

STEP_S = (0.45, 0.6)  # a walking step (half a gait cycle), as the MuPoTS writer
STEADY_KINDS = ("stand", "wave", "arms_raised")
STEADY_KEYFRAME_S = (0.8, 1.4)
THREE_QUARTER_DEG = 20.0  # walkers turn this far towards the camera from their walking direction
SWAY_PX = 4.0  # the steady person's sideways sway, pixels
REENTER_SHARE = 0.9  # the re-entering person's column at the start and the end (share of the width)
EXIT_SHARE = 1.04  # beyond this column fewer than 3 joints of a person of about 110 px stature show
TURN_SHARE = 1.2  # where they turn round, wholly outside the image

# Random stream tags: every stream is SeedSequence([seed, tag, ...]).
_SCENE, _LOOKS, _MOTION, _KEYFRAME, _FRAME = range(5)


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


@dataclass(frozen=True)
class Lane:
    """One person's plan: role, standing stature (px), and the image column of the pelvis over
    the clip as a piecewise-linear path through (frame, column as a share of the width) points;
    ``facing``: +1 walking towards image right at the start, -1 left, 0 standing."""

    role: str
    stature_px: float
    path: tuple[tuple[float, float], ...]
    facing: int


def plan_lanes(frames: int, away_frames: int) -> tuple[Lane, ...]:
    """The four lanes of the clip (module docstring), for ``frames`` frames; the re-entering person's
    pelvis is beyond `EXIT_SHARE` of the width for ``away_frames`` of them, around the middle."""
    last = frames - 1
    mid = last / 2
    # the re-entering person walks to EXIT_SHARE, on out of sight to TURN_SHARE in away_frames / 2
    # frames, and back the same way
    leave = max(1.0, mid - away_frames / 2)
    return (
        Lane("cross", 130.0, ((0, 0.32), (last, 0.6)), +1),
        Lane("cross", 92.0, ((0, 0.6), (last, 0.32)), -1),
        Lane(
            "reenter",
            108.0,
            (
                (0, REENTER_SHARE),
                (leave, EXIT_SHARE),
                (mid, TURN_SHARE),
                (last - leave, EXIT_SHARE),
                (last, REENTER_SHARE),
            ),
            +1,
        ),
        Lane("steady", 100.0, ((0, 0.07), (last, 0.07)), 0),
    )


def lane_columns(lane: Lane, frames: int, width: int) -> np.ndarray:
    """(T,) pelvis column (px) of a lane in each frame."""
    t, share = zip(*lane.path)
    return np.interp(np.arange(frames), t, share) * width


def lane_headings(lane: Lane, columns: np.ndarray) -> np.ndarray:
    """(T,) headings (deg; 180 faces the camera, world +y is image left): walkers face the way they
    move, turned towards the camera; a walker who stops keeps their last heading."""
    if lane.facing == 0:
        return np.full(len(columns), 180.0)
    step = np.diff(columns, prepend=columns[0])
    direction = np.where(step > 0, 1, np.where(step < 0, -1, 0))
    last = lane.facing
    out = np.empty(len(columns))
    for i, d in enumerate(direction):
        last = d if d != 0 else last
        # towards image right is world -y (heading -90), left +y (+90); then turn to the camera
        out[i] = -90.0 - THREE_QUARTER_DEG if last > 0 else 90.0 + THREE_QUARTER_DEG
    return out


@dataclass(frozen=True)
class TrackingClip:
    """A rendered tracking video: T frames, P people (row p is the same person in every frame), K =
    17 COCO joints.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        fps: frames per second.
        camera: the fixed camera.
        roles: (P,) each person's role (``ROLES``).
        keypoints: (T, P, K, 2) pixels (meaningful where visibility > 0).
        visibility: (T, P, K) int, 0 outside the image, 1 hidden, 2 visible.
        boxes: (T, P, 4) [x, y, w, h] of the whole person cut to the image; NaN when out of it.
        areas: (T, P) visible pixels of each person.
        owners: (T, H, W) int8, the person each pixel shows (-1: the background).
        present: (T, P) bool, at least ``min_visible`` visible joints (the people a tracker is
            expected to report).
        stature_px: (P,) standing statures in pixels.
    """

    frames: np.ndarray
    fps: float
    camera: Camera
    roles: tuple[str, ...]
    keypoints: np.ndarray
    visibility: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    owners: np.ndarray
    present: np.ndarray
    stature_px: np.ndarray

    @property
    def people(self) -> int:
        return len(self.roles)

    def people_of(self, role: str) -> list[int]:
        """The rows of the people with ``role``."""
        return [p for p, r in enumerate(self.roles) if r == role]


def _walk_key(seed: int, person: int, k: int) -> tuple[np.ndarray, float]:
    """Walking keyframe k of a person: (angles, balance weight), the left leg leading on even k."""
    _, pose = sample_pose(_rng(seed, _KEYFRAME, person, k), "walk")
    if (pose["l_hip_flex"] >= 0) != (k % 2 == 0):
        pose = mirror_pose(pose)
    return pose_angles(pose, "walk")


def _steady_key(seed: int, person: int, k: int) -> tuple[np.ndarray, float]:
    rng = _rng(seed, _KEYFRAME, person, k)
    kind, pose = sample_pose(rng, STEADY_KINDS[int(rng.integers(len(STEADY_KINDS)))])
    return pose_angles(pose, kind)


def _eased_poses(seed: int, person: int, frames: int, fps: float, walking: bool) -> list[tuple[np.ndarray, float]]:
    """(angles, balance weight) of a person in each frame: keyframes eased (cosine) into each other."""
    rng = _rng(seed, _MOTION, person)
    spacing = rng.uniform(*(STEP_S if walking else STEADY_KEYFRAME_S))
    position = np.arange(frames) / fps / spacing + rng.random()  # keyframe k sits at position k
    key = _walk_key if walking else _steady_key
    keys = [key(seed, person, k) for k in range(int(position[-1]) + 2)]
    out = []
    for p in position:
        k = int(p)
        ease = (1.0 - math.cos(math.pi * (p - k))) / 2.0
        (a0, w0), (a1, w1) = keys[k], keys[k + 1]
        out.append((a0 + ease * (a1 - a0), w0 + ease * (w1 - w0)))
    return out


def default_away_frames(frames: int) -> int:
    """The re-entering person's frames beyond `EXIT_SHARE` in a clip of ``frames``: 15 % of them."""
    return round(0.15 * frames)


def render_tracking_video(
    seed: int = 0,
    *,
    frames: int = 100,
    image_size: tuple[int, int] = (320, 256),
    fps: float = 25.0,
    away_frames: int | None = None,
    min_visible: int = 3,
    clutter: float = 0.6,
) -> TrackingClip:
    """Render the tracking video (module docstring) in memory.

    Args:
        seed: fixes the camera, scene, the people's looks and their poses.
        frames: T, at least 20 (the people need room to cross and to leave and come back).
        image_size: (w, h) pixels.
        fps: frames per second (the gait's timing).
        away_frames: frames the re-entering person's pelvis spends beyond `EXIT_SHARE` of the width
            (None: 15 % of the frames).
        min_visible: visible joints that make a person present in a frame.
        clutter: background shapes (as the synthetic datasets).
    """
    if frames < 20:
        raise ValueError(f"a tracking video needs at least 20 frames, got {frames}")
    if away_frames is None:
        away_frames = default_away_frames(frames)
    if not 0 <= away_frames <= frames - 12:
        raise ValueError(f"away_frames must lie in [0, frames - 12] = [0, {frames - 12}], got {away_frames}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    w, h = int(image_size[0]), int(image_size[1])
    if min(w, h) < 64:
        raise ValueError(f"image_size must be at least 64 x 64, got {image_size}")
    rng = _rng(seed, _SCENE)
    camera = sample_stage_camera(rng, (w, h))
    light = scene_light(rng)
    background = render_background(rng, (w, h), clutter)
    blur = float(rng.uniform(0.2, MAX_BLUR_SIGMA))
    lanes = plan_lanes(frames, away_frames)
    tracks: list[list[Figure]] = []
    for p, lane in enumerate(lanes):
        looks = _rng(seed, _LOOKS, p)
        shape, style = sample_body_shape(looks), sample_style(looks)
        depth = camera.fx * shape.height / lane.stature_px
        columns = lane_columns(lane, frames, w)
        if lane.facing == 0:  # a slow sideways sway
            columns = columns + SWAY_PX * np.sin(2 * np.pi * 0.3 * np.arange(frames) / fps + looks.uniform(0, 6.3))
        headings = lane_headings(lane, columns)
        poses = _eased_poses(seed, p, frames, fps, walking=lane.facing != 0)
        track = []
        for t in range(frames):
            angles, weight = poses[t]
            skeleton, _ = stand_at(
                camera, shape, angles, weight, float(headings[t]), depth=depth, column=float(columns[t])
            )
            track.append(Figure(skeleton=skeleton, style=style, pose_kind="walk" if lane.facing else "stand"))
        tracks.append(track)

    k = len(COCO_INDICES)
    images = np.zeros((frames, h, w, 3), np.uint8)
    keypoints = np.zeros((frames, len(lanes), k, 2))
    visibility = np.zeros((frames, len(lanes), k), np.int64)
    boxes = np.full((frames, len(lanes), 4), np.nan)
    areas = np.zeros((frames, len(lanes)))
    owners = np.full((frames, h, w), -1, np.int8)
    for t in range(frames):
        scene = render_figures(
            camera,
            [track[t] for track in tracks],
            background=background,
            light=light,
            blur_sigma=blur,
            noise_rng=_rng(seed, _FRAME, t),
        )
        images[t] = scene.image
        for p, person in enumerate(scene.persons):
            keypoints[t, p] = person.joints_2d[COCO_INDICES]
            visibility[t, p] = person.visibility[COCO_INDICES]
            areas[t, p] = float(person.mask.sum())
            owners[t][person.mask] = p
            box = body_box(person.joints_2d, (w, h))
            if box is not None and visibility[t, p].any():
                boxes[t, p] = box
    present = (visibility == 2).sum(axis=-1) >= min_visible
    return TrackingClip(
        frames=images,
        fps=float(fps),
        camera=camera,
        roles=tuple(lane.role for lane in lanes),
        keypoints=keypoints,
        visibility=visibility,
        boxes=boxes,
        areas=areas,
        owners=owners,
        present=present,
        stature_px=np.array([lane.stature_px for lane in lanes]),
    )


def coco_ground_truth(clip: TrackingClip) -> dict:
    """The present people of every frame as a COCO person-keypoint dataset (image id = frame index;
    annotations add ``track_id``, the person's row): keypoints [x, y, v] with v as the clip's
    visibility (hidden and outside joints as COCO writes them: outside as 0, 0, 0), the
    whole-person box and the visible area."""
    frames, height, width = clip.frames.shape[:3]
    images = [{"id": t, "file_name": f"frame_{t:06d}", "width": width, "height": height} for t in range(frames)]
    annotations = []
    for t in range(frames):
        for p in np.flatnonzero(clip.present[t]).tolist():
            vis = clip.visibility[t, p]
            flat = []
            for (x, y), v in zip(clip.keypoints[t, p], vis):
                flat += [round(float(x), 2), round(float(y), 2), int(v)] if v > 0 else [0, 0, 0]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": t,
                    "category_id": 1,
                    "iscrowd": 0,
                    "track_id": p,
                    "keypoints": flat,
                    "num_keypoints": int((vis > 0).sum()),
                    "bbox": [float(v) for v in clip.boxes[t, p]],
                    "area": float(clip.areas[t, p]),
                }
            )
    return {"images": images, "annotations": annotations, "categories": coco_categories()}


def boxes_meet(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two [x, y, w, h] boxes overlap (NaN boxes never do)."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return False
    return bool(a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])


def meetings(clip: TrackingClip) -> np.ndarray:
    """(P, P) bool: whether two people's boxes overlap in some frame in which both are present (the
    people who cross); the diagonal is False."""
    met = np.zeros((clip.people, clip.people), bool)
    for t in range(len(clip.frames)):
        for a in range(clip.people):
            for b in range(a + 1, clip.people):
                if clip.present[t, a] and clip.present[t, b] and boxes_meet(clip.boxes[t, a], clip.boxes[t, b]):
                    met[a, b] = met[b, a] = True
    return met
