"""HRNet for top-down heatmap pose estimation (Sun et al., CVPR 2019).

Parameter names follow the official implementation (conv1, bn1, conv2, bn2, layer1,
transition1..3, stage2..4 with `branches` / `fuse_layers`, final_layer), so the official
COCO / MPII checkpoints and the ImageNet `hrnet_w32-36af842e.pth` / `hrnet_w48-8ef0771d.pth`
files load by name.

`HRNetBackbone` holds everything up to the highest-resolution features; `PoseHighResolutionNet`
adds the 1x1 heatmap head. HigherHRNet can subclass `HRNetBackbone` and keep the same keys.

One deliberate difference from the official code: lower-resolution branches are upsampled
to the exact size of the target branch (nearest) instead of by a fixed factor 2^k. Both are
identical when H and W are multiples of 32; ours also accepts other input sizes.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from src.models.blocks import BasicBlock, Bottleneck, batch_norm, conv3x3, make_res_layer
from src.models.initialisations import HRNET
from src.models.weights import load_pretrained, normal_init_

#: Official ImageNet checkpoints of the HRNet model zoo, by width.
#: Top-level modules initialised from ImageNet (official PRETRAINED_LAYERS); the head stays random.
PRETRAINED_LAYERS = (
    "conv1", "bn1", "conv2", "bn2", "layer1",
    "transition1", "stage2", "transition2", "stage3", "transition3", "stage4",
)  # fmt: skip


def _conv_bn(in_channels: int, out_channels: int, *, kernel_size: int, stride: int, relu: bool) -> nn.Sequential:
    """conv (no bias) -> BN [-> ReLU]; keys `0.weight`, `1.*`."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        batch_norm(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by multi-resolution fusion.

    Branch b has resolution (H / 2^b, W / 2^b). Output i sums every input j mapped to branch
    i: j > i through 1x1 conv + BN + nearest upsampling; j < i through (i - j) stride-2 3x3
    conv + BN steps (ReLU on all but the last); then ReLU.

    Args:
        channels: width of each branch (C_0, ..., C_{B-1}).
        num_blocks: BasicBlocks per branch.
        multi_scale_output: False keeps only the highest-resolution output.
    """

    def __init__(self, *, channels: tuple[int, ...], num_blocks: int, multi_scale_output: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            make_res_layer(BasicBlock, in_channels=c, channels=c, num_blocks=num_blocks) for c in channels
        )
        num_outputs = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList()
        if len(channels) > 1:
            self.fuse_layers.extend(
                nn.ModuleList(self._fuse_path(channels, src=j, dst=i) for j in range(len(channels)))
                for i in range(num_outputs)
            )

    @staticmethod
    def _fuse_path(channels: tuple[int, ...], *, src: int, dst: int) -> nn.Module:
        if src == dst:
            return nn.Identity()
        if src > dst:  # lower resolution: channel match here, upsampling in forward
            return _conv_bn(channels[src], channels[dst], kernel_size=1, stride=1, relu=False)
        steps = dst - src
        return nn.Sequential(
            *(
                _conv_bn(
                    channels[src],
                    channels[dst] if k == steps - 1 else channels[src],
                    kernel_size=3,
                    stride=2,
                    relu=k < steps - 1,
                )
                for k in range(steps)
            )
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """xs[b] (N, C_b, H_b, W_b) -> list of the same shapes (only xs[0]'s if not multi-scale)."""
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        if len(xs) == 1:
            return xs
        outs = []
        for i, paths in enumerate(self.fuse_layers):
            total: torch.Tensor | None = None
            for j, path in enumerate(paths):  # summed in branch order, as officially
                y = path(xs[j])  # identity for j == i
                if j > i:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="nearest")
                total = y if total is None else total + y
            outs.append(F.relu(total, inplace=True))  # a fresh sum: at least two branches
        return outs


