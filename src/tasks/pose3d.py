"""LightningModule of the 3D paradigm: person crops in, camera-frame 3D out (3DMPPE PoseNet and RootNet).

The task knows the 3D crop codec contract (`src.codecs.crop_3d`) and nothing of a particular
codec: the network reads the crops (and the codec's extra inputs, RootNet's k-value), the codec
decodes its outputs to coordinates, trained with the 3DMPPE L1 loss against the codec's targets
(no depth term for 2D samples). Validation predicts with the configured flip test, goes back to
the camera with the crop box, the root depth and the intrinsics of each sample, and hands the
codec's predictions to the data's metric: root-relative joints for PoseNet (`Integral3D`, MPJPE /
PA-MPJPE on Human3.6M, 3DPCK on MuPoTS-3D), absolute roots for RootNet (`RootDepth`, MRPE,
AP_root). RootNet is therefore a mode of this paradigm, not a paradigm of its own: same records,
crops, augmentation and loss, another codec and network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from src.camera import k_value
from src.codecs.crop_3d import Crop3DCodec
from src.geometry import process_bbox
from src.layouts import root_index
from src.tasks.base import PoseModule
from src.visualization.pictures import denormalize
from src.visualization.skeletons import draw_keypoint_info


def camera_points(codec: Crop3DCodec, coords: torch.Tensor | np.ndarray, batch: dict) -> np.ndarray:
    """Coordinates (N, J, 3) of the crops of ``batch`` -> camera-frame points (N, J, 3) in mm, with the
    batch's crop boxes, root depths and intrinsics."""
    coords = coords.detach().float().cpu().numpy() if isinstance(coords, torch.Tensor) else np.asarray(coords)

    def values(key: str) -> np.ndarray:
        return batch[key].detach().cpu().numpy().astype(np.float64)

    return codec.to_camera(coords, values("bbox"), values("root_depth"), values("f"), values("c")).astype(np.float32)


def image_points(codec: Crop3DCodec, coords: torch.Tensor | np.ndarray, bbox: torch.Tensor) -> np.ndarray:
    """Coordinates (N, J, 3) -> image points (N, J, 2) float64."""
    return codec.to_image(coords, bbox.detach().cpu().numpy().astype(np.float64))


def with_scores(points: np.ndarray) -> np.ndarray:
    """(N, J, 2) image points -> (N, J, 3) [x, y, 1] for drawing."""
    return np.concatenate([points, np.ones((*points.shape[:2], 1))], axis=-1).astype(np.float32)


def codec_predictions(codec: Crop3DCodec, coords: torch.Tensor | np.ndarray, batch: dict) -> dict[str, torch.Tensor]:
    """What the data's metric receives for the crops of ``batch`` (the codec's `predictions`)."""
    return codec.predictions(camera_points(codec, coords, batch), image_points(codec, coords, batch["bbox"]))


