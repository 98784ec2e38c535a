"""3DMPPE RootNet (Moon et al., ICCV 2019): the camera distance of a person's root from its crop.

A ResNet backbone feeds two branches (the official ``RootNet`` head, ``main/model.py``):

* x, y: three 4x4 stride-2 deconvolutions (BN, ReLU) to 256 channels, a 1x1 convolution to one
  map, a softmax over the (H/4) x (W/4) cells and its expectation: the root's position on that grid
  (cell indices 0 .. W/4 - 1, no half-cell offset);
* depth: the global average of the backbone's last feature map, a 1x1 convolution to one number
  gamma, and ``depth = gamma * k``, where ``k`` (`src.camera.k_value`) is the distance at which a
  2 m x 2 m box would fill the crop box. gamma is linear (no activation): the network learns a
  correction of the box-size prior.

Parameter names follow the official model (``backbone.*``, ``root.deconv_layers.*``,
``root.xy_layer.*``, ``root.depth_layer.*``); its snapshots store them under ``module.`` (DataParallel).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from src.models.resnet import ResNetBackbone, make_deconv_layers
from src.models.weights import normal_init_


class RootHead(nn.Module):
    """The x, y and depth branches (see the module docstring).

    Shapes: features (N, C, h, w), k (N,) or (N, 1) -> (N, 3) [x, y on the (h 2^L, w 2^L) grid, depth].
    """

    def __init__(
        self, *, in_channels: int, num_deconv_layers: int = 3, deconv_channels: int = 256, deconv_kernel: int = 4
    ) -> None:
        super().__init__()
        self.deconv_layers = make_deconv_layers(
            in_channels, num_layers=num_deconv_layers, channels=deconv_channels, kernel=deconv_kernel
        )
        self.xy_layer = nn.Conv2d(deconv_channels, 1, kernel_size=1)
        self.depth_layer = nn.Conv2d(in_channels, 1, kernel_size=1)

    def forward(self, features: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        maps = self.xy_layer(self.deconv_layers(features))
        n, _, h, w = maps.shape
        prob = torch.softmax(maps.reshape(n, h * w).float(), dim=1).reshape(n, h, w)
        x = (prob.sum(dim=1) * torch.arange(w, dtype=prob.dtype, device=prob.device)).sum(dim=1)
        y = (prob.sum(dim=2) * torch.arange(h, dtype=prob.dtype, device=prob.device)).sum(dim=1)
        gamma = self.depth_layer(features.mean(dim=(2, 3), keepdim=True)).reshape(n).float()
        depth = gamma * k.reshape(n).to(gamma.dtype)
        return torch.stack([x, y, depth], dim=1)

    def init_weights(self) -> None:
        """Official: deconvolution, xy and depth weights N(0, 0.001), biases 0, BN 1 / 0."""
        normal_init_(self, std=0.001)


class RootNet(nn.Module):
    """ResNet backbone + `RootHead`: (images, k) -> (N, 3) root [x, y (output grid), depth (mm)].

    Args:
        depth: ResNet depth of the backbone (50 in the official configs).
        num_deconv_layers, deconv_channels, deconv_kernel: the x, y branch (official 3, 256, 4).
        base_width, layers: see `ResNetBackbone` (smaller values for tests).
    """

    #: the layers whose outputs are predictions (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("root.xy_layer", "root.depth_layer")

    def __init__(
        self,
        *,
        depth: int = 50,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        base_width: int = 64,
        layers: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(depth=depth, base_width=base_width, layers=layers)
        self.root = RootHead(
            in_channels=self.backbone.out_channels,
            num_deconv_layers=num_deconv_layers,
            deconv_channels=deconv_channels,
            deconv_kernel=deconv_kernel,
        )

    def forward(self, images: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W), k (N,) -> (N, 3) [x, y on the (H/4, W/4) grid, gamma k]."""
        return self.root(self.backbone(images), k)

    @staticmethod
    def example_inputs(batch: int) -> tuple[torch.Tensor]:
        """What the network reads after the images, for timing and tracing: a k-value of 4 m each."""
        return (torch.full((batch,), 4000.0),)

    @property
    def default_pretrained(self) -> str | None:
        """The registry name (or URL) of the file the official recipe initialises the backbone from."""
        return self.backbone.default_pretrained

    def init_weights(self, pretrained: str | None = None) -> None:
        """Official init: the head N(0, 0.001) with zero biases, BN 1 / 0; the backbone from a
        torchvision ImageNet ``resnet*.pth`` file when given, else N(0, 0.001) as the official
        constructor leaves it before that load (see `src.models.posenet.PoseNet.init_weights`)."""
        self.root.init_weights()
        self.backbone.init_official(pretrained)
