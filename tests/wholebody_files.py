"""Hand-made COCO-WholeBody-format files for the whole-body tests (133 joints split over five keys)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from src.layouts import get_keypoint_info
from src.readers.coco_wholebody import WHOLEBODY_FIELDS

WB = get_keypoint_info("coco_wholebody")
PARTS = {name: list(ids) for name, ids in WB.parts}


def person(rng: np.random.Generator, box: tuple[float, float, float, float], labelled: dict[str, bool]) -> np.ndarray:
    """(133, 3) joints inside ``box``, v = 2 for the parts ``labelled`` says (others all zero)."""
    x, y, w, h = box
    joints = np.zeros((133, 3))
    for part, ids in PARTS.items():
        if labelled.get(part, True):
            joints[ids, 0] = rng.uniform(x + 0.1 * w, x + 0.9 * w, len(ids))
            joints[ids, 1] = rng.uniform(y + 0.1 * h, y + 0.9 * h, len(ids))
            joints[ids, 2] = 2
    return joints


def write_wholebody(path: Path, people: list[tuple[int, np.ndarray, tuple, float]]) -> Path:
    """A COCO-WholeBody-format file: (image id, (133, 3) joints, box, area) per person, the joints
    split over keypoints / foot_kpts / face_kpts / lefthand_kpts / righthand_kpts."""
    annotations = []
    for i, (image_id, joints, box, area) in enumerate(people):
        ann = {"id": i + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(box), "area": area}
        start = 0
        for field, count in WHOLEBODY_FIELDS.items():
            ann[field] = joints[start : start + count].reshape(-1).tolist()
            start += count
        ann["num_keypoints"] = int((joints[:17, 2] > 0).sum())
        annotations.append(ann)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in {p[0] for p in people}]
    categories = [{"id": 1, "name": "person", "keypoints": list(WB.keypoint_names[:17]), "skeleton": []}]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path
