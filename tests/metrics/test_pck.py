"""PCK, its curve and AUC, end-point error, the normalisers and official MPII PCKh on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from src.layouts import MPII16, mpii_joint_name
from src.metrics.pck import (
    bbox_size,
    end_point_error,
    head_size,
    mpii_pckh,
    mpii_pckh_per_joint,
    pck,
    pck_auc,
    pck_curve,
    torso_size,
    unusable_normalizers,
)
from src.readers.mpii_ground_truth import MPII_JOINT_NAMES

NAMES = MPII_JOINT_NAMES
J = {name: i for i, name in enumerate(NAMES)}
HEADBOX = ((10.0, 10.0), (40.0, 50.0))  # diagonal 50 -> head size 0.6 * 50 = 30 (exactly, in float64)
EXACT_HALF = np.array([9.0, 12.0])  # length 15 = 0.5 * head size, exactly


def _mpii_people(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gt positions (n, 16, 2) 1-based whole pixels (offsets stay exact), missing (n, 16) all False,
    headboxes (n, 2, 2) of head size 30."""
    rng = np.random.default_rng(seed)
    positions = np.round(rng.uniform(1, 200, size=(n, 16, 2)))
    return positions, np.zeros((n, 16), dtype=bool), np.tile(np.array(HEADBOX), (n, 1, 1))


# --------------------------------------------------------------------------- pck and the normalisers


def test_pck_distance_equal_to_threshold_is_correct() -> None:
    gt = np.zeros((1, 1, 2))
    visible = np.ones((1, 1), dtype=bool)
    assert np.linalg.norm(EXACT_HALF) / 30.0 == 0.5  # the premise: exactly on the threshold
    per_joint, counts = pck(gt + EXACT_HALF, gt, visible, np.array([30.0]), 0.5)
    assert per_joint.tolist() == [100.0] and counts.tolist() == [1]
    per_joint, _ = pck(gt + EXACT_HALF + [0.0, 1e-9], gt, visible, np.array([30.0]), 0.5)
    assert per_joint.tolist() == [0.0]


def test_pck_scores_visible_entries_only_and_nan_for_unseen_joints() -> None:
    gt = np.zeros((3, 2, 2))
    pred = gt.copy()
    pred[1, 0] = 100.0  # wrong, but not visible
    pred[2, 0] = 100.0  # wrong and visible
    visible = np.array([[True, False], [False, False], [True, False]])
    per_joint, counts = pck(pred, gt, visible, np.ones(3), 0.5)
    assert per_joint[0] == 50.0 and np.isnan(per_joint[1])
    assert counts.tolist() == [2, 0]


def test_pck_rejects_bad_normaliser_only_for_scored_people() -> None:
    gt = np.zeros((2, 1, 2))
    with pytest.raises(ValueError, match="person 1"):
        pck(gt, gt, np.ones((2, 1), dtype=bool), np.array([1.0, 0.0]), 0.5)
    per_joint, _ = pck(gt, gt, np.array([[True], [False]]), np.array([1.0, np.nan]), 0.5)
    assert per_joint.tolist() == [100.0]
    with pytest.raises(ValueError, match="visible has shape"):
        pck(gt, gt, np.ones((2, 2), dtype=bool), np.ones(2), 0.5)


