"""MPII Human Pose annotations (official HRNet-repository layout) -> top-down person records.

Layout on disk (every path can be overridden)::

    ROOT/annot/train.json      training people
    ROOT/annot/valid.json      validation people, in the order of gt_valid.mat
    ROOT/annot/gt_valid.mat    validation ground truth of the PCKh metric
    ROOT/images/*.jpg          the MPII images

A JSON file is a list of N entries ``{"image": "005808361.jpg", "center": [x, y], "scale": s,
"joints": K x [x, y], "joints_vis": K x 0/1}`` with 1-based MATLAB pixel coordinates and
``s`` = person height / 200. Records have the format of the COCO top-down reader
(`src.readers.coco_records`)::

    {"sample_id": int, "image_id": int, "image_file": str,
     "center": (2,) float32, "scale": (2,) float32, "area": float, "box_score": 1.0,
     "keypoints": (K, 2) float32, "visible": (K,) float32}

``sample_id`` is the entry's index in the JSON file (for valid.json: the column of gt_valid.mat);
``image_id`` is a running index over the distinct image names, in order of first appearance.

The box handling is the official one (HRN ``lib/dataset/mpii.py``), done here once: unless
``center[0] == -1`` (the official "no box" marker) the center moves down by 15 s and the scale
grows by 1.25; then center and joints move from 1-based to 0-based pixels (-1). The scale is
isotropic (s, s): MPII boxes are not fitted to the model's aspect ratio. Every entry is kept, so
the validation records stay aligned with gt_valid.mat.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.geometry import PIXEL_STD
from src.layouts import MPII16, KeypointInfo
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.mpii_ground_truth import MPIIGroundTruth, read_mpii_ground_truth

#: Keys every JSON entry must have.
ENTRY_KEYS = ("image", "center", "scale", "joints", "joints_vis")

#: Official box adjustment: the center moves down by CENTER_SHIFT * s, the scale grows by PADDING.
CENTER_SHIFT = 15.0
PADDING = 1.25

#: center[0] == NO_BOX marks an entry without a person box (the official code skips the adjustment).
NO_BOX = -1.0

#: Number of mismatching entries named in a ground-truth mismatch message.
_SHOWN = 5

SPLITS = ("train", "val")


# --------------------------------------------------------------------------- reading the JSON
def _entry_name(entries: list, index: int) -> str:
    """'entry #i ('name.jpg')' for messages; without the name when it is unusable."""
    entry = entries[index]
    image = entry.get("image") if isinstance(entry, dict) else None
    return f"entry #{index} ({image!r})" if isinstance(image, str) else f"entry #{index}"


def _is_finite_number(x: Any) -> bool:
    """A finite JSON number (bool is not one, though Python says it is an int)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def _check_shapes(entries: list, path: Path, k: int) -> None:
    """Entries are objects with the five keys, lists of the right lengths and a string image name."""
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AnnotationError(f"{path}: entry #{i} is a {type(entry).__name__}, expected an object")
        for key in ENTRY_KEYS:
            if key not in entry:
                raise AnnotationError(f"{path}: {_entry_name(entries, i)} is missing the key '{key}'")
        if not isinstance(entry["image"], str) or not entry["image"]:
            raise AnnotationError(f"{path}: entry #{i} has 'image' {entry['image']!r}, expected a file name")
        center, joints, vis = entry["center"], entry["joints"], entry["joints_vis"]
        if not isinstance(center, list) or len(center) != 2:
            raise AnnotationError(f"{path}: {_entry_name(entries, i)} has 'center' {center!r}, expected [x, y]")
        if not isinstance(joints, list) or len(joints) != k:
            got = f"{len(joints)} joints" if isinstance(joints, list) else repr(joints)
            raise AnnotationError(
                f"{path}: {_entry_name(entries, i)} has {got} in 'joints', expected {k} (the keypoint layout's K)"
            )
        if not isinstance(vis, list) or len(vis) != k:
            got = f"{len(vis)} values" if isinstance(vis, list) else repr(vis)
            raise AnnotationError(f"{path}: {_entry_name(entries, i)} has {got} in 'joints_vis', expected {k}")


