"""The fast path chosen for the hardware, and where it enters a run."""

from __future__ import annotations

import json

import pytest
import torch

from src.utils.hardware import apply_fast_path, choose_fast_path, cpu_info, resolve_channels_last
from tests.helpers import TINY_SYNTHETIC, compose_run


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


def test_auto_enters_the_run_config_and_fast_path_false_is_the_reference(tmp_path):
    cfg = compose_run("train", ["model=hrnet", "fast_path=true"], tmp_path, tmp_path)
    assert cfg.trainer.precision == "auto" and cfg.model.channels_last == "auto"
    record = apply_fast_path(cfg)
    expected = choose_fast_path(str(cfg.trainer.accelerator))
    assert (cfg.trainer.precision, cfg.model.channels_last) == (expected.precision, expected.channels_last)
    assert record["reason"] == expected.reason and cpu_info()["model"]
    assert cfg.data.reduced_decode is True and record["reduced_decode"] is True
    assert cfg.data.normalize_on_device is True and record["normalize_on_device"] is True

    reference = compose_run("train", ["model=hrnet", "fast_path=false"], tmp_path, tmp_path)
    assert apply_fast_path(reference)["precision"] == "32-true" and reference.model.channels_last is False
    assert reference.data.reduced_decode is False and reference.data.normalize_on_device is False
    explicit = compose_run(
        "train", ["model=hrnet", "trainer.precision=bf16-mixed", "fast_path=true"], tmp_path, tmp_path
    )
    apply_fast_path(explicit)
    assert explicit.trainer.precision == "bf16-mixed"  # an explicit value is kept
    with pytest.raises(ValueError, match="channels_last must be true, false or auto"):
        resolve_channels_last("fast")


def test_a_run_records_its_arithmetic(tmp_path):
    from src.train import train

    overrides = ["model=hrnet", "debug=fast_dev_run", "data.batch_size=2", "fast_path=true", *TINY_SYNTHETIC]
    overrides += ["model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1"]
    overrides += ["model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"]
    train(compose_run("train", overrides, tmp_path / "run", tmp_path / "data"))
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    chosen = choose_fast_path("cpu")
    assert info["fast_path"] == {
        "precision": chosen.precision,
        "channels_last": chosen.channels_last,
        "reduced_decode": True,
        "normalize_on_device": True,
        "reason": chosen.reason,
    }


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
