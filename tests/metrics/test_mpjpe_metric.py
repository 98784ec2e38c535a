"""MPJPEMetric / PAMPJPEMetric on hand-made poses: alignment, per-action keys, DDP duplicates, the thorax."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from src.layouts import H36M17, KeypointInfo
from src.metrics.mpjpe import mpjpe, pa_mpjpe, root_relative
from src.metrics.mpjpe_metric import MPJPE_KEYS, MPJPEMetric, PAMPJPEMetric
from src.utils.resolvers import metric_mode, metric_monitor

#: The PoseNet Human3.6M model layout: the 17 joints plus "thorax" at index 17.
H36M18 = dataclasses.replace(
    H36M17, name="h36m18_test", keypoint_names=(*H36M17.keypoint_names, "thorax"), joint_weights=(1.0,) * 18
)
ACTIONS = ("Directions", "Discussion", "Eating")
THORAX = 17


def _metric(cls: type[MPJPEMetric] = MPJPEMetric, **kwargs) -> MPJPEMetric:
    return cls(keypoint_info=H36M18, actions=ACTIONS, **kwargs)


def _gt(n: int, seed: int = 0) -> np.ndarray:
    """(N, 18, 3) absolute camera-frame joints in mm; the thorax is the mean of the shoulders, as in PoseNet."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(0.0, 300.0, size=(n, 18, 3)) + np.array([100.0, -200.0, 5000.0])
    joints[:, THORAX] = 0.5 * (joints[:, 11] + joints[:, 14])
    return joints


