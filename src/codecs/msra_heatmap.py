"""MSRA (HRNet / SimpleBaseline) Gaussian heatmap codec.

* ``encode`` reproduces the official ``generate_target``: the peak sits at the integer pixel
  ``mu = int(joint / stride + 0.5)``, a (6 sigma + 1)^2 Gaussian window with peak 1 is pasted
  (clipped to the map) only for joints with weight > 0.5, and a joint's weight is set to 0 only
  when its whole window lies outside the map. ``unbiased=True`` instead centres the Gaussian on
  the exact sub-pixel location ``joint / stride`` (DARK's unbiased encoding), same window.
* ``decode_heatmaps`` (torch, batched, any device): argmax, (0, 0) where the peak is <= 0, then
  ``refine``: "quarter" (official POST_PROCESS quarter-pixel step), "dark" (DARK Taylor step on
  the blurred log-heatmap) or "none"; ``decode`` is the same in input-crop pixels and
  ``decode_to_image`` the official ``get_final_preds``.
* The rest of the top-down contract (`src.codecs.base`): the flip test mirrors the heatmaps,
  swaps left and right channels and (``shift_heatmap``) shifts them one column; multi-stack
  networks are decoded from their last stack; pictures blend the maps over the crop.

Shapes: N instances, K keypoints, H x W heatmap. Sizes are (w, h).
"""

from __future__ import annotations

import numpy as np
import torch

from src.codecs.base import as_numpy
from src.codecs.heatmap_family import HeatmapCodec
from src.geometry import heatmap_to_image_coords

REFINE_MODES = ("quarter", "dark", "none")


