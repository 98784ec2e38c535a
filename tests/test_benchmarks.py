"""The split benchmarks (peak, training variants, data loading) end to end at tiny sizes.

No timing is asserted (the machine may be shared); the bookkeeping is: every figure present,
positive and consistent with the others.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import bench_data, bench_peak, bench_training, common
from src.models.hrnet import PoseHighResolutionNet
from src.models.rtmpose import RTMPose


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_peak():
    result = bench_peak.main(["--batch", "1", "--reps", "2", "--bandwidth-mb", "2", "--threads", "1", "--tiny"])
    peak = result["peak"]
    assert len(peak["runs"]) == 2 * 2 * len(bench_peak.TINY_PEAK_SHAPES)
    for r in peak["runs"]:
        n, c, h, w = r["shape"]
        assert n == 1 and r["gflop"] == pytest.approx(2 * n * c * c * 9 * h * w / 1e9)
        assert len(r["times_s"]) == 2 and r["best_s"] == min(r["times_s"])
        assert r["gflops"] == pytest.approx(r["gflop"] / r["best_s"])
    for dtype in ("fp32", "bf16"):
        assert peak[f"{dtype}_gflops"] == max(r["gflops"] for r in peak["runs"] if r["dtype"] == dtype)
    assert _positive(peak["copy_gb_per_s"]) and peak["megabytes"] == 2
    assert result["machine"]["threads"] == 1


def test_official_hrnet_flops_match_the_reference():
    with torch.device("meta"):  # counted without memory or arithmetic
        net = PoseHighResolutionNet(num_joints=17, width=32)
    assert common.forward_gflops(net, (256, 192)) == pytest.approx(
        bench_training.REFERENCE_GFLOPS_W32_256X192, abs=1e-6
    )


REFERENCE_MODERN = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "modern"


def test_rtmpose_head_flops_count_its_linear_layers_and_matrix_products():
    """The FLOPs the benchmarks print count RTMCCHead's linear layers (on (N, K, C) tokens) and the
    gated attention's two batched products, 2 per multiply-add, beside the 7x7 conv."""
    k, c, (w, h), hidden, e, s = 17, 768, (6, 8), 256, 512, 128
    with torch.device("meta"):
        head = RTMPose(size="m").head
    macs = {
        "final 7x7 conv": k * c * 49 * w * h,
        "flatten linear": k * (w * h) * hidden,
        "gau uv linear": k * hidden * (2 * e + s),
        "q k^T (bmm)": k * k * s,
        "kernel v (bmm)": k * k * e,
        "gau o linear": k * e * hidden,
        "cls_x, cls_y": k * hidden * (192 * 2 + 256 * 2),
    }
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        head(torch.empty(1, c, h, w, device="meta"))
    assert counter.get_total_flops() == 2 * sum(macs.values())


def test_rtmpose_flops_are_twice_mmengine_multiply_adds():
    """`common.forward_gflops` = 2 x multiply-adds (torch's FlopCounterMode); mmpose's published
    "FLOPS(G)" (1.93 for RTMPose-m) is mmengine's count: 1 per multiply-add, plus 2 per BatchNorm
    output element and 1 per adaptive-pool input element. With those added back the two agree exactly."""
    path = REFERENCE_MODERN / "rtmpose-m_coco-256x192.json"
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    expected = json.loads(path.read_text())["notes"]["flops_mmengine_get_model_complexity_info"]
    with torch.device("meta"):
        net = RTMPose(size="m").eval()
    extras = 0

    def count(module, inputs, output):
        nonlocal extras
        if isinstance(module, torch.nn.BatchNorm2d):
            extras += 2 * output.numel()
        elif isinstance(module, torch.nn.AdaptiveAvgPool2d):
            extras += inputs[0].numel()

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    with torch.no_grad():
        net(torch.empty(1, 3, 256, 192, device="meta"))
    for hook in hooks:
        hook.remove()
    gflops = common.forward_gflops(net, (256, 192))
    assert round(gflops * 1e9) % 2 == 0 and round(gflops * 1e9) // 2 + extras == expected


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "training.json"
    tiny = ["--width", "8", "--image-size", "64x48", "--batch-size", "2", "--warmup", "0", "--iters", "2"]
    with pytest.MonkeyPatch.context() as mp:  # the memory-format choice is cached in a temporary folder
        mp.setenv("POSEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        result = bench_training.main(
            [*tiny, "--peak-batch", "1", "--peak-reps", "1", "--tiny-peak", "--threads", "1", "--json", str(out)]
        )
    result["_json"] = out
    return result


