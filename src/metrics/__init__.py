"""Evaluation metrics: OKS and OKS-NMS, official rescoring, COCO keypoint AP/AR, heatmap accuracy."""

from src.metrics.accuracy import heatmap_accuracy, heatmap_argmax
from src.metrics.coco_eval import (
    STAT_NAMES,
    build_coco_results,
    coco_keypoint_eval,
    evaluate_coco_keypoints,
    load_coco_gt,
    select_instances,
    write_results_json,
)
from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.oks import compute_oks, oks_nms, pairwise_oks, soft_oks_nms
from src.metrics.pck import (
    bbox_size,
    end_point_error,
    head_size,
    mpii_pckh,
    mpii_pckh_per_joint,
    pck,
    pck_auc,
    pck_curve,
    torso_size,
)
from src.metrics.pckh_metric import PCKH_KEYS, PCKhMetric
from src.metrics.rescoring import rescore_instances

__all__ = [
    "STAT_NAMES",
    "COCOKeypointMetric",
    "build_coco_results",
    "coco_keypoint_eval",
    "compute_oks",
    "pairwise_oks",
    "evaluate_coco_keypoints",
    "heatmap_accuracy",
    "heatmap_argmax",
    "load_coco_gt",
    "oks_nms",
    "rescore_instances",
    "select_instances",
    "soft_oks_nms",
    "write_results_json",
    "PCKH_KEYS",
    "PCKhMetric",
    "bbox_size",
    "end_point_error",
    "head_size",
    "mpii_pckh",
    "mpii_pckh_per_joint",
    "pck",
    "pck_auc",
    "pck_curve",
    "torso_size",
]
