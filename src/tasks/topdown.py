"""LightningModule for top-down models: person crops in, any codec's outputs out.

Wraps any network whose outputs a codec of the top-down contract decodes (`src.codecs.base`):
MSRA or UDP heatmaps (HRNet, SimpleBaseline, Stacked Hourglass, ViTPose), SimCC vectors
(RTMPose, SimCC-R50). The targets, the loss's view of a batch, the flip test, decoding and the
pictures all go through the codec; this module knows none of them.
Hyperparameters are kept as plain data so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from src.codecs.base import Prediction, TopDownCodec
from src.codecs.topdown_test_time import decode_batch, topdown_prediction
from src.geometry import PIXEL_STD, box_xywh_to_center_scale
from src.metrics.coco_eval import select_instances
from src.metrics.rescoring import rescore_instances
from src.models.meta import meta_outputs
from src.tasks.base import PoseModule
from src.tasks.oracle import topdown_oracle
from src.visualization.pictures import denormalize
from src.visualization.skeletons import draw_keypoint_info


class TopDownPoseModule(PoseModule):
    """Top-down 2D pose: crops in, the codec's outputs out, the data's metric (COCO AP, PCKh) on
    validation.

    Arguments are those of `PoseModule`; ``codec`` configures a top-down codec and ``evaluation``
    holds flip_test, rescore, in_vis_thr, use_nms, oks_thr, soft_nms and the codec's own test-time
    options (e.g. MSRA heatmaps: shift_heatmap). The network's outputs are checked against the
    codec's sizes when the module is built (on the meta device, no computation).
    """

    paradigm = "topdown"
    default_evaluation = {
        "flip_test": True,
        "rescore": True,
        "in_vis_thr": 0.2,
        "use_nms": True,
        "oks_thr": 0.9,
        "soft_nms": False,
    }
    test_options = ("flip_test",)
    needs_boxes = True
    codec: TopDownCodec

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        w, h = self.codec.input_size
        try:
            outputs = meta_outputs(self.net, (1, 3, int(h), int(w)))
        except ValueError as err:  # a network built for another input size says so itself
            raise ValueError(f"model {self.hparams.name!r} cannot run on the crops of {self.codec!r}: {err}") from err
        if outputs is not None:
            self.codec.check_outputs(outputs, self.keypoint_info.num_keypoints, f"model {self.hparams.name!r}")

    @classmethod
    def submission(cls, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        """Official COCO submission of crops: rescoring and OKS-NMS, as configured."""
        return {k: evaluation[k] for k in ("rescore", "in_vis_thr", "use_nms", "oks_thr", "soft_nms")}

    def set_refine(self, refine: Any) -> None:
        """The codec's sub-pixel refinement (its ``refine_modes``)."""
        self.codec.set_refine(refine)

    @staticmethod
    def oracle(codec: TopDownCodec, batches: Iterable[dict]) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The codec ceiling: per batch, (predictions, batch, pictures) with the targets decoded to
        image keypoints in place of a network's output (see `src.tasks.oracle`)."""
        for batch, keypoints in topdown_oracle(codec, batches):
            pictures = dict(zip(batch["sample_id"].tolist(), keypoints))
            yield {"keypoints": torch.from_numpy(keypoints)}, batch, pictures

    # ------------------------------------------------------------------ forward
    def predict_outputs(self, images: torch.Tensor) -> Prediction:
        """The codec's prediction for crops (N, 3, h, w), with the configured flip test."""
        return topdown_prediction(
            self, images, self.codec, flip_index=self.keypoint_info.flip_index, options=self.hparams.evaluation
        )

    def decode(self, prediction: Prediction, batch: dict) -> np.ndarray:
        """Prediction -> keypoints (N, K, 3) [x, y, score] in image pixels."""
        return decode_batch(self.codec, prediction, batch)

    # ------------------------------------------------------------------ steps
    def training_loss(self, batch: dict) -> torch.Tensor:
        outputs = self(batch["image"])
        loss = self.loss_fn(outputs, *self.codec.loss_targets(batch))
        acc = self.codec.accuracy(self.codec.prediction(outputs), batch)
        n = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/acc", acc, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        prediction = self.predict_outputs(batch["image"])
        loss = self.loss_fn(prediction, *self.codec.loss_targets(batch))
        acc = self.codec.accuracy(prediction, batch)
        n = batch["image"].shape[0]
        self.log("val/loss", loss, batch_size=n, sync_dist=True)
        self.log("val/acc", acc, batch_size=n, sync_dist=True)
        keypoints = self.decode(prediction, batch)
        self.val_metric.update({"keypoints": torch.from_numpy(keypoints)}, batch)
        for sid, kpts in zip(batch["sample_id"].tolist(), keypoints):
            self.remember_for_picture(sid, kpts)

    @torch.no_grad()
    def prediction_pictures(self, items: list[dict], *, color_rgb: bool = True) -> list[np.ndarray]:
        """Per validation item (a dataset sample): the crop with the predicted skeleton, next to the
        codec's picture of the prediction over it. BGR uint8, for `PredictionPictures`."""
        images = torch.stack([item["image"] for item in items]).to(self.device)
        prediction = self.predict_outputs(images)
        coords, scores = self.codec.decode(prediction)  # input-crop pixels
        keypoints = torch.cat([coords.cpu(), scores.cpu()[..., None]], dim=-1).numpy()
        pictures = []
        for i, (image, kpts) in enumerate(zip(images, keypoints)):
            crop = denormalize(image)
            if color_rgb:
                crop = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
            skeleton = draw_keypoint_info(crop, kpts, self.keypoint_info, score_thr=0.2, radius=2, thickness=1)
            pictures.append(np.concatenate([skeleton, self.codec.picture(crop, self.codec.one(prediction, i))], axis=1))
        return pictures

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        prediction = self.predict_outputs(batch["image"])
        return {
            "sample_id": batch["sample_id"].cpu(),
            "image_id": batch["image_id"].cpu(),
            "keypoints": torch.from_numpy(self.decode(prediction, batch)),
        }

    @torch.no_grad()
    def infer(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int = 16,
        focal: float | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """People in the person boxes of each image (see `PoseModule.infer`): one crop per box as in
        evaluation, then the COCO submission steps (rescoring by joint confidence and OKS-NMS)."""
        boxes = self.check_boxes(images, boxes)
        input_w, input_h = self.codec.input_size
        k = self.keypoint_info.num_keypoints
        memory, records = {}, []
        for image_id, (image, image_boxes) in enumerate(zip(images, boxes)):
            key = f"<image {image_id}>"
            memory[key] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            for box in image_boxes[np.maximum(image_boxes[:, 2], image_boxes[:, 3]) > 0]:  # no empty boxes
                center, scale = box_xywh_to_center_scale(box[:4], aspect_ratio=input_w / input_h)
                records.append(
                    {
                        "sample_id": len(records),
                        "image_id": image_id,
                        "image_file": key,
                        "center": center,
                        "scale": scale,
                        "area": float(np.prod(scale) * PIXEL_STD**2),
                        "box_score": float(box[4]),
                        "box": box[:4],
                        "keypoints": np.zeros((k, 2), np.float32),
                        "visible": np.zeros(k, np.float32),
                    }
                )
        people = [
            {"keypoints": np.zeros((0, k, 3), np.float32), "scores": np.zeros(0, np.float32), "boxes": np.zeros((0, 4))}
            for _ in images
        ]
        if not records:
            return people
        kpts = np.concatenate(
            [o["keypoints"].numpy() for o in self.predict_crops(records, memory, batch_size=batch_size)]
        )
        ids = np.array([r["image_id"] for r in records])
        ev = self.hparams.evaluation
        box_scores = np.array([r["box_score"] for r in records], np.float32)
        scores = (
            rescore_instances(kpts[:, :, 2], box_scores, in_vis_thr=ev["in_vis_thr"]) if ev["rescore"] else box_scores
        )
        areas = np.array([r["area"] for r in records], np.float32)
        keep = select_instances(
            ids,
            kpts,
            areas,
            scores,
            sigmas=self.keypoint_info.sigmas,
            oks_thr=ev["oks_thr"],
            use_nms=ev["use_nms"],
            soft_nms=ev["soft_nms"],
        )
        all_boxes = np.array([r["box"] for r in records], np.float32).reshape(-1, 4)
        for image_id in range(len(images)):
            chosen = [i for i in keep if ids[i] == image_id]
            people[image_id] = {
                "keypoints": kpts[chosen],
                "scores": scores[chosen].astype(np.float32),
                "boxes": all_boxes[chosen].astype(np.float32),
            }
        return people
