"""Write (or reuse) the synthetic COCO-format person keypoint dataset.

Layout under ``root``::

    annotations/person_keypoints_train2017.json
    annotations/person_keypoints_val2017.json
    images/train2017/*.jpg
    images/val2017/*.jpg
    manifest.json            # generator version + hash of every generation parameter

Generation writes into a temporary sibling folder and renames it into place, with the manifest
written last, so an interrupted run never leaves a dataset that looks complete. Every image has
its own random generator seeded from (seed, split, index), so the output does not depend on the
order or the number of worker processes; the same seed gives byte-identical JSON.

CLI: ``python -m src.data.synthetic.generate --root data/synthetic --seed 0 [--num-train N --num-val M]``
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from src.data.synthetic.coco_writer import ANNOTATIONS_PER_IMAGE, coco_categories, coco_info, scene_annotations
from src.data.synthetic.scene import SceneConfig, render_scene

GENERATOR = "src.data.synthetic"
GENERATOR_VERSION = 4  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = "manifest.json"
SPLITS = (("train2017", 0), ("val2017", 1))  # (name, code used in seeds and image ids)
IMAGE_ID_STRIDE = 1_000_000  # val image ids start at 1_000_001, so ids are unique across splits

DEFAULT_NUM_TRAIN = 1000
DEFAULT_NUM_VAL = 150
DEFAULT_IMAGE_SIZE = (320, 256)


def generation_params(*, seed: int, num_train: int, num_val: int, image_size: tuple[int, int],
                      max_people: int, min_people: int, crowd_prob: float, empty_prob: float, occluder_prob: float,
                      min_height: float, max_height_frac: float, jpeg_quality: int, min_area: int,
                      clutter: float = 0.6, facing_camera_prob: float = 0.85,
                      keypoint_min_area: int = 32 * 32) -> dict:
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
    scene = dataclasses.asdict(SceneConfig(
        image_size=(w, h), max_people=int(max_people), min_people=int(min_people), crowd_prob=float(crowd_prob), empty_prob=float(empty_prob),
        occluder_prob=float(occluder_prob), min_height=float(min_height), max_height_frac=float(max_height_frac),
        clutter=float(clutter), facing_camera_prob=float(facing_camera_prob)))
    scene["image_size"] = [w, h]
    return {
        "generator": GENERATOR, "version": GENERATOR_VERSION, "seed": int(seed),
        "num_train": int(num_train), "num_val": int(num_val), "jpeg_quality": int(jpeg_quality),
        "min_area": int(min_area), "keypoint_min_area": int(keypoint_min_area), "scene": scene,
    }


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def is_complete(root: str | Path, params: dict) -> bool:
    """True when root holds a finished dataset generated with exactly these parameters."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("version") != GENERATOR_VERSION or manifest.get("params_hash") != params_hash(params):
        return False
    return all((root / "annotations" / f"person_keypoints_{name}.json").is_file() for name, _ in SPLITS)


def _render_image(task: tuple) -> tuple[dict, list[dict]]:
    """Render, save and annotate one image; task = (image_dir, split_code, index, params)."""
    image_dir, split_code, index, params = task
    scene_cfg = dict(params["scene"])
    scene_cfg["image_size"] = tuple(scene_cfg["image_size"])
    rng = np.random.default_rng(np.random.SeedSequence([params["seed"], split_code, index]))
    scene = render_scene(rng, SceneConfig(**scene_cfg))
    image_id = split_code * IMAGE_ID_STRIDE + index + 1
    file_name = f"{image_id:012d}.jpg"
    ok = cv2.imwrite(str(Path(image_dir) / file_name), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, params["jpeg_quality"]])
    if not ok:
        raise OSError(f"could not write {Path(image_dir) / file_name}")
    h, w = scene.image.shape[:2]
    image = {"id": image_id, "file_name": file_name, "width": w, "height": h, "camera": scene.camera.to_json()}
    return image, scene_annotations(scene, image_id, min_area=params["min_area"],
                                    keypoint_min_area=params["keypoint_min_area"])


def _default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _map(tasks: list[tuple], workers: int) -> list[tuple[dict, list[dict]]]:
    if workers <= 1 or len(tasks) < 64 or mp.current_process().daemon:
        return [_render_image(t) for t in tasks]
    # spawn: safe when the caller has threads (torch), and the same on every platform
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(_render_image, tasks, chunksize=max(1, min(32, len(tasks) // (4 * workers))))


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
        chunk = results[start:start + count]
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


def _owned_by_us(root: Path) -> bool:
    if not any(root.iterdir()):
        return True
    try:
        return json.loads((root / MANIFEST).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def _remove_stale_temporaries(root: Path, max_age_s: float = 3600.0) -> None:
    for path in root.parent.glob(f".{root.name}.tmp-*"):
        try:
            if time.time() - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


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
    root = Path(root)
    params = generation_params(
        seed=seed, num_train=num_train, num_val=num_val, image_size=image_size, max_people=max_people,
        min_people=min_people, crowd_prob=crowd_prob, empty_prob=empty_prob, occluder_prob=occluder_prob, min_height=min_height,
        max_height_frac=max_height_frac, jpeg_quality=jpeg_quality, min_area=min_area, clutter=clutter,
        facing_camera_prob=facing_camera_prob, keypoint_min_area=keypoint_min_area)
    if not force and is_complete(root, params):
        return root
    if root.exists() and not (root.is_dir() and _owned_by_us(root)):
        raise FileExistsError(
            f"{root} exists and is not a synthetic dataset written by {GENERATOR}; "
            "pick another root or remove it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        summary = _write_dataset(tmp, params, workers if workers is not None else _default_workers())
        manifest = {"generator": GENERATOR, "version": GENERATOR_VERSION, "params_hash": params_hash(params),
                    "params": params, "splits": summary}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}-{time.monotonic_ns()}"
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, root)
            except OSError:
                if not is_complete(root, params):  # a concurrent run finished first: keep its copy
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _remove_stale_temporaries(root)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the synthetic COCO-format person keypoint dataset.")
    parser.add_argument("--root", default="data/synthetic", help="output folder (default: data/synthetic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=DEFAULT_NUM_TRAIN)
    parser.add_argument("--num-val", type=int, default=DEFAULT_NUM_VAL)
    parser.add_argument("--image-size", type=int, nargs=2, default=DEFAULT_IMAGE_SIZE, metavar=("W", "H"))
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--min-people", type=int, default=1)
    parser.add_argument("--crowd-prob", type=float, default=0.12)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: available cores, <= 8)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the cache matches")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    root = ensure_synthetic_coco(
        args.root, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
        image_size=tuple(args.image_size), max_people=args.max_people, min_people=args.min_people, crowd_prob=args.crowd_prob,
        workers=args.workers, force=args.force)
    elapsed = time.perf_counter() - start
    splits = json.loads((root / MANIFEST).read_text())["splits"]
    counts = ", ".join(f"{name}: {s['images']} images / {s['annotations']} annotations" for name, s in splits.items())
    print(f"synthetic COCO dataset ready at {root.resolve()} ({counts}) in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