class Pose3DModule(PoseModule):
    """3D from crops: the codec's coordinates out, the data's 3D metric on validation.

    Arguments are those of `PoseModule`; ``codec`` configures a 3D crop codec (`Integral3D` for
    PoseNet, `RootDepth` for RootNet), ``loss`` an `IntegralL1Loss`, and ``evaluation`` holds
    flip_test (official: on for PoseNet, off for RootNet).
    """

    paradigm = "pose3d"
    default_evaluation = {"flip_test": True}
    test_options = ("flip_test",)
    needs_boxes = True
    output_3d = True
    codec: Crop3DCodec

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self._root = root_index(self.keypoint_info)
        self.codec.check_network(self.net)

    @property
    def predicts_joints(self) -> bool:
        """True for a model of the whole pose (PoseNet), False for one of the root alone (RootNet)."""
        return self.codec.prediction_key == "joints_cam"

    @staticmethod
    def oracle(codec: Crop3DCodec, batches: Iterable[dict]) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The codec ceiling: the coordinate targets back-projected in place of a network's output.
        Checks the whole chain of crop, depth normalisation and camera geometry."""
        for batch in batches:
            pictures = {}
            if codec.prediction_key == "joints_cam":  # skeletons to draw (a root alone is not one)
                points = image_points(codec, batch["coords"], batch["bbox"])
                pictures = dict(zip(batch["sample_id"].tolist(), with_scores(points)))
            yield codec_predictions(codec, batch["coords"], batch), batch, pictures

    @staticmethod
    def baseline(
        codec: Crop3DCodec, train_dataset: Any, batches: Iterable[dict]
    ) -> Iterator[tuple[dict, dict, dict[int, np.ndarray]]]:
        """The codec's baseline without a network (`Crop3DCodec.baseline`: the mean training pose for
        PoseNet, the k-value for RootNet): the reference a trained model must beat."""
        batches = list(batches)
        for predictions, batch in zip(codec.baseline(train_dataset, batches), batches):
            yield predictions, batch, {}

    # ------------------------------------------------------------------ forward
    def outputs(self, images: torch.Tensor, batch: dict) -> torch.Tensor:
        """The network on crops, with the codec's extra inputs from ``batch`` (RootNet's k-value)."""
        inputs = tuple(x.to(images.device) for x in self.codec.network_inputs(batch))
        return self(images, *inputs)

    @torch.no_grad()
    def predict_coords(self, images: torch.Tensor, batch: dict) -> torch.Tensor:
        """Coordinates (N, J, 3) with the configured flip test (official PoseNet: the mean of the
        prediction and the flipped-back prediction on the mirrored crop)."""
        coords = self.codec.decode(self.outputs(images, batch))
        if self.hparams.evaluation["flip_test"]:
            flipped = self.codec.decode(self.outputs(torch.flip(images, dims=[3]), batch))
            coords = 0.5 * (coords + self.codec.flip_back(flipped, self.keypoint_info.flip_index))
        return coords

    # ------------------------------------------------------------------ steps
    def training_loss(self, batch: dict) -> torch.Tensor:
        coords = self.codec.decode(self.outputs(batch["image"], batch))
        loss = self.loss_fn(coords, batch["coords"], batch["coord_weight"], batch["have_depth"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        coords = self.predict_coords(batch["image"], batch)
        loss = self.loss_fn(coords, batch["coords"], batch["coord_weight"], batch["have_depth"])
        self.log("val/loss", loss, batch_size=batch["image"].shape[0], sync_dist=True)
        self.val_metric.update(codec_predictions(self.codec, coords, batch), batch)
        if self.num_visualized and self.predicts_joints:
            points = with_scores(image_points(self.codec, coords, batch["bbox"]))
            for sid, kpts in zip(batch["sample_id"].tolist(), points):
                self.remember_for_picture(sid, kpts)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Per crop: camera-frame points (N, J, 3) mm ("camera": absolute, at the batch's root depth
        for PoseNet, at the predicted depth for RootNet) and image points (N, J, 3) [x, y, 1]."""
        coords = self.predict_coords(batch["image"], batch)
        return {
            "sample_id": batch["sample_id"].cpu(),
            "image_id": batch["image_id"].cpu(),
            "camera": torch.from_numpy(camera_points(self.codec, coords, batch)),
            "keypoints": torch.from_numpy(with_scores(image_points(self.codec, coords, batch["bbox"]))),
        }

    @torch.no_grad()
    def infer(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int = 16,
        focal: float | None = None,
        root_depths: Sequence[np.ndarray] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """The 3D of the person in each box (see `PoseModule.infer`).

        Images carry no calibration: the focal length is ``focal`` (default the image width) and
        the principal point the image centre. The root depth of each box is ``root_depths`` (per
        image, (B,) mm, e.g. a RootNet's prediction) or else the k-value, the depth at which a
        2 m x 2 m box fills the crop box, ``Z = f * 2000 / sqrt(w h)`` (RootNet's prior without its
        learned correction). Root-relative x and y scale with Z / f, which does not depend on ``f``.

        Returns per image: "keypoints" (P, K, 3) image points, "scores" and "boxes" of the boxes,
        "box_index" (P,) their places in ``boxes`` (boxes empty after clipping are left out),
        "focal" (P,), and for PoseNet "joints_3d" (P, K, 3) root-relative, "joints_cam" (P, K, 3)
        absolute camera-frame joints (mm) and "root_depth" (P,) the depth used; for RootNet
        "root_cam" (P, 3) the predicted camera-frame roots and "root_depth" (P,) their depth.
        """
        boxes = self.check_boxes(images, boxes)
        if root_depths is not None and len(root_depths) != len(boxes):
            raise ValueError(f"root_depths lists {len(root_depths)} images for {len(boxes)} images")
        input_w, input_h = self.codec.input_size
        k = self.keypoint_info.num_keypoints
        memory, records = {}, []
        for image_id, (image, image_boxes) in enumerate(zip(images, boxes)):
            key = f"<image {image_id}>"
            memory[key] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            height, width = image.shape[:2]
            f = float(focal) if focal else float(width)
            crops, keep = process_bbox(image_boxes[:, :4], width, height, input_w / input_h)
            depths = k_value(crops, (f, f)) if root_depths is None else np.asarray(root_depths[image_id], np.float64)
            if len(depths) != len(image_boxes):
                raise ValueError(f"image {image_id}: {len(depths)} root depths for {len(image_boxes)} boxes")
            for index in np.flatnonzero(keep):
                box, crop, depth = image_boxes[index], crops[index], depths[index]
                records.append(
                    {
                        "sample_id": len(records),
                        "box_index": int(index),
                        "image_id": image_id,
                        "image_file": key,
                        "bbox": crop.astype(np.float32),
                        "joints_img": np.zeros((k, 3), np.float32),
                        "joints_cam": np.zeros((k, 3), np.float32),
                        "visible": np.zeros(k, np.float32),
                        "root_depth": float(depth),
                        "f": np.array([f, f], np.float32),
                        "c": np.array([(width - 1) / 2, (height - 1) / 2], np.float32),
                        "have_depth": 0.0,
                        "box": box,
                    }
                )
        outputs = list(self.predict_crops(records, memory, batch_size=batch_size)) if records else []
        j = k if self.predicts_joints else 1
        camera = np.concatenate([o["camera"].numpy() for o in outputs]) if outputs else np.zeros((0, j, 3))
        kpts = np.concatenate([o["keypoints"].numpy() for o in outputs]) if outputs else np.zeros((0, j, 3))
        people = []
        for image_id in range(len(images)):
            chosen = [i for i, r in enumerate(records) if r["image_id"] == image_id]
            mine = [records[i] for i in chosen]
            found = {
                "box_index": np.array([r["box_index"] for r in mine], np.int64),
                "keypoints": kpts[chosen].astype(np.float32),
                "scores": np.array([r["box"][4] for r in mine], np.float32),
                "boxes": np.array([r["box"][:4] for r in mine], np.float32).reshape(-1, 4),
                "focal": np.array([r["f"][0] for r in mine], np.float32),
            }
            mine_camera = camera[chosen].astype(np.float32)
            if self.predicts_joints:
                found["joints_cam"] = mine_camera
                found["joints_3d"] = mine_camera - mine_camera[:, self._root : self._root + 1]
                found["root_depth"] = np.array([r["root_depth"] for r in mine], np.float32)
            else:
                found["root_cam"] = mine_camera[:, 0]
                found["root_depth"] = mine_camera[:, 0, 2].copy()
            people.append(found)
        return people

    @torch.no_grad()
    def prediction_pictures(self, items: list[dict], *, color_rgb: bool = True) -> list[np.ndarray]:
        """Per validation item: the crop with the predicted 2D skeleton, or root (BGR uint8)."""
        batch = {key: torch.stack([item[key] for item in items]) for key in ("image", *self.codec.input_keys)}
        images = batch["image"].to(self.device)
        coords = self.predict_coords(images, batch).float().cpu().numpy()
        stride = np.array(self.codec.input_size, np.float32) / np.array(self.codec.output_size, np.float32)
        pictures = []
        for image, c in zip(images, coords):
            crop = denormalize(image)
            if color_rgb:
                crop = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
            points = c[:, :2] * stride
            if self.predicts_joints:
                kpts = np.concatenate([points, np.ones((len(c), 1), np.float32)], axis=1)
                crop = draw_keypoint_info(crop, kpts, self.keypoint_info, score_thr=0.2, radius=2, thickness=1)
            else:
                x, y = (int(round(float(v))) for v in points[0])
                cv2.circle(crop, (x, y), 3, (0, 0, 255), -1, lineType=cv2.LINE_AA)
                cv2.putText(crop, f"{c[0, 2] / 1000:.2f} m", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 255), 1)
            pictures.append(crop)
        return pictures
