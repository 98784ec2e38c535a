"""AP-10K (Yu et al., NeurIPS 2021 Datasets and Benchmarks): animal pose, 17 joints shared by 54
species of 23 families, in COCO format.

Expected under ``data.root`` (each path can be changed in ``data.reader``), as the dataset's
README lays it out:

- ``annotations/ap10k-{train,val,test}-split{1,2,3}.json``: three random splits (``split`` picks
  one; published results use split 1);
- ``data/``: every image of every split, in one folder.

Each annotation carries its species as ``category_id``; the metric matches predictions to ground
truth of the same species and averages AP over the species, as the official evaluation does.
"""

from __future__ import annotations

from pathlib import Path

from src.readers.coco import COCOReader
from src.readers.coco_records import root_text

#: Where the dataset is published.
AP10K_URL = "https://github.com/AlexTheBad/AP-10K"
AP10K_SPLITS = ("train", "val", "test")


class AP10KReader(COCOReader):
    """AP-10K. Arguments as `COCOReader` plus ``split`` (1, 2 or 3), the subsets trained and
    evaluated on (``train_subset``, ``val_subset``: train, val or test) and ``images``, the folder of
    every image; explicit ``train_ann`` / ``val_ann`` / ``train_images`` / ``val_images`` win."""

    name = "ap10k"

    def __init__(
        self,
        *,
        root: str | Path,
        split: int = 1,
        train_subset: str = "train",
        val_subset: str = "val",
        train_ann: str | None = None,
        val_ann: str | None = None,
        images: str = "data",
        train_images: str | None = None,
        val_images: str | None = None,
        **options: object,
    ) -> None:
        if split not in (1, 2, 3):
            raise ValueError(f"AP-10K has splits 1, 2 and 3, got split={split!r}")
        for subset in (train_subset, val_subset):
            if subset not in AP10K_SPLITS:
                raise ValueError(f"AP-10K subsets are {list(AP10K_SPLITS)}, got {subset!r}")
        super().__init__(
            root=root,
            train_ann=train_ann or f"annotations/ap10k-{train_subset}-split{split}.json",
            val_ann=val_ann or f"annotations/ap10k-{val_subset}-split{split}.json",
            train_images=train_images or images,
            val_images=val_images or images,
            **options,
        )

    def missing_data_lines(self, split: str, missing: list[str]) -> list[str]:
        return [
            f"AP-10K {split} data not found. Missing: " + "; ".join(missing) + ".",
            "",
            f"Expected under {root_text(self.root)}:",
            "  ROOT/annotations/ap10k-train-split1.json   (and -val-, -test-; splits 1, 2, 3)",
            "  ROOT/data/000000000001.jpg ...             every image, one folder",
            "",
            f"Get it from {AP10K_URL} (the README's download link).",
            "Point to another location with data.root=..., pick a split with data.reader.split=2, or set "
            "data.reader.train_ann=... data.reader.val_ann=... data.reader.images=...",
        ]
