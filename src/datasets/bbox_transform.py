"""mmpose 1.x box augmentation of top-down crops: RandomFlip, RandomHalfBody and RandomBBoxTransform.

mmpose describes a crop by a box centre and a box size in pixels (``bbox_scale``, already padded by
``GetBBoxCenterScale``, not yet grown to the input aspect ratio) and a rotation. Its training
pipeline changes them in this order, each decision ``u < p`` with u ~ U(0, 1) unless said otherwise:

1. ``RandomFlip``: mirror with probability ``flip_prob`` (x <- W - 1 - x for the centre and the
   keypoints, left / right swapped).
2. ``RandomHalfBody``: only for a person with at least ``min_total_keypoints`` visible keypoints,
   and when u <= ``half_body_prob``. A second draw u < ``upper_prioritized_prob`` prefers the upper
   half. With fewer than ``min_upper_keypoints`` visible upper and fewer than
   ``min_lower_keypoints`` visible lower keypoints nothing changes; when only one half is short the
   other is taken; otherwise the preferred one. The new box: the mean of the chosen visible
   keypoints, size (max - min) * ``half_body_padding``.
3. ``RandomBBoxTransform``: four draws t of N(0, 1) truncated to [-1, 1]; then
   centre += (t0, t1) * ``shift_factor`` * size with probability ``shift_prob``; size *= mu + t2 *
   sigma with probability ``scale_prob`` (mu, sigma: mid-point and half-width of ``scale_factor``);
   rotation = t3 * ``rotate_factor`` degrees with probability ``rotate_prob``, else 0.
4. ``TopdownAffine`` grows the short side of the size to the input aspect ratio (`src.geometry.fix_aspect_ratio`).

Here the geometry is computed in the unmirrored image and the centre is mirrored afterwards by the
dataset; the x shift is negated for a mirrored sample, so the result is the one mmpose computes from
the same random numbers (its shift acts after the mirror). The half body is mirror-symmetric (the
upper and lower sets contain both sides), so it needs no such care.

Shapes: K keypoints. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

_NORMAL = NormalDist()
_CDF_LOW, _CDF_HIGH = _NORMAL.cdf(-1.0), _NORMAL.cdf(1.0)


def truncated_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size,) float32 draws of N(0, 1) truncated to [-1, 1] (scipy's ``truncnorm(-1, 1)``, the
    sampler of mmpose's RandomBBoxTransform), by the inverse CDF of one uniform draw each."""
    u = rng.random(size)
    values = [_NORMAL.inv_cdf(_CDF_LOW + float(v) * (_CDF_HIGH - _CDF_LOW)) for v in u]
    return np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0).astype(np.float32)


class BoxDraw(NamedTuple):
    """One sample's crop: centre (2,) and size (2,) in pixels (size not aspect-fixed), rotation in
    degrees, whether the sample is mirrored, whether the half-body box was used."""

    center: np.ndarray
    size: np.ndarray
    rotation: float
    flipped: bool
    half_body: bool


