"""COCOKeypointMetric / evaluate_coco_keypoints on tiny hand-made COCO files."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchmetrics.utilities import dim_zero_cat

from src.layouts import COCO17, MPII16, KeypointInfo
from src.metrics.coco_eval import load_coco_gt
from src.metrics.coco_metric import (
    _STATE_NAMES,
    STAT_NAMES,
    COCOKeypointMetric,
    evaluate_coco_keypoints,
    write_results_json,
)

# (image_id, top-left x, y, width, height) of the non-crowd persons: one medium, two large.
PERSONS = ((1, 40.0, 30.0, 50.0, 100.0), (1, 250.0, 60.0, 120.0, 200.0), (2, 100.0, 50.0, 150.0, 220.0))
CROWD_BOX = (420.0, 300.0, 150.0, 120.0)  # on image 2, far from the person there


def _person_keypoints(info: KeypointInfo, box: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """(K, 3) [x, y, v] inside the box; the last keypoint is unlabelled (v = 0, at 0, 0)."""
    x, y, w, h = box
    kpts = np.zeros((info.num_keypoints, 3))
    kpts[:, 0] = np.round(rng.uniform(x, x + w, info.num_keypoints), 2)
    kpts[:, 1] = np.round(rng.uniform(y, y + h, info.num_keypoints), 2)
    kpts[:, 2] = 2
    kpts[-1] = 0
    return kpts


def write_gt(path: Path, info: KeypointInfo) -> tuple[Path, np.ndarray]:
    """A 2-image COCO keypoint file with 3 persons and one crowd region; returns it and (3, K, 3) GT keypoints."""
    rng = np.random.default_rng(0)
    gt_kpts = np.stack([_person_keypoints(info, p[1:], rng) for p in PERSONS])
    anns = [
        {
            "id": i + 1,
            "image_id": image_id,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [x, y, w, h],
            "area": w * h * 0.6,
            "num_keypoints": int((gt_kpts[i, :, 2] > 0).sum()),
            "keypoints": gt_kpts[i].reshape(-1).tolist(),
        }
        for i, (image_id, x, y, w, h) in enumerate(PERSONS)
    ]
    anns.append(
        {
            "id": 99,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": list(CROWD_BOX),
            "area": CROWD_BOX[2] * CROWD_BOX[3],
            "num_keypoints": 0,
            "keypoints": [0] * (3 * info.num_keypoints),
            "segmentation": {"counts": [0], "size": [480, 640]},
        }
    )
    dataset = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in (1, 2)],
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(info.keypoint_names),
                "skeleton": [],
            }
        ],
    }
    path.write_text(json.dumps(dataset))
    return path, gt_kpts


def predictions_from_gt(gt_kpts: np.ndarray, joint_score: float = 0.9) -> np.ndarray:
    """(N, K, 3) predictions [x, y, score]: GT positions, score joint_score (0.1 for unlabelled joints)."""
    pred = gt_kpts.copy()
    pred[..., 2] = np.where(gt_kpts[..., 2] > 0, joint_score, 0.1)
    return pred


def update(metric: COCOKeypointMetric, sample_ids, image_ids, kpts, areas=None, box_scores=None) -> None:
    n = len(sample_ids)
    metric.add_instances(
        torch.tensor(sample_ids),
        torch.tensor(image_ids),
        torch.as_tensor(kpts, dtype=torch.float32),
        torch.as_tensor(areas if areas is not None else np.full(n, 20000.0)),
        torch.as_tensor(box_scores if box_scores is not None else np.ones(n)),
    )


def direct_cocoeval(ann_file: Path, results: list[dict], sigmas) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(ann_file))
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = np.array(sigmas)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


IMAGE_IDS = [p[0] for p in PERSONS]


@pytest.fixture
def coco17_gt(tmp_path: Path) -> tuple[Path, np.ndarray]:
    return write_gt(tmp_path / "gt.json", COCO17)


def test_predictions_equal_to_gt_give_perfect_scores(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1], IMAGE_IDS[:2], predictions_from_gt(gt_kpts[:2]), box_scores=[0.8, 0.8])
    update(metric, [2], IMAGE_IDS[2:], predictions_from_gt(gt_kpts[2:]), box_scores=[0.8])
    # A detection inside the crowd region on image 2 is ignored, not a false positive.
    in_crowd = predictions_from_gt(gt_kpts[2:])
    in_crowd[..., 0] = CROWD_BOX[0] + 60
    in_crowd[..., 1] = CROWD_BOX[1] + 50
    update(metric, [3], [2], in_crowd, box_scores=[1.0])  # ranked first: would cost AP if it counted
    stats = metric.compute()
    assert list(stats) == list(STAT_NAMES)
    assert all(isinstance(v, float) for v in stats.values())
    assert stats == pytest.approx({name: 1.0 for name in STAT_NAMES})
    assert "Average Precision" in metric.summary_text
    assert len(metric.last_results) == 4


def _perturbed_case(gt_kpts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 instances (3 noisy persons + 1 false positive on image 2): keypoints, image ids, box scores."""
    rng = np.random.default_rng(1)
    pred = predictions_from_gt(gt_kpts)
    pred[..., :2] += rng.normal(0.0, 4.0, pred[..., :2].shape)
    pred[..., 2] = rng.uniform(0.05, 1.0, pred[..., 2].shape)
    false_pos = pred[2:3].copy()
    false_pos[..., 0] += 300.0
    keypoints = np.concatenate([pred, false_pos])
    return keypoints, np.array(IMAGE_IDS + [2]), np.array([0.9, 0.8, 0.7, 0.95])


