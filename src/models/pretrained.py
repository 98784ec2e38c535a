"""Backbone initialisation from a pretrained file of another project (an mmpose pose checkpoint, an
ImageNet or MAE backbone), with the matched and unmatched keys listed.

The file's keys are taken from the first of ``prefixes`` under which any of them matches the
backbone (``backbone.`` for pose checkpoints, none for bare backbone files), renamed by an
optional ``rename`` function (e.g. a MAE file's ``blocks.3.attn`` -> ``layers.3.attn``), then
loaded by name and shape. Unless ``partial`` is set, a file that does not cover every tensor of
the backbone is refused: a silently half-initialised backbone trains to a worse model without
any error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from src.models.weights import read_official_state_dict

log = logging.getLogger(__name__)


@dataclass
class PretrainedReport:
    """What a pretrained file gave a backbone: loaded keys, the backbone's keys it lacked, the file's
    keys the backbone has no use for, and keys present in both with different shapes."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.shape_mismatch

    def summary(self, limit: int = 8) -> str:
        parts = [f"{len(self.loaded)} tensors loaded"]
        for what, items in (
            ("missing from the file", self.missing),
            ("with other shapes", self.shape_mismatch),
            ("in the file but unused", self.unused),
        ):
            if items:
                more = f" and {len(items) - limit} more" if len(items) > limit else ""
                parts.append(f"{len(items)} {what}: " + ", ".join(items[:limit]) + more)
        return "; ".join(parts)


def load_backbone_weights(
    backbone: nn.Module,
    path: str | os.PathLike[str],
    *,
    prefixes: Iterable[str] = ("backbone.", ""),
    rename: Callable[[str], str | None] | None = None,
    adapt: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    partial: bool = False,
) -> PretrainedReport:
    """Initialise ``backbone`` from the file at ``path``; returns what was loaded.

    Args:
        backbone: the module to fill in place.
        path: a local file (bare state_dict or one under ``state_dict`` / ``model`` / ``network``).
        prefixes: key prefixes tried in order; the first that yields any match is used, stripped.
        rename: maps a (stripped) file key to the backbone's name for it, or None to drop it.
        adapt: last step before matching, given (file tensors, backbone state): e.g. resize a
            position embedding; returns the file tensors to match.
        partial: accept a file that covers only part of the backbone (the rest keeps its init).

    Raises:
        FileNotFoundError: no such file.
        ValueError: nothing matches, or (without ``partial``) some backbone tensors stay
            uninitialised; the message lists the keys.
    """
    state = read_official_state_dict(path, containers=("state_dict", "model", "network"))
    own = backbone.state_dict()
    chosen: dict[str, torch.Tensor] = {}
    for prefix in prefixes:
        candidate = {}
        for key, value in state.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            name = rename(name) if rename is not None else name
            if name is not None:
                candidate[name] = value
        if any(k in own for k in candidate):
            chosen = candidate
            break
    if adapt is not None:
        chosen = adapt(chosen, own)
    report = PretrainedReport(path=str(path))
    for key, value in chosen.items():
        if key not in own:
            report.unused.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatch.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            report.loaded.append(key)
    report.missing = [k for k in own if k not in chosen]
    if not report.loaded:
        sample = ", ".join(list(state)[:5])
        raise ValueError(
            f"{path}: none of its {len(state)} tensors fits {type(backbone).__name__} (tried prefixes "
            f"{list(prefixes)}; first keys of the file: {sample})"
        )
    if not report.complete and not partial:
        raise ValueError(
            f"{path} initialises only part of {type(backbone).__name__}: {report.summary()}. "
            "Use the backbone file of this architecture and size, or set model.pretrained_partial=true "
            "to train with the rest at its initialisation."
        )
    backbone.load_state_dict({k: chosen[k] for k in report.loaded}, strict=False)
    level = logging.WARNING if not report.complete else logging.INFO
    log.log(level, "pretrained %s -> %s: %s", path, type(backbone).__name__, report.summary())
    return report
