"""Top-down single-person dataset: image + person box -> normalised crop and heatmap targets.

The training augmentation reproduces the official HRNet ``JointsDataset.__getitem__`` in its
order: half-body box (if more than ``half_body_min_joints`` joints are visible and U(0, 1) <
``half_body_prob``), scale jitter s * clip(1 + N(0, 1) sf, 1 - sf, 1 + sf), rotation clip(N(0, 1)
rf, -2 rf, 2 rf) with probability ``rotation_prob`` (else 0), horizontal flip with probability 0.5
(joints mirrored with x <- W - 1 - x and left/right swapped, c_x <- W - 1 - c_x), then one
bilinear ``cv2.warpAffine`` to the codec's input size; joints are mapped with the same matrix.

Two implementation choices that do not change the result:
* the flip is folded into the warp matrix (warping the mirrored image with T equals warping the
  original with T composed with the mirror x -> W - 1 - x), so the full image is never copied;
* the image is read in OpenCV's BGR order and only the small crop is converted to RGB (colour
  conversion and warping commute, both act per pixel / per channel).

One option that does (``data.reduced_decode``, on with the fast path, training only): a JPEG is
decoded at 1/2, 1/4 or 1/8 of its size when the crop shrinks it at least that much, and the crop
is warped from that smaller, area-averaged image (`src.readers.images`); joints and targets are
unchanged.

Shapes: K keypoints; the crop is (h, w) = codec input size, heatmaps (K, H, W).
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
import torch

from src.datasets.base import PoseDataset
from src.geometry import (
    PIXEL_STD,
    affine_transform_points,
    flip_joints,
    half_body_center_scale,
    warp_from_reduced,
)
from src.layouts import KeypointInfo


class TopDownDataset(PoseDataset):
    """Person crops with Gaussian heatmap targets for top-down pose estimation.

    Args:
        records: person records from ``load_coco_records`` (or any reader with the same keys).
        scale_factor: sf of the scale jitter (official HRNet 0.35, SimpleBaseline 0.3).
        rotation_factor: rf of the rotation jitter in degrees (HRNet 45, SimpleBaseline 40).
        rotation_prob: probability of rotating at all (official 0.6).
        flip: random horizontal flip with probability 0.5.
        half_body_prob: probability of the half-body box (HRNet 0.3, SimpleBaseline 0).
        half_body_min_joints: half-body needs strictly more visible joints than this (official 8).
        **common: the arguments of every paradigm's dataset (`PoseDataset`): codec (its
            ``input_size`` is the crop size, ``encode(keypoints, visible)`` the targets merged into
            each item), keypoint_info (flip pairs, upper / lower body ids, K), training, color_rgb,
            photometric, seed, images, reduced_decode, normalize_on_device.

    Items are dicts of tensors:
        image (3, h, w) float32 normalised; the codec's targets (MSRAHeatmap: heatmaps (K, H, W)
        float32, target_weight (K,) float32);
        sample_id () int64; image_id () int64; center (2,) float32 and scale (2,) float32 of the crop
        actually used (after half-body / scale jitter / flip; rotation is not part of them);
        area () float32 padded box area (200 s_x)(200 s_y) of the record; box_score () float32;
        joints (K, 3) float32 ground-truth x, y (image pixels, in the same frame as ``center``,
        i.e. mirrored when the sample was flipped) and visibility. Without augmentation ``joints``
        are the annotation as read.
    """

    @classmethod
    def read_records(cls, reader: Any, *, training: bool, codec: Any, keypoint_info: KeypointInfo) -> list[dict]:
        """Person records (one crop each) of the reader's split."""
        return reader.load_records(
            cls.split(training),
            keypoint_info=keypoint_info,
            aspect_ratio=codec.input_size[0] / codec.input_size[1],
            training=training,
        )

    def __init__(
        self,
        records: list[dict],
        *,
        scale_factor: float = 0.35,
        rotation_factor: float = 45.0,
        rotation_prob: float = 0.6,
        flip: bool = True,
        half_body_prob: float = 0.3,
        half_body_min_joints: int = 8,
        **common: Any,
    ) -> None:
        self.scale_factor = self._fraction("scale_factor", scale_factor)
        self.rotation_factor = self._at_least("rotation_factor", rotation_factor)
        self.rotation_prob = self._probability("rotation_prob", rotation_prob)
        self.flip = bool(flip)
        self.half_body_prob = self._probability("half_body_prob", half_body_prob)
        self.half_body_min_joints = int(self._at_least("half_body_min_joints", half_body_min_joints))
        super().__init__(records, **common)
        self.input_size = (int(self.codec.input_size[0]), int(self.codec.input_size[1]))
        self.aspect_ratio = self.input_size[0] / self.input_size[1]

    def _store(self, records: list[dict]) -> None:
        """Keep the records as a few flat arrays (see `PoseDataset._store`)."""
        k = self.keypoint_info.num_keypoints
        n = len(records)
        for r in records[:1]:
            if np.shape(r["keypoints"]) != (k, 2) or np.shape(r["visible"]) != (k,):
                raise ValueError(
                    f"records have keypoints {np.shape(r['keypoints'])} / visible {np.shape(r['visible'])}, "
                    f"expected ({k}, 2) / ({k},) for layout {self.keypoint_info.name!r}"
                )
        self._image_files = np.array([os.fsencode(r["image_file"]) for r in records], dtype=np.bytes_)
        self._sample_ids = np.fromiter((r["sample_id"] for r in records), dtype=np.int64, count=n)
        self._image_ids = np.fromiter((r["image_id"] for r in records), dtype=np.int64, count=n)
        self._areas = np.fromiter((r["area"] for r in records), dtype=np.float32, count=n)
        self._box_scores = np.fromiter((r["box_score"] for r in records), dtype=np.float32, count=n)
        self._centers = np.array([r["center"] for r in records], dtype=np.float32).reshape(n, 2)
        self._scales = np.array([r["scale"] for r in records], dtype=np.float32).reshape(n, 2)
        self._keypoints = np.array([r["keypoints"] for r in records], dtype=np.float32).reshape(n, k, 2)
        self._visible = np.array([r["visible"] for r in records], dtype=np.float32).reshape(n, k)

    def __len__(self) -> int:
        return len(self._sample_ids)

    def image_files(self) -> dict[int, str]:
        """{sample_id: image path} of every sample (used to draw predictions on the images)."""
        return {int(sid): os.fsdecode(f) for sid, f in zip(self._sample_ids, self._image_files)}

    def _augment(
        self, joints: np.ndarray, visible: np.ndarray, center: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """Official random crop parameters, drawn in the official order. The flip is drawn but
        not applied: it needs the image width, and the image is read after the crop scale is known.

        Args:
            joints: (K, 2) image pixels; visible: (K,); center (2,); scale (2,).

        Returns:
            center (2,), scale (2,), rotation (degrees), flipped.
        """
        rng = self._generator()
        if self.half_body_prob > 0 and visible.sum() > self.half_body_min_joints and rng.random() < self.half_body_prob:
            half = half_body_center_scale(
                joints,
                visible,
                upper_ids=self.keypoint_info.upper_body_ids,
                lower_ids=self.keypoint_info.lower_body_ids,
                aspect_ratio=self.aspect_ratio,
                rng=rng,
            )
            if half is not None:
                center, scale = half
        sf, rf = self.scale_factor, self.rotation_factor
        scale = scale * np.float32(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
        rotation = 0.0
        if rng.random() <= self.rotation_prob:
            rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
        flipped = bool(self.flip and rng.random() <= 0.5)
        return np.asarray(center, np.float32), np.asarray(scale, np.float32), rotation, flipped

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = self._begin_item(key)
        joints = self._keypoints[index]
        visible = self._visible[index]
        center = self._centers[index]
        scale = self._scales[index]
        rotation, flipped = 0.0, False
        if self.training:
            center, scale, rotation, flipped = self._augment(joints, visible, center, scale)
        # BGR, possibly decoded at 1/r of its size (reduced_decode); the crop is converted below
        shrink = float(scale[0]) * PIXEL_STD / self.input_size[0]
        image, reduction, (_, image_width) = self.read_bgr_for_crop(self._image_files[index], shrink)
        if flipped:
            joints, visible = flip_joints(joints, visible, image_width, self._flip_index)
            center = np.array([image_width - 1 - center[0], center[1]], dtype=np.float32)

        trans = self.codec.crop_transform(center, scale, rotation)
        warp = trans
        if flipped:  # T(mirror(x)): mirror(x, y) = (W - 1 - x, y), so the image itself is not flipped
            warp = trans.copy()
            warp[:, 2] += trans[:, 0] * (image_width - 1)
            warp[:, 0] = -trans[:, 0]
        warp = warp_from_reduced(warp, reduction)
        crop = cv2.warpAffine(image, warp, self.input_size, flags=cv2.INTER_LINEAR)
        crop = self.photometric_crop(self.model_channels(crop))

        crop_joints = affine_transform_points(joints, trans)
        targets = self.codec.encode(crop_joints, visible)

        gt = np.empty((len(joints), 3), dtype=np.float32)
        gt[:, :2] = joints
        gt[:, 2] = visible
        return {
            "image": self.image_tensor(crop),
            **{key: torch.from_numpy(np.asarray(value)) for key, value in targets.items()},
            "sample_id": torch.tensor(self._sample_ids[index], dtype=torch.int64),
            "image_id": torch.tensor(self._image_ids[index], dtype=torch.int64),
            "center": torch.tensor(center, dtype=torch.float32),
            "scale": torch.tensor(scale, dtype=torch.float32),
            "area": torch.tensor(self._areas[index], dtype=torch.float32),
            "box_score": torch.tensor(self._box_scores[index], dtype=torch.float32),
            "joints": torch.from_numpy(gt),
        }
