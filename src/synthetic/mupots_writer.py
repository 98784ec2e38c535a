"""Write (or reuse) a synthetic MuPoTS-3D test set in the 3DMPPE repository's layout, and render
its short videos directly (`render_sequence`).

Layout under ``root``::

    data/MuPoTS-3D.json                               images and annotations (COCO style)
    data/MultiPersonTestSet/TS<k>/img_%06d.jpg        frames of sequence k = 1..num_sequences, from 0
    manifest.json                                     generator version + hash of every parameter

``images[]``: {id, file_name 'TS<k>/img_xxxxxx.jpg' (relative to data/MultiPersonTestSet),
width, height, intrinsic [fx, fy, cx, cy]}; ``annotations[]``: {id, image_id, keypoints_cam
(17 x [X, Y, Z], camera frame, mm), keypoints_img (17 x [u, v], px), keypoints_vis (17 booleans),
bbox [x, y, w, h], is_valid, person_id}, joints in MUPOTS17 order (root: pelvis, 14) taken from
the figure's joints through ``LAYOUT_JOINTS["mupots17"]``. Every frame has one annotation per
person of its sequence, in the same order (``person_id``, 0-based within the sequence, is our
addition). Image and annotation ids count from 0 over sequences, frames (and people).

A sequence is ``frames`` frames, 1 / fps s apart, from one fixed camera (``stage``: 1.0-1.5 m
high, intrinsics as ``camera.sample_camera``) with one background, light and blur, of
``min_people``..``max_people`` people who keep their body, clothing and colours in every frame.
Each person stands at their own distance (one per equal bin of [min_depth_mm, max_depth_mm]),
placed so that in the middle frame ((frames - 1) // 2) the pelvis is exactly at that camera depth
and projects within 18 % of the image width of its centre, so people cross each other's line of
sight and the nearer one hides the farther. A person either walks (60 %) across the view, within
12 degrees of the image plane, facing the way they go, at 0.6-1.3 m/s but at most 0.7 of the
image's width at their depth over the sequence; or turns (up to 60 deg/s) on a spot, swaying by
30-150 mm. Joint angles ease (cosine) between keyframe poses of ``figure.sample_pose`` as in
``h36m_writer``'s sequences: walking steps alternating the leading leg every 0.45-0.6 s, or
standing, waving, raising the arms or crouching every 0.8-1.5 s.

keypoints_cam is rounded to 0.001 mm and keypoints_img is its pinhole projection with the stored
intrinsics, rounded to 0.001 px; keypoints_vis is true where the joint projects inside the image
and is not occluded (``scene``'s rule). bbox is the box of the whole person, hidden parts included
(`stage.body_box`: the projected joints, padded, cut to the image), as a box made from the
annotated body. is_valid is false
when the person has no visible pixel or their pelvis projects outside the image (they are
leaving it), true otherwise.

Sequence k is planned from random streams seeded by (seed, k) and (seed, k, person) only (each
person's body and clothing from a stream of their own, so person p keeps their looks when the
number of people changes); frame t adds its noise from (seed, k, t). The output therefore does
not depend on the order or number of worker processes. Caching and the manifest (fps included)
are ``cache.ensure_cached``'s.

CLI: ``python -m src.synthetic.mupots_writer --root data/synthetic_mupots [--num-sequences K --frames T]``
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from src.camera import Camera
from src.synthetic import cache
from src.synthetic.appearance import sample_style
from src.synthetic.background import render_background
from src.synthetic.figure import BodyShape, Skeleton, layout_indices, sample_body_shape, sample_pose
from src.synthetic.h36m_writer import mirror_pose, pose_in_world
from src.synthetic.params import SyntheticParams, knob
from src.synthetic.scene import NEAR_MM, Scene, sample_yaw
from src.synthetic.stage import (
    MAX_BLUR_SIGMA,
    PELVIS,
    Figure,
    body_box,
    inside_image,
    pose_angles,
    project_rounded,
    render_figures,
    sample_stage_camera,
    scene_light,
    spread_depths,
    stand_at,
)

GENERATOR = "src.synthetic.mupots"
VERSION = 2  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
ANNOTATION_FILE = "data/MuPoTS-3D.json"
IMAGE_DIR = "data/MultiPersonTestSet"
MUPOTS_INDICES = layout_indices("mupots17")  # (17,) superset joints in MUPOTS17 order

WALK_PROB = 0.6
WALK_SPEED_MM_S = (600.0, 1300.0)
WALK_TRAVEL_FRAC = 0.7  # at most this share of the image width at the person's depth per sequence
WALK_ANGLE_DEG = 12.0  # largest angle between a walk and the image plane
STEP_S = (0.45, 0.6)  # a walking step (half a gait cycle), as h36m_writer
TURN_KINDS = ("stand", "wave", "arms_raised", "crouch")
TURN_KEYFRAME_S = (0.8, 1.5)
TURN_DEG_S = 60.0
SWAY_MM = (30.0, 150.0)
CENTRE_SPREAD = 0.18  # middle-frame image column: centre +- this share of the width
FACING_CAMERA_PROB = 0.85

# Random stream tags: every stream is SeedSequence([seed, tag, sequence, ...]).
_SEQUENCE, _LOOKS, _MOTION, _KEYFRAME, _FRAME = range(5)


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


@dataclass(frozen=True, kw_only=True)
class MuPoTSParams(SyntheticParams):
    """The synthetic MuPoTS-3D test set: short videos of a few people from fixed cameras."""

    WHAT: ClassVar[str] = "synthetic MuPoTS-3D"

    num_sequences: int = knob(4, "sequences TS1..TS<k>")
    frames: int = knob(30, "frames per sequence")
    image_size: tuple[int, int] = knob((320, 256), "image width and height in pixels", metavar=("W", "H"))
    min_people: int = knob(2, "fewest people in a sequence")
    max_people: int = knob(3, "most people in a sequence")
    fps: float = knob(10.0, "frames per second")
    min_depth_mm: float = knob(2000.0, "nearest camera distance of a person's pelvis in the middle frame (mm)")
    max_depth_mm: float = knob(8000.0, "farthest camera distance of a person's pelvis in the middle frame (mm)")
    clutter: float = knob(0.6, "background shapes, lines and limb-like sticks (1.0: full)")
    jpeg_quality: int = knob(92, "JPEG quality of the images")

    def check(self) -> None:
        super().check()
        self.require_range("num_sequences", 1, 99)
        self.require_range("frames", 1, 999_999)
        self.require_range("max_people", 1, 20)
        self.require_range("min_people", 1, self.max_people)
        if min(self.image_size) < 32:
            self.fail("image_size", "at least 32 x 32 (w, h)")
        self.require_range("fps", 0.1, 1000.0)
        self.require_range("min_depth_mm", 1000.0)
        self.require_range("max_depth_mm", self.min_depth_mm + 100.0)
        self.require_range("clutter", 0)
        self.require_range("jpeg_quality", 1, 100)


# ----------------------------------------------------------------------------------------------
# planning a sequence: camera, people, motion


@dataclass(frozen=True)
class SequenceSpec:
    """What fixes one sequence's content (hashable: plans are cached per process).

    ``people`` / ``depths_mm`` replace the random count and middle-frame depths (mm) of the people.
    """

    seed: int
    sequence: int
    frames: int
    image_size: tuple[int, int]
    fps: float
    min_people: int
    max_people: int
    min_depth_mm: float
    max_depth_mm: float
    clutter: float
    people: int | None = None
    depths_mm: tuple[float, ...] | None = None


def sequence_spec(
    params: dict, sequence: int, *, people: int | None = None, depths_mm: tuple | None = None
) -> SequenceSpec:
    """The `SequenceSpec` of sequence k (1-based) of a dataset with parameters ``params``
    (`mupots_generation_params` or `MuPoTSParams.as_json`)."""
    return SequenceSpec(
        seed=params["seed"],
        sequence=sequence,
        frames=params["frames"],
        image_size=(int(params["image_size"][0]), int(params["image_size"][1])),
        fps=float(params["fps"]),
        min_people=params["min_people"],
        max_people=params["max_people"],
        min_depth_mm=float(params["min_depth_mm"]),
        max_depth_mm=float(params["max_depth_mm"]),
        clutter=float(params["clutter"]),
        people=people,
        depths_mm=depths_mm,
    )


@dataclass(frozen=True)
class SequencePlan:
    """One sequence: its camera, scene and the world-frame figures of every frame (T frames, P people)."""

    camera: Camera
    light: np.ndarray  # (3,) camera frame, towards the light
    background: np.ndarray  # (H, W, 3) float32
    blur_sigma: float
    figures: tuple[tuple[Figure, ...], ...]  # [t][p]


def _keyframe(spec: SequenceSpec, person: int, k: int, walker: bool) -> tuple[np.ndarray, float, str]:
    """Keyframe k of a person: ((A,) angles, balance weight, kind); walking keys alternate the leading
    leg (left on even k)."""
    rng = _rng(spec.seed, _KEYFRAME, spec.sequence, person, k)
    kind, pose = sample_pose(rng, "walk" if walker else TURN_KINDS[int(rng.integers(len(TURN_KINDS)))])
    if walker and (pose["l_hip_flex"] >= 0) != (k % 2 == 0):
        pose = mirror_pose(pose)
    angles, weight = pose_angles(pose, kind)
    return angles, weight, kind


def _person_frames(
    spec: SequenceSpec, camera: Camera, person: int, depth: float, shape: BodyShape
) -> list[tuple[Skeleton, str]]:
    """(world skeleton, pose kind) of one person in each of the T frames (module docstring)."""
    w = spec.image_size[0]
    rng = _rng(spec.seed, _MOTION, spec.sequence, person)
    walker = bool(rng.random() < WALK_PROB)
    column = w * (0.5 + rng.uniform(-CENTRE_SPREAD, CENTRE_SPREAD))
    times = np.arange(spec.frames) / spec.fps
    middle = (spec.frames - 1) // 2
    spacing = rng.uniform(*(STEP_S if walker else TURN_KEYFRAME_S))
    position = times / spacing + rng.random()  # keyframe k sits at position k
    keys = [_keyframe(spec, person, k, walker) for k in range(int(position[-1]) + 2)]
    duration = times[-1] if spec.frames > 1 else 0.0
    rel = times - times[middle]
    if walker:
        side = 90.0 if rng.random() < 0.5 else -90.0  # world +y is image left, -y image right
        heading = np.full(spec.frames, side + rng.uniform(-WALK_ANGLE_DEG, WALK_ANGLE_DEG))
        cap = WALK_TRAVEL_FRAC * w * depth / camera.fx / duration if duration > 0 else math.inf
        speed = min(rng.uniform(*WALK_SPEED_MM_S), cap)
        direction = np.array([math.cos(math.radians(heading[0])), math.sin(math.radians(heading[0]))])
        drift = speed * rel[:, None] * direction
    else:
        facing = 180.0 + sample_yaw(rng, FACING_CAMERA_PROB)  # heading 180 faces the camera
        heading = facing + rng.uniform(-TURN_DEG_S, TURN_DEG_S) * rel
        sway, rate, phase = rng.uniform(*SWAY_MM), rng.uniform(0.1, 0.3), rng.uniform(0.0, 2 * np.pi, 2)
        wave = np.sin(2 * np.pi * rate * times[:, None] + phase)
        drift = sway * (wave - wave[middle])

    def posed(i: int) -> tuple[np.ndarray, float, str]:
        k = int(position[i])
        ease = (1.0 - math.cos(math.pi * (position[i] - k))) / 2.0
        (a0, w0, kind0), (a1, w1, kind1) = keys[k], keys[k + 1]
        return a0 + ease * (a1 - a0), w0 + ease * (w1 - w0), kind0 if ease < 0.5 else kind1

    angles, weight, _ = posed(middle)
    _, xy = stand_at(camera, shape, angles, weight, float(heading[middle]), depth=depth, column=column)
    out = []
    for i in range(spec.frames):
        angles, weight, kind = posed(i)
        out.append((pose_in_world(shape, angles, weight, xy + drift[i], float(heading[i])), kind))
    return out


@lru_cache(maxsize=8)
def sequence_plan(spec: SequenceSpec) -> SequencePlan:
    """Camera, background, light and every frame's figures of one sequence (module docstring)."""
    rng = _rng(spec.seed, _SEQUENCE, spec.sequence)
    camera = sample_stage_camera(rng, spec.image_size)
    light = scene_light(rng)
    background = render_background(rng, spec.image_size, spec.clutter)
    background.flags.writeable = False  # shared by every frame
    blur = float(rng.uniform(0.2, MAX_BLUR_SIGMA))
    count = int(rng.integers(spec.min_people, spec.max_people + 1))  # drawn even when people is given
    if spec.depths_mm is not None:
        depths = np.asarray(spec.depths_mm, dtype=np.float64)
    else:
        depths = spread_depths(rng, spec.people or count, spec.min_depth_mm, spec.max_depth_mm)
    tracks = []
    for p, depth in enumerate(depths):
        looks = _rng(spec.seed, _LOOKS, spec.sequence, p)
        shape, style = sample_body_shape(looks), sample_style(looks)
        frames = _person_frames(spec, camera, p, float(depth), shape)
        tracks.append([Figure(skeleton=s, style=style, pose_kind=kind) for s, kind in frames])
    figures = tuple(tuple(track[t] for track in tracks) for t in range(spec.frames))
    return SequencePlan(camera=camera, light=light, background=background, blur_sigma=blur, figures=figures)