def test_bbox_size_is_max_side_of_visible_joints() -> None:
    gt = np.array(
        [[[0.0, 0.0], [40.0, 0.0], [0.0, 100.0], [1000.0, 1000.0]], [[5.0, 5.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]
    )
    visible = np.array([[True, True, True, False], [False, False, False, False]])
    size = bbox_size(gt, visible)
    assert size[0] == 100.0 and np.isnan(size[1])


def test_pck_with_bbox_normaliser() -> None:
    gt = np.array([[[0.0, 0.0], [40.0, 0.0], [0.0, 100.0]]])
    visible = np.ones((1, 3), dtype=bool)
    pred = gt + [[[0.0, 20.0], [0.0, 0.0], [25.0, 0.0]]]  # normalised errors 0.2, 0, 0.25
    size = bbox_size(gt, visible)
    assert pck(pred, gt, visible, size, 0.2)[0].tolist() == [100.0, 100.0, 0.0]
    assert pck(pred, gt, visible, size, 0.19)[0].tolist() == [0.0, 100.0, 0.0]


def test_torso_size_and_pck_with_torso_normaliser() -> None:
    # joints: 0 left shoulder, 1 right hip, 2 wrist
    gt = np.array([[[0.0, 0.0], [30.0, 40.0], [10.0, 10.0]], [[0.0, 0.0], [6.0, 8.0], [1.0, 1.0]]])
    visible = np.array([[True, True, True], [True, False, True]])
    assert torso_size(gt, 0, 1).tolist() == [50.0, 10.0]
    size = torso_size(gt, 0, 1, visible=visible)
    assert size[0] == 50.0 and np.isnan(size[1])  # right hip not visible: no torso
    pred = gt + [[0.0, 10.0]]  # 10 px off: 0.2 of a 50 px torso
    per_joint, counts = pck(pred[:1], gt[:1], visible[:1], size[:1], 0.2)
    assert per_joint.tolist() == [100.0, 100.0, 100.0] and counts.tolist() == [1, 1, 1]
    assert pck(pred[:1], gt[:1], visible[:1], size[:1], 0.1)[0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="out of range"):
        torso_size(gt, 0, 3)


def test_head_size_is_sc_bias_times_diagonal() -> None:
    boxes = np.array([HEADBOX, ((0.0, 0.0), (3.0, 4.0))])
    assert head_size(boxes).tolist() == [30.0, 0.6 * 5.0]
    assert head_size(boxes, sc_bias=1.0).tolist() == [50.0, 5.0]


def test_pck_curve_rows_match_pck() -> None:
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 100, (5, 4, 2))
    pred = gt + rng.normal(0, 10, gt.shape)
    visible = rng.uniform(size=(5, 4)) > 0.2
    norm = np.full(5, 40.0)
    thresholds = [0.05, 0.1, 0.3, 0.5]
    curve = pck_curve(pred, gt, visible, norm, thresholds)
    assert curve.shape == (4, 4)
    for row, t in zip(curve, thresholds):
        np.testing.assert_array_equal(row, pck(pred, gt, visible, norm, t)[0])
    assert np.all(np.diff(np.nan_to_num(curve), axis=0) >= 0)  # PCK grows with the threshold


def test_pck_auc_known_case() -> None:
    gt = np.zeros((1, 3, 2))
    pred = gt + [[[0.0, 2.5], [0.0, 2.5], [0.0, 100.0]]]  # normalised errors 0.25, 0.25, and 10 (unseen)
    visible = np.array([[True, True, False]])  # joint 2 has no visible entry: left out of the mean
    norm = np.array([10.0])
    # mean-PCK curve at t = 0, 0.5, 1: 0, 100, 100 -> trapezoids 25 + 50 over a range of 1
    assert pck_auc(pred, gt, visible, norm, [0.0, 0.5, 1.0]) == pytest.approx(75.0)
    # over [0, 0.5]: area 25, range 0.5
    assert pck_auc(pred, gt, visible, norm, [0.0, 0.5]) == pytest.approx(50.0)
    assert pck_auc(gt, gt, visible, norm, [0.0, 0.5]) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="increasing"):
        pck_auc(pred, gt, visible, norm, [0.5, 0.1])


def test_end_point_error() -> None:
    gt = np.zeros((2, 3, 2))
    pred = gt + [[[3.0, 4.0], [0.0, 1.0], [9.0, 9.0]], [[6.0, 8.0], [0.0, 0.0], [9.0, 9.0]]]
    visible = np.array([[True, True, False], [True, False, False]])
    per_joint, overall = end_point_error(pred, gt, visible)
    assert per_joint[:2].tolist() == [7.5, 1.0] and np.isnan(per_joint[2])
    assert overall == pytest.approx((5.0 + 10.0 + 1.0) / 3)
    assert np.isnan(end_point_error(pred, gt, np.zeros((2, 3), dtype=bool))[1])


