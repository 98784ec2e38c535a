"""PoseTrack18 (Andriluka et al., CVPR 2018) as a reader, in the dataset's official layout::

    ROOT/annotations/train/<video>.json   one COCO-style file per video (593 videos)
    ROOT/annotations/val/<video>.json     (170 videos)
    ROOT/images/train/<video>/000000.jpg  every frame; the files' file_name is relative to ROOT
    ROOT/images/val/<video>/...

Each video file is read by `src.readers.posetrack18_json.read_video` into COCO-format content of its
labelled frames, ignore regions as crowd annotations; the COCO readers then make the person crops
(`load_coco_records`) and the whole images with their ignore masks (`load_coco_images`) from it,
video by video, so that an error names the video file. The people carry no ``area``: the box area
stands in where a reader needs one (the empty-box filter), as for CrowdPose. Only labelled frames
are samples, in training and evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.layouts import KeypointInfo
from src.readers.coco import resolve
from src.readers.coco_images import load_coco_images
from src.readers.coco_records import load_coco_records, root_text
from src.readers.errors import DatasetNotFoundError
from src.readers.posetrack18_json import frame_table, labelled_image_ids, read_split

SPLITS = ("train", "val")
#: Where the dataset is published (registration, then the annotation and image archives).
POSETRACK_URL = "https://posetrack.net/users/download.php"


class PoseTrack18Reader:
    """PoseTrack18 in the official layout (see the module docstring).

    Args:
        root: dataset root; the paths below are resolved against it unless absolute.
        train_ann, val_ann: the folders of the per-video annotation files of each split.
        train_images, val_images: the folders of each split's frames (checked to be there).
        image_root: the folder the files' ``file_name`` entries (``images/val/<video>/000000.jpg``)
            are relative to: the root in the official layout.
        val_boxes: "gt" (ground-truth boxes) or "detections" (person detections from ``det_file``,
            a COCO detection results list, such as mmpose's PoseTrack18 validation detections) for
            top-down validation crops. Detections of frames that are not labelled are left out.
        det_file: detection results JSON (resolved against ``root`` unless absolute).
        det_score_thr: keep detections with score >= this.
        keypoint_fields: null (the key of the COCO data configs this one extends): PoseTrack18 files
            hold every joint in ``keypoints``.
    """

    name = "posetrack18"

    def __init__(
        self,
        *,
        root: str | Path,
        train_ann: str = "annotations/train",
        val_ann: str = "annotations/val",
        train_images: str = "images/train",
        val_images: str = "images/val",
        image_root: str = ".",
        val_boxes: str = "gt",
        det_file: str | None = None,
        det_score_thr: float = 0.0,
        keypoint_fields: Any = None,
    ) -> None:
        if keypoint_fields:
            raise ValueError(
                f"keypoint_fields={keypoint_fields!r}: PoseTrack18 files hold every joint in 'keypoints'; leave it null"
            )
        if val_boxes not in ("gt", "detections"):
            raise ValueError(f"val_boxes must be 'gt' or 'detections', got {val_boxes!r}")
        if val_boxes == "detections" and not det_file:
            raise ValueError("val_boxes='detections' needs det_file (a person detection results JSON)")
        self.root = Path(root).expanduser()
        self.ann_dirs = {"train": resolve(self.root, train_ann), "val": resolve(self.root, val_ann)}
        self.image_dirs = {"train": resolve(self.root, train_images), "val": resolve(self.root, val_images)}
        self.image_root = resolve(self.root, image_root)
        self.val_boxes = val_boxes
        self.det_file = resolve(self.root, det_file) if det_file else None
        self.det_score_thr = float(det_score_thr)

    def _split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return split

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Check that ``splits`` are on disk (a message says how to get them if not)."""
        for split in splits:
            self.check(split)

    def check(self, split: str) -> None:
        """DatasetNotFoundError, with `missing_data_lines`, unless the split's annotation folder
        holds video files and its image folder exists."""
        split = self._split(split)
        ann_dir, image_dir = self.ann_dirs[split], self.image_dirs[split]
        missing = [f"dataset root {self.root}"] * (not self.root.is_dir())
        if not ann_dir.is_dir():
            missing.append(f"annotation folder {ann_dir}/")
        elif not any(ann_dir.glob("*.json")):
            missing.append(f"video annotation files (*.json) in {ann_dir}/")
        if not image_dir.is_dir():
            missing.append(f"image folder {image_dir}/")
        if missing:
            raise DatasetNotFoundError("\n".join(self.missing_data_lines(split, missing)))

    def missing_data_lines(self, split: str, missing: list[str]) -> list[str]:
        """The message for a split whose files are ``missing``: what, where it belongs, how to get it."""
        return [
            f"PoseTrack18 {split} data not found. Missing: " + "; ".join(missing) + ".",
            "",
            f"Expected the official layout under {root_text(self.root)}:",
            "  ROOT/annotations/train/<video>.json    one file per video, e.g. 000001_bonn_train.json",
            "  ROOT/annotations/val/<video>.json      e.g. 000342_mpii_test.json",
            "  ROOT/images/train/<video>/000000.jpg   the frames (the files' file_name is relative to ROOT)",
            "  ROOT/images/val/<video>/000000.jpg",
            "",
            f"Register and download the PoseTrack18 annotations and image archives from {POSETRACK_URL}",
            "and unpack both into ROOT.",
            "Point to another location with data.root=..., or per folder with data.reader.train_ann=... "
            "data.reader.val_ann=... data.reader.train_images=... data.reader.val_images=... "
            "data.reader.image_root=... (the folder file_name is relative to).",
        ]

    def _videos(self, split: str, keypoint_info: KeypointInfo) -> list:
        return read_split(self.ann_dirs[split], image_root=self.image_root, num_keypoints=keypoint_info.num_keypoints)

    def load_records(
        self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool
    ) -> list[dict]:
        """Person records of the labelled frames for top-down crops (validation from detections
        when ``val_boxes`` says so); ``sample_id`` runs over the whole split."""
        split = self._split(split)
        videos = self._videos(split, keypoint_info)
        if split == "val" and self.val_boxes == "detections":
            records = load_coco_records(
                self.ann_dirs[split],
                self.image_root,
                keypoint_info=keypoint_info,
                aspect_ratio=aspect_ratio,
                training=training,
                det_file=self.det_file,
                det_score_thr=self.det_score_thr,
                data=frame_table(videos),
            )
            labelled = labelled_image_ids(videos)
            records = [r for r in records if r["image_id"] in labelled]
        else:
            records = []
            for video in videos:
                records += load_coco_records(
                    video.path,
                    self.image_root,
                    keypoint_info=keypoint_info,
                    aspect_ratio=aspect_ratio,
                    training=training,
                    area_from_box=True,
                    data=video.content,
                )
        for i, record in enumerate(records):
            record["sample_id"] = i
        return records

    def image_files(self, split: str) -> list[tuple[int, Path]]:
        """(image id, file path) of every labelled frame of a split."""
        split = self._split(split)
        return [
            (int(image["id"]), self.image_root / str(image["file_name"]))
            for video in read_split(self.ann_dirs[split], image_root=self.image_root)
            for image in video.content["images"]
        ]

    def load_images(self, split: str, *, keypoint_info: KeypointInfo, training: bool) -> list[dict]:
        """Whole-image records of the labelled frames with every person, and the ignore regions as
        the loss mask (``ignore_rle``), for bottom-up models."""
        split = self._split(split)
        if self.val_boxes != "gt":
            raise ValueError(
                "bottom-up models find the people themselves: data.reader.val_boxes=detections (person boxes "
                "for top-down crops) does not apply; use data.reader.val_boxes=gt"
            )
        records = []
        for video in self._videos(split, keypoint_info):
            records += load_coco_images(
                video.path, self.image_root, keypoint_info=keypoint_info, training=training, data=video.content
            )
        return records

    def metric_inputs(self) -> dict[str, Any]:
        """What the PoseTrack18 metric needs: the validation annotation folder and the image root."""
        return {"ann_dir": self.ann_dirs["val"].resolve(), "image_root": self.image_root.resolve()}