def render_frame(spec: SequenceSpec, t: int) -> Scene:
    """Frame t (0-based) of a sequence; its persons in the sequence's person order."""
    plan = sequence_plan(spec)
    return render_figures(
        plan.camera,
        list(plan.figures[t]),
        background=plan.background,
        light=plan.light,
        blur_sigma=plan.blur_sigma,
        noise_rng=_rng(spec.seed, _FRAME, spec.sequence, t),
    )


# ----------------------------------------------------------------------------------------------
# ground truth of a frame


@dataclass(frozen=True)
class FramePerson:
    """One person in one frame, K joints of the chosen layout.

    Attributes:
        joints_cam: (K, 3) camera frame, mm (rounded to 0.001).
        joints_img: (K, 2) their projections, px (rounded to 0.001).
        visible: (K,) bool, inside the image and not occluded.
        box: [x, y, w, h] of the visible pixels (of the projected joints when none is visible).
        valid: the person has visible pixels and the pelvis projects inside the image.
        mask: (H, W) bool, the visible pixels.
    """

    joints_cam: np.ndarray
    joints_img: np.ndarray
    visible: np.ndarray
    box: list[int]
    valid: bool
    mask: np.ndarray


def frame_people(scene: Scene, indices: np.ndarray = MUPOTS_INDICES) -> list[FramePerson]:
    """Ground truth of every person of a frame (the scene's order); ``indices`` (K,): superset joints."""
    h, w = scene.image.shape[:2]
    out = []
    for person in scene.persons:
        cam, uv = project_rounded(scene.camera, person.joints_3d[indices])
        inside = inside_image(uv, (w, h))
        box = body_box(person.joints_2d, (w, h))
        root_uv = scene.camera.project(person.joints_3d[PELVIS][None])[0]
        root_inside = person.joints_3d[PELVIS, 2] > NEAR_MM and bool(inside_image(root_uv[None], (w, h))[0])
        if box is None:  # nobody of this person in the image (then not valid either)
            lo, hi = np.floor(uv.min(axis=0)), np.ceil(uv.max(axis=0))
            box = [int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)]
        out.append(
            FramePerson(
                joints_cam=cam,
                joints_img=uv,
                visible=(person.visibility[indices] == 2) & inside,
                box=box,
                valid=bool(person.mask.any() and root_inside),
                mask=person.mask,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# a sequence in memory


@dataclass(frozen=True)
class Clip:
    """A rendered sequence: T frames, P people (row p of every per-person array is the same person
    in every frame), K joints of the chosen layout.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        camera: the fixed camera (intrinsics; R, t: world -> camera, world z up, floor z = 0).
        fps: frames per second.
        person_ids: (T, P) int, the person of each row (0..P-1 in every frame).
        joints_cam: (T, P, K, 3) camera frame, mm.
        joints_img: (T, P, K, 2) pixels, the projections of joints_cam.
        visible: (T, P, K) bool, inside the image and not occluded.
        valid: (T, P) bool, as the written is_valid.
        boxes: (T, P, 4) int [x, y, w, h], the whole person cut to the image (`stage.body_box`).
        masks: (T, P, H, W) bool, the visible pixels.
    """

    frames: np.ndarray
    camera: Camera
    fps: float
    person_ids: np.ndarray
    joints_cam: np.ndarray
    joints_img: np.ndarray
    visible: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray


def render_sequence(
    seed: int = 0,
    sequence: int = 1,
    *,
    people: int | None = None,
    depths_mm: tuple[float, ...] | list[float] | None = None,
    frames: int = 30,
    image_size: tuple[int, int] = (320, 256),
    fps: float = 10.0,
    min_people: int = 2,
    max_people: int = 3,
    min_depth_mm: float = 2000.0,
    max_depth_mm: float = 8000.0,
    clutter: float = 0.6,
    layout: str = "mupots17",
) -> Clip:
    """Render one sequence in memory, without writing files (a test video with known ground truth).

    Sequence k is, frame for frame, the written TS<k> of a dataset with the same parameters.
    ``people`` fixes the number of people (else min_people..max_people at random), ``depths_mm``
    the camera depth (mm) of each person's pelvis in the middle frame (and with it the number),
    e.g. ``depths_mm=(2500, 4500, 6500)``. ``layout``: the joints returned (any layout of
    ``figure.LAYOUT_JOINTS``; default the 17 MuPoTS joints).

    Raises:
        ValueError: a parameter out of range (as `MuPoTSParams`), sequence < 1, or ``people`` and
            ``depths_mm`` disagree.
    """
    depths = None if depths_mm is None else tuple(float(d) for d in depths_mm)
    if depths is not None:
        if people is not None and people != len(depths):
            raise ValueError(f"people={people} but depths_mm has {len(depths)} values")
        if not depths or min(depths) <= NEAR_MM:
            raise ValueError(f"depths_mm must be at least one depth beyond {NEAR_MM} mm, got {depths_mm!r}")
    if people is not None and people < 1:
        raise ValueError(f"people must be >= 1, got {people}")
    if sequence < 1:
        raise ValueError(f"sequence must be >= 1 (TS1, TS2, ...), got {sequence}")
    checked = MuPoTSParams(
        seed=seed,
        frames=frames,
        image_size=tuple(image_size),
        fps=fps,
        min_people=min_people,
        max_people=max_people,
        min_depth_mm=min_depth_mm,
        max_depth_mm=max_depth_mm,
        clutter=clutter,
    )
    spec = sequence_spec(checked.as_json(), sequence, people=people, depths_mm=depths)
    indices = layout_indices(layout)
    images, truth = [], []
    for t in range(frames):
        scene = render_frame(spec, t)
        images.append(scene.image)
        truth.append(frame_people(scene, indices))
    count = len(truth[0])
    stack = lambda name, dtype: np.array([[getattr(p, name) for p in ps] for ps in truth], dtype=dtype)
    return Clip(
        frames=np.stack(images),
        camera=sequence_plan(spec).camera,
        fps=float(fps),
        person_ids=np.tile(np.arange(count), (frames, 1)),
        joints_cam=stack("joints_cam", np.float64).reshape(frames, count, len(indices), 3),
        joints_img=stack("joints_img", np.float64).reshape(frames, count, len(indices), 2),
        visible=stack("visible", bool).reshape(frames, count, len(indices)),
        valid=stack("valid", bool).reshape(frames, count),
        boxes=stack("box", np.int64).reshape(frames, count, 4),
        masks=stack("mask", bool).reshape(frames, count, *images[0].shape[:2]),
    )


# ----------------------------------------------------------------------------------------------
# writing


def mupots_generation_params(params: MuPoTSParams) -> dict:
    """The manifest's parameters: this writer's name and version and `MuPoTSParams.cache_key` (fps
    included; also what each worker renders from)."""
    return {"generator": GENERATOR, "version": VERSION, **params.cache_key()}


def frame_file_name(sequence: int, t: int) -> str:
    """'TS<k>/img_xxxxxx.jpg' of frame t (0-based) of sequence k (1-based)."""
    return f"TS{sequence}/img_{t:06d}.jpg"


def _render_image(task: tuple) -> tuple[list[float], list[dict]]:
    """Render and save one frame; task = (image_dir, params, sequence, t) -> (intrinsic, annotations)."""
    image_dir, params, sequence, t = task
    scene = render_frame(sequence_spec(params, sequence), t)
    path = Path(image_dir) / frame_file_name(sequence, t)
    ok = cv2.imwrite(
        str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]]
    )
    if not ok:
        raise OSError(f"could not write {path}")
    cam = scene.camera
    anns = [
        {
            "keypoints_cam": p.joints_cam.tolist(),
            "keypoints_img": p.joints_img.tolist(),
            "keypoints_vis": [bool(v) for v in p.visible],
            "bbox": p.box,
            "is_valid": p.valid,
            "person_id": i,
        }
        for i, p in enumerate(frame_people(scene))
    ]
    return [cam.fx, cam.fy, cam.cx, cam.cy], anns


