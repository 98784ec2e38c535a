"""The PoseTrack18 metric: ground truth as predictions scores 1.0 in both AP and the per-frame mAP
(real samples where present, and files the tests write), and the rules of the official per-frame
mAP (poseval's evaluateAP) on hand-made frames whose numbers follow from its definition by hand."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.layouts import get_keypoint_info
from src.metrics.posetrack18_map import POSEVAL_JOINTS, joint_ap, per_frame_map, poseval_joint_indices, voc_ap
from src.metrics.posetrack18_metric import PoseTrack18KeypointMetric
from src.readers.posetrack18_ground_truth import oks_area, read_posetrack18_ground_truth
from tests.helpers import CONF_DIR
from tests.readers.posetrack18_files import write_posetrack18

REAL = CONF_DIR.parent.parent / "shared" / "data" / "real_samples" / "posetrack18"
INFO = get_keypoint_info("posetrack18")
JOINTS = poseval_joint_indices(INFO.keypoint_names)
#: A head box 30 x 40: diagonal 50, head size 0.6 x 50 = 30 px, PCKh@0.5 radius 15 px.
HEAD = [0.0, 0.0, 30.0, 40.0]


def _person(x0: float, y0: float = 0.0) -> np.ndarray:
    """(17, 3) x, y, v: 15 annotated joints 20 px apart along a line, the ears [0, 0, 0]."""
    kpts = np.zeros((17, 3))
    kpts[:, 0], kpts[:, 1], kpts[:, 2] = x0, y0 + 20.0 * np.arange(17), 1.0
    kpts[3:5] = 0.0
    return kpts


def _frame(image_id: int, people: list[np.ndarray], regions: tuple = ()) -> SimpleNamespace:
    return SimpleNamespace(
        image_id=image_id,
        keypoints=np.stack(people),
        head_boxes=np.array([HEAD] * len(people)),
        ignore_regions=tuple(np.asarray(r, np.float64) for r in regions),
    )


def _predicted(kpts: np.ndarray, score: float, dx: float = 0.0) -> np.ndarray:
    out = kpts.copy()
    out[:, 0] += dx
    out[:, 2] = score
    return out


def _gt_as_predictions(metric: PoseTrack18KeypointMetric) -> None:
    """Every ground-truth person of the metric's files as a prediction, joint score = v."""
    truth = metric.ground_truth().coco
    people = [a for a in truth["annotations"] if not a.get("iscrowd")]
    kpts = torch.tensor([a["keypoints"] for a in people], dtype=torch.float64).reshape(len(people), -1, 3)
    n = len(people)
    metric.add_instances(
        sample_ids=torch.arange(n),
        image_ids=torch.tensor([a["image_id"] for a in people]),
        keypoints=kpts,
        areas=torch.tensor([a["area"] for a in people]),
        box_scores=torch.ones(n),
    )


def _metric(ann_dir: Path, image_root: Path) -> PoseTrack18KeypointMetric:
    return PoseTrack18KeypointMetric(
        ann_dir=ann_dir, image_root=image_root, keypoint_info=INFO, rescore=False, use_nms=False
    )


@pytest.mark.skipif(not REAL.is_dir(), reason="the real PoseTrack18 samples of ../shared are absent")
def test_ground_truth_as_predictions_scores_one_on_the_real_samples():
    metric = _metric(REAL / "annotations" / "val", REAL)
    _gt_as_predictions(metric)
    stats = metric.compute()
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert all(stats[key] == pytest.approx(1.0) for key in ("mAP", "mAP_head", "mAP_wrist", "mAP_ankle"))
    assert len(metric.ground_truth().frames) == 3 and set(metric.joint_map) == set(POSEVAL_JOINTS)


def test_ground_truth_as_predictions_scores_one_and_a_shift_scores_less(tmp_path):
    root = write_posetrack18(tmp_path / "posetrack18")
    metric = _metric(root / "annotations" / "val", root)
    _gt_as_predictions(metric)
    stats = metric.compute()
    assert stats["AP"] == pytest.approx(1.0) and stats["mAP"] == pytest.approx(1.0)
    # the ignore regions are crowd regions of COCOeval and need no prediction
    assert sum(1 for a in metric.ground_truth().coco["annotations"] if a.get("iscrowd")) == 2

    shifted = _metric(root / "annotations" / "val", root)
    _gt_as_predictions(shifted)
    # one of the 8 people 4 px off (head boxes 6 x 10: head size 7.0 px, radius 3.5 px), scored lowest:
    # per joint 7 true then 1 false of 8 annotated, AP 7 / 8
    shifted.keypoints[0][0, :, 0] += 4.0
    shifted.keypoints[0][0, :, 2] *= 0.5
    stats = shifted.compute()
    assert stats["mAP"] == pytest.approx(7 / 8) and stats["AP"] < 1.0


def test_the_oks_scale_is_mmposes_for_files_without_area():
    boxes = np.array([[10.0, 20.0, 100.0, 50.0], [-30.0, -10.0, 50.0, 40.0], [5.0, 5.0, 0.0, 0.0]])
    np.testing.assert_allclose(oks_area(boxes, 1920, 1080), [0.53 * 100 * 50, 0.53 * 20 * 30, 1.0])


