"""Reading COCO-format JSON with errors that name the file and the entry: the shared vocabulary of
the COCO-format readers (person records for crops, whole images for bottom-up, CrowdPose).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.layouts import KeypointInfo
from src.readers.errors import AnnotationError
from src.readers.json_files import read_json


def read_coco_json(ann_file: Path) -> dict:
    """An annotation file as a dict with 'images' and 'annotations', or an AnnotationError naming it."""
    data = read_json(ann_file, "annotation file")
    if not isinstance(data, dict):
        raise AnnotationError(f"{ann_file}: expected a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in data:
            raise AnnotationError(f"{ann_file}: missing top-level key '{key}' (not a COCO annotation file?)")
    return data


#: The annotation key of the (x, y, v) keypoint triplets in COCO; datasets may split their joints over
#: several keys (COCO-WholeBody: ``keypoints``, ``foot_kpts``, ``face_kpts``, ...), see `keypoint_fields`.
KEYPOINTS_FIELD = "keypoints"

#: Pixel coordinates beyond this are refused: no image is that large, and float32 (the records'
#: type) stops holding whole pixels at 2^24.
MAX_COORDINATE = 1e7


def numeric_array(
    values: list, path: Path, field: str, ids: Sequence, width: int, what: str, *, pixels: bool | None = None
) -> np.ndarray:
    """Stack per-entry lists of length ``width`` into an (M, width) float64 array.

    Raises AnnotationError naming the file, the entry id and the field when a list has the wrong
    length or holds a non-numeric value, and, for pixel coordinates (``pixels``; by default the
    fields ``keypoints`` and ``bbox``), when a value is beyond `MAX_COORDINATE`.
    """
    for i, v in enumerate(values):
        if not isinstance(v, list) or len(v) != width:
            got = f"{len(v)} values" if isinstance(v, list) else type(v).__name__
            raise AnnotationError(f"{path}: {what} {ids[i]!r} has '{field}' with {got}, expected {width} numbers")
    if not values:
        return np.zeros((0, width), dtype=np.float64)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):  # nested lists or other odd values: find the culprit below
        arr = np.empty(0, dtype=object)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
        for i, v in enumerate(values):
            bad = [x for x in v if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x]
            if bad or not np.isfinite(np.asarray(v, dtype=np.float64)).all():  # bad or inf
                shown = bad[0] if bad else "inf"
                raise AnnotationError(
                    f"{path}: {what} {ids[i]!r} has a non-numeric or non-finite value {shown!r} in '{field}'"
                )
    arr = arr.astype(np.float64, copy=False)
    if pixels is None:
        pixels = field in (KEYPOINTS_FIELD, "bbox")
    if pixels and arr.size and np.abs(arr).max() > MAX_COORDINATE:
        i = int(np.flatnonzero(np.abs(arr).max(axis=1) > MAX_COORDINATE)[0])
        raise AnnotationError(
            f"{path}: {what} {ids[i]!r} has '{field}' values beyond {MAX_COORDINATE:g} px "
            f"(largest {np.abs(arr[i]).max():g}): not pixel coordinates"
        )
    return arr


def scalar_array(values: list, path: Path, field: str, ids: Sequence, what: str) -> np.ndarray:
    """Per-entry numbers as an (M,) float64 array; AnnotationError naming the entry on a non-number."""
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise AnnotationError(f"{path}: {what} {ids[i]!r} has a non-numeric '{field}' value {v!r}")
    return np.asarray(values, dtype=np.float64).reshape(-1)


def require_keys(entry: Any, keys: Sequence[str], path: Path, what: str, index: int) -> None:
    """AnnotationError naming ``what`` #index when ``entry`` is not an object or lacks one of ``keys``."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{path}: {what} #{index} is a {type(entry).__name__}, expected an object")
    for key in keys:
        if key not in entry:
            ident = entry.get("id", f"#{index}")
            raise AnnotationError(f"{path}: {what} {ident} is missing the key '{key}'")


