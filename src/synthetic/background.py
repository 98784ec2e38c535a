"""Cluttered backgrounds: gradients, a floor, low-frequency texture, shapes, lines and sticks.

The clutter includes shaded limb-like sticks and skin-coloured blobs so that a detector of
"people" has to use the figure's structure, not a colour or a shape alone.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

_NOISE_SEED = 918273
_NOISE_MARGIN = 64
_noise_tiles: dict[tuple[int, int], np.ndarray] = {}


def noise_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 unit Gaussian noise: a random window of a fixed per-size tile.

    Much cheaper than drawing fresh noise for every image, and still a function of rng only.
    """
    tile = _noise_tiles.get((h, w))
    if tile is None:
        size = (h + _NOISE_MARGIN, w + _NOISE_MARGIN, 3)
        tile = np.random.default_rng(_NOISE_SEED).standard_normal(size, dtype=np.float32)
        _noise_tiles[(h, w)] = tile
    dy, dx = (int(v) for v in rng.integers(0, _NOISE_MARGIN + 1, 2))
    return tile[dy : dy + h, dx : dx + w]


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.15, 0.95))
    return (r * 255.0, g * 255.0, b * 255.0)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) linear gradient between two random colours in a random direction."""
    c0, c1 = np.array(_colour(rng)), np.array(_colour(rng))
    angle = rng.uniform(0.0, 2 * np.pi)
    tx = (np.arange(w) - w / 2) * (np.cos(angle) / max(w, 1))
    ty = (np.arange(h) - h / 2) * (np.sin(angle) / max(h, 1)) + 0.5
    t = np.clip(ty[:, None] + tx[None, :], 0.0, 1.0)[..., None]
    return (c0 + t * (c1 - c0)).astype(np.float32)


def _scaled(count: int, clutter: float) -> int:
    return int(round(count * clutter))


def render_background(rng: np.random.Generator, image_size: tuple[int, int], clutter: float = 1.0) -> np.ndarray:
    """(H, W, 3) float32 RGB background for image_size (w, h).

    ``clutter`` scales the numbers of shapes, lines and limb-like sticks (1.0: the full amount;
    the random stream is the same for every value up to that point, so 1.0 is reproducible).
    """
    w, h = image_size
    # smooth layers are built at 1/8 resolution and upsampled
    sw, sh = max(w // 8, 2), max(h // 8, 2)
    small = _gradient(rng, sh, sw)
    floor = _gradient(rng, sh, sw) * rng.uniform(0.6, 1.1) if rng.random() < 0.6 else None
    horizon = int(rng.uniform(0.3, 0.8) * h)
    cells = (int(rng.integers(2, 9)), int(rng.integers(2, 9)))
    low = rng.normal(0.0, 1.0, (cells[1], cells[0], 3)).astype(np.float32)
    texture = cv2.resize(low, (sw, sh), interpolation=cv2.INTER_CUBIC) * rng.uniform(4.0, 28.0)
    img = cv2.resize(small + texture, (w, h), interpolation=cv2.INTER_LINEAR)
    if floor is not None:  # a floor below a sharp horizon
        img[horizon:] = cv2.resize(floor + texture, (w, h), interpolation=cv2.INTER_LINEAR)[horizon:]
    canvas = np.clip(img, 0, 255)
    for _ in range(_scaled(int(rng.integers(2, 14)), clutter)):
        kind = rng.integers(4)
        col = _colour(rng)
        cx, cy = int(rng.uniform(-0.1, 1.1) * w), int(rng.uniform(-0.1, 1.1) * h)
        size = int(rng.uniform(0.03, 0.4) * min(w, h)) + 2
        if kind == 0:
            cv2.rectangle(canvas, (cx - size, cy - size // 2), (cx + size, cy + size), col, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.ellipse(
                canvas,
                (cx, cy),
                (size, int(size * rng.uniform(0.3, 1.0))),
                float(rng.uniform(0, 180)),
                0,
                360,
                col,
                -1,
                cv2.LINE_AA,
            )
        elif kind == 2:
            pts = np.stack([cx + rng.uniform(-size, size, 5), cy + rng.uniform(-size, size, 5)], 1).astype(np.int32)
            cv2.fillPoly(canvas, [pts], col, cv2.LINE_AA)
        else:
            cv2.circle(canvas, (cx, cy), size // 2, col, int(rng.integers(1, 6)), cv2.LINE_AA)
    for _ in range(_scaled(int(rng.integers(0, 10)), clutter)):
        p0 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        cv2.line(canvas, p0, p1, _colour(rng), int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(_scaled(int(rng.integers(0, 4)), clutter)):  # shaded sticks and skin-like blobs
        col = np.array(_colour(rng)) if rng.random() < 0.6 else np.array([220.0, 170.0, 130.0]) * rng.uniform(0.4, 1.1)
        p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        p1 = p0 + rng.normal(0.0, 0.15 * h, 2)
        thick = int(rng.uniform(2, 0.06 * h + 3))
        for k, shade in enumerate((0.6, 0.8, 1.0, 1.15)):
            cv2.line(
                canvas,
                tuple(int(v) for v in p0),
                tuple(int(v) for v in p1),
                tuple(float(c) for c in np.clip(col * shade, 0, 255)),
                max(1, thick - 2 * k * thick // 8),
                cv2.LINE_AA,
            )
    canvas += noise_field(rng, h, w)[..., :1] * np.float32(rng.uniform(0.0, 6.0))
    return np.clip(canvas, 0, 255)
