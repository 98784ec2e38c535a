"""CrowdPose keypoint AP as the official crowdposetools define it, computed with pycocotools.

What crowdposetools (``cocoeval.py``) do differently from COCO, each reproduced here:

* the OKS scale of a person is 0.53 x the area of its ground-truth box (the CrowdPose files have
  no ``area``), also in the area test of the matching;
* the summary has no area ranges: AP, AP50, AP75 and AR, AR50, AR75 over all people, at most 20
  detections per image;
* AP(easy), AP(medium), AP(hard): the images are split by their ``crowdIndex`` (< 0.2, < 0.8, the
  rest, the thresholds the summary passes), each split is evaluated alone, and its AP is the plain
  mean of the precision array over IoU thresholds and recall thresholds (a split without people
  gives -1, as in the official code, which does not filter the -1 entries there);
* the CrowdPose OKS sigmas (`src.layouts.CROWDPOSE14`).

Giving pycocotools a copy of the ground truth whose ``area`` is 0.53 w h makes its OKS and its
matching those of crowdposetools; the summary and the crowd-index splits are computed here from
its precision and recall arrays. No torch here.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from src.metrics.coco_eval import check_results

STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
#: Crowd-index thresholds of the official summary: easy < 0.2 <= medium < 0.8 <= hard.
CROWD_INDEX_SPLITS = (0.2, 0.8)
#: The OKS scale of a person: this times its box area.
OKS_AREA_FACTOR = 0.53


def crowdpose_gt(coco_gt: COCO) -> COCO:
    """A copy of the ground truth whose ``area`` is the official OKS scale, 0.53 w h of the box."""
    dataset = copy.deepcopy(coco_gt.dataset)
    for ann in dataset.get("annotations", []):
        if "bbox" not in ann or len(ann["bbox"]) != 4:
            raise ValueError(f"CrowdPose ground-truth annotation id={ann.get('id')} has no [x, y, w, h] bbox")
        ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3]) * OKS_AREA_FACTOR
    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def crowd_index_splits(coco_gt: COCO) -> dict[str, list[int]]:
    """Image ids of the easy, medium and hard splits by each image's ``crowdIndex``."""
    first, second = CROWD_INDEX_SPLITS
    splits: dict[str, list[int]] = {"easy": [], "medium": [], "hard": []}
    for image in coco_gt.dataset.get("images", []):
        if "crowdIndex" not in image:
            raise ValueError(f"image id={image.get('id')} has no crowdIndex: not a CrowdPose annotation file")
        index = float(image["crowdIndex"])
        name = "easy" if index < first else "medium" if index < second else "hard"
        splits[name].append(int(image["id"]))
    return splits


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def crowdpose_keypoint_eval(
    coco_gt: COCO, results: Sequence[dict], sigmas: Sequence[float]
) -> tuple[dict[str, float], str]:
    """The 9 CrowdPose stats of COCO keypoint results, and a summary text."""
    check_results(coco_gt, results, len(sigmas))
    gt = crowdpose_gt(coco_gt)
    splits = crowd_index_splits(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(list(results)))  # loadRes adds fields in place
        evaluator = COCOeval(gt, dt, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.params.maxDets = [20]
        evaluator.evaluate()
        evaluator.accumulate()
    thresholds = evaluator.params.iouThrs
    at50, at75 = (np.flatnonzero(np.abs(thresholds - t) < 0.01) for t in (0.5, 0.75))
    precision = evaluator.eval["precision"][:, :, :, 0, 0]  # [T, R, K] over all areas, 20 detections
    recall = evaluator.eval["recall"][:, :, 0, 0]  # [T, K]
    stats = {
        "AP": _mean_valid(precision),
        "AP50": _mean_valid(precision[at50]),
        "AP75": _mean_valid(precision[at75]),
        "AR": _mean_valid(recall),
        "AR50": _mean_valid(recall[at50]),
        "AR75": _mean_valid(recall[at75]),
    }
    for name, image_ids in splits.items():
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.params.imgIds = image_ids
            evaluator.evaluate()
            evaluator.accumulate()
        stats[f"AP_{name}"] = float(np.mean(evaluator.eval["precision"][:, :, :, 0, :]))
    lines = [f" {name:<10} = {stats[name]:.3f}" for name in STAT_NAMES]
    counts = ", ".join(f"{name} {len(ids)}" for name, ids in splits.items())
    summary = "CrowdPose keypoint AP (crowdposetools definition; images " + counts + ")\n" + "\n".join(lines) + "\n"
    return stats, summary
