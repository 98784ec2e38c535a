"""The fast path chosen for the hardware, and where it enters a run."""

from __future__ import annotations

import json

import pytest
import torch

from src.utils import hardware
from src.utils.hardware import (
    choose_fast_path,
    cpu_info,
    decide_channels_last,
    memory_format_cache,
    time_memory_formats,
)
from tests.helpers import TINY_SYNTHETIC, compose_run

TINY_HRNET = ["model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1"]
TINY_HRNET += ["model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"]


def _cpu(*flags: str) -> dict:
    return {
        "model": "Test CPU",
        "flags": {name: name in flags for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
    }


@pytest.mark.parametrize(
    ("flags", "precision", "channels_last"),
    [
        (("avx2", "avx512f", "avx512_bf16"), "bf16-mixed", True),
        (("avx2", "amx_bf16"), "bf16-mixed", True),
        (("avx2", "avx512f"), "32-true", True),
        ((), "32-true", False),
    ],
)
def test_cpus(monkeypatch, flags, precision, channels_last):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    chosen = choose_fast_path("auto", cpu=_cpu(*flags))
    assert (chosen.precision, chosen.channels_last) == (precision, channels_last)
    assert "Test CPU" in chosen.reason


@pytest.mark.parametrize(
    ("capability", "precision"), [((8, 0), "bf16-mixed"), ((9, 0), "bf16-mixed"), ((7, 0), "16-mixed")]
)
def test_gpus(monkeypatch, capability, precision):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: capability)
    chosen = choose_fast_path("gpu")
    assert chosen.precision == precision and chosen.channels_last and "Test GPU" in chosen.reason
    assert choose_fast_path("cpu", cpu=_cpu()).precision == "32-true"  # accelerator=cpu on a GPU machine


def _fake_measure(nchw_ms: float, channels_last_ms: float, calls: list | None = None):
    """A stand-in for `time_memory_formats` that returns the given timings (and counts its calls)."""

    def measure(net, *, input_shape, batch_size, precision):
        if calls is not None:
            calls.append((type(net).__name__, tuple(input_shape), batch_size, precision))
        return {"nchw_ms": nchw_ms, "channels_last_ms": channels_last_ms, "steps": 3}

    return measure


def _tiny_net() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)
    )


def test_auto_enters_the_run_config_and_fast_path_false_is_the_reference(tmp_path, monkeypatch):
    from src.runner import resolve_fast_path

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_run("train", ["model=hrnet", "fast_path=true", *TINY_HRNET], tmp_path, tmp_path)
    assert cfg.trainer.precision == "auto" and cfg.model.channels_last == "auto"
    calls: list = []
    record = resolve_fast_path(cfg, measure=_fake_measure(10.0, 12.0, calls))
    expected = choose_fast_path(str(cfg.trainer.accelerator))
    # the memory format is measured on the run's network, input and batch, at the chosen precision
    assert calls == [("PoseHighResolutionNet", (3, 64, 48), cfg.data.batch_size, expected.precision)]
    assert (cfg.trainer.precision, cfg.model.channels_last) == (expected.precision, False)  # NCHW was faster
    assert record["memory_format"]["how"] == "measured" and record["memory_format"]["channels_last_ms"] == 12.0
    assert record["reason"].startswith(expected.reason) and "NCHW measured faster" in record["reason"]
    assert cfg.data.reduced_decode is True and record["reduced_decode"] is True
    assert cfg.data.normalize_on_device is True and record["normalize_on_device"] is True

    reference = compose_run("train", ["model=hrnet", "fast_path=false"], tmp_path, tmp_path)
    record = resolve_fast_path(reference, measure=_fake_measure(12.0, 10.0, calls))
    assert record["precision"] == "32-true" and reference.model.channels_last is False and len(calls) == 1
    assert reference.data.reduced_decode is False and reference.data.normalize_on_device is False
    assert record["fast_path"] is False and record["reason"].startswith("fast_path=false")
    explicit = compose_run(
        "train",
        ["model=hrnet", "trainer.precision=bf16-mixed", "model.channels_last=true", "fast_path=true"],
        tmp_path,
        tmp_path,
    )
    record = resolve_fast_path(explicit, measure=_fake_measure(1.0, 2.0, calls))
    assert explicit.trainer.precision == "bf16-mixed" and explicit.model.channels_last is True  # explicit: kept
    assert len(calls) == 1 and "memory_format" not in record  # nothing measured when not auto
    bad = compose_run("train", ["model=hrnet", "model.channels_last=fast"], tmp_path, tmp_path)
    with pytest.raises(ValueError, match="channels_last must be true, false or auto"):
        resolve_fast_path(bad)


