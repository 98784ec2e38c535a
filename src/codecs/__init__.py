"""Heatmap codecs: keypoints <-> training targets / predictions."""

from src.codecs.heatmap_family import flip_heatmaps_back
from src.codecs.msra_heatmap import MSRAHeatmap

__all__ = ["MSRAHeatmap", "flip_heatmaps_back"]