# --------------------------------------------------------------------------- official MPII PCKh


def _official_style(pred: np.ndarray, positions: np.ndarray, missing: np.ndarray, boxes: np.ndarray) -> dict:
    """The official evaluator's arithmetic restated in its own layout (K first, masked arrays, the 0..0.50 grid)."""
    pos_pred = pred.transpose(1, 2, 0)  # (K, 2, N)
    pos_gt = positions.transpose(1, 2, 0)
    visible = 1 - missing.T.astype(np.float64)  # (K, N)
    head_boxes = boxes.transpose(1, 2, 0)  # (2, 2, N)
    err = np.linalg.norm(pos_pred - pos_gt, axis=1)
    sizes = np.linalg.norm(head_boxes[1] - head_boxes[0], axis=0)
    sizes *= 0.6
    scaled = np.divide(err, np.multiply(sizes, np.ones((len(err), 1)))) * visible
    count = np.sum(visible, axis=1)
    rng = np.arange(0, 0.5 + 0.01, 0.01)
    table = np.stack([np.divide(100.0 * np.sum((scaled <= t) * visible, axis=1), count) for t in rng])
    per_joint = np.ma.array(np.divide(100.0 * np.sum((scaled <= 0.5) * visible, axis=1), count), mask=False)
    per_joint.mask[6:8] = True
    count = np.ma.array(count, mask=False)
    count.mask[6:8] = True
    ratio = count / np.sum(count).astype(np.float64)
    pair = {
        "Shoulder": ("lsho", "rsho"),
        "Elbow": ("lelb", "relb"),
        "Wrist": ("lwri", "rwri"),
        "Hip": ("lhip", "rhip"),
        "Knee": ("lkne", "rkne"),
        "Ankle": ("lank", "rank"),
    }
    result = {"PCKh/Head": per_joint[J["head"]]}
    result.update({f"PCKh/{g}": 0.5 * (per_joint[J[a]] + per_joint[J[b]]) for g, (a, b) in pair.items()})
    result["PCKh"] = np.sum(per_joint * ratio)
    result["PCKh@0.11"] = np.sum(table[11] * ratio)
    return {key: float(value) for key, value in result.items()}


def test_mpii_pckh_is_bit_identical_to_the_official_arithmetic() -> None:
    positions, _, boxes = _mpii_people(300, seed=3)
    rng = np.random.default_rng(4)
    boxes = boxes * rng.uniform(0.5, 1.5, size=(300, 1, 1))  # varied head sizes
    missing = rng.uniform(size=(300, 16)) < 0.2
    pred = (positions + rng.normal(0, 6, positions.shape)).astype(np.float32) + 1.0  # float32 as the official preds
    official = _official_style(pred, positions, missing, boxes)
    ours = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES, official_low_column=True)
    assert ours.pop("PCKh@0.1") == official.pop("PCKh@0.11")
    assert ours == official  # exact, not approximate
    assert 20.0 < ours["PCKh"] < 95.0  # the case is not degenerate


def test_mpii_pckh_threshold_is_inclusive() -> None:
    positions, missing, boxes = _mpii_people(1)
    result = mpii_pckh(positions + EXACT_HALF, positions, missing, boxes, joint_names=NAMES)
    assert result["PCKh"] == 100.0 and result["PCKh/Ankle"] == 100.0
    result = mpii_pckh(positions + EXACT_HALF * 1.001, positions, missing, boxes, joint_names=NAMES)
    assert result["PCKh"] == 0.0


