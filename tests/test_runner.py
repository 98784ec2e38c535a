"""The one runner (src/runner.py): every entry point goes through it, honours fast_path=false,
records run_info.json, and reports a user's mistake as one ``error:`` line."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, instantiate

from src import check_data, convert, export, predict, runner, train
from src import eval as eval_module
from tests.helpers import (
    MODEL_CONFIGS,
    TINY_H36M_ROOT,
    TINY_MODELS,
    TINY_POSENET,
    TINY_SYNTHETIC,
    compose_run,
    random_checkpoint,
)

SRC = Path(__file__).resolve().parents[1] / "src"
ENTRY_POINTS = {"train": train, "eval": eval_module, "predict": predict, "export": export, "convert": convert}
ENTRY_POINTS["check_data"] = check_data
REFERENCE = {"precision": "32-true", "channels_last": False, "reduced_decode": False, "normalize_on_device": False}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runner")


@pytest.fixture(scope="module")
def nhwc_checkpoints(work) -> dict[str, Path]:
    """Tiny checkpoints written by runs that chose channels_last."""
    return {
        paradigm: random_checkpoint(
            paradigm, work / f"{paradigm}.ckpt", work, std=0.2, overrides=("model.channels_last=true",)
        )
        for paradigm in ("topdown", "bottomup")
    }


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run_info.json").read_text())["fast_path"]


def _assert_reference(record: dict) -> None:
    assert record["fast_path"] is False and record["reason"].startswith("fast_path=false")
    for key, value in REFERENCE.items():
        if key in record:
            assert record[key] == value, (key, record)
    assert record.get("memory_format", {"how": "reference"})["how"] == "reference"


def test_every_entry_point_goes_through_the_runner():
    """Each ``python -m src.X`` is a `runner.main` command over conf/X.yaml and its work a
    `runner.task`; no module of src starts Hydra itself."""
    for name, module in ENTRY_POINTS.items():
        assert module.main.__posekit_main__ == name
        tasks = [f for f in vars(module).values() if callable(f) and getattr(f, "__posekit_task__", False)]
        assert tasks, f"src/{name}.py runs no runner.task"
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "main" and getattr(node.value, "id", "") == "hydra":
                assert path.name == "runner.py", f"{path} calls hydra.main itself"
            if isinstance(node, ast.ImportFrom) and node.module == "src.utils.hardware":
                names = {alias.name for alias in node.names}
                assert not names & {"apply_fast_path", "resolve_channels_last"}, path


def test_fast_path_false_is_the_reference_in_every_entry_point(work, nhwc_checkpoints, tmp_path):
    data = work / "data"
    fast_dev = ["debug=fast_dev_run", "data.batch_size=2", *TINY_SYNTHETIC, "fast_path=false"]

    train.train(compose_run("train", [*TINY_MODELS["topdown"], *fast_dev], tmp_path / "train", data))
    _assert_reference(record := _record(tmp_path / "train"))
    assert set(REFERENCE) <= set(record)

    ckpt = nhwc_checkpoints["topdown"]
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["channels_last"] is True
    overrides = [f"ckpt_path={ckpt}", *TINY_SYNTHETIC, "num_visualized=0", "fast_path=false"]
    eval_module.evaluate(compose_run("eval", overrides, tmp_path / "eval", data))
    _assert_reference(record := _record(tmp_path / "eval"))
    assert record["channels_last"] is False and record["precision"] == "32-true"

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    overrides = [f"ckpt_path={nhwc_checkpoints['bottomup']}", f"input={images}", "progress=false", "device=cpu"]
    predict.predict(compose_run("predict", [*overrides, "fast_path=false"], tmp_path / "predict", data))
    _assert_reference(record := _record(tmp_path / "predict"))
    assert record["channels_last"] is False

    out = export.run(compose_run("export", [f"ckpt_path={ckpt}", "format=torchscript"], tmp_path / "export", data))
    _assert_reference(record := _record(tmp_path / "export"))
    assert json.loads(Path(f"{out}.json").read_text())["hparams"]["channels_last"] is False

    official = tmp_path / "official.pth"
    cfg = compose_run("train", TINY_MODELS["topdown"], tmp_path / "net", data)
    torch.save(instantiate(cfg.model.net).state_dict(), official)
    converted = convert.convert(
        compose_run("convert", [*TINY_MODELS["topdown"], f"official={official}"], tmp_path / "convert", data)
    )
    _assert_reference(_record(tmp_path / "convert"))
    assert torch.load(converted, weights_only=True)["hyper_parameters"]["channels_last"] is False

    assert check_data.check(compose_run("check_data", [*TINY_SYNTHETIC, "fast_path=false"], tmp_path / "c", data)) == 0
    _assert_reference(record := _record(tmp_path / "c"))
    assert record["reduced_decode"] is False and record["normalize_on_device"] is False


def test_fast_path_true_takes_the_measured_format_for_a_checkpoint(work, nhwc_checkpoints, tmp_path, monkeypatch):
    """A checkpoint trained in channels_last is evaluated in NCHW when this machine measured NCHW faster."""
    from src.utils import hardware

    calls = []

    def nchw_faster(net, *, input_shape, batch_size, precision):
        calls.append((input_shape, batch_size, precision))
        return {"nchw_ms": 1.0, "channels_last_ms": 2.0, "steps": 1}

    monkeypatch.setattr(hardware, "time_memory_formats", nchw_faster)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    overrides = [f"ckpt_path={nhwc_checkpoints['topdown']}", *TINY_SYNTHETIC, "num_visualized=0", "fast_path=true"]
    overrides += ["data.val_batch_size=3"]
    eval_module.evaluate(compose_run("eval", overrides, tmp_path / "eval", work / "data"))
    record = _record(tmp_path / "eval")
    precision = hardware.choose_fast_path("cpu").precision
    assert record["fast_path"] is True and record["precision"] == precision and record["channels_last"] is False
    assert record["memory_format"]["how"] == "measured" and calls == [((3, 64, 48), 3, precision)]


def _cli(module, args: list[str], tmp_path: Path, monkeypatch, capsys) -> tuple[int, list[str]]:
    """Run ``python -m src.<module>`` in this process; returns the exit status and stderr's lines."""
    argv = [module.__file__, *args, f"hydra.run.dir={tmp_path / 'cli'}", "hydra.output_subdir=null"]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        module.main()
    return exited.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("train", ["fast_path=false", "model.init=bogus"], "init must be 'official', 'pytorch' or 'kaiming'"),
        ("train", ["fast_path=false", "model=posenet", "data=synthetic"], "provides pipelines for"),
        ("eval", [], "needs ckpt_path=PATH"),
        ("predict", ["ckpt_path=/nonexistent/model.ckpt", "input=."], "checkpoint not found"),
        ("export", ["ckpt_path=/nonexistent/model.ckpt"], "checkpoint not found"),
        ("convert", ["official=/nonexistent/weights.pth", "model.net.width=8"], "/nonexistent/weights.pth"),
        ("check_data", ["data.reduced_decode=maybe"], "data.reduced_decode must be true, false or auto"),
    ],
)
def test_a_user_mistake_is_one_error_line_and_status_1(name, args, message, tmp_path, monkeypatch, capsys):
    status, stderr = _cli(ENTRY_POINTS[name], [*args, f"paths.data_dir={tmp_path}"], tmp_path, monkeypatch, capsys)
    errors = [line for line in stderr if line.startswith("error:")]
    assert status == 1 and len(errors) == 1 and message in errors[0], stderr
    assert not any("Traceback" in line for line in stderr)


