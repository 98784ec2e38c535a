"""src.export: ONNX and TorchScript files of a top-down, a bottom-up and a 3D model match PyTorch
(fp32, within 1e-4), keep a dynamic batch (and size, for whole images), and carry a sidecar."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate

from src.convert import converted_checkpoint
from src.export import _Outputs, check_onnx_parity, export, run
from src.tasks.loading import load_task
from tests.helpers import TINY_POSENET, compose_run

pytest.importorskip("onnxruntime")

TINY = {
    "topdown": [
        "model=hrnet",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.codec.input_size=[48,64]",
        "model.codec.heatmap_size=[12,16]",
    ],
    "bottomup": [
        "model=higherhrnet",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.net.num_deconv_basic_blocks=1",
        "model.codec.input_size=64",
        "model.codec.output_sizes=[16,32]",
    ],
    "pose3d": ["model=posenet", "data=synthetic_h36m", *TINY_POSENET],
}


def _checkpoint(paradigm: str, tmp_path):
    cfg = compose_run("train", TINY[paradigm], tmp_path / "run", tmp_path / "data")
    task = instantiate(cfg.model, _recursive_=False)
    for p in task.net.parameters():  # away from the near-zero init, so the comparison means something
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "model.ckpt"
    torch.save(converted_checkpoint(task), path)
    return path


@pytest.mark.parametrize("paradigm", sorted(TINY))
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
