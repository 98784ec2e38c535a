"""Stacked Hourglass network (Newell et al., ECCV 2016), PyTorch variant of bearpaw/pytorch-pose.

Faithful to that `hg` model, including its parameter names: pre-activation bottlenecks
(BN -> ReLU -> conv, expansion 2, every conv with a bias, 1x1-conv shortcut without BN),
a recursive hourglass whose level 0 is the deepest (4 residual slots, other levels 3), and
per-stack heads `res`, `fc`, `score`, with `fc_` / `score_` feeding the next stack.

Channel plan with F = num_feats (128 in the original): stem 7x7 s2 conv 3 -> F/2, residual
F/2 -> F, maxpool 2, residual F -> 2F, residual 2F -> 2F; every hourglass works at 2F.

One deliberate difference: the hourglass upsamples to the exact size of its skip branch
(nearest) rather than by a fixed factor 2. Identical when H and W are multiples of 64.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from src.models.weights import load_pretrained


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1 -> BN-ReLU-conv3x3 -> BN-ReLU-conv1x1, plus shortcut; expansion 2.

    Args:
        in_channels: C_in.
        channels: bottleneck width; the block outputs 2 * channels.
        stride: stride of the 3x3 conv.
        downsample: shortcut applied to the raw input (a 1x1 conv with bias, no BN).
    """

    expansion = 2

    def __init__(
        self, *, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C_in, H, W) -> (N, 2 * channels, H / stride, W / stride)."""
        out = self.conv1(F.relu(self.bn1(x), inplace=True))
        out = self.conv2(F.relu(self.bn2(out), inplace=True))
        out = self.conv3(F.relu(self.bn3(out), inplace=True))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


def make_residual(*, in_channels: int, channels: int, num_blocks: int, stride: int = 1) -> nn.Sequential:
    """`num_blocks` PreActBottlenecks; the first gets a 1x1-conv shortcut (`0.downsample.0`)
    when the stride or width changes. (N, in_channels, H, W) -> (N, 2 * channels, H/stride, W/stride)."""
    out_channels = channels * PreActBottleneck.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=True))
    blocks = [PreActBottleneck(in_channels=in_channels, channels=channels, stride=stride, downsample=downsample)]
    blocks += [PreActBottleneck(in_channels=out_channels, channels=channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class Hourglass(nn.Module):
    """One recursive hourglass of `depth` levels at constant width 2 * channels.

    `hg[level]` holds the residual slots of one level; level 0 is the deepest:
    slot 0 = skip branch, slot 1 = after max-pooling, slot 2 = before upsampling,
    slot 3 (level 0 only) = the bottom of the hourglass.

    Shapes: (N, 2C, H, W) -> (N, 2C, H, W), H and W ideally multiples of 2^depth.
    """

    def __init__(self, *, channels: int, num_blocks: int, depth: int) -> None:
        super().__init__()
        width = channels * PreActBottleneck.expansion
        self.depth = depth
        self.hg = nn.ModuleList(
            nn.ModuleList(
                make_residual(in_channels=width, channels=channels, num_blocks=num_blocks)
                for _ in range(4 if level == 0 else 3)
            )
            for level in range(depth)
        )

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        slots = self.hg[level]
        up = slots[0](x)
        low = slots[1](F.max_pool2d(x, kernel_size=2, stride=2))
        low = self._level(level - 1, low) if level > 0 else slots[3](low)
        low = slots[2](low)
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 2C, H, W) -> (N, 2C, H, W)."""
        return self._level(self.depth - 1, x)


class HourglassNet(nn.Module):
    """Stacked hourglass with intermediate supervision.

    Args:
        num_stacks: S hourglasses (2 or 8 in the published MPII models).
        num_blocks: residuals per hourglass slot and in each stack head (1).
        num_joints: K heatmap channels (MPII 16).
        num_feats: F; hourglass features are 2F wide (128 -> 256). Must be even.
        depth: hourglass levels (4); input H, W should be multiples of 4 * 2^depth.
    """

    #: the layers that output heatmaps / tags (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("score",)

    def __init__(
        self, *, num_stacks: int = 8, num_blocks: int = 1, num_joints: int = 16, num_feats: int = 128, depth: int = 4
    ) -> None:
        super().__init__()
        if num_feats % 2:
            raise ValueError(f"num_feats must be even, got {num_feats}")
        self.num_stacks = num_stacks
        self.num_joints = num_joints
        width = num_feats * PreActBottleneck.expansion
        stem = num_feats // 2
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(stem)
        self.layer1 = make_residual(in_channels=stem, channels=stem, num_blocks=1)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer2 = make_residual(in_channels=num_feats, channels=num_feats, num_blocks=1)
        self.layer3 = make_residual(in_channels=width, channels=num_feats, num_blocks=1)

        stacks = range(num_stacks)
        self.hg = nn.ModuleList(Hourglass(channels=num_feats, num_blocks=num_blocks, depth=depth) for _ in stacks)
        self.res = nn.ModuleList(
            make_residual(in_channels=width, channels=num_feats, num_blocks=num_blocks) for _ in stacks
        )
        self.fc = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, kernel_size=1, bias=True), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
            for _ in stacks
        )
        self.score = nn.ModuleList(nn.Conv2d(width, num_joints, kernel_size=1, bias=True) for _ in stacks)
        self.fc_ = nn.ModuleList(nn.Conv2d(width, width, kernel_size=1, bias=True) for _ in stacks[:-1])
        self.score_ = nn.ModuleList(nn.Conv2d(num_joints, width, kernel_size=1, bias=True) for _ in stacks[:-1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem: x (N, 3, H, W) -> (N, 2F, H/4, W/4)."""
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = self.maxpool(self.layer1(x))
        return self.layer3(self.layer2(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (N, 3, H, W) -> S heatmap tensors (N, K, H/4, W/4), one per stack (last = final)."""
        x = self.forward_features(x)
        outputs = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            score = self.score[i](y)
            outputs.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return outputs

    def init_weights(self, pretrained: str | None = None) -> None:
        """Keep PyTorch's default init (as pytorch-pose does); if `pretrained` is given, load
        every tensor of that local full-model checkpoint that matches by name and shape
        (so a 16-joint checkpoint fills all but `score` / `score_` of a 17-joint model).

        Raises FileNotFoundError when the file is missing, ValueError when nothing matches.
        """
        if pretrained is not None:
            load_pretrained(
                self,
                pretrained,
                expected=(
                    "a bearpaw/pytorch-pose hg checkpoint (e.g. checkpoint/mpii/hg_s2_b1/model_best.pth.tar, "
                    "a dict with 'state_dict') or a state_dict of this HourglassNet"
                ),
            )
