"""Evaluate a checkpoint, or the codec oracle.

    python -m src.eval ckpt_path=logs/.../checkpoints/last.ckpt data=coco [flip_test=false]
    python -m src.eval ckpt_path=... data=coco data.val_boxes=detections data.det_file=/path/dets.json
    python -m src.eval model=hrnet data=synthetic oracle=true

The oracle pushes the ground truth through the model's codec instead of a network (encode to
heatmaps, decode, project back to the image): the accuracy ceiling of a codec and input size,
and an end-to-end check of the geometry. Metrics are printed and written to metrics.json.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from src.data.keypoint_info import get_keypoint_info
from src.metrics.coco_metric import COCOKeypointMetric
from src.tasks.oracle import bottomup_oracle, topdown_oracle
from src.utils.builders import build_datamodule
from src.utils.run_io import resolved_config, run_info, write_json_atomic
from src.utils.visualize import save_prediction_picture

log = logging.getLogger(__name__)

MODULES = {
    "topdown": "src.tasks.topdown.TopDownPoseModule",
    "bottomup": "src.tasks.bottomup.BottomUpPoseModule",
}


def load_module(ckpt_path: str) -> L.LightningModule:
    """Load a training checkpoint (plain hyperparameters, ``weights_only=True``) into its module class."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = checkpoint.get("hyper_parameters")
    if not hparams or "paradigm" not in hparams:
        raise ValueError(f"{path} holds no model hyperparameters; is it a checkpoint written by src.train?")
    if hparams["paradigm"] not in MODULES:
        raise ValueError(f"{path}: unknown paradigm {hparams['paradigm']!r}; known: {sorted(MODULES)}")
    module_cls = get_class(MODULES[hparams["paradigm"]])
    return module_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)


def model_overrides(task_overrides: list[str]) -> list[str]:
    """The command-line overrides of ``model.*`` keys: without effect when a checkpoint is
    evaluated, since the network, codec and evaluation settings come from the checkpoint."""
    return [o for o in task_overrides if o.lstrip("+~").startswith("model.")]


def evaluate_checkpoint(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    if not cfg.get("ckpt_path"):
        raise ValueError("python -m src.eval needs ckpt_path=PATH (or oracle=true to evaluate the codec alone)")
    ignored = model_overrides(list(HydraConfig.get().overrides.task)) if HydraConfig.initialized() else []
    if ignored:
        log.warning(
            "ignored with ckpt_path (the model's settings come from the checkpoint): %s; the test-time "
            "options are top-level keys: flip_test=, shift_heatmap=, refine=, test_scales=", " ".join(ignored)
        )
    model = load_module(cfg.ckpt_path)
    overrides = {k: cfg[k] for k in ("flip_test", "shift_heatmap") if cfg.get(k) is not None}
    if cfg.get("test_scales") is not None:
        overrides["test_scales"] = list(cfg.test_scales)
    model.hparams.evaluation.update(overrides)
    if cfg.get("refine") is not None:
        if model.hparams.paradigm == "topdown":
            model.codec.refine = cfg.refine  # quarter | dark | none
        else:
            model.codec.parser.refine_default = bool(cfg.refine)
    model.num_visualized = int(cfg.get("num_visualized", 0))
    with open_dict(cfg):
        cfg.data.sigma = model.codec.sigma
    datamodule = build_datamodule(cfg.data, codec=model.codec, paradigm=model.hparams.paradigm)
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(output_dir))
    (results,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in results.items()}
    metrics["flip_test"] = bool(model.hparams.evaluation["flip_test"])
    if model.hparams.paradigm == "bottomup":
        metrics["test_scales"] = [float(v) for v in model.hparams.evaluation["test_scales"]]
    if model.visualized and trainer.is_global_zero:
        save_prediction_picture(
            output_dir / "predictions.jpg", datamodule.val_dataset.image_files(), model.visualized,
            keypoint_info=model.keypoint_info,
        )
    return metrics


def evaluate_oracle(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """COCO AP of the ground truth pushed through the model's codec (no network)."""
    codec = instantiate(cfg.model.codec)
    paradigm = cfg.model.get("paradigm", "topdown")
    datamodule = build_datamodule(cfg.data, codec=codec, paradigm=paradigm)
    datamodule.prepare_data()
    datamodule.setup("validate")
    info = get_keypoint_info(cfg.data.keypoint_info)
    if paradigm == "topdown":
        ev = cfg.model.evaluation
        options = {"rescore": ev.rescore, "in_vis_thr": ev.in_vis_thr, "use_nms": ev.use_nms, "oks_thr": ev.oks_thr}
    else:
        options = {"rescore": False, "use_nms": False}
    metric = COCOKeypointMetric(ann_file=str(datamodule.val_ann_file), sigmas=info.sigmas, **options)
    budget = int(cfg.get("num_visualized", 0))
    visualized: dict[int, Any] = {}
    loader = datamodule.val_dataloader()
    if paradigm == "topdown":
        for batch, keypoints in topdown_oracle(codec, loader):
            metric.update(
                sample_ids=batch["sample_id"], image_ids=batch["image_id"],
                keypoints=torch.from_numpy(keypoints), areas=batch["area"], box_scores=batch["box_score"],
            )
            for sid, kpts in zip(batch["sample_id"].tolist(), keypoints):
                if len(visualized) < budget:
                    visualized[sid] = kpts
        image_files = datamodule.val_dataset.image_files()
    else:
        image_files = {}
        for batch in loader:
            for image_id, image_file, joints, width, height in zip(
                batch["image_id"], batch["image_file"], batch["joints"], batch["width"], batch["height"]
            ):
                people, scores = bottomup_oracle(codec, joints, int(width), int(height))
                image_files[int(image_id)] = image_file
                if len(people) == 0:
                    continue
                ids = torch.full((len(people),), int(image_id), dtype=torch.long)
                metric.update(sample_ids=ids, image_ids=ids, keypoints=torch.from_numpy(people),
                              areas=torch.ones(len(people)), box_scores=torch.from_numpy(scores))
                if len(visualized) < budget:
                    visualized[int(image_id)] = people
    metrics = {f"oracle/{k}": float(v) for k, v in metric.compute().items()}
    if visualized:
        save_prediction_picture(output_dir / "predictions.jpg", image_files, visualized, keypoint_info=info)
    return metrics


def evaluate(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    write_json_atomic(output_dir / "run_info.json", run_info(resolved_config(cfg)))
    metrics = evaluate_oracle(cfg, output_dir) if cfg.get("oracle") else evaluate_checkpoint(cfg, output_dir)
    if rank_zero_only.rank != 0:  # DDP: every process holds the same gathered metrics; one reports them
        return metrics
    write_json_atomic(output_dir / "metrics.json", metrics)
    width = max(len(k) for k in metrics)
    print("\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
                    for k, v in metrics.items()))
    print(f"metrics written to {output_dir / 'metrics.json'}")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