def test_mpii_pckh_mean_is_count_weighted_without_pelvis_and_thorax() -> None:
    positions, missing, boxes = _mpii_people(4)
    pred = positions.copy()
    pred[1:, J["lsho"]] += 100.0  # left shoulder right in 1 of 4 people: 25 %
    missing[1:, J["lwri"]] = True  # left wrist annotated once ...
    pred[0, J["lwri"]] += 100.0  # ... and wrong there: 0 %
    pred[:, J["pelv"]] += 100.0  # pelvis and thorax all wrong: outside the mean
    pred[:, J["thor"]] += 100.0
    result = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    # 12 other joints x 4 entries at 100 %, lsho 4 entries at 25 %, lwri 1 entry at 0 %
    weighted = (48 * 100.0 + 4 * 25.0 + 1 * 0.0) / 53
    unweighted = (12 * 100.0 + 25.0 + 0.0) / 14
    assert result["PCKh"] == pytest.approx(weighted)
    assert result["PCKh"] != pytest.approx(unweighted)
    assert result["PCKh/Shoulder"] == 62.5 and result["PCKh/Wrist"] == 50.0 and result["PCKh/Head"] == 100.0
    per_joint, counts = mpii_pckh_per_joint(pred, positions, missing, boxes)
    assert per_joint[J["pelv"]] == 0.0 and per_joint[J["thor"]] == 0.0  # reported per joint
    assert counts[J["lwri"]] == 1 and counts[J["lsho"]] == 4


def test_mpii_pckh_missing_joints_do_not_count() -> None:
    positions, missing, boxes = _mpii_people(2)
    pred = positions.copy()
    pred[1] += 100.0  # person 1 entirely wrong ...
    missing[1] = True  # ... but not annotated
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)["PCKh"] == 100.0


def test_mpii_pckh_low_column_is_threshold_0_11_when_official() -> None:
    positions, missing, boxes = _mpii_people(2)
    pred = positions + [3.15, 0.0]  # normalised error 0.105: wrong at 0.1, right at 0.11
    default = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    official = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES, official_low_column=True)
    explicit = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES, low_threshold=0.11)
    assert default["PCKh@0.1"] == 0.0 and official["PCKh@0.1"] == 100.0 and explicit["PCKh@0.1"] == 100.0
    assert default["PCKh"] == official["PCKh"] == 100.0


def test_mpii_pckh_joint_without_annotation_is_nan_free_in_the_mean() -> None:
    positions, missing, boxes = _mpii_people(3)
    pred = positions.copy()
    pred[:, J["rank"]] += 100.0
    missing[:, J["lank"]] = True  # no left ankle at all: the official code divides 0 by 0 here
    result = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    assert result["PCKh"] == pytest.approx((12 * 3 * 100.0) / (13 * 3))
    assert result["PCKh/Ankle"] == 0.0  # the right ankle alone
    assert np.isnan(mpii_pckh_per_joint(pred, positions, missing, boxes)[0][J["lank"]])
    missing[:, J["rank"]] = True
    result = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    assert np.isnan(result["PCKh/Ankle"]) and result["PCKh"] == pytest.approx(100.0)  # sum of weights ~ 1
    missing[:] = True
    result = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    assert result["PCKh"] == 0.0 and result["PCKh@0.1"] == 0.0


def test_mpii_pckh_names_a_missing_joint() -> None:
    positions, missing, boxes = _mpii_people(1)
    names = tuple("top" if n == "head" else n for n in NAMES)
    with pytest.raises(ValueError, match="'head'"):
        mpii_pckh(positions, positions, missing, boxes, joint_names=names)
    with pytest.raises(ValueError, match="15 names for K=16"):
        mpii_pckh(positions, positions, missing, boxes, joint_names=NAMES[:15])


def test_mpii_pckh_accepts_every_spelling_and_excludes_pelvis_and_thorax_by_position() -> None:
    positions, missing, boxes = _mpii_people(5, seed=7)
    pred = positions + np.random.default_rng(8).normal(0, 10, positions.shape)
    official = mpii_pckh(pred, positions, missing, boxes, joint_names=NAMES)
    tools = tuple("thrx" if n == "thor" else n for n in NAMES)  # the MPII annotation tools' thorax
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=tools) == official
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=[n.upper() for n in tools]) == official
    long_names = MPII16.keypoint_names  # right_ankle, ..., thorax, upper_neck, head_top, ...
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=long_names) == official
    # positions 6 and 7 are left out of the mean whatever they are called
    unnamed = tuple(f"joint{i}" if i in (6, 7) else n for i, n in enumerate(NAMES))
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=unnamed) == official
    pred[:, 6:8] += 100.0
    assert mpii_pckh(pred, positions, missing, boxes, joint_names=unnamed)["PCKh"] == official["PCKh"]
    with pytest.raises(ValueError, match="16 MPII joints .* K=14"):
        mpii_pckh(pred[:, :14], positions[:, :14], missing[:, :14], boxes, joint_names=NAMES[:14])


