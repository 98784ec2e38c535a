"""Heatmap regression loss of the official top-down recipes (HRNet / SimpleBaseline / Hourglass).

Shapes: N instances, K keypoints, H x W heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class JointsMSELoss(nn.Module):
    """Official ``JointsMSELoss`` / ``JointsOHKMMSELoss``.

    Per joint k: l_nk = 0.5 * mean_pixels((w_nk P_nk - w_nk G_nk)^2), with w the target weight
    (1 everywhere if ``use_target_weight`` is False). Without OHKM the loss is mean_{n,k} l_nk
    (= (1/K) sum_k 0.5 * MSE over batch and pixels); with OHKM it is the mean over samples of the
    mean of each sample's ``ohkm_topk`` largest l_nk. A list / tuple of outputs (multi-stack
    models) is scored against the same target and the losses are summed.

    Args:
        use_target_weight: multiply predictions and targets by the per-joint target weight.
        ohkm: online hard keypoint mining.
        ohkm_topk: joints kept per sample by OHKM (clipped to K).
    """

    def __init__(self, *, use_target_weight: bool = True, ohkm: bool = False, ohkm_topk: int = 8) -> None:
        super().__init__()
        if ohkm_topk < 1:
            raise ValueError(f"ohkm_topk must be >= 1, got {ohkm_topk}")
        self.use_target_weight = use_target_weight
        self.ohkm = ohkm
        self.ohkm_topk = ohkm_topk

    def forward(
        self,
        output: torch.Tensor | Sequence[torch.Tensor],
        target: torch.Tensor,
        target_weight: torch.Tensor,
    ) -> torch.Tensor:
        """Loss value.

        Args:
            output: (N, K, H, W) predictions, or a list / tuple of them.
            target: (N, K, H, W) target heatmaps.
            target_weight: (N, K) (or (N, K, 1)) per-joint weights.

        Returns:
            scalar tensor.
        """
        if isinstance(output, (list, tuple)):
            return sum(self._single(o, target, target_weight) for o in output)
        return self._single(output, target, target_weight)

    def per_joint_loss(
        self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor
    ) -> torch.Tensor:
        """(N, K) loss per sample and joint: 0.5 * mean over pixels of the weighted squared error."""
        n, k = output.shape[:2]
        pred = output.reshape(n, k, -1)
        gt = target.reshape(n, k, -1).to(pred.dtype)
        if self.use_target_weight:
            weight = target_weight.reshape(n, k, 1).to(pred.dtype)
            pred, gt = pred * weight, gt * weight
        return 0.5 * (pred - gt).pow(2).mean(dim=-1)

    def _single(
        self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor
    ) -> torch.Tensor:
        loss = self.per_joint_loss(output, target, target_weight)  # (N, K)
        if not self.ohkm:
            return loss.mean()
        topk = min(self.ohkm_topk, loss.shape[1])
        return loss.topk(topk, dim=1).values.mean()
