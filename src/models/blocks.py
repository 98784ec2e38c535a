"""Residual blocks shared by HRNet, SimpleBaseline (PoseResNet) and HigherHRNet.

Post-activation blocks with torchvision/HRNet parameter names (conv1, bn1, conv2, bn2,
conv3, bn3, downsample.0 / downsample.1), so official and torchvision checkpoints load
by name. The stride sits on the 3x3 conv (torchvision style). Convs have no bias because
each is followed by BatchNorm (momentum 0.1, as in the official code).

Shapes: input (N, C_in, H, W) -> output (N, channels * expansion, H / stride, W / stride).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.1


def conv3x3(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Conv2d:
    """3x3 conv, padding 1, no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with the official momentum."""
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 conv + BN) shortcut; expansion 1.

    Args:
        in_channels: C_in.
        channels: width of both convs; the block outputs channels * 1.
        stride: stride of the first 3x3 conv.
        downsample: shortcut projection, needed when the stride or channel count changes.
    """

    expansion = 1

    def __init__(
        self, *, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride=stride)
        self.bn1 = batch_norm(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = batch_norm(channels)
        self.downsample = downsample

    def residual_norm(self) -> nn.BatchNorm2d:
        """The BN whose output is added to the shortcut."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C_in, H, W) -> (N, channels, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += identity  # in place on a fresh tensor (BN's backward does not need its output)
        return F.relu(out, inplace=True)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand, with a shortcut; expansion 4.

    Args:
        in_channels: C_in.
        channels: bottleneck width; the block outputs channels * 4.
        stride: stride of the 3x3 conv (torchvision style, not the Caffe 1x1 variant).
        downsample: shortcut projection, needed when the stride or channel count changes.
    """

    expansion = 4

    def __init__(
        self, *, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = batch_norm(channels)
        self.conv2 = conv3x3(channels, channels, stride=stride)
        self.bn2 = batch_norm(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = batch_norm(out_channels)
        self.downsample = downsample

    def residual_norm(self) -> nn.BatchNorm2d:
        """The BN whose output is added to the shortcut."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C_in, H, W) -> (N, 4 * channels, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        out += identity
        return F.relu(out, inplace=True)


ResidualBlock = type[BasicBlock] | type[Bottleneck]


def make_res_layer(
    block: ResidualBlock, *, in_channels: int, channels: int, num_blocks: int, stride: int = 1
) -> nn.Sequential:
    """Stack `num_blocks` blocks; the first one gets the stride and, if needed, a
    1x1 conv + BN shortcut (keys `0.downsample.0` / `0.downsample.1`).

    Shapes: (N, in_channels, H, W) -> (N, channels * block.expansion, H / stride, W / stride).
    """
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            batch_norm(out_channels),
        )
    layers = [block(in_channels=in_channels, channels=channels, stride=stride, downsample=downsample)]
    layers += [block(in_channels=out_channels, channels=channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)