def _expected_results(keypoints, image_ids, box_scores, in_vis_thr=0.2) -> list[dict]:
    """Result dicts written out with the official rescoring loop (no NMS needed: persons are far apart)."""
    results = []
    for kpts, image_id, box_score in zip(keypoints, image_ids, box_scores):
        confident = [float(s) for s in kpts[:, 2].astype(np.float32) if s > in_vis_thr]
        kpt_score = sum(confident) / len(confident) if confident else 0.0
        results.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "keypoints": kpts.astype(np.float32).reshape(-1).tolist(),
                "score": kpt_score * float(np.float32(box_score)),
            }
        )
    return results


def official_order(results: list[dict]) -> list[dict]:
    """Results per image in the official NMS order, ``np.argsort(scores)[::-1]`` (ties reversed):
    COCOeval matches detections of equal score in list order, so the order decides AP."""
    ordered = []
    for image_id in sorted({r["image_id"] for r in results}):
        mine = [r for r in results if r["image_id"] == image_id]
        ordered.extend(mine[i] for i in np.argsort(np.array([r["score"] for r in mine], np.float64))[::-1])
    return ordered


def test_perturbed_predictions_match_direct_pycocotools(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    keypoints, image_ids, box_scores = _perturbed_case(gt_kpts)
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1, 2, 3], image_ids, keypoints, box_scores=box_scores)
    stats = metric.compute()
    expected = direct_cocoeval(ann_file, _expected_results(keypoints, image_ids, box_scores), COCO17.sigmas)
    assert 0.0 < stats["AP"] < 1.0
    np.testing.assert_allclose([stats[name] for name in STAT_NAMES], expected, rtol=1e-6, atol=1e-6)
    # The reusable core gives the same numbers on the metric's own result list.
    assert evaluate_coco_keypoints(str(ann_file), metric.last_results, COCO17.sigmas) == pytest.approx(stats)


def test_padding_duplicates_are_dropped(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    keypoints, image_ids, box_scores = _perturbed_case(gt_kpts)
    plain = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(plain, [0, 1, 2, 3], image_ids, keypoints, box_scores=box_scores)
    padded = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(padded, [0, 1], image_ids[:2], keypoints[:2], box_scores=box_scores[:2])
    update(padded, [2, 3], image_ids[2:], keypoints[2:], box_scores=box_scores[2:])
    # Another "rank" evaluated samples 0 and 1 again (padding); its copies must not count. Added
    # by hand in this one process, they also raise a warning.
    with pytest.warns(UserWarning, match=r"sample ids \[0, 1\] were already added"):
        update(padded, [0, 1], image_ids[:2], keypoints[:2] + 5.0, box_scores=box_scores[:2])
    assert padded.compute() == plain.compute()
    assert padded.last_results == plain.last_results


def test_several_instances_per_sample_are_kept(coco17_gt) -> None:
    """Bottom-up style: one sample (image) gives several instances; only a repeated sample is dropped."""
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas, rescore=False, use_nms=False)
    preds = predictions_from_gt(gt_kpts)
    update(metric, [10, 10], [1, 1], preds[:2], box_scores=[0.9, 0.8])
    update(metric, [11], [2], preds[2:], box_scores=[0.7])
    with pytest.warns(UserWarning, match="already added"):
        update(metric, [10, 10], [1, 1], preds[:2], box_scores=[0.9, 0.8])  # padding repeat
    assert metric.compute()["AP"] == pytest.approx(1.0)
    assert [r["score"] for r in metric.last_results] == pytest.approx([0.9, 0.8, 0.7])


