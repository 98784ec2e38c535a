"""Build run components (datamodule, callbacks, loggers, trainer) from the composed config."""

from __future__ import annotations

import logging
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from src.utils.checkpointing import AtomicCheckpointIO, RandomStateCallback

log = logging.getLogger(__name__)


def build_datamodule(data_cfg: DictConfig, *, codec: Any, paradigm: str) -> Any:
    """The datamodule of ``data_cfg`` for a model of ``paradigm`` sharing ``codec``: the data
    config instantiated as written (`src.datasets.datamodule.PoseDataModule` takes every key of
    it; the paradigm chooses the dataset class and the augmentation block). Errors of the user's
    settings come out as themselves, not wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(data_cfg, codec=codec, paradigm=paradigm, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (ValueError, OSError, TypeError)):
            raise cause from None
        raise


def instantiate_group(group_cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config group such as ``callbacks`` or ``logger``."""
    if not group_cfg:
        return []
    objects = []
    for key, node in group_cfg.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            log.debug("instantiating %s: %s", key, node._target_)
            objects.append(instantiate(node))
    return objects


def build_trainer(cfg: DictConfig, *, with_callbacks: bool = True) -> Trainer:
    """The Lightning trainer of ``cfg.trainer`` with the configured callbacks and loggers.

    ``trainer.precision=auto`` left unresolved (no `src.runner` run) is decided here by the same
    rule (`src.utils.hardware.decide`). Checkpoints are always written atomically
    (``AtomicCheckpointIO``) and carry the global random states (``RandomStateCallback``), so an
    interrupted run resumes where it stopped.
    """
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks")) if with_callbacks else []
    callbacks.append(RandomStateCallback())
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    plugins = list(instantiate_group(cfg.get("plugins"))) if cfg.get("plugins") else []
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    extra: dict[str, Any] = {}
    if str(cfg.trainer.get("precision")) == "auto":  # not resolved by a run: the same decider
        from src.utils.hardware import decide

        enabled, accelerator = bool(cfg.get("fast_path", True)), str(cfg.trainer.get("accelerator", "auto"))
        extra["precision"] = decide("trainer.precision", enabled=enabled, accelerator=accelerator)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins, **extra)


def check_launch(cfg: DictConfig) -> None:
    """Refuse Lightning's local multi-process DDP inside a local Hydra multirun.

    Lightning starts the extra DDP processes by running the same command line again; inside a
    ``-m`` sweep every child would start the whole sweep once more. On a cluster the SLURM
    launcher (``hydra/launcher=slurm``, submitit) starts each job's processes itself, which works.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if "submitit" in launcher:
        return
    trainer = cfg.get("trainer") or {}
    strategy = str(trainer.get("strategy", "auto")).lower()
    if "ddp" not in strategy or strategy in ("ddp_notebook", "ddp_fork"):
        return
    devices = trainer.get("devices", 1)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    several = (
        devices in ("auto", -1)
        or (isinstance(devices, int) and devices > 1)
        or (not isinstance(devices, (int, str)) and len(devices) > 1)
        or int(trainer.get("num_nodes", 1)) > 1
    )
    if several:
        raise ValueError(
            f"trainer.strategy={strategy} with trainer.devices={devices} inside a Hydra multirun (-m): "
            "Lightning starts each extra DDP process by re-running the command line, so every job "
            "would launch the whole sweep again. Run the sweep with one device per job "
            "(trainer.devices=1), or let a launcher start the processes: "
            "hydra/launcher=slurm (submitit; see docs/scale.md)."
        )