def test_the_measured_choice_is_cached_per_machine_and_network(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net, calls = _tiny_net(), []
    common = dict(input_shape=(3, 32, 32), batch_size=2, precision="32-true")
    first = decide_channels_last(net, **common, measure=_fake_measure(10.0, 7.0, calls))
    assert first["channels_last"] is True and first["how"] == "measured" and len(calls) == 1
    again = decide_channels_last(net, **common, measure=_fake_measure(1.0, 100.0, calls))
    assert again["how"] == "cached" and again["channels_last"] is True and len(calls) == 1
    assert (again["nchw_ms"], again["channels_last_ms"]) == (10.0, 7.0)
    cache = json.loads(memory_format_cache().read_text())
    assert memory_format_cache().parent == tmp_path / "cache" and list(cache) == [first["key"]]
    key = first["key"]
    assert cpu_info()["model"] in key and torch.__version__ in key and "Sequential" in key and "batch 2" in key
    # another batch, input, precision or network is another entry
    other = decide_channels_last(net, **{**common, "batch_size": 4}, measure=_fake_measure(5.0, 6.0, calls))
    assert other["how"] == "measured" and other["channels_last"] is False and len(calls) == 2
    wider = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3))
    decide_channels_last(wider, **common, measure=_fake_measure(5.0, 6.0, calls))
    assert len(calls) == 3 and len(json.loads(memory_format_cache().read_text())) == 3
    # a tie keeps the reference (NCHW); GPUs keep the rule and measure nothing
    tie = decide_channels_last(net, **{**common, "precision": "bf16-mixed"}, measure=_fake_measure(5.0, 5.0))
    assert tie["channels_last"] is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert decide_channels_last(net, **common, accelerator="gpu", measure=_fake_measure(1.0, 2.0, calls)) == {
        "channels_last": True,
        "how": "rule",
    }
    assert len(calls) == 3


def test_a_real_measurement_of_a_tiny_network():
    net = _tiny_net()
    before = [p.clone() for p in net.parameters()]
    timings = time_memory_formats(net, input_shape=(3, 32, 32), batch_size=2, precision="32-true", budget_s=0.5)
    assert timings["nchw_ms"] > 0 and timings["channels_last_ms"] > 0 and 2 <= timings["steps"] <= 5
    assert timings["batch"] == 2  # a tiny network is timed at the run's batch
    # a budget smaller than one step: the smallest batch, two timed steps of each format
    slow = time_memory_formats(net, input_shape=(3, 32, 32), batch_size=64, precision="32-true", budget_s=1e-6)
    assert (slow["batch"], slow["steps"]) == (1, 2)  # fp32: one image
    mixed = time_memory_formats(net, input_shape=(3, 32, 32), batch_size=64, precision="bf16-mixed", budget_s=1e-6)
    assert (mixed["batch"], mixed["steps"]) == (2, 2)  # mixed precision: even batches
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the caller's network untouched
    assert all(p.grad is None for p in net.parameters()) and net[0].weight.is_contiguous()


def test_a_task_built_outside_a_run_resolves_auto_through_the_same_decider(tmp_path, monkeypatch):
    """channels_last=auto in a task built by hand (a notebook) is the decider's cached choice."""
    from hydra.utils import instantiate

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_run("train", ["model=hrnet", *TINY_HRNET], tmp_path, tmp_path)
    assert cfg.model.channels_last == "auto"
    net = instantiate(cfg.model.net)
    for choice, (nchw, last) in ((True, (9.0, 3.0)), (False, (3.0, 9.0))):
        memory_format_cache().unlink(missing_ok=True)
        decide_channels_last(
            net,
            input_shape=(3, 64, 48),
            batch_size=2,
            precision=choose_fast_path().precision,
            measure=_fake_measure(nchw, last),
        )
        task = instantiate(cfg.model, _recursive_=False)
        assert task.hparams.channels_last is choice
        weight = next(p for p in task.net.parameters() if p.dim() == 4)
        assert weight.is_contiguous(memory_format=torch.channels_last) is choice
    with pytest.raises(Exception, match="channels_last must be true, false or auto"):
        instantiate(cfg.model, channels_last="fast", _recursive_=False)


def test_a_run_records_its_arithmetic(tmp_path, monkeypatch):
    from src.train import train

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    overrides = ["model=hrnet", "debug=fast_dev_run", "data.batch_size=2", "fast_path=true", *TINY_SYNTHETIC]
    train(compose_run("train", [*overrides, *TINY_HRNET], tmp_path / "run", tmp_path / "data"))
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    chosen = choose_fast_path("cpu")
    record = info["fast_path"]
    measured = record.pop("memory_format")
    assert measured["how"] == "measured" and measured["nchw_ms"] > 0 and measured["channels_last_ms"] > 0
    assert measured["channels_last"] is (measured["channels_last_ms"] < measured["nchw_ms"])
    assert record == {
        "fast_path": True,
        "precision": chosen.precision,
        "channels_last": measured["channels_last"],
        "reduced_decode": True,
        "normalize_on_device": True,
        "reason": record["reason"],
    }
    assert record["reason"].startswith(chosen.reason) and "ms a step" in record["reason"]
    assert info["config"]["model"]["channels_last"] is measured["channels_last"]
    assert set(info["machine"]) == {"cpu", "cores", "threads", "flags", "gpu"}


