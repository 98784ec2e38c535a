"""Test-time helpers shared by the top-down module, evaluation and prediction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from src.codecs.msra_heatmap import MSRAHeatmap, flip_heatmaps_back


def last_output(outputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-stack networks return a list of heatmaps; predictions use the last one."""
    return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


@torch.no_grad()
def topdown_heatmaps(
    net: Callable[[torch.Tensor], torch.Tensor | Sequence[torch.Tensor]],
    images: torch.Tensor,
    *,
    flip_index: Sequence[int],
    flip_test: bool,
    shift_heatmap: bool | float,
) -> torch.Tensor:
    """Heatmaps (N, K, H, W) of crops (N, 3, h, w), averaged with the flipped crop when ``flip_test``.

    The flipped prediction is mirrored back, its left/right channels swapped, and (``shift_heatmap``)
    shifted one column right, as in the official HRNet test (or by a fraction of a column, see
    ``flip_heatmaps_back``).
    """
    heatmaps = last_output(net(images))
    if flip_test:
        flipped = last_output(net(torch.flip(images, dims=[3])))
        heatmaps = 0.5 * (heatmaps + flip_heatmaps_back(flipped, flip_index, shift=shift_heatmap))
    return heatmaps


def decode_keypoints(
    codec: MSRAHeatmap, heatmaps: torch.Tensor, centers: torch.Tensor, scales: torch.Tensor
) -> np.ndarray:
    """Heatmaps (N, K, H, W) of crops -> keypoints (N, K, 3) [x, y, score] in image pixels.

    centers, scales: (N, 2) crop boxes as produced by the dataset (scale in units of 200 px).
    """
    coords, maxvals = codec.decode_to_image(heatmaps.detach().float(), centers.cpu().numpy(), scales.cpu().numpy())
    return np.concatenate([coords, maxvals[..., None]], axis=-1).astype(np.float32)