def test_mpii_joint_name_spellings() -> None:
    assert [mpii_joint_name(n) for n in ("Thrx", "thrx", " THOR ", "thorax", "head_top", "upper_neck")] == [
        "thor",
        "thor",
        "thor",
        "thor",
        "head",
        "neck",
    ]
    assert mpii_joint_name("joint6") == "joint6"


# --------------------------------------------------------------------------- people without a normaliser


def test_pck_raises_on_a_zero_normaliser_by_default_and_skips_it_on_request() -> None:
    gt = np.zeros((4, 2, 2))
    pred = gt.copy()
    pred[3] += 100.0  # person 3: wrong (normaliser 1)
    visible = np.ones((4, 2), dtype=bool)
    visible[2] = False  # person 2: nothing visible, a NaN normaliser is never looked at
    head = np.array([1.0, 0.0, np.nan, 1.0])  # person 1: a zero-size head box
    with pytest.raises(ValueError, match=r"person 1, value 0\.0.*zero_normalizer=\"skip\""):
        pck(pred, gt, visible, head, 0.5)
    result = pck(pred, gt, visible, head, 0.5, zero_normalizer="skip")
    per_joint, counts = result  # unpacks as before
    assert per_joint.tolist() == [50.0, 50.0] and counts.tolist() == [2, 2] and result.skipped == 1
    assert pck(pred, gt, visible, np.ones(4), 0.5).skipped == 0
    # negative and infinite normalisers are left out too
    skipped = pck(pred, gt, visible, np.array([1.0, -2.0, 1.0, np.inf]), 0.5, zero_normalizer="skip")
    assert skipped.per_joint.tolist() == [100.0, 100.0] and skipped.counts.tolist() == [1, 1] and skipped.skipped == 2
    assert unusable_normalizers(head, visible).tolist() == [False, True, False, False]
    curve = pck_curve(pred, gt, visible, head, [0.5, 1000.0], zero_normalizer="skip")
    assert curve.tolist() == [[50.0, 50.0], [100.0, 100.0]]
    assert pck_auc(pred, gt, visible, head, [0.5, 1000.0], zero_normalizer="skip") == pytest.approx(75.0)
    with pytest.raises(ValueError, match="person 1"):
        pck_auc(pred, gt, visible, head, [0.5, 1000.0])
    with pytest.raises(ValueError, match="'raise' or 'skip'"):
        pck(pred, gt, visible, head, 0.5, zero_normalizer="ignore")


def test_skipping_matches_mmpose_masking_of_zero_normalisers() -> None:
    """mmpose's keypoint_pck_accuracy masks every joint of a sample whose normaliser is 0 and scores
    the rest; restated here: drop those people, then score as usual."""
    rng = np.random.default_rng(5)
    gt = rng.uniform(0, 100, (20, 5, 2))
    pred = gt + rng.normal(0, 8, gt.shape)
    visible = rng.uniform(size=(20, 5)) < 0.8
    norm = rng.uniform(20, 60, 20)
    norm[[3, 11, 12]] = 0.0
    kept = norm > 0
    result = pck(pred, gt, visible, norm, 0.2, zero_normalizer="skip")
    expected = pck(pred[kept], gt[kept], visible[kept], norm[kept], 0.2)
    np.testing.assert_array_equal(result.per_joint, expected.per_joint)
    np.testing.assert_array_equal(result.counts, expected.counts)
    assert result.skipped == int((~kept & visible.any(axis=1)).sum())
