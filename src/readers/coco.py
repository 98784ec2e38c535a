"""The COCO source as a reader: the object a data config names and the datamodule calls.

Every reader answers the same few calls (``prepare(splits)``, ``check(split)``, ``load_records``
for person crops, ``load_images`` for whole images where the source has them, ``metric_inputs``),
so the datamodule and the datasets never ask which source they read. ``prepare`` generates or
checks only the splits it is given: training passes ("train", "val"), evaluation ("val",).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from src.layouts import KeypointInfo
from src.readers.coco_images import load_coco_images
from src.readers.coco_records import coco_missing_lines, list_coco_images, load_coco_records, missing_paths
from src.readers.errors import DatasetNotFoundError

SPLITS = ("train", "val")


def resolve(root: Path, path: str | Path) -> Path:
    """``path`` against ``root`` unless absolute (``~`` expanded)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


class COCOReader:
    """COCO-format keypoint files (real COCO, or any layout with the same schema).

    Args:
        root: dataset root; the paths below are resolved against it unless absolute.
        train_ann, val_ann: keypoint annotation files (person_keypoints_*.json).
        train_images, val_images: image folders.
        val_boxes: "gt" (ground-truth boxes) or "detections" (person detections from ``det_file``)
            for top-down validation crops.
        det_file: detection results JSON (resolved against ``root`` unless absolute).
        det_score_thr: keep detections with score >= this (official IMAGE_THRE 0.0).
        keypoint_fields: the annotation keys whose (x, y, v) triplets, concatenated in order, are the
            layout's joints, with the number each holds (default: ``keypoints`` holds them all;
            COCO-WholeBody: ``{keypoints: 17, foot_kpts: 6, face_kpts: 68, lefthand_kpts: 21,
            righthand_kpts: 21}``). The metric assembles the ground truth the same way.
    """

    name = "coco"
    #: Whether annotations may lack ``area`` (the box area stands in; CrowdPose files have none).
    area_from_box = False
    #: Whether a person counts as labelled by ``num_keypoints > 0`` (mmpose) rather than by a
    #: nonzero keypoint value (HRNet); they differ where ``num_keypoints`` counts part of the joints.
    labelled_by_num_keypoints = False

    def __init__(
        self,
        *,
        root: str | Path,
        train_ann: str = "annotations/person_keypoints_train2017.json",
        val_ann: str = "annotations/person_keypoints_val2017.json",
        train_images: str = "images/train2017",
        val_images: str = "images/val2017",
        val_boxes: str = "gt",
        det_file: str | None = None,
        det_score_thr: float = 0.0,
        keypoint_fields: Mapping[str, int] | None = None,
    ) -> None:
        if val_boxes not in ("gt", "detections"):
            raise ValueError(f"val_boxes must be 'gt' or 'detections', got {val_boxes!r}")
        if val_boxes == "detections" and not det_file:
            raise ValueError("val_boxes='detections' needs det_file (a person detection results JSON)")
        self.root = Path(root).expanduser()
        self.ann_files = {"train": resolve(self.root, train_ann), "val": resolve(self.root, val_ann)}
        self.image_dirs = {"train": resolve(self.root, train_images), "val": resolve(self.root, val_images)}
        self.val_boxes = val_boxes
        self.det_file = resolve(self.root, det_file) if det_file else None
        self.det_score_thr = float(det_score_thr)
        self.keypoint_fields = dict(keypoint_fields) if keypoint_fields else None

    def _split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return split

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Check that ``splits`` are on disk (a message says how to get them if not); an evaluation
        passes ("val",) and needs no training files."""
        for split in splits:
            self.check(split)

    def check(self, split: str) -> None:
        """DatasetNotFoundError, with `missing_data_lines`, unless the split's files are on disk."""
        split = self._split(split)
        missing = missing_paths(self.root, self.ann_files[split], self.image_dirs[split])
        if missing:
            raise DatasetNotFoundError("\n".join(self.missing_data_lines(split, missing)))

    def missing_data_lines(self, split: str, missing: list[str]) -> list[str]:
        """The message for a split whose files are ``missing``: what, where they belong and how to
        get them. Each COCO-format source (COCO-WholeBody, AP-10K, your own) says its layout."""
        return coco_missing_lines(self.root, missing, split=f"{split}2017")

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """Person records for top-down crops (validation from detections when ``val_boxes`` says so)."""
        split = self._split(split)
        det_file = self.det_file if (split == "val" and self.val_boxes == "detections") else None
        return load_coco_records(
            self.ann_files[split],
            self.image_dirs[split],
            keypoint_info=keypoint_info,
            aspect_ratio=aspect_ratio,
            training=training,
            det_file=det_file,
            det_score_thr=self.det_score_thr,
            area_from_box=self.area_from_box,
            fields=self.keypoint_fields,
            labelled_by_num_keypoints=self.labelled_by_num_keypoints,
        )

    def image_files(self, split: str) -> list[tuple[int, Path]]:
        """(image id, file path) of every image of a split, as its annotation file lists them."""
        split = self._split(split)
        return [(i, self.image_dirs[split] / name) for i, name in list_coco_images(self.ann_files[split]).items()]

    def load_images(self, split: str, *, keypoint_info: KeypointInfo, training: bool) -> list[dict]:
        """Whole-image records with every person and the ignore regions, for bottom-up models."""
        split = self._split(split)
        if self.val_boxes != "gt":
            raise ValueError(
                "bottom-up models find the people themselves: data.reader.val_boxes=detections (person boxes "
                "for top-down crops) does not apply; use data.reader.val_boxes=gt"
            )
        return load_coco_images(
            self.ann_files[split],
            self.image_dirs[split],
            keypoint_info=keypoint_info,
            training=training,
            fields=self.keypoint_fields,
        )

    def metric_inputs(self) -> dict[str, Any]:
        """What the evaluation metric needs from this source: the validation annotation file (and
        the keys holding the joints, where they are not ``keypoints`` alone)."""
        inputs: dict[str, Any] = {"ann_file": self.ann_files["val"].resolve()}
        if self.keypoint_fields:
            inputs["keypoint_fields"] = self.keypoint_fields
        return inputs
