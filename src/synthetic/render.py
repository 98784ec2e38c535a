"""Draw a list of primitives (capsules, spheres, polygons) with their materials.

``rasterise`` batches every primitive of an image through the fragment rasteriser in
``raster.py``, evaluates the materials (one call per textured material) and composites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from src.synthetic.camera import Camera
from src.synthetic.raster import (
    Fragments,
    capsule_fragments,
    composite,
    polygon_fragments,
    shade,
    sphere_fragments,
)

# An RGB colour (3,) or a callable material(points (F, 3), normals (F, 3)) -> (F, 3) RGB base
# colours of camera-frame surface points.
Material = np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Primitive:
    """One drawable piece. owner: person index (>= 0) or -1 for scenery; depth: a representative depth (mm).

    A material is an RGB colour (3,) or a callable ``material(points (F, 3), normals (F, 3)) -> (F, 3)``
    giving the base colour of camera-frame surface points.
    """

    kind: str  # "capsule" | "sphere" | "polygon"
    part: str
    owner: int
    depth: float
    material: Material
    a: np.ndarray | None = None  # capsule ends (3,) camera mm
    b: np.ndarray | None = None
    ra: float = 0.0
    rb: float = 0.0
    center: np.ndarray | None = None  # sphere (3,)
    radius: float = 0.0
    points2d: np.ndarray | None = None  # polygon (N, 2) px


def rasterise(
    prims: list[Primitive], *, camera: Camera, background: np.ndarray, light: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render primitives over background (H, W, 3) -> (color (H, W, 3) float32, depth (H, W), ids (H, W)).

    ids index into ``prims`` (-1 where only background shows).
    """
    h, w = background.shape[:2]
    size = (w, h)
    caps = [i for i, p in enumerate(prims) if p.kind == "capsule"]
    sphs = [i for i, p in enumerate(prims) if p.kind == "sphere"]
    polys = [i for i, p in enumerate(prims) if p.kind == "polygon"]
    frags = Fragments.concat(
        [
            capsule_fragments(
                camera,
                size,
                np.array([prims[i].a for i in caps]).reshape(-1, 3),
                np.array([prims[i].b for i in caps]).reshape(-1, 3),
                np.array([prims[i].ra for i in caps]),
                np.array([prims[i].rb for i in caps]),
                np.array(caps, dtype=np.int64),
            ),
            sphere_fragments(
                camera,
                size,
                np.array([prims[i].center for i in sphs]).reshape(-1, 3),
                np.array([prims[i].radius for i in sphs]),
                np.array(sphs, dtype=np.int64),
            ),
            polygon_fragments(
                camera,
                size,
                [prims[i].points2d for i in polys],
                [prims[i].depth for i in polys],
                np.array(polys, dtype=np.int64),
            ),
        ]
    )
    # base colours: constant materials by lookup, textured ones in one call per material object
    textured: dict[int, int] = {}
    mat_index = np.full(len(prims), -1, dtype=np.int64)
    flat = np.zeros((len(prims), 3))
    callables = []
    for i, p in enumerate(prims):
        if callable(p.material):
            k = textured.setdefault(id(p.material), len(callables))
            if k == len(callables):
                callables.append(p.material)
            mat_index[i] = k
        else:
            flat[i] = p.material
    base = flat[frags.prim]
    frag_mat = mat_index[frags.prim]
    order = np.argsort(frag_mat, kind="stable")
    bounds = np.searchsorted(frag_mat[order], np.arange(len(callables) + 1))
    for k, material in enumerate(callables):
        sel = order[bounds[k] : bounds[k + 1]]
        if len(sel):
            base[sel] = material(frags.points[sel], frags.normals[sel])
    return composite(background, frags, shade(frags.normals, base, light))
