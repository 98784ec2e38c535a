"""Pictures of what networks output, drawn over their input crops (numpy and OpenCV only, so that
codecs may draw their own targets and outputs)."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def heatmap_overlay(image_bgr: np.ndarray, heatmaps: torch.Tensor | np.ndarray) -> np.ndarray:
    """The maximum over joints of (K, h, w) heatmaps, coloured and blended over the BGR image."""
    maps = torch.as_tensor(heatmaps).detach().float().cpu()
    peak = maps.amax(dim=0).clamp(0, 1).numpy()
    peak = cv2.resize(peak, (image_bgr.shape[1], image_bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
    coloured = cv2.applyColorMap((peak * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 0.5, coloured, 0.5, 0.0)


def marginals_overlay(
    image_bgr: np.ndarray, x_maps: torch.Tensor | np.ndarray, y_maps: torch.Tensor | np.ndarray
) -> np.ndarray:
    """1D distributions over x (K, Lx) and y (K, Ly) (SimCC), drawn as their outer product.

    Each joint's x and y vectors are rescaled to [0, 1] and multiplied into a 2D map; the maximum
    over joints is coloured and blended over the BGR image, so a confident joint shows as a spot
    and an ambiguous one as a streak along the axis it is unsure of.
    """
    xs = torch.as_tensor(x_maps).detach().float().cpu()
    ys = torch.as_tensor(y_maps).detach().float().cpu()

    def unit(v: torch.Tensor) -> torch.Tensor:
        low = v.amin(dim=-1, keepdim=True)
        span = (v.amax(dim=-1, keepdim=True) - low).clamp_min(1e-12)
        return (v - low) / span

    maps = unit(ys)[:, :, None] * unit(xs)[:, None, :]  # (K, Ly, Lx)
    return heatmap_overlay(image_bgr, maps)
