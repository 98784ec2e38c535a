"""COCO keypoint AP of a layout and of its parts (COCO-WholeBody's body, foot, face and hands),
as COCO-WholeBody's evaluator defines it, computed with pycocotools. No torch here.

The official evaluator (xtcocotools' COCOeval with the iouTypes ``keypoints_body``, ``_foot``,
``_face``, ``_lefthand``, ``_righthand`` and ``_wholebody``, run by mmpose's
``CocoWholeBodyMetric`` and by COCO-WholeBody's ``evaluation_wholebody.py``) scores each part as
its own COCO keypoint evaluation. For a part (and for the whole layout, a part of all joints):

* ground truth: the part's joints. A person with no labelled joint (v > 0) in the part is ignored
  there: not counted in recall, and a prediction matched to it is neither right nor wrong
  (pycocotools' ``num_keypoints == 0`` rule, with ``num_keypoints`` counted over the part);
* OKS: the part's sigmas, scaled by the area of the whole person (``area``, use_area), also in
  the area ranges of medium and large people;
* predictions: the part's joints, ranked by the instance's one score (mmpose writes no part
  scores, so xtcocotools uses ``score`` for every part). A prediction none of whose part joints
  has a score above 0 is left out of that part;
* the area of a prediction (which decides whether an unmatched one is ignored in a size range) is
  the extent of its joints in the annotation's ``keypoints`` field (COCO-WholeBody: the body),
  whatever the part: xtcocotools' ``loadRes`` computes it from that field.

Everything else is pycocotools' COCOeval: 10 OKS thresholds, 20 detections per image, the greedy
matching and the 101-point precision. Where the two libraries differ (xtcocotools releases
differ among themselves in whether an unmatched prediction outside a size range is ignored when
matches are initialised to -1), this follows pycocotools; AP, AP50, AP75, AR, AR50 and AR75 are
not affected by it, only the per-size figures can be.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO

from src.metrics.coco_eval import STAT_NAMES, coco_keypoint_eval, zero_stats

#: The name of the evaluation over every joint of the layout (its stats carry no prefix).
WHOLE = "whole"


def part_ground_truth(coco_gt: COCO, joints: Sequence[int]) -> COCO:
    """A copy of the ground truth whose annotations hold only ``joints`` (in that order), with
    ``num_keypoints`` counted over them (so that people without a labelled one are ignored)."""
    index = np.asarray(joints, dtype=np.int64)
    annotations = []
    for ann in coco_gt.dataset.get("annotations", []):
        copy = dict(ann)
        if "keypoints" in ann:
            kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)[index]
            copy["keypoints"] = kpts.reshape(-1).tolist()
            copy["num_keypoints"] = int(np.count_nonzero(kpts[:, 2] > 0))
        annotations.append(copy)
    gt = COCO()
    gt.dataset = {**coco_gt.dataset, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def extent_areas(results: Sequence[dict], joints: Sequence[int]) -> np.ndarray:
    """(N,) area of the box spanned by ``joints`` of each result (pycocotools' keypoint result area)."""
    if not results:
        return np.zeros(0, dtype=np.float64)
    xy = np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), -1, 3)
    xy = xy[:, np.asarray(joints, dtype=np.int64), :2]
    extent = xy.max(axis=1) - xy.min(axis=1)
    return extent[:, 0] * extent[:, 1]


def part_results(results: Sequence[dict], joints: Sequence[int], areas: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """The results restricted to ``joints``, without those whose part scores are all <= 0, and
    their ``areas``."""
    index = np.asarray(joints, dtype=np.int64)
    kept, kept_areas = [], []
    for result, area in zip(results, areas):
        kpts = np.asarray(result["keypoints"], dtype=np.float64).reshape(-1, 3)[index]
        if not (kpts[:, 2] > 0).any():
            continue
        kept.append({**result, "keypoints": kpts.reshape(-1).tolist()})
        kept_areas.append(area)
    return kept, np.asarray(kept_areas, dtype=np.float64)


def part_keypoint_eval(
    coco_gt: COCO,
    results: Sequence[dict],
    sigmas: Sequence[float],
    *,
    parts: Sequence[tuple[str, Sequence[int]]],
    area_joints: Sequence[int] | None = None,
    part_means: Mapping[str, Sequence[str]] | None = None,
    use_categories: bool = True,
) -> tuple[dict[str, float], str]:
    """COCO keypoint stats over all joints and per part (see the module docstring).

    Args:
        coco_gt: ground truth whose annotations hold all K joints in ``keypoints`` (assembled by
            `load_coco_gt` with the dataset's keypoint fields).
        results: COCO result dicts with K joints and one ``score`` each; not modified.
        sigmas: K OKS sigmas; each part uses its slice.
        parts: (name, joint indices) of each part, e.g. the layout's ``parts``.
        area_joints: the joints whose extent is a prediction's area (default: all K).
        part_means: extra names for the mean of some parts' stats, e.g. ``{"hand": ["lefthand",
            "righthand"]}`` (the "Hand" column of COCO-WholeBody's tables).
        use_categories: COCOeval's useCats (see `coco_keypoint_eval`).

    Returns:
        ({"AP", ..., "ARL"} over all joints, "<part>/AP", ..., "<part>/ARL" per part and mean;
        the summary texts of every evaluation, each under its name).
    """
    k = len(sigmas)
    area_joints = range(k) if area_joints is None else area_joints
    areas = extent_areas(results, area_joints)
    stats: dict[str, float] = {}
    summaries = []
    for name, joints in ((WHOLE, range(k)), *parts):
        joints = list(joints)
        kept, kept_areas = part_results(results, joints, areas)
        if kept:
            part_stats, summary = coco_keypoint_eval(
                part_ground_truth(coco_gt, joints),
                kept,
                [sigmas[j] for j in joints],
                use_categories=use_categories,
                result_areas=kept_areas,
            )
        else:
            part_stats, summary = zero_stats(), "no predictions with a joint of this part scored above 0\n"
        prefix = "" if name == WHOLE else f"{name}/"
        stats.update({f"{prefix}{stat}": value for stat, value in part_stats.items()})
        summaries.append(f"[{name}]\n{summary}")
    for name, members in (part_means or {}).items():
        missing = [m for m in members if f"{m}/AP" not in stats]
        if missing:
            raise ValueError(f"part_means: {name!r} averages {missing}, which are not parts of the layout")
        for stat in STAT_NAMES:
            stats[f"{name}/{stat}"] = float(np.mean([stats[f"{m}/{stat}"] for m in members]))
    return stats, "".join(summaries)


def part_stat_names(parts: Sequence[tuple[str, Sequence[int]]], part_means: Mapping | None = None) -> tuple[str, ...]:
    """The keys `part_keypoint_eval` returns, in order."""
    names = [name for name, _ in parts] + list(part_means or {})
    return (*STAT_NAMES, *(f"{name}/{stat}" for name in names for stat in STAT_NAMES))
