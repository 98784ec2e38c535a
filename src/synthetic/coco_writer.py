"""Scene -> COCO person_keypoints records (images entry, annotations, categories).

Conventions: keypoints [x, y, v] with v = 0 (outside the image / behind the camera, written as
0, 0, 0), 1 (inside but occluded), 2 (visible); pixel centres at integer coordinates. bbox is
[x, y, w, h] of the person's visible mask, grown to include their labelled keypoints; area is the
mask's pixel count; non-crowd segmentations are polygons, crowd regions RLE. Extra fields:
annotation "keypoints_3d" (superset joints ``figure.JOINT_NAMES``, camera frame, mm, flat J*3)
and image "camera" ({"f": [fx, fy], "c": [cx, cy]}).
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from src.layouts import COCO17
from src.synthetic.figure import JOINT_NAMES, layout_indices
from src.synthetic.params import ANNOTATIONS_PER_IMAGE
from src.synthetic.scene import Scene

COCO_INDICES = layout_indices("coco17")


def coco_categories() -> list[dict]:
    """The single COCO person category with COCO-17 names and the 1-based skeleton."""
    return [
        {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(COCO17.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
        }
    ]


def coco_info(*, seed: int, version: int, split: str) -> dict:
    return {
        "description": "Synthetic articulated figures with COCO-17 keypoints (src.synthetic)",
        "version": str(version),
        "seed": seed,
        "split": split,
        "keypoints_3d_names": list(JOINT_NAMES),
        "keypoints_3d_frame": "camera frame in mm: x right, y down, z forward; u = fx*x/z + cx, v = fy*y/z + cy",
    }


def _extent(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys = np.nonzero(mask.any(axis=1))[0]
    xs = np.nonzero(mask.any(axis=0))[0]
    if len(xs) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a boolean mask (H, W) as COCO polygons [[x1, y1, x2, y2, ...], ...]."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    if not polys:  # slivers: fall back to the extent rectangle
        x0, y0, x1, y1 = _extent(mask)
        polys = [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]
    return polys


def mask_to_rle(mask: np.ndarray) -> dict:
    """Compressed RLE of a boolean mask (H, W), counts as str (JSON-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def scene_annotations(scene: Scene, image_id: int, *, min_area: int = 30, keypoint_min_area: int = 0) -> list[dict]:
    """COCO annotations of one scene; people with fewer than min_area visible pixels are left out,
    people with fewer than keypoint_min_area visible pixels are annotated without keypoints."""
    anns: list[dict] = []
    h, w = scene.image.shape[:2]
    for person in scene.persons:
        area = int(person.mask.sum())
        if area < min_area:
            continue
        x0, y0, x1, y1 = _extent(person.mask)
        vis = person.visibility[COCO_INDICES]
        uv = person.joints_2d[COCO_INDICES]
        keypoints: list[float] = []
        if person.keypoint_less or area < keypoint_min_area:
            keypoints = [0] * (3 * len(COCO_INDICES))
            num = 0
        else:
            for (x, y), v in zip(uv, vis):
                if v > 0:
                    keypoints += [round(float(x), 2), round(float(y), 2), int(v)]
                    x0, x1 = min(x0, int(np.floor(x))), max(x1, int(np.ceil(x)))
                    y0, y1 = min(y0, int(np.floor(y))), max(y1, int(np.ceil(y)))
                else:
                    keypoints += [0, 0, 0]
            num = int((vis > 0).sum())
        x1, y1 = min(x1, w - 1), min(y1, h - 1)
        anns.append(
            {
                "id": image_id * ANNOTATIONS_PER_IMAGE + len(anns),
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
                "area": area,
                "num_keypoints": num,
                "keypoints": keypoints,
                "segmentation": mask_to_polygons(person.mask),
                "keypoints_3d": [round(float(c), 1) for c in person.joints_3d.reshape(-1)],
            }
        )
    if scene.crowd_mask is not None:
        area = int(scene.crowd_mask.sum())
        if area >= min_area:
            x0, y0, x1, y1 = _extent(scene.crowd_mask)
            anns.append(
                {
                    "id": image_id * ANNOTATIONS_PER_IMAGE + len(anns),
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 1,
                    "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
                    "area": area,
                    "num_keypoints": 0,
                    "keypoints": [0] * (3 * len(COCO_INDICES)),
                    "segmentation": mask_to_rle(scene.crowd_mask),
                }
            )
    return anns
