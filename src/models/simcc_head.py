"""SimCC (Li et al., ECCV 2022) with a ResNet backbone, as mmpose's SimCC-R50: the SimpleBaseline
deconvolution head makes K maps at stride 4, each flattened and classified into x and y bins by two
linear layers with bias.

Keys are mmpose's: ``backbone.conv1`` .. ``backbone.layer4`` (torchvision names), ``head.deconv_head.
deconv_layers.*`` / ``head.deconv_head.final_layer.*`` (or ``head.final_layer.*`` without deconvs),
``head.mlp_head_x`` / ``head.mlp_head_y``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from src.models.pretrained import PretrainedReport, load_backbone_weights
from src.models.resnet import DeconvHead, ResNetBackbone
from src.models.rtmcc_head import check_featuremap, feature_size, size_pair
from src.models.weights import kaiming_init_


class SimCCHead(nn.Module):
    """mmpose's SimCCHead (``deconv_type='heatmap'``): [deconv_head: deconvs + final 1x1 conv to K maps,
    or with no deconvs a ``final_layer`` 1x1 conv] -> flatten (N, K, h'*w') -> mlp_head_x / mlp_head_y.

    Args:
        in_channels: backbone channels (2048 for ResNet-50).
        num_joints: K.
        input_size: network input (w, h) in pixels.
        in_featuremap_size: (w, h) of the backbone's map; the maps after L deconvs are 2^L times larger.
        simcc_split_ratio: bins per pixel; the logits have int(w * ratio) and int(h * ratio) bins.
        num_deconv_layers, deconv_channels, deconv_kernel: the stride-2 deconvolutions (3, 256, 4).
        final_conv_kernel: kernel of the conv to K maps after the deconvs (1).

    Shapes: features (N, in_channels, h, w) -> (x logits (N, K, W*ratio), y logits (N, K, H*ratio)).
    """

    #: the layers that output the logits (kept in fp32 under mixed precision)
    prediction_layers: ClassVar[tuple[str, ...]] = ("mlp_head_x", "mlp_head_y")

    def __init__(
        self,
        *,
        in_channels: int,
        num_joints: int,
        input_size: Sequence[int],
        in_featuremap_size: Sequence[int],
        simcc_split_ratio: float = 2.0,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        final_conv_kernel: int = 1,
    ) -> None:
        super().__init__()
        self.input_size = size_pair("input_size", input_size)
        self.in_featuremap_size = size_pair("in_featuremap_size", in_featuremap_size)
        if num_deconv_layers < 0:
            raise ValueError(f"num_deconv_layers must be >= 0, got {num_deconv_layers}")
        self.num_joints = num_joints
        self.simcc_split_ratio = float(simcc_split_ratio)
        self.deconv_head: DeconvHead | None = None
        self.final_layer: nn.Conv2d | None = None
        if num_deconv_layers:
            self.deconv_head = DeconvHead(
                in_channels=in_channels,
                out_channels=num_joints,
                num_deconv_layers=num_deconv_layers,
                deconv_channels=deconv_channels,
                deconv_kernel=deconv_kernel,
                final_conv_kernel=final_conv_kernel,
            )
        else:
            self.final_layer = nn.Conv2d(in_channels, num_joints, kernel_size=1)
        w, h = (side * 2**num_deconv_layers for side in self.in_featuremap_size)
        self.mlp_head_x = nn.Linear(w * h, int(self.input_size[0] * self.simcc_split_ratio))
        self.mlp_head_y = nn.Linear(w * h, int(self.input_size[1] * self.simcc_split_ratio))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (N, C, h, w) -> (x logits (N, K, Wx), y logits (N, K, Wy))."""
        check_featuremap(features, self.in_featuremap_size, self.input_size, type(self).__name__)
        if self.deconv_head is not None:
            maps = self.deconv_head(features)
        else:
            assert self.final_layer is not None
            maps = self.final_layer(features)
        flat = maps.flatten(2)
        return self.mlp_head_x(flat), self.mlp_head_y(flat)

    def init_weights(self) -> None:
        """mmpose's SimCCHead init: Conv2d / ConvTranspose2d N(0, 0.001), BatchNorm 1 / 0, Linear
        N(0, 0.01), biases 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)


class SimCCResNet(nn.Module):
    """SimCC-ResNet (mmpose ``simcc_res50_8xb64-210e_coco-256x192``): ResNet backbone + `SimCCHead`.

    Args:
        depth, base_width, layers: the backbone, see `ResNetBackbone` (ResNet-50: 50, 64, None).
        num_joints: K.
        input_size: network input (w, h) in pixels (192, 256).
        simcc_split_ratio: bins per pixel of the logits (2.0).
        num_deconv_layers, deconv_channels, deconv_kernel, final_conv_kernel: the head (3, 256, 4, 1).

    Shapes: images (N, 3, H, W) -> (x logits (N, K, W*ratio), y logits (N, K, H*ratio)).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        num_joints: int = 17,
        input_size: Sequence[int] = (192, 256),
        simcc_split_ratio: float = 2.0,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        final_conv_kernel: int = 1,
        base_width: int = 64,
        layers: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(
            depth=depth, base_width=base_width, layers=None if layers is None else tuple(layers)
        )
        w, h = size_pair("input_size", input_size)
        self.head = SimCCHead(
            in_channels=self.backbone.out_channels,
            num_joints=num_joints,
            input_size=(w, h),
            in_featuremap_size=(feature_size(w), feature_size(h)),
            simcc_split_ratio=simcc_split_ratio,
            num_deconv_layers=num_deconv_layers,
            deconv_channels=deconv_channels,
            deconv_kernel=deconv_kernel,
            final_conv_kernel=final_conv_kernel,
        )
        self.num_joints = num_joints

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) at input_size -> (x logits (N, K, W*r), y logits (N, K, H*r))."""
        return self.head(self.backbone(images))

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return self.backbone.default_pretrained

    def init_weights(
        self, pretrained: str | os.PathLike[str] | None = None, *, partial: bool = False
    ) -> PretrainedReport | None:
        """mmpose's init (head: see `SimCCHead.init_weights`; backbone: Kaiming-normal convs, BN 1 / 0
        and the last BN of every residual block 0, mmpose's ResNet default), then, given a file, the
        backbone from it: a torchvision ``resnet50-*.pth`` (its ``fc.*`` are listed as unused) or a
        pose checkpoint with ``backbone.*`` keys.

        Returns what the file gave the backbone (None without a file). Raises FileNotFoundError for a
        missing file, ValueError when nothing fits or (unless ``partial``) the file covers the backbone
        only in part.
        """
        self.head.init_weights()
        kaiming_init_(self.backbone, zero_residual=True)
        if pretrained is None:
            return None
        return load_backbone_weights(self.backbone, pretrained, prefixes=("backbone.", ""), partial=partial)
