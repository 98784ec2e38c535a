"""A tiny hand-made COCO keypoint dataset for the data tests (images + JSON in a temp folder).

Layout: ROOT/annotations/person_keypoints_{train2017,val2017}.json, ROOT/images/{split}/*.jpg.
Both splits hold the same content. Annotations (image 1 is 160 x 120, image 2 is 120 x 160):

    101 image 1, normal person, 17 labelled keypoints (some v=1, some v=0)  -> kept
    102 image 1, iscrowd = 1                                                -> dropped
    103 image 1, area = 0                                                   -> dropped
    104 image 1, no labelled keypoints (all zeros)                          -> dropped
    105 image 1, box entirely right of the image (x2 < x1 after clipping)   -> dropped
    106 image 1, keypoints partly outside the image (negative / beyond W)   -> kept
    201 image 2, normal person, all 17 keypoints visible                    -> kept
    image 3 has no annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from src.layouts import COCO17

IMAGES = {1: (160, 120), 2: (120, 160), 3: (100, 100)}  # id -> (w, h)
KEPT_IDS = (101, 106, 201)


def _keypoints(rng: np.random.Generator, box: tuple[float, float, float, float], vis: list[int]) -> list:
    x, y, w, h = box
    xs = rng.uniform(x + 2, x + w - 2, 17).round(2)
    ys = rng.uniform(y + 2, y + h - 2, 17).round(2)
    out = []
    for k in range(17):
        if vis[k] == 0:
            out += [0, 0, 0]
        else:
            out += [float(xs[k]), float(ys[k]), int(vis[k])]
    return out


def _ann(ann_id: int, image_id: int, box, keypoints, *, area: float | None = None, iscrowd: int = 0) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [float(v) for v in box],
        "area": float(box[2] * box[3] * 0.6) if area is None else area,
        "iscrowd": iscrowd,
        "keypoints": keypoints,
        "num_keypoints": sum(1 for v in keypoints[2::3] if v > 0),
    }


def annotation_dict(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    vis_a = [2] * 12 + [1, 1, 0, 0, 2]
    box_a = (40.0, 10.0, 60.0, 100.0)
    box_f = (90.0, 20.0, 60.0, 90.0)
    kp_f = _keypoints(rng, box_f, [2] * 17)
    kp_f[0:2] = [-5.0, 30.0]  # nose left of the image
    kp_f[3 * 16 : 3 * 16 + 2] = [171.5, 118.0]  # right ankle beyond the right border
    anns = [
        _ann(101, 1, box_a, _keypoints(rng, box_a, vis_a)),
        _ann(102, 1, (0.0, 0.0, 50.0, 50.0), [0] * 51, iscrowd=1),
        _ann(103, 1, (10.0, 10.0, 30.0, 60.0), _keypoints(rng, (10, 10, 30, 60), [2] * 17), area=0.0),
        _ann(104, 1, (20.0, 20.0, 40.0, 80.0), [0] * 51),
        _ann(105, 1, (170.0, 10.0, 20.0, 40.0), _keypoints(rng, (170, 10, 20, 40), [2] * 17)),
        _ann(106, 1, box_f, kp_f),
        _ann(201, 2, (20.0, 30.0, 70.0, 110.0), _keypoints(rng, (20, 30, 70, 110), [2] * 17)),
    ]
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h} for i, (w, h) in IMAGES.items()]
    categories = [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(COCO17.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
        }
    ]
    return {"info": {"description": "tiny test set"}, "images": images, "annotations": anns, "categories": categories}


def write_image(path: Path, w: int, h: int, seed: int) -> None:
    """A smooth random colour image as JPEG."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_tiny_coco(root: Path, seed: int = 0) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    data = annotation_dict(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))
        for image_id, (w, h) in IMAGES.items():
            write_image(root / "images" / split / f"{image_id:012d}.jpg", w, h, seed + image_id)
    return root


def write_detections(path: Path) -> list[dict]:
    """Detections for the tiny set: scores 0.9, 0.5, 0.2 (person) and one non-person box."""
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [38.0, 8.0, 64.0, 104.0], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [88.0, 18.0, 62.0, 92.0], "score": 0.5},
        {"image_id": 2, "category_id": 1, "bbox": [18.0, 28.0, 74.0, 114.0], "score": 0.2},
        {"image_id": 2, "category_id": 3, "bbox": [5.0, 5.0, 20.0, 20.0], "score": 0.99},
    ]
    path.write_text(json.dumps(dets))
    return dets
