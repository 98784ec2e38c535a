"""benchmarks.report on tiny networks: it runs, and its figures are complete and consistent.

No timing is asserted (the machine may be shared); only the bookkeeping is checked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import pytest

from benchmarks import report
from tests.helpers import docs_results_hook

TINY = [
    "--tiny", "--iters", "1", "--warmup", "0", "--batch-size", "2", "--peak-batch", "1", "--peak-reps", "1",
    "--bandwidth-mb", "4", "--e2e-images", "1", "--data-images", "2", "--data-passes", "1", "--grouping-images", "1",
    "--threads", "1", "--backend-iters", "1", "--steady-frames", "5",
]  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:  # the memory-format choices are cached in a temporary folder
        mp.setenv("POSEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        return report.main([*TINY, "--out", str(out)])


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_every_family_has_both_paths(result):
    assert set(result["families"]) == set(report.FAMILIES)
    peak = result["peak"]
    assert _positive(peak["fp32_gflops"]) and _positive(peak["bf16_gflops"]) and _positive(peak["copy_gb_per_s"])
    for name, f in result["families"].items():
        assert _positive(f["forward_gflops_per_image"]), name
        ref, auto = f["train_reference"], f["train_auto"]
        assert (ref["precision"], ref["channels_last"]) == ("32-true", False)
        chosen = f["fast_path"]  # what auto resolves to for this network, as a training run's
        assert chosen["precision"] == result["automatic_path"]["precision"]
        assert (auto["precision"], auto["channels_last"]) == (chosen["precision"], chosen["channels_last"])
        for path in (ref, auto):
            assert _positive(path["images_per_s"])
            assert path["achieved_gflops"] == pytest.approx(3 * f["forward_gflops_per_image"] * path["images_per_s"])
            assert path["pct_of_fp32_peak"] == pytest.approx(100 * path["achieved_gflops"] / peak["fp32_gflops"])
        assert f["train_ratio"] == pytest.approx(auto["images_per_s"] / ref["images_per_s"])
        assert all(_positive(f["infer_auto"][f"flip_{flip}_images_per_s"]) for flip in ("off", "on"))


def test_data_grouping_and_files(result):
    data = result["data"]
    for paradigm in ("topdown", "bottomup", "pose3d"):
        assert _positive(data[paradigm]["samples_per_s"]), paradigm
        if paradigm != "topdown":
            assert _positive(data[paradigm]["reference_samples_per_s"]), paradigm
    for figures in data["workers_per_gpu"].values():
        assert figures["workers"] == math.ceil(figures["samples_per_s_per_gpu"] / data["topdown"]["samples_per_s"])
    for scenario in ("typical", "stress"):
        assert _positive(result["grouping"][scenario]["parse_refine"])
    assert result["grouping"]["typical"]["target_ms"] == 2.0 and result["grouping"]["stress"]["target_ms"] == 8.0
    json_file, png_file = result["_files"]
    written = json.loads(open(json_file).read())
    assert written["families"].keys() == result["families"].keys()
    image = cv2.imread(png_file)
    assert image is not None and image.shape[1] == 1100
    rows = report.table(written)
    backends = written["backends"]
    backend_rows = 2 * len(backends["models"]) + len(backends["ratios"]) + len(backends["published"])
    assert len(rows) == 5 + 2 * len(report.FAMILIES) + backend_rows + 1 + 4 + len(data["workers_per_gpu"]) + 2 + 1
    assert any(r[0] == "published RTMPose-m ms (not ours)" and r[1] == "11.06" for r in rows)


def test_inference_backends_beside_hrnet(result):
    """RTMPose-t and -m beside HRNet-W32: batch 1 and the report's batch, three backends each, ratios
    from the same run, peak shares from the report's peak; the published latency kept apart."""
    backends, peak = result["backends"], result["peak"]
    assert list(backends["models"]) == list(report.BACKEND_MODELS) == ["hrnet", "rtmpose_t", "rtmpose_m"]
    assert backends["batches"] == [1, 2]
    for name, m in backends["models"].items():
        assert m["label"] == {"hrnet": "HRNet-W32", "rtmpose_t": "RTMPose-t", "rtmpose_m": "RTMPose-m"}[name]
        assert m["gmacs_per_image"] == pytest.approx(m["forward_gflops_per_image"] / 2)
        assert m["onnx_max_rel_difference"] < 1e-3, name
        for batch in ("1", "2"):
            for backend in ("pytorch_reference", "pytorch_auto", "onnxruntime"):
                figures = m["batches"][batch][backend]
                assert _positive(figures["images_per_s"]) and len(figures["times_s"]) == 1
                assert figures["latency_ms"] == pytest.approx(1000 / figures["images_per_s"])
                assert figures["pct_of_fp32_peak"] == pytest.approx(
                    100 * m["forward_gflops_per_image"] * figures["images_per_s"] / peak["fp32_gflops"]
                )
            auto = m["pytorch_auto"][batch]
            assert auto["precision"] == result["automatic_path"]["precision"]
    hrnet, rtm = backends["models"]["hrnet"]["batches"]["2"], backends["models"]["rtmpose_m"]["batches"]["2"]
    ratio = backends["ratios"]["rtmpose_m/hrnet"]
    assert ratio["aim"] == 3.0 and backends["ratios"]["rtmpose_t/hrnet"]["aim"] is None
    for backend, value in ratio["batches"]["2"].items():
        assert value == pytest.approx(rtm[backend]["images_per_s"] / hrnet[backend]["images_per_s"])
    published = backends["published"]["rtmpose_m"]
    assert published["published_latency_ms"] == 11.06 and "i7-11700" in published["source"]
    assert (
        published["measured_latency_ms"] == backends["models"]["rtmpose_m"]["batches"]["1"]["onnxruntime"]["latency_ms"]
    )


