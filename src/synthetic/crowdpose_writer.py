"""Write (or reuse) a synthetic dataset in the CrowdPose format (HigherHRNet repository layout)::

    json/crowdpose_trainval.json   from the synthetic COCO training split
    json/crowdpose_test.json       from the synthetic COCO validation split
    images/*.jpg                   both splits (their file names differ)
    manifest.json                  generator version + parameter hash (the cache stamp)

The scenes are the COCO generator's (`generate.ensure_synthetic_coco`, same parameters, same
pictures); each person is re-annotated in the `crowdpose14` layout:

- the 12 limb joints (shoulders to ankles) are the COCO ones, with their visibility;
- head (the top of the skull) and neck (the base of the skull) are the person's 3D joints
  projected with the image's camera: labelled 2 when inside the image and one of the person's
  COCO face joints is visible, 1 when inside otherwise, 0 outside;
- bbox as in COCO, grown to hold head and neck; no ``area`` and no segmentation (CrowdPose has
  neither); crowd regions are left out (CrowdPose has none);
- every image gets ``crowdIndex``, CrowdPose's definition: the mean over the people with labelled
  joints of (labelled joints of other people inside the person's box) / (the person's labelled
  joints), rounded to 2 decimals; 0 for an image without such people.

CLI: ``python -m src.synthetic.crowdpose_writer --root data/synthetic_crowdpose``
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from src.layouts import COCO17, CROWDPOSE14
from src.synthetic import cache, generate
from src.synthetic.figure import JOINT_INDEX
from src.synthetic.params import COCOParams

GENERATOR = "src.synthetic.crowdpose"
VERSION = 1  # bump whenever the output for given parameters changes (invalidates caches)
SPLITS = (("train2017", "trainval"), ("val2017", "test"))  # synthetic COCO split -> CrowdPose split
REQUIRED = tuple(f"json/crowdpose_{name}.json" for _, name in SPLITS)
_LIMBS = [COCO17.keypoint_names.index(name) for name in CROWDPOSE14.keypoint_names[:12]]
_FACE = [COCO17.keypoint_names.index(name) for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
_SKULL = (JOINT_INDEX["head_top"], JOINT_INDEX["upper_neck"])  # -> head, neck


def crowd_index(people: list[tuple[np.ndarray, list[float]]]) -> float:
    """CrowdPose's crowd index of one image from its people's (K, 3) keypoints and [x, y, w, h] boxes."""
    ratios = []
    for i, (kpts, (x, y, w, h)) in enumerate(people):
        own = int((kpts[:, 2] > 0).sum())
        if own == 0:
            continue
        others = np.concatenate([k[k[:, 2] > 0, :2] for j, (k, _) in enumerate(people) if j != i] or [np.zeros((0, 2))])
        inside = (others[:, 0] >= x) & (others[:, 0] <= x + w) & (others[:, 1] >= y) & (others[:, 1] <= y + h)
        ratios.append(int(inside.sum()) / own)
    return round(float(np.mean(ratios)), 2) if ratios else 0.0


def crowdpose_person(ann: dict, camera: dict, width: int, height: int) -> tuple[np.ndarray, list[float]]:
    """(14, 3) keypoints and the box of one synthetic COCO annotation (rules: module docstring)."""
    coco = np.asarray(ann["keypoints"], np.float64).reshape(COCO17.num_keypoints, 3)
    kpts = np.zeros((CROWDPOSE14.num_keypoints, 3))
    kpts[:12] = coco[_LIMBS]
    joints_3d = np.asarray(ann["keypoints_3d"], np.float64).reshape(-1, 3)[list(_SKULL)]
    face_visible = bool((coco[_FACE, 2] == 2).any())
    labelled = ann.get("num_keypoints", 0) > 0
    for slot, (x, y, z) in zip((12, 13), joints_3d):
        if not labelled or z <= 50.0:
            continue
        u, v = camera["f"][0] * x / z + camera["c"][0], camera["f"][1] * y / z + camera["c"][1]
        if 0 <= u <= width - 1 and 0 <= v <= height - 1:
            kpts[slot] = [round(u, 2), round(v, 2), 2 if face_visible else 1]
    x0, y0, w, h = ann["bbox"]
    x1, y1 = x0 + w, y0 + h
    for u, v, flag in kpts[12:]:
        if flag > 0:
            x0, y0, x1, y1 = min(x0, u), min(y0, v), max(x1, u), max(y1, v)
    return kpts, [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)]


def convert_split(coco: dict) -> dict:
    """A synthetic COCO keypoint file (dict) -> a CrowdPose one."""
    images = {img["id"]: img for img in coco["images"]}
    by_image: dict[int, list[tuple[dict, np.ndarray, list[float]]]] = {i: [] for i in images}
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        img = images[ann["image_id"]]
        kpts, box = crowdpose_person(ann, img["camera"], img["width"], img["height"])
        by_image[ann["image_id"]].append((ann, kpts, box))
    out_images, out_anns = [], []
    for image_id, img in images.items():
        people = by_image[image_id]
        out_images.append(
            {
                "file_name": img["file_name"],
                "id": image_id,
                "height": img["height"],
                "width": img["width"],
                "crowdIndex": crowd_index([(k, b) for _, k, b in people]),
            }
        )
        for ann, kpts, box in people:
            out_anns.append(
                {
                    "num_keypoints": int((kpts[:, 2] > 0).sum()),
                    "iscrowd": 0,
                    "keypoints": [round(float(v), 2) if i % 3 < 2 else int(v) for i, v in enumerate(kpts.reshape(-1))],
                    "image_id": image_id,
                    "bbox": box,
                    "category_id": 1,
                    "id": ann["id"],
                }
            )
    categories = [
        {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(CROWDPOSE14.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in CROWDPOSE14.skeleton],
        }
    ]
    return {"categories": categories, "images": out_images, "annotations": out_anns}


def _write(out: Path, params: COCOParams, workers: int | None) -> dict:
    source = out / "coco_source"
    generate.ensure_synthetic_coco(source, params, workers=workers)
    (out / "json").mkdir()
    (out / "images").mkdir()
    summary = {}
    for coco_split, name in SPLITS:
        data = convert_split(json.loads((source / "annotations" / f"person_keypoints_{coco_split}.json").read_text()))
        (out / "json" / f"crowdpose_{name}.json").write_text(json.dumps(data))
        for image in (source / "images" / coco_split).iterdir():
            image.rename(out / "images" / image.name)
        summary[name] = {"images": len(data["images"]), "people": len(data["annotations"])}
    shutil.rmtree(source)
    return summary


def ensure_synthetic_crowdpose(
    root: str | Path,
    params: COCOParams | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    **options: Any,
) -> Path:
    """Make sure ``root`` holds the synthetic CrowdPose dataset for these scene parameters (those of
    `generate.ensure_synthetic_coco`: ``params`` and keyword arguments replacing some of them);
    returns root."""
    chosen = COCOParams.from_options(params, **options)
    return cache.ensure_cached(
        root,
        generator=GENERATOR,
        version=VERSION,
        params={"coco": generate.generation_params(chosen)},
        write=lambda out: _write(out, chosen, workers),
        required=REQUIRED,
        force=force,
        what="synthetic CrowdPose dataset",
    )


def main(argv: list[str] | None = None) -> None:
    cache.run_cli(
        ensure_synthetic_crowdpose,
        COCOParams,
        argv,
        description="Generate the synthetic CrowdPose-format dataset (HigherHRNet layout).",
        default_root="data/synthetic_crowdpose",
        what="synthetic CrowdPose dataset",
        count="people",
    )


if __name__ == "__main__":
    main()
