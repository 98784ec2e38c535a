"""A tiny hand-made COCO keypoint set for the bottom-up reader and dataset tests.

Layout: ROOT/annotations/person_keypoints.json, ROOT/images/*. Images (id: w x h, content):

    1: 192 x 128 colour JPEG. Person 11 (13 labelled joints), person 12 (5 labelled joints), crowd 13
       (uncompressed RLE, pixels x in [40, 60), y in [20, 50)), keypoint-less person 14 (polygon,
       pixels x in [130, 150), y in [60, 100)).
    2: 120 x 160 grayscale JPEG, one person (21), no 'num_keypoints' field (counted from v).
    3: 160 x 160 RGBA PNG, one person (31) and a keypoint-less person 32 whose segmentation holds a
       degenerate 2-point polygon and a real one (pixels x in [10, 30), y in [100, 130)).
    4: 100 x 80 JPEG without annotations (validation only).
    5: 96 x 128 JPEG with only a crowd region 51 (compressed RLE string, pixels x in [5, 45),
       y in [60, 90)).

Polygons with integer corners a..b cover the pixels a..b-1 (pycocotools rasterisation).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from src.layouts import COCO17

SIZES = {1: (192, 128), 2: (120, 160), 3: (160, 160), 4: (100, 80), 5: (96, 128)}  # id -> (w, h)
FILES = {1: "img1.jpg", 2: "img2_gray.jpg", 3: "img3_rgba.png", 4: "img4_empty.jpg", 5: "img5_crowd.jpg"}
TRAIN_IDS = (1, 2, 3, 5)
ALL_IDS = (1, 2, 3, 4, 5)
# expected ignore regions (x0, x1, y0, y1), half-open, per image
IGNORE = {1: [(40, 60, 20, 50), (130, 150, 60, 100)], 3: [(10, 30, 100, 130)], 5: [(5, 45, 60, 90)]}


def _kpts(points: dict[int, tuple[float, float, int]]) -> list[float]:
    out = [0.0] * 51
    for k, (x, y, v) in points.items():
        out[3 * k : 3 * k + 3] = [float(x), float(y), v]
    return out


# person 11: left side joints well separated from person 12 (right half of image 1)
P11 = {
    0: (70.3, 22.6, 2),
    1: (66.0, 18.2, 2),
    2: (74.9, 18.7, 1),
    5: (60.2, 40.5, 2),
    6: (82.7, 41.1, 2),
    7: (55.5, 60.4, 2),
    8: (88.1, 61.0, 2),
    9: (50.6, 78.2, 2),
    10: (93.4, 79.9, 2),
    11: (64.0, 80.0, 2),
    12: (78.0, 80.5, 2),
    13: (63.2, 100.1, 1),
    15: (62.8, 118.7, 2),
}
P12 = {0: (120.4, 30.2, 2), 5: (112.0, 50.0, 2), 6: (128.6, 50.3, 2), 9: (107.7, 90.9, 2), 16: (170.0, 120.0, 2)}
P21 = {k: (20.0 + 4.5 * k, 15.0 + 8.0 * k, 2) for k in range(17)}
P31 = {0: (80.0, 20.0, 2), 9: (40.5, 60.5, 2), 10: (120.5, 60.5, 2), 15: (70.0, 140.0, 2), 16: (90.0, 140.0, 1)}
JOINTS = {1: [P11, P12], 2: [P21], 3: [P31], 4: [], 5: []}


def _rect_mask(h: int, w: int, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.flatten(order="F")  # COCO RLE runs go down the columns, starting with zeros
    counts, value, run = [], 0, 0
    for p in flat:
        if p == value:
            run += 1
        else:
            counts.append(run)
            value, run = p, 1
    counts.append(run)
    return {"counts": [int(c) for c in counts], "size": list(mask.shape)}


def _rect_polygon(x0: int, x1: int, y0: int, y1: int) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _person(ann_id: int, image_id: int, points: dict, *, with_num: bool = True) -> dict:
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    box = [min(xs) - 5, min(ys) - 5, max(xs) - min(xs) + 10, max(ys) - min(ys) + 10]
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": box,
        "area": box[2] * box[3] * 0.5,
        "keypoints": _kpts(points),
        "segmentation": [_rect_polygon(0, 4, 0, 4)],
    }
    if with_num:
        ann["num_keypoints"] = sum(1 for p in points.values() if p[2] > 0)
    return ann


def annotation_dict() -> dict:
    h1, w1 = SIZES[1][1], SIZES[1][0]
    crowd1 = _uncompressed_rle(_rect_mask(h1, w1, *IGNORE[1][0]))
    h5, w5 = SIZES[5][1], SIZES[5][0]
    crowd5 = mask_utils.encode(np.asfortranarray(_rect_mask(h5, w5, *IGNORE[5][0])))
    crowd5 = {"counts": crowd5["counts"].decode("ascii"), "size": [h5, w5]}
    anns = [
        _person(11, 1, P11),
        _person(12, 1, P12),
        {
            "id": 13,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": [40, 20, 20, 30],
            "area": 600,
            "keypoints": [0] * 51,
            "num_keypoints": 0,
            "segmentation": crowd1,
        },
        {
            "id": 14,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [130, 60, 20, 40],
            "area": 800,
            "keypoints": [0] * 51,
            "num_keypoints": 0,
            "segmentation": [_rect_polygon(*IGNORE[1][1])],
        },
        _person(21, 2, P21, with_num=False),
        _person(31, 3, P31),
        {
            "id": 32,
            "image_id": 3,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [10, 100, 20, 30],
            "area": 600,
            "keypoints": [0] * 51,
            "num_keypoints": 0,
            "segmentation": [[1.0, 1.0, 5.0, 5.0], _rect_polygon(*IGNORE[3][0])],
        },
        {
            "id": 51,
            "image_id": 5,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": [5, 60, 40, 30],
            "area": 1200,
            "keypoints": [0] * 51,
            "num_keypoints": 0,
            "segmentation": crowd5,
        },
    ]
    images = [{"id": i, "file_name": FILES[i], "width": w, "height": h} for i, (w, h) in SIZES.items()]
    categories = [
        {
            "id": 1,
            "name": "person",
            "keypoints": list(COCO17.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
        }
    ]
    return {"images": images, "annotations": anns, "categories": categories}


def expected_joints(image_id: int) -> np.ndarray:
    """(M, 17, 3) float32 as written to the JSON."""
    people = JOINTS[image_id]
    return np.array([np.reshape(_kpts(p), (17, 3)) for p in people], dtype=np.float32).reshape(-1, 17, 3)


def expected_ignore(image_id: int) -> np.ndarray:
    w, h = SIZES[image_id]
    m = np.zeros((h, w), dtype=np.uint8)
    for x0, x1, y0, y1 in IGNORE.get(image_id, []):
        m[y0:y1, x0:x1] = 1
    return m


def _write_image(path: Path, image_id: int) -> None:
    w, h = SIZES[image_id]
    rng = np.random.default_rng(image_id)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if image_id == 2:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image_id == 3:
        image = np.concatenate([image, np.full((h, w, 1), 128, np.uint8)], axis=2)
    assert cv2.imwrite(str(path), image)


def make_bottomup_coco(root: Path) -> Path:
    """Write the set under ``root``; returns the annotation file path."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for image_id in SIZES:
        _write_image(root / "images" / FILES[image_id], image_id)
    ann_file = root / "annotations" / "person_keypoints.json"
    ann_file.write_text(json.dumps(annotation_dict()))
    return ann_file
