"""HigherHRNet for bottom-up pose estimation (Cheng et al., CVPR 2020).

The HRNet backbone (`HRNetBackbone`, official keys) is followed by

- ``final_layers[0]``: 1x1 conv C -> K heatmaps + K tags (tag per joint) at stride 4;
- ``deconv_layers[i]`` for each deconv stage: concatenate (features, previous output) ->
  ConvTranspose2d (k4 s2 p1, no bias) -> BN -> ReLU -> ``num_deconv_basic_blocks`` BasicBlocks,
  each wrapped in its own ``nn.Sequential`` (keys ``deconv_layers.0.0.0`` = ConvTranspose,
  ``deconv_layers.0.0.1`` = BN, ``deconv_layers.0.{1..4}.0`` = BasicBlocks);
- ``final_layers[i + 1]``: 1x1 conv -> K heatmaps at stride 4 / 2^(i+1).

With the official settings the network returns [(N, 2K, H/4, W/4), (N, K, H/2, W/2)], the
official COCO checkpoints load by name, and W32 / W48 have 28,645,331 / 63,827,139 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from src.models.blocks import BasicBlock, batch_norm
from src.models.hrnet import HRNetBackbone

#: kernel size -> (padding, output_padding) giving an exact 2x upsampling (official `_get_deconv_cfg`).
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


def _per_stage(value: int | Sequence[int], num: int, name: str) -> tuple[int, ...]:
    values = (value,) * num if isinstance(value, int) else tuple(value)
    if len(values) != num:
        raise ValueError(f"{name} needs one entry per deconv stage ({num}), got {values}")
    return values


class HigherHRNet(HRNetBackbone):
    """HRNet backbone + multi-resolution heatmap / associative-embedding heads.

    Args:
        num_joints: K keypoints (COCO 17).
        width, stage_num_modules, num_blocks, stem_channels: see `HRNetBackbone`.
        tag_per_joint: K tag maps (official) instead of one shared tag map.
        num_deconvs: deconv stages, each doubling the resolution (official 1).
        deconv_channels: output channels of each deconv stage; default (width,) * num_deconvs.
        deconv_kernel: ConvTranspose kernel (4, 3 or 2), one value or one per stage.
        num_deconv_basic_blocks: BasicBlocks after each deconv (official 4).
        cat_output: per deconv stage, whether the previous prediction is concatenated to its input.
        with_ae_loss: per output (num_deconvs + 1 entries), whether it carries tag maps
            (official (True, False): tags only at stride 4).
        final_conv_kernel: kernel of the prediction convs, 1 (official) or 3.
    """

    #: the layers that output heatmaps / tags (kept near zero by `kaiming_init_`)
    prediction_layers: ClassVar[tuple[str, ...]] = ("final_layers",)

    def __init__(
        self,
        *,
        num_joints: int = 17,
        width: int = 32,
        stage_num_modules: tuple[int, int, int] = (1, 4, 3),
        num_blocks: int = 4,
        stem_channels: int = 64,
        tag_per_joint: bool = True,
        num_deconvs: int = 1,
        deconv_channels: Sequence[int] | None = None,
        deconv_kernel: int | Sequence[int] = 4,
        num_deconv_basic_blocks: int = 4,
        cat_output: Sequence[bool] = (True,),
        with_ae_loss: Sequence[bool] = (True, False),
        final_conv_kernel: int = 1,
    ) -> None:
        super().__init__(
            width=width, stage_num_modules=stage_num_modules, num_blocks=num_blocks, stem_channels=stem_channels
        )
        channels = _per_stage(width if deconv_channels is None else deconv_channels, num_deconvs, "deconv_channels")
        kernels = _per_stage(deconv_kernel, num_deconvs, "deconv_kernel")
        if len(cat_output) != num_deconvs or len(with_ae_loss) != num_deconvs + 1:
            raise ValueError(
                f"cat_output needs {num_deconvs} entries and with_ae_loss {num_deconvs + 1}, "
                f"got {tuple(cat_output)} and {tuple(with_ae_loss)}"
            )
        if any(k not in _DECONV_PADDING for k in kernels):
            raise ValueError(f"deconv_kernel must be 4, 3 or 2, got {kernels}")
        self.num_joints = num_joints
        self.num_deconvs = num_deconvs
        self.cat_output = tuple(bool(c) for c in cat_output)
        dim_tag = num_joints if tag_per_joint else 1
        #: channels of each output: K heatmaps (+ tag maps where the AE loss is applied).
        self.output_channels = tuple(num_joints + dim_tag if ae else num_joints for ae in with_ae_loss)

        def head(in_channels: int, out_channels: int) -> nn.Conv2d:
            return nn.Conv2d(in_channels, out_channels, final_conv_kernel, padding=final_conv_kernel // 2)

        self.final_layers = nn.ModuleList(
            [head(width, self.output_channels[0])]
            + [head(channels[i], self.output_channels[i + 1]) for i in range(num_deconvs)]
        )
        self.deconv_layers = nn.ModuleList()
        in_channels = width
        for i in range(num_deconvs):
            if self.cat_output[i]:
                in_channels += self.output_channels[i]
            padding, output_padding = _DECONV_PADDING[kernels[i]]
            upsample = nn.Sequential(
                nn.ConvTranspose2d(
                    in_channels,
                    channels[i],
                    kernels[i],
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=False,
                ),
                batch_norm(channels[i]),
                nn.ReLU(inplace=True),
            )
            blocks = [
                nn.Sequential(BasicBlock(in_channels=channels[i], channels=channels[i]))
                for _ in range(num_deconv_basic_blocks)
            ]
            self.deconv_layers.append(nn.Sequential(upsample, *blocks))
            in_channels = channels[i]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        """x (N, 3, H, W) -> [ (N, C_0, H/4, W/4), (N, C_1, H/2, W/2), ... ].

        Officially C_0 = 2K (K heatmaps then K tag maps) and C_1 = K heatmaps.
        """
        features = self.forward_features(x)
        output = self.final_layers[0](features)
        outputs = [output]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                features = torch.cat((features, output), dim=1)
            features = deconv(features)
            output = self.final_layers[i + 1](features)
            outputs.append(output)
        return outputs

    def init_weights(self, pretrained: str | None = None) -> None:
        """Official init: convs and deconvs N(0, 0.001) with zero bias, BN weight 1 / bias 0; then,
        if given, the ImageNet HRNet file `pretrained` fills the backbone layers only (stem, layer1,
        transitions, stages); the deconv and prediction layers keep their init.

        Raises FileNotFoundError when the file is missing, ValueError when nothing matches.
        """
        super().init_weights(pretrained)
