"""CrowdPose AP as a DDP-safe torchmetrics Metric: the COCO keypoint metric's gathering,
de-duplication, rescoring and OKS-NMS, then the crowdposetools evaluation (`crowdpose_eval`)."""

from __future__ import annotations

from typing import ClassVar

from pycocotools.coco import COCO

from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.crowdpose_eval import STAT_NAMES, crowdpose_keypoint_eval


class CrowdPoseKeypointMetric(COCOKeypointMetric):
    """AP, AP50, AP75, AR, AR50, AR75 and AP by crowd index (easy, medium, hard), as crowdposetools.

    Arguments are those of `COCOKeypointMetric`; ``ann_file`` is a CrowdPose annotation file
    (``crowdIndex`` on every image; ``area`` is not needed).
    """

    stat_names: ClassVar[tuple[str, ...]] = STAT_NAMES

    def evaluate_results(self, coco_gt: COCO, results: list[dict]) -> tuple[dict[str, float], str]:
        if not results:
            return {name: 0.0 for name in self.stat_names}, "no predictions: all CrowdPose stats set to 0\n"
        return crowdpose_keypoint_eval(coco_gt, results, self.sigmas)
