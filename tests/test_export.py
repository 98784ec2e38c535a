"""src.export: ONNX and TorchScript files of a top-down, a bottom-up and a 3D model match PyTorch
(fp32, within 1e-4), keep a dynamic batch (and size, for whole images), and carry a sidecar."""

from __future__ import annotations

import json

import pytest
import torch

from src.export import _Outputs, check_onnx_parity, export, run
from src.tasks.loading import load_task
from tests.helpers import TINY_MODELS, compose_run, random_checkpoint

pytest.importorskip("onnxruntime")


def _checkpoint(paradigm: str, tmp_path):
    return random_checkpoint(paradigm, tmp_path / "model.ckpt", tmp_path)


# RootNet reads the k-value besides the image, so export refuses it (tests/test_rootnet_task.py)
@pytest.mark.parametrize("paradigm", sorted(p for p in TINY_MODELS if p != "root3d"))
def test_onnx_and_torchscript_match_pytorch(paradigm, tmp_path):
    task = load_task(_checkpoint(paradigm, tmp_path)).eval()
    onnx_file = export(task, tmp_path / "model.onnx", file_format="onnx")
    w, h = (task.codec.input_size,) * 2 if isinstance(task.codec.input_size, int) else task.codec.input_size
    images = torch.randn(3, 3, h, w, generator=torch.Generator().manual_seed(0))  # batch 3: the batch is dynamic
    assert check_onnx_parity(task, onnx_file, images) < 1e-4
    if paradigm == "bottomup":  # whole images: any size that is a multiple of 64
        assert check_onnx_parity(task, onnx_file, torch.randn(1, 3, 128, 192)) < 1e-4

    ts_file = export(task, tmp_path / "model.pt", file_format="torchscript")
    traced = torch.jit.load(str(ts_file))
    with torch.no_grad():
        for got, expected in zip(traced(images), _Outputs(task.net).eval()(images)):
            assert torch.allclose(got, expected, atol=1e-5)

    meta = json.loads((tmp_path / "model.onnx.json").read_text())
    assert meta["paradigm"] == paradigm and meta["keypoints"]["layout"] == task.keypoint_info.name
    assert meta["input"]["size_wh"] == [w, h] and meta["input"]["dynamic_size"] == (paradigm == "bottomup")
    assert meta["codec"] == dict(task.hparams.codec) and meta["outputs"][0] == "output0"


def test_export_cli_and_bad_format(tmp_path):
    ckpt = _checkpoint("pose3d", tmp_path)
    out = run(compose_run("export", [f"ckpt_path={ckpt}", "format=onnx"], tmp_path / "e", tmp_path / "data"))
    assert out.suffix == ".onnx" and out.with_name(out.name + ".json").is_file()
    with pytest.raises(ValueError, match="format must be one of"):
        run(compose_run("export", [f"ckpt_path={ckpt}", "format=tflite"], tmp_path / "f", tmp_path / "data"))
