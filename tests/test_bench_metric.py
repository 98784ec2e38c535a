"""benchmarks.bench_metric on a few images: every stage timed, the metric's numbers sane."""

from __future__ import annotations

import pytest

from benchmarks import bench_metric


def test_tiny_metric_benchmark():
    result = bench_metric.main(["--images", "20", "--detections", "6"])
    assert result["detections"] >= result["kept_after_nms"] > 0
    assert result["compute_s"] > 0 and result["cocoeval_s"] > 0
    assert result["rest_of_compute_s"] == pytest.approx(result["compute_s"] - result["cocoeval_s"])
    assert 0.0 < result["AP"] <= 1.0