class MSRAHeatmap(HeatmapCodec):
    """Encode keypoints to Gaussian heatmaps and decode heatmaps to coordinates.

    Args:
        input_size: (w, h) of the network input crop in pixels.
        heatmap_size: (w, h) of the heatmaps.
        sigma: Gaussian standard deviation in heatmap pixels.
        refine: sub-pixel refinement used by ``decode``: "quarter" | "dark" | "none".
        dark_blur_kernel: odd Gaussian blur kernel size used by the DARK refinement.
        unbiased: centre the encoded Gaussian on the exact sub-pixel joint (DARK encoding)
            instead of the official integer peak. Needed for sub-pixel round trips.
    """

    evaluation_defaults = {"shift_heatmap": True}
    refine_modes = REFINE_MODES

    def __init__(
        self,
        *,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float,
        refine: str = "quarter",
        dark_blur_kernel: int = 11,
        unbiased: bool = False,
    ) -> None:
        if refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, got {refine!r}")
        if dark_blur_kernel < 1 or dark_blur_kernel % 2 == 0:
            raise ValueError(f"dark_blur_kernel must be a positive odd int, got {dark_blur_kernel}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.refine = refine
        self.dark_blur_kernel = int(dark_blur_kernel)
        self.unbiased = bool(unbiased)
        # (2,) input pixels per heatmap pixel along x, y.
        self.stride = np.array(self.input_size, np.float64) / np.array(self.heatmap_size, np.float64)
        # Official window geometry: half size 3 sigma, window side 6 sigma + 1, centre index side // 2.
        self._tmp_size = self.sigma * 3
        window_side = 2 * self._tmp_size + 1
        self._window_offsets = np.arange(0, window_side, 1, dtype=np.float32)  # (S,)
        self._window_center = window_side // 2
        self._gaussian = self._official_window()  # (S, S) float32

    # ------------------------------------------------------------------ encode
    def _official_window(self) -> np.ndarray:
        """(S, S) float32 Gaussian with peak 1 at the window centre, computed as the official code."""
        x = self._window_offsets
        y = x[:, None]
        c = np.float32(self._window_center)
        return np.exp(-((x - c) ** 2 + (y - c) ** 2) / np.float32(2 * self.sigma**2)).astype(np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """The codec protocol: keypoints in input-crop pixels -> the targets a sample carries.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility in {0, 1}.

        Returns:
            {"heatmaps": (K, H, W) float32, "target_weight": (K,) float32} (see `encode_heatmaps`).
        """
        heatmaps, weight = self.encode_heatmaps(keypoints, visible)
        return {"heatmaps": heatmaps, "target_weight": weight}

    def encode_heatmaps(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints in input-crop pixels -> Gaussian heatmaps and target weights.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility in {0, 1} (any value > 0.5 counts as visible).

        Returns:
            heatmaps (K, H, W) float32, target_weight (K,) float32.
        """
        kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
        weight = np.asarray(visible, dtype=np.float32).reshape(-1).copy()
        num_k = kpts.shape[0]
        w, h = self.heatmap_size
        heatmaps = np.zeros((num_k, h, w), dtype=np.float32)

        scaled = kpts / self.stride  # (K, 2) heatmap pixels
        mu = np.trunc(scaled + 0.5)  # Python int(): truncation toward zero
        upper_left = np.trunc(mu - self._tmp_size).astype(np.int64)  # (K, 2)
        bottom_right = np.trunc(mu + self._tmp_size + 1).astype(np.int64)  # (K, 2), exclusive
        outside = (
            (upper_left[:, 0] >= w) | (upper_left[:, 1] >= h) | (bottom_right[:, 0] < 0) | (bottom_right[:, 1] < 0)
        )
        weight[outside] = 0.0

        draw = np.flatnonzero(weight > 0.5)
        values = self._window_values(scaled[draw], upper_left[draw])  # (D, S, S)
        for window, k in zip(values, draw.tolist()):
            _paste(heatmaps[k], window, upper_left[k], bottom_right[k])
        return heatmaps, weight

    def _window_values(self, scaled: np.ndarray, upper_left: np.ndarray) -> np.ndarray:
        """Gaussian values on each joint's window.

        Args:
            scaled: (D, 2) joint positions in heatmap pixels.
            upper_left: (D, 2) integer window origins.

        Returns:
            (D, S, S) float32; the official fixed window, or a sub-pixel centred one if unbiased.
        """
        if not self.unbiased:
            return np.broadcast_to(self._gaussian, (len(scaled),) + self._gaussian.shape)
        # Gaussian centre relative to each window origin; pixel ul + i holds exp(-|ul + i - p|^2 / 2s^2).
        rel = (scaled - upper_left).astype(np.float32)  # (D, 2)
        dx = self._window_offsets[None, :] - rel[:, 0, None]  # (D, S)
        dy = self._window_offsets[None, :] - rel[:, 1, None]  # (D, S)
        denom = np.float32(2 * self.sigma**2)
        return np.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / denom).astype(np.float32)

    # ------------------------------------------------------------------ decode
    def decode_heatmaps(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps -> coordinates in heatmap pixels, with the configured refinement.

        Args:
            heatmaps: (N, K, H, W) tensor (any float dtype / device); numpy is accepted.

        Returns:
            coords (N, K, 2) float32 x, y in heatmap pixels; maxvals (N, K) float32 peak values.
        """
        heatmaps = torch.as_tensor(heatmaps).detach().float()
        coords, maxvals = argmax_coords(heatmaps)
        if self.refine == "quarter":
            coords = quarter_refine(heatmaps, coords)
        elif self.refine == "dark":
            coords = dark_refine(heatmaps, coords, maxvals, blur_kernel=self.dark_blur_kernel)
        return coords, maxvals

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps (N, K, H, W) -> keypoints (N, K, 2) in input-crop pixels, peak values (N, K)."""
        coords, maxvals = self.decode_heatmaps(heatmaps)
        return coords * torch.as_tensor(self.stride, dtype=coords.dtype, device=coords.device), maxvals

    def decode_to_image(
        self,
        heatmaps: torch.Tensor,
        centers: np.ndarray | torch.Tensor,
        scales: np.ndarray | torch.Tensor,
    ) -> np.ndarray:
        """Decode and map back to image pixels (official ``get_final_preds``).

        Args:
            heatmaps: (N, K, H, W).
            centers: (N, 2) box centres in image pixels.
            scales: (N, 2) box scales in units of 200 px.

        Returns:
            (N, K, 3) float32 [x, y, peak value] in image pixels.
        """
        coords, maxvals = self.decode_heatmaps(heatmaps)
        image_coords = heatmap_to_image_coords(
            coords.detach().cpu().numpy(), as_numpy(centers), as_numpy(scales), self.heatmap_size
        )
        return np.concatenate([image_coords, as_numpy(maxvals)[..., None]], axis=-1).astype(np.float32)

    def oracle_round_trip(self, keypoints: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
        """Encode ground truth and decode it again: the codec's own quantisation error.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility; all visible when None.

        Returns:
            (K, 2) float64 decoded x, y in input-crop pixels ((0, 0) for joints with no target).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
        if visible is None:
            visible = np.ones(len(keypoints), dtype=np.float32)
        heatmaps, _ = self.encode_heatmaps(keypoints, visible)
        coords, _ = self.decode_heatmaps(torch.from_numpy(heatmaps)[None])
        return coords[0].double().numpy() * self.stride

    def __repr__(self) -> str:
        return (
            f"MSRAHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, refine={self.refine!r}, dark_blur_kernel={self.dark_blur_kernel}, "
            f"unbiased={self.unbiased})"
        )


def _paste(heatmap: np.ndarray, window: np.ndarray, upper_left: np.ndarray, bottom_right: np.ndarray) -> None:
    """Write the part of a window that falls inside the map (official clipping).

    Args:
        heatmap: (H, W) map, modified in place.
        window: (S, S) values; window[0, 0] belongs at heatmap pixel upper_left.
        upper_left: (2,) x0, y0 window origin; bottom_right: (2,) exclusive x1, y1.
    """
    h, w = heatmap.shape
    x0, y0 = int(upper_left[0]), int(upper_left[1])
    x1, y1 = int(bottom_right[0]), int(bottom_right[1])
    heatmap[max(0, y0) : min(y1, h), max(0, x0) : min(x1, w)] = window[
        max(0, -y0) : min(y1, h) - y0, max(0, -x0) : min(x1, w) - x0
    ]


def argmax_coords(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``get_max_preds``: integer argmax per map; (0, 0) where the peak is <= 0.

    Args:
        heatmaps: (N, K, H, W).

    Returns:
        coords (N, K, 2) float32 x, y; maxvals (N, K) float32.
    """
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(dim=-1)  # first maximum, like numpy
    maxvals = flat.gather(-1, idx[..., None]).squeeze(-1)
    coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1).float()
    coords = coords * (maxvals > 0)[..., None].float()
    return coords, maxvals.float()


def _sample(heatmaps: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Values at integer positions, clamped to the map.

    Args:
        heatmaps: (N, K, H, W).
        xs, ys: (N, K) integer (long) columns / rows.

    Returns:
        (N, K) values.
    """
    n, k, h, w = heatmaps.shape
    flat_idx = ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
    return heatmaps.reshape(n, k, -1).gather(-1, flat_idx[..., None]).squeeze(-1)


def quarter_refine(heatmaps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Official POST_PROCESS: move 0.25 px toward the higher neighbour along x and y.

    Only where 1 < px < W - 1 and 1 < py < H - 1 (strict), px = floor(x + 0.5); sign(0) = no move.

    Args:
        heatmaps: (N, K, H, W).
        coords: (N, K, 2) x, y in heatmap pixels.

    Returns:
        (N, K, 2) refined coordinates (a new tensor).
    """
    _, _, h, w = heatmaps.shape
    px = torch.floor(coords[..., 0] + 0.5).long()
    py = torch.floor(coords[..., 1] + 0.5).long()
    ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    diff_x = _sample(heatmaps, px + 1, py) - _sample(heatmaps, px - 1, py)
    diff_y = _sample(heatmaps, px, py + 1) - _sample(heatmaps, px, py - 1)
    step = 0.25 * torch.sign(torch.stack([diff_x, diff_y], dim=-1))
    return coords + step * ok[..., None].to(step.dtype)


def _blur_matrix(size: int, kernel_size: int, device: torch.device) -> torch.Tensor:
    """(size, size) banded matrix M with (x @ M) = 1-D Gaussian blur of x with zero padding.

    The kernel has OpenCV's default sigma for ``kernel_size`` (0.3 ((k - 1) / 2 - 1) + 0.8).
    """
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8
    idx = torch.arange(size, dtype=torch.float32, device=device)
    dist = idx[:, None] - idx[None, :]
    weights = torch.exp(-(dist**2) / (2 * sigma**2)) * (dist.abs() <= kernel_size // 2)
    taps = torch.arange(kernel_size, dtype=torch.float32, device=device) - kernel_size // 2
    return weights / torch.exp(-(taps**2) / (2 * sigma**2)).sum()


def blur_preserving_max(heatmaps: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Gaussian-blur every map (zero padding) and rescale it to keep its original maximum.

    The separable blur is done as two small matrix products (much faster on CPU than a
    single-channel conv2d).

    Args:
        heatmaps: (N, K, H, W).

    Returns:
        (N, K, H, W) blurred maps.
    """
    h, w = heatmaps.shape[-2:]
    blur_w = _blur_matrix(w, kernel_size, heatmaps.device).to(heatmaps.dtype)  # (W, W)
    blur_h = _blur_matrix(h, kernel_size, heatmaps.device).to(heatmaps.dtype)  # (H, H)
    blurred = blur_h @ (heatmaps @ blur_w)
    old_max = heatmaps.amax(dim=(-2, -1), keepdim=True)
    new_max = blurred.amax(dim=(-2, -1), keepdim=True)
    ratio = torch.where(new_max > 0, old_max / new_max.clamp_min(1e-12), torch.ones_like(new_max))
    return blurred * ratio


def dark_refine(
    heatmaps: torch.Tensor,
    coords: torch.Tensor,
    maxvals: torch.Tensor,
    *,
    blur_kernel: int = 11,
    max_offset: float = 1.0,
) -> torch.Tensor:
    """DARK (Zhang et al. 2020) sub-pixel refinement by a second-order Taylor step.

    The maps are blurred (keeping their maxima), log-transformed, and at the integer argmax
    (x, y) the Newton step ``-H^-1 g`` is taken with central finite differences (spacing 1):
    gradient g = (f(x+1) - f(x-1)) / 2, Hessian diagonals f(x+1) - 2 f(x) + f(x-1), mixed term
    (f(x+1,y+1) - f(x-1,y+1) - f(x+1,y-1) + f(x-1,y-1)) / 4. Skipped on the one-pixel border,
    where the peak is <= 0, or where the Hessian is not negative definite; each offset component
    is clamped to +-max_offset px as a safety net for noisy maps.

    Args:
        heatmaps: (N, K, H, W).
        coords: (N, K, 2) integer argmax x, y in heatmap pixels.
        maxvals: (N, K) peak values.

    Returns:
        (N, K, 2) refined coordinates.
    """
    _, _, h, w = heatmaps.shape
    logmap = torch.log(blur_preserving_max(heatmaps, blur_kernel).clamp_min(1e-10))
    x = coords[..., 0].round().long()
    y = coords[..., 1].round().long()

    def f(dx: int, dy: int) -> torch.Tensor:
        return _sample(logmap, x + dx, y + dy)

    center = f(0, 0)
    gx = 0.5 * (f(1, 0) - f(-1, 0))
    gy = 0.5 * (f(0, 1) - f(0, -1))
    hxx = f(1, 0) - 2 * center + f(-1, 0)
    hyy = f(0, 1) - 2 * center + f(0, -1)
    hxy = 0.25 * (f(1, 1) - f(-1, 1) - f(1, -1) + f(-1, -1))
    det = hxx * hyy - hxy**2

    ok = (x >= 1) & (x <= w - 2) & (y >= 1) & (y <= h - 2) & (maxvals > 0) & (hxx < 0) & (det > 0)
    safe_det = torch.where(ok, det, torch.ones_like(det))
    # -H^-1 g with H^-1 = [[hyy, -hxy], [-hxy, hxx]] / det
    off_x = -(hyy * gx - hxy * gy) / safe_det
    off_y = -(hxx * gy - hxy * gx) / safe_det
    offset = torch.stack([off_x, off_y], dim=-1).clamp(-max_offset, max_offset)
    return coords + offset * ok[..., None].to(offset.dtype)


__all__ = [
    "MSRAHeatmap",
    "argmax_coords",
    "blur_preserving_max",
    "dark_refine",
    "quarter_refine",
]
