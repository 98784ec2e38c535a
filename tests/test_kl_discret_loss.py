"""KLDiscretLoss: mmpose 1.3.2's vectors, its K-only reduction and the per-instance mean, target
weights, label softmax, float32 under autocast, and refused shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.codecs.simcc_label import SimCCLabel
from src.losses import KLDiscretLoss

VECTORS_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "modern" / "algorithm_vectors_modern.json"
)

# algorithm_vectors_modern.json["b_kl_discret_loss"] (beta 10, label softmax, label_beta 10).
CASE1_WEIGHT = [[1.0, 0.0, 1.0], [1.0, 1.0, 0.5]]
CASE1_LOSS = 0.970553
CASE1_LOSS_UNWEIGHTED = 1.309581
CASE1_ROWS_X = [0.150726, 0.08716, 0.502007, 0.312866, 0.053806, 0.833796]
CASE1_ROWS_Y = [0.235231, 0.358476, 0.339697, 0.498727, 0.24715, 0.3091]
CASE2_LOSS = 0.017205
CASE2_ROWS_X = [0.001235, 0.02019, 0.021631, 0.009105, 0.009077, 0.009077]
CASE2_ROWS_Y = [0.004509, 0.015155, 0.016252, 0.015155, 0.00663, 0.00663]
# a_simcc_label set_A: the labels of case 2
SET_A_KEYPOINTS = [[96.0, 128.0], [10.25, 20.75], [191.600006, 255.399994], [-5.0, 100.0], [-20.0, 50.0], [50.0, 60.0]]
SET_A_VISIBLE = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())["b_kl_discret_loss"]


def case1() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The inputs of case1_small from their formulas (N = 2, K = 3, Lx = 8, Ly = 6)."""
    g = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    h = torch.arange(2 * 3 * 6, dtype=torch.float32).reshape(2, 3, 6)
    pred = (0.5 * torch.sin(0.37 * g), 0.4 * torch.cos(0.23 * h))
    gt = (0.5 * torch.cos(0.11 * g) + 0.5, torch.exp(-(((h % 6) - 2) ** 2) / 2))
    return pred, gt, torch.tensor(CASE1_WEIGHT)


def case2() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """case2_realistic: SimCC labels of set_A against Gaussian predictions (N = 1, K = 6)."""
    codec = SimCCLabel(input_size=(192, 256), sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False)
    labels = codec.encode(np.array(SET_A_KEYPOINTS, np.float32), np.array(SET_A_VISIBLE, np.float32))
    k = torch.arange(6, dtype=torch.float32)[:, None]
    i, j = torch.arange(384, dtype=torch.float32), torch.arange(512, dtype=torch.float32)
    pred_x = 0.8 * torch.exp(-((i - (190 + 3 * k)) ** 2) / (2 * 6.0**2))
    pred_y = 0.8 * torch.exp(-((j - (250 - 5 * k)) ** 2) / (2 * 7.0**2))
    gt = (torch.from_numpy(labels["keypoint_x_labels"])[None], torch.from_numpy(labels["keypoint_y_labels"])[None])
    return (pred_x[None], pred_y[None]), gt, torch.from_numpy(labels["target_weight"])[None]


def test_case1_reproduces_mmpose_inline():
    pred, gt, weight = case1()
    loss = KLDiscretLoss()(pred, gt, weight)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert loss.item() == pytest.approx(CASE1_LOSS, abs=1e-6)
    assert KLDiscretLoss(use_target_weight=False)(pred, gt, weight).item() == pytest.approx(
        CASE1_LOSS_UNWEIGHTED, abs=1e-6
    )
    criterion = KLDiscretLoss()
    np.testing.assert_allclose(
        criterion.criterion(pred[0].reshape(6, -1), gt[0].reshape(6, -1)), CASE1_ROWS_X, atol=1e-6
    )
    np.testing.assert_allclose(
        criterion.criterion(pred[1].reshape(6, -1), gt[1].reshape(6, -1)), CASE1_ROWS_Y, atol=1e-6
    )
    # the definition: weighted row sums over both axes, divided by K = 3
    rows = torch.tensor(CASE1_ROWS_X) + torch.tensor(CASE1_ROWS_Y)
    assert loss.item() == pytest.approx((rows * weight.reshape(-1)).sum().item() / 3, abs=1e-5)


def test_case2_reproduces_mmpose_inline():
    pred, gt, weight = case2()
    assert weight[0].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    criterion = KLDiscretLoss()
    assert criterion(pred, gt, weight).item() == pytest.approx(CASE2_LOSS, abs=1e-6)
    np.testing.assert_allclose(criterion.criterion(pred[0][0], gt[0][0]), CASE2_ROWS_X, atol=1e-6)
    np.testing.assert_allclose(criterion.criterion(pred[1][0], gt[1][0]), CASE2_ROWS_Y, atol=1e-6)


