"""PoseTrack18 keypoint AP and the official per-frame mAP as a DDP-safe torchmetrics Metric.

The gathering, de-duplication, rescoring and OKS-NMS are those of `COCOKeypointMetric`; the
submitted people are then scored twice:

* COCO keypoint AP (the headline, the monitored ``AP``): pycocotools' COCOeval with the layout's OKS
  sigmas (mmpose's PoseTrack18 sigmas, COCO's position by position), against the labelled frames of
  the validation videos, ignore regions as crowd regions (`src.readers.posetrack18_ground_truth`);
* the per-frame multi-person mAP of the official PoseTrack evaluation, poseval's PCKh@0.5 AP per
  joint (``mAP`` and its groups, `src.metrics.posetrack18_map`), with each joint's score as its
  confidence, as mmpose submits it.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pycocotools.coco import COCO

from src.metrics.coco_eval import STAT_NAMES, coco_keypoint_eval
from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.posetrack18_map import MAP_NAMES, per_frame_map, poseval_joint_indices
from src.readers.posetrack18_ground_truth import PoseTrackGroundTruth, read_posetrack18_ground_truth


class PoseTrack18KeypointMetric(COCOKeypointMetric):
    """COCO keypoint AP/AR and the PoseTrack per-frame mAP on the PoseTrack18 validation videos.

    Args:
        ann_dir: the folder of the validation video files (a PoseTrack18 reader's ``metric_inputs``).
        image_root: the folder their ``file_name`` entries are relative to (frame sizes).
        keypoint_info: the layout of the predictions; it must name the 15 joints the mAP scores.
        **kwargs: those of `COCOKeypointMetric` (rescoring, OKS-NMS, ``sigmas``).

    Stats: the 10 COCO ones, then ``mAP`` (poseval's Total) and ``mAP_head``, ``mAP_shoulder``,
    ``mAP_elbow``, ``mAP_wrist``, ``mAP_hip``, ``mAP_knee``, ``mAP_ankle``, as fractions (-1 where
    poseval gives NaN). `joint_map` holds the last per-joint mAP.
    """

    stat_names: ClassVar[tuple[str, ...]] = (*STAT_NAMES, *MAP_NAMES)

    def __init__(self, *, ann_dir: str | Path, image_root: str | Path, keypoint_info: Any = None, **kwargs: Any):
        super().__init__(ann_file=str(ann_dir), keypoint_info=keypoint_info, **kwargs)
        names: Sequence[str] = keypoint_info.keypoint_names if keypoint_info is not None else ()
        self.map_joints = poseval_joint_indices(names)
        self.image_root = str(image_root)
        self._truth: PoseTrackGroundTruth | None = None
        self.joint_map: dict[str, float] = {}

    def ground_truth(self) -> PoseTrackGroundTruth:
        """The validation videos, read once."""
        if self._truth is None:
            self._truth = read_posetrack18_ground_truth(
                self.ann_file, image_root=self.image_root, num_keypoints=self.num_keypoints
            )
        return self._truth

    def _get_coco_gt(self) -> COCO:
        if self._coco_gt is None:
            coco = COCO()
            coco.dataset = self.ground_truth().coco
            with contextlib.redirect_stdout(io.StringIO()):
                coco.createIndex()
            self._coco_gt = coco
        return self._coco_gt

    def evaluate_results(self, coco_gt: COCO, results: list[dict]) -> tuple[dict[str, float], str]:
        stats, summary = coco_keypoint_eval(
            coco_gt, results, self.sigmas, use_categories=self.use_categories, per_category=self.per_category
        )
        predictions: dict[int, list[np.ndarray]] = {}
        for result in results:
            predictions.setdefault(int(result["image_id"]), []).append(
                np.asarray(result["keypoints"], np.float64).reshape(-1, 3)
            )
        stacked = {image_id: np.stack(people) for image_id, people in predictions.items()}
        pose_map, self.joint_map = per_frame_map(self.ground_truth().frames, stacked, self.map_joints)
        stats.update({key: -1.0 if math.isnan(value) else value for key, value in pose_map.items()})
        table = "  ".join(f"{key} {100 * value:.1f}" for key, value in pose_map.items())
        return stats, summary + f"PoseTrack per-frame mAP (PCKh@0.5, x 100): {table}\n"
