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
from collections.abc import Mapping, Sequence
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


def load_coco_gt(ann_file: str | os.PathLike, keypoint_fields: Mapping[str, int] | None = None) -> COCO:
    """Load a COCO annotation file with pycocotools, silently; clear error when it is missing.

    ``keypoint_fields`` (annotation key -> joint count, in order; e.g. COCO-WholeBody's body, foot,
    face and hands) assemble each annotation's ``keypoints`` from those keys, as the readers do,
    with ``num_keypoints`` counted over all of them."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO keypoint annotation file not found: {path}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    fill_missing_areas(coco, path)
    if keypoint_fields and list(keypoint_fields) != ["keypoints"]:
        assemble_keypoints(coco, path, keypoint_fields)
    return coco


def assemble_keypoints(coco: COCO, path: Path, fields: Mapping[str, int]) -> None:
    """Give every annotation of a keypoint category the concatenation of ``fields`` as its
    ``keypoints`` and the count of labelled ones (v > 0) as its ``num_keypoints``."""
    keypoint_cats = {c["id"] for c in coco.dataset.get("categories", []) if "keypoints" in c}
    for ann in coco.anns.values():
        if keypoint_cats and ann.get("category_id") not in keypoint_cats:
            continue
        joints: list = []
        for field, count in fields.items():
            values = ann.get(field)
            if not isinstance(values, list) or len(values) != 3 * count:
                got = f"{len(values)} values" if isinstance(values, list) else "no such key"
                raise ValueError(
                    f"{path}: annotation id={ann.get('id')} has '{field}' with {got}, expected {3 * count} numbers"
                )
            joints.extend(values)
        ann["keypoints"] = joints
        ann["num_keypoints"] = int(np.count_nonzero(np.asarray(joints[2::3], dtype=np.float64) > 0))


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
    use_categories: bool = True,
    per_category: bool = False,
    result_areas: Sequence[float] | None = None,
) -> tuple[dict[str, float], str]:
    """Run pycocotools COCOeval('keypoints') quietly; return the 10 stats and the printed summary.

    Args:
        coco_gt: a pycocotools COCO object or the path of an annotation file.
        results: COCO result dicts {image_id, category_id, keypoints: flat K*3 list, score}; not modified.
        sigmas: K per-keypoint OKS sigmas (set as params.kpt_oks_sigmas, so any layout works).
        img_ids: evaluate only these images (default: every ground-truth image, as the official code).
        use_categories: On (COCOeval's useCats, COCO's and AP-10K's evaluation), a prediction is
            matched only to ground truth of its ``category_id`` and AP is the mean of the
            per-category APs; off, categories are ignored and AP is over all instances together.
        per_category: add ``AP/<category name>`` and ``AR/<category name>`` for every category
            with ground truth (with ``use_categories``).
        result_areas: the area of each result for the area ranges of unmatched predictions
            (default: pycocotools' area of the result's keypoint extent).

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
    if not use_categories:
        coco_gt, results = one_category(coco_gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))  # loadRes adds fields in place
        if result_areas is not None:  # loadRes numbers the results 1..N in order
            for ann, area in zip(coco_dt.dataset["annotations"], result_areas):
                ann["area"] = float(area)
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
    if per_category and use_categories:
        stats.update(category_stats(coco_eval, coco_gt))
    return stats, summary.getvalue()


def one_category(coco_gt: COCO, results: Sequence[dict]) -> tuple[COCO, list[dict]]:
    """Copies of the ground truth and the results with every category id replaced by the first
    category's: AP over all instances together. (COCOeval's useCats=0 would be the direct way, but
    pycocotools' keypoint OKS looks people up by category and then finds none.)"""
    category = min(coco_gt.getCatIds()) if coco_gt.getCatIds() else PERSON_CATEGORY_ID
    dataset = dict(coco_gt.dataset)
    dataset["annotations"] = [{**ann, "category_id": category} for ann in coco_gt.dataset.get("annotations", [])]
    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, [{**r, "category_id": category} for r in results]


def category_stats(coco_eval: COCOeval, coco_gt: COCO) -> dict[str, float]:
    """``AP/<name>`` and ``AR/<name>`` of every category with ground truth: the summary's AP and AR
    (all areas, 20 detections) restricted to that category's slice of the accumulated arrays."""
    precision = coco_eval.eval["precision"]  # (T, R, categories, areas, max dets)
    recall = coco_eval.eval["recall"]  # (T, categories, areas, max dets)
    with_gt = {ann["category_id"] for ann in coco_gt.anns.values()}
    stats = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        if cat_id not in with_gt:
            continue
        name = category_key(coco_gt.cats.get(cat_id, {}).get("name", str(cat_id)))
        for stat, values in (("AP", precision[:, :, k, 0, -1]), ("AR", recall[:, k, 0, -1])):
            valid = values[values > -1]
            stats[f"{stat}/{name}"] = float(valid.mean()) if valid.size else -1.0
    return stats


def category_key(name: str) -> str:
    """A category name as a metric key: spaces and slashes become underscores ("argali sheep" -> "argali_sheep")."""
    return "_".join(str(name).replace("/", " ").split())


def evaluate_coco_keypoints(
    coco_gt: COCO | str | os.PathLike,
    results: Sequence[dict],
    sigmas: Sequence[float],
    **options: Any,
) -> dict[str, float]:
    """The 10 COCO keypoint stats of a result list (see `coco_keypoint_eval` for the options)."""
    return coco_keypoint_eval(coco_gt, results, sigmas, **options)[0]


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
    image_ids: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    *,
    category_ids: np.ndarray | int = PERSON_CATEGORY_ID,
) -> list[dict]:
    """COCO result dicts from (N,) image ids, (N, K, 3) keypoints [x, y, score], (N,) scores and
    (N,) category ids (or one for all)."""
    categories = np.broadcast_to(np.asarray(category_ids, dtype=np.int64), (len(image_ids),))
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": np.asarray(kpts, dtype=np.float64).reshape(-1).tolist(),
            "score": float(score),
        }
        for image_id, category_id, kpts, score in zip(image_ids, categories, keypoints, scores)
    ]
