"""SimpleBaseline (Xiao et al., ECCV 2018): ResNet + deconvolution head.

Parameter names follow the official `pose_resnet` (conv1, bn1, layer1..4, deconv_layers,
final_layer), so torchvision `resnet{50,101,152}-*.pth` files load into the backbone and
official pose checkpoints load entirely.

`ResNetBackbone` and `DeconvHead` are also the building blocks of the 3D PoseNet, whose
keys are `backbone.*` and `head.deconv_layers.*` / `head.final_layer.*`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from src.models.blocks import BasicBlock, Bottleneck, ResidualBlock, batch_norm, make_res_layer
from src.models.initialisations import RESNET
from src.models.weights import load_pretrained, normal_init_

#: depth -> (block, blocks per layer), as in torchvision.
RESNET_SPECS: dict[int, tuple[ResidualBlock, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
BACKBONE_LAYERS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
#: ConvTranspose2d kernel -> (padding, output_padding) giving an exact 2x upsampling.
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class ResNetBackbone(nn.Module):
    """torchvision-style ResNet without pooling / fc: 7x7 s2 stem + maxpool, layer1..4.

    Args:
        depth: 18, 34, 50, 101 or 152 (picks the block type and default blocks per layer).
        base_width: stem width and layer1 bottleneck width (64 in torchvision); layer k
            uses base_width * 2^(k-1).
        layers: blocks per layer, overriding the depth's default (e.g. (1, 1, 1, 1) for tests).
    """

    def __init__(self, *, depth: int = 50, base_width: int = 64, layers: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"unsupported ResNet depth {depth}; choose one of {sorted(RESNET_SPECS)}")
        block, default_layers = RESNET_SPECS[depth]
        layers = default_layers if layers is None else tuple(layers)
        if len(layers) != 4:
            raise ValueError(f"layers must give 4 block counts, got {layers}")
        self.depth = depth
        self.standard = base_width == 64 and layers == default_layers  # the ImageNet network's sizes
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = batch_norm(base_width)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = base_width
        for k, num_blocks in enumerate(layers):
            channels = base_width * 2**k
            layer = make_res_layer(
                block, in_channels=in_channels, channels=channels, num_blocks=num_blocks, stride=1 if k == 0 else 2
            )
            self.add_module(f"layer{k + 1}", layer)
            in_channels = channels * block.expansion
        self.out_channels = in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> (N, out_channels, H/32, W/32); out_channels = 2048 for ResNet-50+."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> (N, out_channels, H/32, W/32)."""
        return self.forward_features(x)

    @property
    def default_pretrained(self) -> str | None:
        """The registry name of the ImageNet file the official recipes start from (None: no such file)."""
        return RESNET.get(self.depth) if self.standard else None

    def init_official(self, pretrained: str | None = None) -> None:
        """The backbone of the official 3DMPPE and SimpleBaseline models: loaded from a local
        torchvision ImageNet file when given, else N(0, 0.001) convolutions and BN 1 / 0, as the
        official constructors leave it before their ImageNet load."""
        if pretrained is None:
            normal_init_(self, std=0.001)
            return
        self.load_imagenet(pretrained)

    def load_imagenet(self, pretrained: str) -> list[str]:
        """Load conv1 / bn1 / layer1..4 from a local torchvision-style state_dict file."""
        return load_pretrained(
            self,
            pretrained,
            expected=f"a torchvision ImageNet resnet{self.depth} state_dict"
            + (f" (model.pretrained={self.default_pretrained} downloads it)" if self.default_pretrained else ""),
            prefixes=BACKBONE_LAYERS,
        )


