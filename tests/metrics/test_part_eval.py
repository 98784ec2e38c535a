"""The whole-body metric (`src.metrics.part_eval`, `PartKeypointMetric`) on hand-made cases that pin
COCO-WholeBody's per-part semantics: each part's own sigmas scaled by the whole person's area, people
without labels in a part ignored there, predictions without a scored joint in a part left out, and
the hand figure the mean of the two hands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.layouts import get_keypoint_info
from src.metrics.coco_eval import load_coco_gt
from src.metrics.part_eval import part_keypoint_eval
from src.metrics.part_metric import PartKeypointMetric
from src.readers.coco_wholebody import WHOLEBODY_FIELDS
from tests.wholebody_files import PARTS, person, write_wholebody

WB = get_keypoint_info("coco_wholebody")
SIGMAS = np.asarray(WB.sigmas)
THRESHOLDS = np.linspace(0.5, 0.95, 10)


def result(image_id: int, joints: np.ndarray, score: float, joint_scores: np.ndarray | None = None) -> dict:
    kpts = np.concatenate([joints[:, :2], np.ones((133, 1)) if joint_scores is None else joint_scores[:, None]], 1)
    return {"image_id": image_id, "category_id": 1, "keypoints": kpts.reshape(-1).tolist(), "score": score}


def evaluate(ann_file: Path, results: list[dict]) -> dict[str, float]:
    gt = load_coco_gt(ann_file, WHOLEBODY_FIELDS)
    stats, _ = part_keypoint_eval(
        gt, results, WB.sigmas, parts=WB.parts, area_joints=range(17), part_means={"hand": ["lefthand", "righthand"]}
    )
    return stats


def expected_ap(oks: float) -> float:
    """AP of one prediction for one person: the share of OKS thresholds it reaches."""
    return float(np.mean(oks >= THRESHOLDS))


def oks(pred: np.ndarray, gt: np.ndarray, ids: list[int], area: float) -> float:
    ids = list(ids)
    d2 = ((pred[ids, :2] - gt[ids, :2]) ** 2).sum(1)
    e = d2 / (2 * SIGMAS[ids]) ** 2 / (area + np.spacing(1)) / 2
    return float(np.exp(-e)[gt[ids, 2] > 0].mean())


def test_every_part_uses_its_sigmas_and_the_person_area(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    box, area = (100.0, 50.0, 200.0, 400.0), 52000.0  # the area (a segmentation's) is not the box's
    gt = person(rng, box, {})
    pred = gt.copy()
    pred[:, :2] += rng.normal(0.0, 1.0, (133, 2)) * np.sqrt(area) * SIGMAS[:, None] * 1.2
    stats = evaluate(write_wholebody(tmp_path / "wb.json", [(1, gt, box, area)]), [result(1, pred, 0.9)])
    for part, ids in PARTS.items():
        assert stats[f"{part}/AP"] == pytest.approx(expected_ap(oks(pred, gt, ids, area))), part
    assert stats["AP"] == pytest.approx(expected_ap(oks(pred, gt, list(range(133)), area)))
    assert stats["hand/AP"] == pytest.approx((stats["lefthand/AP"] + stats["righthand/AP"]) / 2)
    assert 0.0 < min(stats[f"{p}/AP"] for p in PARTS) and max(stats[f"{p}/AP"] for p in PARTS) < 1.0


def test_a_part_nobody_labels_has_no_ap(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    box = (10.0, 10.0, 200.0, 300.0)
    people = [
        (1, person(rng, box, {"face": False}), box, 40000.0),
        (2, person(rng, box, {"face": False}), box, 40000.0),
    ]
    stats = evaluate(write_wholebody(tmp_path / "wb.json", people), [result(i, j, 0.9) for i, j, _, _ in people])
    assert stats["face/AP"] == -1.0 and stats["face/AR"] == -1.0  # no person to find: pycocotools' -1
    assert stats["body/AP"] == pytest.approx(1.0) and stats["AP"] == pytest.approx(1.0)


def test_a_face_only_person_counts_for_the_face_and_is_ignored_for_the_body(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    box = (20.0, 20.0, 220.0, 330.0)
    full = person(rng, box, {})
    face_only = person(rng, box, {part: part == "face" for part in PARTS})
    people = [(1, full, box, 50000.0), (2, face_only, box, 50000.0)]
    guess = face_only.copy()
    guess[:17, :2] = person(rng, box, {})[:17, :2]  # body joints anywhere inside the box
    results = [result(1, full, 0.5), result(2, guess, 0.9)]
    stats = evaluate(write_wholebody(tmp_path / "wb.json", people), results)
    assert stats["face/AP"] == pytest.approx(1.0) and stats["face/AR"] == 1.0  # both faces found
    # the face-only person's body is unlabelled: its body guess matches an ignored person, no false positive
    assert stats["body/AP"] == pytest.approx(1.0) and stats["body/AR"] == 1.0
    assert stats["foot/AP"] == pytest.approx(1.0) and stats["lefthand/AP"] == pytest.approx(1.0)


def test_predictions_without_a_scored_joint_in_a_part_are_left_out_of_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    box = (30.0, 30.0, 200.0, 300.0)
    gt = person(rng, box, {})
    ann_file = write_wholebody(tmp_path / "wb.json", [(1, gt, box, 45000.0)])
    wrong = gt.copy()
    wrong[:, :2] = gt[:, :2] + 60.0  # far from the person everywhere
    face_unscored = np.ones(133)
    face_unscored[PARTS["face"]] = 0.0
    # a confident wrong prediction ahead of the right one: a false positive wherever it is scored
    stats = evaluate(ann_file, [result(1, wrong, 0.9, face_unscored), result(1, gt, 0.5)])
    assert stats["face/AP"] == pytest.approx(1.0)  # left out of the face: no false positive there
    assert stats["body/AP"] == pytest.approx(0.5)  # scored in the body: precision 1/2 at full recall
    scored = evaluate(ann_file, [result(1, wrong, 0.9), result(1, gt, 0.5)])
    assert scored["face/AP"] == pytest.approx(0.5)


def test_metric_assembles_the_parts_and_reports_every_part(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    box = (40.0, 40.0, 180.0, 320.0)
    people = [(1, person(rng, box, {}), box, 40000.0), (1, person(rng, box, {"lefthand": False}), box, 30000.0)]
    ann_file = write_wholebody(tmp_path / "wb.json", people)
    metric = PartKeypointMetric(
        ann_file=str(ann_file),
        keypoint_info=WB,
        keypoint_fields=WHOLEBODY_FIELDS,
        part_means={"hand": ["lefthand", "righthand"]},
    )
    keypoints = torch.tensor(np.stack([np.concatenate([j[:, :2], np.ones((133, 1))], 1) for _, j, _, _ in people]))
    metric.update(
        {"keypoints": keypoints},
        {
            "sample_id": torch.tensor([0, 1]),
            "image_id": torch.tensor([1, 1]),
            "area": torch.tensor([60000.0, 50000.0]),
            "box_score": torch.tensor([1.0, 1.0]),
        },
    )
    stats = metric.compute()
    assert set(stats) == set(metric.stat_names)
    assert [stats[f"{p}AP"] for p in ("", *(f"{q}/" for q in (*PARTS, "hand")))] == pytest.approx([1.0] * 7)
    assert stats["lefthand/AR"] == 1.0  # one left hand to find, found
    assert metric.last_results[0]["category_id"] == 1


def test_metric_refuses_a_layout_without_parts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="declares no parts"):
        PartKeypointMetric(ann_file=str(tmp_path / "x.json"), keypoint_info=get_keypoint_info("coco17"))
    with pytest.raises(ValueError, match="not parts of"):
        PartKeypointMetric(ann_file=str(tmp_path / "x.json"), keypoint_info=WB, part_means={"hand": ["left", "right"]})
