"""Embedded synthetic dataset: articulated 3D figures rendered to a COCO person-keypoint dataset.

Modules: figure (3D skeleton, proportions, joint limits, poses), camera (pinhole projection),
appearance (clothing, face/hair, figure primitives), raster (depth-buffered rasteriser),
background (clutter), scene (one image with visibility and masks), coco_writer (COCO records),
generate (cached dataset writer and CLI: ``python -m src.data.synthetic.generate``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ensure_synthetic_coco"]


def __getattr__(name: str) -> Any:
    # imported lazily so that ``python -m src.data.synthetic.generate`` runs without a double import
    if name == "ensure_synthetic_coco":
        from src.data.synthetic.generate import ensure_synthetic_coco

        return ensure_synthetic_coco
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
