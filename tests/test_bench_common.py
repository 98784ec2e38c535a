"""benchmarks.common: the harness computes what it says from injected timings, tables from given rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks import common


class FakeClock:
    """A clock the timed calls advance by known amounts (wall and CPU apart)."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 7.0

    def spend(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def test_alternate_rotates_the_starting_call_and_splits_warmup():
    clock, order = FakeClock(), []
    durations = {"a": iter([9.0, 1.0, 2.0, 3.0]), "b": iter([8.0, 4.0, 5.0, 6.0]), "c": iter([7.0, 2.5, 2.5, 2.5])}

    def call(name):
        def run():
            order.append(name)
            wall = next(durations[name])
            clock.spend(wall, 2 * wall)

        return run

    rounds = []
    out = common.alternate(
        {n: call(n) for n in "abc"},
        warmup=1,
        iters=3,
        clock=lambda: clock.wall,
        cpu_clock=lambda: clock.cpu,
        on_round=lambda r, s: rounds.append((r, dict(s))),
    )
    assert order == list("abc" + "bca" + "cab" + "abc")
    assert out["a"] == {"times_s": [1.0, 2.0, 3.0], "cpu_s": [2.0, 4.0, 6.0], "warmup_s": [9.0]}
    assert out["b"]["times_s"] == [4.0, 5.0, 6.0] and out["b"]["warmup_s"] == [8.0]
    assert out["c"]["times_s"] == [2.5, 2.5, 2.5]
    assert [r for r, _ in rounds] == [0, 1, 2, 3] and rounds[0][1] == {"a": 9.0, "b": 8.0, "c": 7.0}
    with pytest.raises(ValueError, match="iters"):
        common.alternate({"a": lambda: None}, warmup=0, iters=0)


def test_summarize_gives_medians_rates_and_ratios():
    timings = {
        "reference": {"times_s": [2.0, 4.0, 3.0], "cpu_s": [4.0, 8.0, 6.0]},
        "fast": {"times_s": [1.0, 1.5, 5.0], "cpu_s": [1.0, 1.5, 5.0]},
    }
    out = common.summarize(timings, batch=6, baseline="reference", threads=2)
    ref, fast = out["reference"], out["fast"]
    assert (ref["median_step_s"], ref["min_step_s"], ref["images_per_s"]) == (3.0, 2.0, 2.0)
    assert (fast["median_step_s"], fast["min_step_s"], fast["images_per_s"]) == (1.5, 1.0, 4.0)
    assert ref["ratio"] == 1.0 and fast["ratio"] == pytest.approx(2.0)
    assert fast["ratio_from_min"] == pytest.approx(2.0)  # 2.0 s / 1.0 s fastest steps
    assert ref["cpu_utilisation"] == pytest.approx(1.0) and fast["cpu_utilisation"] == pytest.approx(0.5)
    assert "ratio" not in common.summarize(timings, batch=1)["fast"]
    with pytest.raises(KeyError, match="baseline"):
        common.summarize(timings, batch=1, baseline="missing")


def test_training_path_trains_in_its_variant():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 8, 8, generator=g)
    targets = common.random_targets(net, images, g)
    assert [t.shape for t in targets] == [torch.Size([2, 2, 8, 8])]
    path = common.TrainingPath(
        net, images, targets, common.mse_to_targets, channels_last=True, device=torch.device("cpu"), lr=1e-2
    )
    assert path.images.is_contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in path.net.parameters()]
    for _ in range(3):
        path.train_step()
    assert len(path.losses) == 3 and path.losses[-1] < path.losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, path.net.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the caller's network is untouched
    path.infer_step(flip=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        common.TrainingPath(
            net, images, targets, lambda o, t: o.sum() * float("nan"), device=torch.device("cpu")
        ).train_step()
    with pytest.raises(ValueError, match="precision"):
        common.TrainingPath(net, images, targets, common.mse_to_targets, precision="fp8")


def test_variants_by_arithmetic():
    assert common.variant_of("32-true", False) == common.REFERENCE_VARIANT == "fp32"
    assert common.variant_of("32-true", True) == "fp32_cl" and common.variant_of("bf16-mixed", True) == "bf16_cl"
    assert common.variant_of("16-mixed", True) is None
    assert common.parse_variants("bf16_cl, fp32,bf16_cl") == ["bf16_cl", "fp32"]
    with pytest.raises(Exception, match="fp64"):
        common.parse_variants("fp64")


def test_table_from_given_rows():
    lines = common.format_table(["figure", "value"], [["peak", "12.5"], ["a longer figure", "3"]])
    assert lines == [
        "figure           value",
        "----------------------",
        "peak              12.5",
        "a longer figure      3",
    ]
    printed = []
    common.print_table(["a"], [["x"]], printed.append)
    assert printed == ["a", "-", "x"]
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        common.format_table(["a", "b"], [["only one"]])


def test_results_files(tmp_path: Path):
    machine = {"cpu": "AMD EPYC 7B13 64-Core Processor", "gpu": None}
    assert (
        common.results_stem(tmp_path, machine, "2026-12-06") == tmp_path / "amd-epyc-7b13-64-core-processor-2026-12-06"
    )
    assert common.machine_slug({"cpu": "x", "gpu": "NVIDIA H100 80GB HBM3"}) == "nvidia-h100-80gb-hbm3"
    path = common.write_json(tmp_path / "sub" / "r.json", {"a": 1.5, "b": [float("nan"), 2], "c": {"d": math.inf}})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [None, 2], "c": {"d": None}}


def test_machine_info_and_threads():
    info = common.machine_info(3)
    assert info["threads"] == 3 and isinstance(info["flags"], dict) and info["torch"] == torch.__version__
    before = torch.get_num_threads()
    with common.torch_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    auto = common.automatic_path()
    assert set(auto) == {"precision", "channels_last", "reason"}
    assert "bf16" in common.bf16_hardware_note({"avx2": True})


def test_network_path_is_the_runs_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 1))
    record = common.network_path(net, (16, 12), 2)
    assert record["precision"] == common.automatic_path()["precision"]
    chosen = record["memory_format"]
    assert record["channels_last"] == chosen["channels_last"]
    if chosen["how"] in ("measured", "cached"):  # CPUs: the faster format, a tie keeping NCHW
        assert chosen["channels_last"] == (chosen["channels_last_ms"] < chosen["nchw_ms"])
        assert common.network_path(net, (16, 12), 2)["memory_format"]["how"] == "cached"
