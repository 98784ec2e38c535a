"""benchmarks.bench_export on tiny widths: three backends per model, alternating, outputs agree; the
RTMPose / HRNet ratios, the peak shares and the published figures are bookkept correctly."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from benchmarks import bench_export  # noqa: E402

BACKENDS = ("pytorch_reference", "pytorch_auto", "onnxruntime")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "export.json"
    args = ["--tiny", "--models", "hrnet,rtmpose_m", "--batch-sizes", "2,1", "--iters", "2", "--warmup", "0"]
    with pytest.MonkeyPatch.context() as mp:  # the memory-format choices are cached in a temporary folder
        mp.setenv("POSEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        result = bench_export.main([*args, "--threads", "1", "--json", str(out)])
    result["_json"] = out
    return result


def test_every_backend_of_every_model(result):
    assert result["batches"] == [1, 2] and list(result["models"]) == ["hrnet", "rtmpose_m"]
    peak = result["peak"]
    for name, m in result["models"].items():
        assert m["label"] == bench_export.MODELS[name].label
        assert m["forward_gflops_per_image"] > 0 and m["gmacs_per_image"] == m["forward_gflops_per_image"] / 2
        assert m["onnx_max_rel_difference"] < 1e-3 and m["auto_max_rel_difference"] < 0.1, name
        for batch in ("1", "2"):
            assert set(m["batches"][batch]) == set(BACKENDS)
            for figures in m["batches"][batch].values():
                assert len(figures["times_s"]) == 2
                assert figures["images_per_s"] == pytest.approx(int(batch) / figures["median_s"])
                assert figures["latency_ms"] == pytest.approx(1000 * figures["median_s"] / int(batch))
                assert figures["pct_of_fp32_peak"] == pytest.approx(
                    100 * m["forward_gflops_per_image"] * figures["images_per_s"] / peak["fp32_gflops"]
                )
            auto = m["pytorch_auto"][batch]
            assert auto["precision"] in ("32-true", "bf16-mixed", "16-mixed") and auto["reason"]
            has_bf16_share = "pct_of_bf16_peak" in m["batches"][batch]["pytorch_auto"]
            assert has_bf16_share == (auto["precision"] != "32-true")


def test_ratio_aim_and_published_figures(result):
    ratio = result["ratios"]["rtmpose_m/hrnet"]
    assert ratio["aim"] == bench_export.AIM_RATIO == 3.0
    for batch in ("1", "2"):
        rtm, hrnet = result["models"]["rtmpose_m"]["batches"][batch], result["models"]["hrnet"]["batches"][batch]
        for backend in BACKENDS:
            expected = rtm[backend]["images_per_s"] / hrnet[backend]["images_per_s"]
            assert ratio["batches"][batch][backend] == pytest.approx(expected)
    published = result["published"]
    assert list(published) == ["rtmpose_m"]  # only the models measured
    assert published["rtmpose_m"]["published_latency_ms"] == 11.06
    assert (
        "i7-11700" in published["rtmpose_m"]["source"]
        and "projects/rtmpose/README.md" in published["rtmpose_m"]["source"]
    )
    batch1 = result["models"]["rtmpose_m"]["batches"]["1"]["onnxruntime"]
    assert published["rtmpose_m"]["measured_latency_ms"] == batch1["latency_ms"]
    lines = bench_export.summary_lines(result)
    assert any(line.startswith("published, not ours: RTMPose-m 11.06 ms") for line in lines)
    assert any("rtmpose_m/hrnet at batch 2" in line and "aim >= 3x" in line for line in lines)
    rows = bench_export.table_rows(result)
    assert len(rows) == len(BACKENDS) * len(result["models"])
    mixed = result["models"]["hrnet"]["pytorch_auto"]["2"]["precision"] != "32-true"
    assert [r[-1].split()[-1] for r in rows[:3]] == [
        "fp32",
        "bf16" if mixed else "fp32",
        "fp32",
    ]  # peak of its arithmetic
    written = json.loads(result["_json"].read_text())
    assert written["ratios"].keys() == result["ratios"].keys() and written["config"]["batch_sizes"] == [1, 2]


@pytest.mark.parametrize("bad", [["--models", "vitpose"], ["--batch-sizes", "0,8"], ["--batch-sizes", "a"]])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(SystemExit):
        bench_export.main(bad)
