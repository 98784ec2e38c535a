"""CrowdPose (Li et al. 2019) as a reader, in the layout of the HigherHRNet repository::

    ROOT/json/crowdpose_{train,val,trainval,test}.json   COCO-style, 14 joints, crowdIndex per image
    ROOT/images/*.jpg

The files are COCO keypoint files with the `crowdpose14` layout; they carry no ``area`` (the box
area stands in where a reader needs one; the metric uses 0.53 x the box area, as crowdposetools)
and no segmentations. The paper's protocol, the default here: train on trainval, evaluate on test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.readers.coco import SPLITS, COCOReader
from src.readers.errors import DatasetNotFoundError

CROWDPOSE_SPLITS = ("train", "val", "trainval", "test")


def check_crowdpose_layout(root: Path, ann_file: Path, image_dir: Path) -> None:
    """DatasetNotFoundError naming what is missing, the expected layout and where to get it."""
    missing = [f"annotation file {ann_file}"] if not ann_file.is_file() else []
    if not image_dir.is_dir():
        missing.append(f"image folder {image_dir}/")
    if not missing:
        return
    raise DatasetNotFoundError(
        "\n".join(
            [
                "CrowdPose data not found. Missing: " + "; ".join(missing) + ".",
                "",
                f"Expected layout under ROOT = {root} (the HigherHRNet repository's):",
                "  ROOT/json/crowdpose_trainval.json   (training, as in the paper)",
                "  ROOT/json/crowdpose_test.json       (evaluation)",
                "  ROOT/images/*.jpg",
                "",
                "Get the annotations and images from the CrowdPose project page",
                "(https://github.com/Jeff-sjtu/CrowdPose, 'Dataset' section), put the json files into",
                "ROOT/json/ and the images into ROOT/images/, or point data.root elsewhere. Other splits:",
                "data.reader.train_split=train data.reader.val_split=val.",
                "No data at hand? data=synthetic_crowdpose writes a small CrowdPose-format dataset offline.",
            ]
        )
    )


class CrowdPoseReader(COCOReader):
    """CrowdPose annotation files read as COCO keypoint files (see the module docstring).

    Args:
        root: dataset root.
        train_split, val_split: which of train, val, trainval, test the training and the evaluation
            read (default trainval and test, the paper's protocol).
        json_dir, images: folders under ``root``.
        train_ann, val_ann, train_images, val_images: explicit files or folders (against ``root``
            unless absolute) in place of those the splits name; None: the splits' own.
        val_boxes, det_file, det_score_thr: as `COCOReader` (top-down evaluation on detections).
    """

    name = "crowdpose"
    area_from_box = True

    def __init__(
        self,
        *,
        root: str | Path,
        train_split: str = "trainval",
        val_split: str = "test",
        json_dir: str = "json",
        images: str = "images",
        train_ann: str | None = None,
        val_ann: str | None = None,
        train_images: str | None = None,
        val_images: str | None = None,
        **boxes: Any,
    ) -> None:
        for split in (train_split, val_split):
            if split not in CROWDPOSE_SPLITS:
                raise ValueError(f"CrowdPose splits are {list(CROWDPOSE_SPLITS)}, got {split!r}")
        super().__init__(
            root=root,
            train_ann=train_ann or f"{json_dir}/crowdpose_{train_split}.json",
            val_ann=val_ann or f"{json_dir}/crowdpose_{val_split}.json",
            train_images=train_images or images,
            val_images=val_images or images,
            **boxes,
        )

    def check(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        check_crowdpose_layout(self.root, self.ann_files[split], self.image_dirs[split])
