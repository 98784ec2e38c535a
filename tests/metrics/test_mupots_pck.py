"""MuPoTS-3D's 3D PCK / AUC rules and RootNet's root errors on hand-made cases, one per rule:
unmatched people in both modes, bone-length rescaling, greedy matching in ground-truth order,
the strict threshold, the AUC ceiling, the mean over sequences against a pooled mean, MRPE, and
AP_root with its skipped first step."""

from __future__ import annotations

import numpy as np
import pytest

from src.metrics.mupots_pck import (
    PARENTS,
    auc_3d,
    frame_errors,
    map_to_gt_bone_lengths,
    match_people,
    mupots_scores,
    pck_3d,
)
from src.metrics.root_error import ap_root, mrpe


def person(rng: np.random.Generator, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(17, 3) camera-frame joints (mm, about 4 m away) and (17, 2) pixels of one person."""
    joints = rng.uniform(-600.0, 600.0, (17, 3)) + np.array([offset, 0.0, 4000.0])
    pixels = 1500.0 * joints[:, :2] / joints[:, 2:] + 1000.0
    return joints, pixels


def test_an_unmatched_person_counts_in_the_all_mode_only() -> None:
    rng = np.random.default_rng(0)
    (a3, a2), (b3, b2) = person(rng), person(rng, offset=3000.0)
    frame = {"gt_3d": np.stack([a3, b3]), "gt_2d": np.stack([a2, b2]), "pred_3d": a3[None], "pred_2d": a2[None]}
    for matched_only, pck, people in ((False, 50.0, 2), (True, 100.0, 1)):
        errors = frame_errors(**frame, matched_only=matched_only)
        assert len(errors) == people
        assert pck_3d(errors) == pytest.approx(pck)


def test_bones_are_rescaled_to_the_ground_truth_lengths() -> None:
    rng = np.random.default_rng(1)
    gt, _ = person(rng)
    pred = gt.copy()
    for joint in (15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13):  # every bone twice as long
        pred[joint] = pred[PARENTS[joint]] + 2.0 * (gt[joint] - gt[PARENTS[joint]])
    np.testing.assert_allclose(map_to_gt_bone_lengths(pred, gt), gt, atol=1e-9)
    assert np.abs(pred - gt).max() > 150  # without the rescaling most joints would miss
    # the root keeps its predicted place: in the absolute mode its error carries over to every joint
    shifted = map_to_gt_bone_lengths(pred + np.array([100.0, 0.0, 0.0]), gt)
    np.testing.assert_allclose(shifted - gt, np.tile([100.0, 0.0, 0.0], (17, 1)), atol=1e-9)


def test_matching_is_greedy_in_ground_truth_order() -> None:
    rng = np.random.default_rng(2)
    _, first = person(rng)
    second = first + 25.0  # within 40 px of the first person at every joint
    wrong = first + 500.0
    wrong[1:5] = first[1:5] - 30.0  # near the first person at 4 joints, 55 px from the second
    # the first annotated person takes the prediction that fits it best, which fits the second
    # person too; the second is then left with a prediction that fits it nowhere
    assert match_people(np.stack([first, second]), np.stack([wrong, second])).tolist() == [1, -1]
    assert match_people(np.stack([second, first]), np.stack([wrong, second])).tolist() == [1, 0]
    # a joint at (0, 0) is invisible and never counts; no joint in common: no match
    hidden = second.copy()
    hidden[:] = 0.0
    assert match_people(first[None], hidden[None]).tolist() == [-1]
    # ties: the first maximum
    assert match_people(first[None], np.stack([second, second])).tolist() == [0]


def test_threshold_is_strict_and_the_auc_ceiling_is_30_of_31() -> None:
    errors = np.zeros((2, 17))
    assert auc_3d(errors) == pytest.approx(100 * 30 / 31)
    errors[0, :14] = 150.0
    assert pck_3d(errors) == pytest.approx(50.0)  # 150 mm is not below 150 mm
    errors[:, 14:] = 1e9  # pelvis, spine and head are not scored
    assert pck_3d(errors) == pytest.approx(50.0)


def test_the_score_is_the_mean_over_sequences() -> None:
    rng = np.random.default_rng(3)
    good3, good2 = person(rng)
    frames_b = []
    for _ in range(3):  # three people, each predicted 400 mm off at every joint after rescaling
        gt3, gt2 = person(rng)
        frames_b.append({"gt_3d": gt3[None], "gt_2d": gt2[None], "pred_3d": gt3[None] + 400.0, "pred_2d": gt2[None]})
    sequences = {
        "TS1": [{"gt_3d": good3[None], "gt_2d": good2[None], "pred_3d": good3[None], "pred_2d": good2[None]}],
        "TS2": frames_b,
    }
    absolute = mupots_scores(sequences, relative=False)
    assert absolute["per_sequence"]["TS1"]["PCK"] == 100.0 and absolute["per_sequence"]["TS2"]["PCK"] == 0.0
    assert absolute["PCK"] == pytest.approx(50.0)  # pooled over the four people it would be 25
    relative = mupots_scores(sequences, relative=True)  # the offset is gone once each pose is root-relative
    assert relative["PCK"] == pytest.approx(100.0)


def test_mrpe_and_its_axes() -> None:
    gt = np.array([[0.0, 0.0, 4000.0], [100.0, 50.0, 3000.0]])
    pred = gt + np.array([[30.0, -40.0, 0.0], [0.0, 0.0, -120.0]])
    assert mrpe(pred, gt) == pytest.approx({"MRPE": 85.0, "MRPE_x": 15.0, "MRPE_y": 20.0, "MRPE_z": 60.0})


def test_ap_root_skips_the_first_recall_step() -> None:
    gt = [np.array([[0.0, 0.0, 4000.0], [1000.0, 0.0, 4000.0], [2000.0, 0.0, 4000.0]]), np.zeros((0, 3))]
    preds = [np.array([[10.0, 0.0, 4000.0], [5000.0, 0.0, 4000.0], [1000.0, 100.0, 4000.0]]), np.ones((1, 3))]
    scores = [np.array([0.9, 0.8, 0.7]), np.array([0.95])]  # the best one is on an image without people
    # ranked: skipped, right, wrong, right -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    assert ap_root(preds, scores, gt) == pytest.approx(2 / 9)  # a textbook AP of this ranking is 5/9
    # the nearest root taken already: a false positive, no second-nearest root is tried
    twice = [np.array([[10.0, 0.0, 4000.0], [20.0, 0.0, 4000.0]]), np.ones((1, 3))]
    assert ap_root(twice, [np.array([0.9, 0.8]), np.array([0.1])], gt) == pytest.approx(0.0)
