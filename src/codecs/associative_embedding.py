"""Associative-embedding codec of bottom-up models (HigherHRNet).

One object holds what both sides must agree on: the input size, the output resolutions and
sigma of the training targets (read by the bottom-up dataset), and the grouping that turns
aggregated heatmaps and tags back into people (used by the module at test time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from src.codecs.grouping import HeatmapParser


class AssociativeEmbedding:
    """Targets and grouping for heatmap + tag models.

    Args:
        num_joints: K.
        input_size: square training input side (512 / 640).
        output_sizes: target resolutions, one per network output (e.g. (128, 256)).
        sigma: Gaussian sigma of the heatmap targets (the same at every resolution, official).
        max_num_people: persons encoded in the tag targets and candidates per joint at test time.
        tag_per_joint: one tag map per joint (official True).
        scale_aware_sigma: sigma from the person size (official off).
        detection_threshold, tag_threshold, use_detection_val, ignore_too_much, nms_kernel,
        nms_padding, adjust, refine: grouping options (official test values as defaults).
    """

    def __init__(
        self,
        *,
        num_joints: int = 17,
        input_size: int = 512,
        output_sizes: Sequence[int] = (128, 256),
        sigma: float = 2.0,
        max_num_people: int = 30,
        tag_per_joint: bool = True,
        scale_aware_sigma: bool = False,
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        use_detection_val: bool = True,
        ignore_too_much: bool = False,
        nms_kernel: int = 5,
        nms_padding: int = 2,
        adjust: bool = True,
        refine: bool = True,
    ) -> None:
        if input_size % 64:
            raise ValueError(f"input_size must be a multiple of 64 (network strides), got {input_size}")
        self.num_joints = num_joints
        self.input_size = int(input_size)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self.sigma = float(sigma)
        self.max_num_people = int(max_num_people)
        self.tag_per_joint = tag_per_joint
        self.scale_aware_sigma = scale_aware_sigma
        self.parser = HeatmapParser(
            num_joints=num_joints, max_num_people=max_num_people, detection_threshold=detection_threshold,
            tag_threshold=tag_threshold, use_detection_val=use_detection_val, ignore_too_much=ignore_too_much,
            nms_kernel=nms_kernel, nms_padding=nms_padding, adjust=adjust, refine=refine,
        )

    def decode(self, heatmaps: torch.Tensor, tags: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Aggregated heatmaps (1, K, H, W) and tags (1, K, H, W, L) -> people (P, K, 3 + L), scores (P,)."""
        return self.parser.parse(heatmaps, tags)