def _numbers(entries: list, path: Path, key: str, shape: tuple[int, ...], *, scan: bool) -> np.ndarray:
    """The field ``key`` of all N entries as an (N, *shape) float64 array of finite numbers.

    One ``np.asarray`` over all entries does the work. The entries are searched one by one, to
    name the culprit, when it finds a non-number or a non-finite value, or when ``scan`` is set
    (the file has JSON booleans somewhere, which numpy would silently turn into 0/1).
    """
    values = [entry[key] for entry in entries]
    if not values:
        return np.zeros((0, *shape), dtype=np.float64)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):  # ragged or odd values: found below
        arr = np.empty(0, dtype=object)
    ok = arr.shape == (len(values), *shape) and (
        arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and bool(np.isfinite(arr).all()))
    )
    if ok and not scan:
        return arr.astype(np.float64, copy=False)
    for i, value in enumerate(values):
        try:
            as_array = np.asarray(value, dtype=object)
        except ValueError:  # ragged nesting
            as_array = None
        if as_array is None or as_array.shape != shape:
            rows = value if len(shape) == 2 and isinstance(value, list) else []
            j = next((j for j, row in enumerate(rows) if not isinstance(row, list) or len(row) != shape[1]), None)
            if j is not None:  # name the row: joint j
                raise AnnotationError(
                    f"{path}: {_entry_name(entries, i)} has '{key}'[{j}] = {value[j]!r}, expected {shape[1]} numbers"
                )
            expected = "a number" if not shape else f"{' x '.join(map(str, shape))} numbers"
            raise AnnotationError(f"{path}: {_entry_name(entries, i)} has '{key}' {value!r}, expected {expected}")
        bad = [x for x in as_array.ravel().tolist() if not _is_finite_number(x)]
        if bad:
            raise AnnotationError(
                f"{path}: {_entry_name(entries, i)} has a non-numeric or non-finite value {bad[0]!r} in '{key}'"
            )
    if not ok:  # every entry looked right on its own; say so rather than return a broken array
        raise AnnotationError(f"{path}: the '{key}' values do not form an (N, {shape}) array of numbers")
    return arr.astype(np.float64, copy=False)


def _read_json_list(path: Path) -> tuple[list, bool]:
    """The JSON list of ``path`` and whether the text holds a ``true``/``false`` literal anywhere."""
    if not path.is_file():
        raise DatasetNotFoundError(f"MPII annotation file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: invalid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not a UTF-8 JSON file ({err})") from err
    if not isinstance(data, list):
        raise AnnotationError(
            f"{path}: expected a JSON list of people (MPII annot/*.json), got a {type(data).__name__}"
        )
    return data, b"true" in raw or b"false" in raw


