"""Pose-estimation networks with the official parameter names.

- `PoseHighResolutionNet` (HRNet, top-down heatmaps) and its `HRNetBackbone`.
- `PoseResNet` (SimpleBaseline) and its parts `ResNetBackbone`, `DeconvHead`.
- `HigherHRNet` (bottom-up heatmaps + associative embedding tags).
- `HourglassNet` (stacked hourglass, bearpaw/pytorch-pose `hg`).
"""

from src.models.higher_hrnet import HigherHRNet
from src.models.hourglass import HourglassNet
from src.models.hrnet import HRNetBackbone, PoseHighResolutionNet
from src.models.resnet import DeconvHead, PoseResNet, ResNetBackbone

__all__ = [
    "DeconvHead",
    "HRNetBackbone",
    "HigherHRNet",
    "HourglassNet",
    "PoseHighResolutionNet",
    "PoseResNet",
    "ResNetBackbone",
]
