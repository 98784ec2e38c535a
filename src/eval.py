"""Evaluate a checkpoint, or the codec oracle.

    python -m src.eval ckpt_path=logs/.../checkpoints/last.ckpt data=coco [flip_test=false]
    python -m src.eval ckpt_path=... data=coco data.reader.val_boxes=detections data.reader.det_file=/path/dets.json
    python -m src.eval model=hrnet data=synthetic oracle=true
    python -m src.eval experiment=quickstart_3d baseline=true
    python -m src.eval ckpt_path=ROOTNET.ckpt data=mupots write_bbox_root=true
    python -m src.eval ckpt_path=TOPDOWN.ckpt data=synthetic detector_ckpt=BOTTOMUP.ckpt

The oracle pushes the ground truth through the model's codec instead of a network (encode to
heatmaps, decode, project back to the image): the accuracy ceiling of a codec and input size,
and an end-to-end check of the geometry. ``detector_ckpt`` (models of person crops) takes the
validation boxes from a bottom-up checkpoint instead of the ground truth: its people's boxes,
padded as in `src.inference.Predictor`, written as ``detector_boxes.json`` in the run folder and
read as detection results. ``baseline=true`` (3D models) evaluates the codec's baseline without a
network, the reference a trained network must beat: PoseNet's mean root-relative training pose,
RootNet's k-value (gamma = 1). ``write_bbox_root=true`` (RootNet checkpoints) also writes the
roots of the validation crops as the official ``bbox_root_<data>_output.json``, which PoseNet
reads (``data.reader.use_gt_info=false data.reader.bbox_root_file=...``): the two-stage 3DMPPE
evaluation. Metrics are printed and written to metrics.json.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from src import runner
from src.inference.detections import detect_people
from src.inference.predictor import Predictor
from src.tasks.base import to_plain
from src.tasks.loading import load_task
from src.utils.builders import build_datamodule
from src.utils.run_io import write_json_atomic
from src.visualization.predictions import save_prediction_picture

log = logging.getLogger(__name__)


def test_option_keys(cfg: DictConfig, model: Any) -> tuple[str, ...]:
    """Top-level keys of eval.yaml handed to the task's `set_test_options` (null keeps the
    checkpoint's): those eval.yaml lists, and the model's own (its task's and its codec's)."""
    listed = tuple(cfg.get("test_option_keys") or ())
    return (*listed, *(k for k in (*model.test_option_names(), "refine") if k not in listed))


def model_overrides(task_overrides: list[str]) -> list[str]:
    """The command-line overrides of ``model.*`` keys: without effect when a checkpoint is
    evaluated, since the network, codec and evaluation settings come from the checkpoint."""
    return [o for o in task_overrides if o.lstrip("+~").startswith("model.")]


def evaluate_checkpoint(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    if not cfg.get("ckpt_path"):
        raise ValueError("python -m src.eval needs ckpt_path=PATH (or oracle=true to evaluate the codec alone)")
    model = load_task(cfg.ckpt_path)
    ignored = model_overrides(list(HydraConfig.get().overrides.task)) if HydraConfig.initialized() else []
    if ignored:
        log.warning(
            "ignored with ckpt_path (the model's settings come from the checkpoint): %s; the test-time "
            "options are top-level keys: %s",
            " ".join(ignored),
            ", ".join(f"{k}=" for k in (*model.test_option_names(), "refine")),
        )
    # the checkpoint holds the memory format of the run that wrote it; this run's fast path decides
    run = runner.current_run()
    run.record(
        **runner.resolve_task(
            model,
            enabled=bool(cfg.get("fast_path", False)),
            batch_size=int(cfg.data.get("val_batch_size", 1)),
            precision=str(cfg.trainer.precision),
            accelerator=str(cfg.trainer.get("accelerator", "auto")),
        )
    )
    model.set_test_options(**{k: to_plain(cfg.get(k)) for k in test_option_keys(cfg, model)})
    model.num_visualized = int(cfg.get("num_visualized", 0))
    if "sigma" in cfg.data and getattr(model.codec, "heatmap_sigma", None) is not None:  # its own targets
        with open_dict(cfg):
            cfg.data.sigma = model.codec.heatmap_sigma
    if cfg.get("detector_ckpt"):
        use_detector_boxes(cfg, model, output_dir)
    datamodule = build_datamodule(cfg.data, codec=model.codec, paradigm=model.paradigm)
    model.check_layout(datamodule.keypoint_info, datamodule.name)
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(output_dir))
    (results,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    metrics: dict[str, Any] = {k: float(v) for k, v in results.items()}
    metrics.update(model.current_test_options())
    if cfg.get("write_bbox_root") and trainer.is_global_zero:
        path = write_bbox_root(model, datamodule, output_dir / f"bbox_root_{datamodule.name}_output.json")
        metrics["bbox_root_file"] = str(path)
    if model.visualized and trainer.is_global_zero:
        save_prediction_picture(
            output_dir / "predictions.jpg",
            datamodule.val_dataset.image_files(),
            model.visualized,
            keypoint_info=model.keypoint_info,
        )
    return metrics


def write_bbox_root(model: Any, datamodule: Any, path: Path) -> Path:
    """A root model's roots of every validation crop as the official RootNet "bbox_root" file: a list of
    ``{"image_id", "bbox": the crop box [x, y, w, h], "root_cam": [X, Y, Z] mm, "score"}``, which a
    PoseNet evaluation reads with ``data.reader.use_gt_info=false data.reader.bbox_root_file=PATH``."""
    if getattr(model.codec, "prediction_key", None) != "root_cam":
        raise ValueError(
            f"write_bbox_root=true needs a RootNet checkpoint; {model.hparams.name} does not predict roots"
        )
    model.eval()
    entries = []
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            batch = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out = model.predict_step(batch, 0)
            for image_id, bbox, root, score in zip(
                out["image_id"].tolist(), batch["bbox"].tolist(), out["camera"][:, 0].tolist(), batch["score"].tolist()
            ):
                entries.append(
                    {
                        "image_id": int(image_id),
                        "bbox": [round(float(v), 4) for v in bbox],
                        "root_cam": [round(float(v), 4) for v in root],
                        "score": round(float(score), 6),
                    }
                )
    write_json_atomic(path, entries)
    log.info("wrote the roots of %d crops to %s", len(entries), path)
    return path


def use_detector_boxes(cfg: DictConfig, model: Any, output_dir: Path) -> Path:
    """Write the validation person boxes of ``cfg.detector_ckpt`` and point the data's reader at them."""
    if not model.needs_boxes:
        raise ValueError(f"detector_ckpt: {model.hparams.name} finds people itself; only crop models take boxes")
    reader = instantiate(cfg.data.reader)
    if "det_file" not in cfg.data.reader or not hasattr(reader, "image_files"):
        raise ValueError(f"detector_ckpt: data={cfg.data.name} reads no detection boxes (COCO-format data does)")
    reader.prepare(splits=("val",))
    detector = Predictor(load_task(cfg.detector_ckpt))
    predictor = Predictor(
        model, detector=detector, **({"detector_padding": cfg.detector_padding} if cfg.get("detector_padding") else {})
    )
    boxes = detect_people(predictor, reader.image_files("val"), batch_size=int(cfg.get("detector_batch_size", 8)))
    path = write_json_atomic(output_dir / "detector_boxes.json", boxes)
    with open_dict(cfg):
        cfg.data.reader.val_boxes = "detections"
        cfg.data.reader.det_file = str(path.resolve())
    log.info("validation boxes: %d from %s -> %s", len(boxes), cfg.detector_ckpt, path)
    return path


