"""Stochastic depth (Huang et al., ECCV 2016) for residual branches: in training, each sample's
branch output is zeroed with probability ``p`` and the kept ones are scaled by 1 / (1 - p), so
the expected output is unchanged; in evaluation the branch passes through untouched.

Drawn as in mmcv / mmpretrain / timm: one uniform number per sample, floor(keep + u) as the mask.
"""

from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, p: float, *, training: bool) -> torch.Tensor:
    """x (N, ...) with whole samples zeroed with probability p (kept ones / (1 - p)) when training."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    # one draw per sample, broadcast over the other dimensions
    mask = torch.floor(keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device))
    return x / keep * mask


class DropPath(nn.Module):
    """Per-sample drop of a residual branch; identity in eval mode or when ``p`` is 0.

    Args:
        p: probability of dropping a sample's branch, in [0, 1).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, ...) -> same shape."""
        return drop_path(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:.4g}"