def make_deconv_layers(in_channels: int, *, num_layers: int, channels: int, kernel: int) -> nn.Sequential:
    """num_layers x [ConvTranspose2d (stride 2, no bias) -> BN -> ReLU] as one flat
    Sequential (keys 0, 1, 3, 4, 6, 7, ...). (N, in_channels, h, w) -> (N, channels, h 2^L, w 2^L)."""
    if kernel not in _DECONV_PADDING:
        raise ValueError(f"deconv kernel must be one of {sorted(_DECONV_PADDING)}, got {kernel}")
    padding, output_padding = _DECONV_PADDING[kernel]
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers += [
            nn.ConvTranspose2d(
                in_channels, channels, kernel, stride=2, padding=padding, output_padding=output_padding, bias=False
            ),
            batch_norm(channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = channels
    return nn.Sequential(*layers)


def _final_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=kernel // 2, bias=True)


class DeconvHead(nn.Module):
    """`deconv_layers` + `final_layer` as a standalone module: the head of PoseNet, of SimCC-ResNet's
    maps, and mmpose's ``HeatmapHead`` without conv layers (ViTPose, CSPNeXt on UDP heatmaps), whose
    keys are the same.

    Args:
        in_channels: backbone channels (2048 for ResNet-50+).
        out_channels: channels of the final conv (K heatmaps, or K * depth bins).
        num_deconv_layers, deconv_channels, deconv_kernel: see `make_deconv_layers`; with 0 layers
            (ViTPose's simple head) the final conv reads the input directly.
        final_conv_kernel: 1 (official) or 3.
    """

    #: the layers that output heatmaps / tags (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("final_layer",)

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        final_conv_kernel: int = 1,
    ) -> None:
        super().__init__()
        self.deconv_layers = make_deconv_layers(
            in_channels, num_layers=num_deconv_layers, channels=deconv_channels, kernel=deconv_kernel
        )
        final_in = deconv_channels if num_deconv_layers else in_channels
        self.final_layer = _final_conv(final_in, out_channels, final_conv_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in_channels, h, w) -> (N, out_channels, h 2^L, w 2^L)."""
        return self.final_layer(self.deconv_layers(x))

    def init_weights(self) -> None:
        """Official head init: (de)convs N(0, 0.001), biases 0, BN 1/0."""
        normal_init_(self, std=0.001)


class PoseResNet(ResNetBackbone):
    """SimpleBaseline: ResNet backbone -> deconv_layers -> final_layer; heatmaps at stride 4.

    Args:
        depth, base_width, layers: see `ResNetBackbone`.
        num_joints: K heatmap channels.
        num_deconv_layers: stride-2 deconvs (3 in the official configs: stride 32 -> 4).
        deconv_channels: width of every deconv (256).
        deconv_kernel: 4 (official), 3 or 2.
        final_conv_kernel: 1 (official) or 3.
    """

    #: the layers that output heatmaps / tags (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("final_layer",)

    def __init__(
        self,
        *,
        depth: int = 50,
        num_joints: int = 17,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
        final_conv_kernel: int = 1,
        base_width: int = 64,
        layers: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(depth=depth, base_width=base_width, layers=layers)
        self.num_joints = num_joints
        self.deconv_layers = make_deconv_layers(
            self.out_channels, num_layers=num_deconv_layers, channels=deconv_channels, kernel=deconv_kernel
        )
        self.final_layer = _final_conv(deconv_channels, num_joints, final_conv_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> heatmaps (N, K, H/4, W/4) (3 deconvs; H, W multiples of 32)."""
        return self.final_layer(self.deconv_layers(self.forward_features(x)))

    def init_weights(self, pretrained: str | None = None) -> None:
        """Official init: deconvs and final conv N(0, 0.001) with zero biases, BN 1/0.

        With `pretrained` (a local torchvision resnet state_dict file) the backbone is then
        loaded from it; without it the backbone gets the same N(0, 0.001) init, as the
        official code does when no ImageNet file is found.
        Raises FileNotFoundError when the file is missing, ValueError when nothing matches.
        """
        normal_init_(self.deconv_layers, std=0.001)
        normal_init_(self.final_layer, std=0.001)
        if pretrained is None:
            for name in BACKBONE_LAYERS:
                normal_init_(getattr(self, name), std=0.001)
            return
        self.load_imagenet(pretrained)
