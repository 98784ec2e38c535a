"""RTMPose's photometric stage of a training crop, after the affine warp, as mmpose applies it.

1. mmdet's ``YOLOXHSVRandomAug``: gains g = U(-1, 1) * (hue_delta, saturation_delta, value_delta),
   each kept with probability 1/2 (times a draw from {0, 1}), truncated towards zero to integers;
   the crop goes to OpenCV's 8-bit HSV (H in [0, 180)), H <- (H + g_h) mod 180, S and V <- clip(S + g_s,
   0, 255) and clip(V + g_v, 0, 255), and back. The round trip runs even when all gains are 0 (it
   rounds), as in mmdet.
2. albumentations ``Blur`` (box filter, odd kernel from ``blur_limit``), ``MedianBlur`` and
   ``CoarseDropout`` (``dropout_holes`` rectangles of int(U(dropout_height) * H) x
   int(U(dropout_width) * W) pixels at uniform integer corners, filled with ``dropout_fill``), each
   with its own probability. mmpose's configs use albumentations 1.x names (``max_holes``,
   ``max_height`` ...); albumentations 2.0.x takes ``num_holes_range`` / ``hole_height_range`` /
   ``hole_width_range`` and draws fractional sizes the same way.

Only pixels change: keypoints and targets are those of the warped crop. The random numbers come from
the item's generator (the albumentations state is reseeded from it for every crop), so a sample's
crop is a function of (seed, epoch, index) like its geometry.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np


def draw_hsv_gains(rng: np.random.Generator, deltas: Sequence[float]) -> np.ndarray:
    """(3,) int16 gains of (hue, saturation, value), drawn as YOLOXHSVRandomAug draws them."""
    gains = rng.uniform(-1.0, 1.0, 3) * np.asarray(deltas, dtype=np.float64)
    gains *= rng.integers(0, 2, 3)
    return gains.astype(np.int16)


def shift_hsv(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> a new (H, W, 3) uint8 BGR with the HSV gains (3,) applied in OpenCV's
    8-bit HSV: hue wraps modulo 180, saturation and value clip to [0, 255]."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def _pair(where: str, key: str, value: Any, kind: type) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{where}: {key} is a (low, high) pair, got {value!r}")
    low, high = kind(value[0]), kind(value[1])
    if not 0 <= low <= high:
        raise ValueError(f"{where}: {key} needs 0 <= low <= high, got {value!r}")
    return low, high


class CropPhotometric:
    """mmdet YOLOXHSVRandomAug, then albumentations Blur, MedianBlur and CoarseDropout, on a BGR crop.

    Defaults are RTMPose's stage 1 (``train_pipeline``); its stage 2 sets ``dropout_prob=0.5``. A
    probability of 0 leaves that transform out; all three deltas 0 leave the HSV step out.

    Args:
        hue_delta, saturation_delta, value_delta: YOLOXHSVRandomAug's deltas (OpenCV HSV units).
        blur_prob, blur_limit: Blur's probability and (min, max) odd kernel size.
        median_blur_prob, median_blur_limit: MedianBlur's.
        dropout_prob: CoarseDropout's probability; ``dropout_holes`` (min, max) number of holes;
            ``dropout_height`` / ``dropout_width`` (min, max) hole side as a fraction of the crop side;
            ``dropout_fill`` the fill value.
    """

    def __init__(
        self,
        *,
        hue_delta: float = 5.0,
        saturation_delta: float = 30.0,
        value_delta: float = 30.0,
        blur_prob: float = 0.1,
        blur_limit: Sequence[int] = (3, 7),
        median_blur_prob: float = 0.1,
        median_blur_limit: Sequence[int] = (3, 7),
        dropout_prob: float = 1.0,
        dropout_holes: Sequence[int] = (1, 1),
        dropout_height: Sequence[float] = (0.2, 0.4),
        dropout_width: Sequence[float] = (0.2, 0.4),
        dropout_fill: float = 0.0,
        where: str = "CropPhotometric",
    ) -> None:
        for key, value in (
            ("hue_delta", hue_delta),
            ("saturation_delta", saturation_delta),
            ("value_delta", value_delta),
        ):
            if not float(value) >= 0:
                raise ValueError(f"{where}: {key} must be >= 0, got {value!r}")
        for key, value in (
            ("blur_prob", blur_prob),
            ("median_blur_prob", median_blur_prob),
            ("dropout_prob", dropout_prob),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{where}: {key} is a probability in [0, 1], got {value!r}")
        self.deltas = (float(hue_delta), float(saturation_delta), float(value_delta))
        self.blur_prob = float(blur_prob)
        self.blur_limit = _pair(where, "blur_limit", blur_limit, int)
        self.median_blur_prob = float(median_blur_prob)
        self.median_blur_limit = _pair(where, "median_blur_limit", median_blur_limit, int)
        self.dropout_prob = float(dropout_prob)
        self.dropout_holes = _pair(where, "dropout_holes", dropout_holes, int)
        self.dropout_height = _pair(where, "dropout_height", dropout_height, float)
        self.dropout_width = _pair(where, "dropout_width", dropout_width, float)
        if self.dropout_height[1] >= 1 or self.dropout_width[1] >= 1:  # albumentations reads >= 1 as pixels
            raise ValueError(
                f"{where}: dropout_height / dropout_width are fractions of the crop side in [0, 1), "
                f"got {self.dropout_height} / {self.dropout_width}"
            )
        if self.dropout_holes[0] < 1:
            raise ValueError(f"{where}: dropout_holes needs at least one hole, got {self.dropout_holes}")
        self.dropout_fill = float(dropout_fill)
        self._compose: Any = None  # built on first use: importing albumentations takes seconds

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        params = inspect.signature(cls.__init__).parameters
        return tuple(name for name, p in params.items() if p.kind == p.KEYWORD_ONLY and name != "where")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *, where: str) -> CropPhotometric | None:
        """None for a missing or empty block (no photometric stage), else the stage (missing keys:
        RTMPose's stage-1 values); unknown keys raise a ValueError naming ``where``."""
        if not config:
            return None
        unknown = sorted(set(config) - set(cls.keys()))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; known: {list(cls.keys())}")
        return cls(**dict(config), where=where)

    def _albumentations(self) -> Any:
        """The albumentations part (Blur, MedianBlur, CoarseDropout; those with p > 0), or None."""
        ops: list[Any] = []
        if self.blur_prob == self.median_blur_prob == self.dropout_prob == 0:
            return None
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
        import albumentations as A  # slow import, only when this stage is configured

        if self.blur_prob > 0:
            ops.append(A.Blur(blur_limit=self.blur_limit, p=self.blur_prob))
        if self.median_blur_prob > 0:
            ops.append(A.MedianBlur(blur_limit=self.median_blur_limit, p=self.median_blur_prob))
        if self.dropout_prob > 0:
            ops.append(
                A.CoarseDropout(
                    num_holes_range=self.dropout_holes,
                    hole_height_range=self.dropout_height,
                    hole_width_range=self.dropout_width,
                    fill=self.dropout_fill,
                    p=self.dropout_prob,
                )
            )
        return A.Compose(ops, seed=0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8 BGR crop -> a new (H, W, 3) uint8 BGR crop, drawn from ``rng``."""
        if any(self.deltas):
            image = shift_hsv(image, draw_hsv_gains(rng, self.deltas))
        if self._compose is None and (self.blur_prob or self.median_blur_prob or self.dropout_prob):
            self._compose = self._albumentations()
        if self._compose is not None:
            self._compose.set_random_seed(int(rng.integers(2**32)))
            image = self._compose(image=image)["image"]
        return image

    def __repr__(self) -> str:
        return (
            f"CropPhotometric(deltas={self.deltas}, blur_prob={self.blur_prob}, "
            f"median_blur_prob={self.median_blur_prob}, dropout_prob={self.dropout_prob}, "
            f"dropout_height={self.dropout_height}, dropout_width={self.dropout_width})"
        )
