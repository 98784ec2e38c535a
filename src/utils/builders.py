"""Build run components (datamodule, callbacks, loggers, trainer) from the composed config."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import get_class, instantiate
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from src.utils.checkpointing import AtomicCheckpointIO, RandomStateCallback

log = logging.getLogger(__name__)

# Keys of a data config that describe the targets rather than the loader; the model's codec
# interpolates them (e.g. `sigma: ${data.sigma}`), so they are checked here instead of passed on.
TARGET_KEYS = ("sigma", "num_keypoints")


def build_datamodule(data_cfg: DictConfig, *, codec: Any, paradigm: str) -> Any:
    """Instantiate the datamodule of ``data_cfg`` for a model of ``paradigm`` sharing ``codec``.

    The paradigm (`src.paradigms`) chooses the dataset class and which of the data config's
    augmentation blocks it receives; the data config chooses the reader and the metric.
    """
    from src.layouts import get_keypoint_info
    from src.paradigms import PARADIGMS, get_paradigm

    chosen = get_paradigm(paradigm)
    supported = list(data_cfg.get("paradigms", list(PARADIGMS)))
    if paradigm not in supported:
        raise ValueError(
            f"data={data_cfg.get('name')} provides pipelines for {supported}, but the model is {paradigm!r}"
        )
    info = get_keypoint_info(data_cfg.keypoint_info)
    if data_cfg.get("num_keypoints", info.num_keypoints) != info.num_keypoints:
        raise ValueError(
            f"data.num_keypoints={data_cfg.num_keypoints} disagrees with layout {info.name!r} "
            f"({info.num_keypoints} keypoints)"
        )
    if "sigma" in data_cfg and getattr(codec, "sigma", data_cfg.sigma) != data_cfg.sigma:
        raise ValueError(f"the model codec's sigma {codec.sigma} differs from data.sigma={data_cfg.sigma}")
    resolved = OmegaConf.to_container(data_cfg, resolve=True)
    augmentation = resolved.get(chosen.augmentation)
    # `source_keys`: the data config's own settings that its reader interpolates (e.g. Human3.6M's
    # data.train_subjects); like `root`, they are consumed by the interpolation, not passed on
    source_keys = resolved.get("source_keys") or []
    dropped = {
        *TARGET_KEYS,
        "paradigms",
        "root",
        "source_keys",
        *source_keys,
        *(p.augmentation for p in PARADIGMS.values()),
    }
    kwargs = {k: v for k, v in resolved.items() if k not in dropped}
    return instantiate(
        kwargs, codec=codec, dataset=get_class(chosen.dataset), augmentation=augmentation, _convert_="all"
    )


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

    Checkpoints are always written atomically (``AtomicCheckpointIO``) and carry the global random
    states (``RandomStateCallback``), so an interrupted run resumes where it stopped.
    """
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks")) if with_callbacks else []
    callbacks.append(RandomStateCallback())
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    plugins = list(instantiate_group(cfg.get("plugins"))) if cfg.get("plugins") else []
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)


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
            "hydra/launcher=slurm (submitit; see 'Sweeps' in the README)."
        )
