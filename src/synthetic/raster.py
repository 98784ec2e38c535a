"""Vectorised fragment rasteriser with per-pixel depth and primitive-id buffers.

Primitives are tapered capsules (limbs, torso parts, feet, hands), ray-cast spheres (head, nose,
ears) and flat polygons (foreground occluders). Each one is turned into fragments (one per
covered pixel: coverage alpha, depth, 3D surface point and normal); the fragments of every pixel
are then sorted by depth and composited back to front (painter's algorithm at pixel level), so
anti-aliased edges blend over whatever lies behind and interpenetrating parts resolve
correctly. The nearest fragment with coverage >= 0.5 sets the pixel's depth and primitive id,
which the scene uses for masks and keypoint visibility.

All primitives of an image are processed in one batch: the cost is a few hundred numpy calls
per image, independent of the number of people.

F is the number of fragments, P the number of primitives of a kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from src.synthetic.camera import Camera


@dataclass
class Fragments:
    """Per-pixel samples of primitives: prim, x, y (F,) int; alpha, depth (F,); points, normals (F, 3).

    points are camera-frame surface points (mm), normals unit camera-frame normals.
    """

    prim: np.ndarray
    x: np.ndarray
    y: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    normals: np.ndarray

    @staticmethod
    def empty() -> Fragments:
        i, f = np.zeros(0, np.int64), np.zeros(0)
        return Fragments(prim=i, x=i, y=i, alpha=f, depth=f, points=np.zeros((0, 3)), normals=np.zeros((0, 3)))

    @staticmethod
    def concat(parts: list[Fragments]) -> Fragments:
        if not parts:
            return Fragments.empty()
        return Fragments(
            **{
                k: np.concatenate([getattr(p, k) for p in parts])
                for k in ("prim", "x", "y", "alpha", "depth", "points", "normals")
            }
        )

    def select(self, keep: np.ndarray) -> Fragments:
        return Fragments(
            prim=self.prim[keep],
            x=self.x[keep],
            y=self.y[keep],
            alpha=self.alpha[keep],
            depth=self.depth[keep],
            points=self.points[keep],
            normals=self.normals[keep],
        )


def _window_pixels(
    x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer pixel windows [x0, x1] x [y0, y1] per primitive (P,) -> (owner, x, y) each (N,)."""
    w, h = size
    ix0 = np.minimum(np.maximum(np.floor(x0), 0), w).astype(np.int64)
    iy0 = np.minimum(np.maximum(np.floor(y0), 0), h).astype(np.int64)
    ix1 = np.minimum(np.maximum(np.ceil(x1) + 1, 0), w).astype(np.int64)
    iy1 = np.minimum(np.maximum(np.ceil(y1) + 1, 0), h).astype(np.int64)
    ww, hh = np.maximum(ix1 - ix0, 0), np.maximum(iy1 - iy0, 0)
    n = ww * hh
    owner = np.repeat(np.arange(len(n)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    wo = ww[owner]
    return owner, ix0[owner] + k % wo, iy0[owner] + k // wo


def capsule_fragments(
    camera: Camera,
    size: tuple[int, int],
    a: np.ndarray,
    b: np.ndarray,
    ra: np.ndarray,
    rb: np.ndarray,
    prim_ids: np.ndarray,
) -> Fragments:
    """Tapered capsules between camera-frame points a, b (P, 3) with radii ra, rb (P,) in mm.

    The axis is projected exactly (so joints on it land on their projections); pixel radii
    follow each end's depth, and depth/normals across the limb are locally orthographic.
    """
    if len(a) == 0:
        return Fragments.empty()
    f = camera.fx
    a2, b2 = camera.project(a), camera.project(b)
    rpa, rpb = f * ra / a[:, 2], f * rb / b[:, 2]
    pad = np.maximum(rpa, rpb) + 1.0
    owner, x, y = _window_pixels(
        np.minimum(a2[:, 0], b2[:, 0]) - pad,
        np.maximum(a2[:, 0], b2[:, 0]) + pad,
        np.minimum(a2[:, 1], b2[:, 1]) - pad,
        np.maximum(a2[:, 1], b2[:, 1]) + pad,
        size,
    )
    ab = b2 - a2
    l2 = np.maximum((ab * ab).sum(1), 1e-9)
    px, py = x - a2[owner, 0], y - a2[owner, 1]
    abx, aby = ab[owner, 0], ab[owner, 1]
    t = np.minimum(np.maximum((px * abx + py * aby) / l2[owner], 0.0), 1.0)
    dx, dy = px - t * abx, py - t * aby
    d2 = dx * dx + dy * dy
    rp = rpa[owner] + t * (rpb - rpa)[owner]
    keep = d2 < (rp + 0.5) ** 2
    owner, x, y, t, dx, dy, d2, rp = (v[keep] for v in (owner, x, y, t, dx, dy, d2, rp))
    alpha = np.minimum(rp + 0.5 - np.sqrt(d2), 1.0)
    rp = np.maximum(rp, 1e-6)
    nx, ny = dx / rp, dy / rp
    r2 = nx * nx + ny * ny
    scale = 1.0 / np.sqrt(np.maximum(r2, 1.0))  # renormalise in the anti-aliased rim
    normals = np.stack([nx * scale, ny * scale, -np.sqrt(np.maximum(1.0 - r2, 0.0))], axis=1)
    rmm = ra[owner] + t * (rb - ra)[owner]
    points = a[owner] + t[:, None] * (b - a)[owner] + rmm[:, None] * normals
    return Fragments(prim=prim_ids[owner], x=x, y=y, alpha=alpha, depth=points[:, 2], points=points, normals=normals)


def sphere_fragments(
    camera: Camera, size: tuple[int, int], centers: np.ndarray, radii: np.ndarray, prim_ids: np.ndarray
) -> Fragments:
    """Ray-cast spheres (exact perspective silhouette, depth and normals); centers (P, 3), radii (P,) mm."""
    if len(centers) == 0:
        return Fragments.empty()
    c, r = centers, radii
    cc = (c * c).sum(1) - r * r  # > 0: camera outside the sphere (callers drop near spheres)
    u = camera.fx * c[:, 0] / c[:, 2] + camera.cx
    v = camera.fy * c[:, 1] / c[:, 2] + camera.cy
    rp = camera.fx * r / np.sqrt(cc)
    pad = 1.25 * rp + 1.5
    owner, x, y = _window_pixels(u - pad, u + pad, v - pad, v + pad, size)
    rx = (x - camera.cx) / camera.fx
    ry = (y - camera.cy) / camera.fy
    co, cco = c[owner], cc[owner]
    dd = rx * rx + ry * ry + 1.0
    dc = rx * co[:, 0] + ry * co[:, 1] + co[:, 2]
    disc = dc * dc - dd * cco
    # signed pixel distance to the silhouette, first order: disc / |d disc / d pixel|
    gx = 2.0 * (dc * co[:, 0] - rx * cco) / camera.fx
    gy = 2.0 * (dc * co[:, 1] - ry * cco) / camera.fy
    alpha = np.clip(0.5 + disc / np.maximum(np.sqrt(gx * gx + gy * gy), 1e-12), 0.0, 1.0)
    keep = alpha > 0.0
    owner, x, y, rx, ry, dd, dc, disc, alpha, co = (v[keep] for v in (owner, x, y, rx, ry, dd, dc, disc, alpha, co))
    tt = (dc - np.sqrt(np.maximum(disc, 0.0))) / dd
    points = np.stack([tt * rx, tt * ry, tt], axis=1)
    normals = points - co
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return Fragments(prim=prim_ids[owner], x=x, y=y, alpha=alpha, depth=points[:, 2], points=points, normals=normals)


def polygon_fragments(
    camera: Camera, size: tuple[int, int], polygons: list[np.ndarray], depths: list[float], prim_ids: np.ndarray
) -> Fragments:
    """Flat, anti-aliased polygons (each (N, 2) px) facing the camera at constant depths (mm)."""
    w, h = size
    parts = []
    for poly, depth, pid in zip(polygons, depths, prim_ids):
        mask = np.zeros((h, w), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(poly) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        y, x = np.nonzero(mask)
        z = np.full(len(x), float(depth))
        points = np.stack([(x - camera.cx) / camera.fx * z, (y - camera.cy) / camera.fy * z, z], axis=1)
        parts.append(
            Fragments(
                prim=np.full(len(x), pid, np.int64),
                x=x.astype(np.int64),
                y=y.astype(np.int64),
                alpha=mask[y, x] / 255.0,
                depth=z,
                points=points,
                normals=np.tile([0.0, 0.0, -1.0], (len(x), 1)),
            )
        )
    return Fragments.concat(parts)


def shade(
    normals: np.ndarray, base: np.ndarray, light: np.ndarray, *, ambient: float = 0.42, diffuse: float = 0.68
) -> np.ndarray:
    """Lambertian shading: base (F, 3) RGB -> (F, 3); light (3,) points towards the light."""
    light = np.asarray(light, dtype=np.float64) / np.linalg.norm(light)
    return base * (ambient + diffuse * np.maximum(normals @ light, 0.0))[:, None]


def composite(
    background: np.ndarray, frags: Fragments, colors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-sorted alpha compositing of fragments over background (H, W, 3).

    Returns color (H, W, 3) float32, depth (H, W) float32 (inf where empty) and ids (H, W)
    int32 (-1 where empty): the nearest fragment with alpha >= 0.5 at each pixel.
    """
    h, w = background.shape[:2]
    color = np.array(background, dtype=np.float32)
    depth = np.full(h * w, np.inf, dtype=np.float32)
    ids = np.full(h * w, -1, dtype=np.int32)
    if len(frags.x) == 0:
        return color, depth.reshape(h, w), ids.reshape(h, w)
    key = frags.y * w + frags.x
    # by pixel, then near to far: one float sort key (the depth part lies in [0, 1))
    order = np.argsort(key + frags.depth / (float(frags.depth.max()) * 1.000001 + 1.0))
    key, alpha, z, prim, col = key[order], frags.alpha[order], frags.depth[order], frags.prim[order], colors[order]
    n = len(key)
    log_t = np.log1p(-np.minimum(alpha, 1.0 - 1e-7))
    csum = np.cumsum(log_t)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    before = csum - log_t - (csum[start] - log_t[start])  # log transmittance in front of each fragment
    weight = (alpha * np.exp(before))[:, None] * col
    starts = np.nonzero(first)[0]
    last = np.r_[starts[1:] - 1, n - 1]
    pix = key[starts]
    trans = np.exp(before[last] + log_t[last])[:, None]  # what still shows of the background
    flat = color.reshape(-1, 3)
    flat[pix] = flat[pix] * trans + np.add.reduceat(weight, starts, axis=0)
    solid = alpha >= 0.5
    ks, zs, ps = key[solid], z[solid], prim[solid]
    if len(ks):
        head = np.r_[True, ks[1:] != ks[:-1]]
        depth[ks[head]] = zs[head]
        ids[ks[head]] = ps[head]
    return color, depth.reshape(h, w), ids.reshape(h, w)
