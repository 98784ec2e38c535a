"""CSPNeXt (RTMDet, Lyu et al. 2022), the backbone of RTMPose, with mmdet's parameter names.

Layout of the P5 architecture (widths and block counts before the width / depth factors):

- ``stem``: three 3x3 conv-BN-SiLU (stride 2, 1, 1) to 32 / 32 / 64 channels;
- ``stage1``..``stage4``: a 3x3 stride-2 conv-BN-SiLU to 128 / 256 / 512 / 1024 channels, then (stage 4
  only) an SPP bottleneck, then a CSP layer with 3 / 6 / 6 / 3 CSPNeXt blocks (identity shortcuts in
  stages 1-3) and channel attention.

Channels are ``int(c * widen_factor)`` (the stem's first two ``int(64 * widen_factor // 2)``) and
block counts ``max(round(n * deepen_factor), 1)`` with Python's round, as mmdet computes them, so
that mmpose's RTMPose checkpoints load with strict key and shape checks.

BatchNorm: RTMPose's configs build the backbone with ``norm_cfg=dict(type='SyncBN')``, which
replaces mmdet's CSPNeXt default (momentum 0.03, eps 1e-3) by PyTorch's (momentum 0.1, eps 1e-5);
the defaults here are RTMPose's. ``bn_momentum=0.03, bn_eps=1e-3`` gives mmdet's own default
(RTMDet's configs also use SyncBN, hence PyTorch's values).
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from src.models.pretrained import PretrainedReport, load_backbone_weights

#: P5 stages: (in channels, out channels, blocks, identity shortcut in the blocks, SPP bottleneck).
P5_STAGES: tuple[tuple[int, int, int, bool, bool], ...] = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)
#: size -> (deepen_factor, widen_factor) of the published CSPNeXt models RTMPose uses (t, s, m, l).
CSPNEXT_SIZES: dict[str, tuple[float, float]] = {
    "t": (0.167, 0.375),
    "s": (0.33, 0.5),
    "m": (0.67, 0.75),
    "l": (1.0, 1.0),
}
#: max-pool kernels of the SPP bottleneck (parallel pools, concatenated with their input)
SPP_KERNELS = (5, 9, 13)


def cspnext_factors(
    size: str | None, deepen_factor: float | None = None, widen_factor: float | None = None
) -> tuple[float, float]:
    """(deepen_factor, widen_factor) for a size of `CSPNEXT_SIZES`, each given factor overriding the
    size's; with ``size=None`` both factors must be given. Raises ValueError otherwise."""
    if size is None:
        if deepen_factor is None or widen_factor is None:
            raise ValueError("CSPNeXt needs a size (t, s, m, l) or both deepen_factor and widen_factor")
        return float(deepen_factor), float(widen_factor)
    if size not in CSPNEXT_SIZES:
        raise ValueError(f"unknown CSPNeXt size {size!r}; choose one of {sorted(CSPNEXT_SIZES)} or None")
    preset = CSPNEXT_SIZES[size]
    return (
        preset[0] if deepen_factor is None else float(deepen_factor),
        preset[1] if widen_factor is None else float(widen_factor),
    )


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU (or nothing): mmcv's ConvModule keys ``conv`` / ``bn``.

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride) (rounded up).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = nn.SiLU(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv-BN-SiLU then pointwise 1x1 conv-BN-SiLU (keys ``depthwise_conv`` /
    ``pointwise_conv``). Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W)."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, **bn: float) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(
            in_channels=in_channels, out_channels=in_channels, kernel_size=kernel_size, groups=in_channels, **bn
        )
        self.pointwise_conv = ConvBNAct(in_channels=in_channels, out_channels=out_channels, kernel_size=1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class ChannelAttention(nn.Module):
    """Per-channel gate: x * hardsigmoid(fc(global average of x)); ``fc`` is a 1x1 conv with bias.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPNeXtBlock(nn.Module):
    """3x3 conv-BN-SiLU then a depthwise-separable 5x5, plus the input when ``add_identity``.

    Shapes: (N, channels, H, W) -> (N, channels, H, W).
    """

    def __init__(self, *, channels: int, add_identity: bool, kernel_size: int = 5, **bn: float) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels=channels, out_channels=channels, kernel_size=3, **bn)
        self.conv2 = DepthwiseSeparableConv(in_channels=channels, out_channels=channels, kernel_size=kernel_size, **bn)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: ``main_conv`` (1x1) -> ``blocks``, concatenated with ``short_conv``
    (1x1) in that order, gated by ``attention``, fused by ``final_conv`` (1x1).

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W); the two branches have
    ``int(out_channels * expand_ratio)`` channels each.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        add_identity: bool,
        expand_ratio: float = 0.5,
        channel_attention: bool = True,
        **bn: float,
    ) -> None:
        super().__init__()
        mid = int(out_channels * expand_ratio)
        self.main_conv = ConvBNAct(in_channels=in_channels, out_channels=mid, kernel_size=1, **bn)
        self.short_conv = ConvBNAct(in_channels=in_channels, out_channels=mid, kernel_size=1, **bn)
        self.final_conv = ConvBNAct(in_channels=2 * mid, out_channels=out_channels, kernel_size=1, **bn)
        self.blocks = nn.Sequential(
            *[CSPNeXtBlock(channels=mid, add_identity=add_identity, **bn) for _ in range(num_blocks)]
        )
        self.attention = ChannelAttention(channels=2 * mid) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.attention is not None:
            out = self.attention(out)
        return self.final_conv(out)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: 1x1 conv to half the channels, stride-1 max pools of several sizes in
    parallel, concatenated with their input, 1x1 conv. Shapes: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(
        self, *, in_channels: int, out_channels: int, kernel_sizes: tuple[int, ...] = SPP_KERNELS, **bn: float
    ) -> None:
        super().__init__()
        mid = in_channels // 2
        self.conv1 = ConvBNAct(in_channels=in_channels, out_channels=mid, kernel_size=1, **bn)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvBNAct(
            in_channels=mid * (len(kernel_sizes) + 1), out_channels=out_channels, kernel_size=1, **bn
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(pool(x) for pool in self.poolings)], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt P5 backbone returning its last stage (stride 32), as RTMPose uses it (``out_indices=(4,)``).

    Args:
        deepen_factor: block-count multiplier (RTMPose t 0.167, s 0.33, m 0.67, l 1.0).
        widen_factor: channel multiplier (t 0.375, s 0.5, m 0.75, l 1.0).
        expand_ratio: width of the CSP branches relative to the stage width (0.5).
        channel_attention: gate each CSP layer's concatenated branches (True in RTMPose).
        bn_eps, bn_momentum: BatchNorm settings (RTMPose: PyTorch's 1e-5 / 0.1; mmdet default 1e-3 / 0.03).
        frozen_stages: mmdet's option: the stem (0) and the stages up to this one (1-4) keep their
            weights and BatchNorm statistics (no gradient, eval mode even in training); -1 (RTMPose's
            configs) freezes nothing. Freezing the first layers of a pretrained backbone saves most of
            their backward pass, which on a CPU is a large share of a step.

    Attributes:
        out_channels: channels of the output, ``int(1024 * widen_factor)``.
    """

    def __init__(
        self,
        *,
        deepen_factor: float = 1.0,
        widen_factor: float = 1.0,
        expand_ratio: float = 0.5,
        channel_attention: bool = True,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        frozen_stages: int = -1,
    ) -> None:
        super().__init__()
        if not -1 <= frozen_stages <= len(P5_STAGES):
            raise ValueError(f"frozen_stages must be -1 (none) to {len(P5_STAGES)}, got {frozen_stages}")
        if deepen_factor <= 0 or widen_factor <= 0:
            raise ValueError(f"deepen_factor and widen_factor must be > 0, got {deepen_factor} and {widen_factor}")
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        stem_mid = int(P5_STAGES[0][0] * widen_factor // 2)
        stem_out = int(P5_STAGES[0][0] * widen_factor)
        if stem_mid < 1:
            raise ValueError(f"widen_factor {widen_factor} leaves the stem without channels")
        self.stem = nn.Sequential(
            ConvBNAct(in_channels=3, out_channels=stem_mid, kernel_size=3, stride=2, **bn),
            ConvBNAct(in_channels=stem_mid, out_channels=stem_mid, kernel_size=3, **bn),
            ConvBNAct(in_channels=stem_mid, out_channels=stem_out, kernel_size=3, **bn),
        )
        self.num_blocks: list[int] = []
        for index, (c_in, c_out, blocks, add_identity, use_spp) in enumerate(P5_STAGES):
            c_in, c_out = int(c_in * widen_factor), int(c_out * widen_factor)
            blocks = max(round(blocks * deepen_factor), 1)
            layers: list[nn.Module] = [ConvBNAct(in_channels=c_in, out_channels=c_out, kernel_size=3, stride=2, **bn)]
            if use_spp:
                layers.append(SPPBottleneck(in_channels=c_out, out_channels=c_out, **bn))
            layers.append(
                CSPLayer(
                    in_channels=c_out,
                    out_channels=c_out,
                    num_blocks=blocks,
                    add_identity=add_identity,
                    expand_ratio=expand_ratio,
                    channel_attention=channel_attention,
                    **bn,
                )
            )
            self.add_module(f"stage{index + 1}", nn.Sequential(*layers))
            self.num_blocks.append(blocks)
        self.out_channels = int(P5_STAGES[-1][1] * widen_factor)
        self.frozen_stages = frozen_stages
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and the stages ``frozen_stages`` freezes, in order."""
        names = ["stem", *(f"stage{i + 1}" for i in range(len(P5_STAGES)))]
        return [getattr(self, name) for name in names[: self.frozen_stages + 1]]

    def train(self, mode: bool = True) -> CSPNeXt:
        """As nn.Module, but the frozen stages stay in eval mode (their BatchNorm statistics fixed)."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> (N, out_channels, H/32, W/32) (each stride-2 conv rounds up)."""
        x = self.stem(x)
        return self.stage4(self.stage3(self.stage2(self.stage1(x))))

    def init_weights(self) -> None:
        """mmdet's CSPNeXt init: every Conv2d Kaiming-uniform (a=sqrt(5), fan_in, leaky_relu), biases 0;
        BatchNorm weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), mode="fan_in", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


#: Where a CSPNeXt's tensors sit in the files that initialise one: mmpose / mmdet checkpoints
#: (``backbone.*``), this project's training checkpoints (``net.backbone.*``), a bare state_dict.
BACKBONE_PREFIXES = ("backbone.", "net.backbone.", "")


def init_cspnext_backbone(
    backbone: CSPNeXt, pretrained: str | os.PathLike[str] | None, *, partial: bool = False
) -> PretrainedReport | None:
    """mmdet's init of ``backbone``, then, given a file, its tensors from it (`BACKBONE_PREFIXES`).

    Returns what the file gave the backbone (None without a file). Raises FileNotFoundError for a
    missing file, ValueError when nothing fits or (unless ``partial``) the file covers the backbone
    only in part.
    """
    backbone.init_weights()
    if pretrained is None:
        return None
    return load_backbone_weights(backbone, pretrained, prefixes=BACKBONE_PREFIXES, partial=partial)
