"""CSPNeXt with a heatmap head, as mmpose's ``pretrain_cspnext_udp`` configs build it: the network
that pretrains RTMPose's backbone (CSPNeXt + ``HeatmapHead`` with three 4x4 stride-2 deconvolutions of
256 channels and a 1x1 conv to K maps, trained on UDP heatmaps with the MSE loss).

Keys are mmpose's (``backbone.stem.*``, ``backbone.stageN.*``, ``head.deconv_layers.*``,
``head.final_layer.*``), so the published ``cspnext-*_udp-*.pth`` files load with strict key and
shape checks, and a checkpoint of this network initialises RTMPose's backbone
(``model.pretrained=`` of an RTMPose config reads its ``net.backbone.*`` tensors).
"""

from __future__ import annotations

import os
from typing import ClassVar

import torch
from torch import nn

from src.models.cspnext import CSPNeXt, cspnext_factors, init_cspnext_backbone
from src.models.initialisations import CSPNEXT_IMAGENET
from src.models.pretrained import PretrainedReport
from src.models.resnet import DeconvHead


class CSPNeXtHeatmap(nn.Module):
    """CSPNeXt (stride 32) -> deconvolutions -> K heatmaps at stride 32 / 2^D (stride 4 with D = 3).

    Args:
        size: "t", "s", "m" or "l" (`src.models.cspnext.CSPNEXT_SIZES`), or None with both factors given.
        deepen_factor, widen_factor: CSPNeXt's factors; each given one overrides the size's.
        num_joints: K heatmaps.
        num_deconv_layers, deconv_channels: the head's deconvolutions (mmpose: 3 of 256).
        bn_eps, bn_momentum: the backbone's BatchNorm (mmpose's configs: PyTorch's 1e-5, 0.1).

    Input (N, 3, H, W) -> heatmaps (N, K, ceil(H / 32) 2^D, ceil(W / 32) 2^D): (N, 17, 64, 48) for 256 x 192.
    """

    #: the layer that outputs the heatmaps (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("head.final_layer",)

    def __init__(
        self,
        *,
        size: str | None = "m",
        deepen_factor: float | None = None,
        widen_factor: float | None = None,
        num_joints: int = 17,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.deepen_factor, self.widen_factor = cspnext_factors(size, deepen_factor, widen_factor)
        self.backbone = CSPNeXt(
            deepen_factor=self.deepen_factor, widen_factor=self.widen_factor, bn_eps=bn_eps, bn_momentum=bn_momentum
        )
        self.head = DeconvHead(
            in_channels=self.backbone.out_channels,
            out_channels=num_joints,
            num_deconv_layers=num_deconv_layers,
            deconv_channels=deconv_channels,
        )
        self.num_joints = num_joints

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) -> heatmaps (N, K, h, w), see the class docstring."""
        return self.head(self.backbone(images))

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return CSPNEXT_IMAGENET.get(self.widen_factor)

    def init_weights(
        self, pretrained: str | os.PathLike[str] | None = None, *, partial: bool = False
    ) -> PretrainedReport | None:
        """mmpose's init (head: (de)convs N(0, 0.001), BatchNorm 1 / 0; backbone: mmdet's CSPNeXt init),
        then, given a file, the backbone from it (an mmpose / mmdet checkpoint with ``backbone.*`` keys,
        e.g. mmdet's ImageNet ``cspnext-*_imagenet_600e-*.pth``, a checkpoint of this project with
        ``net.backbone.*`` keys, or a bare CSPNeXt state_dict).

        Returns and raises as `src.models.cspnext.init_cspnext_backbone`.
        """
        self.head.init_weights()
        return init_cspnext_backbone(self.backbone, pretrained, partial=partial)
