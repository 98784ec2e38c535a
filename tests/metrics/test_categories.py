"""Several categories sharing one layout (AP-10K's species): the category of each box reaches the
metric and its results, AP is matched and averaged per category (COCOeval's useCats, as AP-10K's
evaluation), per-category AP on request, and instances without a category (bottom-up) handled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.layouts import get_keypoint_info
from src.metrics.coco_metric import COCOKeypointMetric
from src.readers.coco_records import load_coco_records

AP10K = get_keypoint_info("ap10k")
# (image id, category id, box): a dog and a cat on image 1, a second dog on image 2
ANIMALS = ((1, 8, (20.0, 30.0, 200.0, 150.0)), (1, 24, (300.0, 40.0, 160.0, 140.0)), (2, 8, (50.0, 60.0, 220.0, 180.0)))


def joints_in(box: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    x, y, w, h = box
    return np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)], 1)


def write_animals(path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    joints = np.stack([joints_in(box, rng) for _, _, box in ANIMALS])
    annotations = [
        {
            "id": i + 1,
            "image_id": image_id,
            "category_id": category_id,
            "iscrowd": 0,
            "bbox": list(box),
            "area": box[2] * box[3],
            "num_keypoints": 17,
            "keypoints": joints[i].reshape(-1).tolist(),
        }
        for i, (image_id, category_id, box) in enumerate(ANIMALS)
    ]
    categories = [
        {"id": cat_id, "name": name, "supercategory": family, "keypoints": list(AP10K.keypoint_names), "skeleton": []}
        for cat_id, name, family in ((8, "dog", "Canidae"), (24, "cat", "Felidae"), (2, "argali sheep", "Bovidae"))
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in (1, 2)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, joints


def update(metric: COCOKeypointMetric, joints: np.ndarray, categories: list[int] | None) -> None:
    keypoints = torch.tensor(np.concatenate([joints[:, :, :2], np.ones((len(joints), 17, 1))], 2))
    batch = {
        "sample_id": torch.arange(len(joints)),
        "image_id": torch.tensor([a[0] for a in ANIMALS]),
        "area": torch.tensor([a[2][2] * a[2][3] for a in ANIMALS]),
        "box_score": torch.ones(len(joints)),
    }
    if categories is not None:
        batch["category_id"] = torch.tensor(categories)
    metric.update({"keypoints": keypoints}, batch)


def test_records_carry_the_category_of_their_box(tmp_path: Path) -> None:
    ann_file, _ = write_animals(tmp_path / "animals.json")
    records = load_coco_records(ann_file, tmp_path, keypoint_info=AP10K, aspect_ratio=1.0, training=True)
    assert [r["category_id"] for r in records] == [8, 24, 8]


def test_predictions_match_animals_of_their_own_species(tmp_path: Path) -> None:
    ann_file, joints = write_animals(tmp_path / "animals.json")
    metric = COCOKeypointMetric(ann_file=str(ann_file), keypoint_info=AP10K, per_category=True)
    update(metric, joints, [8, 24, 8])
    stats = metric.compute()
    assert sorted(r["category_id"] for r in metric.last_results) == [8, 8, 24]
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AP/dog"] == pytest.approx(1.0) and stats["AP/cat"] == pytest.approx(1.0)
    assert "AP/argali_sheep" not in stats  # a category without animals in the file has no AP
    # the cat's pose reported as a dog: no dog there, and no cat found
    metric.reset()
    update(metric, joints, [8, 8, 8])
    stats = metric.compute()
    assert stats["AP/cat"] == 0.0 and stats["AR/cat"] == 0.0
    assert stats["AP"] == pytest.approx((stats["AP/dog"] + stats["AP/cat"]) / 2)  # the mean over species


def test_categories_ignored_on_request(tmp_path: Path) -> None:
    ann_file, joints = write_animals(tmp_path / "animals.json")
    metric = COCOKeypointMetric(ann_file=str(ann_file), keypoint_info=AP10K, use_categories=False)
    update(metric, joints, [8, 8, 8])
    assert metric.compute()["AP"] == pytest.approx(1.0)


def test_instances_without_a_category(tmp_path: Path) -> None:
    ann_file, joints = write_animals(tmp_path / "animals.json")
    metric = COCOKeypointMetric(ann_file=str(ann_file), keypoint_info=AP10K)
    update(metric, joints, None)
    with pytest.raises(ValueError, match="use_categories=false"):
        metric.compute()
    metric = COCOKeypointMetric(ann_file=str(ann_file), keypoint_info=AP10K, use_categories=False)
    update(metric, joints, None)
    assert metric.compute()["AP"] == pytest.approx(1.0)
    assert {r["category_id"] for r in metric.last_results} == {2}  # the first keypoint category
