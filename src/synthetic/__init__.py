"""Embedded synthetic dataset: articulated 3D figures rendered to a COCO person-keypoint dataset.

Modules: figure (3D skeleton, proportions, joint limits, poses), camera (pinhole projection),
appearance (clothing, face/hair, figure primitives), raster (depth-buffered rasteriser),
background (clutter), scene (one image with visibility and masks), coco_writer (COCO records),
generate (cached dataset writer and CLI: ``python -m src.synthetic.generate``), mpii_writer,
crowdpose_writer and h36m_writer (the same figures as MPII, CrowdPose and Human3.6M-format
datasets, each with its CLI), params (each dataset's parameters object: defaults, checks, cache
key and CLI flags in one place), cache (generate once per parameter set into a folder,
atomically), readers (the synthetic datasets as readers of the formats they imitate).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "COCOParams",
    "H36MParams",
    "MPIIParams",
    "SceneParams",
    "ensure_synthetic_coco",
    "ensure_synthetic_crowdpose",
    "ensure_synthetic_h36m",
    "ensure_synthetic_mpii",
]


def __getattr__(name: str) -> Any:
    # imported on first use, so that ``python -m src.synthetic.generate`` runs without a double
    # import and ``import src.synthetic`` loads no generator code
    if name == "ensure_synthetic_coco":
        from src.synthetic.generate import ensure_synthetic_coco as value
    elif name == "ensure_synthetic_crowdpose":
        from src.synthetic.crowdpose_writer import ensure_synthetic_crowdpose as value
    elif name == "ensure_synthetic_mpii":
        from src.synthetic.mpii_writer import ensure_synthetic_mpii as value
    elif name == "ensure_synthetic_h36m":
        from src.synthetic.h36m_writer import ensure_synthetic_h36m as value
    elif name in __all__:
        from src.synthetic import params

        value = getattr(params, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return value
