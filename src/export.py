"""Export a trained network to ONNX or TorchScript, with a JSON sidecar for the post-processing.

    python -m src.export ckpt_path=logs/train/.../checkpoints/last.ckpt format=onnx
    python -m src.export ckpt_path=... format=torchscript out=model.pt

The file holds the network alone (image batch in, the raw outputs out: heatmaps, heatmaps and
tags per resolution, or 3D volumes), with a dynamic batch dimension (and, for models that see
whole images, dynamic height and width). ``<file>.json`` beside it holds everything the pre- and
post-processing of this project need: the task class and paradigm, input size, normalisation
(mean, std, channel order), the codec's settings, the evaluation options, the keypoint layout
(names, flip index, skeleton) and the output names. The ONNX file goes through the TorchScript-
based exporter (opset ``opset``); `check_onnx_parity` compares onnxruntime with PyTorch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from src import runner
from src.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from src.tasks.base import to_plain
from src.tasks.loading import load_task
from src.utils.run_io import write_json_atomic

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


class _Outputs(nn.Module):
    """The network with its outputs as a flat tuple (networks with several outputs return lists)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(images)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)


def example_input(task: Any) -> torch.Tensor:
    """A (1, 3, h, w) input of the size the task's codec crops or resizes to."""
    size = task.codec.input_size
    w, h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return torch.zeros(1, 3, h, w)


def sidecar(task: Any, output_names: list[str], file_format: str, *, as_list: bool) -> dict[str, Any]:
    """Everything the post-processing needs, as plain data."""
    info = task.keypoint_info
    hparams = task.hparams
    return {
        "format": file_format,
        "task_class": f"{type(task).__module__}.{type(task).__qualname__}",
        "paradigm": task.paradigm,
        "name": hparams.name,
        "input": {
            "size_wh": list(example_input(task).shape[-1:-3:-1]),
            "dynamic_size": not task.needs_boxes,  # whole images of any size (multiples of 64)
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "scale": 1 / 255,
            "channel_order": "RGB" if hparams.get("color_rgb", True) else "BGR",
        },
        "codec": dict(hparams.codec),
        "evaluation": dict(hparams.evaluation),
        "keypoints": {
            "layout": info.name,
            "names": list(info.keypoint_names),
            "flip_index": list(info.flip_index),
            "skeleton": [list(pair) for pair in info.skeleton],
        },
        "outputs": output_names,
        # whether the PyTorch network returns a list (multi-stage or multi-resolution outputs)
        "outputs_as_list": as_list,
        # the task's hyperparameters: `src.inference.backends` rebuilds the task around the file
        "hparams": to_plain(dict(task.hparams)),
    }


def export(task: Any, out: Path, *, file_format: str = "onnx", opset: int = 17) -> Path:
    """Write the task's network to ``out`` and its sidecar to ``out`` + ``.json``."""
    if file_format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {file_format!r}")
    if hasattr(task.net, "example_inputs"):
        raise ValueError(
            f"{task.hparams.name} reads more than the image ({', '.join(task.codec.input_keys)}): the exported "
            "file and its runtime take images only, so this network is not exported; run it with PyTorch"
        )
    wrapped = _Outputs(task.net).eval()
    x = example_input(task)
    with torch.no_grad():
        outputs = wrapped(x)
        as_list = isinstance(task.net(x), (list, tuple))
    names = [f"output{i}" for i in range(len(outputs))]
    out.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "onnx":
        axes = {0: "batch"} if task.needs_boxes else {0: "batch", 2: "height", 3: "width"}
        dynamic = {"image": axes, **{n: {0: "batch"} if task.needs_boxes else axes for n in names}}
        torch.onnx.export(
            wrapped,
            (x,),
            str(out),
            dynamo=False,
            input_names=["image"],
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=opset,
        )
    else:
        with torch.no_grad():
            traced = torch.jit.trace(wrapped, (x,))
        traced.save(str(out))
    write_json_atomic(Path(str(out) + ".json"), sidecar(task, names, file_format, as_list=as_list))
    log.info("exported %s -> %s", task.hparams.name, out)
    return out


def check_onnx_parity(task: Any, path: Path, images: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime and PyTorch outputs on ``images``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = _Outputs(task.net).eval()(images)
    got = session.run(None, {"image": images.numpy()})
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))


@runner.task
def run(cfg: DictConfig) -> Path:
    """Export the checkpoint ``cfg`` (conf/export.yaml) names; returns the exported file."""
    if not cfg.get("ckpt_path"):
        raise ValueError("python -m src.export needs ckpt_path=PATH (a checkpoint of src.train or src.convert)")
    file_format = str(cfg.get("format", "onnx"))
    if file_format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {file_format!r}")
    task = load_task(cfg.ckpt_path).eval()
    # the traced weights take this run's memory format (the graph itself takes NCHW inputs)
    runner.current_run().record(
        precision="32-true", **runner.resolve_task(task, enabled=bool(cfg.get("fast_path", False)), accelerator="cpu")
    )
    default = Path(cfg.paths.output_dir) / f"{task.hparams.name}{SUFFIX[file_format]}"
    out = Path(str(cfg.out)) if cfg.get("out") else default
    export(task, out, file_format=file_format, opset=int(cfg.get("opset", 17)))
    if file_format == "onnx":
        diff = check_onnx_parity(task, out, torch.randn(2, *example_input(task).shape[1:]))
        print(f"onnxruntime vs PyTorch on a random batch: max |difference| {diff:.2e}")
    print(f"{task.hparams.name} -> {out} (+ {out.name}.json)")
    return out


@runner.main("export")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