def _rotate(joints: np.ndarray, angle: float, scale: float = 1.0) -> np.ndarray:
    """Each pose rotated about the camera's y axis around its root, scaled, and shifted by 250 mm."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    root = joints[:, :1]
    return scale * (joints - root) @ rotation.T + root + np.array([250.0, 0.0, 0.0])


def _batch(pred: np.ndarray, gt: np.ndarray, ids: list[int], actions: list[int]) -> tuple[dict, dict]:
    predictions = {"joints_cam": torch.as_tensor(pred, dtype=torch.float32)}
    batch = {
        "sample_id": torch.tensor(ids, dtype=torch.int64),
        "joints_cam": torch.as_tensor(gt, dtype=torch.float32),
        "action": torch.tensor(actions, dtype=torch.int64),
    }
    return predictions, batch


def test_protocol_attributes_and_resolvers() -> None:
    assert (MPJPEMetric.monitor, MPJPEMetric.mode, MPJPEMetric.submission_options) == ("MPJPE", "min", ())
    assert (PAMPJPEMetric.monitor, PAMPJPEMetric.mode, PAMPJPEMetric.submission_options) == ("PA-MPJPE", "min", ())
    assert metric_monitor("src.metrics.mpjpe_metric.PAMPJPEMetric") == "val/PA-MPJPE"
    assert metric_monitor("src.metrics.mpjpe_metric.MPJPEMetric", "test") == "test/MPJPE"
    assert metric_mode("src.metrics.mpjpe_metric.PAMPJPEMetric") == "min"


def test_perfect_predictions_score_zero() -> None:
    gt = _gt(4)
    metric = _metric(PAMPJPEMetric)
    metric.update(*_batch(gt, gt, [0, 1, 2, 3], [0, 0, 1, 1]))
    result = metric.compute()
    assert set(result) == {*MPJPE_KEYS, "MPJPE/Directions", "PA-MPJPE/Directions"} | {
        "MPJPE/Discussion",
        "PA-MPJPE/Discussion",
    }
    assert all(value == pytest.approx(0.0, abs=1e-3) for value in result.values())
    assert set(metric.last_per_joint) == set(H36M17.keypoint_names)  # evaluated joints only, no thorax


def test_root_is_subtracted_by_the_metric() -> None:
    gt = _gt(3)
    metric = _metric()
    metric.update(*_batch(root_relative(gt) + np.array([5.0, 0.0, -700.0]), gt, [0, 1, 2], [2, 2, 2]))
    assert metric.compute()["MPJPE"] == pytest.approx(0.0, abs=1e-3)  # a whole-body offset is no error


def test_rigid_motion_is_an_mpjpe_but_not_a_pa_mpjpe_error() -> None:
    gt = _gt(5)
    pred = _rotate(gt, 0.4)
    metric = _metric()
    metric.update(*_batch(pred, gt, list(range(5)), [0, 1, 2, 0, 1]))
    result = metric.compute()
    expected = mpjpe(root_relative(pred), root_relative(gt), joints=range(17))
    assert result["MPJPE"] == pytest.approx(expected, rel=1e-5) and result["MPJPE"] > 50.0
    assert result["PA-MPJPE"] == pytest.approx(0.0, abs=1e-2)


def test_scale_is_removed_only_by_the_similarity_alignment() -> None:
    gt = _gt(4)
    pred = _rotate(gt, -0.3, scale=1.15)
    results = {}
    for alignment in ("rigid", "similarity"):
        metric = _metric(alignment=alignment)
        metric.update(*_batch(pred, gt, [0, 1, 2, 3], [0, 0, 0, 0]))
        results[alignment] = metric.compute()["PA-MPJPE"]
    assert results["rigid"] > 10.0
    assert results["rigid"] == pytest.approx(pa_mpjpe(pred, gt, joints=range(17)), rel=1e-5)
    assert results["similarity"] == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(ValueError, match=r"alignment must be one of \['rigid', 'similarity'\], got 'affine'"):
        _metric(alignment="affine")


def test_per_action_values_on_a_hand_made_batch() -> None:
    gt = _gt(3)
    pred = gt.copy()
    pred[0, 1] += [3.0, 4.0, 0.0]  # Directions: one joint 5 mm off
    pred[1, 2] += [0.0, 0.0, 17.0]  # Eating: one joint 17 mm off
    pred[2, 5] += [0.0, 34.0, 0.0]  # Eating: one joint 34 mm off
    metric = _metric()
    metric.update(*_batch(pred[:1], gt[:1], [10], [0]))
    metric.update(*_batch(pred[1:], gt[1:], [11, 12], [2, 2]))
    result = metric.compute()
    assert list(result) == [*MPJPE_KEYS, "MPJPE/Directions", "PA-MPJPE/Directions", "MPJPE/Eating", "PA-MPJPE/Eating"]
    assert result["MPJPE/Directions"] == pytest.approx(5.0 / 17, rel=1e-5)
    assert result["MPJPE/Eating"] == pytest.approx((17.0 + 34.0) / 34, rel=1e-5)
    assert result["MPJPE"] == pytest.approx((5.0 + 17.0 + 34.0) / 51, rel=1e-5)
    expected = pa_mpjpe(root_relative(pred[1:]), root_relative(gt[1:]), joints=range(17))
    assert result["PA-MPJPE/Eating"] == pytest.approx(expected, rel=1e-4) and expected > 0.5
    assert metric.last_per_joint["right_hip"] == pytest.approx(5.0 / 3, rel=1e-5)
    assert metric.last_per_joint["left_knee"] == pytest.approx(34.0 / 3, rel=1e-5)


def test_ddp_padding_duplicates_are_counted_once() -> None:
    gt = _gt(4)
    metric = _metric()
    # Two ranks, the sampler padding rank 1 with samples 0 and 1 again; the padded copies are wrong,
    # so only a metric that keeps the first copy of each sample scores zero.
    rank0 = _batch(gt[[0, 2]], gt[[0, 2]], [0, 2], [0, 1])
    rank1 = _batch(_rotate(gt[[1, 3, 0, 1]], 0.5), gt[[1, 3, 0, 1]], [1, 3, 0, 1], [1, 2, 0, 1])
    rank1[0]["joints_cam"][:2] = torch.as_tensor(gt[[1, 3]], dtype=torch.float32)
    for predictions, batch in (rank0, rank1):
        metric.update(predictions, batch)
    result = metric.compute()
    assert result["MPJPE"] == pytest.approx(0.0, abs=1e-3)
    assert result["MPJPE/Directions"] == pytest.approx(0.0, abs=1e-3)


def test_thorax_is_aligned_on_but_not_evaluated() -> None:
    gt = _gt(3)
    pred = gt.copy()
    pred[:, THORAX] += 1.0e4  # a huge thorax error
    metric = _metric()
    metric.update(*_batch(pred, gt, [0, 1, 2], [0, 1, 2]))
    result = metric.compute()
    assert result["MPJPE"] == pytest.approx(0.0, abs=1e-3)
    assert "thorax" not in metric.last_per_joint
    # official order: the thorax takes part in the alignment, which then moves the evaluated joints
    assert result["PA-MPJPE"] == pytest.approx(pa_mpjpe(pred, gt, joints=range(17)), rel=1e-4)
    assert result["PA-MPJPE"] > 1.0


def test_eval_joints_are_found_by_name() -> None:
    shuffled = dataclasses.replace(H36M18, keypoint_names=(*H36M18.keypoint_names[1:], "pelvis"))  # pelvis last
    gt = _gt(2)
    pred = gt.copy()
    pred[:, 0] += [0.0, 0.0, 60.0]  # channel 0 is "right_hip" in this layout
    metric = MPJPEMetric(keypoint_info=shuffled, actions=ACTIONS, root_index=17)
    metric.update(*_batch(pred, gt, [0, 1], [0, 0]))
    metric.compute()
    assert metric.last_per_joint["right_hip"] == pytest.approx(60.0, rel=1e-5)
    assert metric.last_per_joint["pelvis"] == 0.0


def test_wrong_shapes_and_layouts_raise() -> None:
    gt = _gt(2)
    metric = _metric()
    with pytest.raises(ValueError, match=r"predictions\['joints_cam'\] has K=17 joints .*'h36m18_test' with K=18"):
        metric.update(*_batch(gt[:, :17], gt, [0, 1], [0, 0]))
    with pytest.raises(ValueError, match=r"batch\['joints_cam'\] must be \(N, K, 3\)"):
        metric.update(*_batch(gt, gt[..., :2], [0, 1], [0, 0]))
    with pytest.raises(ValueError, match=r"batch\['sample_id'\] has 3 entries for 2 predicted poses"):
        metric.update(*_batch(gt, gt, [0, 1, 2], [0, 0]))
    with pytest.raises(ValueError, match=r"batch\['action'\] holds 3, out of range for the 3 actions"):
        metric.update(*_batch(gt, gt, [0, 1], [0, 3]))
    with pytest.raises(ValueError, match=r"'h36m17' has joints \['torso'\] .*model layout 'partial'"):
        names = tuple(name if name != "torso" else "spine" for name in H36M18.keypoint_names)
        MPJPEMetric(keypoint_info=dataclasses.replace(H36M18, name="partial", keypoint_names=names), actions=ACTIONS)
    with pytest.raises(ValueError, match="root_index 18 out of range"):
        _metric(root_index=18)
    assert isinstance(H36M18, KeypointInfo)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric MPJPEMetric was called before")
def test_no_updates_give_zeros() -> None:
    metric = _metric()
    with pytest.warns(UserWarning, match="without predictions"):
        result = metric.compute()
    assert result == {"MPJPE": 0.0, "PA-MPJPE": 0.0}
    assert metric.last_per_joint == {}


def test_reset_starts_a_new_epoch() -> None:
    gt = _gt(2)
    metric = _metric()
    metric.update(*_batch(_rotate(gt, 0.3), gt, [0, 1], [0, 0]))
    assert metric.compute()["MPJPE"] > 10.0
    metric.reset()
    metric.update(*_batch(gt, gt, [0, 1], [1, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metric.compute()
    assert result["MPJPE"] == pytest.approx(0.0, abs=1e-3) and "MPJPE/Directions" not in result
