"""MuCo-3DHP in the layout of the 3DMPPE repositories -> 3D person records (training).

Layout on disk (paths can be overridden)::

    ROOT/data/MuCo-3DHP.json          COCO-style images (f, c) and people (21 joints)
    ROOT/data/augmented_set/*.jpg     composited images (file names are relative to ROOT/data)
    ROOT/data/unaugmented_set/*.jpg

Joints are the 21 of `src.layouts.MUCO21` (the 17 of MuPoTS-3D, then hands and toes), the pelvis
(index 14) the root. One record per kept person (K joints of the model's layout)::

    {"sample_id": int, "image_id": int, "image_file": str, "bbox": (4,) float32 [x, y, w, h],
     "joints_img": (K, 3) float32 [u, v, Z mm], "joints_cam": (K, 3) float32 mm, "visible": (K,) float32,
     "root_depth": float mm, "f": (2,) float32, "c": (2,) float32, "have_depth": 1.0,
     "action": 0 (one "action", so that the MPJPE metric can score a val_file), "sequence": 0, "score": 1.0}

People are chosen per image as the official readers do (``data/MuCo/MuCo.py``, RootNet L40-61,
PoseNet L40-60): the
person closest to the camera (smallest root Z, the first of equals) is always kept; another is
kept only if no other person of the image has a root within 500 mm of its root, in camera X, Y or
in 3D. Optionally (RootNet) roots with Z outside ``root_depth_range`` are dropped, the closest
person included. Anyone whose ``process_bbox`` is empty is dropped. Records follow the images in
file order, the closest person of each first, then the others in annotation order. ``joints_img``
keeps the absolute depth Z, as in the Human3.6M records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.layouts import MUCO21, ROOT_JOINT, KeypointInfo, get_keypoint_info
from src.readers.coco_3d import (
    ImageTable,
    PersonTable,
    check_aspect_ratio,
    check_visibility,
    crop_boxes,
    layout_index,
    layout_joints,
    read_images,
    read_people,
    split_lists,
)
from src.readers.errors import DatasetNotFoundError, missing_mixed_2d
from src.readers.json_files import read_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val")

#: Joints per annotation in MuCo-3DHP.json.
NUM_JOINTS = MUCO21.num_keypoints

ROOT_INDEX = MUCO21.keypoint_names.index(ROOT_JOINT)

#: Another person's root closer than this (mm, in camera X, Y or in 3D) excludes a person.
NEAR_ROOT_MM = 500.0

#: The only "action" of MuCo-3DHP records (the MPJPE metric reports per action).
ACTIONS = ("MuCo-3DHP",)


def select_people(
    image_row: np.ndarray, roots: np.ndarray, *, near: float = NEAR_ROOT_MM
) -> tuple[np.ndarray, np.ndarray]:
    """The official person selection of MuCo-3DHP, over N people of many images.

    Args:
        image_row: (N,) int the image of each person.
        roots: (N, 3) camera-frame root positions in mm.
        near: the distance (mm) under which two roots exclude each other.

    Returns:
        (N,) bool ``kept``: the closest person of each image, and anyone without another root
        within ``near``; (N,) bool ``closest``: the person of smallest root Z of each image (the
        first in file order among equals).
    """
    n = len(image_row)
    order = np.argsort(image_row, kind="stable")  # people grouped by image, file order within
    rows = image_row[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, n])
    group = np.repeat(np.arange(len(starts)), counts)  # image group of each sorted person
    # every ordered pair (a, b) of sorted people of the same image
    size = counts[group]
    a = np.repeat(np.arange(n), size)
    b = np.repeat(starts[group], size) + np.arange(len(a)) - np.repeat(np.cumsum(size) - size, size)
    a, b = a[a != b], b[a != b]
    diff = roots[order[a]] - roots[order[b]]
    # The official test is "X-Y distance < near or 3D distance < near"; the 3D distance is never
    # below the X-Y distance, so the X-Y test decides alone.
    crowded = np.bincount(a[np.hypot(diff[:, 0], diff[:, 1]) < near], minlength=n) > 0
    by_depth = np.lexsort((np.arange(n), roots[order, 2], group))  # per image: smallest Z, then file order
    first = by_depth[np.r_[True, group[by_depth][1:] != group[by_depth][:-1]]] if n else by_depth
    closest_sorted = np.zeros(n, bool)
    closest_sorted[first] = True
    kept, closest = np.zeros(n, bool), np.zeros(n, bool)
    kept[order] = closest_sorted | ~crowded
    closest[order] = closest_sorted
    return kept, closest


def _layout_message(root: Path, what: str, missing: list[str]) -> str:
    """The one message of a missing MuCo-3DHP dataset: what is missing, the layout, how to get it."""
    shown_root = f"{root}" + ("" if root.is_absolute() else f" (= {os.path.abspath(root)})")
    return "\n".join(
        [
            f"MuCo-3DHP {what} data not found. Missing: " + "; ".join(dict.fromkeys(missing)) + ".",
            "",
            f"Expected layout under ROOT = {shown_root}:",
            "  ROOT/data/MuCo-3DHP.json          images (f, c) and people (21 joints)",
            "  ROOT/data/augmented_set/*.jpg     composited images, file names relative to ROOT/data",
            "  ROOT/data/unaugmented_set/*.jpg",
            "",
            "Get it:",
            "  the README of the 3DMPPE PoseNet repository (3DMPPE_POSENET_RELEASE) links the composited",
            "    images (augmented.zip, unaugmented.zip) and MuCo-3DHP.json; unpack them into ROOT/data.",
            "    MuCo-3DHP is composited from MPI-INF-3DHP (MPI for Informatics,",
            "    gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson), whose licence applies.",
            "",
            "Point to another location with data.root=/path/to/muco, or set the files with",
            "data.reader.train_file=... data.reader.images=...; data.mix_2d=false trains on MuCo-3DHP alone.",
        ]
    )


class MuCoReader:
    """The MuCo-3DHP source of the data module (3DMPPE layout): checks files, reads 3D person records.

    MuCo-3DHP is a training set: evaluate on MuPoTS-3D (`src.readers.mupots.MuPoTSReader`,
    ``data=mupots``). A file in the same format can serve as a validation split (``val_file``).

    Args:
        root: dataset root; the paths below are resolved against it unless absolute.
        train_file: the training annotation file.
        val_file: a validation annotation file in the same format, or None (no validation split).
        images: the image folder that file names are relative to.
        root_depth_range: [min, max] root depth in mm (RootNet: [1500, 7500]); people whose root
            Z lies outside are dropped after the selection. None keeps every depth (PoseNet).
        visibility: "all" (every joint visible, PoseNet) or "file" (``keypoints_vis``, RootNet).
        check_images: check that every image of the kept people exists.
        extra_2d: another reader (e.g. a `COCOReader`) whose training records are mixed in.
        extra_2d_layout: the keypoint layout name of ``extra_2d``'s records where that reader does
            not name it in a ``keypoint_layout`` attribute (COCO: "coco17").
        mix_2d: whether ``extra_2d`` is used.

    Raises:
        ValueError: an unknown option value or a depth range that is not [min, max] with min < max.
    """

    name = "muco"
    keypoint_layout = "muco21"

    def __init__(
        self,
        *,
        root: str | Path,
        train_file: str = "data/MuCo-3DHP.json",
        val_file: str | None = None,
        images: str = "data",
        root_depth_range: Sequence[float] | None = None,
        visibility: str = "all",
        check_images: bool = True,
        extra_2d: Any = None,
        extra_2d_layout: str | None = None,
        mix_2d: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.files = {"train": self._resolve(train_file), "val": self._resolve(val_file) if val_file else None}
        self.image_dir = self._resolve(images)
        if root_depth_range is not None:
            bounds = tuple(float(v) for v in root_depth_range)
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"root_depth_range must be [min, max] in mm with min < max, got {root_depth_range}")
            root_depth_range = bounds
        self.root_depth_range = root_depth_range
        self.visibility = check_visibility(visibility)
        self.check_images = bool(check_images)
        self.extra_2d = extra_2d
        self.extra_2d_layout = extra_2d_layout
        self.mix_2d = bool(mix_2d)

    def _resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this reader has: "train", and "val" when a val_file is named."""
        return ("train", "val") if self.files["val"] is not None else ("train",)

    def _split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; the MuCo-3DHP reader knows {SPLITS}")
        if self.files[split] is None:
            raise ValueError(
                "MuCo-3DHP has no validation split: evaluate on MuPoTS-3D (data=mupots), or name a "
                "MuCo-format file with data.reader.val_file=..."
            )
        return split

    @property
    def _mixing(self) -> bool:
        return self.mix_2d and self.extra_2d is not None

    def _missing(self, split: str) -> list[str]:
        missing = []
        if not self.root.is_dir():
            missing.append(f"dataset root {self.root}/")
        if not self.files[split].is_file():
            missing.append(f"{split} annotation file {self.files[split]}")
        if not self.image_dir.is_dir():
            missing.append(f"image folder {self.image_dir}/")
        return missing

    def prepare(self, splits: Sequence[str] | None = None) -> None:
        """Check the files of ``splits`` (default: the splits this reader has) and, when "train" is
        one of them, of the mixed-in 2D source (its training split); one message lists all that is
        missing."""
        splits = self.splits if splits is None else tuple(splits)
        missing = [item for split in splits for item in self._missing(self._split(split))]
        extra = (
            missing_mixed_2d(self.extra_2d, dataset="MuCo-3DHP", example_root="/path/to/coco")
            if self._mixing and "train" in splits
            else None
        )
        if not missing and extra is None:
            return
        parts = [_layout_message(self.root, "/".join(splits), missing)] if missing else []
        if extra is not None:
            parts.append(extra)
        raise DatasetNotFoundError("\n\n".join(parts))

    def check(self, split: str) -> None:
        """Check the files of ``split``; raise DatasetNotFoundError with the layout."""
        missing = self._missing(self._split(split))
        if missing:
            raise DatasetNotFoundError(_layout_message(self.root, split, missing))

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """3D person records of ``split`` (format and person selection in the module docstring).

        Args:
            split: "train", or "val" when a val_file is named.
            keypoint_info: the model's layout; its joints are mapped from the file's 21 by name.
            aspect_ratio: the model's input width / height (the crop boxes are fitted to it).
            training: unused; the records are the same either way, as in the official reader.

        Raises:
            DatasetNotFoundError: a file or (with ``check_images``) an image is missing.
            AnnotationError: malformed content; the message names the file and the entry.
            ValueError: a split without a file, or a layout joint that MuCo-3DHP does not have.
        """
        del training
        split = self._split(split)
        aspect_ratio = check_aspect_ratio(aspect_ratio)
        index = layout_index(keypoint_info, MUCO21.name, "MuCo-3DHP")
        self.check(split)
        path = self.files[split]
        images, annotations = split_lists(read_json(path, "MuCo-3DHP annotation file"), path)
        table = read_images(images, path, camera="f_c")
        people, _ = read_people(annotations, path, table, num_joints=NUM_JOINTS, read_visible=self.visibility == "file")
        del images, annotations
        people, boxes = self._select(people, table, aspect_ratio, f"MuCo-3DHP {split} ({path})")
        joints_img, joints_cam, visible = layout_joints(people, index, self.visibility == "file")
        root_depth = people.joints_cam[:, ROOT_INDEX, 2]
        boxes32 = boxes.astype(np.float32)
        f32, c32 = table.f.astype(np.float32), table.c.astype(np.float32)
        prefix = str(self.image_dir) + os.sep
        records = [
            {
                "sample_id": n,
                "image_id": int(table.ids[row]),
                "image_file": prefix + table.file_names[row],
                "bbox": boxes32[n],
                "joints_img": joints_img[n],
                "joints_cam": joints_cam[n],
                "visible": visible[n],
                "root_depth": float(root_depth[n]),
                "f": f32[row],
                "c": c32[row],
                "have_depth": 1.0,
                "action": 0,
                "sequence": 0,
                "score": 1.0,
            }
            for n, row in enumerate(people.image_row.tolist())
        ]
        if self.check_images:
            self._check_image_files(table, people.image_row, path)
        return records

    def _select(
        self, people: PersonTable, table: ImageTable, aspect_ratio: float, what: str
    ) -> tuple[PersonTable, np.ndarray]:
        """The kept people, in record order, and their (N, 4) crop boxes; logs the count of each rule."""
        roots = people.joints_cam[:, ROOT_INDEX]
        chosen, closest = select_people(people.image_row, roots)
        in_range = np.ones(len(people), bool)
        if self.root_depth_range is not None:
            low, high = self.root_depth_range
            in_range = (roots[:, 2] >= low) & (roots[:, 2] <= high)
        boxes, box_ok = crop_boxes(people.boxes, table.sizes[people.image_row], aspect_ratio)
        keep = chosen & in_range & box_ok
        # images in file order, the closest person of each first, then annotation order
        order = np.lexsort((np.arange(len(people)), ~closest, people.image_row))
        order = order[keep[order]]
        depth = (
            "no depth range"
            if self.root_depth_range is None
            else f"{int((chosen & ~in_range).sum())} with the root depth outside "
            f"[{self.root_depth_range[0]:g}, {self.root_depth_range[1]:g}] mm"
        )
        log.info(
            "%s: kept %d of the %d people of %d images; left out: %d with another root within %g mm, %s, %d with an "
            "empty box",
            what,
            len(order),
            len(people),
            len(np.unique(people.image_row)),
            int((~chosen).sum()),
            NEAR_ROOT_MM,
            depth,
            int((chosen & in_range & ~box_ok).sum()),
        )
        return people.take(order), boxes[order]

    def _check_image_files(self, table: ImageTable, rows: np.ndarray, ann_file: Path) -> None:
        """Raise DatasetNotFoundError for the first image of ``rows`` that is not on disk (one stat each)."""
        prefix = str(self.image_dir) + os.sep
        for row in np.unique(rows).tolist():
            if not os.path.exists(prefix + table.file_names[row]):
                raise DatasetNotFoundError(
                    f"MuCo-3DHP image {prefix + table.file_names[row]} not found ({table.describe(row)}, listed in "
                    f"{ann_file}); is {self.image_dir}/ complete?"
                )

    def metric_inputs(self) -> dict:
        """What the MPJPE metric needs from this source: ``{"actions": ("MuCo-3DHP",)}`` (one group)."""
        return {"actions": list(ACTIONS)}

    def extra_records(self, split: str, *, aspect_ratio: float) -> tuple[list[dict], str | None]:
        """The mixed-in 2D training records and their keypoint layout name, or ``([], None)``.

        Records come from ``extra_2d`` for the "train" split when ``mix_2d`` is set and there is an
        ``extra_2d`` reader; its layout is its ``keypoint_layout`` attribute, else ``extra_2d_layout``.
        """
        if self._split(split) != "train" or not self._mixing:
            return [], None
        layout = getattr(self.extra_2d, "keypoint_layout", None) or self.extra_2d_layout
        if layout is None:
            raise ValueError(
                f"extra_2d reader {type(self.extra_2d).__name__} has no 'keypoint_layout' attribute; name the "
                "layout of its records with data.reader.extra_2d_layout (e.g. coco17)"
            )
        records = self.extra_2d.load_records(
            "train", keypoint_info=get_keypoint_info(layout), aspect_ratio=aspect_ratio, training=True
        )
        return records, layout
