"""COCO-WholeBody (Jin et al., ECCV 2020) as a reader: COCO's images with the whole-body annotation
files, 133 joints per person assembled from five keys.

Expected under ``data.root`` (each path can be changed in ``data.reader``), as mmpose lays it out:

- ``annotations/coco_wholebody_train_v1.0.json`` and ``annotations/coco_wholebody_val_v1.0.json``;
- ``images/train2017/`` and ``images/val2017/``: COCO 2017's images (the same files as ``data=coco``).

Each annotation keeps COCO's fields and adds the parts: the joints are ``keypoints`` (the 17 body
joints), ``foot_kpts`` (6), ``face_kpts`` (68), ``lefthand_kpts`` (21) and ``righthand_kpts`` (21),
concatenated in that order (mmpose's ``CocoWholeBodyDataset``). A part that is not annotated is all
zeros; the ``*_valid`` flags and ``*_box`` fields are not read (the official evaluation does not
either). ``num_keypoints`` counts the body joints only, and, as mmpose, a person whose
``num_keypoints`` is 0 is not trained or evaluated on, whatever its face or hands hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from src.readers.coco import COCOReader
from src.readers.coco_records import root_text

#: The annotation keys of the 133 joints and their counts, in the layout's order.
WHOLEBODY_FIELDS = {"keypoints": 17, "foot_kpts": 6, "face_kpts": 68, "lefthand_kpts": 21, "righthand_kpts": 21}
#: Where the annotation files are published (the README of github.com/jin-s13/COCO-WholeBody).
WHOLEBODY_URL = "https://github.com/jin-s13/COCO-WholeBody"


class COCOWholeBodyReader(COCOReader):
    """COCO-WholeBody v1.0. Arguments as `COCOReader`; the defaults are the layout of the module
    docstring and ``keypoint_fields`` the five whole-body keys."""

    name = "coco_wholebody"
    labelled_by_num_keypoints = True

    def __init__(
        self,
        *,
        root: str | Path,
        train_ann: str = "annotations/coco_wholebody_train_v1.0.json",
        val_ann: str = "annotations/coco_wholebody_val_v1.0.json",
        train_images: str = "images/train2017",
        val_images: str = "images/val2017",
        keypoint_fields: Mapping[str, int] | None = None,
        **options: object,
    ) -> None:
        super().__init__(
            root=root,
            train_ann=train_ann,
            val_ann=val_ann,
            train_images=train_images,
            val_images=val_images,
            keypoint_fields=keypoint_fields or WHOLEBODY_FIELDS,
            **options,
        )

    def missing_data_lines(self, split: str, missing: list[str]) -> list[str]:
        return [
            f"COCO-WholeBody {split} data not found. Missing: " + "; ".join(missing) + ".",
            "",
            f"Expected under {root_text(self.root)}:",
            "  ROOT/annotations/coco_wholebody_train_v1.0.json",
            "  ROOT/annotations/coco_wholebody_val_v1.0.json",
            "  ROOT/images/train2017/   COCO 2017's images (python -m src.readers.coco_download --root ROOT)",
            "  ROOT/images/val2017/",
            "",
            f"The annotation files (v1.0) are linked from {WHOLEBODY_URL}.",
            "Point to another location with data.root=..., or per file with data.reader.train_ann=... "
            "data.reader.val_ann=... data.reader.train_images=... data.reader.val_images=...",
        ]
