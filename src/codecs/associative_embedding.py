"""Associative-embedding codec of bottom-up models (HigherHRNet).

One object holds what both sides must agree on: the input size, the output resolutions and
the training targets (`encode`, called by the bottom-up dataset with the joints it has mapped to
every output resolution), and the grouping that turns aggregated heatmaps and tags back into
people (`decode`, used by the module at test time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from src.codecs.bottomup_targets import HeatmapGenerator, JointsGenerator
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
        detection_threshold, tag_threshold, use_detection_val, ignore_too_much, nms_kernel, nms_padding, adjust, refine:
            grouping options (official test values as defaults).
        grouping_threads: threads of the grouping (`HeatmapParser`; None: its default).
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
        grouping_threads: int | None = None,
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
            num_joints=num_joints,
            max_num_people=max_num_people,
            detection_threshold=detection_threshold,
            tag_threshold=tag_threshold,
            use_detection_val=use_detection_val,
            ignore_too_much=ignore_too_much,
            nms_kernel=nms_kernel,
            nms_padding=nms_padding,
            adjust=adjust,
            refine=refine,
            threads=grouping_threads,
        )
        self._heatmap_generators = [
            HeatmapGenerator(
                output_size=s, num_joints=num_joints, sigma=self.sigma, scale_aware_sigma=scale_aware_sigma
            )
            for s in self.output_sizes
        ]
        self._joints_generators = [
            JointsGenerator(
                max_num_people=self.max_num_people, num_joints=num_joints, output_size=s, tag_per_joint=tag_per_joint
            )
            for s in self.output_sizes
        ]

    @property
    def heatmap_sigma(self) -> float:
        """The Gaussian's sigma in heatmap pixels (``data.sigma``; see `HeatmapCodec.heatmap_sigma`)."""
        return self.sigma

    def encode(self, joints: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The codec protocol: people mapped to each output resolution -> the targets of a sample.

        Args:
            joints: per output resolution i, (M, K, 3) x, y, v in that resolution's pixels (a 4th
                column holds each person's sigma with ``scale_aware_sigma``).

        Returns:
            {"heatmaps_i": (K, S_i, S_i) float32, "joints_i": (P, K, 2) int64 tag indices and flags}
            for every i (official HeatmapGenerator and JointsGenerator, see ``bottomup_targets``).
        """
        if len(joints) != len(self.output_sizes):
            raise ValueError(f"joints for {len(joints)} resolutions, the codec has {len(self.output_sizes)}")
        targets: dict[str, np.ndarray] = {}
        for i, people in enumerate(joints):
            targets[f"heatmaps_{i}"] = np.asarray(self._heatmap_generators[i](people), dtype=np.float32)
            targets[f"joints_{i}"] = np.asarray(self._joints_generators[i](people), dtype=np.int64)
        return targets

    def decode(self, heatmaps: torch.Tensor, tags: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Aggregated heatmaps (1, K, H, W) and tags (1, K, H, W, L) -> people (P, K, 3 + L), scores (P,)."""
        return self.parser.parse(heatmaps, tags)
