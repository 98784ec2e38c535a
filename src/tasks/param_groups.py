"""Optimiser parameter groups: per-parameter learning-rate and weight-decay rules.

A task builds its optimiser from the groups of one of these builders (``model.param_groups``, see
`PoseModule.configure_optimizers`); each returns a list of torch param groups with explicit
``lr`` and ``weight_decay`` and a ``name`` (the learning-rate monitor logs each group under it).

- `paramwise_groups`: the rules of mmengine's default optimiser constructor (``paramwise_cfg``):
  weight-decay multipliers for normalisation layers, depth-wise convolutions and biases, an LR
  multiplier for biases, and ``custom_keys`` matched on parameter names; shared parameters count
  once (``bypass_duplicate``). RTMPose: ``norm_decay_mult=0, bias_decay_mult=0``.
- `layer_decay_groups`: layer-wise LR decay of a Vision Transformer (mmpose's layer-decay
  constructor, ViTPose): the patch embedding and position embedding get the smallest LR, block
  ``i`` a larger one, everything after the blocks the base LR; no weight decay for 1-D
  parameters, biases and the position embedding.

Parameters are named as in the network (``backbone.*``, ``head.*``): a task passes itself with
``strip_prefix="net."``; parameters outside the network keep their full names.

Groups whose parameters share the same options are merged (mmengine makes one group per
parameter); AdamW, Adam and SGD treat every parameter on its own, so the updates are the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

#: The layers whose weights and biases ``norm_decay_mult`` scales (those of mmengine).
NORM_LAYERS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def owned_parameters(module: nn.Module, strip_prefix: str = "") -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """(full name, owning module, local name, parameter) of every parameter, each once: a
    parameter shared by several modules belongs to the first that holds it (pre-order walk)."""
    seen: set[int] = set()
    for module_name, owner in module.named_modules():
        for local, param in owner.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{local}" if module_name else local
            yield _strip(full, strip_prefix), owner, local, param


def _merge(entries: list[tuple[str, float, float, nn.Parameter]], lr: float, weight_decay: float) -> list[dict]:
    """Groups of (group name, lr multiplier, decay multiplier, parameter) with the same options,
    in first-seen order."""
    groups: dict[tuple[str, float, float], dict[str, Any]] = {}
    for group_name, lr_mult, decay_mult, param in entries:
        key = (group_name, lr_mult, decay_mult)
        if key not in groups:
            groups[key] = {
                "name": group_name,
                "params": [],
                "lr": lr * lr_mult,
                "weight_decay": weight_decay * decay_mult,
                "lr_scale": lr_mult,
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def paramwise_groups(
    module: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    norm_decay_mult: float = 1.0,
    bias_decay_mult: float = 1.0,
    bias_lr_mult: float = 1.0,
    dwconv_decay_mult: float = 1.0,
    custom_keys: Mapping[str, Mapping[str, float]] | None = None,
    strip_prefix: str = "",
) -> list[dict]:
    """Param groups by mmengine's paramwise rules.

    Per parameter, the first rule that applies (as mmengine orders them):

    1. ``custom_keys``: the longest key (then the alphabetically first) that is a substring of
       the parameter's name sets ``lr_mult`` and ``decay_mult`` (default 1) and no other rule applies;
    2. a ``bias`` of a layer that is not a normalisation layer: LR x ``bias_lr_mult``;
    3. weight decay: normalisation layers (`NORM_LAYERS`, weight and bias) x ``norm_decay_mult``;
       else depth-wise convolutions (Conv2d with groups == in_channels) x ``dwconv_decay_mult``;
       else biases x ``bias_decay_mult``.

    Frozen parameters (requires_grad false) keep the base options.

    Args:
        module: the module whose parameters are grouped.
        lr, weight_decay: the optimiser's base values.
        strip_prefix: removed from the front of every name before ``custom_keys`` match.

    Returns:
        Torch param groups: ``params``, ``lr``, ``weight_decay``, ``name`` and ``lr_scale``.
    """
    keys = sorted(sorted(custom_keys or {}), key=len, reverse=True)
    for key in keys:
        unknown = set(custom_keys[key]) - {"lr_mult", "decay_mult"}
        if unknown:
            raise ValueError(f"param_groups.custom_keys.{key}: unknown options {sorted(unknown)} (lr_mult, decay_mult)")
    entries = []
    for name, owner, local, param in owned_parameters(module, strip_prefix):
        lr_mult, decay_mult = 1.0, 1.0
        matched = next((key for key in keys if key in name), None) if param.requires_grad else None
        if matched is not None:
            lr_mult = float(custom_keys[matched].get("lr_mult", 1.0))
            decay_mult = float(custom_keys[matched].get("decay_mult", 1.0))
        elif param.requires_grad:
            is_norm = isinstance(owner, NORM_LAYERS)
            is_dwconv = isinstance(owner, nn.Conv2d) and owner.in_channels == owner.groups
            if local == "bias" and not is_norm:
                lr_mult = float(bias_lr_mult)
            if is_norm:
                decay_mult = float(norm_decay_mult)
            elif is_dwconv:
                decay_mult = float(dwconv_decay_mult)
            elif local == "bias":
                decay_mult = float(bias_decay_mult)
        entries.append((f"lr{lr_mult:g}_decay{decay_mult:g}", lr_mult, decay_mult, param))
    return _merge(entries, lr, weight_decay)


def vit_layer_id(name: str, num_layers: int) -> int:
    """The layer of a ViT parameter named as in mmpose (``backbone.layers.<i>.*``): 0 for the
    embeddings (pos_embed, cls_token, mask_token, patch_embed), i + 1 for block i, and
    num_layers + 1 for everything else (the final norm, the neck, the head)."""
    if name in ("backbone.pos_embed", "backbone.cls_token", "backbone.mask_token"):
        return 0
    if name.startswith("backbone.patch_embed"):
        return 0
    if name.startswith("backbone.layers."):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


def layer_decay_groups(
    module: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    num_layers: int,
    layer_decay_rate: float,
    strip_prefix: str = "",
) -> list[dict]:
    """Param groups with layer-wise LR decay for a ViT backbone (mmpose's layer-decay constructor).

    A parameter of layer id L (`vit_layer_id`) gets LR ``lr * layer_decay_rate ** (num_layers + 1 - L)``;
    weight decay is 0 for 1-D parameters, names ending in ``.bias`` and names containing
    ``pos_embed``, ``weight_decay`` for the rest. Groups are named ``layer_<L>_decay`` and
    ``layer_<L>_no_decay``; frozen parameters are left out, as there.

    Args:
        module: the module whose parameters are grouped (names ``backbone.*`` after ``strip_prefix``).
        lr, weight_decay: the optimiser's base values.
        num_layers: the number of transformer blocks (12 for ViT-B).
        layer_decay_rate: the LR ratio between consecutive layers (0.75 for ViTPose-B).
    """
    if num_layers < 1 or not 0.0 < layer_decay_rate <= 1.0:
        raise ValueError(
            f"layer decay needs num_layers >= 1 and 0 < layer_decay_rate <= 1, got {num_layers} and {layer_decay_rate}"
        )
    entries = []
    found_blocks = set()
    for name, _owner, _local, param in owned_parameters(module, strip_prefix):
        if not param.requires_grad:
            continue
        layer = vit_layer_id(name, num_layers)
        if name.startswith("backbone.layers."):
            if layer > num_layers:
                raise ValueError(f"parameter {name} is in block {layer - 1}, but param_groups.num_layers={num_layers}")
            found_blocks.add(layer - 1)
        no_decay = param.ndim == 1 or name.endswith(".bias") or "pos_embed" in name
        suffix = "no_decay" if no_decay else "decay"
        scale = float(layer_decay_rate) ** (num_layers + 1 - layer)
        entries.append((f"layer_{layer}_{suffix}", scale, 0.0 if no_decay else 1.0, param))
    if not found_blocks:
        raise ValueError(
            "layer decay found no parameter named backbone.layers.<i>.*: the network is not a ViT with mmpose's "
            "names (use paramwise_groups or no param_groups)"
        )
    return _merge(entries, lr, weight_decay)


def describe_groups(groups: list[dict], module: nn.Module, strip_prefix: str = "") -> list[dict[str, Any]]:
    """Per group: name, lr, weight_decay, number of tensors and of values, parameter names."""
    names = {id(p): name for name, _o, _l, p in owned_parameters(module, strip_prefix)}
    return [
        {
            "name": g.get("name"),
            "lr": g["lr"],
            "weight_decay": g["weight_decay"],
            "n_tensors": len(g["params"]),
            "n_params": sum(int(torch.Size(p.shape).numel()) for p in g["params"]),
            "param_names": [names[id(p)] for p in g["params"]],
        }
        for g in groups
    ]


def optimizer_params(module: nn.Module, config: Mapping[str, Any] | None, optimizer: Any, *, strip_prefix: str = ""):
    """What an optimiser built by ``optimizer`` (a callable taking the params) optimises: all of
    ``module``'s parameters in one group when ``config`` is empty, else the groups of the builder
    ``config`` names (a ``_target_`` of this module with its options; null options left out), given
    the optimiser's base LR and weight decay (from its config or its defaults)."""
    config = {k: v for k, v in (config or {}).items() if v is not None}
    if not config:
        return module.parameters()
    if "_target_" not in config:
        raise ValueError(
            "model.param_groups needs a _target_ (src.tasks.param_groups.paramwise_groups or "
            f"src.tasks.param_groups.layer_decay_groups), got keys {sorted(config)}"
        )
    defaults = optimizer([nn.Parameter(torch.zeros(1))]).defaults
    if "lr" not in defaults:
        raise ValueError(f"model.param_groups: the optimiser {optimizer} has no learning rate")
    builder = instantiate({**config, "_partial_": True, "_convert_": "all"})
    return builder(
        module,
        lr=float(defaults["lr"]),
        weight_decay=float(defaults.get("weight_decay", 0.0)),
        strip_prefix=strip_prefix,
    )
