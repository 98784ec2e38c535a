"""Heatmap PCK accuracy used as the training/validation monitor (official HRNet lib/core/evaluate.py).

N instances, K keypoints, H/W heatmap height/width.
"""

from __future__ import annotations

import torch


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official `get_max_preds`: integer peak coordinates of every heatmap.

    Args:
        heatmaps: (N, K, H, W).

    Returns:
        coords (N, K, 2) float [x, y] in heatmap pixels, set to (0, 0) where the peak is <= 0;
        maxvals (N, K) peak values.
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    n, k, _, w = heatmaps.shape
    maxvals, index = heatmaps.reshape(n, k, -1).max(dim=-1)
    coords = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=-1).float()
    coords = coords * (maxvals > 0).unsqueeze(-1)
    return coords, maxvals


def heatmap_accuracy(output: torch.Tensor, target: torch.Tensor, thr: float = 0.5) -> tuple[torch.Tensor, float, int]:
    """Official HRNet `accuracy` (hm_type "gaussian"): PCK of the heatmap peaks.

    Peaks of output and target are compared after dividing coordinates by norm = (H/10, W/10).
    As in the official code, norm is applied to [x, y], so x is divided by H/10 and y by W/10.
    A target joint counts only when its peak has x > 1 and y > 1 (an empty target map peaks at
    (0, 0) and so is skipped). Per joint: fraction of counted distances < thr.

    Args:
        output: (N, K, H, W) predicted heatmaps.
        target: (N, K, H, W) target heatmaps.
        thr: normalised distance threshold.

    Returns:
        acc_per_joint (K,) float (-1 for joints never counted), avg_acc (mean over counted joints,
        0 if none), count (number of counted joints).
    """
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    output = output.detach().float()
    target = target.detach().float()
    h, w = output.shape[-2:]
    pred, _ = heatmap_argmax(output)
    gt, _ = heatmap_argmax(target)
    norm = torch.tensor([h / 10.0, w / 10.0], device=output.device)
    valid = (gt[..., 0] > 1) & (gt[..., 1] > 1)  # (N, K)
    dists = torch.linalg.vector_norm(pred / norm - gt / norm, dim=-1)  # (N, K)
    hits = ((dists < thr) & valid).sum(dim=0).float()
    counted = valid.sum(dim=0)
    acc = torch.where(counted > 0, hits / counted.clamp(min=1), torch.full_like(hits, -1.0))
    has_count = counted > 0
    count = int(has_count.sum())
    avg_acc = float(acc[has_count].mean()) if count > 0 else 0.0
    return acc, avg_acc, count
