"""LightningModule for top-down heatmap models (HRNet, SimpleBaseline, Stacked Hourglass).

Wraps any network that maps person crops (N, 3, h, w) to heatmaps (N, K, H, W), or to a list
of such maps (one per stack; the loss sums over the list and decoding uses the last one).
Hyperparameters are kept as plain data so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, OmegaConf

from src.codecs.msra_heatmap import MSRAHeatmap
from src.data.keypoint_info import get_keypoint_info
from src.metrics.accuracy import heatmap_accuracy
from src.metrics.coco_metric import COCOKeypointMetric
from src.tasks.inference import decode_keypoints, topdown_heatmaps


def to_plain(value: Any) -> Any:
    """DictConfig / ListConfig -> dict / list (resolved); everything else unchanged."""
    if isinstance(value, DictConfig) or OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


class TopDownPoseModule(LightningModule):
    """Top-down 2D pose: crops in, heatmaps out, COCO keypoint AP on validation.

    Args:
        name: model name used in run folders and logs.
        paradigm: always "topdown" here; data pipelines check it.
        net: config of the network (a ``_target_`` dict), built with Hydra.
        codec: config of the MSRAHeatmap codec; the data pipeline builds the same codec.
        loss: config of the loss (JointsMSELoss).
        optimizer: config of the optimiser, without ``params`` (e.g. ``_target_: torch.optim.Adam``).
        scheduler: MultiStepLR settings ``{milestones, gamma}`` (stepped once per epoch), or None.
        evaluation: flip_test, shift_heatmap, rescore, in_vis_thr, use_nms, oks_thr.
        keypoint_info: name of the keypoint layout ("coco17", ...).
        pretrained: local path of ImageNet weights for the backbone, or None.
        channels_last: run the network in channels_last memory format.
    """

    def __init__(
        self,
        *,
        name: str,
        paradigm: str = "topdown",
        net: dict,
        codec: dict,
        loss: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        evaluation: dict | None = None,
        keypoint_info: str = "coco17",
        pretrained: str | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if paradigm != "topdown":
            raise ValueError(f"TopDownPoseModule trains top-down models, got paradigm={paradigm!r}")
        hparams = {
            "name": name, "paradigm": paradigm, "net": to_plain(net), "codec": to_plain(codec),
            "loss": to_plain(loss), "optimizer": to_plain(optimizer), "scheduler": to_plain(scheduler),
            "evaluation": {**DEFAULT_EVALUATION, **(to_plain(evaluation) or {})},
            "keypoint_info": keypoint_info, "pretrained": pretrained, "channels_last": channels_last,
        }
        self.save_hyperparameters(hparams)
        self.net = instantiate(hparams["net"])
        if hasattr(self.net, "init_weights"):
            self.net.init_weights(pretrained)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.codec: MSRAHeatmap = instantiate(hparams["codec"])
        self.loss_fn = instantiate(hparams["loss"])
        self.keypoint_info = get_keypoint_info(keypoint_info)
        self.val_metric: COCOKeypointMetric | None = None
        # Predictions of the last validation epoch for a few samples: {sample_id: (K, 3)}.
        self.visualized: dict[int, np.ndarray] = {}
        self.num_visualized = 0

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate", "test") and self.val_metric is None:
            datamodule = self.trainer.datamodule
            self.attach_metric(datamodule.val_ann_file)

    def attach_metric(self, ann_file: str) -> None:
        """Create the COCO metric for the given ground-truth annotation file."""
        ev = self.hparams.evaluation
        if self.keypoint_info.sigmas is None:
            raise ValueError(f"keypoint layout {self.keypoint_info.name!r} has no OKS sigmas; COCO AP is undefined")
        self.val_metric = COCOKeypointMetric(
            ann_file=str(ann_file), sigmas=self.keypoint_info.sigmas, rescore=ev["rescore"],
            in_vis_thr=ev["in_vis_thr"], use_nms=ev["use_nms"], oks_thr=ev["oks_thr"],
        )

    # ------------------------------------------------------------------ forward
    def forward(self, images: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    def predict_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps (N, K, H, W) used for decoding, with the configured flip test."""
        ev = self.hparams.evaluation
        return topdown_heatmaps(
            self, images, flip_index=self.keypoint_info.flip_index,
            flip_test=ev["flip_test"], shift_heatmap=ev["shift_heatmap"],
        )

    def decode(self, heatmaps: torch.Tensor, batch: dict) -> np.ndarray:
        """Heatmaps (N, K, H, W) -> keypoints (N, K, 3) [x, y, score] in image pixels."""
        return decode_keypoints(self.codec, heatmaps, batch["center"], batch["scale"])

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        outputs = self(batch["image"])
        loss = self.loss_fn(outputs, batch["heatmaps"], batch["target_weight"])
        last = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
        _, acc, _ = heatmap_accuracy(last.detach().float(), batch["heatmaps"])
        n = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/acc", acc, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        heatmaps = self.predict_heatmaps(batch["image"])
        loss = self.loss_fn(heatmaps, batch["heatmaps"], batch["target_weight"])
        _, acc, _ = heatmap_accuracy(heatmaps.float(), batch["heatmaps"])
        n = batch["image"].shape[0]
        self.log("val/loss", loss, batch_size=n, sync_dist=True)
        self.log("val/acc", acc, batch_size=n, sync_dist=True)
        self.update_metric(heatmaps, batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def update_metric(self, heatmaps: torch.Tensor, batch: dict) -> None:
        keypoints = self.decode(heatmaps, batch)
        self.val_metric.update(
            sample_ids=batch["sample_id"], image_ids=batch["image_id"],
            keypoints=torch.from_numpy(keypoints), areas=batch["area"], box_scores=batch["box_score"],
        )
        for sid, kpts in zip(batch["sample_id"].tolist(), keypoints):
            if len(self.visualized) < self.num_visualized or sid in self.visualized:
                self.visualized[sid] = kpts

    def on_validation_epoch_end(self) -> None:
        self.log_metric("val")

    def on_test_epoch_end(self) -> None:
        self.log_metric("test")

    def log_metric(self, prefix: str) -> None:
        results = self.val_metric.compute()
        self.val_metric.reset()
        for key, value in results.items():
            self.log(f"{prefix}/{key}", value, prog_bar=key == "AP", sync_dist=False, rank_zero_only=False)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        heatmaps = self.predict_heatmaps(batch["image"])
        return {
            "sample_id": batch["sample_id"].cpu(),
            "image_id": batch["image_id"].cpu(),
            "keypoints": torch.from_numpy(self.decode(heatmaps, batch)),
        }

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer, params=self.parameters())
        sched = self.hparams.scheduler
        if not sched:
            return optimizer
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(sched["milestones"]), gamma=sched["gamma"]
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


DEFAULT_EVALUATION = {
    "flip_test": True,
    "shift_heatmap": True,
    "rescore": True,
    "in_vis_thr": 0.2,
    "use_nms": True,
    "oks_thr": 0.9,
}