def evaluate_oracle(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """The data's metric on the ground truth pushed through the model's codec (no network)."""
    task_class = get_class(cfg.model._target_)
    codec = instantiate(cfg.model.codec)
    datamodule = build_datamodule(cfg.data, codec=codec, paradigm=task_class.paradigm)
    datamodule.prepare_data("validate")
    datamodule.setup("validate")
    evaluation = {**task_class.default_evaluation, **(to_plain(cfg.model.get("evaluation")) or {})}
    metric = datamodule.build_metric(task_class.submission(evaluation))
    budget = int(cfg.get("num_visualized", 0))
    visualized: dict[int, Any] = {}
    for predictions, batch, pictures in task_class.oracle(codec, datamodule.val_dataloader()):
        metric.update(predictions, batch)
        for key, keypoints in pictures.items():
            if len(visualized) < budget:
                visualized[key] = keypoints
    metrics = {f"oracle/{k}": float(v) for k, v in metric.compute().items()}
    if visualized:
        save_prediction_picture(
            output_dir / "predictions.jpg",
            datamodule.val_dataset.image_files(),
            visualized,
            keypoint_info=datamodule.keypoint_info,
        )
    return metrics


def evaluate_baseline(cfg: DictConfig) -> dict[str, float]:
    """The data's metric on the codec's baseline without a network (3D: the mean training pose
    for PoseNet, the k-value for RootNet)."""
    task_class = get_class(cfg.model._target_)
    if not hasattr(task_class, "baseline"):
        raise ValueError(f"baseline=true: {task_class.__name__} has no baseline (3D models have one)")
    codec = instantiate(cfg.model.codec)
    datamodule = build_datamodule(cfg.data, codec=codec, paradigm=task_class.paradigm)
    datamodule.prepare_data()
    datamodule.setup("fit")
    metric = datamodule.build_metric(task_class.submission(dict(task_class.default_evaluation)))
    for predictions, batch, _ in task_class.baseline(codec, datamodule.train_dataset, datamodule.val_dataloader()):
        metric.update(predictions, batch)
    return {f"baseline/{k}": float(v) for k, v in metric.compute().items()}


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate what ``cfg`` (conf/eval.yaml) names; prints and returns the metrics."""
    if cfg.get("ckpt_path") and not (cfg.get("oracle") or cfg.get("baseline")):
        # the checkpoint brings its model; the composed default (which may interpolate keys that
        # this data config lacks, e.g. data.sigma) is not part of the run
        with open_dict(cfg):
            cfg.run_name = str(cfg.get("run_name"))
            cfg.pop("model", None)
    return _evaluate(cfg)


@runner.task
def _evaluate(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("oracle"):
        metrics = evaluate_oracle(cfg, output_dir)
    elif cfg.get("baseline"):
        metrics = evaluate_baseline(cfg)
    else:
        metrics = evaluate_checkpoint(cfg, output_dir)
    if rank_zero_only.rank != 0:  # DDP: every process holds the same gathered metrics; one reports them
        return metrics
    write_json_atomic(output_dir / "metrics.json", metrics)
    width = max(len(k) for k in metrics)
    print(
        "\n".join(
            f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in metrics.items()
        )
    )
    print(f"metrics written to {output_dir / 'metrics.json'}")
    return metrics


@runner.main("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
