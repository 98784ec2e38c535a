"""Write (or reuse) the synthetic COCO-format person keypoint dataset.

Layout under ``root``::

    annotations/person_keypoints_train2017.json
    annotations/person_keypoints_val2017.json
    images/train2017/*.jpg
    images/val2017/*.jpg
    manifest.json            # generator version + hash of every generation parameter

Caching, the manifest and the atomic install are ``cache.ensure_cached``'s. Every image has its
own random generator seeded from (seed, split, index) (``render_to_file``, shared with the MPII
writer), so the output does not depend on the order or the number of worker processes; the same
seed gives byte-identical JSON.

CLI: ``python -m src.synthetic.generate --root data/synthetic --seed 0 [--num-train N --num-val M]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from src.synthetic import cache
from src.synthetic.coco_writer import ANNOTATIONS_PER_IMAGE, coco_categories, coco_info, scene_annotations
from src.synthetic.scene import Scene, SceneConfig, render_scene

GENERATOR = "src.synthetic"
GENERATOR_VERSION = 4  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
SPLITS = (("train2017", 0), ("val2017", 1))  # (name, code used in seeds and image ids)
REQUIRED = tuple(f"annotations/person_keypoints_{name}.json" for name, _ in SPLITS)  # besides the images
IMAGE_ID_STRIDE = 1_000_000  # val image ids start at 1_000_001, so ids are unique across splits

DEFAULT_NUM_TRAIN = 1000
DEFAULT_NUM_VAL = 150
DEFAULT_IMAGE_SIZE = (320, 256)


def generation_params(
    *,
    seed: int,
    num_train: int,
    num_val: int,
    image_size: tuple[int, int],
    max_people: int,
    min_people: int,
    crowd_prob: float,
    empty_prob: float,
    occluder_prob: float,
    min_height: float,
    max_height_frac: float,
    jpeg_quality: int,
    min_area: int,
    clutter: float = 0.6,
    facing_camera_prob: float = 0.85,
    keypoint_min_area: int = 32 * 32,
) -> dict:
    """Every parameter that changes the output, as plain JSON types (hashed into the manifest)."""
    if num_train < 0 or num_val < 0 or num_train >= IMAGE_ID_STRIDE or num_val >= IMAGE_ID_STRIDE:
        raise ValueError(f"num_train/num_val must be in [0, {IMAGE_ID_STRIDE}), got {num_train}/{num_val}")
    if not 1 <= max_people < ANNOTATIONS_PER_IMAGE - 1:
        raise ValueError(f"max_people must be in [1, {ANNOTATIONS_PER_IMAGE - 2}], got {max_people}")
    if not 1 <= min_people <= max_people:
        raise ValueError(f"min_people must be in [1, max_people={max_people}], got {min_people}")
    w, h = (int(v) for v in image_size)
    if w < 32 or h < 32:
        raise ValueError(f"image_size (w, h) must be at least 32 x 32, got {image_size}")
    scene = dataclasses.asdict(
        SceneConfig(
            image_size=(w, h),
            max_people=int(max_people),
            min_people=int(min_people),
            crowd_prob=float(crowd_prob),
            empty_prob=float(empty_prob),
            occluder_prob=float(occluder_prob),
            min_height=float(min_height),
            max_height_frac=float(max_height_frac),
            clutter=float(clutter),
            facing_camera_prob=float(facing_camera_prob),
        )
    )
    scene["image_size"] = [w, h]
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_train": int(num_train),
        "num_val": int(num_val),
        "jpeg_quality": int(jpeg_quality),
        "min_area": int(min_area),
        "keypoint_min_area": int(keypoint_min_area),
        "scene": scene,
    }


def render_to_file(path: str | Path, params: dict, split_code: int, index: int) -> Scene:
    """Render image ``index`` of a split from its own random stream, seeded from (seed, split_code,
    index), and save it as a JPEG at path. The MPII writer calls this too, so both datasets show
    the same pictures for equal scene parameters."""
    scene_cfg = dict(params["scene"])
    scene_cfg["image_size"] = tuple(scene_cfg["image_size"])
    rng = np.random.default_rng(np.random.SeedSequence([params["seed"], split_code, index]))
    scene = render_scene(rng, SceneConfig(**scene_cfg))
    ok = cv2.imwrite(
        str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]]
    )
    if not ok:
        raise OSError(f"could not write {path}")
    return scene


def _render_image(task: tuple) -> tuple[dict, list[dict]]:
    """Render, save and annotate one image; task = (image_dir, split_code, index, params)."""
    image_dir, split_code, index, params = task
    image_id = split_code * IMAGE_ID_STRIDE + index + 1
    file_name = f"{image_id:012d}.jpg"
    scene = render_to_file(Path(image_dir) / file_name, params, split_code, index)
    h, w = scene.image.shape[:2]
    image = {"id": image_id, "file_name": file_name, "width": w, "height": h, "camera": scene.camera.to_json()}
    return image, scene_annotations(
        scene, image_id, min_area=params["min_area"], keypoint_min_area=params["keypoint_min_area"]
    )


def _map(tasks: list[tuple], workers: int) -> list[tuple[dict, list[dict]]]:
    return cache.parallel_map(_render_image, tasks, workers)


def _write_dataset(out: Path, params: dict, workers: int) -> dict:
    (out / "annotations").mkdir(parents=True)
    tasks: list[tuple] = []
    for name, code in SPLITS:
        image_dir = out / "images" / name
        image_dir.mkdir(parents=True)
        count = params["num_train"] if code == 0 else params["num_val"]
        tasks += [(str(image_dir), code, i, params) for i in range(count)]
    results = _map(tasks, workers)
    summary = {}
    start = 0
    for name, code in SPLITS:
        count = params["num_train"] if code == 0 else params["num_val"]
        chunk = results[start : start + count]
        start += count
        data = {
            "info": coco_info(seed=params["seed"], version=GENERATOR_VERSION, split=name),
            "licenses": [],
            "images": [image for image, _ in chunk],
            "annotations": [ann for _, anns in chunk for ann in anns],
            "categories": coco_categories(),
        }
        path = out / "annotations" / f"person_keypoints_{name}.json"
        path.write_text(json.dumps(data, separators=(",", ":")))
        summary[name] = {"images": len(data["images"]), "annotations": len(data["annotations"])}
    return summary


def ensure_synthetic_coco(
    root: str | Path,
    *,
    seed: int = 0,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    max_people: int = 4,
    min_people: int = 1,
    crowd_prob: float = 0.12,
    empty_prob: float = 0.03,
    occluder_prob: float = 0.12,
    min_height: float = 50.0,
    max_height_frac: float = 0.95,
    jpeg_quality: int = 92,
    min_area: int = 30,
    clutter: float = 0.6,
    facing_camera_prob: float = 0.85,
    keypoint_min_area: int = 32 * 32,
    workers: int | None = None,
    force: bool = False,
) -> Path:
    """Make sure ``root`` holds the synthetic COCO person-keypoint dataset for these parameters.

    Returns root at once when its manifest matches (same generator version and parameters);
    otherwise renders the dataset (into a temporary folder, then renamed into place) and returns
    root. ``workers`` (default: available cores, at most 8) and ``force`` do not change the
    output. image_size is (w, h); people per image are min_people..max_people (a fraction empty_prob of
    images has none); crowd_prob is the chance that an image holds a crowd region (iscrowd=1,
    RLE); occluder_prob that an object stands in front of someone. Statures (a standing
    person's height in pixels) range from min_height to max_height_frac * h, uniform in
    sqrt(stature); a few smaller people are added without keypoints. People with fewer than
    min_area visible pixels get no annotation; as in COCO, people with fewer than keypoint_min_area
    visible pixels (32 x 32: COCO's 'small') are annotated without keypoints. clutter scales the
    background's shapes, lines and limb-like distractor sticks (1.0: full). facing_camera_prob is
    the share of people turned towards the camera (the rest face any direction), as in real photo
    collections.

    Raises FileExistsError when root exists, is not empty and was not written by this generator.
    """
    params = generation_params(
        seed=seed,
        num_train=num_train,
        num_val=num_val,
        image_size=image_size,
        max_people=max_people,
        min_people=min_people,
        crowd_prob=crowd_prob,
        empty_prob=empty_prob,
        occluder_prob=occluder_prob,
        min_height=min_height,
        max_height_frac=max_height_frac,
        jpeg_quality=jpeg_quality,
        min_area=min_area,
        clutter=clutter,
        facing_camera_prob=facing_camera_prob,
        keypoint_min_area=keypoint_min_area,
    )
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=GENERATOR_VERSION,
        params=params,
        write=lambda out: _write_dataset(out, params, workers if workers is not None else cache.default_workers()),
        required=REQUIRED,
        force=force,
        what="synthetic dataset",
    )


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """The scene options the synthetic CLIs share, named as the ``ensure_*`` keywords."""
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-train", type=int)
    parser.add_argument("--num-val", type=int)
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"))
    parser.add_argument("--max-people", type=int)
    parser.add_argument("--min-people", type=int)


def main(argv: list[str] | None = None) -> None:
    parser = cache.cli_parser(
        "Generate the synthetic COCO-format person keypoint dataset.", default_root="data/synthetic"
    )
    add_scene_arguments(parser)
    parser.add_argument("--crowd-prob", type=float)
    cache.run_cli(ensure_synthetic_coco, parser.parse_args(argv), what="synthetic COCO dataset", count="annotations")


if __name__ == "__main__":
    main()