def _make_transition(prev: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Map the B_prev outputs of a stage to the B_cur inputs of the next one.

    Existing branches get a 3x3 conv + BN + ReLU if their width changes (else identity);
    each new branch is made from the lowest-resolution output by stride-2 3x3 conv steps.
    """
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(_conv_bn(prev[i], c, kernel_size=3, stride=1, relu=True) if prev[i] != c else nn.Identity())
            continue
        steps = i + 1 - len(prev)
        layers.append(
            nn.Sequential(
                *(
                    _conv_bn(prev[-1], c if k == steps - 1 else prev[-1], kernel_size=3, stride=2, relu=True)
                    for k in range(steps)
                )
            )
        )
    return layers


def _apply_transition(transition: nn.ModuleList, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Branch i reads feats[i] when it exists, else the lowest-resolution feature feats[-1]."""
    return [t(feats[i] if i < len(feats) else feats[-1]) for i, t in enumerate(transition)]


class HRNetBackbone(nn.Module):
    """HRNet stem + stages 1..4; outputs the highest-resolution branch at stride 4.

    Args:
        width: C, the width of branch 0; branches have C * (1, 2, 4, 8) channels (W32: 32).
        stage_num_modules: HighResolutionModules in stages 2, 3, 4 (official (1, 4, 3)).
        num_blocks: blocks per branch and in layer1 (official 4).
        stem_channels: width of the two stride-2 stem convs; layer1 outputs 4x this.
    """

    def __init__(
        self,
        *,
        width: int = 32,
        stage_num_modules: tuple[int, int, int] = (1, 4, 3),
        num_blocks: int = 4,
        stem_channels: int = 64,
    ) -> None:
        super().__init__()
        self.width = width
        self.conv1 = conv3x3(3, stem_channels, stride=2)
        self.bn1 = batch_norm(stem_channels)
        self.conv2 = conv3x3(stem_channels, stem_channels, stride=2)
        self.bn2 = batch_norm(stem_channels)
        self.layer1 = make_res_layer(
            Bottleneck, in_channels=stem_channels, channels=stem_channels, num_blocks=num_blocks
        )
        prev = (stem_channels * Bottleneck.expansion,)
        for stage, num_modules in zip((2, 3, 4), stage_num_modules, strict=True):
            channels = tuple(width * 2**b for b in range(stage))
            self.add_module(f"transition{stage - 1}", _make_transition(prev, channels))
            self.add_module(
                f"stage{stage}",
                nn.Sequential(
                    *(
                        HighResolutionModule(
                            channels=channels,
                            num_blocks=num_blocks,
                            multi_scale_output=stage < 4 or m < num_modules - 1,
                        )
                        for m in range(num_modules)
                    )
                ),
            )
            prev = channels

    @property
    def out_channels(self) -> int:
        """Channels of `forward_features` (= width)."""
        return self.width

    @property
    def default_pretrained(self) -> str | None:
        """The registry name of the ImageNet file the official recipes start from (None: no such file)."""
        return HRNET.get(self.width)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> features (N, width, H/4, W/4) of the highest-resolution branch."""
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        feats = [self.layer1(x)]
        for stage in (2, 3, 4):
            feats = _apply_transition(getattr(self, f"transition{stage - 1}"), feats)
            feats = getattr(self, f"stage{stage}")(feats)
        return feats[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> (N, width, H/4, W/4)."""
        return self.forward_features(x)

    def init_weights(self, pretrained: str | None = None) -> None:
        """Official init: convs N(0, 0.001), BN 1/0; then, if given, ImageNet weights for
        PRETRAINED_LAYERS from the local file `pretrained` (everything else stays random).

        Raises FileNotFoundError when the file is missing, ValueError when nothing matches.
        """
        normal_init_(self, std=0.001)
        if pretrained is not None:
            load_pretrained(
                self,
                pretrained,
                expected=f"HRNet-W{self.width} ImageNet weights"
                + (f" (model.pretrained={self.default_pretrained} downloads them)" if self.default_pretrained else ""),
                prefixes=PRETRAINED_LAYERS,
            )


class PoseHighResolutionNet(HRNetBackbone):
    """HRNet backbone + `final_layer` (conv C -> K, with bias): heatmaps at stride 4.

    Args:
        num_joints: K heatmap channels (COCO 17, MPII 16).
        width, stage_num_modules, num_blocks, stem_channels: see `HRNetBackbone`.
        final_conv_kernel: 1 (official) or 3.
    """

    #: the layers that output heatmaps / tags (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("final_layer",)

    def __init__(
        self,
        *,
        num_joints: int = 17,
        width: int = 32,
        stage_num_modules: tuple[int, int, int] = (1, 4, 3),
        num_blocks: int = 4,
        stem_channels: int = 64,
        final_conv_kernel: int = 1,
    ) -> None:
        super().__init__(
            width=width, stage_num_modules=stage_num_modules, num_blocks=num_blocks, stem_channels=stem_channels
        )
        self.num_joints = num_joints
        self.final_layer = nn.Conv2d(
            width, num_joints, kernel_size=final_conv_kernel, padding=final_conv_kernel // 2, bias=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> heatmaps (N, K, H/4, W/4)."""
        return self.final_layer(self.forward_features(x))
