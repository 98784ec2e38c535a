"""MuPoTS-3D in the layout of the 3DMPPE repositories -> 3D person records (evaluation only).

Layout on disk (paths can be overridden)::

    ROOT/data/MuPoTS-3D.json                          COCO-style images and people (is_valid flags)
    ROOT/data/MultiPersonTestSet/TS<k>/img_XXXXXX.jpg  the 20 test sequences
    ROOT/bbox_root/bbox_root_mupots_output.json        RootNet boxes and roots (use_gt_info=False)

The annotation file is read by `src.readers.mupots_ground_truth`; its joints are the 17 of
`src.layouts.MUPOTS17`. One record per person crop (K joints of the model's layout)::

    {"sample_id": int, "image_id": int, "image_file": str, "bbox": (4,) float32 [x, y, w, h],
     "joints_img": (K, 3) float32 [u, v, Z mm], "joints_cam": (K, 3) float32 mm, "visible": (K,) float32,
     "root_depth": float mm, "f": (2,) float32, "c": (2,) float32, "have_depth": 1.0, "action": -1,
     "sequence": int (the TS number), "score": float}

As the official PoseNet reader (P ``data/MuPoTS/MuPoTS.py``): with ``use_gt_info`` one record per
valid annotation (``is_valid`` 1), crop box = ``process_bbox`` of its box, root depth = its pelvis
Z, score 1.0; without, one record per entry of the RootNet bbox_root file, whose box is used as
given (RootNet already processed it) and whose ``root_cam[2]`` is the root depth, with the entry's
score, and with zero joints marked not visible (a detection has no ground truth; the evaluation
matches predictions to the annotated people of the image); with ``bbox_root_missing="kvalue"``, the
valid people of annotated images without an entry follow as ground-truth records whose root depth
is the k-value of their crop box. ``joints_img`` keeps the absolute depth Z, as in the Human3.6M
records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.camera import BBOX_REAL_MM, k_value
from src.layouts import MUPOTS17, ROOT_JOINT, KeypointInfo
from src.readers.bbox_root import BBoxRootEntry, read_bbox_root_entries
from src.readers.coco_3d import (
    PersonTable,
    check_aspect_ratio,
    check_visibility,
    crop_boxes,
    layout_index,
    layout_joints,
)
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.mupots_ground_truth import NUM_JOINTS, MuPoTSGroundTruth, MuPoTSImage, read_mupots_ground_truth

log = logging.getLogger(__name__)

#: The one split: MuPoTS-3D is a test set.
SPLITS = ("val",)

#: What ``bbox_root_missing`` may say about an annotated image without an entry in the bbox_root file.
MISSING_ENTRY_RULES = ("error", "kvalue")

ROOT_INDEX = MUPOTS17.keypoint_names.index(ROOT_JOINT)


def _layout_message(root: Path, missing: list[str]) -> str:
    """The one message of a missing MuPoTS-3D dataset: what is missing, the layout, how to get it."""
    shown_root = f"{root}" + ("" if root.is_absolute() else f" (= {os.path.abspath(root)})")
    return "\n".join(
        [
            "MuPoTS-3D data not found. Missing: " + "; ".join(dict.fromkeys(missing)) + ".",
            "",
            f"Expected layout under ROOT = {shown_root}:",
            "  ROOT/data/MuPoTS-3D.json                           images (intrinsic) and people (is_valid)",
            "  ROOT/data/MultiPersonTestSet/TS1..TS20/img_XXXXXX.jpg",
            "  ROOT/bbox_root/bbox_root_mupots_output.json        only with data.reader.use_gt_info=false",
            "",
            "Get it:",
            "  the images (MultiPersonTestSet, with the MATLAB evaluation kit) from the MuPoTS-3D page of the",
            "    MPI for Informatics (gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson); MuPoTS-3D.json and",
            "    bbox_root_mupots_output.json from the links in the README of the 3DMPPE PoseNet repository",
            "    (3DMPPE_POSENET_RELEASE; the RootNet boxes and roots are also linked from 3DMPPE_ROOTNET_RELEASE).",
            "",
            "Point to another location with data.root=/path/to/mupots, or set the files with",
            "data.reader.ann_file=... data.reader.images=... data.reader.bbox_root_file=...",
        ]
    )


class MuPoTSReader:
    """The MuPoTS-3D source of the data module (3DMPPE layout): evaluation records only.

    Args:
        root: dataset root; the paths below are resolved against it unless absolute.
        ann_file: the annotation file (``MuPoTS-3D.json``).
        images: the image folder (``MultiPersonTestSet``; file names are ``TS<k>/img_XXXXXX.jpg``).
        use_gt_info: crop boxes and root depths from the ground truth (True) or from
            ``bbox_root_file`` (False; the official PoseNet test with RootNet's output).
        bbox_root_file: the RootNet bbox_root JSON; needed when ``use_gt_info`` is False.
        bbox_root_missing: what happens to an annotated image without an entry in the bbox_root
            file: "error" (raise, naming the first) or "kvalue" (its ground-truth boxes, with the
            k-value as root depth, `src.camera.k_value` with a 2000 mm box).
        visibility: "all" (every joint visible, the PoseNet reader) or "file" (``keypoints_vis``).
        check_images: check that every image of the records exists.

    Raises:
        ValueError: an unknown option value, or ``use_gt_info`` False without a bbox_root file.
    """

    name = "mupots"
    keypoint_layout = "mupots17"

    def __init__(
        self,
        *,
        root: str | Path,
        ann_file: str = "data/MuPoTS-3D.json",
        images: str = "data/MultiPersonTestSet",
        use_gt_info: bool = True,
        bbox_root_file: str | None = None,
        bbox_root_missing: str = "error",
        visibility: str = "all",
        check_images: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.ann_file = self._resolve(ann_file)
        self.image_dir = self._resolve(images)
        self.use_gt_info = bool(use_gt_info)
        if not self.use_gt_info and not bbox_root_file:
            raise ValueError("use_gt_info=False needs bbox_root_file (RootNet boxes and root depths, by image id)")
        self.bbox_root_file = self._resolve(bbox_root_file) if bbox_root_file else None
        if bbox_root_missing not in MISSING_ENTRY_RULES:
            raise ValueError(f"bbox_root_missing must be one of {MISSING_ENTRY_RULES}, got {bbox_root_missing!r}")
        self.bbox_root_missing = bbox_root_missing
        self.visibility = check_visibility(visibility)
        self.check_images = bool(check_images)
        self._gt_cache: tuple[int | None, MuPoTSGroundTruth] | None = None

    def _resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this reader has: "val" (MuPoTS-3D is a test set)."""
        return SPLITS

    def _split(self, split: str) -> str:
        if split == "train":
            raise ValueError(
                "MuPoTS-3D is a test set and has no training split: train on MuCo-3DHP (data=muco) and "
                "evaluate here (data=mupots)"
            )
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; the MuPoTS-3D reader knows {SPLITS}")
        return split

    def _missing(self) -> list[str]:
        missing = []
        if not self.root.is_dir():
            missing.append(f"dataset root {self.root}/")
        if not self.ann_file.is_file():
            missing.append(f"annotation file {self.ann_file}")
        if not self.image_dir.is_dir():
            missing.append(f"image folder {self.image_dir}/")
        if not self.use_gt_info and not self.bbox_root_file.is_file():
            missing.append(f"bbox_root file {self.bbox_root_file}")
        return missing

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Check the files of ``splits`` (only "val" exists); one message lists all that is missing."""
        for split in splits:
            self.check(split)

    def check(self, split: str) -> None:
        """Check the files of ``split``; raise DatasetNotFoundError with the layout."""
        self._split(split)
        missing = self._missing()
        if missing:
            raise DatasetNotFoundError(_layout_message(self.root, missing))

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """3D person records of ``split`` (format in the module docstring).

        Args:
            split: "val" (the only split).
            keypoint_info: the model's layout; its joints are mapped from the file's 17 by name.
            aspect_ratio: the model's input width / height (ground-truth crop boxes are fitted to it).
            training: unused (MuPoTS-3D is not trained on).

        Raises:
            DatasetNotFoundError: a file or (with ``check_images``) an image is missing.
            AnnotationError: malformed content; the message names the file and the entry.
            ValueError: "train". A layout joint that MuPoTS-3D lacks (the hands and toes of MuCo's 21)
                is zeros and not visible.
        """
        del training
        self._split(split)
        aspect_ratio = check_aspect_ratio(aspect_ratio)
        # a model of more joints (3DMPPE's 21 MuCo joints) reads the 17 it shares; the rest have no
        # ground truth here (zeros, not visible) and are not scored
        index = layout_index(keypoint_info, MUPOTS17.name, "MuPoTS-3D", allow_missing=True)
        self.check(split)
        gt = self._ground_truth()
        if self.use_gt_info:
            records = self._gt_records(gt, [img for img in gt.images if img.num_people], index, aspect_ratio)
        else:
            records = self._bbox_root_records(gt, index, aspect_ratio)
        if self.check_images:
            self._check_image_files(records)
        for i, record in enumerate(records):
            record["sample_id"] = i
        return records

    def _gt_records(
        self,
        gt: MuPoTSGroundTruth,
        images: list[MuPoTSImage],
        index: np.ndarray,
        aspect_ratio: float,
        *,
        kvalue_depth: bool = False,
    ) -> list[dict]:
        """One record per valid person of ``images``, crop box from its annotation box (people whose
        box is empty after clipping are left out). Root depth: the pelvis Z, or with
        ``kvalue_depth`` the k-value of the crop box."""
        people = _people(images)
        sizes = np.array([(img.width, img.height) for img in images], dtype=np.float64).reshape(-1, 2)
        boxes, keep = crop_boxes(people.boxes, sizes[people.image_row], aspect_ratio)
        if not keep.all():
            log.warning(
                "MuPoTS-3D %s: %d of %d valid people left out, their boxes are empty after clipping to the image",
                gt.path,
                int((~keep).sum()),
                len(keep),
            )
        people, boxes = people.take(keep), boxes[keep]
        rows = people.image_row
        joints_img, joints_cam, visible = layout_joints(people, index, self.visibility == "file")
        focal = np.array([img.f for img in images], dtype=np.float64).reshape(-1, 2)[rows]
        if kvalue_depth:
            root_depth = k_value(boxes, focal, BBOX_REAL_MM).astype(np.float64)
        else:
            root_depth = people.joints_cam[:, ROOT_INDEX, 2]
        return [
            self._record(images[rows[n]], boxes[n], joints_img[n], joints_cam[n], visible[n], root_depth[n], 1.0)
            for n in range(len(rows))
        ]

    def _bbox_root_records(self, gt: MuPoTSGroundTruth, index: np.ndarray, aspect_ratio: float) -> list[dict]:
        """One record per bbox_root entry, then (``bbox_root_missing`` "kvalue") the ground-truth
        people of annotated images that the file has no entry for."""
        entries = read_bbox_root_entries(self.bbox_root_file, what="MuPoTS-3D bbox_root file")
        k = len(index)
        records = []
        covered = set()
        for i, entry in enumerate(entries):
            if entry.image_id not in gt:
                raise AnnotationError(
                    f"{self.bbox_root_file}: entry #{i} has image id {entry.image_id}, which {self.ann_file} "
                    "does not list"
                )
            img = gt.image(entry.image_id)
            _check_entry_box(entry, img, i, self.bbox_root_file)
            covered.add(entry.image_id)
            zeros = np.zeros((k, 3), np.float32)
            records.append(
                self._record(
                    img, entry.bbox, zeros, zeros.copy(), np.zeros(k), float(entry.root_cam[2]), float(entry.score)
                )
            )
        annotated = sum(1 for img in gt.images if img.num_people)
        uncovered = [img for img in gt.images if img.num_people and img.image_id not in covered]
        if uncovered and self.bbox_root_missing == "error":
            first = uncovered[0]
            raise AnnotationError(
                f"{self.bbox_root_file}: no entry for {len(uncovered)} of the {annotated} annotated images of "
                f"{self.ann_file}, the first image id {first.image_id} ({first.file_name!r}); is it the bbox_root "
                "file of this annotation file? data.reader.bbox_root_missing=kvalue uses the ground-truth people "
                "with k-value depths for them"
            )
        if uncovered:
            log.warning(
                "MuPoTS-3D: %d of %d annotated images have no entry in %s; their %d ground-truth boxes are used "
                "with the k-value as root depth",
                len(uncovered),
                annotated,
                self.bbox_root_file,
                sum(img.num_people for img in uncovered),
            )
            records += self._gt_records(gt, uncovered, index, aspect_ratio, kvalue_depth=True)
        return records

    def _record(
        self,
        img: MuPoTSImage,
        bbox: np.ndarray,
        joints_img: np.ndarray,
        joints_cam: np.ndarray,
        visible: np.ndarray,
        root_depth: float,
        score: float,
    ) -> dict[str, Any]:
        return {
            "image_id": img.image_id,
            "image_file": str(self.image_dir / img.file_name),
            "bbox": np.asarray(bbox, np.float32),
            "joints_img": np.asarray(joints_img, np.float32),
            "joints_cam": np.asarray(joints_cam, np.float32),
            "visible": np.asarray(visible, np.float32),
            "root_depth": float(root_depth),
            "f": np.asarray(img.f, np.float32),
            "c": np.asarray(img.c, np.float32),
            "have_depth": 1.0,
            "action": -1,
            "sequence": img.sequence,
            "score": float(score),
        }

    def _check_image_files(self, records: list[dict]) -> None:
        """Raise DatasetNotFoundError for the first image that is not on disk (one stat per image)."""
        seen = set()
        for record in records:
            path = record["image_file"]
            if path in seen:
                continue
            seen.add(path)
            if not os.path.exists(path):
                raise DatasetNotFoundError(
                    f"MuPoTS-3D image {path} not found (image id {record['image_id']}, listed in {self.ann_file}); "
                    f"is {self.image_dir}/ complete?"
                )

    def metric_inputs(self) -> dict:
        """What the MuPoTS-3D metrics need from this source: ``{"gt_file": absolute Path of
        MuPoTS-3D.json, "ground_truth_roots": {image_id: (P, 3) camera-frame pelvis positions (mm)
        of the image's valid people, for every image of the file}}``."""
        gt = self._ground_truth()
        roots = {img.image_id: img.joints_cam[:, ROOT_INDEX].copy() for img in gt.images}
        return {"gt_file": self.ann_file, "ground_truth_roots": roots}

    def _ground_truth(self) -> MuPoTSGroundTruth:
        """The annotation file, read once per reader (as long as the file is unchanged)."""
        stamp = self.ann_file.stat().st_mtime_ns if self.ann_file.is_file() else None
        if self._gt_cache is None or self._gt_cache[0] != stamp:
            self._gt_cache = (stamp, read_mupots_ground_truth(self.ann_file))
        return self._gt_cache[1]

    def extra_records(self, split: str, *, aspect_ratio: float) -> tuple[list[dict], str | None]:
        """No 2D records are mixed in (MuPoTS-3D is not trained on): ``([], None)``."""
        del aspect_ratio
        self._split(split)
        return [], None


def _people(images: list[MuPoTSImage]) -> PersonTable:
    """The valid people of ``images`` as one table (image_row: the position in ``images``)."""
    if not images:
        j = NUM_JOINTS
        return PersonTable(
            annotation_index=np.zeros(0, np.int64),
            image_row=np.zeros(0, np.int64),
            joints_cam=np.zeros((0, j, 3)),
            joints_img=np.zeros((0, j, 2)),
            visible=np.zeros((0, j), bool),
            boxes=np.zeros((0, 4)),
        )
    counts = [img.num_people for img in images]
    return PersonTable(
        annotation_index=np.concatenate([img.annotation_index for img in images]),
        image_row=np.repeat(np.arange(len(images)), counts),
        joints_cam=np.concatenate([img.joints_cam for img in images]),
        joints_img=np.concatenate([img.joints_img for img in images]),
        visible=np.concatenate([img.visible for img in images]),
        boxes=np.concatenate([img.bboxes for img in images]),
    )


def _check_entry_box(entry: BBoxRootEntry, img: MuPoTSImage, index: int, path: Path) -> None:
    """AnnotationError when an entry's box does not overlap its image at all."""
    x, y, w, h = (float(v) for v in entry.bbox)
    if x >= img.width or y >= img.height or x + w <= 0 or y + h <= 0:
        raise AnnotationError(
            f"{path}: entry #{index} (image id {entry.image_id}, {img.file_name!r}) has 'bbox' "
            f"{entry.bbox.tolist()}, entirely outside its {img.width} x {img.height} image"
        )