def test_docs_render_the_backends(result):
    """docs/hooks/results.py renders the report's inference backends, ratios and published figures."""
    hook = docs_results_hook()
    json_file = Path(result["_files"][0])
    page = hook.render_benchmark(json_file, json.loads(json_file.read_text()))
    rtm = result["backends"]["models"]["rtmpose_m"]["batches"]
    assert "| RTMPose-m |" in page and "ms/image, batch 1" in page and "images/s, batch 2" in page
    assert f"| {rtm['1']['onnxruntime']['latency_ms']:.2f} | {rtm['2']['onnxruntime']['images_per_s']:.1f} |" in page
    ratio = result["backends"]["ratios"]["rtmpose_m/hrnet"]["batches"]["2"]["onnxruntime"]
    assert "RTMPose-m / HRNet-W32 images/s at batch 2:" in page and f"onnxruntime {ratio:.2f}x" in page
    assert "Published, not measured here: RTMPose-m 11.06 ms" in page
    older = {k: v for k, v in result.items() if k != "backends"}  # a report from before the backends
    assert "Inference backends" not in hook.render_benchmark(json_file, older)


def test_steady_video_step(result):
    """Tracking + smoothing of 10 people: median, the aim, every person kept their id; in the table
    and in the docs."""
    steady = result["steady"]
    assert steady["people"] == 10 and steady["frames"] == 5 and steady["tracks"] == 10
    for part in ("tracking_and_smoothing", "tracking", "smoothing"):
        assert _positive(steady[part]["median_ms"]) and steady[part]["p90_ms"] >= steady[part]["median_ms"]
    assert steady["aim_met"] == (steady["tracking_and_smoothing"]["median_ms"] < steady["aim_ms"])
    assert any(row[0] == "tracking + smoothing ms/frame (10 people)" for row in report.table(result))
    hook = docs_results_hook()
    json_file = Path(result["_files"][0])
    page = hook.render_benchmark(json_file, json.loads(json_file.read_text()))
    both = steady["tracking_and_smoothing"]["median_ms"]
    assert f"Tracking + smoothing of 10 people (`benchmarks.bench_steady`): {both:.3f} ms per frame" in page
