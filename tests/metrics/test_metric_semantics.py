"""Exact metric semantics: the official OKS-NMS order with tied scores, NaN or empty areas, every
evaluation option reaching the metric, and repeated sample ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from src.layouts import COCO17
from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.oks import descending_order, oks_nms, soft_oks_nms
from src.tasks.topdown import TopDownPoseModule
from tests.helpers import compose_run
from tests.metrics.test_coco_metric import IMAGE_IDS, predictions_from_gt, update, write_gt


def _people(n: int, *, spread: float) -> np.ndarray:
    """n people of 17 joints, shifted ``spread`` px apart (0: exact duplicates)."""
    base = np.random.default_rng(0).uniform(0, 100, (17, 2))
    people = np.stack([base + i * spread for i in range(n)])
    return np.concatenate([people, np.ones((n, 17, 1))], axis=-1)


def test_tied_scores_are_ordered_as_the_official_argsort():
    scores = np.array([0.5, 0.9, 0.5, 0.5])
    assert descending_order(scores).tolist() == [1, 3, 2, 0]  # ties reversed, not stable
    far_apart = _people(4, spread=500.0)
    assert oks_nms(far_apart, scores, np.full(4, 1e4), thr=0.9, sigmas=COCO17.sigmas) == [1, 3, 2, 0]
    # many tied duplicates (NumPy's introsort beyond 16 elements): the one kept is the first of the
    # official order, whichever that is
    tied = np.round(np.random.default_rng(1).uniform(0, 1, 40), 1)
    duplicates = _people(40, spread=0.0)
    expected = int(np.argsort(tied.astype(np.float64))[::-1][0])
    assert oks_nms(duplicates, tied, np.full(40, 1e4), thr=0.9, sigmas=COCO17.sigmas) == [expected]
    soft = soft_oks_nms(far_apart, scores, np.full(4, 1e4), thr=0.9, sigmas=COCO17.sigmas)
    assert soft == [1, 0, 3, 2]  # each re-sort reverses the remaining ties again, as official


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -5.0, float("inf")])
def test_nms_refuses_areas_it_cannot_use(bad):
    areas = np.array([1e4, bad, 1e4])
    with pytest.raises(ValueError, match=r"finite, positive instance areas; rows \[1\]"):
        oks_nms(_people(3, spread=500.0), np.array([0.9, 0.8, 0.7]), areas, thr=0.9, sigmas=COCO17.sigmas)


def test_the_metric_repairs_a_nan_area_instead_of_suppressing_the_image(tmp_path):
    ann_file, gt_kpts = write_gt(tmp_path / "gt.json", COCO17)
    preds = predictions_from_gt(gt_kpts)
    reference = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(reference, [0, 1, 2], IMAGE_IDS, preds)
    expected = reference.compute()
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1, 2], IMAGE_IDS, preds, areas=np.array([float("nan"), 20000.0, 0.0]))
    with pytest.warns(UserWarning, match="2 instance areas were NaN"):
        stats = metric.compute()
    assert len(metric.last_results) == 3  # both people of image 1 are kept
    assert stats["AP"] == pytest.approx(expected["AP"]) == pytest.approx(1.0)


def test_soft_nms_reaches_the_metric_and_unknown_options_are_refused(tmp_path):
    from src.utils.builders import build_datamodule

    cfg = compose_run("train", ["model=hrnet", "model.evaluation.soft_nms=true"], tmp_path / "r", tmp_path / "d")
    task = instantiate(cfg.model, _recursive_=False)
    assert TopDownPoseModule.submission(task.hparams.evaluation)["soft_nms"] is True
    datamodule = build_datamodule(cfg.data, codec=task.codec, paradigm=task.paradigm)
    ann_file, _ = write_gt(tmp_path / "gt.json", COCO17)
    datamodule.reader.metric_inputs = lambda: {"ann_file": ann_file}  # no dataset needed for the metric
    metric = datamodule.build_metric(task.submission(task.hparams.evaluation))
    assert metric.soft_nms is True and metric.oks_thr == 0.9

    bad = compose_run("train", ["model=hrnet", "+model.evaluation.soft_nsm=true"], tmp_path / "b", tmp_path / "d")
    with pytest.raises(InstantiationException, match=r"no evaluation option \['soft_nsm'\].*'soft_nms'"):
        instantiate(bad.model, _recursive_=False)


def test_a_sample_added_twice_in_one_process_warns(tmp_path):
    ann_file, gt_kpts = write_gt(tmp_path / "gt.json", COCO17)
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    preds = torch.as_tensor(predictions_from_gt(gt_kpts))
    update(metric, [0, 1], IMAGE_IDS[:2], preds[:2])
    with pytest.warns(UserWarning, match=r"sample ids \[1\] were already added"):
        update(metric, [1, 2], IMAGE_IDS[1:], preds[1:])
    metric.reset()
    update(metric, [0, 1], IMAGE_IDS[:2], preds[:2])  # a new epoch starts clean
