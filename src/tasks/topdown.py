"""LightningModule for top-down heatmap models (HRNet, SimpleBaseline, Stacked Hourglass).

Wraps any network that maps person crops (N, 3, h, w) to heatmaps (N, K, H, W), or to a list
of such maps (one per stack; the loss sums over the list and decoding uses the last one).
Hyperparameters are kept as plain data so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from src.codecs.msra_heatmap import MSRAHeatmap
from src.metrics.accuracy import heatmap_accuracy
from src.tasks.base import PoseModule
from src.tasks.inference import decode_keypoints, last_output, topdown_heatmaps
from src.utils.drawing import draw_keypoint_info
from src.utils.pictures import denormalize, heatmap_overlay


class TopDownPoseModule(PoseModule):
    """Top-down 2D pose: crops in, heatmaps out, COCO keypoint AP on validation.

    Arguments are those of `PoseModule`; ``codec`` configures an MSRAHeatmap and
    ``evaluation`` holds flip_test, shift_heatmap, rescore, in_vis_thr, use_nms, oks_thr.
    """

    paradigm = "topdown"
    default_evaluation = {
        "flip_test": True,
        "shift_heatmap": True,
        "rescore": True,
        "in_vis_thr": 0.2,
        "use_nms": True,
        "oks_thr": 0.9,
    }
    codec: MSRAHeatmap

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
        init: str = "official",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__(
            name=name, paradigm=paradigm, net=net, codec=codec, loss=loss, optimizer=optimizer,
            scheduler=scheduler, evaluation=evaluation, keypoint_info=keypoint_info,
            pretrained=pretrained, channels_last=channels_last, init=init, zero_init_residual=zero_init_residual,
        )

    def metric_options(self) -> dict[str, Any]:
        ev = self.hparams.evaluation
        return {"rescore": ev["rescore"], "in_vis_thr": ev["in_vis_thr"], "use_nms": ev["use_nms"],
                "oks_thr": ev["oks_thr"]}

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
        _, acc, _ = heatmap_accuracy(last_output(outputs).detach().float(), batch["heatmaps"])
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
        keypoints = self.decode(heatmaps, batch)
        self.val_metric.update(
            sample_ids=batch["sample_id"], image_ids=batch["image_id"],
            keypoints=torch.from_numpy(keypoints), areas=batch["area"], box_scores=batch["box_score"],
        )
        for sid, kpts in zip(batch["sample_id"].tolist(), keypoints):
            self.remember_for_picture(sid, kpts)

    @torch.no_grad()
    def prediction_pictures(self, items: list[dict], *, color_rgb: bool = True) -> list[np.ndarray]:
        """Per validation item (a dataset sample): the crop with the predicted skeleton, next to
        the predicted heatmaps blended over it. BGR uint8, for `PredictionPictures`."""
        images = torch.stack([item["image"] for item in items]).to(self.device)
        heatmaps = self.predict_heatmaps(images).float()
        coords, maxvals = self.codec.decode(heatmaps)
        stride = torch.tensor(
            [self.codec.input_size[0] / self.codec.heatmap_size[0], self.codec.input_size[1] / self.codec.heatmap_size[1]]
        )
        points = coords.cpu() * stride  # heatmap -> crop pixels, as the targets were made
        keypoints = torch.cat([points, maxvals.cpu()[..., None]], dim=-1).numpy()
        pictures = []
        for image, kpts, maps in zip(images, keypoints, heatmaps):
            crop = denormalize(image)
            if color_rgb:
                crop = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
            skeleton = draw_keypoint_info(crop, kpts, self.keypoint_info, score_thr=0.2, radius=2, thickness=1)
            pictures.append(np.concatenate([skeleton, heatmap_overlay(crop, maps)], axis=1))
        return pictures

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        heatmaps = self.predict_heatmaps(batch["image"])
        return {
            "sample_id": batch["sample_id"].cpu(),
            "image_id": batch["image_id"].cpu(),
            "keypoints": torch.from_numpy(self.decode(heatmaps, batch)),
        }