def test_compile_runs_the_same_network(tmp_path):
    """model.compile=true goes through torch.compile (the eager backend here: the plumbing, in
    seconds); outputs and state_dict keys are those of the plain network."""
    from hydra.utils import instantiate

    overrides = ["model=hrnet", "model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1"]
    overrides += ["model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"]
    plain = instantiate(compose_run("train", overrides, tmp_path, tmp_path).model, _recursive_=False).eval()
    cfg = compose_run("train", [*overrides, "model.compile=true", "model.compile_backend=eager"], tmp_path, tmp_path)
    compiled = instantiate(cfg.model, _recursive_=False).eval()
    compiled.load_state_dict(plain.state_dict())
    assert list(compiled.state_dict()) == list(plain.state_dict())
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.allclose(compiled(images), plain(images), atol=1e-6)
    assert compiled.network() is not compiled.net and plain.network() is plain.net


@pytest.mark.parametrize("paradigm", ["topdown", "bottomup", "pose3d"])
def test_prediction_layers_stay_fp32_under_autocast(tmp_path, paradigm):
    import copy

    from hydra.utils import instantiate

    from tests.helpers import TINY_MODELS

    cfg = compose_run("train", TINY_MODELS[paradigm], tmp_path, tmp_path)
    task = instantiate(cfg.model, _recursive_=False)
    plain = instantiate(cfg.model, fp32_prediction_layers=False, _recursive_=False)
    assert list(task.state_dict()) == list(plain.state_dict())  # official keys unchanged
    size = task.codec.input_size
    w, h = (size, size) if isinstance(size, int) else size
    images = torch.randn(1, 3, h, w)
    for model, dtype in ((task, torch.float32), (copy.deepcopy(task), torch.float32), (plain, torch.bfloat16)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images)
        assert all(o.dtype == dtype for o in (out if isinstance(out, (list, tuple)) else [out]))
    with torch.no_grad():  # no effect in fp32
        plain.load_state_dict(task.state_dict())
        a, b = task.eval()(images), plain.eval()(images)
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            assert torch.equal(x, y)


@pytest.mark.parametrize("paradigm", ["topdown", "bottomup", "pose3d"])
def test_batchnorm_runs_in_fp32_under_autocast(tmp_path, paradigm):
    from hydra.utils import instantiate

    from tests.helpers import TINY_MODELS

    cfg = compose_run("train", TINY_MODELS[paradigm], tmp_path, tmp_path)
    task = instantiate(cfg.model, _recursive_=False)
    plain = instantiate(cfg.model, fp32_batchnorm=False, _recursive_=False)
    plain.load_state_dict(task.state_dict())  # the same keys, the same weights
    size = task.codec.input_size
    w, h = (size, size) if isinstance(size, int) else size
    images = torch.randn(1, 3, h, w)
    for model, dtype in ((task, torch.float32), (plain, torch.bfloat16)):
        seen = []
        hooks = [
            m.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out.dtype))
            for m in model.modules()
            if isinstance(m, torch.nn.BatchNorm2d)
        ]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(images)
        for hook in hooks:
            hook.remove()
        assert seen and set(seen) == {dtype}
    with torch.no_grad():  # no effect in fp32
        plain.load_state_dict(task.state_dict())  # (the passes above updated the running statistics)
        a, b = task.eval()(images), plain.eval()(images)
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            assert torch.equal(x, y)


def test_an_isa_cap_removes_the_flags_above_it_and_the_fast_path_follows() -> None:
    flags = {name: True for name in hardware.CPU_FLAGS}
    avx2 = hardware.capped_flags(flags, hardware.isa_cap("avx2"))
    assert [name for name, on in avx2.items() if on] == ["avx2"]
    bf16 = hardware.capped_flags(flags, "AVX512_CORE_BF16")
    assert bf16["avx512_bf16"] and bf16["avx512_vnni"] and not bf16["amx_bf16"]
    assert hardware.capped_flags(flags, None) == flags
    capped = {"model": "test CPU (ISA capped at AVX2)", "flags": avx2}
    assert hardware.choose_fast_path("cpu", cpu=capped).precision == "32-true"
    assert hardware.choose_fast_path("cpu", cpu={"model": "test CPU", "flags": flags}).precision == "bf16-mixed"
    with pytest.raises(ValueError, match="ONEDNN_MAX_CPU_ISA='avx3'"):
        hardware.isa_cap("avx3")
