"""Checks of a dataset's files, as `python -m src.check_data` reports them.

A `Finding` is one problem with one file or annotation; its ``kind`` is one of `KINDS`, each
either fatal (training would stop or learn from wrong data) or a warning (the data loads, but
probably not as meant). No torch here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.readers.json_files import read_json

#: kind -> (fatal, what it means)
KINDS: dict[str, tuple[bool, str]] = {
    "annotation error": (True, "the annotations cannot be read as the training reads them"),
    "missing image": (True, "an annotated image file does not exist"),
    "unreadable image": (True, "an image file is empty, corrupt or not an image"),
    "size mismatch": (True, "the image's size differs from the annotation's width / height"),
    "joint count": (True, "an annotation has another number of joints than the layout"),
    "layout mismatch": (
        True,
        "a keypoint category names other joints than the layout, or annotations use a category without keypoints",
    ),
    "NaN keypoint": (True, "a keypoint coordinate is NaN or infinite"),
    "duplicate image id": (True, "two images share an id"),
    "duplicate annotation id": (True, "two annotations share an id"),
    "truncated JPEG": (False, "a JPEG without its end marker: it decodes with a grey or repeated bottom"),
    "EXIF orientation": (False, "an EXIF tag that makes other viewers rotate the image (this project ignores it)"),
    "keypoint outside image": (False, "a labelled keypoint lies outside its image"),
    "zero-area box": (False, "a person box of zero area (the reader leaves the person out)"),
    "person without keypoints": (False, "a person annotation without labelled keypoints (not trained on)"),
    "unlabelled joint": (
        False,
        "a joint of the layout that no annotation of the split labels (zero loss weight: never learnt)",
    ),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    detail: str = ""

    @property
    def fatal(self) -> bool:
        return KINDS[self.kind][0]


def exif_orientation(data: bytes) -> int | None:
    """The EXIF Orientation (1-8) of JPEG bytes, or None when there is none."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            tiff = data[pos + 10 : pos + 2 + length]
            if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
                return None
            order = "<" if tiff[:2] == b"II" else ">"
            ifd = struct.unpack(order + "I", tiff[4:8])[0]
            if ifd + 2 > len(tiff):
                return None
            for i in range(struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]):
                entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
                if len(entry) == 12 and struct.unpack(order + "H", entry[:2])[0] == 0x0112:
                    return struct.unpack(order + "H", entry[8:10])[0]
            return None
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata
            return None
        pos += 2 + length
    return None


