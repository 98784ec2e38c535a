"""Losses of the official recipes.

- `JointsMSELoss`: top-down heatmap regression (HRNet / SimpleBaseline / Hourglass).
- `KLDiscretLoss`: top-down SimCC coordinate classification (RTMPose, SimCC-R50).
- `HeatmapLoss`, `AELoss`, `BottomUpLoss`: bottom-up HigherHRNet (masked heatmaps + associative
  embedding tags).

Shapes: N instances (images for the bottom-up losses), K keypoints, H x W heatmaps, M people.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half / bfloat16 (autocast) -> float32; float32 and float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


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

    def per_joint_loss(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        """(N, K) loss per sample and joint: 0.5 * mean over pixels of the weighted squared error."""
        n, k = output.shape[:2]
        pred = _at_least_float32(output).reshape(n, k, -1)  # bf16 / fp16 (autocast) heatmaps: fp32 loss
        gt = target.reshape(n, k, -1).to(pred.dtype)
        if self.use_target_weight:
            weight = target_weight.reshape(n, k, 1).to(pred.dtype)
            pred, gt = pred * weight, gt * weight
        return 0.5 * (pred - gt).pow(2).mean(dim=-1)

    def _single(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        loss = self.per_joint_loss(output, target, target_weight)  # (N, K)
        if not self.ohkm:
            return loss.mean()
        topk = min(self.ohkm_topk, loss.shape[1])
        return loss.topk(topk, dim=1).values.mean()


KL_REDUCTIONS = ("mmpose", "mean")


class KLDiscretLoss(nn.Module):
    """mmpose 1.x ``KLDiscretLoss`` for SimCC vectors (x, y), computed in float32 (or float64).

    Per axis, each (instance, joint) row of L bins: p = log_softmax(beta * prediction) and the label
    distribution q = softmax(label_beta * target) (the target itself when ``label_softmax`` is
    False); the row's loss is mean over the L bins of ``q (log q - p)`` (``nn.KLDivLoss`` without
    reduction, bins with q = 0 contribute 0), times the joint's target weight. The x and y row
    losses are summed over all N K rows and divided by:

    * ``"mmpose"`` (default, mmpose's code, the published recipes): K only, so the loss is a sum
      over the N instances and grows with the batch size;
    * ``"mean"``: N K, the mean per instance and joint, independent of the batch size.

    Args:
        beta: temperature of the prediction softmax (RTMPose 10; mmpose's class default 1).
        label_softmax: turn the labels into a distribution with a softmax (RTMPose True; mmpose's
            class default False).
        label_beta: temperature of the label softmax (10).
        use_target_weight: weight each row by its joint's target weight.
        reduction: "mmpose" (divide by K) or "mean" (divide by N K).
    """

    def __init__(
        self,
        *,
        beta: float = 10.0,
        label_softmax: bool = True,
        label_beta: float = 10.0,
        use_target_weight: bool = True,
        reduction: str = "mmpose",
    ) -> None:
        super().__init__()
        if reduction not in KL_REDUCTIONS:
            raise ValueError(f"KLDiscretLoss: reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
        self.beta = float(beta)
        self.label_softmax = bool(label_softmax)
        self.label_beta = float(label_beta)
        self.use_target_weight = bool(use_target_weight)
        self.reduction = reduction

    def criterion(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(R,) unweighted loss of R rows: prediction and target (R, L)."""
        log_pt = torch.log_softmax(prediction * self.beta, dim=1)
        labels = torch.softmax(target * self.label_beta, dim=1) if self.label_softmax else target
        return nn.functional.kl_div(log_pt, labels, reduction="none").mean(dim=1)

    def forward(
        self,
        outputs: Sequence[torch.Tensor],
        targets: Sequence[torch.Tensor],
        target_weight: torch.Tensor,
    ) -> torch.Tensor:
        """Loss value.

        Args:
            outputs: (x (N, K, Lx), y (N, K, Ly)) predicted SimCC vectors (a list is accepted).
            targets: (x (N, K, Lx), y (N, K, Ly)) labels.
            target_weight: (N, K) (or (N, K, 1)) per-joint weights.

        Returns:
            scalar tensor (float32, or float64 for float64 predictions).
        """
        if len(outputs) != 2 or len(targets) != 2:
            raise ValueError(
                f"KLDiscretLoss takes SimCC pairs (x, y): got {len(outputs)} outputs and {len(targets)} targets"
            )
        n, k = outputs[0].shape[:2]
        if target_weight.numel() != n * k:
            raise ValueError(
                f"KLDiscretLoss: target_weight {tuple(target_weight.shape)} does not match (N, K) = ({n}, {k})"
            )
        total = None
        for axis, (pred, gt) in enumerate(zip(outputs, targets)):
            if pred.shape != gt.shape or pred.shape[:2] != (n, k):
                raise ValueError(
                    f"KLDiscretLoss: {'xy'[axis]} prediction {tuple(pred.shape)} and target {tuple(gt.shape)} "
                    f"must both be (N, K, L) with (N, K) = ({n}, {k})"
                )
            pred = _at_least_float32(pred).reshape(n * k, -1)  # bf16 / fp16 (autocast) logits: fp32 loss
            rows = self.criterion(pred, gt.reshape(n * k, -1).to(pred.dtype))
            if self.use_target_weight:
                rows = rows * target_weight.reshape(-1).to(rows.dtype)
            total = rows.sum() if total is None else total + rows.sum()
        return total / (k if self.reduction == "mmpose" else n * k)


# --------------------------------------------------------------------------- bottom-up (HigherHRNet)


class HeatmapLoss(nn.Module):
    """Official bottom-up ``HeatmapLoss``: per image, mean over (K, H, W) of (P - G)^2 * mask.

    Masked-out pixels (crowds, unlabelled people) still count in the denominator.
    """

    def forward(self, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """pred (N, K, H, W), gt (N, K, H, W), mask (N, H, W) -> (N,) loss per image (float32,
        or float64 for float64 predictions)."""
        if pred.shape != gt.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
        pred = _at_least_float32(pred)
        diff = pred - gt.to(pred.dtype)
        return (diff.square() * mask.to(diff.dtype)[:, None]).mean(dim=(1, 2, 3))


class AELoss(nn.Module):
    """Associative-embedding grouping loss (official ``AELoss``), scalar tags, batched.

    Per image, over the N persons with at least one flagged joint (tags h_nk sampled at their flat
    indices, person reference h_n = mean_k h_nk over its K_n flagged joints):

        pull = (1/N) sum_n (1/K_n) sum_k (h_nk - h_n)^2
        push = 0.5 / (N (N - 1)) sum_{n != m} f(h_n - h_m),  f(d) = exp(-d^2) ('exp') or max(0, 1 - |d|) ('max')

    with push = pull = 0 for N = 0 and push = 0 for N = 1. The 1e-3 factors are applied by
    `BottomUpLoss`. Gradients flow through the person means as in the official code.

    Args:
        loss_type: 'exp' (official configs) or 'max'.
    """

    def __init__(self, *, loss_type: str = "exp") -> None:
        super().__init__()
        if loss_type not in ("exp", "max"):
            raise ValueError(f"loss_type must be 'exp' or 'max', got {loss_type!r}")
        self.loss_type = loss_type

    def forward(self, tags: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Push and pull per image.

        Args:
            tags: (N, K, H, W) tag maps, or already flattened (N, K*H*W) (a trailing 1 is allowed).
            joints: (N, M, K, 2) integer [flat index into the flattened tag maps, flag]
                (`JointsGenerator` output); entries with flag 0 are ignored.

        Returns:
            push (N,), pull (N,) (float32, or float64 for float64 tags).
        """
        batch = tags.shape[0]
        flat_tags = _at_least_float32(tags.reshape(batch, -1))
        joints = torch.as_tensor(joints, device=flat_tags.device)
        index = joints[..., 0].long()  # (N, M, K)
        flag = (joints[..., 1] > 0).to(flat_tags.dtype)
        index = torch.where(flag > 0, index, torch.zeros_like(index))  # unused slots read tag 0
        sampled = flat_tags.gather(1, index.reshape(batch, -1)).reshape(index.shape)  # (N, M, K)

        count = flag.sum(dim=2)  # K_n, (N, M)
        person = count > 0  # (N, M)
        num = person.sum(dim=1).to(flat_tags.dtype)  # N per image
        mean = (sampled * flag).sum(dim=2) / count.clamp(min=1)  # h_n (N, M)
        spread = ((sampled - mean[..., None]).square() * flag).sum(dim=2) / count.clamp(min=1)
        pull = (spread * person).sum(dim=1) / num.clamp(min=1)

        diff = mean[:, :, None] - mean[:, None, :]  # (N, M, M)
        pair = person[:, :, None] & person[:, None, :]
        pair &= ~torch.eye(pair.shape[1], dtype=torch.bool, device=pair.device)
        if self.loss_type == "exp":
            similarity = torch.exp(-diff.square())
        else:
            similarity = torch.clamp(1 - diff.abs(), min=0)
        pairs = (num * (num - 1)).clamp(min=1)
        push = 0.5 * (similarity * pair).sum(dim=(1, 2)) / pairs
        return push, pull


class BottomUpLoss(nn.Module):
    """HigherHRNet training loss (official ``MultiLossFactory`` + the trainer's reduction).

    For each stage i (output resolution): heatmap loss on the first K channels of outputs[i]
    (`HeatmapLoss` x heatmaps_loss_factor[i]); if with_ae_loss[i], `AELoss` on the next channels
    (the tag maps) with joints[i], push x push_loss_factor[i] and pull x pull_loss_factor[i].
    Every term is averaged over the batch; total = sum of all terms.

    Args:
        num_joints: K.
        num_stages: number of outputs scored (official 2).
        with_heatmaps_loss, heatmaps_loss_factor, with_ae_loss, push_loss_factor, pull_loss_factor:
            per stage, official defaults.
        ae_loss_type: 'exp' or 'max'.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        num_stages: int = 2,
        with_heatmaps_loss: Sequence[bool] = (True, True),
        heatmaps_loss_factor: Sequence[float] = (1.0, 1.0),
        with_ae_loss: Sequence[bool] = (True, False),
        push_loss_factor: Sequence[float] = (0.001, 0.001),
        pull_loss_factor: Sequence[float] = (0.001, 0.001),
        ae_loss_type: str = "exp",
    ) -> None:
        super().__init__()
        per_stage = {
            "with_heatmaps_loss": with_heatmaps_loss,
            "heatmaps_loss_factor": heatmaps_loss_factor,
            "with_ae_loss": with_ae_loss,
            "push_loss_factor": push_loss_factor,
            "pull_loss_factor": pull_loss_factor,
        }
        for name, values in per_stage.items():
            if len(values) != num_stages:
                raise ValueError(f"{name} needs {num_stages} entries (num_stages), got {tuple(values)}")
        self.num_joints = num_joints
        self.num_stages = num_stages
        self.with_heatmaps_loss = tuple(bool(v) for v in with_heatmaps_loss)
        self.heatmaps_loss_factor = tuple(float(v) for v in heatmaps_loss_factor)
        self.with_ae_loss = tuple(bool(v) for v in with_ae_loss)
        self.push_loss_factor = tuple(float(v) for v in push_loss_factor)
        self.pull_loss_factor = tuple(float(v) for v in pull_loss_factor)
        self.heatmap_loss = HeatmapLoss()
        self.ae_loss = AELoss(loss_type=ae_loss_type)

    def forward(
        self,
        outputs: Sequence[torch.Tensor],
        heatmaps: Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor],
        joints: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts.

        Args:
            outputs: per stage (N, C_i, S_i, S_i) network outputs (K heatmaps first, then tags).
            heatmaps: per stage (N, K, S_i, S_i) targets.
            masks: per stage (N, S_i, S_i) loss masks.
            joints: per stage (N, M, K, 2) [flat tag index, flag] (only stages with AE are read).

        Returns:
            total scalar, and {"heatmap_loss_i" per stage with a heatmap loss, "push_loss",
            "pull_loss" (summed over AE stages, present if any stage has the AE loss)} scalars.
        """
        if len(outputs) < self.num_stages:
            raise ValueError(f"expected {self.num_stages} outputs, got {len(outputs)}")
        k = self.num_joints
        parts: dict[str, torch.Tensor] = {}
        push_total: torch.Tensor | None = None
        pull_total: torch.Tensor | None = None
        for i in range(self.num_stages):
            offset = 0
            if self.with_heatmaps_loss[i]:
                loss = self.heatmap_loss(outputs[i][:, :k], heatmaps[i], masks[i]).mean()
                parts[f"heatmap_loss_{i}"] = loss * self.heatmaps_loss_factor[i]
                offset = k
            if self.with_ae_loss[i]:
                push, pull = self.ae_loss(outputs[i][:, offset:], joints[i])
                push = push.mean() * self.push_loss_factor[i]
                pull = pull.mean() * self.pull_loss_factor[i]
                push_total = push if push_total is None else push_total + push
                pull_total = pull if pull_total is None else pull_total + pull
        if push_total is not None and pull_total is not None:
            parts["push_loss"] = push_total
            parts["pull_loss"] = pull_total
        if not parts:
            raise ValueError("BottomUpLoss has neither a heatmap nor an AE loss enabled")
        total = torch.stack(list(parts.values())).sum()
        return total, parts


# --------------------------------------------------------------------------- 3D (3DMPPE PoseNet)


class IntegralL1Loss(nn.Module):
    """Official 3DMPPE PoseNet coordinate loss on soft-argmax outputs.

    Per sample n and joint k, with weight w_nk and have_depth h_n (0 for 2D-only samples):

        l_nk = (|x_nk - x*_nk| w_nk + |y_nk - y*_nk| w_nk + |z_nk - z*_nk| w_nk h_n) / 3

    and the loss is the mean of l_nk over the batch and the joints (masked joints still count in
    the denominator). Coordinates are those of `Integral3D` (output pixels and depth bins).
    """

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, have_depth: torch.Tensor
    ) -> torch.Tensor:
        """Loss value.

        Args:
            pred: (N, K, 3) decoded coordinates.
            target: (N, K, 3) target coordinates.
            weight: (N, K) per-joint weights (or (N, K, 1)).
            have_depth: (N,) 1 for samples with depth, 0 for 2D-only samples.

        Returns:
            scalar tensor (float32, or float64 for float64 predictions).
        """
        if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 3:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (N, K, 3)")
        n, k = pred.shape[:2]
        pred = _at_least_float32(pred)
        error = (pred - target.to(pred.dtype)).abs() * weight.reshape(n, k, 1).to(pred.dtype)
        depth_mask = have_depth.reshape(n, 1).to(pred.dtype)
        return ((error[..., 0] + error[..., 1] + error[..., 2] * depth_mask) / 3).mean()