@dataclass(frozen=True)
class BoxAugmentation:
    """The parameters of mmpose's RandomFlip + RandomHalfBody + RandomBBoxTransform (defaults: mmpose's).

    Args:
        flip_prob: RandomFlip ``prob``.
        half_body_prob: RandomHalfBody ``prob``.
        min_total_keypoints, min_upper_keypoints, min_lower_keypoints: RandomHalfBody's thresholds.
        half_body_padding: RandomHalfBody ``padding`` of the half-body box.
        upper_prioritized_prob: RandomHalfBody's probability of preferring the upper half.
        shift_factor, shift_prob: RandomBBoxTransform's centre shift (fraction of the box size).
        scale_factor: RandomBBoxTransform's (low, high) box size factor range.
        scale_prob: probability of the size change.
        rotate_factor, rotate_prob: RandomBBoxTransform's maximum rotation (degrees) and its probability.
    """

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    min_total_keypoints: int = 9
    min_upper_keypoints: int = 2
    min_lower_keypoints: int = 3
    half_body_padding: float = 1.5
    upper_prioritized_prob: float = 0.7
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_factor: tuple[float, float] = (0.5, 1.5)
    scale_prob: float = 1.0
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *, where: str) -> BoxAugmentation:
        """The parameters of a config block (missing keys: mmpose's defaults), checked; errors name
        ``where`` (e.g. "TopDownDataset: mmpose") and the key."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(cls.keys()))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; known: {list(cls.keys())}")
        values: dict[str, Any] = {}
        for key, value in config.items():
            if key == "scale_factor":
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
                    raise ValueError(f"{where}: scale_factor is a (low, high) pair, got {value!r}")
                low, high = float(value[0]), float(value[1])
                if not 0.0 < low <= high:
                    raise ValueError(f"{where}: scale_factor needs 0 < low <= high, got {value!r}")
                values[key] = (low, high)
            elif key.startswith("min_"):
                if int(value) != value or int(value) < 0:
                    raise ValueError(f"{where}: {key} is a count >= 0, got {value!r}")
                values[key] = int(value)
            elif key.endswith("_prob"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{where}: {key} is a probability in [0, 1], got {value!r}")
                values[key] = float(value)
            else:  # shift_factor, half_body_padding, rotate_factor
                if not float(value) >= 0.0:
                    raise ValueError(f"{where}: {key} must be >= 0, got {value!r}")
                values[key] = float(value)
        return cls(**values)

    def half_body(
        self,
        rng: np.random.Generator,
        joints: np.ndarray,
        visible: np.ndarray,
        upper_ids: Sequence[int],
        lower_ids: Sequence[int],
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """RandomHalfBody's box (centre (2,), size (2,) pixels) or None; the draws as mmpose makes them.

        Args:
            joints: (K, 2) pixels; visible: (K,), > 0 is visible.
        """
        vis = np.asarray(visible).reshape(-1) > 0
        if vis.sum() < self.min_total_keypoints or rng.random() > self.half_body_prob:
            return None
        upper = [i for i in upper_ids if vis[i]]
        lower = [i for i in lower_ids if vis[i]]
        prefer_upper = rng.random() < self.upper_prioritized_prob
        upper_short = len(upper) < self.min_upper_keypoints
        lower_short = len(lower) < self.min_lower_keypoints
        if upper_short and lower_short:
            return None
        if lower_short:
            chosen = upper
        elif upper_short:
            chosen = lower
        else:
            chosen = upper if prefer_upper else lower
        selected = np.asarray(joints, dtype=np.float32)[chosen]
        size = (selected.max(axis=0) - selected.min(axis=0)) * np.float32(self.half_body_padding)
        if not size.any():  # coincident keypoints give no box; mmpose's warp would be singular
            return None
        return selected.mean(axis=0), size

    def draw(
        self,
        rng: np.random.Generator,
        *,
        joints: np.ndarray,
        visible: np.ndarray,
        center: np.ndarray,
        size: np.ndarray,
        upper_ids: Sequence[int],
        lower_ids: Sequence[int],
    ) -> BoxDraw:
        """One sample's crop, drawn in mmpose's order (flip, half body, shift / scale / rotation).

        Args:
            joints: (K, 2) pixels of the unmirrored image; visible: (K,).
            center: (2,) box centre; size: (2,) padded box size in pixels (mmpose's ``bbox_scale``).

        Returns:
            the crop in the unmirrored image (`BoxDraw`); the caller mirrors the centre when flipped.
        """
        flipped = bool(rng.random() < self.flip_prob)
        center = np.asarray(center, dtype=np.float32).copy()
        size = np.asarray(size, dtype=np.float32).copy()
        half = self.half_body(rng, joints, visible, upper_ids, lower_ids)
        if half is not None:
            center, size = half
        t = truncated_normal(rng, 4)
        shift_u, scale_u, rotate_u = rng.random(3)
        if shift_u < self.shift_prob:
            offset = t[:2] * np.float32(self.shift_factor)
            if flipped:  # mmpose shifts the mirrored box: +dx there is -dx here
                offset[0] = -offset[0]
            center = center + offset * size
        if scale_u < self.scale_prob:
            low, high = self.scale_factor
            size = size * np.float32(t[2] * (high - low) * 0.5 + (high + low) * 0.5)
        rotation = float(t[3] * np.float32(self.rotate_factor)) if rotate_u < self.rotate_prob else 0.0
        return BoxDraw(center.astype(np.float32), size.astype(np.float32), rotation, flipped, half is not None)
