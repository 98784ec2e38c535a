"""Bottom-up (HigherHRNet) dataset: whole images -> input crop, multi-resolution targets and masks.

Training follows the official HigherHRNet pipeline (``lib/dataset/transforms``: RandomAffineTransform,
then RandomHorizontalFlip; ``lib/dataset/COCOKeypoints.py``):

* one random affine per image, shared by the input and every output resolution: centre = image
  centre (w / 2, h / 2); scale = short (or long) side / 200, times U(min_scale, max_scale);
  rotation U(-max_rotation, max_rotation) degrees; translation dx, dy = randint(-t s, t s) pixels
  (numpy ``randint`` bounds, truncated toward zero, upper bound exclusive) with t = max_translate
  and s the scale after the jitter. The square source box of side 200 s around the shifted centre
  is mapped to res x res, rotated about the output centre (``bottomup_affine``);
* the image is warped to ``input_size`` (bilinear, black border); the loss mask (1 outside the
  ignore regions, 0 inside and outside the image) is warped as uint8 0 / 255 to each output size
  and thresholded at 0.5; joints are mapped with the same matrices;
* then, with probability ``flip``, the crop and the masks are mirrored, joint channels are
  re-indexed with ``keypoint_info.flip_index`` and x <- res - 1 - x at every resolution;
* targets: the codec's ``encode`` of the joints at every output resolution (heatmaps of the
  joints with v > 0 inside [0, res), tag indices).

The image is read in OpenCV's BGR order and only the crop is converted to RGB (warping and
colour conversion commute). Validation items are the whole image as read (no resizing: the
bottom-up inference resizes per image and per test scale) with the ground truth.

Shapes: K keypoints, M people in an image, P = ``max_num_people``, S an output size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from src.datasets.base import PoseDataset
from src.layouts import KeypointInfo
from src.readers.coco_images import decode_ignore_mask

__all__ = ["BottomUpDataset", "bottomup_affine", "collate_bottomup_val"]

# official scale-aware sigma constants (DATASET.BASE_SIZE, DATASET.BASE_SIGMA; INT_SIGMA False)
SCALE_AWARE_BASE_SIZE = 256.0
SCALE_AWARE_BASE_SIGMA = 2.0


def bottomup_affine(center: Sequence[float], scale: float, rot: float, res: int) -> np.ndarray:
    """Official HigherHRNet ``_get_affine_matrix``: image -> (res, res) output, as a (2, 3) float64.

    The square of side h = 200 ``scale`` centred on ``center`` maps onto the output
    (x_out = res / h (x - c) + res / 2); a rotation by ``rot`` degrees (counter-clockwise content,
    as the top-down crop) is then applied about the output centre (res / 2, res / 2).
    """
    h = 200.0 * float(scale)
    t = np.zeros((3, 3))
    t[0, 0] = res / h
    t[1, 1] = res / h
    t[0, 2] = res * (-float(center[0]) / h + 0.5)
    t[1, 2] = res * (-float(center[1]) / h + 0.5)
    t[2, 2] = 1.0
    if rot != 0:
        rad = -float(rot) * np.pi / 180.0
        sn, cs = np.sin(rad), np.cos(rad)
        rot_mat = np.array([[cs, -sn, 0.0], [sn, cs, 0.0], [0.0, 0.0, 1.0]])
        to_origin = np.eye(3)
        to_origin[:2, 2] = -res / 2.0
        back = np.eye(3)
        back[:2, 2] = res / 2.0
        t = back @ rot_mat @ to_origin @ t
    return t[:2]


def _transform(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (..., 2) float64 through a (2, 3) affine matrix."""
    return points @ mat[:, :2].T + mat[:, 2]


def collate_bottomup_val(batch: Sequence[dict]) -> dict[str, list]:
    """Validation collate: images of different sizes cannot be stacked, so every key becomes a list.

    Args:
        batch: validation items of ``BottomUpDataset``.

    Returns:
        {key: [value of item 0, value of item 1, ...]} for every key of the items.
    """
    if not batch:
        return {}
    return {key: [item[key] for item in batch] for key in batch[0]}


