"""Write (or reuse) a synthetic MPII-format dataset in the HRNet repository's layout.

Layout under ``root``::

    images/*.jpg          train 000000001.jpg ..., validation 001000001.jpg ...
    annot/train.json      a list with one entry per annotated person
    annot/valid.json
    annot/gt_valid.mat    validation ground truth for PCKh, in valid.json order
    manifest.json         generator version + hash of every generation parameter (the cache stamp)

An entry is ``{"image", "center": [x, y], "scale": s, "joints": K x [x, y], "joints_vis": K x 0/1}``
with K = 16 joints in MPII16 order. Every coordinate is a 1-based MATLAB pixel (our 0-based pixel
+ 1), as in MPII; the rules, each measured on the projected 3D figure of ``scene.render_scene``:

- joints: the projected 3D joints; pelvis is the midpoint of the 3D hips, thorax the midpoint of
  the 3D shoulders, upper_neck the figure's neck top (the base of the head), head_top the top of
  the skull sphere.
- joints_vis: 1 where the joint projects inside the image, occluded or not (MPII annotates
  occluded joints); 0 outside the image or behind the camera, and such a joint is written as
  [-1, -1] (outside the image in 1-based and in 0-based pixels alike).
- scale: height / 200 (MPII's scale is relative to a 200 px tall person), where height is the
  person's standing height at their depth (the scene's stature, independent of the pose) or,
  when larger, the vertical extent of the 16 projected joints.
- center: the midpoint of the box of the annotated joints. The official reader moves it down
  by 15 * scale px and crops a 1.25 * 200 * scale px square, which then holds every annotated
  joint (the box is at most ``height`` tall; it fits sideways unless wider than 1.25 * height).
- head box: the axis-aligned square around the projected head sphere (side 2 * f * r / z at
  the head centre), grown to hold the projected head_top and upper_neck. Its PCKh normaliser
  0.6 * diagonal is about 1.0 x the upper_neck-head_top distance (measured: median 0.98),
  as in MPII, whose SC_BIAS 0.6 makes the head size about the head segment's length.

Annotated people, one entry each: not tiny (``PersonInstance.keypoint_less``), at least
``keypoint_min_area`` visible pixels, head_top and upper_neck inside the image (their head box
is needed by PCKh), at least ``min_joints`` of the 16 joints inside the image and at least
``min_visible_joints`` of them unoccluded (the figure's own pelvis and thorax stand in for the
midpoints here). Everyone else stays in the image unannotated, as in MPII.

Image i of a split is rendered by the COCO generator's ``generate.render_to_file`` (seeded from
(seed, split, i)), so for equal scene parameters the two datasets show the same pictures. Caching
and the manifest are ``cache.ensure_cached``'s; the same parameters give the same bytes whatever
the number of workers.

CLI: ``python -m src.synthetic.mpii_writer --root data/synthetic_mpii [--num-train N --num-val M]``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.layouts import MPII16
from src.readers.mpii_ground_truth import MPIIGroundTruth, write_mpii_ground_truth
from src.synthetic import cache, generate
from src.synthetic.camera import Camera
from src.synthetic.figure import JOINT_INDEX, layout_indices
from src.synthetic.params import IMAGE_ID_STRIDE, MPIIParams
from src.synthetic.scene import NEAR_MM, PersonInstance, Scene

GENERATOR = "src.synthetic.mpii"
VERSION = 1  # bump whenever the MPII output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
SPLITS = (("train", 0), ("valid", 1))  # (name, code used in seeds and image names); codes as generate.py
GROUND_TRUTH = "gt_valid.mat"
REQUIRED = ("annot/train.json", "annot/valid.json", f"annot/{GROUND_TRUTH}")  # besides the images
MISSING_XY = (-1.0, -1.0)  # 1-based coordinates written for joints with joints_vis 0
PIXEL_STD = 200.0  # MPII's scale unit: a 200 px tall person has scale 1

MPII_INDICES = layout_indices("mpii16")  # (K,) superset joints; pelvis and thorax replaced below
_PELVIS = MPII16.keypoint_names.index("pelvis")
_THORAX = MPII16.keypoint_names.index("thorax")
_HEAD_TOP = MPII16.keypoint_names.index("head_top")
_UPPER_NECK = MPII16.keypoint_names.index("upper_neck")


@dataclass(frozen=True)
class MPIIPerson:
    """One annotated person in 0-based pixels, K = 16 (MPII16 order).

    Attributes:
        joints: (K, 2) projected joints.
        visible: (K,) bool, True where annotated (inside the image).
        center: (2,) midpoint of the annotated joints' box.
        scale: height in pixels / 200.
        headbox: (2, 2) head box corners [[x1, y1], [x2, y2]].
    """

    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float
    headbox: np.ndarray


def mpii_joints_3d(joints_3d: np.ndarray) -> np.ndarray:
    """(J, 3) superset joints -> (K, 3) MPII joints: pelvis = hip midpoint, thorax = shoulder midpoint."""
    out = joints_3d[MPII_INDICES].copy()
    out[_PELVIS] = 0.5 * (joints_3d[JOINT_INDEX["left_hip"]] + joints_3d[JOINT_INDEX["right_hip"]])
    out[_THORAX] = 0.5 * (joints_3d[JOINT_INDEX["left_shoulder"]] + joints_3d[JOINT_INDEX["right_shoulder"]])
    return out


def project_inside(camera: Camera, points: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) camera-frame points -> ((N, 2) 0-based pixels, (N,) bool: in front of the camera and inside).

    Same projection and inside rule as the scene's visibility (0 <= x <= W - 1, 0 <= y <= H - 1).
    """
    z = points[:, 2]
    front = z > NEAR_MM
    safe = np.where(front, z, 1.0)
    uv = np.stack([camera.fx * points[:, 0] / safe + camera.cx, camera.fy * points[:, 1] / safe + camera.cy], 1)
    w, h = image_size
    inside = front & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    return uv, inside


