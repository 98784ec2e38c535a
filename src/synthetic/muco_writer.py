"""Write (or reuse) a synthetic MuCo-3DHP dataset in the 3DMPPE repository's layout.

Layout under ``root``::

    data/MuCo-3DHP.json          training images and annotations (COCO style)
    data/MuCo-3DHP_val.json      validation images and annotations, the same format
    data/augmented_set/*.jpg     training images (file_name relative to data/)
    data/validation_set/*.jpg    validation images
    manifest.json                generator version + hash of every generation parameter

``images[]``: {id, file_name, width, height, f [fx, fy], c [cx, cy]}; ``annotations[]``: {id,
image_id, keypoints_cam (21 x [X, Y, Z], camera frame, mm), keypoints_img (21 x [u, v], px),
keypoints_vis (21 booleans), bbox [x, y, w, h]}, joints in MUCO21 order (root: pelvis, 14) taken
from the figure's joints through ``LAYOUT_JOINTS["muco21"]``.

Each image is a photograph of ``min_people``..``max_people`` people standing on a floor in
front of its own camera (``stage``: a camera 1.0-1.5 m high, intrinsics as
``camera.sample_camera``): every person has their own body, clothing and pose
(``figure.sample_pose``), faces mostly towards the camera (``scene.sample_yaw``), and stands at
their own distance, one per equal bin of [min_depth_mm, max_depth_mm] (so two people of an
image are at least 0.4 bin widths apart in depth), at a random image column within the middle 80 %
of the width. The columns are drawn again (up to COLUMN_TRIES times) until the roots are at least
ROOT_GAP_MM apart sideways (camera X), because the official reader keeps only the nearest person
of those whose roots are within 500 mm in camera X-Y (people of an image stand on one floor, so
their root Y differ little); people at different depths still overlap in the image, and nearer
ones often hide parts of farther ones. keypoints_cam is rounded to 0.001 mm and keypoints_img is its
pinhole projection with the stored intrinsics, rounded to 0.001 px. keypoints_vis is true where
the joint projects inside the image and is not occluded (by another person or by the person
themself; ``scene``'s rule). bbox is the box of the whole person, hidden parts included
(`stage.body_box`: the projected joints, padded, cut to the image; 0-based columns and rows,
w = last - first + 1), as a box made from the annotated body; people without any visible pixel are
not written. Image ids count from 1 (validation from IMAGE_ID_STRIDE + 1), annotation ids from 1
in file order.

Image i of a split is rendered from its own random stream seeded by (seed, split, i), so the
output does not depend on the order or the number of worker processes. Caching and the manifest
are ``cache.ensure_cached``'s.

CLI: ``python -m src.synthetic.muco_writer --root data/synthetic_muco [--num-images N --num-val M]``
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from src.camera import Camera
from src.synthetic import cache
from src.synthetic.appearance import sample_style
from src.synthetic.background import render_background
from src.synthetic.figure import layout_indices, sample_body_shape, sample_pose
from src.synthetic.params import IMAGE_ID_STRIDE, SyntheticParams, knob
from src.synthetic.scene import Scene, sample_yaw
from src.synthetic.stage import (
    MAX_BLUR_SIGMA,
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

GENERATOR = "src.synthetic.muco"
VERSION = 2  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
DATA = "data"  # the folder of the annotation files and image folders under the root
TRAIN_FILE = f"{DATA}/MuCo-3DHP.json"
VAL_FILE = f"{DATA}/MuCo-3DHP_val.json"
# (name, code used in seeds and image ids, annotation file, image folder under data/)
SPLITS = (("train", 0, TRAIN_FILE, "augmented_set"), ("val", 1, VAL_FILE, "validation_set"))
MUCO_INDICES = layout_indices("muco21")  # (21,) superset joints in MUCO21 order
ROOT_GAP_MM = 650.0  # sideways distance between the roots of an image (module docstring)
COLUMN_TRIES = 32


@dataclass(frozen=True, kw_only=True)
class MuCoParams(SyntheticParams):
    """The synthetic MuCo-3DHP dataset: independent photographs of people at different distances."""

    WHAT: ClassVar[str] = "synthetic MuCo-3DHP"

    num_images: int = knob(1200, "training images")
    num_val: int = knob(150, "validation images")
    image_size: tuple[int, int] = knob((256, 256), "image width and height in pixels", metavar=("W", "H"))
    min_people: int = knob(1, "fewest people in an image")
    max_people: int = knob(4, "most people in an image")
    min_depth_mm: float = knob(2000.0, "nearest camera distance of a person's pelvis (mm)")
    max_depth_mm: float = knob(8000.0, "farthest camera distance of a person's pelvis (mm)")
    clutter: float = knob(0.6, "background shapes, lines and limb-like sticks (1.0: full)")
    facing_camera_prob: float = knob(0.85, "share of people turned towards the camera (the rest face any way)")
    jpeg_quality: int = knob(92, "JPEG quality of the images")

    def check(self) -> None:
        super().check()
        for key in ("num_images", "num_val"):
            self.require_range(key, 0, IMAGE_ID_STRIDE - 1)
        self.require_range("max_people", 1, 20)
        self.require_range("min_people", 1, self.max_people)
        if min(self.image_size) < 32:
            self.fail("image_size", "at least 32 x 32 (w, h)")
        self.require_range("min_depth_mm", 1000.0)
        self.require_range("max_depth_mm", self.min_depth_mm + 100.0)
        self.require_range("clutter", 0)
        self.require_range("facing_camera_prob", 0.0, 1.0)
        self.require_range("jpeg_quality", 1, 100)


def muco_generation_params(params: MuCoParams) -> dict:
    """The manifest's parameters: this writer's name and version and `MuCoParams.cache_key` (also
    what each worker renders from)."""
    return {"generator": GENERATOR, "version": VERSION, **params.cache_key()}


def root_columns(rng: np.random.Generator, camera: Camera, depths: np.ndarray, width: int) -> list[float]:
    """An image column (px) for the root of each person at ``depths`` (P,) mm: uniform over the middle
    80 % of the width, redrawn until the root's camera X is ROOT_GAP_MM from every earlier root (the
    column farthest from them after COLUMN_TRIES draws otherwise)."""
    xs: list[float] = []
    columns: list[float] = []
    for z in depths:
        best = (-1.0, 0.0, 0.0)  # (gap, column, X)
        for _ in range(COLUMN_TRIES):
            u = float(rng.uniform(0.1, 0.9) * width)
            x = (u - camera.cx) / camera.fx * float(z)
            gap = min((abs(x - other) for other in xs), default=math.inf)
            if gap > best[0]:
                best = (gap, u, x)
            if gap >= ROOT_GAP_MM:
                break
        xs.append(best[2])
        columns.append(best[1])
    return columns


def render_muco_image(params: dict, split_code: int, index: int) -> Scene:
    """Image ``index`` of a split (module docstring), from the random stream (seed, split_code, index).

    ``params``: `muco_generation_params` (or `MuCoParams.as_json`). The persons come in no depth
    order.
    """
    rng = np.random.default_rng(np.random.SeedSequence([params["seed"], split_code, index]))
    size = (int(params["image_size"][0]), int(params["image_size"][1]))
    w = size[0]
    camera = sample_stage_camera(rng, size)
    light = scene_light(rng)
    background = render_background(rng, size, params["clutter"])
    n = int(rng.integers(params["min_people"], params["max_people"] + 1))
    depths = spread_depths(rng, n, params["min_depth_mm"], params["max_depth_mm"])
    figures = []
    for depth, column in zip(depths, root_columns(rng, camera, depths, w)):
        shape = sample_body_shape(rng)
        kind, pose = sample_pose(rng)
        angles, weight = pose_angles(pose, kind)
        # heading 180 faces the camera (it looks along +x); scene's yaw 0 faces the camera too
        heading = 180.0 + sample_yaw(rng, params["facing_camera_prob"])
        skeleton, _ = stand_at(camera, shape, angles, weight, heading, depth=float(depth), column=column)
        figures.append(Figure(skeleton=skeleton, style=sample_style(rng), pose_kind=kind))
    return render_figures(
        camera,
        figures,
        background=background,
        light=light,
        blur_sigma=float(rng.uniform(0.2, MAX_BLUR_SIGMA)),
        noise_rng=rng,
    )


def scene_annotations(scene: Scene, image_id: int) -> list[dict]:
    """MuCo annotations (without "id") of the people of a scene with at least one visible pixel."""
    h, w = scene.image.shape[:2]
    anns = []
    for person in scene.persons:
        if not person.mask.any():
            continue
        box = body_box(person.joints_2d, (w, h))
        if box is None:
            continue
        cam, uv = project_rounded(scene.camera, person.joints_3d[MUCO_INDICES])
        vis = (person.visibility[MUCO_INDICES] == 2) & inside_image(uv, (w, h))
        anns.append(
            {
                "image_id": image_id,
                "keypoints_cam": cam.tolist(),
                "keypoints_img": uv.tolist(),
                "keypoints_vis": [bool(v) for v in vis],
                "bbox": box,
            }
        )
    return anns


def image_id(split_code: int, index: int) -> int:
    """Image ids: training 1, 2, ...; validation IMAGE_ID_STRIDE + 1, ..."""
    return split_code * IMAGE_ID_STRIDE + index + 1


def _render_image(task: tuple) -> tuple[dict, list[dict]]:
    """Render, save and annotate one image; task = (data_dir, folder, split_code, index, params)."""
    data_dir, folder, split_code, index, params = task
    scene = render_muco_image(params, split_code, index)
    iid = image_id(split_code, index)
    file_name = f"{folder}/{iid:09d}.jpg"
    path = Path(data_dir) / file_name
    ok = cv2.imwrite(
        str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]]
    )
    if not ok:
        raise OSError(f"could not write {path}")
    h, w = scene.image.shape[:2]
    cam = scene.camera
    image = {"id": iid, "file_name": file_name, "width": w, "height": h, "f": [cam.fx, cam.fy], "c": [cam.cx, cam.cy]}
    return image, scene_annotations(scene, iid)


def _map(tasks: list[tuple], workers: int) -> list[tuple[dict, list[dict]]]:
    return cache.parallel_map(_render_image, tasks, workers)


def _count(params: dict, split_code: int) -> int:
    return params["num_images"] if split_code == 0 else params["num_val"]


def _write_dataset(out: Path, params: dict, workers: int) -> dict:
    data_dir = out / DATA
    for _, _, _, folder in SPLITS:
        (data_dir / folder).mkdir(parents=True)
    tasks = [
        (str(data_dir), folder, code, i, params) for _, code, _, folder in SPLITS for i in range(_count(params, code))
    ]
    results = _map(tasks, workers)
    summary, start = {}, 0
    for name, code, file, _ in SPLITS:
        chunk = results[start : start + _count(params, code)]
        start += _count(params, code)
        annotations = [{"id": k + 1, **ann} for k, ann in enumerate(a for _, anns in chunk for a in anns)]
        data = {"images": [image for image, _ in chunk], "annotations": annotations}
        (out / file).write_text(json.dumps(data, separators=(",", ":")))
        summary[name] = {"images": len(chunk), "annotations": len(annotations)}
    return summary


def ensure_synthetic_muco(
    root: str | Path,
    params: MuCoParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic MuCo-3DHP dataset for these parameters; return root.

    ``params`` (`MuCoParams`) and ``options``, keyword arguments named as its fields that replace
    some of them (a data config's ``data.reader.synthetic``), give the dataset; an unknown or
    out-of-range one is a ValueError naming it. Returns at once when the manifest matches (same
    generator version and parameters); otherwise renders num_images + num_val images (into a
    temporary folder, then renamed into place). ``workers`` (default: available cores, at most 8)
    and ``force`` do not change the output.

    Raises:
        ValueError: a parameter is unknown or out of range.
        FileExistsError: root exists, is not empty and was not written by this generator.
    """
    key = muco_generation_params(MuCoParams.from_options(params, **options))
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=VERSION,
        params=key,
        write=lambda out: _write_dataset(out, key, workers if workers is not None else cache.default_workers()),
        required=(TRAIN_FILE, VAL_FILE),
        force=force,
        what="synthetic MuCo-3DHP dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_muco,
        MuCoParams,
        argv,
        description="Generate the synthetic MuCo-3DHP-format dataset (3DMPPE layout).",
        default_root="data/synthetic_muco",
        what="synthetic MuCo-3DHP dataset",
        count="annotations",
    )


if __name__ == "__main__":
    main()