class BottomUpDataset(PoseDataset):
    """Whole-image samples with HigherHRNet heatmap / tag targets and loss masks.

    Args:
        records: image records from ``load_coco_images`` (image_id, image_file, width, height,
            joints (M, K, 3), box_sizes (M,), ignore_rle).
        max_rotation, min_scale, max_scale, scale_type ("short" | "long"), max_translate: the
            random affine (see the module docstring).
        flip: probability of the horizontal flip.
        **common: the arguments of every paradigm's dataset (`PoseDataset`): codec (the
            associative-embedding codec shared with the model: its ``input_size`` (side of the
            square network input), ``output_sizes``, ``scale_aware_sigma`` and ``encode``, the
            heatmap and tag targets; P = its ``max_num_people``), keypoint_info (K, flip_index),
            training (random augmentation and targets; otherwise whole images for evaluation),
            color_rgb, photometric, seed, images, normalize_on_device. With the codec's
            ``scale_aware_sigma``, each person's sigma = max(box w, h) / 256 * 2 / scale jitter
            (official option, off in the released configs) goes to the codec as a 4th joint column.

    Training items (dicts of tensors; i indexes ``output_sizes``):
        image (3, input_size, input_size) float32 normalised; heatmaps_i (K, S_i, S_i) float32;
        masks_i (S_i, S_i) float32 (1 = counted by the loss); joints_i (P, K, 2) int64
        [k S_i^2 + y S_i + x, flag] (y S_i + x with one shared tag map); image_id () int64.
    Validation items:
        image (H, W, 3) uint8 numpy array, always RGB (the model's inference puts the channels in
        the order it was trained on, as for any RGB image it is given), image_id int, image_file str,
        width int, height int, joints (M, K, 3) float32 numpy array (x, y, v in image pixels).
        Batch them with ``collate_bottomup_val``.
    """

    @classmethod
    def read_records(cls, reader: Any, *, training: bool, codec: Any, keypoint_info: KeypointInfo) -> list[dict]:
        """Whole-image records (every person, ignore regions) of the reader's split."""
        if not hasattr(reader, "load_images"):
            raise ValueError(
                f"data={reader.name} annotates single people, not every person of an image: it has no "
                "whole-image records for bottom-up models"
            )
        return reader.load_images(cls.split(training), keypoint_info=keypoint_info, training=training)

    def collate_fn(self) -> Callable[[Sequence[dict]], dict] | None:
        """Validation images keep their own sizes: they travel as lists (`collate_bottomup_val`)."""
        return None if self.training else collate_bottomup_val

    def __init__(
        self,
        records: list[dict],
        *,
        max_rotation: float = 30.0,
        min_scale: float = 0.75,
        max_scale: float = 1.5,
        scale_type: str = "short",
        max_translate: float = 40.0,
        flip: float = 0.5,
        **common: Any,
    ) -> None:
        if scale_type not in ("short", "long"):
            raise ValueError(f"{type(self).__name__}: scale_type must be 'short' or 'long', got {scale_type!r}")
        if not 0 < float(min_scale) <= float(max_scale):
            raise ValueError(
                f"{type(self).__name__}: need 0 < min_scale <= max_scale, got {min_scale!r}, {max_scale!r}"
            )
        self.max_rotation = self._at_least("max_rotation", max_rotation)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.scale_type = scale_type
        self.max_translate = self._at_least("max_translate", max_translate)
        self.flip = self._probability("flip", flip)
        super().__init__(records, **common)
        self.input_size = int(self.codec.input_size)
        self.output_sizes = tuple(int(s) for s in self.codec.output_sizes)
        self.scale_aware_sigma = bool(self.codec.scale_aware_sigma)

    # ------------------------------------------------------------------ storage
    def _store(self, records: list[dict]) -> None:
        """Keep the records as a few flat arrays, people and RLE bytes concatenated with offsets
        (see `PoseDataset._store`)."""
        k = self.keypoint_info.num_keypoints
        n = len(records)
        for r in records:
            shape = np.shape(r["joints"])
            if len(shape) != 3 or shape[1:] != (k, 3):
                raise ValueError(
                    f"record of image {r.get('image_id')!r} has joints {shape}, expected (M, {k}, 3) for "
                    f"layout {self.keypoint_info.name!r}"
                )
        self._image_files = np.array([os.fsencode(r["image_file"]) for r in records], dtype=np.bytes_)
        self._image_ids = np.fromiter((r["image_id"] for r in records), dtype=np.int64, count=n)
        self._sizes = np.array([(r["width"], r["height"]) for r in records], dtype=np.int64).reshape(n, 2)
        counts = np.fromiter((len(r["joints"]) for r in records), dtype=np.int64, count=n)
        self._person_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._joints = (
            np.concatenate([np.asarray(r["joints"], np.float32) for r in records])
            if n
            else np.zeros((0, k, 3), np.float32)
        ).reshape(-1, k, 3)
        self._box_sizes = np.zeros(len(self._joints), dtype=np.float32)
        for i, r in enumerate(records):
            if r.get("box_sizes") is not None:
                self._box_sizes[self._person_offsets[i] : self._person_offsets[i + 1]] = r["box_sizes"]
        rles = [r.get("ignore_rle") or b"" for r in records]
        lengths = np.fromiter((len(b) for b in rles), dtype=np.int64, count=n)
        self._rle_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._rle_bytes = np.frombuffer(b"".join(rles), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._image_ids)

    def image_files(self) -> dict[int, str]:
        """{image_id: image path} of every image (used to draw predictions on the images)."""
        return {int(i): os.fsdecode(f) for i, f in zip(self._image_ids, self._image_files)}

    def _record_joints(self, index: int) -> np.ndarray:
        """(M, K, 3) float32 view of the annotated joints of image ``index``."""
        return self._joints[self._person_offsets[index] : self._person_offsets[index + 1]]

    def ignore_mask(self, index: int) -> np.ndarray:
        """(H, W) uint8 of image ``index``: 1 inside crowd / keypoint-less regions, else 0."""
        rle = self._rle_bytes[self._rle_offsets[index] : self._rle_offsets[index + 1]].tobytes()
        w, h = self._sizes[index]
        return decode_ignore_mask(rle or None, int(h), int(w))

    # ------------------------------------------------------------------ randomness

    def _draw_affine(self, width: int, height: int) -> tuple[np.ndarray, float, float, float, bool]:
        """Official random parameters in the official order.

        Returns:
            center (2,) after translation, scale (/200, after jitter), scale jitter factor,
            rotation (degrees), flipped.
        """
        rng = self._generator()
        center = np.array([width / 2.0, height / 2.0])
        scale = (min(height, width) if self.scale_type == "short" else max(height, width)) / 200.0
        aug_scale = rng.random() * (self.max_scale - self.min_scale) + self.min_scale
        scale *= aug_scale
        rotation = (rng.random() * 2.0 - 1.0) * self.max_rotation
        if self.max_translate > 0:
            low, high = math.trunc(-self.max_translate * scale), math.trunc(self.max_translate * scale)
            for axis in (0, 1):  # numpy randint(low, high): float bounds truncated, high exclusive
                center[axis] += int(rng.integers(low, high)) if high > low else 0
        flipped = bool(rng.random() < self.flip)
        return center, float(scale), float(aug_scale), float(rotation), flipped

    # ------------------------------------------------------------------ items
    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index = self._begin_item(key)
        if not self.training:
            return self._val_item(index)
        return self._train_item(index)

    def _val_item(self, index: int) -> dict[str, Any]:
        path = os.fsdecode(self._image_files[index])
        image = cv2.cvtColor(self.read_bgr(path), cv2.COLOR_BGR2RGB)
        w, h = (int(v) for v in self._sizes[index])
        return {
            "image": image,
            "image_id": int(self._image_ids[index]),
            "image_file": path,
            "width": w,
            "height": h,
            "joints": self._record_joints(index).copy(),
        }

    def _train_item(self, index: int) -> dict[str, Any]:
        path = os.fsdecode(self._image_files[index])
        image = self.read_bgr(path)  # BGR; the crop is converted below
        height, width = image.shape[:2]
        rec_w, rec_h = (int(v) for v in self._sizes[index])
        if (width, height) != (rec_w, rec_h):
            raise ValueError(
                f"{path}: the image is {width}x{height} but the annotation says {rec_w}x{rec_h}; "
                "the ignore mask and the keypoints would not line up"
            )
        center, scale, aug_scale, rotation, flipped = self._draw_affine(width, height)

        if self._rle_offsets[index + 1] > self._rle_offsets[index]:  # 255 = counted by the loss
            keep = np.uint8(255) - self.ignore_mask(index) * np.uint8(255)
        else:
            keep = np.full((height, width), 255, dtype=np.uint8)
        joints = self._record_joints(index).astype(np.float64)
        if self.scale_aware_sigma:
            sizes = self._box_sizes[self._person_offsets[index] : self._person_offsets[index + 1]]
            sig = sizes.astype(np.float64) / SCALE_AWARE_BASE_SIZE * SCALE_AWARE_BASE_SIGMA / aug_scale
            joints = np.concatenate([joints, np.broadcast_to(sig[:, None, None], (*joints.shape[:2], 1))], axis=2)
        if flipped:
            joints = joints[:, self._flip_index]

        item: dict[str, Any] = {}
        per_resolution = []
        for i, res in enumerate(self.output_sizes):
            mat = bottomup_affine(center, scale, rotation, res)
            mask = cv2.warpAffine(keep, mat, (res, res), flags=cv2.INTER_LINEAR)
            if flipped:
                mask = cv2.flip(mask, 1)
            joints_i = joints.copy()
            joints_i[..., :2] = _transform(joints[..., :2], mat)
            if flipped:
                joints_i[..., 0] = res - 1 - joints_i[..., 0]
            per_resolution.append(joints_i)
            item[f"masks_{i}"] = torch.from_numpy((mask > 127).astype(np.float32))  # /255 > 0.5
        item.update({key: torch.from_numpy(value) for key, value in self.codec.encode(per_resolution).items()})

        mat = bottomup_affine(center, scale, rotation, self.input_size)
        crop = cv2.warpAffine(image, mat, (self.input_size, self.input_size), flags=cv2.INTER_LINEAR)
        if flipped:
            crop = cv2.flip(crop, 1)
        crop = self.photometric_crop(self.model_channels(crop))
        item["image"] = self.image_tensor(crop)
        item["image_id"] = torch.tensor(self._image_ids[index], dtype=torch.int64)
        return item
