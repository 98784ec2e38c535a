"""Draw poses on images and save image grids (numpy + OpenCV only).

N instances, K keypoints. Images are (H, W, 3) uint8 in BGR or RGB order: colours are given as
triples in the image's own channel order, so pick them accordingly (the defaults read well either way).
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from src.layouts import KeypointInfo

Color = tuple[int, int, int]
LEFT_COLOR: Color = (0, 220, 0)
RIGHT_COLOR: Color = (230, 0, 230)
CENTER_COLOR: Color = (0, 200, 255)
DEFAULT_COLOR: Color = (0, 220, 0)


def track_color(track_id: int) -> Color:
    """A colour of its own for each track id, the same in every frame and run: hues a golden-ratio
    turn apart (neighbouring ids far apart on the colour wheel), bright and saturated, as (B, G, R)."""
    hue = (int(track_id) * 0.6180339887498949) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def keypoint_sides(keypoint_names: Sequence[str]) -> list[str]:
    """'left', 'right' or 'center' for each of the K names (from a 'left'/'right' prefix)."""
    sides = []
    for name in keypoint_names:
        lowered = name.lower()
        sides.append("left" if lowered.startswith("left") else "right" if lowered.startswith("right") else "center")
    return sides


def _side_color(side: str) -> Color:
    return {"left": LEFT_COLOR, "right": RIGHT_COLOR}.get(side, CENTER_COLOR)


def _limb_color(side_a: str, side_b: str) -> Color:
    return _side_color(side_a) if side_a == side_b else CENTER_COLOR


def _as_int_point(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def _draw_instance(
    canvas: np.ndarray,
    points: np.ndarray,
    shown: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    sides: list[str] | None,
    radius: int,
    thickness: int,
    colors: Sequence[Color] | None = None,
) -> None:
    """Draw one instance in place: points (K, 2), shown (K,) bool; ``colors`` (K) replace the side colours."""
    for a, b in skeleton:
        if shown[a] and shown[b]:
            if colors is not None:
                color = tuple(colors[b])
            else:
                color = _limb_color(sides[a], sides[b]) if sides else DEFAULT_COLOR
            cv2.line(canvas, _as_int_point(points[a]), _as_int_point(points[b]), color, thickness, cv2.LINE_AA)
    for k in np.flatnonzero(shown):
        if colors is not None:
            color = tuple(colors[k])
        else:
            color = _side_color(sides[k]) if sides else DEFAULT_COLOR
        cv2.circle(canvas, _as_int_point(points[k]), radius, color, -1, cv2.LINE_AA)


def draw_skeletons(
    image: np.ndarray,
    keypoints: np.ndarray,
    *,
    skeleton: Sequence[tuple[int, int]],
    keypoint_names: Sequence[str] | None = None,
    score_thr: float = 0.3,
    radius: int = 3,
    thickness: int = 2,
    color_by_side: bool = True,
    colors: Sequence[Color] | None = None,
    instance_colors: Sequence[Color] | None = None,
) -> np.ndarray:
    """Draw keypoints and limbs of N instances on a copy of the image.

    Args:
        image: (H, W, 3) uint8, BGR or RGB.
        keypoints: (N, K, 3) [x, y, score] or (N, K, 2) (all shown) in image pixels; (K, 2|3) is one instance.
        skeleton: (a, b) keypoint index pairs to join.
        keypoint_names: K names; with color_by_side, 'left*' / 'right*' / other names get the
            left / right / centre colour, and a limb gets its side's colour (centre if mixed).
        score_thr: keypoints with score < score_thr (or non-finite coordinates) are not drawn,
            nor are limbs touching them.
        radius, thickness: keypoint disc radius and limb width in pixels.
        color_by_side: colour by body side (needs keypoint_names); otherwise one colour.
        colors: K colours in the image's channel order, used instead of the side colours: each
            keypoint its own, each limb (a, b) that of b.
        instance_colors: N colours, one per instance for all its keypoints and limbs (e.g. a
            track's colour), used instead of ``colors`` and the side colours.

    Returns:
        (H, W, 3) uint8 new image.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2:
        kpts = kpts[None]
    if kpts.ndim != 3 or kpts.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must be (N, K, 2|3), got shape {kpts.shape}")
    sides = keypoint_sides(keypoint_names) if color_by_side and keypoint_names is not None else None
    if sides is not None and len(sides) != kpts.shape[1]:
        raise ValueError(f"{len(sides)} keypoint names for K={kpts.shape[1]} keypoints")
    if colors is not None and len(colors) != kpts.shape[1]:
        raise ValueError(f"{len(colors)} colours for K={kpts.shape[1]} keypoints")
    if instance_colors is not None and len(instance_colors) != kpts.shape[0]:
        raise ValueError(f"{len(instance_colors)} instance colours for N={kpts.shape[0]} instances")
    canvas = np.ascontiguousarray(image).copy()
    for n, instance in enumerate(kpts):
        shown = np.isfinite(instance[:, :2]).all(axis=1)
        if instance.shape[1] == 3:
            shown &= instance[:, 2] >= score_thr
        own = colors if instance_colors is None else [tuple(instance_colors[n])] * kpts.shape[1]
        _draw_instance(canvas, instance[:, :2], shown, skeleton, sides, radius, thickness, own)
    return canvas


def draw_keypoint_info(
    image: np.ndarray, keypoints: np.ndarray, info: KeypointInfo, *, bgr: bool = True, **kwargs
) -> np.ndarray:
    """`draw_skeletons` with the skeleton, keypoint names and colours (RGB in the layout; reversed
    for a ``bgr`` image) of a layout (e.g. COCO17)."""
    colors = None
    if info.colors is not None:
        colors = [tuple(c[::-1]) if bgr else tuple(c) for c in info.colors]
    return draw_skeletons(
        image, keypoints, skeleton=info.skeleton, keypoint_names=info.keypoint_names, colors=colors, **kwargs
    )


def _to_bgr3(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"grid images must be (H, W) or (H, W, 3), got {image.shape}")
    return image.astype(np.uint8, copy=False)


def make_image_grid(images: Sequence[np.ndarray], ncols: int, pad_value: int = 0) -> np.ndarray:
    """Tile images row-major into one (rows*Hmax, ncols*Wmax, 3) uint8 image; smaller ones are padded."""
    if len(images) == 0:
        raise ValueError("make_image_grid needs at least one image")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    tiles = [_to_bgr3(np.asarray(img)) for img in images]
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    ncols = min(ncols, len(tiles))
    nrows = math.ceil(len(tiles) / ncols)
    grid = np.full((nrows * cell_h, ncols * cell_w, 3), pad_value, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        top, left = (i // ncols) * cell_h, (i % ncols) * cell_w
        grid[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return grid


def save_image_grid(images: Sequence[np.ndarray], path: str | os.PathLike, ncols: int = 4) -> Path:
    """Tile images (see `make_image_grid`) and write them with cv2.imwrite, atomically.

    The file type follows the suffix of `path` (.jpg, .png, ...); images are written as given,
    so pass BGR for correct colours. The grid goes to a temporary file in the same folder first,
    then replaces `path` (readers never see a half-written file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_image_grid(images, ncols)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # same suffix: cv2 picks the codec
    try:
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"cv2.imwrite could not write {path} (unsupported suffix {path.suffix!r}?)")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
