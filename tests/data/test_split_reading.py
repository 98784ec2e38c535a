"""Evaluation reads the split it evaluates: a root holding only that split evaluates, and training
on it stops with the message naming the missing training files (COCO, CrowdPose; MPII and
Human3.6M are tested beside their readers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.readers.coco import COCOReader
from src.readers.crowdpose import CrowdPoseReader
from src.readers.errors import DatasetNotFoundError
from tests.helpers import REAL_COCO, compose_run

REAL_CROWDPOSE = REAL_COCO.parent / "crowdpose"


def _only_val_coco(root: Path, source: Path) -> Path:
    """A COCO root with val2017 alone: the annotation file and the images, symlinked from ``source``."""
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "val2017").mkdir(parents=True)
    (root / "annotations" / "person_keypoints_val2017.json").symlink_to(source / "test_coco.json")
    for image in source.glob("*.jpg"):
        (root / "images" / "val2017" / image.name).symlink_to(image)
    return root


def _only_test_crowdpose(root: Path, source: Path) -> Path:
    """A CrowdPose root with the test split alone (the paper's evaluation split)."""
    (root / "json").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "json" / "crowdpose_test.json").symlink_to(source / "test_crowdpose.json")
    for image in source.glob("*.jpg"):
        (root / "images" / image.name).symlink_to(image)
    return root


def test_readers_check_only_the_splits_they_are_asked_for(tmp_path: Path) -> None:
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    (coco / "images" / "val2017").mkdir(parents=True)
    (coco / "annotations" / "person_keypoints_val2017.json").write_text("{}")
    COCOReader(root=coco).prepare(splits=("val",))
    with pytest.raises(DatasetNotFoundError, match=r"COCO train2017 data not found.*person_keypoints_train2017"):
        COCOReader(root=coco).prepare()

    crowdpose = tmp_path / "crowdpose"
    (crowdpose / "json").mkdir(parents=True)
    (crowdpose / "images").mkdir()
    (crowdpose / "json" / "crowdpose_test.json").write_text("{}")
    CrowdPoseReader(root=crowdpose).prepare(splits=("val",))
    with pytest.raises(DatasetNotFoundError, match=r"crowdpose_trainval\.json"):
        CrowdPoseReader(root=crowdpose).prepare()
    with pytest.raises(ValueError, match="split must be one of"):
        CrowdPoseReader(root=crowdpose).prepare(splits=("test",))  # reader splits, not file names


@pytest.mark.skipif(not REAL_COCO.is_dir(), reason="../shared/data/real_samples is not present")
@pytest.mark.parametrize("data", ["coco", "crowdpose"])
def test_an_evaluation_of_real_samples_needs_only_the_evaluated_split(tmp_path: Path, data: str) -> None:
    from src.eval import evaluate
    from src.train import train

    if data == "coco":
        _only_val_coco(tmp_path / "data" / "coco", REAL_COCO)
        missing = "person_keypoints_train2017.json"
    else:
        _only_test_crowdpose(tmp_path / "data" / "crowdpose", REAL_CROWDPOSE)
        missing = "crowdpose_trainval.json"
    overrides = [f"data={data}", "model=hrnet", "num_visualized=0"]
    metrics = evaluate(compose_run("eval", [*overrides, "oracle=true"], tmp_path / "eval", tmp_path / "data"))
    assert metrics["oracle/AP"] >= 0.99, metrics
    with pytest.raises(DatasetNotFoundError, match=missing.replace(".", r"\.")):
        train(compose_run("train", overrides, tmp_path / "train", tmp_path / "data"))
