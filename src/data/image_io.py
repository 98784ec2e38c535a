"""Image reading with OpenCV, as the official top-down code does.

``cv2.imread(path, IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION)`` always yields 3 channels (grayscale
is replicated, alpha is dropped) and ignores EXIF orientation, so pixel coordinates agree with
the COCO annotations.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from src.data.errors import ImageDecodeError

_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

__all__ = ["ImageDecodeError", "read_image"]


def read_image(path: str | Path, *, color_rgb: bool) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8, RGB if ``color_rgb`` else BGR (OpenCV order).

    Raises:
        FileNotFoundError: ``path`` does not exist (message names the path).
        ImageDecodeError: the file cannot be decoded (message names the path).
    """
    path = str(path)
    if not os.path.isfile(path):  # checked first: imread would only print a warning and return None
        raise FileNotFoundError(f"image file not found: {path}")
    image = cv2.imread(path, _READ_FLAGS)
    if image is None:
        raise ImageDecodeError(f"cannot decode image file (corrupt or not an image): {path}")
    if image.ndim == 2:  # defensive: some codecs ignore IMREAD_COLOR
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if color_rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image