def head_box(camera: Camera, joints_3d: np.ndarray) -> np.ndarray:
    """(2, 2) 0-based head box [[x1, y1], [x2, y2]] of one person's (J, 3) superset joints.

    The square around the projected head sphere (half side f * r / z at the head centre, r =
    |head_top - head_center|), grown to hold the projected head_top and upper_neck.
    """
    centre = joints_3d[JOINT_INDEX["head_center"]]
    radius_mm = float(np.linalg.norm(joints_3d[JOINT_INDEX["head_top"]] - centre))
    half = np.array([camera.fx, camera.fy]) * radius_mm / centre[2]
    mid = camera.project(centre[None])[0]
    ends = camera.project(joints_3d[[JOINT_INDEX["head_top"], JOINT_INDEX["upper_neck"]]])
    return np.stack([np.minimum(mid - half, ends.min(axis=0)), np.maximum(mid + half, ends.max(axis=0))])


def person_height(uv: np.ndarray, front: np.ndarray, stature_px: float) -> float:
    """Height in pixels: the standing height at the person's depth, or the (K, 2) joints' vertical
    extent over those in front of the camera (front (K,) bool) when that is larger."""
    extent = float(np.ptp(uv[front, 1])) if front.any() else 0.0
    return max(float(stature_px), extent)


def is_annotated(
    person: PersonInstance, inside: np.ndarray, *, keypoint_min_area: int, min_joints: int, min_visible_joints: int
) -> bool:
    """Whether a person gets an entry; inside (K,) marks the MPII joints inside the image."""
    if person.keypoint_less or int(person.mask.sum()) < keypoint_min_area:
        return False
    if not (inside[_HEAD_TOP] and inside[_UPPER_NECK]) or int(inside.sum()) < min_joints:
        return False
    return int((person.visibility[MPII_INDICES] == 2).sum()) >= min_visible_joints


def scene_people(
    scene: Scene, *, keypoint_min_area: int = 32 * 32, min_joints: int = 10, min_visible_joints: int = 6
) -> list[MPIIPerson]:
    """The annotated people of one scene, in the scene's person order (rules: module docstring)."""
    h, w = scene.image.shape[:2]
    people = []
    for person in scene.persons:
        points = mpii_joints_3d(person.joints_3d)
        uv, inside = project_inside(scene.camera, points, (w, h))
        if not is_annotated(
            person,
            inside,
            keypoint_min_area=keypoint_min_area,
            min_joints=min_joints,
            min_visible_joints=min_visible_joints,
        ):
            continue
        box = uv[inside]
        people.append(
            MPIIPerson(
                joints=uv,
                visible=inside,
                center=(box.min(axis=0) + box.max(axis=0)) / 2,
                scale=person_height(uv, points[:, 2] > NEAR_MM, person.stature_px) / PIXEL_STD,
                headbox=head_box(scene.camera, person.joints_3d),
            )
        )
    return people


def _xy(values: np.ndarray) -> list[float]:
    """0-based (2,) pixel -> rounded 1-based [x, y]."""
    return [round(float(v) + 1.0, 2) for v in values]


def person_entry(person: MPIIPerson, image: str) -> dict:
    """HRNet ``annot/*.json`` entry of one person (1-based pixels)."""
    return {
        "image": image,
        "center": _xy(person.center),
        "scale": round(float(person.scale), 6),
        "joints": [_xy(p) if v else list(MISSING_XY) for p, v in zip(person.joints, person.visible)],
        "joints_vis": [int(v) for v in person.visible],
    }


