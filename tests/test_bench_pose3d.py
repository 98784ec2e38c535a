"""benchmarks.bench_pose3d on tiny settings: the script runs and its figures are consistent.

No timing is asserted (the machine may be shared); only the bookkeeping is checked.
"""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_pose3d, common

TINY = [
    "--depth", "18", "--base-width", "8", "--input-size", "64", "--batch-size", "2", "--warmup", "0",
    "--iters", "1", "--threads", "1", "--data-images", "2", "--data-passes", "1",
]  # fmt: skip


def test_tiny_benchmark_reports_every_variant_and_the_fast_path(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))  # the memory-format choice is cached there
    result = bench_pose3d.main(TINY)
    variants = result["train"]["variants"]
    assert list(variants) == bench_pose3d.TRAIN_VARIANTS == ["fp32", "fp32_cl", "bf16", "bf16_cl"]
    gflops = result["train"]["forward_gflops_per_image"]
    assert gflops > 0
    for v in variants.values():
        assert math.isfinite(v["images_per_s"]) and v["images_per_s"] > 0
        assert v["images_per_s"] == pytest.approx(2 / v["median_step_s"])
        assert v["achieved_gflops"] == pytest.approx(3 * gflops * v["images_per_s"])
        assert v["ratio"] == pytest.approx(v["images_per_s"] / variants["fp32"]["images_per_s"])
    assert variants["fp32"]["ratio"] == 1.0
    fast = result["automatic_path"]
    assert result["automatic_variant"] == common.variant_of(fast["precision"], fast["channels_last"])
    assert result["data"]["samples"] == 2 and result["data"]["samples_per_s"] > 0
    assert result["data"]["reference_samples_per_s"] > 0