def test_every_mmpose_vector(vectors):
    assert vectors["config"] == {
        "type": "KLDiscretLoss",
        "use_target_weight": True,
        "beta": 10.0,
        "label_softmax": True,
    }
    assert vectors["label_beta_default"] == KLDiscretLoss().label_beta
    ref = vectors["case1_small"]
    pred, gt, weight = case1()
    for ours, key in ((pred[0], "pred_x"), (gt[0], "gt_x"), (pred[1], "pred_y"), (gt[1], "gt_y")):
        np.testing.assert_allclose(ours, ref[key], atol=1e-6, err_msg=key)
    np.testing.assert_allclose(weight, ref["target_weight"])
    criterion = KLDiscretLoss()
    assert criterion(pred, gt, weight).item() == pytest.approx(ref["loss"], abs=1e-6)
    assert KLDiscretLoss(use_target_weight=False)(pred, gt, weight).item() == pytest.approx(
        ref["loss_with_use_target_weight_False"], abs=1e-6
    )
    np.testing.assert_allclose(
        criterion.criterion(pred[0].reshape(6, -1), gt[0].reshape(6, -1)), ref["per_row_criterion_x"], atol=1e-6
    )
    np.testing.assert_allclose(
        criterion.criterion(pred[1].reshape(6, -1), gt[1].reshape(6, -1)), ref["per_row_criterion_y"], atol=1e-6
    )
    ref = vectors["case2_realistic"]
    pred, gt, weight = case2()
    np.testing.assert_allclose(weight, ref["target_weight"])
    assert criterion(pred, gt, weight).item() == pytest.approx(ref["loss"], abs=1e-6)
    np.testing.assert_allclose(criterion.criterion(pred[0][0], gt[0][0]), ref["per_keypoint_criterion_x"], atol=1e-6)
    np.testing.assert_allclose(criterion.criterion(pred[1][0], gt[1][0]), ref["per_keypoint_criterion_y"], atol=1e-6)


def test_mmpose_reduction_grows_with_the_batch_and_mean_does_not():
    pred, gt, weight = case1()
    twice = tuple(torch.cat([p, p]) for p in pred), tuple(torch.cat([g, g]) for g in gt), torch.cat([weight, weight])
    mmpose, mean = KLDiscretLoss(), KLDiscretLoss(reduction="mean")
    assert mmpose(*twice).item() == pytest.approx(2 * mmpose(pred, gt, weight).item(), rel=1e-6)
    assert mean(*twice).item() == pytest.approx(mean(pred, gt, weight).item(), rel=1e-6)
    assert mean(pred, gt, weight).item() == pytest.approx(CASE1_LOSS / 2, abs=1e-6)  # N = 2


def test_label_softmax_off_uses_the_labels_as_given():
    """Zero bins contribute nothing (KL's 0 log 0 = 0); identical distributions give 0."""
    probs = torch.tensor([[[0.0, 0.25, 0.75, 0.0]]])
    loss = KLDiscretLoss(beta=1.0, label_softmax=False)
    logits = probs.log().clamp_min(-1e4)
    assert loss((logits, logits), (probs, probs), torch.ones(1, 1)).item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.zeros(1, 1, 4)  # uniform prediction
    expected = (0.25 * np.log(0.25 / 0.25) + 0.75 * np.log(0.75 / 0.25)) / 4 * 2 / 1
    assert loss((pred, pred), (probs, probs), torch.ones(1, 1)).item() == pytest.approx(expected, abs=1e-6)


def test_half_precision_outputs_give_a_float32_loss_with_gradients():
    pred, gt, weight = case1()
    half = tuple(p.to(torch.bfloat16).requires_grad_() for p in pred)
    loss = KLDiscretLoss()(half, gt, weight)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(CASE1_LOSS, abs=2e-2)
    loss.backward()
    assert half[0].grad is not None and half[0].grad.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert KLDiscretLoss()(pred, gt, weight).dtype == torch.float32
    double = tuple(p.double() for p in pred)
    assert KLDiscretLoss()(double, gt, weight).dtype == torch.float64


def test_lists_are_accepted_and_bad_shapes_are_refused():
    pred, gt, weight = case1()
    torch.testing.assert_close(KLDiscretLoss()(list(pred), list(gt), weight), KLDiscretLoss()(pred, gt, weight))
    with pytest.raises(ValueError, match="pairs"):
        KLDiscretLoss()(pred[:1], gt, weight)
    with pytest.raises(ValueError, match=r"target_weight \(2, 2\)"):
        KLDiscretLoss()(pred, gt, weight[:, :2])
    with pytest.raises(ValueError, match=r"y prediction \(2, 3, 6\) and target \(2, 3, 7\)"):
        KLDiscretLoss()(pred, (gt[0], torch.zeros(2, 3, 7)), weight)
    with pytest.raises(ValueError, match="reduction"):
        KLDiscretLoss(reduction="sum")
