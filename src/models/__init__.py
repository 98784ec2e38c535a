"""Pose-estimation networks with the official parameter names.

- `PoseHighResolutionNet` (HRNet, top-down heatmaps) and its `HRNetBackbone`.
- `PoseResNet` (SimpleBaseline) and its parts `ResNetBackbone`, `DeconvHead`.
- `HourglassNet` (stacked hourglass, bearpaw/pytorch-pose `hg`).
"""

from src.models.hourglass import HourglassNet
from src.models.hrnet import HRNetBackbone, PoseHighResolutionNet
from src.models.resnet import DeconvHead, PoseResNet, ResNetBackbone

__all__ = ["DeconvHead", "HRNetBackbone", "HourglassNet", "PoseHighResolutionNet", "PoseResNet", "ResNetBackbone"]