def test_nms_removes_shifted_duplicate(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    preds = predictions_from_gt(gt_kpts)
    duplicate = preds[1:2].copy()
    duplicate[..., :2] += 1.5
    for use_nms, expected_count in ((True, 3), (False, 4)):
        metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas, use_nms=use_nms)
        update(
            metric, [0, 1, 2, 3], IMAGE_IDS + [1], np.concatenate([preds, duplicate]), box_scores=[1.0, 1.0, 1.0, 0.5]
        )
        stats = metric.compute()
        assert len(metric.last_results) == expected_count
        assert stats["AP"] == pytest.approx(1.0)
    kept = [r for r in metric.last_results if r["image_id"] == 1]
    assert len(kept) == 3  # without NMS the duplicate stays


def test_mpii_like_16_keypoints(tmp_path: Path) -> None:
    ann_file, gt_kpts = write_gt(tmp_path / "mpii.json", MPII16)
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=MPII16.sigmas)
    update(metric, [0, 1, 2], IMAGE_IDS, predictions_from_gt(gt_kpts))
    assert metric.compute() == pytest.approx({name: 1.0 for name in STAT_NAMES})
    noisy = predictions_from_gt(gt_kpts)
    noisy[..., :2] += np.random.default_rng(2).normal(0.0, 5.0, noisy[..., :2].shape)
    metric.reset()
    update(metric, [0, 1, 2], IMAGE_IDS, noisy)
    stats = metric.compute()
    results = official_order(_expected_results(noisy, IMAGE_IDS, np.ones(3)))  # image 1: two tied people
    expected = direct_cocoeval(ann_file, results, MPII16.sigmas)
    assert stats["AP"] < 1.0
    np.testing.assert_allclose([stats[name] for name in STAT_NAMES], expected, rtol=1e-6, atol=1e-6)


def test_mismatched_keypoint_counts_raise(coco17_gt, tmp_path: Path) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    with pytest.raises(ValueError, match="K=16"):
        update(metric, [0], [1], predictions_from_gt(gt_kpts[:1])[:, :16])
    mpii_metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=MPII16.sigmas)
    update(mpii_metric, [0], [1], predictions_from_gt(gt_kpts[:1])[:, :16])
    with pytest.raises(ValueError, match="ground truth has 17 keypoints but 16"):
        mpii_metric.compute()


def test_gt_without_area_takes_the_box_area(coco17_gt, tmp_path: Path) -> None:
    """Custom datasets may leave ``area`` out: the box area stands in, with a warning naming the file;
    an annotation without a box either is a clear error."""
    ann_file, gt_kpts = coco17_gt
    dataset = json.loads(ann_file.read_text())
    del dataset["annotations"][0]["area"]
    broken = tmp_path / "no_area.json"
    broken.write_text(json.dumps(dataset))
    with pytest.warns(UserWarning, match=r"no_area.json: 1 annotations have no 'area'; their box area"):
        coco = load_coco_gt(broken)
    x, y, w, h = dataset["annotations"][0]["bbox"]
    assert coco.anns[dataset["annotations"][0]["id"]]["area"] == pytest.approx(w * h)
    del dataset["annotations"][0]["bbox"]
    broken.write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match="area"):
        evaluate_coco_keypoints(broken, [], COCO17.sigmas)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_no_predictions_give_zeros_with_warning(coco17_gt) -> None:
    ann_file, _ = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    with pytest.warns(UserWarning, match="without predictions"):
        stats = metric.compute()
    assert stats == {name: 0.0 for name in STAT_NAMES}
    with pytest.warns(UserWarning, match="no predictions"):
        assert evaluate_coco_keypoints(ann_file, [], COCO17.sigmas) == stats


def test_unknown_image_id_is_a_clear_error(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0], [7], predictions_from_gt(gt_kpts[:1]))
    with pytest.raises(ValueError, match="image ids absent"):
        metric.compute()


def test_write_results_json(tmp_path: Path, coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1, 2], IMAGE_IDS, predictions_from_gt(gt_kpts))
    metric.compute()
    out = write_results_json(metric.last_results, tmp_path / "out" / "results.json")
    assert json.loads(out.read_text()) == metric.last_results
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]


