"""RTMPose (Jiang et al. 2023): CSPNeXt backbone + RTMCCHead, predicting SimCC x / y logits.

State_dict keys are mmpose's (``backbone.stem.*``, ``backbone.stageN.*``, ``head.*``), so the
published RTMPose checkpoints load with strict key and shape checks (`load_official_weights`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from src.models.cspnext import CSPNeXt, cspnext_factors, init_cspnext_backbone
from src.models.initialisations import CSPNEXT_POSE
from src.models.pretrained import PretrainedReport
from src.models.rtmcc_head import RTMCCHead, feature_size, size_pair


class RTMPose(nn.Module):
    """RTMPose top-down network: images (N, 3, H, W) -> SimCC logits (x (N, K, W*r), y (N, K, H*r)).

    Args:
        size: "t", "s", "m" or "l" (`src.models.cspnext.CSPNEXT_SIZES`), or None with both factors given.
        deepen_factor, widen_factor: CSPNeXt's factors; each given one overrides the size's.
        num_joints: K.
        input_size: network input (w, h) in pixels (192, 256 for the COCO 256x192 models).
        simcc_split_ratio: bins per pixel of the logits (2.0).
        final_layer_kernel, hidden_dims, s, expansion_factor: the head, see `RTMCCHead` (defaults: RTMPose's).
        dropout_rate, drop_path, act_fn, use_rel_bias, pos_enc, rope_frequencies: its attention unit.
        bn_eps, bn_momentum: the backbone's BatchNorm (RTMPose: 1e-5, 0.1), see `CSPNeXt`.
        frozen_stages: the backbone stages kept fixed (-1: none, as RTMPose's configs), see `CSPNeXt`.
    """

    def __init__(
        self,
        *,
        size: str | None = "m",
        deepen_factor: float | None = None,
        widen_factor: float | None = None,
        num_joints: int = 17,
        input_size: Sequence[int] = (192, 256),
        simcc_split_ratio: float = 2.0,
        final_layer_kernel: int = 7,
        hidden_dims: int = 256,
        s: int = 128,
        expansion_factor: float = 2,
        dropout_rate: float = 0.0,
        drop_path: float = 0.0,
        act_fn: str = "SiLU",
        use_rel_bias: bool = False,
        pos_enc: bool = False,
        rope_frequencies: str = "mmpose",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        frozen_stages: int = -1,
    ) -> None:
        super().__init__()
        self.deepen_factor, self.widen_factor = cspnext_factors(size, deepen_factor, widen_factor)
        self.backbone = CSPNeXt(
            deepen_factor=self.deepen_factor,
            widen_factor=self.widen_factor,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
            frozen_stages=frozen_stages,
        )
        w, h = size_pair("input_size", input_size)
        self.head = RTMCCHead(
            in_channels=self.backbone.out_channels,
            num_joints=num_joints,
            input_size=(w, h),
            in_featuremap_size=(feature_size(w), feature_size(h)),
            simcc_split_ratio=simcc_split_ratio,
            final_layer_kernel=final_layer_kernel,
            hidden_dims=hidden_dims,
            s=s,
            expansion_factor=expansion_factor,
            dropout_rate=dropout_rate,
            drop_path=drop_path,
            act_fn=act_fn,
            use_rel_bias=use_rel_bias,
            pos_enc=pos_enc,
            rope_frequencies=rope_frequencies,
        )
        self.num_joints = num_joints

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) at input_size -> (x logits (N, K, W*r), y logits (N, K, H*r))."""
        return self.head(self.backbone(images))

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return CSPNEXT_POSE.get(self.widen_factor)

    def init_weights(
        self, pretrained: str | os.PathLike[str] | None = None, *, partial: bool = False
    ) -> PretrainedReport | None:
        """mmpose's init (head: conv N(0, 0.001), linear N(0, 0.01); backbone: mmdet's CSPNeXt init),
        then, given a file, the backbone from it: an mmpose pose checkpoint (``backbone.*`` keys, e.g.
        cspnext-m_udp-aic-coco_210e-256x192-f2f7d6f6_20230130.pth), a checkpoint of this project
        (``net.backbone.*``) or a bare CSPNeXt state_dict.

        Returns and raises as `src.models.cspnext.init_cspnext_backbone`.
        """
        self.head.init_weights()
        return init_cspnext_backbone(self.backbone, pretrained, partial=partial)
