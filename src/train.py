"""Train a pose model: ``python -m src.train model=hrnet data=synthetic [overrides]``.

Composes ``conf/train.yaml``, builds model, datamodule, callbacks, loggers and trainer, fits,
re-validates the best checkpoint, and leaves in the run folder: checkpoints/, metrics.json,
run_info.json, predictions.jpg and the logs. Returns the monitored metric to Hydra sweepers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from src import runner
from src.utils.builders import build_datamodule, build_trainer, check_launch
from src.utils.checkpointing import resume_checkpoint
from src.utils.run_io import write_json_atomic
from src.visualization.predictions import save_prediction_picture

log = logging.getLogger(__name__)


@runner.task
def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by ``cfg``; returns the final metrics."""
    check_launch(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resume_checkpoint(
        output_dir, resume=bool(cfg.get("resume", False)), ckpt_path=cfg.get("ckpt_path"), run_name=output_dir.name
    )
    if ckpt_path:
        log.info("continuing from %s", ckpt_path)
        keep_logged_history(cfg, ckpt_path)
    L.seed_everything(cfg.seed, workers=True)
    info = runner.current_run().info

    model = instantiate(cfg.model, _recursive_=False)
    model.num_visualized = int(cfg.get("num_visualized", 0))
    datamodule = build_datamodule(cfg.data, codec=model.codec, paradigm=model.paradigm)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:  # resolved config, git commit, packages, machine, fast path
        logger.log_hyperparams(info)
    log.info("training %s on %s; run folder %s", cfg.model.name, cfg.data.name, output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("evaluate_best") and best and datamodule.has_validation:
        log.info("validating the best checkpoint %s", best)
        (results,) = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)
        metrics.update({k: float(v) for k, v in results.items()})
        metrics["best_checkpoint"] = best
    if trainer.is_global_zero:
        write_json_atomic(output_dir / "metrics.json", metrics)
    if model.visualized and trainer.is_global_zero:
        picture = save_prediction_picture(
            output_dir / "predictions.jpg",
            datamodule.val_dataset.image_files(),
            model.visualized,
            keypoint_info=model.keypoint_info,
        )
        log.info("predicted skeletons on validation images: %s", picture)
    summary = {k: v for k, v in metrics.items() if k.startswith("val/") and not k.endswith("loss")}
    log.info("final metrics: %s", summary)
    return metrics


def keep_logged_history(cfg: DictConfig, ckpt_path: str) -> None:
    """Let the CSV logger of a resumed run keep its rows up to the checkpoint's step."""
    loggers = cfg.get("logger") or {}
    targets = [
        k
        for k, node in loggers.items()
        if isinstance(node, DictConfig) and str(node.get("_target_", "")).endswith("ResumableCSVLogger")
    ]
    if not targets:
        return
    step = int(torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))
    with open_dict(cfg):
        for key in targets:
            cfg.logger[key].keep_until_step = step


@runner.main("train")
def main(cfg: DictConfig) -> Any:
    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
