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

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.synthetic import cache
from src.synthetic.coco_writer import coco_categories, coco_info, scene_annotations
from src.synthetic.params import IMAGE_ID_STRIDE, COCOParams, SceneConfig
from src.synthetic.scene import Scene, render_scene

GENERATOR = "src.synthetic"
GENERATOR_VERSION = 4  # bump whenever the output for given parameters changes (invalidates caches)
MANIFEST = cache.MANIFEST
SPLITS = (("train2017", 0), ("val2017", 1))  # (name, code used in seeds and image ids)
REQUIRED = tuple(f"annotations/person_keypoints_{name}.json" for name, _ in SPLITS)  # besides the images


def generation_params(params: COCOParams) -> dict:
    """The manifest's parameters of a synthetic COCO dataset: this generator's name and version and
    `COCOParams.cache_key` (also what each worker renders from)."""
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, **params.cache_key()}


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
    params: COCOParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic COCO person-keypoint dataset for these parameters.

    ``params`` (`COCOParams`; what each one means is there) and ``options``, keyword arguments
    named as its fields that replace some of them (the data config's ``data.reader.synthetic``),
    give the dataset; an unknown or out-of-range one is a ValueError naming it. Returns root at
    once when its manifest matches (same generator version and parameters); otherwise renders the
    dataset (into a temporary folder, then renamed into place) and returns root. ``workers``
    (default: available cores, at most 8) and ``force`` do not change the output.

    Raises FileExistsError when root exists, is not empty and was not written by this generator.
    """
    key = generation_params(COCOParams.from_options(params, **options))
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=GENERATOR_VERSION,
        params=key,
        write=lambda out: _write_dataset(out, key, workers if workers is not None else cache.default_workers()),
        required=REQUIRED,
        force=force,
        what="synthetic dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_coco,
        COCOParams,
        argv,
        description="Generate the synthetic COCO-format person keypoint dataset.",
        default_root="data/synthetic",
        what="synthetic COCO dataset",
        count="annotations",
    )


if __name__ == "__main__":
    main()
