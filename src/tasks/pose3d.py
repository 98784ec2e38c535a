"""LightningModule for root-relative 3D pose by integral regression (3DMPPE PoseNet).

The network maps person crops (N, 3, h, w) to per-joint volumes (N, K * D, H, W); the
`Integral3D` codec turns them into coordinates by soft-argmax (x, y in output pixels, z in depth
bins), trained with an L1 loss against the targets (no depth term for 2D samples). Validation
predicts with the official flip test, back-projects every joint to the camera frame with the
crop box, the root depth and the camera intrinsics of the sample, and hands the camera-frame
joints to the data's metric (MPJPE / PA-MPJPE for Human3.6M).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from src.camera import k_value
from src.codecs.integral_3d import Integral3D
from src.geometry import process_bbox
from src.layouts import root_index
from src.tasks.base import PoseModule
from src.visualization.pictures import denormalize
from src.visualization.skeletons import draw_keypoint_info


def camera_joints(codec: Integral3D, coords: torch.Tensor | np.ndarray, batch: dict) -> np.ndarray:
    """Coordinates (N, K, 3) [x, y output px, z bins] of the crops of ``batch`` -> camera-frame
    joints (N, K, 3) in mm, with the batch's crop boxes, root depths and intrinsics."""
    coords = coords.detach().float().cpu().numpy() if isinstance(coords, torch.Tensor) else np.asarray(coords)

    def values(key: str) -> np.ndarray:
        return batch[key].detach().cpu().numpy().astype(np.float64)

    return codec.to_camera(coords, values("bbox"), values("root_depth"), values("f"), values("c")).astype(np.float32)


def image_keypoints(codec: Integral3D, coords: torch.Tensor | np.ndarray, bbox: torch.Tensor) -> np.ndarray:
    """Coordinates (N, K, 3) -> image keypoints (N, K, 3) [x, y, 1] for drawing."""
    coords = coords.detach().float().cpu().numpy() if isinstance(coords, torch.Tensor) else np.asarray(coords)
    xy = codec.to_image(coords, bbox.detach().cpu().numpy().astype(np.float64))
    return np.concatenate([xy, np.ones((*xy.shape[:2], 1))], axis=-1).astype(np.float32)


