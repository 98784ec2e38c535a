"""Load any training checkpoint into the task class that wrote it."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from lightning.pytorch import LightningModule

from src.paradigms import get_paradigm
from src.tasks.base import TASK_CLASS_KEY


def load_task(ckpt_path: str | Path) -> LightningModule:
    """A checkpoint written by ``src.train`` (plain hyperparameters, ``weights_only=True``), in its
    task class. Checkpoints from before the class was recorded name their paradigm instead."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # pickle, zip and torch errors alike: not a checkpoint we can read
        raise ValueError(f"{path}: cannot be read as a PyTorch checkpoint ({type(err).__name__}: {err})") from err
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams:
        raise ValueError(
            f"{path} holds no model hyperparameters: it is not a checkpoint of src.train "
            "(official weights of the original repositories: convert them with python -m src.convert)"
        )
    class_path = checkpoint.get(TASK_CLASS_KEY)
    if class_path is None:
        if "paradigm" not in hparams:
            raise ValueError(f"{path} names neither its task class nor its paradigm; is it a checkpoint of src.train?")
        class_path = get_paradigm(hparams["paradigm"]).task
    try:
        task_class = get_class(class_path)
    except Exception as err:
        raise ValueError(f"{path}: cannot import its task class {class_path!r} ({err})") from err
    # the checkpoint holds every tensor: the files the run started from (pretrained backbone, official
    # weights) are not read again, and need not exist on this machine
    return task_class.load_from_checkpoint(
        path, map_location="cpu", weights_only=True, pretrained=None, official_weights=None
    )