def _write_dataset(out: Path, params: dict, workers: int) -> dict:
    image_dir = out / IMAGE_DIR
    sequences = range(1, params["num_sequences"] + 1)
    for k in sequences:
        (image_dir / f"TS{k}").mkdir(parents=True)
    tasks = [(str(image_dir), params, k, t) for k in sequences for t in range(params["frames"])]
    results = cache.parallel_map(_render_image, tasks, workers)
    (w, h), images, annotations = params["image_size"], [], []
    for image_id, ((_, _, k, t), (intrinsic, anns)) in enumerate(zip(tasks, results)):
        images.append(
            {"id": image_id, "file_name": frame_file_name(k, t), "width": w, "height": h, "intrinsic": intrinsic}
        )
        annotations += [{"id": len(annotations) + i, "image_id": image_id, **ann} for i, ann in enumerate(anns)]
    data = {"images": images, "annotations": annotations}
    (out / ANNOTATION_FILE).write_text(json.dumps(data, separators=(",", ":")))
    valid = sum(a["is_valid"] for a in annotations)
    return {
        "test": {
            "images": len(images),
            "annotations": len(annotations),
            "valid": valid,
            "sequences": len(sequences),
            "fps": params["fps"],
        }
    }


def ensure_synthetic_mupots(
    root: str | Path,
    params: MuPoTSParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic MuPoTS-3D test set for these parameters; return root.

    ``params`` (`MuPoTSParams`) and ``options``, keyword arguments named as its fields that replace
    some of them (a data config's ``data.reader.synthetic``), give the dataset; an unknown or
    out-of-range one is a ValueError naming it. Returns at once when the manifest matches (same
    generator version and parameters); otherwise renders num_sequences x frames images (into a
    temporary folder, then renamed into place). ``workers`` (default: available cores, at most 8)
    and ``force`` do not change the output.

    Raises:
        ValueError: a parameter is unknown or out of range.
        FileExistsError: root exists, is not empty and was not written by this generator.
    """
    key = mupots_generation_params(MuPoTSParams.from_options(params, **options))
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=VERSION,
        params=key,
        write=lambda out: _write_dataset(out, key, workers if workers is not None else cache.default_workers()),
        required=(ANNOTATION_FILE,),
        force=force,
        what="synthetic MuPoTS-3D dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_mupots,
        MuPoTSParams,
        argv,
        description="Generate the synthetic MuPoTS-3D-format test set (3DMPPE layout).",
        default_root="data/synthetic_mupots",
        what="synthetic MuPoTS-3D dataset",
        count="annotations",
    )


if __name__ == "__main__":
    main()
