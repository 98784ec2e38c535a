"""Official COCO instance rescoring (HRNet lib/dataset/coco.py, `evaluate`).

N instances, K keypoints.
"""

from __future__ import annotations

import numpy as np


def rescore_instances(keypoint_scores: np.ndarray, box_scores: np.ndarray, *, in_vis_thr: float = 0.2) -> np.ndarray:
    """Instance score = (mean of the joint scores > in_vis_thr, 0 if none) x box score.

    Args:
        keypoint_scores: (N, K) per-joint confidences (heatmap maxvals).
        box_scores: (N,) person box scores (1 for ground-truth boxes).
        in_vis_thr: joints scoring at or below this are left out of the mean (official IN_VIS_THRE 0.2).

    Returns:
        (N,) float64 instance scores.
    """
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    if keypoint_scores.ndim != 2 or keypoint_scores.shape[0] != box_scores.shape[0]:
        raise ValueError(
            f"expected keypoint_scores (N, K) and box_scores (N,), got {keypoint_scores.shape} and {box_scores.shape}"
        )
    confident = keypoint_scores > in_vis_thr
    count = confident.sum(axis=1)
    total = np.where(confident, keypoint_scores, 0.0).sum(axis=1)
    kpt_score = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return kpt_score * box_scores
