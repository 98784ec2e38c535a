"""Pixel-level transforms of a crop: optional photometric augmentation and input normalisation.

Geometry (crop, scale, rotation, flip, half-body) never goes through albumentations; it is our
own affine math in ``src.geometry`` and the paradigms' datasets. The official recipes use no
photometric augmentation at all, so ``PhotometricAugment`` is off unless configured.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PhotometricAugment:
    """Colour jitter, Gaussian blur, Gaussian noise and occlusion (coarse dropout) of a crop.

    Built from plain values so Hydra can configure it; a probability of 0 leaves that transform
    out. Runs albumentations 2.0.x with its own random state: the dataset calls ``reseed`` in
    every DataLoader worker so workers do not repeat each other. It sees the crop in the channel
    order fed to the model; saturation / hue jitter assume RGB (``color_rgb=True``).

    Args:
        color_jitter_prob: probability of ``ColorJitter``.
        brightness, contrast, saturation: jitter strengths (factor drawn from [1 - v, 1 + v]).
        hue: hue jitter in [-hue, hue] (fraction of the hue circle, at most 0.5).
        blur_prob: probability of ``GaussianBlur``; ``blur_sigma`` its (min, max) sigma in pixels.
        noise_prob: probability of ``GaussNoise``; ``noise_std`` its (min, max) std as a fraction of 255.
        occlusion_prob: probability of ``CoarseDropout``; ``occlusion_holes`` (min, max) number of
            rectangles, ``occlusion_size`` (min, max) side as a fraction of the crop side,
            ``occlusion_fill`` the fill value (a number or "random").
        seed: initial seed of the albumentations random state.
    """

    def __init__(
        self,
        *,
        color_jitter_prob: float = 0.5,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        hue: float = 0.0,
        blur_prob: float = 0.0,
        blur_sigma: Sequence[float] = (0.1, 1.5),
        noise_prob: float = 0.0,
        noise_std: Sequence[float] = (0.01, 0.05),
        occlusion_prob: float = 0.0,
        occlusion_holes: Sequence[int] = (1, 3),
        occlusion_size: Sequence[float] = (0.05, 0.25),
        occlusion_fill: float | str = 0,
        seed: int | None = None,
    ) -> None:
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
        import albumentations as A  # slow import, only when augmentation is configured

        ops: list[Any] = []
        if color_jitter_prob > 0:
            ops.append(
                A.ColorJitter(
                    brightness=(max(0.0, 1 - brightness), 1 + brightness),
                    contrast=(max(0.0, 1 - contrast), 1 + contrast),
                    saturation=(max(0.0, 1 - saturation), 1 + saturation),
                    hue=(-hue, hue),
                    p=color_jitter_prob,
                )
            )
        if blur_prob > 0:
            ops.append(A.GaussianBlur(blur_limit=0, sigma_limit=tuple(blur_sigma), p=blur_prob))
        if noise_prob > 0:
            ops.append(A.GaussNoise(std_range=tuple(noise_std), p=noise_prob))
        if occlusion_prob > 0:
            ops.append(
                A.CoarseDropout(
                    num_holes_range=tuple(int(v) for v in occlusion_holes),
                    hole_height_range=tuple(float(v) for v in occlusion_size),
                    hole_width_range=tuple(float(v) for v in occlusion_size),
                    fill=occlusion_fill,
                    p=occlusion_prob,
                )
            )
        self._compose = A.Compose(ops, seed=seed) if ops else None

    def reseed(self, seed: int) -> None:
        """Reset the random state (called once per DataLoader worker)."""
        if self._compose is not None:
            self._compose.set_random_seed(int(seed) % 2**32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W, 3) uint8."""
        if self._compose is None:
            return image
        return self._compose(image=image)["image"]


def split_augmentation(
    options: dict | None, known: Sequence[str], *, training: bool
) -> tuple[dict[str, Any], PhotometricAugment | None]:
    """A dataset's augmentation options -> (geometric keyword arguments, photometric callable or None).

    Unknown keys raise a ValueError that lists the known ones; the photometric part is built for
    training only.
    """
    options = dict(options or {})
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known: {list(known)}")
    photometric = options.pop("photometric", None)
    return options, (build_photometric(photometric) if training else None)


def build_photometric(config: dict | None) -> PhotometricAugment | None:
    """``None`` or an empty dict -> no augmentation; otherwise ``PhotometricAugment(**config)``."""
    if not config:
        return None
    return PhotometricAugment(**dict(config))


def normalize_image(
    image: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32: ÷255, then (x - mean) / std per channel (official).

    Implemented as a per-channel 256-entry lookup table computed with the official float32
    operations, so the result is bit-identical to ToTensor + Normalize and does not depend on
    torch's thread pool. The channels are normalised in the order they come (the official
    SimpleBaseline configs feed BGR with the RGB statistics; this function does the same).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    tables = _lookup_tables(tuple(float(m) for m in mean), tuple(float(s) for s in std))
    out = np.empty((3, image.shape[0], image.shape[1]), dtype=np.float32)
    for c, plane in enumerate(cv2.split(image)):
        cv2.LUT(plane, tables[c], dst=out[c])  # writes the channel plane in place (CHW, no transpose)
    return torch.from_numpy(out)


def image_tensor(image: np.ndarray, *, on_device: bool) -> torch.Tensor:
    """A crop as the network's input: normalised (3, H, W) float32 (`normalize_image`), or with
    ``on_device`` its (3, H, W) uint8 channels, normalised by the task on the model's device
    (`normalize_images`, the same numbers): a quarter of the bytes through the DataLoader's
    worker queues and pinned memory, and no per-pixel arithmetic in the worker."""
    if not on_device:
        return normalize_image(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    out = np.empty((3, image.shape[0], image.shape[1]), dtype=np.uint8)
    for c, plane in enumerate(cv2.split(image)):
        out[c] = plane
    return torch.from_numpy(out)


def normalize_images(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> float32 on the same device with the official float32 operations
    (÷255, then (x - mean) / std per channel): bit-identical to `normalize_image` per sample."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) uint8 images, got {images.dtype} {tuple(images.shape)}")
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return images.float().div_(255.0).sub_(m).div_(s)


@functools.lru_cache(maxsize=8)
def _lookup_tables(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Three (1, 256) float32 tables: the normalised value of every uint8 level, per channel."""
    levels = torch.arange(256, dtype=torch.float32).div_(255.0)
    tables = []
    for m, s in zip(mean, std):
        values = (levels - torch.tensor(m, dtype=torch.float32)).div_(torch.tensor(s, dtype=torch.float32))
        tables.append(np.ascontiguousarray(values.numpy()[None]))
    return tuple(tables)
