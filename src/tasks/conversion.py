"""A task built around an official checkpoint file, saved as a checkpoint of this project (what
``python -m src.convert`` and the published checkpoints of `src.hub` write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from src.tasks.base import PoseModule


def converted_checkpoint(task: PoseModule) -> dict[str, Any]:
    """The checkpoint dict Lightning writes for ``task`` before any training step."""
    checkpoint: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
        "loops": None,
    }
    task.on_save_checkpoint(checkpoint)
    return checkpoint


def task_from_official(model_cfg: DictConfig, official: Path) -> PoseModule:
    """The task of ``model_cfg`` with every tensor from ``official`` (strict key and shape checks).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file does not match the network; the loader's message lists the keys.
    """
    model_cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
    with open_dict(model_cfg):
        model_cfg.official_weights = str(official)
        model_cfg.pretrained = None  # every tensor comes from the official file
    try:
        return instantiate(model_cfg, _recursive_=False)
    except InstantiationException as err:  # a mismatch or a missing file: the loader's own message
        if isinstance(err.__cause__, (ValueError, FileNotFoundError)):
            raise err.__cause__ from None
        raise


def save_converted(task: PoseModule, out: Path) -> Path:
    """Write ``task`` as a checkpoint at ``out`` (complete or not at all); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(converted_checkpoint(task), tmp)
    tmp.replace(out)
    return out