def test_a_joint_matches_within_half_the_head_size():
    gt = _person(100.0)
    frames = [_frame(1, [gt])]
    at_radius, _ = per_frame_map(frames, {1: _predicted(gt, 0.9, dx=15.0)[None]}, JOINTS)
    beyond, _ = per_frame_map(frames, {1: _predicted(gt, 0.9, dx=15.01)[None]}, JOINTS)
    assert at_radius["mAP"] == 1.0 and beyond["mAP"] == 0.0


def test_a_prediction_whose_best_person_is_taken_counts_as_false():
    """p0 matches g0 fully; p1 matches 9 of g0's 15 joints and 6 of g1's: its best person is g0, which
    takes p0, so p1 is assigned to nobody and all its joints are false (a one-to-one optimum would
    give it g1)."""
    g0, g1 = _person(100.0), _person(400.0)
    p1 = _predicted(g0, 0.8)
    matched_to_g1 = [JOINTS[i] for i in range(9, 15)]  # the last six evaluated joints sit on g1
    p1[matched_to_g1, 0] = 400.0
    stats, by_joint = per_frame_map([_frame(1, [g0, g1])], {1: np.stack([_predicted(g0, 0.9), p1])}, JOINTS)
    # on g1's joints: scores 0.9 (true), 0.8 (false) against 2 annotated: AP = 0.5
    assert by_joint[POSEVAL_JOINTS[12]] == pytest.approx(0.5) and by_joint[POSEVAL_JOINTS[0]] == pytest.approx(0.5)
    assert stats["mAP"] == pytest.approx(0.5)


def test_ignore_regions_remove_joints_of_both_sides():
    kept, inside = _person(100.0), _person(500.0)
    region = [[450.0, -50.0], [550.0, -50.0], [550.0, 500.0], [450.0, 500.0]]
    frames = [_frame(1, [kept, inside], regions=(region,))]
    stray = _person(520.0, 30.0)  # in the region too, matching nobody
    predictions = {1: np.stack([_predicted(kept, 0.5), _predicted(stray, 0.9)])}
    assert per_frame_map(frames, predictions, JOINTS)[0]["mAP"] == pytest.approx(1.0)
    without = [_frame(1, [kept, inside])]
    # without the region: the stray prediction is a false positive above the true one, 1 of 2 found
    assert per_frame_map(without, predictions, JOINTS)[0]["mAP"] == pytest.approx(0.5 * 0.5)


def test_joints_without_annotation_or_prediction():
    gt = _person(100.0)
    gt[0] = 0.0  # the nose is not annotated anywhere: AP NaN, left out of the total
    prediction = _predicted(_person(100.0), 0.9)
    prediction[16] = 0.0  # no right ankle predicted (x = y = score = 0): AP 0
    stats, by_joint = per_frame_map([_frame(1, [gt])], {1: prediction[None]}, JOINTS)
    assert np.isnan(by_joint["nose"]) and np.isnan(stats["mAP_head"]) and by_joint["right_ankle"] == 0.0
    assert stats["mAP"] == pytest.approx(13 / 14) and stats["mAP_ankle"] == pytest.approx(0.5)


def test_frames_without_people_are_not_evaluated():
    gt = _person(100.0)
    stats, _ = per_frame_map([_frame(1, [gt])], {1: _predicted(gt, 0.5)[None], 2: _predicted(gt, 0.9)[None]}, JOINTS)
    assert stats["mAP"] == pytest.approx(1.0)  # the prediction on frame 2 (no ground truth) is not looked at


def test_average_precision_is_the_area_under_the_precision_envelope():
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert joint_ap(np.array([0.2, 0.9, 0.5]), np.array([0, 1, 1]), 2) == pytest.approx(1.0)
    assert joint_ap(np.array([0.2, 0.9, 0.5]), np.array([1, 1, 0]), 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # precision 0, 1/2, 2/3 at recall 0, 1/4, 1/2: the envelope is 2/3 up to recall 1/2
    assert joint_ap(np.array([0.9, 0.5, 0.2]), np.array([0, 1, 1]), 4) == pytest.approx(0.5 * 2 / 3)
    assert joint_ap(np.zeros(0), np.zeros(0), 3) == 0.0


def test_a_layout_without_the_evaluated_joints_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"needs the joints \['head_bottom', 'nose'\]"):
        PoseTrack18KeypointMetric(ann_dir=tmp_path, image_root=tmp_path, keypoint_info=get_keypoint_info("mpii16"))


def test_the_ground_truth_needs_head_boxes(tmp_path):
    import json

    root = write_posetrack18(tmp_path / "posetrack18")
    target = sorted((root / "annotations" / "val").glob("*.json"))[0]
    content = json.loads(target.read_text())
    del content["annotations"][0]["bbox_head"]
    target.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=rf"{target.name}: annotation \d+ is missing the key 'bbox_head'"):
        read_posetrack18_ground_truth(root / "annotations" / "val", image_root=root)
