"""mmpose's ``HeatmapHead`` (stride-2 deconvolutions, then a conv to K heatmaps), shared by the
heatmap networks built as mmpose builds them (ViTPose, CSPNeXt with UDP heatmaps).

Keys: ``deconv_layers.{0,1,2,...}`` (ConvTranspose2d, BatchNorm2d, ReLU per layer) and ``final_layer``.
"""

from __future__ import annotations

import torch
from torch import nn

from src.models.resnet import make_deconv_layers
from src.models.weights import normal_init_


class HeatmapHead(nn.Module):
    """mmpose ``HeatmapHead`` without conv layers: ``deconv_layers`` (each ConvTranspose2d k4 s2 p1 without bias,
    BatchNorm, ReLU; none for ViTPose's simple decoder) then ``final_layer`` (a conv with bias).

    Args:
        in_channels: backbone channels C.
        out_channels: K heatmaps.
        num_deconv_layers: 3 (mmpose's default, as the CSPNeXt UDP models use it), 2 (ViTPose classic)
            or 0 (ViTPose simple).
        deconv_channels: width of every deconv (256).
        final_kernel: 1 (classic) or 3 (simple, padding 1).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        if num_deconv_layers:
            self.deconv_layers = make_deconv_layers(
                in_channels, num_layers=num_deconv_layers, channels=deconv_channels, kernel=4
            )
            in_channels = deconv_channels
        else:
            self.deconv_layers = nn.Identity()
        self.final_layer = nn.Conv2d(in_channels, out_channels, kernel_size=final_kernel, padding=final_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, K, h 2^D, w 2^D) for D deconvs."""
        return self.final_layer(self.deconv_layers(x))

    def init_weights(self) -> None:
        """mmpose's HeatmapHead init: (de)conv weights N(0, 0.001), biases 0; BatchNorm 1 / 0."""
        normal_init_(self, std=0.001)
