"""Turn an official checkpoint into a checkpoint of this project.

    python -m src.convert experiment=hrnet_w32_256x192_coco official=/path/pose_hrnet_w32_256x192.pth
    python -m src.convert experiment=posenet_r50_h36m_p2 official=/path/snapshot_24.pth.tar out=posenet_p2.ckpt

The model config names the network the file holds (its recipe sets the sizes); the file's
weights are loaded into it with strict key and shape checks (`load_official_weights`: bare
state_dicts, ``state_dict`` / ``network`` containers, ``module.`` prefixes), and the task is saved
as a checkpoint that ``src.eval``, ``src.predict`` and fine-tuning (``ckpt_path=``) read like one
written by ``src.train``. A mismatch (another depth, width or joint count) is refused with the
keys and shapes that differ.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from src import runner
from src.tasks.base import PoseModule

log = logging.getLogger(__name__)


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


@runner.task
def convert(cfg: DictConfig) -> Path:
    """Build the configured task from the official file and save it; returns the checkpoint path."""
    if not cfg.get("official"):
        raise ValueError("python -m src.convert needs official=PATH (the official checkpoint file)")
    official = Path(str(cfg.official)).expanduser()
    with open_dict(cfg):
        cfg.model.official_weights = str(official)
        cfg.model.pretrained = None  # every tensor comes from the official file
    try:
        task = instantiate(cfg.model, _recursive_=False)
    except InstantiationException as err:  # a mismatch or a missing file: the loader's own message
        if isinstance(err.__cause__, (ValueError, FileNotFoundError)):
            raise err.__cause__ from None
        raise
    out = Path(str(cfg.out)) if cfg.get("out") else Path(cfg.paths.output_dir) / "checkpoints" / "converted.ckpt"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(converted_checkpoint(task), tmp)
    tmp.replace(out)
    log.info("converted %s (%s) -> %s", official, cfg.model.name, out)
    print(f"{official} -> {out} ({type(task).__name__}, {cfg.model.name})")
    return out


@runner.main("convert")
def main(cfg: DictConfig) -> None:
    convert(cfg)


if __name__ == "__main__":
    main()
