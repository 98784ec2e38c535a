"""benchmarks.bench_export on tiny widths: both backends measured, outputs agree."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")

from benchmarks import bench_export  # noqa: E402


def test_tiny_export_benchmark():
    result = bench_export.main(["--tiny", "--models", "posenet", "--batch-size", "1", "--iters", "1", "--threads", "1"])
    run = result["models"]["posenet"]
    assert set(run["backends"]) == {"pytorch", "onnxruntime"}
    assert all(b["images_per_s"] > 0 for b in run["backends"].values())
    assert run["max_rel_difference"] < 1e-3