class Pose3DModule(PoseModule):
    """3D pose: crops in, soft-argmax coordinates out, the data's 3D metric on validation.

    Arguments are those of `PoseModule`; ``codec`` configures an `Integral3D`, ``loss`` an
    `IntegralL1Loss`, and ``evaluation`` holds flip_test (official: on).
    """

    paradigm = "pose3d"
    default_evaluation = {"flip_test": True}
    test_options = ("flip_test",)
    needs_boxes = True
    output_3d = True
    codec: Integral3D

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self._root = root_index(self.keypoint_info)
        depth_dim = getattr(self.net, "depth_dim", self.codec.depth_dim)
        if depth_dim != self.codec.depth_dim:
            raise ValueError(
                f"net.depth_dim={depth_dim} but codec.depth_dim={self.codec.depth_dim}: the codec must read the "
                "volumes the network writes"
            )

    @staticmethod
    def oracle(codec: Integral3D, batches: Iterable[dict]) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The codec ceiling: the coordinate targets back-projected in place of a network's output.
        Checks the whole chain of crop, depth normalisation and camera geometry."""
        for batch in batches:
            joints = camera_joints(codec, batch["coords"], batch)
            keypoints = image_keypoints(codec, batch["coords"], batch["bbox"])
            pictures = dict(zip(batch["sample_id"].tolist(), keypoints))
            yield {"joints_cam": torch.from_numpy(joints)}, batch, pictures

    @staticmethod
    def mean_pose(train_dataset: Any, batches: Iterable[dict]) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The mean-pose baseline: every validation sample predicted as the mean root-relative
        camera-frame pose of the 3D training records (no image seen). The reference a trained model
        must beat: MPJPE below it measures what the network reads from the images."""
        cam = train_dataset.camera_joints_3d()
        if not len(cam):
            raise ValueError("the mean-pose baseline needs 3D training records; the training split has none")
        root = root_index(train_dataset.keypoint_info)
        mean = (cam - cam[:, root : root + 1]).mean(axis=0)  # (K, 3) root-relative
        for batch in batches:
            n = batch["joints_cam"].shape[0]
            yield {"joints_cam": torch.from_numpy(np.broadcast_to(mean, (n, *mean.shape)).copy())}, batch, {}

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def predict_coords(self, images: torch.Tensor) -> torch.Tensor:
        """Coordinates (N, K, 3) with the configured flip test (official: mean of the prediction and
        the mirrored prediction on the mirrored crop)."""
        coords = self.codec.decode(self(images))
        if self.hparams.evaluation["flip_test"]:
            flipped = self.codec.decode(self(torch.flip(images, dims=[3])))
            coords = 0.5 * (coords + self.codec.flip_back(flipped, self.keypoint_info.flip_index))
        return coords

    # ------------------------------------------------------------------ steps
    def training_loss(self, batch: dict) -> torch.Tensor:
        coords = self.codec.decode(self(batch["image"]))
        loss = self.loss_fn(coords, batch["coords"], batch["coord_weight"], batch["have_depth"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        coords = self.predict_coords(batch["image"])
        loss = self.loss_fn(coords, batch["coords"], batch["coord_weight"], batch["have_depth"])
        self.log("val/loss", loss, batch_size=batch["image"].shape[0], sync_dist=True)
        joints = camera_joints(self.codec, coords, batch)
        self.val_metric.update({"joints_cam": torch.from_numpy(joints)}, batch)
        if self.num_visualized:
            keypoints = image_keypoints(self.codec, coords, batch["bbox"])
            for sid, kpts in zip(batch["sample_id"].tolist(), keypoints):
                self.remember_for_picture(sid, kpts)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Root-relative camera-frame joints (N, K, 3) mm and image keypoints (N, K, 3) of the crops."""
        coords = self.predict_coords(batch["image"])
        joints = camera_joints(self.codec, coords, batch)
        return {
            "sample_id": batch["sample_id"].cpu(),
            "image_id": batch["image_id"].cpu(),
            "joints_cam": torch.from_numpy(joints - joints[:, self._root : self._root + 1]),
            "keypoints": torch.from_numpy(image_keypoints(self.codec, coords, batch["bbox"])),
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
        """Root-relative 3D joints of the person in each box (see `PoseModule.infer`).

        Images carry no calibration and no root depth, so the back-projection makes one defined
        choice: focal length ``focal`` (default the image width), principal point at the image
        centre, and the root at the depth where the model's 3D box (``bbox_3d_depth`` mm) fills the
        crop box, ``Z = f * bbox_3d_depth / sqrt(w h)`` (RootNet's k-value without its learned
        correction). Root-relative x and y scale with Z / f, which does not depend on ``f``.
        """
        boxes = self.check_boxes(images, boxes)
        input_w, input_h = self.codec.input_size
        k = self.keypoint_info.num_keypoints
        depth_3d = float(self.codec.bbox_3d_depth)
        memory, records = {}, []
        for image_id, (image, image_boxes) in enumerate(zip(images, boxes)):
            key = f"<image {image_id}>"
            memory[key] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            height, width = image.shape[:2]
            f = float(focal) if focal else float(width)
            crops, keep = process_bbox(image_boxes[:, :4], width, height, input_w / input_h)
            for box, crop in zip(image_boxes[keep], crops[keep]):
                records.append(
                    {
                        "sample_id": len(records),
                        "image_id": image_id,
                        "image_file": key,
                        "bbox": crop.astype(np.float32),
                        "joints_img": np.zeros((k, 3), np.float32),
                        "joints_cam": np.zeros((k, 3), np.float32),
                        "visible": np.zeros(k, np.float32),
                        "root_depth": float(k_value(crop, (f, f), (depth_3d, depth_3d))),
                        "f": np.array([f, f], np.float32),
                        "c": np.array([(width - 1) / 2, (height - 1) / 2], np.float32),
                        "have_depth": 0.0,
                        "box": box,
                    }
                )
        outputs = list(self.predict_crops(records, memory, batch_size=batch_size)) if records else []
        joints = np.concatenate([o["joints_cam"].numpy() for o in outputs]) if outputs else np.zeros((0, k, 3))
        kpts = np.concatenate([o["keypoints"].numpy() for o in outputs]) if outputs else np.zeros((0, k, 3))
        people = []
        for image_id in range(len(images)):
            chosen = [i for i, r in enumerate(records) if r["image_id"] == image_id]
            mine = [records[i] for i in chosen]
            people.append(
                {
                    "keypoints": kpts[chosen].astype(np.float32),
                    "scores": np.array([r["box"][4] for r in mine], np.float32),
                    "boxes": np.array([r["box"][:4] for r in mine], np.float32).reshape(-1, 4),
                    "joints_3d": joints[chosen].astype(np.float32),
                    "root_depth": np.array([r["root_depth"] for r in mine], np.float32),
                    "focal": np.array([r["f"][0] for r in mine], np.float32),
                }
            )
        return people

    @torch.no_grad()
    def prediction_pictures(self, items: list[dict], *, color_rgb: bool = True) -> list[np.ndarray]:
        """Per validation item: the crop with the predicted 2D skeleton (BGR uint8)."""
        images = torch.stack([item["image"] for item in items]).to(self.device)
        coords = self.predict_coords(images).float().cpu().numpy()
        stride = np.array(self.codec.input_size, np.float32) / np.array(self.codec.output_size, np.float32)
        pictures = []
        for image, c in zip(images, coords):
            crop = denormalize(image)
            if color_rgb:
                crop = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
            kpts = np.concatenate([c[:, :2] * stride, np.ones((len(c), 1), np.float32)], axis=1)
            pictures.append(draw_keypoint_info(crop, kpts, self.keypoint_info, score_thr=0.2, radius=2, thickness=1))
        return pictures
