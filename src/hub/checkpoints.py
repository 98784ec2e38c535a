"""Published pose checkpoints by name: downloaded, converted once into a checkpoint of this
project (the network of the entry's ``experiment=`` recipe, strict key and shape checks), cached.

    path = published_checkpoint("rtmpose_m_coco_256x192")   # <cache>/converted/<name>.ckpt
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import src.utils.resolvers  # noqa: F401  (the configs' resolvers)
from src.hub.cache import converted_folder, file_lock, writable_folder
from src.hub.registry import WeightsEntry, get_entry, known_weights
from src.hub.resolve import fetch_entry
from src.models.weights import read_official_state_dict
from src.tasks.conversion import save_converted, task_from_official

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def recipe_config(experiment: str) -> DictConfig:
    """The composed ``convert`` config of ``experiment=...`` (inside a running Hydra app, or not)."""
    overrides = [f"experiment={experiment}"]
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="convert", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="convert", overrides=overrides)


def _renamed_file(entry: WeightsEntry, official: Path, folder: Path) -> Path:
    """A copy of ``official`` with the entry's key prefixes renamed (files of another code base)."""
    state = read_official_state_dict(official)
    renamed = {}
    for key, value in state.items():
        for old, new in entry.key_map.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    out = folder / f"{entry.name}.renamed.pth"
    torch.save(renamed, out)
    return out


def published_checkpoint(name: str, *, progress: bool = True) -> Path:
    """The converted checkpoint of the published model ``name`` (fetched and converted on first use).

    Raises:
        KeyError: no checkpoint of that name (the message lists the known ones).
        src.hub.download.WeightsUnavailable / BadDownload: the file could not be fetched.
        ValueError: the file does not match its recipe's network (keys and shapes listed).
    """
    entry = get_entry(name, kind="checkpoint")
    out = converted_folder() / f"{entry.name}.ckpt"
    if out.is_file():
        return out
    official = fetch_entry(entry, progress=progress)
    writable_folder(out.parent)
    with file_lock(out):
        if out.is_file():
            return out
        cfg = recipe_config(str(entry.experiment))
        source = _renamed_file(entry, official, out.parent) if entry.key_map else official
        try:
            task = task_from_official(cfg.model, source)
        finally:
            if source != official:
                os.unlink(source)
        save_converted(task, out)
    log.info("converted %s (%s) -> %s", official, entry.experiment, out)
    return out


def checkpoint_path(spec: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """A checkpoint argument (``ckpt_path=``, ``detector_ckpt=``, ``root_ckpt=``): an existing file, or
    the name of a published checkpoint (`published_checkpoint`)."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    entry = known_weights().get(text)
    if entry is not None and entry.kind == "checkpoint":
        return published_checkpoint(text, progress=progress)
    return path  # the loader's own "checkpoint not found" names it
