"""Exported networks in place of a task's PyTorch network, so that prediction runs the same pre-
and post-processing code (crops, flip test, decoding, grouping, NMS) on any backend.

`load_exported_task` rebuilds the task from the JSON sidecar that `src.export` writes beside the
file (its class and hyperparameters; no weights are read from it) and swaps its network for an
`ExportedNet`: ONNX through onnxruntime (the ``deploy`` extra) or TorchScript through torch.jit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class
from torch import nn

from src.readers.json_files import read_json


class ExportedNet(nn.Module):
    """Image batch (N, 3, H, W) -> the exported network's outputs, shaped as the PyTorch network's
    (one tensor, or a list of them for multi-output networks)."""

    def __init__(self, path: Path, backend: str, *, as_list: bool) -> None:
        super().__init__()
        self.path = Path(path)
        self.backend = backend
        self.as_list = bool(as_list)
        if backend == "onnx":
            try:
                import onnxruntime
            except ImportError as err:
                raise ImportError("backend=onnx needs onnxruntime: pip install -e '.[deploy]'") from err
            try:
                self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own exception types for bad files
                raise ValueError(f"{path}: onnxruntime cannot load it ({err})") from err
        elif backend == "torchscript":
            try:
                self.module = torch.jit.load(str(path), map_location="cpu")
            except Exception as err:  # torch.jit raises RuntimeError subclasses for bad files
                raise ValueError(f"{path}: not a TorchScript file ({err})") from err
        else:
            raise ValueError(f"exported backends are onnx and torchscript, got {backend!r}")

    def forward(self, images: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.backend == "onnx":
            array = np.ascontiguousarray(images.detach().float().cpu().numpy())
            outputs = [torch.from_numpy(o) for o in self.session.run(None, {"image": array})]
        else:
            outputs = list(self.module(images.float().cpu().contiguous()))
        return outputs if self.as_list else outputs[0]


def load_exported_task(model_file: str | Path, *, backend: str) -> Any:
    """The task described by ``<model_file>.json``, running ``model_file`` as its network."""
    path = Path(model_file)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    meta_path = Path(str(path) + ".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: its sidecar {meta_path.name} is missing (python -m src.export writes both)")
    meta = read_json(meta_path, "export sidecar")
    if not isinstance(meta, dict) or "hparams" not in meta or "task_class" not in meta:
        raise ValueError(f"{meta_path}: not a sidecar of src.export (no task_class / hparams); export the model again")
    if meta.get("format") not in (None, backend):
        raise ValueError(f"{path} is a {meta['format']} export, but backend={backend}")
    task_class = get_class(meta["task_class"])
    # The network is replaced, so build it without reading any weights file named in the recipe.
    hparams = {**meta["hparams"], "pretrained": None, "official_weights": None, "init": "pytorch"}
    hparams["zero_init_residual"] = False
    hparams["compile"] = False  # the exported file runs as it is
    hparams["channels_last"] = False  # the exported graph takes NCHW images; no format to decide
    task = task_class(**hparams)
    task.net = ExportedNet(path, backend, as_list=bool(meta.get("outputs_as_list", False)))
    return task.eval()