def check_image(path: str | Path, expected_size: tuple[int, int] | None = None) -> list[Finding]:
    """Problems of one image file; ``expected_size`` (w, h) as annotated, if known."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        return [Finding("missing image", where)]
    data = path.read_bytes()
    if not data:
        return [Finding("unreadable image", where, "empty file")]
    truncated = data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        detail = "a JPEG cut short (no end marker)" if truncated else "OpenCV cannot decode it"
        return [Finding("unreadable image", where, detail)]
    found = []
    if truncated:  # some OpenCV builds decode these, filling the missing rows
        found.append(Finding("truncated JPEG", where))
    orientation = exif_orientation(data)
    if orientation not in (None, 1):
        found.append(Finding("EXIF orientation", where, f"orientation {orientation}"))
    if expected_size is not None and (image.shape[1], image.shape[0]) != tuple(expected_size):
        found.append(
            Finding(
                "size mismatch",
                where,
                f"annotated {expected_size[0]}x{expected_size[1]}, file {image.shape[1]}x{image.shape[0]}",
            )
        )
    return found


def _finite(values: Any) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def check_coco_annotations(
    ann_file: str | Path,
    image_dir: str | Path,
    num_keypoints: int,
    *,
    keypoint_names: Sequence[str] | None = None,
    keypoint_fields: Mapping[str, int] | None = None,
) -> tuple[list[Finding], dict]:
    """Problems of a COCO-format keypoint file, and its images as {id: (path, (w, h))}. With the
    layout's ``keypoint_names``, also the layout against the file: each keypoint category's names,
    annotations of categories without keypoints, and the joints that no annotation labels.
    ``keypoint_fields`` (key -> joint count, in order) are the annotation keys that hold the joints
    when ``keypoints`` holds only the first of them (COCO-WholeBody); a category then names the
    joints of ``keypoints``."""
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    try:
        data = read_json(ann_file, "annotation file")
    except (OSError, ValueError) as err:
        return [Finding("annotation error", str(ann_file), str(err))], {}
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        return [Finding("annotation error", str(ann_file), "expected 'images' and 'annotations' lists")], {}
    found: list[Finding] = []
    images: dict[Any, tuple[Path, tuple[int, int]]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            found.append(Finding("annotation error", f"{ann_file}: image {i}", "needs id and file_name"))
            continue
        if img["id"] in images:
            found.append(Finding("duplicate image id", f"{ann_file}: image id {img['id']}"))
            continue
        size = (img.get("width"), img.get("height"))
        images[img["id"]] = (image_dir / str(img["file_name"]), size if _finite(size) else None)
    seen_ids: set = set()
    k = num_keypoints
    fields = dict(keypoint_fields) if keypoint_fields else {"keypoints": k}
    keypoint_categories = None
    if keypoint_names is not None:
        named = list(keypoint_names)[: fields["keypoints"]] if "keypoints" in fields else list(keypoint_names)
        found_layout, keypoint_categories = _check_categories(data, ann_file, named)
        found.extend(found_layout)
    labelled_count = np.zeros(k, np.int64)
    for i, ann in enumerate(data["annotations"]):
        where = f"{ann_file}: annotation {ann.get('id', f'#{i}') if isinstance(ann, dict) else f'#{i}'}"
        if not isinstance(ann, dict):
            found.append(Finding("annotation error", where, "not an object"))
            continue
        if "id" in ann:
            if ann["id"] in seen_ids:
                found.append(Finding("duplicate annotation id", where))
            seen_ids.add(ann["id"])
        if ann.get("image_id") not in images:
            found.append(Finding("annotation error", where, f"image_id {ann.get('image_id')!r} is not in 'images'"))
            continue
        if ann.get("iscrowd", 0):
            continue
        if keypoint_categories is not None and ann.get("category_id", 1) not in keypoint_categories:
            found.append(
                Finding("layout mismatch", where, f"category_id {ann.get('category_id')!r} is not a keypoint category")
            )
            continue
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not _finite(box):
            found.append(Finding("annotation error", where, f"bbox {box!r} is not [x, y, w, h] numbers"))
            continue
        if box[2] * box[3] <= 0:
            found.append(Finding("zero-area box", where, f"bbox {box}"))
        kpts, problem = _joints(ann, fields)
        if problem is not None:
            found.append(Finding(problem[0], where, problem[1]))
            continue
        if not _finite(kpts):
            found.append(Finding("NaN keypoint", where))
            continue
        array = np.asarray(kpts, np.float64).reshape(k, 3)
        labelled = array[:, 2] > 0
        labelled_count += labelled
        if not labelled.any():
            found.append(Finding("person without keypoints", where))
            continue
        size = images[ann["image_id"]][1]
        if size is not None:
            x, y = array[labelled, 0], array[labelled, 1]
            outside = (x < 0) | (y < 0) | (x > size[0] - 1) | (y > size[1] - 1)
            if outside.any():
                found.append(Finding("keypoint outside image", where, f"{int(outside.sum())} joints"))
    if keypoint_names is not None:
        for j in np.flatnonzero(labelled_count == 0):
            found.append(Finding("unlabelled joint", f"{ann_file}: {keypoint_names[j]!r} (index {j})"))
    return found, images


def _joints(ann: dict, fields: Mapping[str, int]) -> tuple[list, tuple[str, str] | None]:
    """The annotation's joints (x, y, v flat) from ``fields`` in order, or (kind, detail) of what
    is wrong with them."""
    joints: list = []
    k = sum(fields.values())
    for field, count in fields.items():
        values = ann.get(field)
        if not isinstance(values, list):
            return [], ("annotation error", f"no {field} list")
        if len(values) != 3 * count:
            if len(fields) > 1:
                return [], ("joint count", f"{len(values) // 3} joints in {field!r}, {count} expected there")
            return [], ("joint count", f"{len(values) // 3} joints, the layout has {k}")
        joints.extend(values)
    return joints, None


def _check_categories(data: dict, ann_file: Path, keypoint_names: Sequence[str]) -> tuple[list[Finding], set]:
    """Findings on the keypoint categories of a file against the layout's names, and their ids."""
    found = []
    ids = set()
    for i, cat in enumerate(data.get("categories") or []):
        if not isinstance(cat, dict) or "keypoints" not in cat:
            continue
        ids.add(cat.get("id"))
        names = [str(n) for n in cat["keypoints"]]
        if names != list(keypoint_names):
            differ = [f"{j}: {a!r} vs {b!r}" for j, (a, b) in enumerate(zip(names, keypoint_names)) if a != b][:3]
            detail = (
                f"{len(names)} keypoints, the layout has {len(keypoint_names)}"
                if len(names) != len(keypoint_names)
                else "names differ from the layout's (file vs layout) at " + ", ".join(differ)
            )
            found.append(Finding("layout mismatch", f"{ann_file}: category {cat.get('id', f'#{i}')!r}", detail))
    if not ids:
        found.append(Finding("layout mismatch", str(ann_file), "no category has 'keypoints'"))
    return found, ids
