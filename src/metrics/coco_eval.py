"""COCO keypoint evaluation core: ground-truth checks, result dicts, per-image OKS-NMS, COCOeval.

Dimension letters: N instances, K keypoints. No torch here: usable from any model or script
(top-down through `COCOKeypointMetric`, bottom-up results directly via `evaluate_coco_keypoints`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from src.metrics.oks import oks_nms, soft_oks_nms

STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
PERSON_CATEGORY_ID = 1
NO_PREDICTIONS_TEXT = "no predictions: all COCO keypoint stats set to 0\n"


# --------------------------------------------------------------------------- ground truth


def load_coco_gt(ann_file: str | os.PathLike) -> COCO:
    """Load a COCO annotation file with pycocotools, silently; clear error when it is missing."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO keypoint annotation file not found: {path}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    fill_missing_areas(coco, path)
    return coco


def fill_missing_areas(coco: COCO, path: Path) -> None:
    """Give annotations without ``area`` their box's area (w h), with one warning naming the file:
    COCOeval scales OKS by the area; COCO's own areas are those of the segmentation, smaller than
    the box's, so OKS computed with box areas is more lenient than COCO's."""
    filled = 0
    for ann in coco.anns.values():
        if "area" not in ann and len(ann.get("bbox") or ()) == 4:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
            filled += 1
    if filled:
        warnings.warn(
            f"{path}: {filled} annotations have no 'area'; their box area (w h) scales OKS instead "
            "(COCO's areas are segmentation areas, smaller than boxes, so this OKS is more lenient)",
            stacklevel=3,
        )


def gt_num_keypoints(coco_gt: COCO) -> int | None:
    """K of the ground truth: from the first annotation, else from the first category; None if unknown."""
    for ann in coco_gt.anns.values():
        if "keypoints" in ann:
            return len(ann["keypoints"]) // 3
    for cat in coco_gt.dataset.get("categories", []):
        if "keypoints" in cat:
            return len(cat["keypoints"])
    return None


def _check_gt(coco_gt: COCO, num_sigmas: int) -> None:
    """Fail early, with the reason, on ground truth that COCOeval('keypoints') cannot use."""
    if "categories" not in coco_gt.dataset:
        raise ValueError("COCO ground truth has no 'categories' list (pycocotools needs it)")
    for ann in coco_gt.anns.values():
        missing = [key for key in ("keypoints", "num_keypoints", "area") if key not in ann]
        if missing:
            raise ValueError(
                f"COCO ground-truth annotation id={ann.get('id')} lacks {missing}; keypoint evaluation needs "
                "'keypoints', 'num_keypoints' and 'area' on every annotation"
            )
    num_gt = gt_num_keypoints(coco_gt)
    if num_gt is not None and num_gt != num_sigmas:
        raise ValueError(f"ground truth has {num_gt} keypoints but {num_sigmas} OKS sigmas were given")


# --------------------------------------------------------------------------- evaluation core


def zero_stats() -> dict[str, float]:
    """All 10 stats set to 0.0 (what an evaluation without predictions reports)."""
    return {name: 0.0 for name in STAT_NAMES}


def check_results(coco_gt: COCO, results: Sequence[dict], num_sigmas: int) -> None:
    unknown = {r["image_id"] for r in results} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(f"results refer to image ids absent from the ground truth, e.g. {sorted(unknown)[:5]}")
    bad = [len(r["keypoints"]) for r in results if len(r["keypoints"]) != 3 * num_sigmas]
    if bad:
        raise ValueError(f"result keypoints must be flat K*3 = {3 * num_sigmas} lists; got length {bad[0]}")


def coco_keypoint_eval(
    coco_gt: COCO | str | os.PathLike,
    results: Sequence[dict],
    sigmas: Sequence[float],
    *,
    img_ids: Sequence[int] | None = None,
) -> tuple[dict[str, float], str]:
    """Run pycocotools COCOeval('keypoints') quietly; return the 10 stats and the printed summary.

    Args:
        coco_gt: a pycocotools COCO object or the path of an annotation file.
        results: COCO result dicts {image_id, category_id, keypoints: flat K*3 list, score}; not modified.
        sigmas: K per-keypoint OKS sigmas (set as params.kpt_oks_sigmas, so any layout works).
        img_ids: evaluate only these images (default: every ground-truth image, as the official code).

    Returns:
        ({"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"} floats (-1 where
        pycocotools has nothing to measure, e.g. no medium persons), the summary text).
        No results: all zeros and a warning.
    """
    if not isinstance(coco_gt, COCO):
        coco_gt = load_coco_gt(coco_gt)
    _check_gt(coco_gt, len(sigmas))
    if len(results) == 0:
        warnings.warn("COCO keypoint evaluation got no predictions; reporting zeros", stacklevel=2)
        return zero_stats(), NO_PREDICTIONS_TEXT
    check_results(coco_gt, results, len(sigmas))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))  # loadRes adds fields in place
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        if img_ids is not None:
            coco_eval.params.imgIds = sorted(int(i) for i in img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, coco_eval.stats)}
    return stats, summary.getvalue()


def evaluate_coco_keypoints(
    coco_gt: COCO | str | os.PathLike,
    results: Sequence[dict],
    sigmas: Sequence[float],
    *,
    img_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """The 10 COCO keypoint stats of a result list (see `coco_keypoint_eval`)."""
    return coco_keypoint_eval(coco_gt, results, sigmas, img_ids=img_ids)[0]


def write_results_json(results: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write COCO result dicts to `path` atomically (temporary file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as handle:
            json.dump(list(results), handle, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------- instance selection


def select_instances(
    image_ids: np.ndarray,
    keypoints: np.ndarray,
    areas: np.ndarray,
    scores: np.ndarray,
    *,
    sigmas: Sequence[float],
    oks_thr: float = 0.9,
    use_nms: bool = True,
    soft_nms: bool = False,
) -> np.ndarray:
    """Row indices that survive per-image OKS-NMS (all rows when use_nms is False).

    Args:
        image_ids: (N,) image id of each instance.
        keypoints: (N, K, 3) [x, y, score] in image pixels.
        areas: (N,) instance areas (official: padded box area).
        scores: (N,) instance scores used for the NMS order.

    Returns:
        (M,) int64 indices into the N rows, grouped by image (images in ascending id order).
    """
    if not use_nms:
        return np.arange(len(image_ids), dtype=np.int64)
    nms = soft_oks_nms if soft_nms else oks_nms
    kept: list[np.ndarray] = []
    for image_id in np.unique(image_ids):
        rows = np.flatnonzero(image_ids == image_id)
        keep = nms(keypoints[rows], scores[rows], areas[rows], thr=oks_thr, sigmas=sigmas)
        kept.append(rows[keep])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)


def build_coco_results(
    image_ids: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, *, category_id: int = PERSON_CATEGORY_ID
) -> list[dict]:
    """COCO result dicts from (N,) image ids, (N, K, 3) keypoints [x, y, score] and (N,) scores."""
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": np.asarray(kpts, dtype=np.float64).reshape(-1).tolist(),
            "score": float(score),
        }
        for image_id, kpts, score in zip(image_ids, keypoints, scores)
    ]