def test_check_data_keeps_status_2_for_data_that_is_not_there(tmp_path, monkeypatch, capsys):
    args = ["data=coco", f"data.root={tmp_path / 'none'}", "fast_path=false"]
    status, stderr = _cli(check_data, args, tmp_path, monkeypatch, capsys)
    errors = [line for line in stderr if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and str(tmp_path / "none") in errors[0]


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_alone_composes_and_builds_its_datamodule(model, tmp_path):
    """``model=X`` with no data= gets data of its paradigm (synthetic COCO, synthetic Human3.6M for 3D);
    a data= given still wins. The data config is instantiated as written."""
    cfg = compose_run("train", [f"model={model}"], tmp_path, tmp_path)
    paradigm = get_class(cfg.model._target_).paradigm
    assert cfg.data.name == {"pose3d": "synthetic_h36m"}.get(paradigm, "synthetic")
    datamodule = instantiate(cfg.data, codec=instantiate(cfg.model.codec), paradigm=paradigm, _convert_="all")
    assert datamodule.name == cfg.data.name and datamodule.augmentation
    if paradigm == "pose3d":
        assert compose_run("train", [f"model={model}", "data=h36m"], tmp_path, tmp_path).data.name == "h36m"


def test_posenet_alone_trains(tmp_path):
    """``python -m src.train model=posenet`` (tiny sizes; no data= given)."""
    tiny_data = [o for o in TINY_H36M_ROOT if not o.startswith("data=")]
    overrides = ["model=posenet", *TINY_POSENET, *tiny_data, "debug=fast_dev_run", "data.batch_size=2"]
    metrics = train.train(compose_run("train", overrides, tmp_path / "run", tmp_path / "data"))
    assert "val/MPJPE" in metrics and json.loads((tmp_path / "run" / "run_info.json").read_text())


def test_unknown_data_keys_are_refused(tmp_path):
    from src.utils.builders import build_datamodule

    cfg = compose_run("train", ["model=posenet", "+data.train_subject=[1]"], tmp_path, tmp_path)
    with pytest.raises(ValueError, match=r"unknown keys \['train_subject'\].*source_keys"):
        build_datamodule(cfg.data, codec=instantiate(cfg.model.codec), paradigm="pose3d")


def test_the_public_api_for_benchmarks(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    machine = runner.machine_info()
    assert set(machine) == {"cpu", "cores", "threads", "flags", "gpu"} and machine["gpu"] is None
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    fake = lambda net, **kw: {"nchw_ms": 3.0, "channels_last_ms": 2.0, "steps": 2}  # noqa: E731
    record = runner.fast_path_for(net, input_shape=(3, 16, 16), batch_size=2, accelerator="cpu", measure=fake)
    assert record["channels_last"] is True and record["precision"] == runner.choose_fast_path("cpu").precision
    assert record["memory_format"]["how"] == "measured" and "2.0 ms" in record["reason"]
    reference = runner.fast_path_for(net, input_shape=(3, 16, 16), batch_size=2, enabled=False, measure=fake)
    assert (reference["precision"], reference["channels_last"]) == ("32-true", False)
    assert runner.current_run() is None


def test_a_trainer_built_outside_a_run_decides_precision_by_the_same_rule(tmp_path):
    from src.utils.builders import build_trainer
    from src.utils.hardware import choose_fast_path

    cfg = compose_run("train", ["model=hrnet", "logger=[]", "callbacks=[]"], tmp_path, tmp_path)
    assert cfg.trainer.precision == "auto" and cfg.fast_path is False
    assert build_trainer(cfg).precision == "32-true"
    cfg.fast_path = True
    assert build_trainer(cfg).precision == choose_fast_path("cpu").precision


def test_posekit_traceback_shows_the_error_unabridged(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSEKIT_TRACEBACK", "1")
    status, stderr = _cli(eval_module, [f"paths.data_dir={tmp_path}"], tmp_path, monkeypatch, capsys)
    assert status == 1 and not any(line.startswith("error:") for line in stderr)
    assert any("needs ckpt_path=PATH" in line for line in stderr)
