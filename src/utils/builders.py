"""Build run components (datamodule, callbacks, loggers, trainer) from the composed config."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Keys of a data config that describe the targets rather than the loader; the model's codec
# interpolates them (e.g. `sigma: ${data.sigma}`), so they are checked here instead of passed on.
TARGET_KEYS = ("sigma", "num_keypoints")


def build_datamodule(data_cfg: DictConfig, *, codec: Any, paradigm: str) -> Any:
    """Instantiate the datamodule of ``data_cfg`` for a model of ``paradigm`` sharing ``codec``."""
    from src.data.keypoint_info import get_keypoint_info

    supported = list(data_cfg.get("paradigms", ["topdown", "bottomup"]))
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
    kwargs = {k: v for k, v in resolved.items() if k not in (*TARGET_KEYS, "paradigms")}
    return instantiate(kwargs, codec=codec, paradigm=paradigm, _convert_="all")


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
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks")) if with_callbacks else []
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
