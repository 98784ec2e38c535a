"""OKS, OKS-NMS, soft OKS-NMS and rescoring against the official test vector and hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.layouts import COCO17
from src.metrics.oks import compute_oks, oks_nms, pairwise_oks, soft_oks_nms
from src.metrics.rescoring import rescore_instances

REFERENCE = Path(__file__).parents[2] / "../shared/reference/algorithm_vectors.json"
SIGMAS = np.array(COCO17.sigmas)

# Official vector (HRNet lib/nms/nms.py): base (score .8), dup = base + (2, 2) px (score .9),
# other = base + 120 px in x (score .7); all areas 20000.
EXPECTED_OKS_BASE_VS_DUP_OTHER = (0.97644, 4.8e-05)
EXPECTED_KEEP_THR_090 = [1, 2]
EXPECTED_KEEP_THR_099 = [1, 0, 2]


def _vector_persons() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3, 17, 3) keypoints [base, dup, other], (3,) scores, (3,) areas. OKS depends on offsets only."""
    rng = np.random.default_rng(0)
    base = np.concatenate([rng.uniform(100, 300, (17, 2)), np.ones((17, 1))], axis=1)
    dup = base.copy()
    dup[:, :2] += 2.0
    other = base.copy()
    other[:, 0] += 120.0
    return np.stack([base, dup, other]), np.array([0.8, 0.9, 0.7]), np.full(3, 20000.0)


def test_oks_matches_official_vector() -> None:
    kpts, _, areas = _vector_persons()
    oks = compute_oks(kpts[0], kpts[1:], areas[0], areas[1:], SIGMAS)
    assert oks[0] == pytest.approx(EXPECTED_OKS_BASE_VS_DUP_OTHER[0], abs=1e-5)
    assert oks[1] == pytest.approx(EXPECTED_OKS_BASE_VS_DUP_OTHER[1], abs=1e-6)


def test_oks_formula_by_hand() -> None:
    # One joint moved by (3, 4) px -> d^2 = 25; e = 25 / (2 sigma)^2 / ((a_g + a_d) / 2 + eps) / 2.
    gt = np.zeros((17, 2))
    det = gt.copy()
    det[5] = (3.0, 4.0)
    oks = compute_oks(gt, det[None], 900.0, np.array([1100.0]), SIGMAS)
    e = 25.0 / (2 * SIGMAS[5]) ** 2 / (1000.0 + np.spacing(1)) / 2
    assert oks[0] == pytest.approx((16 + np.exp(-e)) / 17, rel=1e-12)
    assert compute_oks(gt, gt[None], 900.0, np.array([900.0]), SIGMAS)[0] == 1.0


def test_oks_nms_matches_official_vector() -> None:
    kpts, scores, areas = _vector_persons()
    assert oks_nms(kpts, scores, areas, thr=0.9, sigmas=SIGMAS) == EXPECTED_KEEP_THR_090
    assert oks_nms(kpts, scores, areas, thr=0.99, sigmas=SIGMAS) == EXPECTED_KEEP_THR_099


def test_reference_json_agrees_with_hard_coded_numbers() -> None:
    if not REFERENCE.is_file():
        pytest.skip("shared reference folder not present")
    vector = json.loads(REFERENCE.read_text())["oks"]
    assert tuple(vector["oks_base_vs_dup_other"]) == EXPECTED_OKS_BASE_VS_DUP_OTHER
    assert vector["oks_nms_keep_thr0.9"] == EXPECTED_KEEP_THR_090
    assert vector["oks_nms_keep_thr0.99"] == EXPECTED_KEEP_THR_099


def test_oks_nms_edge_cases() -> None:
    empty = np.zeros((0, 17, 3))
    assert oks_nms(empty, np.zeros(0), np.zeros(0), thr=0.9, sigmas=SIGMAS) == []
    kpts, scores, areas = _vector_persons()
    assert oks_nms(kpts[:1], scores[:1], areas[:1], thr=0.9, sigmas=SIGMAS) == [0]
    with pytest.raises(ValueError, match="keypoint counts"):
        oks_nms(kpts[:, :16], scores, areas, thr=0.9, sigmas=SIGMAS)


def test_soft_oks_nms_decays_the_duplicate() -> None:
    kpts, scores, areas = _vector_persons()
    # dup first; base decays to .8 * exp(-0.976^2 / 0.9) ~ 0.28 < 0.7, so other comes before base.
    assert soft_oks_nms(kpts, scores, areas, thr=0.9, sigmas=SIGMAS) == [1, 2, 0]
    assert soft_oks_nms(kpts, scores, areas, thr=0.9, sigmas=SIGMAS, max_dets=2) == [1, 2]


def test_rescoring() -> None:
    joint_scores = np.array([[0.1, 0.5, 0.9], [0.1, 0.2, 0.15], [0.3, 0.3, 0.3]])
    scores = rescore_instances(joint_scores, np.array([0.5, 1.0, 2.0]), in_vis_thr=0.2)
    np.testing.assert_allclose(scores, [0.35, 0.0, 0.6])


def test_pairwise_oks_is_compute_oks_row_by_row_and_masks_joints() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 200, (3, 17, 3)), rng.uniform(0, 200, (4, 17, 3))
    areas_a, areas_b = rng.uniform(500, 5000, 3), rng.uniform(500, 5000, 4)
    table = pairwise_oks(a, b, areas_a, areas_b, SIGMAS)
    assert table.shape == (3, 4)
    for i in range(3):
        np.testing.assert_array_equal(table[i], compute_oks(a[i], b, areas_a[i], areas_b, SIGMAS))
    # joints count where both sides are valid; a pair with none in common has OKS 0
    valid_a = np.ones((3, 17), bool)
    valid_a[0, :5] = False
    masked = pairwise_oks(a, b, areas_a, areas_b, SIGMAS, valid_a=valid_a)
    np.testing.assert_allclose(masked[0], pairwise_oks(a[:1, 5:], b[:, 5:], areas_a[:1], areas_b, SIGMAS[5:])[0])
    np.testing.assert_array_equal(masked[1:], table[1:])
    none = pairwise_oks(a, b, areas_a, areas_b, SIGMAS, valid_b=np.zeros((4, 17), bool))
    np.testing.assert_array_equal(none, 0.0)
    with pytest.raises(ValueError, match="keypoint counts disagree"):
        pairwise_oks(a, b[:, :16], areas_a, areas_b, SIGMAS)
