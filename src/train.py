"""Train a pose model: ``python -m src.train model=hrnet data=synthetic [overrides]``.

Composes ``conf/train.yaml``, builds model, datamodule, callbacks, loggers and trainer, fits,
re-validates the best checkpoint, and leaves in the run folder: checkpoints/, metrics.json,
run_info.json, predictions.jpg and the logs. Returns the monitored metric to Hydra sweepers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.utils.builders import build_datamodule, build_trainer
from src.utils.run_io import resolved_config, run_info, write_json_atomic
from src.utils.visualize import save_prediction_picture

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by ``cfg``; returns the final metrics."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    resolved = resolved_config(cfg)
    write_json_atomic(output_dir / "run_info.json", run_info(resolved))

    model = instantiate(cfg.model, _recursive_=False)
    model.num_visualized = int(cfg.get("num_visualized", 0))
    datamodule = build_datamodule(cfg.data, codec=model.codec, paradigm=model.hparams.paradigm)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams({"config": resolved})

    log.info("training %s on %s; run folder %s", cfg.model.name, cfg.data.name, output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("evaluate_best") and best:
        log.info("validating the best checkpoint %s", best)
        (results,) = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)
        metrics.update({k: float(v) for k, v in results.items()})
        metrics["best_checkpoint"] = best
    write_json_atomic(output_dir / "metrics.json", metrics)
    if model.visualized and trainer.is_global_zero:
        picture = save_prediction_picture(
            output_dir / "predictions.jpg", datamodule.val_dataset.image_files(), model.visualized,
            keypoint_info=model.keypoint_info,
        )
        log.info("predicted skeletons on validation images: %s", picture)
    summary = {k: v for k, v in metrics.items() if k.startswith("val/") and not k.endswith("loss")}
    log.info("final metrics: %s", summary)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
