"""What every heatmap codec of the top-down contract shares (MSRA, UDP): the targets are (K, H, W)
heatmaps with per-joint weights, multi-stack networks are decoded from their last stack, the flip
test mirrors the maps and swaps left and right channels (shifted one column with ``shift_heatmap``),
the training monitor is the official heatmap PCK, and pictures blend the maps over the crop.

A subclass sets ``heatmap_size`` (w, h) and ``evaluation_defaults["shift_heatmap"]`` and implements
the encoding, the crop geometry and the decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from src.codecs.base import TopDownCodec
from src.metrics.accuracy import heatmap_accuracy
from src.visualization.maps import heatmap_overlay


def flip_heatmaps_back(heatmaps: torch.Tensor, flip_index: Sequence[int], shift: bool | float = True) -> torch.Tensor:
    """Official ``flip_back`` (+ SHIFT_HEATMAP) for heatmaps predicted on a mirrored crop.

    Mirror along W, reorder channels with ``flip_index`` (new[k] = old[flip_index[k]]), and shift
    right: ``True`` (official) moves everything one column: new[..., 1:] = old[..., :-1] (column 0
    kept); a number s in [0, 1] shifts by s columns with linear interpolation (column 0 kept).

    With sub-pixel (unbiased) targets the mirrored prediction lands exactly ``1 - 1/stride``
    columns left of the original (0.75 for stride 4), so ``shift = 1 - 1/stride`` aligns the two
    maps; the official one-column shift suits the official integer-centre targets.

    Args:
        heatmaps: (N, K, H, W) (or (K, H, W)).
        flip_index: (K,) permutation.
        shift: True / False (official one column or none), or a float in [0, 1].

    Returns:
        A new tensor of the same shape.
    """
    index = torch.as_tensor(list(flip_index), dtype=torch.long, device=heatmaps.device)
    flipped = heatmaps.flip(-1).index_select(-3, index)
    if isinstance(shift, bool):
        amount = 1.0 if shift else 0.0
    else:
        amount = float(shift)
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"a flip shift must be a boolean or a number in [0, 1], got {shift!r}")
    if amount == 0.0:
        return flipped
    moved = torch.cat([flipped[..., :1], flipped[..., :-1]], dim=-1)
    if amount == 1.0:
        return moved
    return (1.0 - amount) * flipped + amount * moved


class HeatmapCodec(TopDownCodec):
    """The heatmap family's part of the top-down contract (see the module docstring)."""

    target_keys = ("heatmaps", "target_weight")
    outputs_name = "heatmaps"
    heatmap_size: tuple[int, int]
    sigma: float

    @property
    def heatmap_sigma(self) -> float:
        """The Gaussian's sigma in heatmap pixels: what ``data.sigma`` means (the data config and the
        model's codec must agree on it; SimCC's sigma counts bins and has no such property)."""
        return self.sigma

    def loss_targets(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["heatmaps"], batch["target_weight"]

    def output_shapes(self, num_keypoints: int) -> tuple[int, int, int]:
        return (int(num_keypoints), self.heatmap_size[1], self.heatmap_size[0])

    def prediction(self, outputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Multi-stack networks (Stacked Hourglass) output one map per stack: the last is decoded."""
        return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs

    def flip_back(
        self, prediction: torch.Tensor, flip_index: Sequence[int], options: Mapping[str, Any]
    ) -> torch.Tensor:
        """Mirrored, channels swapped, and shifted one column when ``shift_heatmap`` (the codec's
        default when the options do not say)."""
        shift = options.get("shift_heatmap", self.evaluation_defaults.get("shift_heatmap", False))
        return flip_heatmaps_back(prediction, flip_index, shift=shift)

    def accuracy(self, prediction: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        """Official HRNet training accuracy (PCK of the heatmap peaks, `heatmap_accuracy`)."""
        _, acc, _ = heatmap_accuracy(prediction.detach().float(), batch["heatmaps"])
        return torch.as_tensor(acc, dtype=torch.float32)

    def picture(self, crop_bgr: np.ndarray, maps: torch.Tensor) -> np.ndarray:
        """The maximum over joints of the (K, H, W) maps, coloured and blended over the crop."""
        return heatmap_overlay(crop_bgr, maps)
