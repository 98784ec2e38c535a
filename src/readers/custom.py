"""Your own COCO-format keypoint dataset (``data=custom``): the COCO reader with the paths and the
message of a custom dataset.

Expected under ``data.root`` (each path can be changed in ``data.reader``):

- ``annotations/train.json`` and ``annotations/val.json``: COCO-format files (``images``,
  ``annotations`` with ``keypoints``, ``num_keypoints``, ``bbox`` and optionally ``area``, and
  ``categories`` with ``keypoints`` and ``skeleton``);
- ``images/train/`` and ``images/val/``: the images their ``file_name`` entries name.

The keypoints are described by the layout (``data.layout``, see ``docs/custom-keypoints.md``).
"""

from __future__ import annotations

from pathlib import Path

from src.readers.coco import COCOReader
from src.readers.coco_records import root_text


class CustomCOCOReader(COCOReader):
    """A COCO-format dataset in any keypoint layout. Arguments as `COCOReader`; the defaults are
    the custom layout of the module docstring, and a missing file gets a message about it (not
    about downloading COCO). Annotations without ``area`` take their box's area."""

    name = "custom"
    area_from_box = True

    def __init__(
        self,
        *,
        root: str | Path,
        train_ann: str = "annotations/train.json",
        val_ann: str = "annotations/val.json",
        train_images: str = "images/train",
        val_images: str = "images/val",
        **options: object,
    ) -> None:
        super().__init__(
            root=root, train_ann=train_ann, val_ann=val_ann, train_images=train_images, val_images=val_images, **options
        )

    def missing_data_lines(self, split: str, missing: list[str]) -> list[str]:
        return [
            f"custom dataset, {split} split: missing " + "; ".join(missing) + ".",
            "",
            f"Expected under {root_text(self.root)}:",
            "  ROOT/annotations/train.json   COCO-format: images, annotations (keypoints, num_keypoints,",
            "  ROOT/annotations/val.json     bbox, optional area), categories (keypoints, skeleton)",
            "  ROOT/images/train/            the images the files' file_name entries name",
            "  ROOT/images/val/",
            "",
            "Set the root with data.root=..., or each path with data.reader.train_ann=... "
            "data.reader.val_ann=... data.reader.train_images=... data.reader.val_images=...;",
            "describe the keypoints with data.layout=<layout .yaml file> (docs/custom-keypoints.md).",
        ]
