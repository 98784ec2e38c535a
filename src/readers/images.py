"""Image reading with OpenCV, as the official top-down code does.

``cv2.imread(path, IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION)`` always yields 3 channels (grayscale
is replicated, alpha is dropped) and ignores EXIF orientation, so pixel coordinates agree with
the COCO annotations.

`read_image_for_crop` is the faster reader of training crops (``data.reduced_decode``): when the
crop shrinks the image by a factor of 2, 4 or 8 or more, a JPEG is decoded at that fraction of
its size by libjpeg's scaled DCT (``IMREAD_REDUCED_COLOR_r``, about a third less time at 1/2 on
COCO images) and the crop is warped from it. Pixel ``i`` of the reduced image covers full pixels
``[r i, r i + r)``, centred on ``r i + (r - 1) / 2`` (`src.geometry.warp_from_reduced`). The
reduced image still has at least one pixel per crop pixel, and it is an area average rather than
a point sample, so the crop is a slightly smoother version of the official one; joints and targets
are unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from src.readers.errors import ImageDecodeError

_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
_REDUCED_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic): they carry
# the frame's height and width. C4 (Huffman tables), C8 (reserved) and CC (arithmetic conditioning)
# are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

__all__ = ["ImageDecodeError", "jpeg_size", "read_image", "read_image_for_crop", "reduction_for"]


def _check_exists(path: str) -> None:
    if not os.path.isfile(path):  # checked first: imread would only print a warning and return None
        raise FileNotFoundError(f"image file not found: {path}")


def _as_bgr(image: np.ndarray | None, path: str) -> np.ndarray:
    if image is None:
        raise ImageDecodeError(f"cannot decode image file (corrupt or not an image): {path}")
    if image.ndim == 2:  # defensive: some codecs ignore IMREAD_COLOR
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def read_image(path: str | Path, *, color_rgb: bool) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8, RGB if ``color_rgb`` else BGR (OpenCV order).

    Raises:
        FileNotFoundError: ``path`` does not exist (message names the path).
        ImageDecodeError: the file cannot be decoded (message names the path).
    """
    path = str(path)
    _check_exists(path)
    image = _as_bgr(cv2.imread(path, _READ_FLAGS), path)
    if color_rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def jpeg_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame header, or None when ``data`` is not a JPEG
    whose frame header can be found (then the caller decodes it in full)."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _SOF_MARKERS:
            if i + 9 > n or length < 7:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return (height, width) if height > 0 and width > 0 else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a valid JPEG
            return None
        i += 2 + length
    return None


def reduction_for(shrink: float) -> int:
    """The largest JPEG decode reduction (8, 4 or 2) not above ``shrink`` (source pixels per crop
    pixel), else 1: the reduced image keeps at least one pixel per crop pixel."""
    for r in (8, 4, 2):
        if shrink >= r:
            return r
    return 1


def read_image_for_crop(path: str | Path, *, shrink: float) -> tuple[np.ndarray, int, tuple[int, int]]:
    """An image for a crop that takes ``shrink`` source pixels per crop pixel, BGR uint8.

    Returns:
        (image, r, (height, width)): the image decoded at 1/r of its size (r = `reduction_for`
        ``(shrink)`` for JPEGs, 1 for other formats), and the full size of the file's image.
        Warp with ``warp_from_reduced(matrix, r)``.

    Raises:
        FileNotFoundError, ImageDecodeError: as `read_image`.
    """
    path = str(path)
    r = reduction_for(shrink)
    if r == 1:
        image = read_image(path, color_rgb=False)
        return image, 1, image.shape[:2]
    _check_exists(path)
    with open(path, "rb") as f:
        data = f.read()
    size = jpeg_size(data)
    buffer = np.frombuffer(data, np.uint8)
    if size is not None:
        image = cv2.imdecode(buffer, _REDUCED_FLAGS[r])
        expected = (-(-size[0] // r), -(-size[1] // r))
        if image is not None and image.shape[:2] == expected:
            return _as_bgr(image, path), r, size
    image = _as_bgr(cv2.imdecode(buffer, _READ_FLAGS), path)  # not a JPEG, or a header we do not trust
    return image, 1, image.shape[:2]
