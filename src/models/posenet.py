"""3DMPPE PoseNet (Moon et al., ICCV 2019): ResNet backbone + deconvolution head -> 3D heatmaps.

The head predicts, for each of K joints, a volume of D depth bins over the (H/4, W/4) output
grid, stacked along channels: channel ``k * D + z`` is depth bin z of joint k, as in the official
``HeadNet``. The integral (soft-argmax) codec `src.codecs.integral_3d.Integral3D` turns these
(N, K * D, H/4, W/4) maps into (N, K, 3) coordinates.

Parameter names follow the official model (``backbone.conv1``, ``backbone.layer1..4``,
``head.deconv_layers.*``, ``head.final_layer.*``), so the released snapshots load with
``strict=True`` and torchvision ``resnet*.pth`` files load into ``backbone``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from src.models.resnet import DeconvHead, ResNetBackbone


class PoseNet(nn.Module):
    """ResNet backbone -> 3 x (deconv 4x4 s2, BN, ReLU) -> 1x1 conv to K * D channels.

    Args:
        depth: ResNet depth of the backbone (50 in the official configs).
        num_joints: K (18 for the Human3.6M models, 21 for MuCo).
        depth_dim: D depth bins per joint (64).
        num_deconv_layers, deconv_channels, deconv_kernel: see `src.models.resnet.make_deconv_layers`.
        base_width, layers: see `ResNetBackbone` (smaller values for tests).
    """

    #: the layer that outputs the 3D heatmaps (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("head.final_layer",)

    def __init__(
        self,
        *,
        depth: int = 50,
        num_joints: int = 18,
        depth_dim: int = 64,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        base_width: int = 64,
        layers: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if num_joints < 1 or depth_dim < 1:
            raise ValueError(f"num_joints and depth_dim must be positive, got {num_joints} and {depth_dim}")
        self.num_joints = num_joints
        self.depth_dim = depth_dim
        self.backbone = ResNetBackbone(depth=depth, base_width=base_width, layers=layers)
        self.head = DeconvHead(
            in_channels=self.backbone.out_channels,
            out_channels=num_joints * depth_dim,
            num_deconv_layers=num_deconv_layers,
            deconv_channels=deconv_channels,
            deconv_kernel=deconv_kernel,
            final_conv_kernel=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> raw head output (N, K * D, H/4, W/4) (3 deconvs; H, W multiples of 32)."""
        return self.head(self.backbone(x))

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return self.backbone.default_pretrained

    def init_weights(self, pretrained: str | None = None) -> None:
        """Official init: head (de)convs N(0, 0.001) with zero biases, BN 1 / 0; backbone from ImageNet.

        The official model always loads the torchvision ImageNet weights into the backbone. With
        `pretrained` (a local torchvision ``resnet*.pth`` state_dict file) the backbone is loaded
        from it. Without it the backbone keeps the state the official constructor gives it before
        that load (conv weights N(0, 0.001), BN 1 / 0), the same choice as `PoseResNet`; use
        `src.models.weights.kaiming_init_` instead to train from scratch.

        Raises:
            FileNotFoundError: `pretrained` does not exist.
            ValueError: none of its tensors matches the backbone.
        """
        self.head.init_weights()
        self.backbone.init_official(pretrained)
