"""Heatmap codecs: keypoints <-> training targets / predictions."""

from src.codecs.msra_heatmap import MSRAHeatmap, flip_heatmaps_back

__all__ = ["MSRAHeatmap", "flip_heatmaps_back"]
