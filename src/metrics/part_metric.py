"""COCO keypoint AP over a layout and per part (COCO-WholeBody's body, foot, face, hands) as a
DDP-safe torchmetrics Metric: the COCO metric's gathering, rescoring and OKS-NMS over all joints,
then `part_eval.part_keypoint_eval`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pycocotools.coco import COCO

from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.part_eval import part_keypoint_eval, part_stat_names


class PartKeypointMetric(COCOKeypointMetric):
    """AP and AR over all joints (the headline ``AP``) and per part of the layout (``<part>/AP``,
    ...), each part with its own sigmas and its own labelled joints, as COCO-WholeBody's evaluator
    (`src.metrics.part_eval`). Rescoring and OKS-NMS use all joints, as mmpose's
    ``CocoWholeBodyMetric`` does, and every part ranks the instances by that one score.

    Args:
        part_means: names for means of parts, e.g. ``{"hand": ["lefthand", "righthand"]}``.
        **kwargs: those of `COCOKeypointMetric`; ``keypoint_info`` must declare ``parts``.
            With ``keypoint_fields`` the area of a prediction is the extent of its joints in the
            first field (COCO-WholeBody: the body), as xtcocotools computes it.
    """

    def __init__(self, *, part_means: Mapping[str, Sequence[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        keypoint_info = kwargs.get("keypoint_info")
        parts = tuple(getattr(keypoint_info, "parts", ()) or ())
        if not parts:
            name = getattr(keypoint_info, "name", None)
            raise ValueError(
                f"{type(self).__name__}: the keypoint layout {name!r} declares no parts (layout key parts:)"
            )
        self.parts = parts
        self.part_means = {str(k): [str(m) for m in v] for k, v in (part_means or {}).items()}
        known = {name for name, _ in parts}
        for mean, members in self.part_means.items():
            unknown = [m for m in members if m not in known]
            if unknown:
                raise ValueError(f"part_means: {mean!r} averages {unknown}, which are not parts of {sorted(known)}")
        fields = self.keypoint_fields
        self.area_joints = range(next(iter(fields.values()))) if fields else None
        self.stat_names = part_stat_names(parts, self.part_means)

    def evaluate_results(self, coco_gt: COCO, results: list[dict]) -> tuple[dict[str, float], str]:
        if not results:
            return {name: 0.0 for name in self.stat_names}, "no predictions: all stats set to 0\n"
        return part_keypoint_eval(
            coco_gt,
            results,
            self.sigmas,
            parts=self.parts,
            area_joints=self.area_joints,
            part_means=self.part_means,
            use_categories=self.use_categories,
        )