def person_headbox(person: MPIIPerson) -> list[list[float]]:
    """1-based head box [[x1, y1], [x2, y2]] (rounded like the entry's joints)."""
    return [_xy(person.headbox[0]), _xy(person.headbox[1])]


def mpii_generation_params(params: MPIIParams) -> dict:
    """The manifest's parameters of a synthetic MPII dataset: this writer's name and version, the
    scene generator's version and `MPIIParams.cache_key` (also what each worker renders from)."""
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "scene_version": generate.GENERATOR_VERSION,
        **params.cache_key(),
    }


def image_name(split_code: int, index: int) -> str:
    """MPII-style 9-digit file name; validation names start at 001000001.jpg."""
    return f"{split_code * IMAGE_ID_STRIDE + index + 1:09d}.jpg"


def _render_image(task: tuple) -> tuple[list[dict], list[list[list[float]]]]:
    """Render and save one image; task = (image_dir, split_code, index, params) -> (entries, head boxes)."""
    image_dir, split_code, index, params = task
    name = image_name(split_code, index)
    scene = generate.render_to_file(Path(image_dir) / name, params, split_code, index)
    people = scene_people(
        scene,
        keypoint_min_area=params["keypoint_min_area"],
        min_joints=params["min_joints"],
        min_visible_joints=params["min_visible_joints"],
    )
    return [person_entry(p, name) for p in people], [person_headbox(p) for p in people]


def _map(tasks: list[tuple], workers: int) -> list[tuple[list[dict], list]]:
    return cache.parallel_map(_render_image, tasks, workers)


def ground_truth(entries: list[dict], headboxes: list[list[list[float]]]) -> MPIIGroundTruth:
    """gt_valid.mat contents of N validation entries and their 1-based head boxes (N, 2, 2)."""
    k = MPII16.num_keypoints
    return MPIIGroundTruth(
        positions=np.array([e["joints"] for e in entries], dtype=np.float64).reshape(-1, k, 2),
        missing=np.array([[v == 0 for v in e["joints_vis"]] for e in entries], dtype=bool).reshape(-1, k),
        headboxes=np.array(headboxes, dtype=np.float64).reshape(-1, 2, 2),
    )


def _fixed_mat_header(path: Path) -> None:
    """Replace the creation time scipy writes into a MAT file's 116-byte header text, so the same
    parameters give the same bytes."""
    text = f"MATLAB 5.0 MAT-file, written by {GENERATOR} version {VERSION}".encode("ascii")
    with open(path, "r+b") as f:
        f.write(text.ljust(116, b"\0"))


def _write_dataset(out: Path, params: dict, workers: int) -> dict:
    (out / "annot").mkdir(parents=True)
    image_dir = out / "images"
    image_dir.mkdir()
    counts = {name: params["num_train"] if code == 0 else params["num_val"] for name, code in SPLITS}
    tasks = [(str(image_dir), code, i, params) for name, code in SPLITS for i in range(counts[name])]
    results = _map(tasks, workers)
    summary, start = {}, 0
    for name, _ in SPLITS:
        chunk = results[start : start + counts[name]]
        start += counts[name]
        entries = [e for image_entries, _ in chunk for e in image_entries]
        (out / "annot" / f"{name}.json").write_text(json.dumps(entries, separators=(",", ":")))
        summary[name] = {"images": counts[name], "people": len(entries)}
        if name == "valid":
            boxes = [b for _, image_boxes in chunk for b in image_boxes]
            path = write_mpii_ground_truth(out / "annot" / GROUND_TRUTH, ground_truth(entries, boxes))
            _fixed_mat_header(path)
    return summary


def ensure_synthetic_mpii(
    root: str | Path,
    params: MPIIParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic MPII dataset for these parameters; return root.

    ``params`` (`MPIIParams`: the scene parameters of ``ensure_synthetic_coco``, empty_prob 0
    because MPII images all show someone, and the rules choosing the annotated people, module
    docstring) and ``options``, keyword arguments named as its fields that replace some of them,
    give the dataset; an unknown or out-of-range one is a ValueError naming it. Returns at once
    when the manifest matches (same generator versions and parameters); otherwise renders
    num_train + num_val images (into a temporary folder, then renamed into place). ``workers``
    (default: available cores, at most 8) and ``force`` do not change the output.

    Raises FileExistsError when root exists, is not empty and was not written by this generator.
    """
    key = mpii_generation_params(MPIIParams.from_options(params, **options))
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=VERSION,
        params=key,
        write=lambda out: _write_dataset(out, key, workers if workers is not None else cache.default_workers()),
        required=REQUIRED,
        force=force,
        what="synthetic MPII dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_mpii,
        MPIIParams,
        argv,
        description="Generate the synthetic MPII-format dataset (HRNet layout).",
        default_root="data/synthetic_mpii",
        what="synthetic MPII dataset",
        count="people",
    )


if __name__ == "__main__":
    main()
