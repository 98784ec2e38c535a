"""COCO keypoint annotations and person detections -> top-down person records.

One record is one person crop to train on or to evaluate:

    {"sample_id": int, "image_id": int, "image_file": str, "category_id": int,
     "center": (2,) float32, "scale": (2,) float32, "area": float, "box_score": float,
     "keypoints": (K, 2) float32, "visible": (K,) float32}

``area`` is the padded, aspect-corrected box area (200 s_x)(200 s_y) that the official OKS-NMS
uses. ``sample_id`` is a running index over the returned list (unique within one call).

Ground-truth boxes follow the official HRNet reader (``lib/dataset/coco.py``): crowd annotations
are skipped; the box is sanitised as x1 = max(0, x), y1 = max(0, y), x2 = min(W - 1, x1 + max(0,
w - 1)), y2 = min(H - 1, y1 + max(0, h - 1)) and the clean box is (x1, y1, x2 - x1, y2 - y1); an
annotation is dropped when its ``area`` is 0, when x2 < x1 or y2 < y1, or when all of its keypoint
values are 0 (no labelled keypoint; with ``labelled_by_num_keypoints``, mmpose's rule instead: when its
``num_keypoints`` is 0). COCO visibility v in {1, 2} becomes 1. Keypoints outside the image are kept
as they are. The joints are the annotation's ``keypoints``, or the concatenation of several keys
(``keypoint_fields``, e.g. COCO-WholeBody's). ``category_id`` is the annotation's (the file's keypoint
category when it has none).

Detection boxes follow ``_load_coco_person_detection_results``: detections of the keypoint
categories only (COCO: 1, person), boxes used as given, keypoints zero. The official code keeps a
detection when ``score >= IMAGE_THRE`` (it skips ``score < thr``); ``det_score_thr`` has the same
meaning here. Detection records get ``visible = 0`` (no ground truth, so no training target), where
the official code sets ones.

The work per annotation is linear and mostly vectorised, so reading is bound by ``json.load``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from src.geometry import PIXEL_STD, box_xywh_to_center_scale
from src.layouts import KeypointInfo
from src.readers.coco_json import (
    declared_keypoint_count,
    image_table,
    keypoint_categories,
    keypoint_fields,
    numeric_array,
    read_coco_json,
    require_keys,
    scalar_array,
    stacked_keypoints,
)
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.json_files import read_json

COCO_URLS = {
    "annotations": "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
    "train2017": "http://images.cocodataset.org/zips/train2017.zip",
    "val2017": "http://images.cocodataset.org/zips/val2017.zip",
}


def list_coco_images(ann_file: str | Path) -> dict[int, str]:
    """Image id -> file name of every image an annotation file lists."""
    path = Path(ann_file)
    return {image_id: name for image_id, (name, _, _) in image_table(read_coco_json(path), path).items()}


def _make_record(
    sample_id: int,
    image_id: int,
    image_file: str,
    box: np.ndarray,
    *,
    category_id: int,
    aspect_ratio: float,
    padding: float,
    box_score: float,
    keypoints: np.ndarray,
    visible: np.ndarray,
) -> dict:
    center, scale = box_xywh_to_center_scale(box, aspect_ratio=aspect_ratio, padding=padding)
    return {
        "sample_id": sample_id,
        "image_id": image_id,
        "image_file": image_file,
        "category_id": int(category_id),
        "center": center.astype(np.float32, copy=False),
        "scale": scale.astype(np.float32, copy=False),
        "area": float(scale[0]) * PIXEL_STD * float(scale[1]) * PIXEL_STD,
        "box_score": float(box_score),
        "bbox": np.asarray(box, np.float32),  # (4,) x, y, w, h before padding (mmpose's box shift)
        "keypoints": keypoints,
        "visible": visible,
    }


def _gt_records(
    data: dict,
    path: Path,
    images: dict,
    image_dir: Path,
    keypoint_info: KeypointInfo,
    aspect_ratio: float,
    padding: float,
    area_from_box: bool,
    fields: dict[str, int],
    labelled_by_num_keypoints: bool,
) -> list[dict]:
    anns = data["annotations"]
    if not isinstance(anns, list):
        raise AnnotationError(f"{path}: 'annotations' must be a list, got {type(anns).__name__}")
    cat_ids = keypoint_categories(data, path, keypoint_info, declared=declared_keypoint_count(fields))
    default_category = min(cat_ids)

    kept = []
    for i, ann in enumerate(anns):
        require_keys(ann, ("image_id", "bbox"), path, "annotation", i)
        if ann.get("iscrowd", 0):
            continue
        if ann.get("category_id", default_category) not in cat_ids:
            continue
        needed = ("area",) * (not area_from_box) + ("num_keypoints",) * labelled_by_num_keypoints
        require_keys(ann, needed, path, "annotation", i)
        kept.append(ann)
    ids = [a.get("id", f"#{i}") for i, a in enumerate(kept)]
    kpts = stacked_keypoints(kept, path, ids, fields)
    categories = [int(a.get("category_id", default_category)) for a in kept]
    boxes = numeric_array([a["bbox"] for a in kept], path, "bbox", ids, 4, "annotation")
    if area_from_box:  # files without areas (CrowdPose): the box area stands in, as 0 for an empty box
        areas = np.array([a["area"] if "area" in a else b[2] * b[3] for a, b in zip(kept, boxes)], np.float64)
    else:
        areas = scalar_array([a["area"] for a in kept], path, "area", ids, "annotation")

    image_ids = np.empty(len(kept), dtype=np.int64)
    sizes = np.empty((len(kept), 2), dtype=np.float64)
    for i, ann in enumerate(kept):
        image_id = ann["image_id"]
        if image_id not in images:
            raise AnnotationError(
                f"{path}: annotation {ids[i]!r} refers to image_id {image_id!r}, which is not in 'images'"
            )
        image_ids[i] = image_id
        _, w, h = images[image_id]
        sizes[i] = (w, h)

    # official box sanitising (HRN lib/dataset/coco.py), vectorised
    x1 = np.maximum(0.0, boxes[:, 0])
    y1 = np.maximum(0.0, boxes[:, 1])
    x2 = np.minimum(sizes[:, 0] - 1, x1 + np.maximum(0.0, boxes[:, 2] - 1))
    y2 = np.minimum(sizes[:, 1] - 1, y1 + np.maximum(0.0, boxes[:, 3] - 1))
    if not kept:
        return []
    if labelled_by_num_keypoints:  # mmpose: num_keypoints == 0 (COCO-WholeBody's counts the body only)
        has_kpts = scalar_array([a["num_keypoints"] for a in kept], path, "num_keypoints", ids, "annotation") > 0
    else:  # official HRNet: skip if max(keypoints) == 0
        has_kpts = kpts.reshape(len(kept), -1).max(axis=1) != 0
    valid = (areas > 0) & (x2 >= x1) & (y2 >= y1) & has_kpts
    clean = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)

    joints = kpts[:, :, :2].astype(np.float32)
    visible = (kpts[:, :, 2] > 0).astype(np.float32)
    prefix = str(image_dir) + os.sep
    records = []
    for i in np.flatnonzero(valid).tolist():
        image_id = int(image_ids[i])
        records.append(
            _make_record(
                len(records),
                image_id,
                prefix + images[image_id][0],
                clean[i],
                category_id=categories[i],
                aspect_ratio=aspect_ratio,
                padding=padding,
                box_score=1.0,
                keypoints=joints[i],
                visible=visible[i],
            )
        )
    return records


def _det_records(
    det_file: Path,
    images: dict,
    image_dir: Path,
    ann_file: Path,
    keypoint_info: KeypointInfo,
    aspect_ratio: float,
    padding: float,
    det_score_thr: float,
    cat_ids: set[int],
) -> list[dict]:
    dets = read_json(det_file, "detection file")
    if not isinstance(dets, list):
        raise AnnotationError(f"{det_file}: expected a list of detections, got {type(dets).__name__}")
    if not dets:
        raise AnnotationError(f"{det_file}: the detection file contains no detections")
    for i, det in enumerate(dets):
        require_keys(det, ("image_id", "category_id", "bbox", "score"), det_file, "detection", i)
    index = [i for i, d in enumerate(dets) if d["category_id"] in cat_ids]
    people = [dets[i] for i in index]
    ids = [f"#{i}" for i in index]
    boxes = numeric_array([d["bbox"] for d in people], det_file, "bbox", ids, 4, "detection")
    scores = scalar_array([d["score"] for d in people], det_file, "score", ids, "detection")

    k = keypoint_info.num_keypoints
    prefix = str(image_dir) + os.sep
    records = []
    for i in np.flatnonzero(scores >= det_score_thr).tolist():
        image_id = people[i]["image_id"]
        if image_id not in images:
            raise AnnotationError(
                f"{det_file}: detection for image_id {image_id!r} but that image is not in {ann_file}"
            )
        records.append(
            _make_record(
                len(records),
                int(image_id),
                prefix + images[image_id][0],
                boxes[i],
                category_id=int(people[i]["category_id"]),
                aspect_ratio=aspect_ratio,
                padding=padding,
                box_score=float(scores[i]),
                keypoints=np.zeros((k, 2), dtype=np.float32),
                visible=np.zeros(k, dtype=np.float32),
            )
        )
    return records


def load_coco_records(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    keypoint_info: KeypointInfo,
    aspect_ratio: float,
    training: bool,
    det_file: str | Path | None = None,
    det_score_thr: float = 0.0,
    padding: float = 1.25,
    area_from_box: bool = False,
    fields: dict[str, int] | None = None,
    labelled_by_num_keypoints: bool = False,
    data: dict | None = None,
) -> list[dict]:
    """Read a COCO keypoint file (and optionally person detections) into top-down records.

    Args:
        ann_file: ``person_keypoints_*.json`` (COCO format; any layout matching ``keypoint_info``).
        image_dir: folder holding the images named by ``images[].file_name``.
        keypoint_info: the keypoint layout; its K must match the file.
        aspect_ratio: w / h of the model input (192 / 256 = 0.75).
        training: True for training records. Ground-truth records are the same either way (the
            official code uses one loader for both); detections are only allowed for evaluation.
        det_file: detection results (list of {image_id, category_id, bbox xywh, score}); when given,
            records come from the person detections instead of the ground-truth boxes.
        det_score_thr: keep detections with score >= this (official IMAGE_THRE, 0.0).
        padding: box enlargement factor (official 1.25).
        area_from_box: annotations may lack ``area`` (CrowdPose files have none); the box area is
            used for the filter of empty annotations instead.
        fields: the annotation keys holding the joints and their counts (`keypoint_fields`;
            default ``{"keypoints": K}``).
        labelled_by_num_keypoints: drop annotations whose ``num_keypoints`` is 0 (mmpose's rule)
            instead of those whose keypoint values are all 0 (HRNet's).
        data: the file's content when the caller has read (and reshaped) it already, as the
            PoseTrack18 reader does with its one file per video; ``ann_file`` then only names it
            in messages.

    Returns:
        N records as described in the module docstring; keypoints (K, 2), visible (K,).

    Raises:
        DatasetNotFoundError: a file does not exist.
        AnnotationError: malformed content (message names the file and the problem).
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    if training and det_file is not None:
        raise ValueError("detection boxes (det_file) are only used for evaluation, not for training")
    if data is None:
        data = read_coco_json(ann_file)
    images = image_table(data, ann_file)
    fields = keypoint_fields(fields, keypoint_info)
    if det_file is not None:
        # the annotations are still validated: the metric evaluates against them
        cat_ids = keypoint_categories(data, ann_file, keypoint_info, declared=declared_keypoint_count(fields))
        return _det_records(
            Path(det_file), images, image_dir, ann_file, keypoint_info, aspect_ratio, padding, det_score_thr, cat_ids
        )
    return _gt_records(
        data,
        ann_file,
        images,
        image_dir,
        keypoint_info,
        aspect_ratio,
        padding,
        area_from_box,
        fields,
        labelled_by_num_keypoints,
    )


def missing_paths(root: str | Path, ann_file: str | Path, image_dir: str | Path) -> list[str]:
    """What of a COCO-format split is not on disk: the root, the annotation file, the image folder."""
    root, ann_file, image_dir = Path(root), Path(ann_file), Path(image_dir)
    missing = [f"dataset root {root}"] * (not root.is_dir())
    missing += [f"annotation file {ann_file}"] * (not ann_file.is_file())
    return missing + [f"image folder {image_dir}/"] * (not image_dir.is_dir())


def root_text(root: Path) -> str:
    """``ROOT = <root>`` for the messages, with the absolute path of a relative root."""
    return f"ROOT = {root}" + ("" if root.is_absolute() else f" (= {root.resolve()})")


def coco_missing_lines(root: str | Path, missing: list[str], *, split: str) -> list[str]:
    """The message for COCO files that are not on disk: what is missing (`missing_paths`), the
    standard layout under ``root``, where to download COCO, how to point the configuration
    elsewhere, and that ``data=synthetic`` works offline. ``split`` names the split ("val2017")."""
    root = Path(root)
    return [
        f"COCO {split} data not found. Missing: " + "; ".join(missing) + ".",
        "",
        f"Expected layout under {root_text(root)}:",
        "  ROOT/annotations/person_keypoints_train2017.json",
        "  ROOT/annotations/person_keypoints_val2017.json",
        "  ROOT/images/train2017/   (000000xxxxxx.jpg)",
        "  ROOT/images/val2017/",
        "",
        "Get it with:",
        f"  python -m src.readers.coco_download --root {root}",
        "or download and unzip (images into ROOT/images/, annotations into ROOT/):",
        *(f"  {url}" for url in COCO_URLS.values()),
        "",
        "Point to another location with e.g. data.root=/path/to/coco, or per file with",
        "data.reader.train_ann=... data.reader.val_ann=... data.reader.train_images=... data.reader.val_images=...",
        "No data at hand? data=synthetic generates a small COCO-format dataset offline.",
    ]


def check_coco_layout(root: str | Path, ann_file: str | Path, image_dir: str | Path, *, split: str) -> None:
    """Raise DatasetNotFoundError, with `coco_missing_lines`, unless ``ann_file`` is a file and
    ``image_dir`` a folder (``split`` names the split in the message, e.g. "train2017")."""
    missing = missing_paths(root, ann_file, image_dir)
    if missing:
        raise DatasetNotFoundError("\n".join(coco_missing_lines(root, missing, split=split)))
