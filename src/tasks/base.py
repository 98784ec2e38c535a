"""What every pose LightningModule shares: plain hyperparameters, network construction,
optimiser and schedule, and the COCO metric's life cycle.

Subclasses set ``paradigm`` and ``default_evaluation`` and implement the steps.
"""

from __future__ import annotations

import math

from typing import Any, ClassVar

import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningModule
from omegaconf import OmegaConf

from src.data.keypoint_info import get_keypoint_info
from src.metrics.coco_metric import COCOKeypointMetric
from src.models.weights import kaiming_init_


def to_plain(value: Any) -> Any:
    """DictConfig / ListConfig -> dict / list (resolved); everything else unchanged."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


class PoseModule(LightningModule):
    """Base of the paradigm modules.

    Args:
        name: model name used in run folders and logs.
        paradigm: must equal the subclass's ``paradigm`` (the configs state it for the data pipeline).
        net: config of the network (a ``_target_`` dict), built with Hydra.
        codec: config of the codec; the data pipeline builds the same codec from it.
        loss: config of the loss.
        optimizer: config of the optimiser, without ``params`` (e.g. ``_target_: torch.optim.Adam``).
        scheduler: ``{type: multistep, milestones, gamma}`` (the official schedules, stepped once per
            epoch; ``type`` may be left out), ``{type: cosine, warmup_epochs, min_lr_ratio}`` (linear
            warm-up then cosine decay, stepped every optimiser step), or None for a constant LR.
        evaluation: test-time options, merged over ``default_evaluation``.
        keypoint_info: keypoint layout name ("coco17", ...).
        pretrained: local path of ImageNet weights for the backbone, or None.
        init: "official" (the official initialisation, e.g. N(0, 0.001) convolutions, then the
            ``pretrained`` file) or "pytorch" (PyTorch's default Kaiming-uniform init, better when
            training from scratch without ImageNet weights; ``pretrained`` must then be None) or
            "kaiming" (from scratch: Kaiming-normal convolutions and N(0, 0.001) prediction layers,
            `kaiming_init_`; ``pretrained`` must be None).
        channels_last: run the network in channels_last memory format.
        zero_init_residual: with init="kaiming", every residual block starts as its shortcut (the
            weight of its last BN is 0).
        extra: further plain hyperparameters of the subclass.
    """

    paradigm: ClassVar[str]
    default_evaluation: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        name: str,
        paradigm: str,
        net: dict,
        codec: dict,
        loss: dict,
        optimizer: dict,
        scheduler: dict | None,
        evaluation: dict | None,
        keypoint_info: str,
        pretrained: str | None,
        channels_last: bool,
        init: str = "official",
        zero_init_residual: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__()
        if paradigm != self.paradigm:
            raise ValueError(f"{type(self).__name__} trains {self.paradigm} models, got paradigm={paradigm!r}")
        if init not in ("official", "pytorch", "kaiming"):
            raise ValueError(f"init must be 'official', 'pytorch' or 'kaiming', got {init!r}")
        if init != "official" and pretrained:
            raise ValueError(f"init={init!r} trains from scratch; it cannot be combined with pretrained weights")
        if zero_init_residual and init != "kaiming":
            raise ValueError(f"zero_init_residual is an option of init='kaiming', not of init={init!r}")
        hparams = {
            "name": name, "paradigm": paradigm, "net": to_plain(net), "codec": to_plain(codec),
            "loss": to_plain(loss), "optimizer": to_plain(optimizer), "scheduler": to_plain(scheduler),
            "evaluation": {**self.default_evaluation, **(to_plain(evaluation) or {})},
            "keypoint_info": keypoint_info, "pretrained": pretrained, "channels_last": channels_last,
            "init": init, "zero_init_residual": zero_init_residual, **{k: to_plain(v) for k, v in extra.items()},
        }
        self.save_hyperparameters(hparams)
        self.net = instantiate(hparams["net"])
        if init == "official" and hasattr(self.net, "init_weights"):
            self.net.init_weights(pretrained)
        elif init == "kaiming":
            kaiming_init_(self.net, zero_residual=zero_init_residual)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.codec = instantiate(hparams["codec"])
        self.loss_fn = instantiate(hparams["loss"])
        self.keypoint_info = get_keypoint_info(keypoint_info)
        self.val_metric: COCOKeypointMetric | None = None
        # Predictions of the last validation epoch for a few samples, drawn after training.
        self.visualized: dict[int, np.ndarray] = {}
        self.num_visualized = 0

    # ------------------------------------------------------------------ metric
    def metric_options(self) -> dict[str, Any]:
        """Keyword arguments of COCOKeypointMetric besides the annotation file and sigmas."""
        return {}

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate", "test") and self.val_metric is None:
            self.attach_metric(self.trainer.datamodule.val_ann_file)

    def attach_metric(self, ann_file: str) -> None:
        """Create the COCO metric for the given ground-truth annotation file."""
        if self.keypoint_info.sigmas is None:
            raise ValueError(f"keypoint layout {self.keypoint_info.name!r} has no OKS sigmas; COCO AP is undefined")
        self.val_metric = COCOKeypointMetric(
            ann_file=str(ann_file), sigmas=self.keypoint_info.sigmas, **self.metric_options()
        )

    def remember_for_picture(self, key: int, keypoints: np.ndarray) -> None:
        if len(self.visualized) < self.num_visualized or key in self.visualized:
            self.visualized[key] = keypoints

    def on_validation_epoch_end(self) -> None:
        self.log_metric("val")

    def on_test_epoch_end(self) -> None:
        self.log_metric("test")

    def log_metric(self, prefix: str) -> None:
        results = self.val_metric.compute()
        self.val_metric.reset()
        for key, value in results.items():
            self.log(f"{prefix}/{key}", value, prog_bar=key == "AP", rank_zero_only=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer, params=self.parameters())
        sched = self.hparams.scheduler
        if not sched:
            return optimizer
        kind = sched.get("type", "multistep")
        if kind == "multistep":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=list(sched["milestones"]), gamma=sched["gamma"]
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if kind == "cosine":
            total = int(self.trainer.estimated_stepping_batches)
            steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
            factor = cosine_with_warmup(
                total_steps=total,
                warmup_steps=int(round(float(sched.get("warmup_epochs", 0.0)) * steps_per_epoch)),
                min_ratio=float(sched.get("min_lr_ratio", 0.0)),
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        raise ValueError(f"model.scheduler.type must be 'multistep' or 'cosine', got {kind!r}")


def cosine_with_warmup(*, total_steps: int, warmup_steps: int, min_ratio: float):
    """LR factor per optimiser step: linear warm-up from ~0 to 1, then a half cosine down to min_ratio."""
    if total_steps <= 0:
        raise ValueError(f"a cosine schedule needs a positive number of steps, got {total_steps}")
    warmup_steps = min(max(0, warmup_steps), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
