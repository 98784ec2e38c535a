"""LightningModule for bottom-up models with associative embedding (HigherHRNet).

Training: whole (augmented, square) images in, heatmaps at every output resolution and tag
maps at the first, masked heatmap loss + AE push/pull loss. Validation: every image resized
as official (short side to the input size, long side to a multiple of 64), optional flip and
multi-scale test, grouping by tags, COCO AP without rescoring or OKS-NMS.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from src.codecs.associative_embedding import AssociativeEmbedding
from src.codecs.bottomup_test_time import get_multi_stage_outputs, infer_batch, resize_align_multi_scale
from src.datasets.transforms import normalize_image
from src.geometry import keypoint_boxes
from src.tasks.base import PoseModule
from src.tasks.oracle import bottomup_oracle
from src.visualization.maps import heatmap_overlay
from src.visualization.skeletons import draw_keypoint_info


class BottomUpPoseModule(PoseModule):
    """Bottom-up 2D pose: images in, grouped people out, COCO keypoint AP on validation.

    Arguments are those of `PoseModule`; ``codec`` configures an AssociativeEmbedding codec,
    ``evaluation`` holds flip_test, test_scales (e.g. [0.5, 1, 2]) and project2image, and
    ``color_rgb`` says whether the network sees RGB (official) or BGR images.
    """

    paradigm = "bottomup"
    default_evaluation = {"flip_test": True, "test_scales": [1.0], "project2image": True}
    test_options = ("flip_test", "test_scales")
    codec: AssociativeEmbedding

    def __init__(self, *, color_rgb: bool = True, **common: Any) -> None:
        super().__init__(color_rgb=color_rgb, **common)
        net = self.hparams.net
        net_per_joint = bool(net.get("tag_per_joint", True))
        if net_per_joint != self.codec.tag_per_joint:
            raise ValueError(
                f"net.tag_per_joint={net_per_joint} but codec.tag_per_joint={self.codec.tag_per_joint}: "
                "the tag targets must index the tag maps the network outputs"
            )
        #: per network output, whether it carries tag maps (official TEST.WITH_AE follows them).
        self.tag_outputs = tuple(c > self.net.num_joints for c in self.net.output_channels)
        if tuple(self.loss_fn.with_ae_loss) != self.tag_outputs:
            raise ValueError(
                f"net.with_ae_loss={list(self.tag_outputs)} but loss.with_ae_loss={list(self.loss_fn.with_ae_loss)}: "
                "the AE loss must be applied to the outputs that carry tag maps"
            )

    @classmethod
    def submission(cls, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        """Every grouped person is submitted with its grouping score (official: no rescoring, no NMS)."""
        return {"rescore": False, "use_nms": False}

    def set_refine(self, refine: Any) -> None:
        """true | false: the grouping's refine step."""
        self.codec.parser.refine_default = bool(refine)

    def set_test_options(self, **options: Any) -> None:
        if options.get("test_scales") is not None:
            options["test_scales"] = [float(v) for v in options["test_scales"]]
        super().set_test_options(**options)

    @staticmethod
    def oracle(
        codec: AssociativeEmbedding, batches: Iterable[dict]
    ) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The codec ceiling: per image, (predictions, batch, pictures) with the ground truth
        rendered to heatmaps and tags and grouped, in place of a network's output."""
        for batch in batches:
            for image_id, joints, width, height in zip(
                batch["image_id"], batch["joints"], batch["width"], batch["height"]
            ):
                people, scores = bottomup_oracle(codec, joints, int(width), int(height))
                if len(people) == 0:
                    continue
                yield _people_predictions(int(image_id), people, scores), batch, {int(image_id): people}

    # ------------------------------------------------------------------ forward
    def _normalize(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> normalised (3, H, W) float32, in the channel order the net was trained on."""
        if not self.hparams.color_rgb:
            image = image[:, :, ::-1]
        return normalize_image(np.ascontiguousarray(image))

    @torch.no_grad()
    def predict_people(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """RGB images (H, W, 3) uint8 -> per image (people (P, K, 3) [x, y, score] in image px, scores (P,))."""
        ev = self.hparams.evaluation
        return infer_batch(
            self,
            images,
            input_size=self.codec.input_size,
            test_scales=list(ev["test_scales"]),
            flip_test=ev["flip_test"],
            flip_index=self.keypoint_info.flip_index,
            parser=self.codec.parser,
            normalize=self._normalize,
            project2image=ev["project2image"],
            with_ae=self.tag_outputs,
        )

    def infer(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int = 16,
        focal: float | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """The people found by grouping in each image (see `PoseModule.infer`; ``boxes`` is not
        used). A person's box spans its keypoints scoring at least the detection threshold."""
        thr = float(self.codec.parser.detection_threshold)
        people = []
        for start in range(0, len(images), batch_size):
            for found, scores in self.predict_people(list(images[start : start + batch_size])):
                kpts = np.asarray(found[:, :, :3], np.float32).reshape(len(found), self.keypoint_info.num_keypoints, 3)
                people.append(
                    {
                        "keypoints": kpts,
                        "scores": np.asarray(scores, np.float32),
                        "boxes": keypoint_boxes(kpts, min_score=thr),
                    }
                )
        return people

    # ------------------------------------------------------------------ steps
    def training_loss(self, batch: dict) -> torch.Tensor:
        outputs = self(batch["image"])
        stages = range(len(self.codec.output_sizes))
        total, parts = self.loss_fn(
            outputs,
            [batch[f"heatmaps_{i}"] for i in stages],
            [batch[f"masks_{i}"] for i in stages],
            [batch[f"joints_{i}"] for i in stages],
        )
        n = batch["image"].shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=n)
        for key, value in parts.items():
            self.log(f"train/{key}", value, batch_size=n)
        return total

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        for image_id, (people, scores) in zip(batch["image_id"], self.predict_people(batch["image"])):
            if len(people) == 0:
                continue
            predictions = _people_predictions(int(image_id), people, scores)
            self.val_metric.update(predictions, batch)
            self.remember_for_picture(int(image_id), predictions["keypoints"].numpy())

    @torch.no_grad()
    def prediction_pictures(self, items: list[dict], *, color_rgb: bool = True) -> list[np.ndarray]:
        """Per validation item (a whole image): the grouped skeletons, next to the heatmaps of the
        network at test scale 1 blended over the image. BGR uint8, for `PredictionPictures`."""
        people = self.predict_people([item["image"] for item in items])
        pictures = []
        for item, (kpts, _) in zip(items, people):
            image = item["image"]
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # validation images are RGB whatever the model sees
            drawn = draw_keypoint_info(bgr, kpts[:, :, :3], self.keypoint_info, score_thr=0.1) if len(kpts) else bgr
            resized, _, _ = resize_align_multi_scale(image, self.codec.input_size, 1.0, 1.0)
            heatmaps, _ = get_multi_stage_outputs(
                self,
                self._normalize(resized)[None].to(self.device),
                flip_test=False,
                flip_index=self.keypoint_info.flip_index,
                project2image=False,
                size_projected=None,
                num_joints=self.keypoint_info.num_keypoints,
            )
            overlay = heatmap_overlay(cv2.resize(bgr, (resized.shape[1], resized.shape[0])), heatmaps[0][0])
            overlay = cv2.resize(overlay, (bgr.shape[1], bgr.shape[0]))
            pictures.append(np.concatenate([drawn, overlay], axis=1))
        return pictures

    def predict_step(self, batch: dict, batch_idx: int) -> list[dict]:
        predictions = self.predict_people(batch["image"])
        return [
            {"image_id": int(image_id), "image_file": image_file, "people": people[:, :, :3], "scores": scores}
            for image_id, image_file, (people, scores) in zip(batch["image_id"], batch["image_file"], predictions)
        ]


def _people_predictions(image_id: int, people: np.ndarray, scores: np.ndarray) -> dict[str, torch.Tensor]:
    """The people (P, K, 3+) found in one image as metric predictions: keypoints (P, K, 3), and
    per person the image id (also its sample id), unit area and grouping score."""
    ids = torch.full((len(people),), image_id, dtype=torch.long)
    return {
        "keypoints": torch.from_numpy(np.ascontiguousarray(people[:, :, :3], dtype=np.float32)),
        "sample_id": ids,
        "image_id": ids,
        "area": torch.ones(len(people)),
        "box_score": torch.from_numpy(np.asarray(scores, dtype=np.float32)),
    }