def test_training_figures(training):
    train, peak = training["train"], training["peak"]
    variants = train["variants"]
    assert list(variants) == bench_training.DEFAULT_VARIANTS
    assert not any(common.VARIANTS[v].compile for v in variants)  # the compiled one is opt-in
    assert train["train_gflop_per_image"] == pytest.approx(3 * train["forward_gflops_per_image"])
    assert train["reference_gflops_per_image"] is None  # width 8 is not the official configuration
    for name, v in variants.items():
        assert (v["precision"], v["channels_last"]) == (
            common.VARIANTS[name].precision,
            common.VARIANTS[name].channels_last,
        )
        assert len(v["times_s"]) == 2 and v["median_step_s"] == pytest.approx(sum(v["times_s"]) / 2)
        assert v["images_per_s"] == pytest.approx(2 / v["median_step_s"])
        assert v["achieved_gflops"] == pytest.approx(train["train_gflop_per_image"] * v["images_per_s"])
        assert v["pct_of_fp32_peak"] == pytest.approx(100 * v["achieved_gflops"] / peak["fp32_gflops"])
        if v["precision"] == "32-true":
            assert v["pct_of_bf16_peak"] is None
        else:
            assert v["pct_of_bf16_peak"] == pytest.approx(100 * v["achieved_gflops"] / peak["bf16_gflops"])
        assert v["ratio"] == pytest.approx(v["images_per_s"] / variants["fp32"]["images_per_s"])
        assert _positive(v["final_loss"]) and 0 < v["cpu_utilisation"] < 2
    fast = training["automatic_path"]  # what auto resolves to for this network, as a run's
    assert (
        fast["memory_format"]["how"] in ("measured", "rule")
        and fast["precision"] == common.automatic_path()["precision"]
    )
    assert train["automatic_variant"] == common.variant_of(fast["precision"], fast["channels_last"])
    assert train["speedup"] == variants[train["automatic_variant"]]["ratio"]
    assert train["aim_speedup"] == bench_training.AIM_SPEEDUP[fast["precision"]]
    assert train["aim_met"] == (train["speedup"] >= train["aim_speedup"])
    written = json.loads(training["_json"].read_text())
    assert written["train"]["variants"].keys() == variants.keys() and written["config"]["image_size"] == [64, 48]


@pytest.mark.parametrize("bad", [["--image-size", "65x48"], ["--variants", "fp64"], ["--iters", "0"]])
def test_training_rejects_bad_arguments(bad):
    with pytest.raises(SystemExit):
        bench_training.main(bad)


class _Dataset:
    """Records the reading each item was read with."""

    reduced_decode = normalize_on_device = False

    def __init__(self) -> None:
        self.reads: list[tuple[tuple[int, int], bool, bool]] = []

    def __len__(self) -> int:
        return 3

    def __getitem__(self, key):
        self.reads.append((key, self.reduced_decode, self.normalize_on_device))


def test_readings_alternate_and_are_counted():
    dataset = _Dataset()
    out = bench_data.time_readings(dataset, passes=2)
    assert out["samples_per_pass"] == 3 and [len(s) for s in out["seconds"].values()] == [2, 2]
    passes = [dataset.reads[1 + 3 * i : 4 + 3 * i] for i in range(4)]  # after the warm-up item
    flags = [{(r, n) for _, r, n in p} for p in passes]
    assert flags == [{(False, False)}, {(True, True)}, {(True, True)}, {(False, False)}]  # alternating first
    assert [k for k, _, _ in passes[2]] == [(0, 1), (1, 1), (2, 1)]  # (index, epoch) as the sampler asks
    assert dataset.reduced_decode and dataset.normalize_on_device  # left on the fast path's reading
    seconds = {"reference": [1.0, 2.0], "fast": [0.5, 1.0]}
    figures = bench_data.rates({"samples_per_pass": 3, "seconds": seconds})
    assert figures == {"samples": 6, "samples_per_s": 4.0, "reference_samples_per_s": 2.0}


def test_topdown_data_by_stage(tmp_path):
    out = tmp_path / "data.json"
    tiny = ["--paradigms", "topdown", "--images", "2", "--passes", "2", "--input-size", "64x48"]
    threads = torch.get_num_threads()
    result = bench_data.main([*tiny, "--json", str(out)])
    assert torch.get_num_threads() == threads  # one worker's single thread only while timing
    td = result["topdown"]
    assert set(result) == {"machine", "config", "topdown"}
    assert td["samples"] == 2 * td["records"] > 0
    assert td["ms_per_sample"] == pytest.approx(1000 / td["samples_per_s_per_worker"])
    assert td["reduced_decode_speedup"] == pytest.approx(
        td["samples_per_s_per_worker"] / td["full_decode_samples_per_s"]
    )
    stages = td["stage_ms_per_sample"]
    assert list(stages) == [*bench_data.STAGES, "other"]
    assert all(_positive(stages[s]) for s in bench_data.STAGES) and math.isfinite(stages["other"])
    assert 0 <= td["reduced_fraction"] <= 1 and _positive(td["collate_ms_per_sample"]) and td["mean_jpeg_kb"] > 1
    assert td["aim_samples_per_s"] == bench_data.AIM_SAMPLES_PER_S
    assert td["aim_met"] == (td["samples_per_s_per_worker"] >= bench_data.AIM_SAMPLES_PER_S)
    assert json.loads(out.read_text())["topdown"]["records"] == td["records"]


@pytest.mark.parametrize("bad", [["--paradigms", "2d"], ["--input-size", "63x48"], ["--passes", "0"]])
def test_data_rejects_bad_arguments(bad):
    with pytest.raises(SystemExit):
        bench_data.main(bad)
