"""UDP Gaussian heatmap codec (Huang et al. 2020, "The Devil is in the Details"), as mmpose 1.x's
``UDPHeatmap`` with ``heatmap_type='gaussian'`` (ViTPose, HRNet-UDP).

UDP measures sizes in pixel *intervals*: a crop of w pixels spans w - 1 units, so the crop warp,
the heatmap scale and the decoding all use ``size - 1``:

* ``crop_transform``: mmpose's ``get_udp_warp_matrix``. With box = 200 * scale (w_b, h_b) and
  s = ((w_in - 1) / w_b, (h_in - 1) / h_b), an image point p goes to
  ``crop = diag(s) (R(theta) (p - center) + (w_b, h_b) / 2)``, ``R(theta) = [[cos, -sin], [sin, cos]]``
  about the box centre: the box's first pixel column lands on crop column 0 and a point w_b image
  pixels further on column w_in - 1. (mmpose's UDP rotation turns the other way round than its
  standard warp; training draws symmetric angles, so only the sign of ``rotation`` differs.)
* ``encode``: keypoints in crop pixels divided by (input - 1) / (heatmap - 1) (float32), centre
  cell ``mu = int64(kp + 0.5)`` (truncation toward zero, so -7.38 gives -6), a window of half size
  3 sigma around ``mu`` holding the Gaussian ``exp(-|X - kp|^2 / 2 sigma^2)`` evaluated at the exact
  sub-pixel keypoint (peak below 1 off the grid), zero elsewhere. Joints with visibility < 0.5
  get an empty map and keep their visibility as weight; a labelled joint whose window lies wholly
  outside the map gets weight 0.
* ``decode``: mmpose's DARK-UDP: argmax (location -1 where the peak is <= 0), Gaussian blur of
  every map with zero padding rescaled to keep its maximum (an all-zero map becomes NaN: 0 / 0),
  clip to [1e-3, 50], log, replicate padding by one, one Newton step ``-(H + eps I)^-1 g`` with
  central differences on the flattened padded maps (a location of -1 reads its neighbours across
  the channel boundary, as mmpose does), then to crop pixels by ``decode_scale``:

  - ``"mmpose"`` (default, the published numbers): ``* input / (heatmap - 1)``. In crop pixels this
    is the encoding's position stretched by input / (input - 1) about the crop origin: +0.5 px at
    the crop centre (96 -> 96.5 for 192 px), +1 px at the far edge;
  - ``"consistent"``: ``* (input - 1) / (heatmap - 1)``, the exact inverse of the encoding.

  ``crop_to_image`` pairs each with its inverse of the UDP warp (rotation 0):
  ``"mmpose"`` uses mmpose's ``kp / input * box + center - box / 2`` (the stretch above cancels
  the ``input`` there), ``"consistent"`` uses ``kp / (input - 1) * box + center - box / 2``. End
  to end (crop -> encode -> decode -> image) both land on the annotated point: they differ only in
  the crop-pixel coordinates ``decode`` reports. Mixing them (the consistent decoding with mmpose's
  mapping) would move points by -kp / (input - 1) * box / input, up to one crop pixel.
* Flip test: mirrored and channel-swapped maps without the one-column shift
  (``evaluation_defaults = {"shift_heatmap": False}``, ViTPose's test_cfg); UDP's geometry makes
  the mirrored crop's heatmap columns exactly the mirrored columns.

Shapes: N instances, K keypoints, H x W heatmaps. Sizes are (w, h).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from src.codecs.base import as_numpy
from src.codecs.heatmap_family import HeatmapCodec
from src.geometry import PIXEL_STD

DECODE_SCALES = ("mmpose", "consistent")

# OpenCV's fixed kernels for sigma <= 0 and sizes up to 7 (getGaussianKernel); larger sizes use
# sigma = 0.3 ((size - 1) / 2 - 1) + 0.8.
_OPENCV_SMALL_KERNELS = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}


class UDPHeatmap(HeatmapCodec):
    """Encode keypoints to UDP Gaussian heatmaps and decode them with DARK-UDP.

    Args:
        input_size: (w, h) of the network input crop in pixels.
        heatmap_size: (w, h) of the heatmaps.
        sigma: Gaussian standard deviation in heatmap pixels (ViTPose: 2).
        blur_kernel_size: odd size of the Gaussian blur before the Taylor step (11 for sigma 2).
        decode_scale: "mmpose" (input / (heatmap - 1), mmpose's code) or "consistent"
            ((input - 1) / (heatmap - 1), the inverse of the encoding); see the module docstring.
    """

    evaluation_defaults = {"shift_heatmap": False}

    def __init__(
        self,
        *,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float = 2.0,
        blur_kernel_size: int = 11,
        decode_scale: str = "mmpose",
    ) -> None:
        if not isinstance(sigma, numbers.Real) or sigma <= 0:
            raise ValueError(f"UDPHeatmap: sigma must be a positive number (heatmap pixels), got {sigma!r}")
        if int(blur_kernel_size) != blur_kernel_size or blur_kernel_size < 1 or blur_kernel_size % 2 == 0:
            raise ValueError(f"UDPHeatmap: blur_kernel_size must be a positive odd int, got {blur_kernel_size}")
        if decode_scale not in DECODE_SCALES:
            raise ValueError(f"UDPHeatmap: decode_scale must be one of {DECODE_SCALES}, got {decode_scale!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        if min(self.input_size) < 2 or min(self.heatmap_size) < 2:
            raise ValueError(
                f"UDPHeatmap: input_size {self.input_size} and heatmap_size {self.heatmap_size} must be at least 2 "
                "pixels on each side (UDP divides by size - 1)"
            )
        self.sigma = float(sigma)
        self.blur_kernel_size = int(blur_kernel_size)
        self.decode_scale = decode_scale
        inputs = np.array(self.input_size, np.float64)
        intervals = np.array(self.heatmap_size, np.float64) - 1
        # (2,) crop pixels per heatmap pixel of the encoding, float32 as mmpose stores it
        self.scale_factor = ((inputs - 1) / intervals).astype(np.float32)
        # (2,) heatmap pixels -> crop pixels in `decode`; crop_to_image divides by the matching size
        self._decode_factor = inputs / intervals if decode_scale == "mmpose" else (inputs - 1) / intervals
        self._crop_span = inputs if decode_scale == "mmpose" else inputs - 1

    # ------------------------------------------------------------------ crop geometry
    def crop_transform(self, center: np.ndarray, scale: np.ndarray, rotation: float) -> np.ndarray:
        """(2, 3) float64 UDP warp (mmpose ``get_udp_warp_matrix``) from image to crop pixels.

        Args:
            center: (2,) box centre in image pixels.
            scale: (2,) box size in units of 200 px (both components are used).
            rotation: degrees, about the box centre.
        """
        box = np.asarray(scale, np.float64).reshape(2) * PIXEL_STD
        center = np.asarray(center, np.float64).reshape(2)
        theta = np.deg2rad(float(rotation))
        cos, sin = np.cos(theta), np.sin(theta)
        stretch = (np.array(self.input_size, np.float64) - 1) / box  # (2,) crop pixel intervals per image pixel
        linear = stretch[:, None] * np.array([[cos, -sin], [sin, cos]])
        translation = stretch * box / 2 - linear @ center
        return np.concatenate([linear, translation[:, None]], axis=1)

    def crop_to_image(self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Crop pixels (N, K, 2) of `decode` -> image pixels (N, K, 2) float64 (rotation 0):
        ``kp / span * box + center - box / 2`` with span = input ("mmpose") or input - 1 ("consistent")."""
        box = as_numpy(scales).astype(np.float64).reshape(-1, 1, 2) * PIXEL_STD
        centers = as_numpy(centers).astype(np.float64).reshape(-1, 1, 2)
        return np.asarray(coords, np.float64) / self._crop_span * box + centers - 0.5 * box

    # ------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """Keypoints in crop pixels -> {"heatmaps": (K, H, W) float32, "target_weight": (K,) float32}.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility (labelled where >= 0.5).
        """
        heatmaps, weight = self.encode_heatmaps(keypoints, visible)
        return {"heatmaps": heatmaps, "target_weight": weight}

    def encode_heatmaps(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mmpose's ``generate_udp_gaussian_heatmaps`` for one instance, vectorised over joints.

        Args:
            keypoints: (K, 2) x, y in input-crop pixels.
            visible: (K,) visibility.

        Returns:
            heatmaps (K, H, W) float32, target_weight (K,) float32.
        """
        points = np.asarray(keypoints, np.float32).reshape(-1, 2) / self.scale_factor  # (K, 2) heatmap pixels
        weight = np.asarray(visible, np.float32).reshape(-1).copy()
        if len(weight) != len(points):
            raise ValueError(f"UDPHeatmap.encode: {len(points)} keypoints but {len(weight)} visibilities")
        w, h = self.heatmap_size
        radius = 3 * self.sigma
        mu = (points + np.float32(0.5)).astype(np.int64)  # truncation toward zero
        origin = (mu - radius).astype(np.int64)  # (K, 2) window's first cell
        end = (mu + radius + 1).astype(np.int64)  # (K, 2) exclusive
        labelled = weight >= 0.5
        outside = (origin[:, 0] >= w) | (origin[:, 1] >= h) | (end[:, 0] < 0) | (end[:, 1] < 0)
        weight[labelled & outside] = 0.0
        drawn = labelled & ~outside

        # Window cell i holds exp(-((i - c)^2) / 2 sigma^2), c = (2 radius + 1) // 2 + (kp - mu), and
        # sits at map cell origin + i (c is rounded to float32 before use, as numpy did for mmpose).
        centre = (np.floor((2 * radius + 1) / 2) + (points.astype(np.float64) - mu)).astype(np.float32)  # (K, 2)
        cells_x = np.arange(w, dtype=np.float32)[None, :] - origin[:, 0:1].astype(np.float32)  # (K, W) window index
        cells_y = np.arange(h, dtype=np.float32)[None, :] - origin[:, 1:2].astype(np.float32)  # (K, H)
        dx2 = (cells_x - centre[:, 0:1]) ** 2
        dy2 = (cells_y - centre[:, 1:2]) ** 2
        values = np.exp(-(dy2[:, :, None] + dx2[:, None, :]) / np.float32(2 * self.sigma**2))  # (K, H, W)
        in_x = (np.arange(w)[None, :] >= origin[:, 0:1]) & (np.arange(w)[None, :] < end[:, 0:1])
        in_y = (np.arange(h)[None, :] >= origin[:, 1:2]) & (np.arange(h)[None, :] < end[:, 1:2])
        window = in_y[:, :, None] & in_x[:, None, :] & drawn[:, None, None]
        heatmaps = np.where(window, values, np.float32(0)).astype(np.float32)
        return heatmaps, weight

    # ------------------------------------------------------------------ decode
    def decode_heatmaps(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps -> DARK-UDP coordinates in heatmap pixels (float32 arithmetic as mmpose).

        Args:
            heatmaps: (N, K, H, W) tensor (any float dtype / device); numpy is accepted.

        Returns:
            coords (N, K, 2) float32 x, y in heatmap pixels (NaN for an all-zero map); scores (N, K)
            float32 peak values.
        """
        heatmaps = torch.as_tensor(heatmaps).detach().float()
        if heatmaps.ndim != 4:
            raise ValueError(f"UDPHeatmap.decode: heatmaps must be (N, K, H, W), got {tuple(heatmaps.shape)}")
        coords, scores = heatmap_maximum(heatmaps)
        return dark_udp_refine(heatmaps, coords, blur_kernel_size=self.blur_kernel_size), scores

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps (N, K, H, W) -> keypoints (N, K, 2) float32 in input-crop pixels (``decode_scale``),
        scores (N, K)."""
        coords, scores = self.decode_heatmaps(heatmaps)
        factor = torch.as_tensor(self._decode_factor, dtype=torch.float64, device=coords.device)
        return (coords.double() * factor).float(), scores

    def __repr__(self) -> str:
        return (
            f"UDPHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma}, "
            f"blur_kernel_size={self.blur_kernel_size}, decode_scale={self.decode_scale!r})"
        )


def heatmap_maximum(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mmpose's ``get_heatmap_maximum``: first argmax per map, location -1 where the peak is <= 0.

    Args:
        heatmaps: (N, K, H, W).

    Returns:
        coords (N, K, 2) float32 x, y; scores (N, K) float32 peak values.
    """
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index = flat.argmax(dim=-1)
    scores = flat.gather(-1, index[..., None]).squeeze(-1)
    coords = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=-1).float()
    coords = torch.where((scores <= 0)[..., None], torch.full_like(coords, -1.0), coords)
    return coords, scores.float()


def opencv_gaussian_kernel(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size,) the 1-D kernel of ``cv2.GaussianBlur(..., (size, size), 0)``."""
    if size in _OPENCV_SMALL_KERNELS:
        return torch.tensor(_OPENCV_SMALL_KERNELS[size], dtype=dtype, device=device)
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    taps = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(dtype)


def _band(length: int, kernel: torch.Tensor) -> torch.Tensor:
    """(length, length) matrix M with (x @ M) the zero-padded 1-D convolution of x with ``kernel``."""
    half = len(kernel) // 2
    idx = torch.arange(length, device=kernel.device)
    offset = idx[:, None] - idx[None, :] + half  # kernel tap joining input i to output j
    inside = (offset >= 0) & (offset < len(kernel))
    return torch.where(inside, kernel[offset.clamp(0, len(kernel) - 1)], torch.zeros((), dtype=kernel.dtype))


def blur_keep_max(heatmaps: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """mmpose's ``gaussian_blur``: each map blurred with zero padding (OpenCV's kernel), then scaled
    by (its maximum before) / (its maximum after), with no guard: an all-zero map becomes NaN and
    a map whose blurred maximum changes sign flips sign.

    Args:
        heatmaps: (N, K, H, W) float.

    Returns:
        (N, K, H, W) blurred maps.
    """
    h, w = heatmaps.shape[-2:]
    kernel = opencv_gaussian_kernel(kernel_size, heatmaps.dtype, heatmaps.device)
    blurred = _band(h, kernel).T @ (heatmaps @ _band(w, kernel))
    old_max = heatmaps.amax(dim=(-2, -1), keepdim=True)
    new_max = blurred.amax(dim=(-2, -1), keepdim=True)
    return blurred * (old_max / new_max)


def dark_udp_refine(heatmaps: torch.Tensor, coords: torch.Tensor, *, blur_kernel_size: int = 11) -> torch.Tensor:
    """mmpose's ``refine_keypoints_dark_udp``: one Newton step on the blurred log-heatmaps.

    The maps are blurred (`blur_keep_max`), clipped to [1e-3, 50], log-transformed and padded by
    one replicated cell; each instance's K padded maps are read as one flat array, at the argmax
    and its neighbours (indices wrap around the array, so a location of -1 reads the previous
    channel, and channel 0 the last one, exactly as numpy's negative indices do for mmpose).
    With central differences g = (dx, dy), H = [[dxx, dxy], [dxy, dyy]] (dxy from the four-cell
    formula 0.5 (I(x+1,y+1) - I(x+1) - I(y+1) + 2 I - I(x-1) - I(y-1) + I(x-1,y-1))), the offset is
    -(H + eps I)^-1 g with eps the float32 machine epsilon, in float64 as numpy does. No offset is
    clamped and no border is skipped. (mmpose's numpy raises on an exactly singular H + eps I;
    here that keypoint becomes inf / NaN.)

    Args:
        heatmaps: (N, K, H, W) float32.
        coords: (N, K, 2) integer-valued x, y (or -1) from `heatmap_maximum`.

    Returns:
        (N, K, 2) float32 refined coordinates in heatmap pixels.
    """
    n, k, h, w = heatmaps.shape
    logmap = torch.log(blur_keep_max(heatmaps, blur_kernel_size).clamp(1e-3, 50.0))
    flat = F.pad(logmap, (1, 1, 1, 1), mode="replicate").reshape(n, -1)  # (N, K (H+2) (W+2))
    row = w + 2
    channel = torch.arange(k, device=heatmaps.device) * (row * (h + 2))
    index = (coords[..., 0] + 1 + (coords[..., 1] + 1) * row).long() + channel  # (N, K)

    def at(offset: int) -> torch.Tensor:
        return flat.gather(1, torch.remainder(index + offset, flat.shape[1]))

    i_ = at(0)
    ix1, ix1_ = at(1), at(-1)
    iy1, iy1_ = at(row), at(-row)
    ix1y1, ix1_y1_ = at(row + 1), at(-row - 1)
    dx = 0.5 * (ix1 - ix1_)
    dy = 0.5 * (iy1 - iy1_)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)

    eps = float(np.finfo(np.float32).eps)
    a, b, d = dxx.double() + eps, dxy.double(), dyy.double() + eps
    det = a * d - b * b
    step_x = (d * dx.double() - b * dy.double()) / det
    step_y = (a * dy.double() - b * dx.double()) / det
    return (coords.double() - torch.stack([step_x, step_y], dim=-1)).float()


__all__ = ["DECODE_SCALES", "UDPHeatmap", "blur_keep_max", "dark_udp_refine", "heatmap_maximum"]