def _read_arrays(path: Path, k: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated columns of an MPII file: N image names, centers (N, 2), scales (N,), joints (N, K, 2)
    and joints_vis (N, K), all float64 and 1-based. Errors as in `read_mpii_json`."""
    entries, has_booleans = _read_json_list(path)
    _check_shapes(entries, path, k)
    centers = _numbers(entries, path, "center", (2,), scan=has_booleans)
    scales = _numbers(entries, path, "scale", (), scan=has_booleans)
    joints = _numbers(entries, path, "joints", (k, 2), scan=has_booleans)
    vis = _numbers(entries, path, "joints_vis", (k,), scan=has_booleans)

    not_binary = np.flatnonzero(((vis != 0) & (vis != 1)).any(axis=1)) if len(vis) else []
    if len(not_binary):
        i = int(not_binary[0])
        raise AnnotationError(
            f"{path}: {_entry_name(entries, i)} has 'joints_vis' {entries[i]['joints_vis']!r}, expected 0/1 values"
        )
    # a box needs a positive scale; the official "no box" marker (center x == -1) is exempt
    bad_scale = np.flatnonzero((scales <= 0) & (centers[:, 0] != NO_BOX)) if len(scales) else []
    if len(bad_scale):
        i = int(bad_scale[0])
        raise AnnotationError(
            f"{path}: {_entry_name(entries, i)} has 'scale' {entries[i]['scale']!r}, expected > 0 (person height / 200)"
        )
    return [entry["image"] for entry in entries], centers, scales, joints, vis


def read_mpii_json(path: str | Path, *, num_keypoints: int = MPII16.num_keypoints) -> list[dict]:
    """Read and validate an MPII annotation file (``annot/train.json`` or ``annot/valid.json``).

    Args:
        path: the JSON file: a list of {image, center, scale, joints, joints_vis}.
        num_keypoints: K, the joint count every entry must have (16 for MPII).

    Returns:
        N entries in file order, as ``{"image": str, "center": (2,) float64, "scale": float,
        "joints": (K, 2) float64, "joints_vis": (K,) float64}``, coordinates still 1-based.

    Raises:
        DatasetNotFoundError: the file does not exist.
        AnnotationError: invalid JSON, not a list, a missing key, a wrong joint or joints_vis
            count, a non-numeric or non-finite number, joints_vis not 0/1, or scale <= 0 on an
            entry with a box (center[0] != -1). The message names the file and the entry.
    """
    names, centers, scales, joints, vis = _read_arrays(Path(path), num_keypoints)
    return [
        {"image": name, "center": centers[i], "scale": float(scales[i]), "joints": joints[i], "joints_vis": vis[i]}
        for i, name in enumerate(names)
    ]


# --------------------------------------------------------------------------- records
def _check_image_files(names: list[str], image_dir: Path, ann_file: Path) -> None:
    """Raise DatasetNotFoundError for the first image that is not in ``image_dir`` (one stat per name)."""
    if not image_dir.is_dir():
        raise DatasetNotFoundError(f"MPII image folder not found: {image_dir}/ (images of {ann_file})")
    prefix = str(image_dir) + os.sep
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            continue
        seen.add(name)
        if not os.path.exists(prefix + name):
            raise DatasetNotFoundError(
                f"MPII image {name!r} not found in {image_dir}/ (entry #{i} of {ann_file}); "
                "is the folder complete (images of mpii_human_pose_v1.tar.gz)?"
            )


def load_mpii_records(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    keypoint_info: KeypointInfo,
    training: bool,
    check_images: bool = True,
) -> list[dict]:
    """Read an MPII JSON file into N top-down person records (format in the module docstring).

    Args:
        ann_file: ``annot/train.json`` or ``annot/valid.json``.
        image_dir: folder holding the images named by the entries.
        keypoint_info: the keypoint layout; every entry must have its K joints.
        training: True for training records. The records are the same either way (the official
            code uses one loader for both); the argument keeps the reader protocol uniform.
        check_images: raise when an image is missing (each distinct file is checked once).

    Returns:
        N records, one per entry and in file order; keypoints (K, 2) and center 0-based pixels,
        scale (2,) isotropic and padded, visible (K,) = joints_vis.

    Raises:
        DatasetNotFoundError: the file, the image folder or (with ``check_images``) an image is missing.
        AnnotationError: malformed content (see `read_mpii_json`).
    """
    del training  # same records for training and evaluation, as in the official reader
    ann_file, image_dir = Path(ann_file), Path(os.path.abspath(Path(image_dir).expanduser()))
    names, centers, scales, joints, vis = _read_arrays(ann_file, keypoint_info.num_keypoints)
    if check_images:
        _check_image_files(names, image_dir, ann_file)

    # official box handling (HRN lib/dataset/mpii.py), vectorised over the N entries (1-based input)
    has_box = centers[:, 0] != NO_BOX
    centers[:, 1] += np.where(has_box, CENTER_SHIFT * scales, 0.0)
    scales = np.where(has_box, scales * PADDING, scales)
    centers = (centers - 1.0).astype(np.float32)  # (N, 2): every center, the "no box" ones too, as official
    joints = (joints - 1.0).astype(np.float32)  # (N, K, 2)
    visible = vis.astype(np.float32)  # (N, K)

    prefix = str(image_dir) + os.sep
    image_ids: dict[str, int] = {}
    records = []
    for i, name in enumerate(names):
        image_id = image_ids.setdefault(name, len(image_ids))
        s = float(scales[i])
        records.append(
            {
                "sample_id": i,
                "image_id": image_id,
                "image_file": prefix + name,
                "center": centers[i],
                "scale": np.array([s, s], dtype=np.float32),
                "area": (s * PIXEL_STD) ** 2,
                "box_score": 1.0,
                "keypoints": joints[i],
                "visible": visible[i],
            }
        )
    return records


# --------------------------------------------------------------------------- ground truth
def _joints_1based(items: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, K, 2) 1-based joints, (N, K) annotated flags and N image names of records or entries."""
    if not items:
        return np.zeros((0, 0, 2)), np.zeros((0, 0), dtype=bool), []
    if "keypoints" in items[0]:  # records: 0-based keypoints
        joints = np.stack([np.asarray(r["keypoints"], dtype=np.float64) for r in items]) + 1.0
        annotated = np.stack([np.asarray(r["visible"]) > 0 for r in items])
        names = [os.path.basename(r["image_file"]) for r in items]
    else:  # entries of read_mpii_json: 1-based joints
        joints = np.stack([np.asarray(e["joints"], dtype=np.float64) for e in items])
        annotated = np.stack([np.asarray(e["joints_vis"]) > 0 for e in items])
        names = [e["image"] for e in items]
    return joints, annotated, names


def check_ground_truth_matches(
    records_or_entries: Sequence[dict], gt: MPIIGroundTruth, ann_file: str | Path, gt_file: str | Path
) -> None:
    """Check that ``gt_valid.mat`` describes the people of the validation JSON, in the same order.

    The metric pairs prediction i with column i of the .mat file, so a different count or order
    would give a wrong PCKh without any error. For each person, the joints that both files mark
    as annotated are compared; a person is flagged when the median distance of those joints
    exceeds its head size (0.6 x head-box diagonal). People with no such joint are not checked.

    Args:
        records_or_entries: N records of `load_mpii_records` (0-based ``keypoints``) or N entries
            of `read_mpii_json` (1-based ``joints``).
        gt: the ground truth read from ``gt_file``.
        ann_file, gt_file: the two files, named in the messages.

    Raises:
        AnnotationError: the counts differ, the joint counts differ, or people do not match
            (the message names both files and the first mismatching entries).
    """
    n = len(records_or_entries)
    if n != len(gt):
        raise AnnotationError(
            f"{gt_file} holds {len(gt)} people but {ann_file} has {n}: the ground truth must list the "
            "validation people of the JSON file, one for one and in the same order"
        )
    joints, annotated, names = _joints_1based(records_or_entries)
    if n == 0:
        return
    k = gt.positions.shape[1]
    if joints.shape[1] != k:
        raise AnnotationError(f"{gt_file} has {k} joints per person but {ann_file} has {joints.shape[1]}")

    both = annotated & ~gt.missing  # (N, K)
    dist = np.linalg.norm(joints - gt.positions, axis=-1)  # (N, K)
    checked = np.flatnonzero(both.any(axis=1))
    if not len(checked):
        return
    median = np.nanmedian(np.where(both[checked], dist[checked], np.nan), axis=1)  # (M,)
    head = gt.head_sizes()[checked]
    bad = np.flatnonzero(~(median <= head))  # positions in ``checked``; a NaN head size counts as a mismatch
    if not len(bad):
        return
    shown = ", ".join(
        f"#{checked[j]} ({names[checked[j]]!r}: median joint distance {median[j]:.1f} px > head size {head[j]:.1f} px)"
        for j in bad[:_SHOWN].tolist()
    )
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    raise AnnotationError(
        f"{ann_file} and {gt_file} do not describe the same people in the same order: "
        f"{len(bad)} of {n} entries differ, e.g. {shown}{more}. Use the gt_valid.mat that belongs to "
        "this valid.json (both from the same annot folder)"
    )


# --------------------------------------------------------------------------- layout
def _missing_files(root: Path, ann_file: Path, image_dir: Path, gt_file: Path | None) -> list[str]:
    missing = []
    if not root.is_dir():
        missing.append(f"dataset root {root}/")
    if not ann_file.is_file():
        missing.append(f"annotation file {ann_file}")
    if gt_file is not None and not gt_file.is_file():
        missing.append(f"ground-truth file {gt_file}")
    if not image_dir.is_dir():
        missing.append(f"image folder {image_dir}/")
    return missing


def _layout_message(root: Path, what: str, missing: list[str]) -> str:
    """The one message of a missing MPII dataset: what is missing, the layout, how to get it."""
    shown_root = f"{root}" + ("" if root.is_absolute() else f" (= {os.path.abspath(root)})")
    unique = list(dict.fromkeys(missing))
    return "\n".join(
        [
            f"MPII {what} data not found. Missing: " + "; ".join(unique) + ".",
            "",
            f"Expected layout under ROOT = {shown_root}:",
            "  ROOT/annot/train.json     training people",
            "  ROOT/annot/valid.json     validation people",
            "  ROOT/annot/gt_valid.mat   validation ground truth (PCKh)",
            "  ROOT/images/*.jpg         the MPII images",
            "",
            "Get it:",
            "  images: the MPII Human Pose dataset (mpii_human_pose_v1.tar.gz) from the MPII Human Pose",
            "    website; unpack it so that the .jpg files lie in ROOT/images/.",
            "  annotations: the 'annot' folder (train.json, valid.json, gt_valid.mat) that the HRNet",
            "    repository (deep-high-resolution-net.pytorch) links to in its data preparation section;",
            "    put it at ROOT/annot/.",
            "",
            "Point to another location with e.g. data.root=/path/to/mpii, or per file with",
            "data.reader.train_ann=... data.reader.val_ann=... data.reader.gt_file=... data.reader.images=...",
            "No data at hand? The synthetic_mpii reader writes a small dataset in this layout offline.",
        ]
    )


def check_mpii_layout(
    root: str | Path, ann_file: str | Path, image_dir: str | Path, *, split: str, gt_file: str | Path | None = None
) -> None:
    """Raise DatasetNotFoundError unless ``ann_file`` (and ``gt_file``) are files and ``image_dir`` a folder.

    The message lists what is missing, the official layout under ``root``, where to get the
    images and the annotations, and how to point the configuration elsewhere.

    Args:
        root: dataset root (``data.root``).
        ann_file: the split's JSON file.
        image_dir: the image folder.
        split: name used in the message ("train", "val").
        gt_file: ``gt_valid.mat`` when the split is evaluated with PCKh.
    """
    missing = _missing_files(Path(root), Path(ann_file), Path(image_dir), None if gt_file is None else Path(gt_file))
    if missing:
        raise DatasetNotFoundError(_layout_message(Path(root), split, missing))


# --------------------------------------------------------------------------- reader protocol
class MPIIReader:
    """The MPII source of the data module: checks the files, reads records, names the metric's inputs.

    Args:
        root: dataset root; the other paths are resolved against it unless absolute.
        train_ann, val_ann: the JSON files of the two splits.
        gt_file: ``gt_valid.mat`` of the validation split (PCKh ground truth).
        images: the image folder (both splits).
        check_images: check that every image named by a split exists when reading it.
    """

    name = "mpii"
    keypoint_layout = "mpii16"

    def __init__(
        self,
        *,
        root: str | Path,
        train_ann: str = "annot/train.json",
        val_ann: str = "annot/valid.json",
        gt_file: str = "annot/gt_valid.mat",
        images: str = "images",
        check_images: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.train_ann = self._resolve(train_ann)
        self.val_ann = self._resolve(val_ann)
        self.gt_file = self._resolve(gt_file)
        self.image_dir = self._resolve(images)
        self.check_images = bool(check_images)

    def _resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def _split_files(self, split: str) -> tuple[Path, Path | None]:
        """(annotation file, ground-truth file or None) of ``split``."""
        if split == "train":
            return self.train_ann, None
        if split == "val":
            return self.val_ann, self.gt_file
        raise ValueError(f"unknown split {split!r}; MPII readers know {SPLITS}")

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Check the files of ``splits`` (an evaluation passes ("val",)); one message lists all that is missing."""
        missing: list[str] = []
        for split in splits:
            ann, gt = self._split_files(split)
            missing += _missing_files(self.root, ann, self.image_dir, gt)
        if missing:
            raise DatasetNotFoundError(_layout_message(self.root, "/".join(splits), missing))

    def check(self, split: str) -> None:
        """Check the files of ``split`` ("train" or "val"); raise DatasetNotFoundError with the layout."""
        ann, gt = self._split_files(split)
        check_mpii_layout(self.root, ann, self.image_dir, split=split, gt_file=gt)

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """Person records of ``split`` (format in the module docstring).

        ``aspect_ratio`` is not used: MPII boxes are isotropic (s, s) as in the official reader,
        whose MPII models take square inputs (256 x 256). For "val" the ground truth is read too
        and checked against the records (count and order).
        """
        del aspect_ratio  # isotropic MPII boxes, as official
        self.check(split)
        ann, gt_file = self._split_files(split)
        records = load_mpii_records(
            ann, self.image_dir, keypoint_info=keypoint_info, training=training, check_images=self.check_images
        )
        if gt_file is not None:
            check_ground_truth_matches(records, read_mpii_ground_truth(gt_file), ann, gt_file)
        return records

    def metric_inputs(self) -> dict:
        """What the PCKh metric needs from this source: ``{"gt_file": absolute Path of gt_valid.mat}``."""
        return {"gt_file": Path(os.path.abspath(self.gt_file))}
