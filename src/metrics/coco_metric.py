"""COCO keypoint AP/AR as a DDP-safe torchmetrics Metric (official HRNet lib/dataset/coco.py `evaluate`).

Dimension letters: N instances, K keypoints.

`COCOKeypointMetric.compute`: gather -> drop DDP padding duplicates -> rescore -> OKS-NMS per image ->
COCO result dicts -> pycocotools COCOeval ("keypoints", with the layout's sigmas); see `coco_eval.py`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pycocotools.coco import COCO
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from src.layouts import DEFAULT_OKS_SIGMA
from src.metrics.coco_eval import (
    NO_PREDICTIONS_TEXT,
    PERSON_CATEGORY_ID,
    STAT_NAMES,
    build_coco_results,
    coco_keypoint_eval,
    evaluate_coco_keypoints,
    load_coco_gt,
    select_instances,
    write_results_json,
)
from src.metrics.rescoring import rescore_instances

__all__ = ["STAT_NAMES", "COCOKeypointMetric", "evaluate_coco_keypoints", "write_results_json"]

_STATE_NAMES = ("sample_ids", "instance_index", "image_ids", "category_ids", "keypoints", "areas", "box_scores")
#: The category id of an instance whose category the model does not know (bottom-up people).
UNKNOWN_CATEGORY = -1


def _occurrence_index(ids: torch.Tensor) -> torch.Tensor:
    """(N,) position of each row among the rows of this call that share its id: [7, 7, 3] -> [0, 1, 0]."""
    ids_np = ids.detach().cpu().numpy()
    if ids_np.size == 0:
        return torch.zeros(0, dtype=torch.int64, device=ids.device)
    order = np.argsort(ids_np, kind="stable")
    sorted_ids = ids_np[order]
    starts = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(ids_np)), 0))
    index = np.empty(len(ids_np), dtype=np.int64)
    index[order] = np.arange(len(ids_np)) - group_start
    return torch.as_tensor(index, device=ids.device)


def first_occurrences(sample_ids: np.ndarray, instance_index: np.ndarray) -> np.ndarray:
    """Sorted row indices of the first row of every (sample id, instance index) pair."""
    if len(sample_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.stack([np.asarray(sample_ids, np.int64), np.asarray(instance_index, np.int64)], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def oks_sigmas(keypoint_info: Any) -> tuple[float, ...]:
    """The layout's OKS sigmas, or, for a layout without them, `DEFAULT_OKS_SIGMA` for every joint
    with a warning saying what that does to AP."""
    if keypoint_info.sigmas is not None:
        return tuple(keypoint_info.sigmas)
    warnings.warn(
        f"keypoint layout {keypoint_info.name!r} declares no OKS sigmas: AP uses {DEFAULT_OKS_SIGMA} for every "
        "joint (the mean of COCO's 17). Joints that annotators place more precisely than that (eyes) are "
        "scored too leniently and looser ones (hips) too strictly, so this AP ranks your own models but is "
        "not comparable to AP with measured sigmas; add `sigmas:` to the layout file",
        stacklevel=3,
    )
    return (DEFAULT_OKS_SIGMA,) * keypoint_info.num_keypoints


# --------------------------------------------------------------------------- the metric


class COCOKeypointMetric(Metric):
    """COCO keypoint AP/AR over a validation epoch, DDP-safe.

    `update(predictions, batch)` is the metric protocol of the tasks; `add_instances` takes the
    columns directly. Every call appends N instances. Rows are identified by (sample id, position among
    this call's rows with that sample id): top-down samples give one instance each, bottom-up
    samples may give several. Under DDP the padded sampler repeats samples on other ranks; after
    the gather only the first copy of each row identity is kept.

    Args:
        ann_file: COCO keypoint ground-truth JSON (loaded lazily on the first `compute`, then cached).
        keypoint_info: the keypoint layout of the predictions; its OKS sigmas are used unless
            ``sigmas`` is given (a layout without sigmas gets `DEFAULT_OKS_SIGMA` for every joint,
            with a warning: `oks_sigmas`).
        sigmas: K per-keypoint OKS sigmas (used by OKS-NMS and by COCOeval).
        rescore: instance score = mean joint score above in_vis_thr x box score (official); when False
            the given box_scores are used as the instance scores unchanged (e.g. bottom-up scores).
        in_vis_thr: joint-score threshold of the rescoring (official IN_VIS_THRE 0.2).
        use_nms: run OKS-NMS per image (official top-down); bottom-up results usually skip it.
        oks_thr: OKS-NMS threshold (official OKS_THRE 0.9).
        soft_nms: use soft OKS-NMS instead of the greedy one (official option, off by default).
        keypoint_fields: annotation key -> joint count, in order, when the ground truth's joints span
            several keys (COCO-WholeBody); see `load_coco_gt`.
        use_categories: match predictions to ground truth of their own ``category_id`` and average
            AP over the categories (COCOeval's useCats, as COCO and AP-10K evaluate); off: one AP
            over all instances, categories ignored.
        per_category: also report ``AP/<category>`` and ``AR/<category>`` (with ``use_categories``).
        **kwargs: passed to torchmetrics.Metric (e.g. dist_sync_on_step, process_group).

    Instances carry the ``category_id`` of their sample (top-down: the box's); those without one
    (bottom-up people) get the file's keypoint category, and a file with several needs
    ``use_categories=False`` for them.

    After `compute`: `summary_text` holds pycocotools' summary table and `last_results` the
    COCO result dicts that were evaluated (write them with `write_results_json`).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    #: The metric protocol: the key a trainer monitors, its direction, the task options it takes.
    monitor: ClassVar[str] = "AP"
    #: The stats `compute` returns.
    stat_names: ClassVar[tuple[str, ...]] = STAT_NAMES
    mode: ClassVar[str] = "max"
    submission_options: ClassVar[tuple[str, ...]] = ("rescore", "in_vis_thr", "use_nms", "oks_thr", "soft_nms")

    def __init__(
        self,
        *,
        ann_file: str,
        keypoint_info: Any = None,
        sigmas: Sequence[float] | None = None,
        rescore: bool = True,
        in_vis_thr: float = 0.2,
        use_nms: bool = True,
        oks_thr: float = 0.9,
        soft_nms: bool = False,
        keypoint_fields: Mapping[str, int] | None = None,
        use_categories: bool = True,
        per_category: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sigmas is None and keypoint_info is not None:
            sigmas = oks_sigmas(keypoint_info)
        if not sigmas:
            raise ValueError("sigmas must list one OKS sigma per keypoint")
        self.ann_file = str(ann_file)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.rescore = rescore
        self.in_vis_thr = in_vis_thr
        self.use_nms = use_nms
        self.oks_thr = oks_thr
        self.soft_nms = soft_nms
        self.keypoint_fields = dict(keypoint_fields) if keypoint_fields else None
        self.use_categories = bool(use_categories)
        self.per_category = bool(per_category)
        for name in _STATE_NAMES:
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self._coco_gt: COCO | None = None  # cache, not a metric state
        # sample ids added by this process (not a state: the DDP gather de-duplicates across ranks)
        self._local_sample_ids: set[int] = set()
        self.summary_text = ""
        self.last_results: list[dict] = []

    @property
    def num_keypoints(self) -> int:
        return len(self.sigmas)

    def update(self, predictions: dict, batch: dict) -> None:
        """Add the instances of one batch.

        Args:
            predictions: keypoints (N, K, 3) [x, y, score] in image pixels; optionally the
                per-instance sample_id, image_id, area and box_score (N,) when the model found
                the instances itself (bottom-up).
            batch: the dataset batch; the instance fields not in ``predictions`` come from it
                (top-down: one instance per crop). ``category_id`` is optional in both.
        """

        def field(name: str) -> Any:
            return predictions[name] if name in predictions else batch[name]

        keypoints = predictions["keypoints"]
        if "category_id" in predictions or "category_id" in batch:
            categories = field("category_id")
        else:
            categories = torch.full((len(keypoints),), UNKNOWN_CATEGORY, dtype=torch.int64)
        self.add_instances(
            sample_ids=field("sample_id"),
            image_ids=field("image_id"),
            keypoints=keypoints,
            areas=field("area"),
            box_scores=field("box_score"),
            category_ids=categories,
        )

    def add_instances(
        self,
        sample_ids: torch.Tensor,
        image_ids: torch.Tensor,
        keypoints: torch.Tensor,
        areas: torch.Tensor,
        box_scores: torch.Tensor,
        category_ids: torch.Tensor | None = None,
    ) -> None:
        """Add N instances.

        Args:
            sample_ids: (N,) int dataset sample index of each instance (for de-duplication).
            image_ids: (N,) int COCO image id.
            keypoints: (N, K, 3) [x, y, score] in original-image pixels.
            areas: (N,) instance areas for OKS-NMS (official: padded box area).
            box_scores: (N,) person box scores (or final instance scores when rescore=False).
            category_ids: (N,) COCO category id of each instance (default: unknown, see the class).
        """
        keypoints = torch.as_tensor(keypoints, device=self.device).detach()
        if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
            raise ValueError(f"keypoints must be (N, K, 3) [x, y, score], got shape {tuple(keypoints.shape)}")
        n, k = keypoints.shape[:2]
        if k != self.num_keypoints:
            raise ValueError(f"keypoints have K={k} joints but the metric has {self.num_keypoints} OKS sigmas")
        if category_ids is None:
            category_ids = torch.full((n,), UNKNOWN_CATEGORY, dtype=torch.int64)
        columns = {
            "sample_ids": sample_ids,
            "image_ids": image_ids,
            "category_ids": category_ids,
            "areas": areas,
            "box_scores": box_scores,
        }
        flat = {name: torch.as_tensor(v, device=self.device).detach().reshape(-1) for name, v in columns.items()}
        for name, value in flat.items():
            if value.numel() != n:
                raise ValueError(f"{name} has {value.numel()} entries for {n} instances")
        ids = set(flat["sample_ids"].long().tolist())
        repeated = ids & self._local_sample_ids
        if repeated:
            warnings.warn(
                f"sample ids {sorted(repeated)[:10]} were already added to this metric by an earlier call; their "
                "new rows count as copies and are dropped. Give each dataset sample its own id and add all of "
                "its instances in one call.",
                stacklevel=2,
            )
        self._local_sample_ids |= ids
        self.sample_ids.append(flat["sample_ids"].long())
        self.instance_index.append(_occurrence_index(flat["sample_ids"]))
        self.image_ids.append(flat["image_ids"].long())
        self.category_ids.append(flat["category_ids"].long())
        self.keypoints.append(keypoints.float())
        self.areas.append(flat["areas"].float())
        self.box_scores.append(flat["box_scores"].float())

    def reset(self) -> None:
        super().reset()
        self._local_sample_ids = set()

    def compute(self) -> dict[str, float]:
        """The 10 COCO keypoint stats (all zeros, with a warning, when nothing was added)."""
        data = self._gathered_arrays()
        if data is None:
            self.last_results = []
            self.summary_text = NO_PREDICTIONS_TEXT
            warnings.warn(f"{type(self).__name__}.compute() without predictions; reporting zeros", stacklevel=2)
            return {name: 0.0 for name in self.stat_names}
        rows = first_occurrences(data["sample_ids"], data["instance_index"])
        data = {name: value[rows] for name, value in data.items()}
        keypoints = _finite_or_zero(data["keypoints"])
        if self.rescore:
            scores = rescore_instances(keypoints[..., 2], data["box_scores"], in_vis_thr=self.in_vis_thr)
        else:
            scores = data["box_scores"].astype(np.float64)
        scores = _finite_or_zero(scores)
        kept = select_instances(
            data["image_ids"],
            keypoints,
            _repaired_areas(data["areas"], keypoints),
            scores,
            sigmas=self.sigmas,
            oks_thr=self.oks_thr,
            use_nms=self.use_nms,
            soft_nms=self.soft_nms,
        )
        coco_gt = self._get_coco_gt()
        categories = self._known_categories(data["category_ids"][kept], coco_gt)
        self.last_results = build_coco_results(
            data["image_ids"][kept], keypoints[kept], scores[kept], category_ids=categories
        )
        stats, self.summary_text = self.evaluate_results(coco_gt, self.last_results)
        return stats

    def evaluate_results(self, coco_gt: COCO, results: list[dict]) -> tuple[dict[str, float], str]:
        """The stats of the submitted results and a summary text (COCOeval here; subclasses change
        the evaluation, e.g. `CrowdPoseKeypointMetric`)."""
        return coco_keypoint_eval(
            coco_gt, results, self.sigmas, use_categories=self.use_categories, per_category=self.per_category
        )

    def _known_categories(self, category_ids: np.ndarray, coco_gt: COCO) -> np.ndarray:
        """The instances' category ids, the unknown ones replaced by the file's keypoint category."""
        unknown = category_ids == UNKNOWN_CATEGORY
        if not unknown.any():
            return category_ids
        cats = sorted(c["id"] for c in coco_gt.dataset.get("categories", []) if "keypoints" in c)
        if len(cats) > 1 and self.use_categories:
            raise ValueError(
                f"{self.ann_file}: {int(unknown.sum())} predictions have no category_id (bottom-up models do not "
                f"tell categories apart), but the file has {len(cats)} keypoint categories {cats[:6]}: evaluate "
                "them together with data.metric.use_categories=false"
            )
        return np.where(unknown, cats[0] if cats else PERSON_CATEGORY_ID, category_ids)

    def _gathered_arrays(self) -> dict[str, np.ndarray] | None:
        """Concatenated states as numpy arrays, or None when there are no rows."""
        states = {name: getattr(self, name) for name in _STATE_NAMES}
        if any(isinstance(v, list) and len(v) == 0 for v in states.values()):
            return None
        arrays = {name: dim_zero_cat(value).cpu().numpy() for name, value in states.items()}
        return arrays if len(arrays["sample_ids"]) > 0 else None

    def _get_coco_gt(self) -> COCO:
        if self._coco_gt is None:
            self._coco_gt = load_coco_gt(self.ann_file, self.keypoint_fields)
        return self._coco_gt


def _finite_or_zero(values: np.ndarray) -> np.ndarray:
    """Copy with NaN/inf replaced by 0 (a diverged model must not crash evaluation), warning if any."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        warnings.warn("non-finite keypoints or scores replaced by 0 before COCO evaluation", stacklevel=3)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return values


def _repaired_areas(areas: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Instance areas for OKS-NMS; a NaN, infinite or non-positive one (a degenerate box) becomes the
    area of the instance's keypoint box (at least 1 px^2), with a warning: left as it was, it would
    make every OKS with the instance NaN and silently change which people NMS keeps."""
    areas = np.asarray(areas, dtype=np.float64).copy()
    bad = ~(np.isfinite(areas) & (areas > 0))
    if bad.any():
        xy = keypoints[bad, :, :2]
        extent = xy.max(axis=1) - xy.min(axis=1)
        areas[bad] = np.maximum(extent[:, 0] * extent[:, 1], 1.0)
        warnings.warn(
            f"{int(bad.sum())} instance areas were NaN, infinite or not positive; replaced by the areas of "
            "their keypoint boxes for OKS-NMS",
            stacklevel=3,
        )
    return areas
