"""PCKhMetric on a small hand-made gt_valid.mat: +1 convention, DDP duplicates, layouts, partial and empty epochs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from src.layouts import COCO17, MPII16
from src.metrics.pck import mpii_pckh
from src.metrics.pckh_metric import PCKH_KEYS, PCKhMetric
from src.readers.mpii_ground_truth import MPII_JOINT_NAMES, MPIIGroundTruth, write_mpii_ground_truth

N = 6
LSHO = MPII_JOINT_NAMES.index("lsho")


@pytest.fixture
def gt(tmp_path: Path) -> tuple[Path, MPIIGroundTruth]:
    """gt_valid.mat of N people, whole-pixel 1-based positions, head size 30, a few joints missing."""
    rng = np.random.default_rng(0)
    missing = np.zeros((N, 16), dtype=bool)
    missing[0, 0] = missing[3, 5] = missing[4, 10] = True
    truth = MPIIGroundTruth(
        positions=np.round(rng.uniform(1, 200, size=(N, 16, 2))),
        missing=missing,
        headboxes=np.tile(np.array([[10.0, 10.0], [40.0, 50.0]]), (N, 1, 1)),
    )
    return write_mpii_ground_truth(tmp_path / "gt_valid.mat", truth), truth


def _predictions(truth: MPIIGroundTruth, ids: list[int], shift: float = 0.0) -> tuple[dict, dict]:
    """(predictions, batch) for the given sample ids: 0-based keypoints = gt - 1 (+ shift), with a score column."""
    xy = torch.as_tensor(truth.positions[ids] - 1.0 + shift, dtype=torch.float32)
    keypoints = torch.cat([xy, torch.rand(len(ids), 16, 1)], dim=-1)
    return {"keypoints": keypoints}, {"sample_id": torch.tensor(ids, dtype=torch.int64)}


def test_protocol_attributes() -> None:
    assert (PCKhMetric.monitor, PCKhMetric.mode, PCKhMetric.submission_options) == ("PCKh", "max", ())


def test_zero_based_predictions_are_shifted_by_one(gt) -> None:
    path, truth = gt
    # threshold 0.02 of a 30 px head = 0.6 px: a missing +1 (1.41 px off) would fail every joint
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16, threshold=0.02)
    metric.update(*_predictions(truth, list(range(N))))
    result = metric.compute()
    assert set(result) == set(PCKH_KEYS)
    assert all(value == pytest.approx(100.0) for value in result.values())
    metric.reset()
    metric.update(*_predictions(truth, list(range(N)), shift=1.0))  # 1-based by mistake
    assert metric.compute()["PCKh"] == 0.0


def test_matches_mpii_pckh_and_reports_every_joint(gt) -> None:
    path, truth = gt
    rng = np.random.default_rng(1)
    xy = (truth.positions - 1.0 + rng.normal(0, 8, truth.positions.shape)).astype(np.float32)
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16, official_low_column=True)
    for ids in ([0, 1, 2], [3, 4], [5]):  # uneven batches
        metric.update({"keypoints": torch.from_numpy(xy[ids])}, {"sample_id": torch.tensor(ids)})
    expected = mpii_pckh(
        xy + np.float32(1.0),
        truth.positions,
        truth.missing,
        truth.headboxes,
        joint_names=MPII_JOINT_NAMES,
        official_low_column=True,
    )
    assert metric.compute() == expected
    assert set(metric.last_per_joint) == set(MPII_JOINT_NAMES)  # pelvis and thorax included


def test_ddp_padding_duplicates_are_dropped(gt) -> None:
    path, truth = gt
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16)
    # Two ranks, the sampler padding rank 1 with samples 0 and 1 again. The "cat" gather leaves rank 0's
    # rows, then rank 1's, in the states: the same as these two updates on one metric (checked with gloo).
    rank0 = _predictions(truth, [0, 2, 4])
    rank1 = _predictions(truth, [1, 3, 5, 0, 1])
    rank1[0]["keypoints"][3:, :, :2] += 100.0  # the padded copies differ: only the first copy may count
    for preds, batch in (rank0, rank1):
        metric.update(preds, batch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert metric.compute()["PCKh"] == pytest.approx(100.0)
    assert not [w for w in caught if "PCKhMetric evaluates" in str(w.message)]  # all 6 people: not partial


def test_first_copy_of_a_repeated_sample_wins(gt) -> None:
    path, truth = gt
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16)
    metric.update(*_predictions(truth, list(range(N))))
    metric.update(*_predictions(truth, [2], shift=100.0))
    assert metric.compute()["PCKh"] == pytest.approx(100.0)


def test_keypoint_count_mismatch_names_both_layouts(gt) -> None:
    path, truth = gt
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16)
    coco_like = {"keypoints": torch.zeros(2, 17, 3)}
    with pytest.raises(ValueError, match=r"K=17.*'mpii16' with K=16"):
        metric.update(coco_like, {"sample_id": torch.tensor([0, 1])})
    metric = PCKhMetric(gt_file=path, keypoint_info=COCO17)  # a COCO-17 model evaluated on MPII
    metric.update(coco_like, {"sample_id": torch.tensor([0, 1])})
    with pytest.raises(ValueError, match=r"'coco17' has K=17 .*gt_valid\.mat has K=16"):
        metric.compute()


def test_partial_evaluation_scores_the_predicted_subset(gt) -> None:
    path, truth = gt
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16)
    preds, batch = _predictions(truth, [1, 4])
    preds["keypoints"][0, LSHO, :2] += 100.0  # one wrong left shoulder
    metric.update(preds, batch)
    with pytest.warns(UserWarning, match="2 of the 6 people"):
        result = metric.compute()
    rows = [1, 4]
    expected = mpii_pckh(
        preds["keypoints"][..., :2].numpy() + np.float32(1.0),
        truth.positions[rows],
        truth.missing[rows],
        truth.headboxes[rows],
        joint_names=MPII_JOINT_NAMES,
    )
    assert result == expected and result["PCKh/Shoulder"] == 75.0
    metric.reset()
    metric.update(preds, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per metric, not every epoch
        metric.compute()


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric PCKhMetric was called before")
def test_no_predictions_give_zeros(gt) -> None:
    path, _ = gt
    metric = PCKhMetric(gt_file=path / "not-read", keypoint_info=MPII16)  # nothing to score: the file is not read
    with pytest.warns(UserWarning, match="without predictions"):
        result = metric.compute()
    assert result == dict.fromkeys(PCKH_KEYS, 0.0)


def test_out_of_range_sample_id_names_the_file(gt) -> None:
    path, truth = gt
    metric = PCKhMetric(gt_file=path, keypoint_info=MPII16)
    preds, _ = _predictions(truth, [0, 1])
    metric.update(preds, {"sample_id": torch.tensor([0, N])})
    with pytest.raises(ValueError, match=rf"sample id {N} out of range .*gt_valid\.mat"):
        metric.compute()


#: gt_valid.mat spellings: the HRNet file's, the MPII annotation tools' thorax, the Stacked Hourglass code's.
SPELLINGS = {
    "hrnet": MPII_JOINT_NAMES,
    "mpii_tools": tuple("thrx" if name == "thor" else name for name in MPII_JOINT_NAMES),
    "hourglass": ("RAnk", "RKne", "RHip", "LHip", "LKne", "LAnk", "Pelv", "Thrx", "Neck", "Head")
    + ("RWri", "RElb", "RSho", "LSho", "LElb", "LWri"),
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_every_spelling_of_the_joint_names_gives_the_official_result(gt, tmp_path: Path, spelling: str) -> None:
    path, truth = gt
    names = SPELLINGS[spelling]
    respelled = write_mpii_ground_truth(
        tmp_path / spelling / "gt_valid.mat",
        MPIIGroundTruth(truth.positions, truth.missing, truth.headboxes, joint_names=names),
    )
    preds, batch = _predictions(truth, list(range(N)))
    preds["keypoints"][:, 6:8, :2] += 100.0  # pelvis and thorax wrong: outside the mean
    preds["keypoints"][1, LSHO, :2] += 100.0  # one wrong left shoulder: inside it
    results = {}
    for file in (path, respelled):
        metric = PCKhMetric(gt_file=file, keypoint_info=MPII16)
        metric.update(preds, batch)
        results[file] = metric.compute()
        assert list(metric.last_per_joint) == list(MPII_JOINT_NAMES)  # one spelling, whatever the file's
        assert metric.last_per_joint["thor"] == 0.0 and metric.last_per_joint["pelv"] == 0.0
    assert results[respelled] == results[path]
    assert results[path]["PCKh/Shoulder"] == pytest.approx(100.0 - 50.0 / N)
    assert 97.0 < results[path]["PCKh"] < 100.0
