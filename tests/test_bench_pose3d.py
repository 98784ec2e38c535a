"""benchmarks.bench_pose3d on tiny settings: the script runs and its figures are consistent.

No timing is asserted (the machine may be shared); only the bookkeeping is checked.
"""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_pose3d

TINY = [
    "--depth", "18", "--base-width", "8", "--input-size", "64", "--batch-size", "2", "--warmup", "0",
    "--iters", "1", "--threads", "1", "--data-images", "2", "--data-passes", "1",
]  # fmt: skip


def test_tiny_benchmark_reports_every_variant_and_the_fast_path():
    result = bench_pose3d.main(TINY)
    variants = result["train"]["variants"]
    assert set(variants) == set(bench_pose3d.VARIANTS)
    for v in variants.values():
        assert math.isfinite(v["images_per_s"]) and v["images_per_s"] > 0
        assert v["images_per_s"] == pytest.approx(2 / v["median_step_s"])
    assert variants["fp32"]["speedup_vs_fp32"] == pytest.approx(1.0)
    assert result["fast_path"] in ("bf16_cl", "fp32_cl")
    assert result["fast_path"] == bench_pose3d.fast_path(result["cpu"])
    assert result["train"]["forward_gflops_per_image"] > 0
    assert result["data"]["samples"] == 2 and result["data"]["samples_per_s"] > 0
    assert result["data"]["reference_samples_per_s"] > 0
