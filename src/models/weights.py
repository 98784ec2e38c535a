"""Weight initialisation and local checkpoint loading shared by the pose networks.

The networks read local files; names and URLs are turned into cached files before (`src.hub`).
"""

from __future__ import annotations

import logging
import os
import pickle
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model")


def _init_convs_and_norms(module: nn.Module, init_weight: Callable[[torch.Tensor], object]) -> None:
    """Conv2d / ConvTranspose2d weights by `init_weight`, their biases 0; BatchNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            init_weight(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def normal_init_(module: nn.Module, *, std: float = 0.001) -> None:
    """Official HRNet / SimpleBaseline init for every submodule of `module`:
    Conv2d and ConvTranspose2d weights ~ N(0, std), their biases 0; BatchNorm weight 1, bias 0."""
    _init_convs_and_norms(module, lambda weight: nn.init.normal_(weight, std=std))


def kaiming_init_(module: nn.Module, *, head_std: float = 0.001, zero_residual: bool = False) -> None:
    """Init for training from scratch: Conv2d / ConvTranspose2d weights Kaiming-normal (fan_out,
    ReLU gain, as torchvision's ResNets), biases 0, BatchNorm 1 / 0; the prediction layers (named
    by the `prediction_layers` attribute of the networks in `module`) N(0, head_std) with zero
    biases, so that the network starts by predicting about zero, as with the official init.
    With `zero_residual`, the last BatchNorm of every residual block that has one
    (`residual_norm()`: BasicBlock, Bottleneck; not the hourglass's pre-activation blocks) starts
    with weight 0, so that the block starts as its shortcut."""
    _init_convs_and_norms(module, lambda weight: nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu"))
    for owner in module.modules():  # a network's own heads, and those of networks nested in it
        for name in getattr(owner, "prediction_layers", ()):
            normal_init_(owner.get_submodule(name), std=head_std)
    if zero_residual:
        for m in module.modules():
            if hasattr(m, "residual_norm"):
                nn.init.zeros_(m.residual_norm().weight)


def _numpy_globals() -> list[object]:
    """The numpy classes and functions that pickled arrays and scalars need (mmpose and mmengine
    checkpoints keep numpy arrays in their ``meta``); nothing that can run other code."""
    multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray
    names = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    names += [
        type(np.dtype(t))
        for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_)
    ]
    return names


def load_tensors_file(file: Path) -> object:
    """``torch.load`` of a checkpoint with ``weights_only=True``, numpy arrays and scalars allowed."""
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(file, map_location="cpu", weights_only=True)


def _unwrap_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict or {"state_dict" | "model": state_dict}; strip "module."."""
    state = checkpoint
    for key in _WRAPPER_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state_dict (mapping of tensors), got {type(state).__name__}")
    tensors = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    return tensors


def load_pretrained(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    expected: str,
    prefixes: Iterable[str] | None = None,
) -> list[str]:
    """Load the tensors of a local checkpoint that exist in `model` with the same shape.

    Args:
        model: the network to fill in place.
        path: local checkpoint file (bare state_dict, or a dict holding one under
            "state_dict" / "model"; a DataParallel "module." prefix is stripped).
        expected: human description of the file, used in the error when it is missing.
        prefixes: if given, only keys whose first dotted component is in this set load.

    Returns:
        The sorted list of loaded keys.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: no tensor of the checkpoint matches the model.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"pretrained checkpoint not found: {file}. Expected {expected}. Put the file at that path, give "
            "a name of python -m src.zoo, or pass pretrained=None to train from scratch."
        )
    try:
        checkpoint = load_tensors_file(file)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{file}: holds objects other than tensors, which are not unpickled for safety. "
            "Re-save just its weights, e.g. torch.save(checkpoint['state_dict'], new_path)."
        ) from err
    state = _unwrap_state_dict(checkpoint, file)
    allowed = None if prefixes is None else set(prefixes)
    own = model.state_dict()
    matched = {
        k: v
        for k, v in state.items()
        if k in own and tuple(v.shape) == tuple(own[k].shape) and (allowed is None or k.split(".", 1)[0] in allowed)
    }
    if not matched:
        sample = ", ".join(list(state)[:5])
        raise ValueError(
            f"{file}: none of its {len(state)} tensors matches the model by name and shape "
            f"(first keys: {sample}). Expected {expected}."
        )
    model.load_state_dict(matched, strict=False)
    log.info(
        "loaded %d / %d tensors from %s (%d checkpoint tensors skipped, %d model tensors keep their init)",
        len(matched),
        len(own),
        file,
        len(state) - len(matched),
        len(own) - len(matched),
    )
    return sorted(matched)


#: Containers of official checkpoints, tried in this order: PoseNet / RootNet snapshots keep the
#: weights under "network", pytorch-pose under "state_dict"; HRNet and SimpleBaseline files are bare.
OFFICIAL_CONTAINERS = ("network", "state_dict", "model")


def read_official_state_dict(
    path: str | os.PathLike[str], *, containers: Iterable[str] = OFFICIAL_CONTAINERS, prefix: str = "module."
) -> dict[str, torch.Tensor]:
    """The network weights of an official checkpoint file, with the DataParallel prefix removed.

    Handles a bare state_dict and training snapshots that hold one under a container key (e.g.
    3DMPPE ``snapshot_24.pth.tar``: ``{"epoch", "network": {"module.backbone...": ...}, "optimizer"}``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no mapping of tensors, or objects that are not loaded for safety.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {file}")
    try:
        checkpoint = load_tensors_file(file)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{file}: holds objects other than tensors and plain containers, which are not unpickled for "
            "safety. Re-save just its weights, e.g. torch.save(checkpoint['network'], new_path)."
        ) from err
    state = checkpoint
    for key in containers:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(state)[:8] if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(
            f"{file}: no state_dict found (looked for a bare one and under {list(containers)}; top level: {keys})"
        )
    return {k.removeprefix(prefix): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_official_weights(model: nn.Module, path: str | os.PathLike[str], **read: object) -> None:
    """Load an official checkpoint into ``model`` with strict key and shape checks.

    A model whose files need a layout fix before the comparison (e.g. ViTPose, whose published files may
    hold a position embedding with a cls position) defines ``adapt_official_state(state) -> state``; it
    is given the file's tensors and returns the ones to compare and load.

    Args:
        model: the network (e.g. ``PoseNet``), whose parameter names follow the official ones.
        path: the official file (see `read_official_state_dict` for the containers handled).
        **read: ``containers`` / ``prefix`` of `read_official_state_dict`.

    Raises:
        ValueError: keys missing from the file, keys the model does not have, or shapes that differ;
            the message lists them (a few of each) with both shapes.
    """
    state = read_official_state_dict(path, **read)  # type: ignore[arg-type]
    adapt = getattr(model, "adapt_official_state", None)
    if callable(adapt):
        state = adapt(state)
    own = model.state_dict()
    # files of PyTorch < 0.4.1 hold no BatchNorm step counter at all (inference never reads them); a
    # file with some counters but not the model's is another network, and its missing keys are listed
    old_file = not any(k.endswith("num_batches_tracked") for k in state)
    counters = [k for k in own if k not in state and k.endswith("num_batches_tracked")] if old_file else []
    if counters:
        state = {**state, **{k: own[k] for k in counters}}
        log.info("%s has no num_batches_tracked buffers (%d); kept the model's", path, len(counters))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for what, items in (("missing from the file", missing), ("not in the model", unexpected), ("shape", shapes)):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{len(items)} {what}: " + "; ".join(items[:5]) + more)
        raise ValueError(
            f"{path} does not match {type(model).__name__} ({len(own)} tensors): " + " | ".join(parts) + ". "
            "Check the model config (depth, joints, widths) against the checkpoint's recipe."
        )
    model.load_state_dict(state, strict=True)
    log.info("loaded all %d tensors of %s", len(own), path)


def _fp32_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "meta":  # no autocast there (FLOP counting, shape inference)
        return type(self).forward(self, x.float())
    with torch.autocast(device_type=x.device.type, enabled=False):
        return type(self).forward(self, x.float())


def keep_prediction_layers_fp32_(module: nn.Module) -> int:
    """Make the prediction layers (each network's `prediction_layers`) compute in fp32 under autocast:
    their input is cast up and autocast is off inside them, so heatmaps, tags and 3D volumes come out
    in fp32 while the rest of the network runs in bf16 / fp16. Parameters and state_dict keys are
    unchanged (each layer's ``forward`` is replaced on the instance). Returns the number of layers."""
    count = 0
    for owner in module.modules():
        for name in getattr(owner, "prediction_layers", ()):
            for layer in owner.get_submodule(name).modules():
                if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    layer.forward = types.MethodType(_fp32_forward, layer)
                    count += 1
    return count


def keep_batchnorm_fp32_(module: nn.Module) -> int:
    """Make every BatchNorm layer of ``module`` compute in fp32 under autocast (input cast up,
    autocast off inside, fp32 output), as `keep_prediction_layers_fp32_` does for the prediction
    layers. The activations and residual sums after a BatchNorm then stay fp32 until the next
    convolution casts its input down; convolutions and matrix products still run in bf16 / fp16.
    Why: with everything in bf16 (8 mantissa bits), the HRNet quickstart lost AP against fp32;
    docs/performance.md gives the measurements. No effect in fp32. Parameters and state_dict keys
    are unchanged. Returns the number of layers."""
    count = 0
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.forward = types.MethodType(_fp32_forward, layer)
            count += 1
    return count
