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

from omegaconf import DictConfig

from src import runner
from src.tasks.conversion import save_converted, task_from_official

log = logging.getLogger(__name__)


@runner.task
def convert(cfg: DictConfig) -> Path:
    """Build the configured task from the official file and save it; returns the checkpoint path."""
    if not cfg.get("official"):
        raise ValueError("python -m src.convert needs official=PATH (the official checkpoint file)")
    official = Path(str(cfg.official)).expanduser()
    task = task_from_official(cfg.model, official)
    out = Path(str(cfg.out)) if cfg.get("out") else Path(cfg.paths.output_dir) / "checkpoints" / "converted.ckpt"
    save_converted(task, out)
    log.info("converted %s (%s) -> %s", official, cfg.model.name, out)
    print(f"{official} -> {out} ({type(task).__name__}, {cfg.model.name})")
    return out


@runner.main("convert")
def main(cfg: DictConfig) -> None:
    convert(cfg)


if __name__ == "__main__":
    main()
