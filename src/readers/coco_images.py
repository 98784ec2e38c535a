"""COCO keypoint annotations -> bottom-up (whole-image) records, as HigherHRNet reads them.

One record per image:

    {"image_id": int, "image_file": str, "width": int, "height": int,
     "joints": (M, K, 3) float32  x, y, v of the M people with keypoints (image pixels, COCO v),
     "box_sizes": (M,) float32    max(bbox w, bbox h) of those people (scale-aware sigma),
     "ignore_rle": bytes | None   compressed COCO RLE (size height x width) of the union of the
                                  regions the loss ignores, None when there are none}

The rules follow the official HigherHRNet reader (``lib/dataset/COCOKeypoints.py``):

* ``joints`` come from every annotation with ``num_keypoints > 0`` (the official reader keeps
  ``iscrowd == 0 or num_keypoints > 0``; annotations with no keypoint add no target, so leaving
  them out changes nothing but the person slots of the tag targets);
* the ignore region is the union of the segmentations of crowd annotations (``iscrowd = 1``) and
  of people with ``num_keypoints == 0``; the loss mask is 1 outside it and 0 inside. Polygons,
  uncompressed RLE (list counts) and compressed RLE (string counts) are accepted; polygons with
  fewer than three points carry no area and are skipped. The union is precomputed here with
  ``pycocotools.mask`` and kept compressed (a few hundred bytes per image);
* training keeps the images with at least one annotation of a keypoint category (any kind:
  people, crowd regions, people without keypoints), as the official
  ``remove_images_without_annotations``; validation keeps every image.

``num_keypoints`` is read from the annotation when present, otherwise counted as the keypoints
with v > 0. A missing ``segmentation`` counts as an empty region. The joints are the annotation's
``keypoints``, or several keys concatenated (``fields``, e.g. COCO-WholeBody's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from src.layouts import KeypointInfo
from src.readers.coco_json import (
    declared_keypoint_count,
    image_table,
    keypoint_categories,
    keypoint_fields,
    read_coco_json,
    require_keys,
    stacked_keypoints,
)
from src.readers.errors import AnnotationError

__all__ = ["decode_ignore_mask", "load_coco_images"]


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and x == x


def _segmentation_rles(seg: Any, height: int, width: int, path: Path, ann_id: Any) -> list[dict]:
    """COCO segmentation (polygons or RLE) -> list of compressed RLE dicts of size (height, width)."""
    where = f"{path}: annotation {ann_id!r}"
    if seg is None:
        return []
    if isinstance(seg, dict):
        return [_rle(seg, height, width, where)]
    if not isinstance(seg, list):
        raise AnnotationError(f"{where} has a 'segmentation' of type {type(seg).__name__}, expected polygons or RLE")
    polygons, rles = [], []
    for part in seg:
        if isinstance(part, dict):
            rles.append(_rle(part, height, width, where))
        elif isinstance(part, list):
            if not all(_is_number(v) for v in part) or len(part) % 2:
                raise AnnotationError(f"{where} has a segmentation polygon that is not an even-length list of numbers")
            if len(part) >= 6:  # fewer than three points: no area
                polygons.append([float(v) for v in part])
        else:
            raise AnnotationError(f"{where} has a segmentation entry of type {type(part).__name__}")
    if polygons:
        rles.extend(mask_utils.frPyObjects(polygons, height, width))
    return rles


def _rle(obj: dict, height: int, width: int, where: str) -> dict:
    if "counts" not in obj or "size" not in obj:
        raise AnnotationError(f"{where} has an RLE segmentation without 'counts' and 'size'")
    size = obj["size"]
    if not isinstance(size, list) or len(size) != 2 or [height, width] != [int(v) for v in size if _is_number(v)]:
        raise AnnotationError(
            f"{where} has an RLE segmentation of size {size!r}, but the image is [height, width] = [{height}, {width}]"
        )
    counts = obj["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise AnnotationError(f"{where} has RLE counts that are not non-negative integers")
        if sum(counts) != height * width:
            raise AnnotationError(f"{where} has RLE counts summing to {sum(counts)}, expected {height * width}")
        return mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    if isinstance(counts, (str, bytes)):
        try:
            counts = counts.encode("ascii") if isinstance(counts, str) else counts
            runs = _rle_counts(counts)
        except UnicodeEncodeError:
            runs = np.array([-1])
        if (runs < 0).any() or runs.sum() != height * width or any(c < 48 or c > 111 for c in counts):
            raise AnnotationError(f"{where} has a compressed RLE that does not decode to a {height} x {width} mask")
        return {"counts": counts, "size": [height, width]}
    raise AnnotationError(f"{where} has RLE counts of type {type(counts).__name__}")


def _rle_counts(rle: bytes) -> np.ndarray:
    """Compressed COCO RLE string -> run lengths (the LEB128-like code of pycocotools' rleFrString:
    5 bits per character offset by 48, bit 0x20 = more follows, sign-extended; from the third run
    on each value is a delta to the run two before)."""
    counts: list[int] = []
    value, shift = 0, 0
    for char in rle:
        c = char - 48
        value |= (c & 0x1F) << shift
        shift += 5
        if c & 0x20:
            continue
        if c & 0x10:
            value -= 1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value, shift = 0, 0
    return np.asarray(counts, dtype=np.int64)


def decode_ignore_mask(rle: bytes | None, height: int, width: int) -> np.ndarray:
    """Compressed ignore RLE -> (height, width) uint8, 1 inside the ignored regions (C order).

    Decoded here (runs alternate 0 / 1, column-major) rather than with ``pycocotools.mask.decode``,
    which warns under numpy 2.
    """
    if not rle:
        return np.zeros((height, width), dtype=np.uint8)
    counts = _rle_counts(rle)
    if counts.sum() != height * width or (counts < 0).any():
        raise ValueError(f"ignore RLE does not describe a {height} x {width} mask")
    values = np.arange(len(counts), dtype=np.uint8) & 1
    return np.ascontiguousarray(np.repeat(values, counts).reshape(width, height).T)


def _num_keypoints(ann: dict, kpts: np.ndarray | None, path: Path, ann_id: Any) -> int:
    if "num_keypoints" in ann:
        n = ann["num_keypoints"]
        if not _is_number(n) or n < 0:
            raise AnnotationError(f"{path}: annotation {ann_id!r} has an invalid 'num_keypoints' value {n!r}")
        return int(n)
    return 0 if kpts is None else int((kpts[:, 2] > 0).sum())


def load_coco_images(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    keypoint_info: KeypointInfo,
    training: bool,
    fields: dict[str, int] | None = None,
    data: dict | None = None,
) -> list[dict]:
    """Read a COCO keypoint file into one bottom-up record per image (see the module docstring).

    Args:
        ann_file: ``person_keypoints_*.json`` (COCO format; any layout matching ``keypoint_info``).
        image_dir: folder holding the images named by ``images[].file_name``.
        keypoint_info: the keypoint layout; its K must match the file.
        training: keep only images with at least one annotation (official training set);
            otherwise keep every image.
        fields: the annotation keys holding the joints and their counts (`keypoint_fields`;
            default ``{"keypoints": K}``).
        data: the file's content when the caller has read (and reshaped) it already (PoseTrack18);
            ``ann_file`` then only names it in messages.

    Returns:
        records in the order of the file's ``images`` list; joints (M, K, 3), box_sizes (M,).

    Raises:
        DatasetNotFoundError: the annotation file does not exist.
        AnnotationError: malformed content (the message names the file and the problem).
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    if data is None:
        data = read_coco_json(ann_file)
    images = image_table(data, ann_file)
    fields = keypoint_fields(fields, keypoint_info)
    cat_ids = keypoint_categories(data, ann_file, keypoint_info, declared=declared_keypoint_count(fields))
    anns = data["annotations"]
    if not isinstance(anns, list):
        raise AnnotationError(f"{ann_file}: 'annotations' must be a list, got {type(anns).__name__}")
    k = keypoint_info.num_keypoints

    kept, ids = [], []
    for i, ann in enumerate(anns):
        require_keys(ann, ("image_id",), ann_file, "annotation", i)
        if ann.get("category_id", 1) not in cat_ids:
            continue
        ann_id = ann.get("id", f"#{i}")
        if ann["image_id"] not in images:
            raise AnnotationError(
                f"{ann_file}: annotation {ann_id!r} refers to image_id {ann['image_id']!r}, which is not in 'images'"
            )
        kept.append(ann)
        ids.append(ann_id)
    first = next(iter(fields))
    with_kpts = [j for j, ann in enumerate(kept) if first in ann]
    kpts_all = stacked_keypoints([kept[j] for j in with_kpts], ann_file, [ids[j] for j in with_kpts], fields)
    kpts_of = dict(zip(with_kpts, kpts_all))

    people: dict[int, list[tuple[np.ndarray, float]]] = {}
    ignore: dict[int, list[dict]] = {}
    annotated: set[int] = set()
    for j, ann in enumerate(kept):
        ann_id, image_id = ids[j], ann["image_id"]
        annotated.add(image_id)
        kpts = kpts_of.get(j)
        num_kpts = _num_keypoints(ann, kpts, ann_file, ann_id)
        crowd = ann.get("iscrowd", 0)
        if not _is_number(crowd):
            raise AnnotationError(f"{ann_file}: annotation {ann_id!r} has an invalid 'iscrowd' value {crowd!r}")
        if num_kpts > 0:
            if kpts is None:
                raise AnnotationError(f"{ann_file}: annotation {ann_id!r} is missing the key {first!r}")
            box = ann.get("bbox")
            if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
                raise AnnotationError(
                    f"{ann_file}: annotation {ann_id!r} has 'bbox' {box!r}, expected [x, y, w, h] numbers"
                )
            people.setdefault(image_id, []).append((kpts, float(max(box[2], box[3]))))
        if crowd or num_kpts == 0:
            _, width, height = images[image_id]
            rles = _segmentation_rles(ann.get("segmentation"), height, width, ann_file, ann_id)
            ignore.setdefault(image_id, []).extend(rles)

    prefix = str(image_dir) + os.sep
    records = []
    for image_id, (file_name, width, height) in images.items():
        if training and image_id not in annotated:
            continue
        persons = people.get(image_id, [])
        joints = np.zeros((len(persons), k, 3), dtype=np.float32)
        sizes = np.zeros(len(persons), dtype=np.float32)
        for m, (kpts, size) in enumerate(persons):
            joints[m] = kpts
            sizes[m] = size
        rles = ignore.get(image_id)
        rle = mask_utils.merge(rles, intersect=False)["counts"] if rles else None
        records.append(
            {
                "image_id": int(image_id),
                "image_file": prefix + file_name,
                "width": int(width),
                "height": int(height),
                "joints": joints,
                "box_sizes": sizes,
                "ignore_rle": rle,
            }
        )
    return records