def image_table(data: dict, path: Path) -> dict[int, tuple[str, int, int]]:
    """Image id -> (file name, width, height) of the file's 'images', each entry validated."""
    images = data["images"]
    if not isinstance(images, list):
        raise AnnotationError(f"{path}: 'images' must be a list, got {type(images).__name__}")
    table: dict[int, tuple[str, int, int]] = {}
    for i, img in enumerate(images):
        require_keys(img, ("id", "file_name", "width", "height"), path, "image", i)
        try:
            table[int(img["id"])] = (str(img["file_name"]), int(img["width"]), int(img["height"]))
        except (TypeError, ValueError) as err:
            raise AnnotationError(f"{path}: image {img.get('id')!r} has a non-numeric id/width/height") from err
    return table


def keypoint_categories(
    data: dict, path: Path, keypoint_info: KeypointInfo, *, declared: int | None = None
) -> set[int]:
    """Ids of the categories with keypoints; checks that each lists ``declared`` names (default: the
    layout's K; `declared_keypoint_count` for datasets whose joints span several fields)."""
    cats = data.get("categories") or []
    ids: set[int] = set()
    k = keypoint_info.num_keypoints if declared is None else declared
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or "keypoints" not in cat:
            continue
        require_keys(cat, ("id",), path, "category", i)
        if len(cat["keypoints"]) != k:
            raise AnnotationError(
                f"{path}: category {cat['id']!r} declares {len(cat['keypoints'])} keypoints but the "
                f"keypoint layout {keypoint_info.name!r} has {k}"
                + ("" if declared is None else " in the 'keypoints' field")
            )
        ids.add(int(cat["id"]))
    return ids or {1}


def keypoint_fields(fields: Mapping[str, int] | None, keypoint_info: KeypointInfo) -> dict[str, int]:
    """The annotation keys whose (x, y, v) triplets, concatenated in this order, are the layout's K
    joints, with the number of joints each holds: ``{"keypoints": K}`` (COCO) unless ``fields`` says
    otherwise (COCO-WholeBody: body, foot, face, left hand, right hand). The counts must add up to K."""
    k = keypoint_info.num_keypoints
    if not fields:
        return {KEYPOINTS_FIELD: k}
    if not isinstance(fields, Mapping):
        raise ValueError(f"keypoint_fields must map annotation keys to joint counts, got {fields!r}")
    chosen: dict[str, int] = {}
    for key, count in fields.items():
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            raise ValueError(f"keypoint_fields: {key!r} must hold a positive number of joints, got {count!r}")
        chosen[str(key)] = count
    if sum(chosen.values()) != k:
        raise ValueError(
            f"keypoint_fields {chosen} hold {sum(chosen.values())} joints, but the keypoint layout "
            f"{keypoint_info.name!r} has {k}"
        )
    return chosen


def declared_keypoint_count(fields: Mapping[str, int]) -> int | None:
    """How many names a keypoint category lists: those of the ``keypoints`` field (COCO-WholeBody's
    category names its 17 body joints only); None when ``keypoints`` is not among the fields."""
    return fields.get(KEYPOINTS_FIELD)


def stacked_keypoints(anns: Sequence[dict], path: Path, ids: Sequence, fields: Mapping[str, int]) -> np.ndarray:
    """(N, K, 3) x, y, v of the annotations: the ``fields`` (`keypoint_fields`) concatenated in order.
    AnnotationError naming the file, the annotation and the key when one is missing or malformed."""
    blocks = []
    for field, count in fields.items():
        for ann, ident in zip(anns, ids):
            if field not in ann:
                raise AnnotationError(f"{path}: annotation {ident!r} is missing the key '{field}'")
        values = [ann[field] for ann in anns]
        blocks.append(
            numeric_array(values, path, field, ids, 3 * count, "annotation", pixels=True).reshape(-1, count, 3)
        )
    return np.concatenate(blocks, axis=1)
