"""The CrowdPose metric on hand-made cases whose numbers follow from the crowdposetools definition
by hand: OKS scale 0.53 w h of the box, 20 detections, AP by crowd index as the plain mean of the
precision array of each split (-1 for a split without people)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.layouts import CROWDPOSE14
from src.metrics.coco_eval import evaluate_coco_keypoints
from src.metrics.crowdpose_metric import CrowdPoseKeypointMetric

BOX = (100.0, 100.0, 100.0, 200.0)
SHIFT = 15.0  # px, of every joint of the medium image's prediction
CROWD = {1: 0.1, 2: 0.5, 3: 0.9}  # image id -> crowdIndex: easy, medium, hard


def _gt_keypoints() -> np.ndarray:
    x, y, w, h = BOX
    rng = np.random.default_rng(0)
    return np.stack([rng.uniform(x, x + w, 14), rng.uniform(y, y + h, 14), np.full(14, 2.0)], axis=1).round(2)


def _write_gt(path: Path, images: dict[int, float], *, area: float | None = None) -> Path:
    kpts = _gt_keypoints()
    anns = []
    for image_id in images:
        ann = {
            "id": image_id,
            "image_id": image_id,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": list(BOX),
            "num_keypoints": 14,
            "keypoints": kpts.reshape(-1).tolist(),
        }
        if area is not None:  # COCO files carry an area; CrowdPose files do not
            ann["area"] = area
        anns.append(ann)
    data = {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480, "crowdIndex": c} for i, c in images.items()
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(CROWDPOSE14.keypoint_names), "skeleton": []}],
    }
    path.write_text(json.dumps(data))
    return path


def _official_oks(shift: float) -> float:
    """crowdposetools computeOks for a prediction shifted by ``shift`` px in x from the ground truth."""
    x, y, w, h = BOX
    variances = (2 * np.asarray(CROWDPOSE14.sigmas)) ** 2
    e = shift**2 / variances / (w * h * 0.53 + np.spacing(1)) / 2
    return float(np.exp(-e).mean())


def _metric(ann_file: Path) -> CrowdPoseKeypointMetric:
    metric = CrowdPoseKeypointMetric(ann_file=str(ann_file), keypoint_info=CROWDPOSE14, rescore=False, use_nms=False)
    kpts = _gt_keypoints()
    kpts[:, 2] = 0.9
    shifted = kpts.copy()
    shifted[:, 0] += SHIFT
    metric.add_instances(  # a perfect person on the easy image, a shifted one on the medium, none on the hard
        torch.tensor([0, 1]),
        torch.tensor([1, 2]),
        torch.tensor(np.stack([kpts, shifted]), dtype=torch.float32),
        torch.tensor([2e4, 2e4]),
        torch.tensor([0.9, 0.8]),
    )
    return metric


def test_the_crowdpose_stats_follow_the_official_definition(tmp_path):
    stats = _metric(_write_gt(tmp_path / "gt.json", CROWD)).compute()
    oks = _official_oks(SHIFT)
    thresholds = np.linspace(0.5, 0.95, 10)
    matched = oks >= thresholds  # the medium person is found at these OKS thresholds
    assert 0 < matched.sum() < 10, oks  # the case separates the thresholds
    # three people, two detections: the perfect one always matches, the shifted one where `matched`.
    # recall thresholds 0, 0.01, ..., 1: precision 1 up to recall 2/3 (67 of 101) or 1/3 (34 of 101)
    per_threshold = np.where(matched, 67 / 101, 34 / 101)
    assert stats["AP"] == pytest.approx(per_threshold.mean())
    assert stats["AP50"] == pytest.approx(per_threshold[0]) and stats["AP75"] == pytest.approx(per_threshold[5])
    recall = np.where(matched, 2 / 3, 1 / 3)
    assert stats["AR"] == pytest.approx(recall.mean())
    assert stats["AR50"] == pytest.approx(recall[0]) and stats["AR75"] == pytest.approx(recall[5])
    # each split alone: easy is perfect, medium is found at `matched` thresholds, hard not at all
    assert stats["AP_easy"] == pytest.approx(1.0)
    assert stats["AP_medium"] == pytest.approx(matched.mean())
    assert stats["AP_hard"] == pytest.approx(0.0)


def test_the_oks_scale_is_not_the_coco_area(tmp_path):
    """With COCO's definition (the annotation's area, here the box area) the same case scores higher."""
    coco_file = _write_gt(tmp_path / "coco.json", CROWD, area=BOX[2] * BOX[3])
    crowdpose = _metric(_write_gt(tmp_path / "gt.json", CROWD)).compute()
    metric = _metric(coco_file)
    metric.compute()
    coco = evaluate_coco_keypoints(coco_file, metric.last_results, CROWDPOSE14.sigmas)
    assert coco["AP"] > crowdpose["AP"]


def test_a_split_without_people_is_minus_one_and_crowd_index_is_required(tmp_path):
    stats = _metric(_write_gt(tmp_path / "gt.json", {1: 0.1, 2: 0.5})).compute()
    assert stats["AP_hard"] == -1.0 and stats["AP_easy"] == pytest.approx(1.0)
    path = _write_gt(tmp_path / "no_index.json", CROWD)
    data = json.loads(path.read_text())
    del data["images"][1]["crowdIndex"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="image id=2 has no crowdIndex"):
        _metric(path).compute()