# Samples 0..2 split like DistributedSampler(shuffle=False) over 2 ranks with padding to 4:
# rank 0 gets positions 0, 2 (samples 0, 2) and rank 1 positions 1, 3 (samples 1, 0). The padded
# copy (position 3) is shifted so that keeping it instead of the original would change the result.
DDP_ORDER = (0, 1, 2, 0)


def _update_rank(metric: COCOKeypointMetric, rank: int, gt_kpts: np.ndarray) -> None:
    keypoints, image_ids, box_scores = _perturbed_case(gt_kpts)
    for position in range(rank, len(DDP_ORDER), 2):
        sample = DDP_ORDER[position]
        shift = 5.0 if position >= 3 else 0.0
        update(metric, [sample], image_ids[[sample]], keypoints[[sample]] + shift, box_scores=box_scores[[sample]])


def _single_process_stats(ann_file: Path, gt_kpts: np.ndarray) -> dict[str, float]:
    keypoints, image_ids, box_scores = _perturbed_case(gt_kpts)
    single = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(single, [0, 1, 2], image_ids[:3], keypoints[:3], box_scores=box_scores[:3])
    return single.compute()


def test_simulated_ddp_sync_with_padding(coco17_gt) -> None:
    """torchmetrics' own sync path, with a gather function that plays a second rank in-process."""
    ann_file, gt_kpts = coco17_gt
    peer = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    _update_rank(peer, 1, gt_kpts)
    peer_states = [dim_zero_cat(getattr(peer, name)) for name in _STATE_NAMES]  # sync gathers in state order
    calls = []

    def gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        calls.append(tensor)
        return [tensor, peer_states[len(calls) - 1]]

    rank0 = COCOKeypointMetric(
        ann_file=str(ann_file), sigmas=COCO17.sigmas, dist_sync_fn=gather, distributed_available_fn=lambda: True
    )
    _update_rank(rank0, 0, gt_kpts)
    assert rank0.compute() == pytest.approx(_single_process_stats(ann_file, gt_kpts))
    assert len(calls) == len(_STATE_NAMES)
    assert [len(r) for r in (rank0.sample_ids, peer.sample_ids)] == [2, 2]  # local states restored after sync


def _ddp_worker(rank: int, world_size: int, tmp_dir: str, ann_file: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_dir}/rendezvous", rank=rank, world_size=world_size
    )
    try:
        metric = COCOKeypointMetric(ann_file=ann_file, sigmas=COCO17.sigmas)
        _update_rank(metric, rank, np.load(f"{tmp_dir}/gt_kpts.npy"))
        Path(f"{tmp_dir}/rank{rank}.json").write_text(json.dumps(metric.compute()))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(
    os.environ.get("RUN_DDP_TESTS") != "1" or not torch.distributed.is_available(),
    reason="real 2-process gloo test (10-20 s: each process imports torch); set RUN_DDP_TESTS=1",
)
def test_real_ddp_gather_with_padding(coco17_gt, tmp_path: Path) -> None:
    ann_file, gt_kpts = coco17_gt
    np.save(tmp_path / "gt_kpts.npy", gt_kpts)
    # spawn, not fork: forking after torch's thread pools have started can deadlock the children
    torch.multiprocessing.spawn(_ddp_worker, args=(2, str(tmp_path), str(ann_file)), nprocs=2, join=True)
    expected = _single_process_stats(ann_file, gt_kpts)
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == pytest.approx(expected)


def test_img_ids_restrict_the_evaluation(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1], IMAGE_IDS[:2], predictions_from_gt(gt_kpts[:2]))
    assert metric.compute()["AR"] == pytest.approx(2 / 3)  # the person on image 2 is missed
    assert evaluate_coco_keypoints(ann_file, metric.last_results, COCO17.sigmas, img_ids=[1])["AR"] == 1.0


def test_metric_survives_deepcopy_and_pickle_with_cached_gt(coco17_gt) -> None:
    ann_file, gt_kpts = coco17_gt
    metric = COCOKeypointMetric(ann_file=str(ann_file), sigmas=COCO17.sigmas)
    update(metric, [0, 1, 2], IMAGE_IDS, predictions_from_gt(gt_kpts))
    stats = metric.compute()
    for clone in (copy.deepcopy(metric), pickle.loads(pickle.dumps(metric))):
        clone.reset()
        update(clone, [0, 1, 2], IMAGE_IDS, predictions_from_gt(gt_kpts))
        assert clone.compute() == stats
