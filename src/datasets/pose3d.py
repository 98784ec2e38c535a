"""Root-relative 3D pose dataset (3DMPPE PoseNet): person crops with integral-regression targets.

Training reproduces the 3DMPPE ``DatasetLoader.__getitem__`` for a crop box ``bbox`` [x, y, w, h]
(already aspect-corrected and padded by the reader): scale s = 1 + 0.25 clip(N(0, 1), -1, 1),
rotation 30 clip(N(0, 1), -2, 2) degrees with probability 0.6 (else 0), horizontal flip with
probability 0.5, a colour scale U(0.8, 1.2) per channel and, with probability 0.5, a synthetic
occlusion: a rectangle of area U(0, 0.7) w h and aspect U(0.3, 1 / 0.3) inside the box, filled
with uniform noise. The crop maps the box centre to the crop centre and a width of ``s w`` onto
the crop width (`src.geometry.get_affine_transform` with scale ``s w / 200``); the flip mirrors the
image (x <- W - 1 - x) and swaps the left / right joints. Joints are mapped with the same matrix;
their depth relative to the root joint (from the camera-frame ground truth) is untouched.

Two implementation choices that do not change the result:
* the flip is folded into the warp matrix, as in `TopDownDataset`;
* the occlusion is painted on the crop, through the crop matrix, instead of on the full image.
  It covers the same image pixels, up to the bilinear blend at its border.

Mixed training (official ``MultipleDatasets(make_same_len=True)``): when the reader also brings
2D records (e.g. MPII, ``have_depth`` 0), an epoch has ``2 * max(n_3d, n_2d)`` items; the first
half indexes the 3D records and the second the 2D records, each modulo its length, except the
items after the last whole pass over the shorter group, which pick a random record of it.

Shapes: K keypoints of the model's layout; the crop is (h, w) = codec input size.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from src.datasets.base import PoseDataset
from src.geometry import PIXEL_STD, CropSample, affine_transform_points, get_affine_transform, warp_from_reduced
from src.layouts import KeypointInfo, get_keypoint_info, joint_sources, root_index

#: Keys of a 3D record (see `src.readers.h36m`) stored per item.
_VECTOR_KEYS = {"bbox": 4, "f": 2, "c": 2}

#: The focal length (pixels) 3DMPPE gives 2D records, which have no camera (RootNet's k-value of a
#: 2D crop; their depth is not trained).
DUMMY_FOCAL = 1500.0

#: Tries to place the synthetic occlusion inside the image before giving up on it for this item.
OCCLUSION_TRIES = 20


def records_from_2d(
    records: list[dict], source: KeypointInfo, target: KeypointInfo, *, aspect_ratio: float
) -> list[dict]:
    """Top-down 2D person records (``center``, ``scale``, ``keypoints``, ``visible``) -> 3D records
    without depth (``have_depth`` 0), in the ``target`` layout.

    Joints are matched by name (`joint_mapping`); a target joint the source lacks is the mean of two
    it has when `DERIVED_JOINTS` defines it (3DMPPE's thorax and pelvis of COCO people, visible
    when both are), else not visible.
    The crop box is the record's box of side ``200 * scale``, enlarged to ``aspect_ratio``; the 2D
    readers already pad their boxes (MPII: x 1.25), so no further padding is added.
    """
    sources = joint_sources(source, target)
    k = len(sources)
    out = []
    for r in records:
        w, h = PIXEL_STD * float(r["scale"][0]), PIXEL_STD * float(r["scale"][1])
        if w > aspect_ratio * h:
            h = w / aspect_ratio
        else:
            w = h * aspect_ratio
        keypoints = np.asarray(r["keypoints"], np.float32)
        seen = np.asarray(r["visible"], np.float32)
        joints = np.zeros((k, 3), np.float32)
        visible = np.zeros(k, np.float32)
        for j, parts in enumerate(sources):
            if parts:
                joints[j, :2] = keypoints[list(parts)].mean(axis=0)
                visible[j] = float(np.prod(seen[list(parts)]))
        cx, cy = float(r["center"][0]), float(r["center"][1])
        out.append(
            {
                "sample_id": r["sample_id"],
                "image_id": r["image_id"],
                "image_file": r["image_file"],
                "bbox": np.array([cx - w / 2, cy - h / 2, w, h], np.float32),
                "joints_img": joints,
                "joints_cam": np.zeros((k, 3), np.float32),
                "visible": visible,
                "root_depth": 0.0,
                "f": np.full(2, DUMMY_FOCAL, np.float32),
                "c": np.zeros(2, np.float32),
                "action": -1,
                "have_depth": 0.0,
            }
        )
    return out


class Pose3DDataset(PoseDataset):
    """3DMPPE crops with coordinate targets (x, y in output pixels, z in depth bins).

    Args:
        records: 3D records of a reader (`src.readers.h36m.Human36MReader.load_records`), followed in
            training by 2D records made by `records_from_2d` (``have_depth`` 0).
        scale_factor: scale jitter 1 + sf clip(N(0, 1), -1, 1) (official 0.25).
        rotation_factor: rotation rf clip(N(0, 1), -2, 2) degrees (official 30).
        rotation_prob: probability of rotating at all (official 0.6).
        flip: random horizontal flip with probability 0.5.
        color_factor: per-channel colour scale U(1 - cf, 1 + cf) (official 0.2; 0 disables).
        occlusion_prob: probability of the synthetic occlusion (official 0.5; 0 disables).
        **common: the arguments of every paradigm's dataset (`PoseDataset`): codec (the
            `Integral3D` codec shared with the model), keypoint_info (the model's layout), training
            (random augmentation and the mixed epoch), color_rgb, photometric (an extra
            augmentation of the crop, off in the recipe), seed, images, reduced_decode,
            normalize_on_device.

    Items are dicts of tensors: image (3, h, w); the codec's targets (``codec.target_keys``: coords
    (J, 3), coord_weight (J,), have_depth (), and RootNet's k_value ()); sample_id, image_id,
    action () int64 (-1 for 2D records); score () float32 (the box's score, 1 for ground-truth
    boxes); bbox (4,) the crop box as read (before augmentation); root_depth () mm; f (2,), c (2,);
    joints_cam (K, 3) ground-truth camera-frame joints (mm); joints (K, 3) image x, y and
    visibility as read.
    """

    encoder: ClassVar[str] = "encode_crop"

    @classmethod
    def read_records(cls, reader: Any, *, training: bool, codec: Any, keypoint_info: KeypointInfo) -> list[dict]:
        """The reader's 3D records of the split and, in training, its 2D records in this layout."""
        aspect = codec.input_size[0] / codec.input_size[1]
        split = cls.split(training)
        records = reader.load_records(split, keypoint_info=keypoint_info, aspect_ratio=aspect, training=training)
        if training and hasattr(reader, "extra_records"):
            extra, layout = reader.extra_records(split, aspect_ratio=aspect)
            if extra:
                records = records + records_from_2d(
                    extra, get_keypoint_info(layout), keypoint_info, aspect_ratio=aspect
                )
        return records

    def __init__(
        self,
        records: list[dict],
        *,
        scale_factor: float = 0.25,
        rotation_factor: float = 30.0,
        rotation_prob: float = 0.6,
        flip: bool = True,
        color_factor: float = 0.2,
        occlusion_prob: float = 0.5,
        **common: Any,
    ) -> None:
        self.scale_factor = self._fraction("scale_factor", scale_factor)
        self.rotation_factor = self._at_least("rotation_factor", rotation_factor)
        self.rotation_prob = self._probability("rotation_prob", rotation_prob)
        self.flip = bool(flip)
        self.color_factor = self._at_least("color_factor", color_factor)
        self.occlusion_prob = self._probability("occlusion_prob", occlusion_prob)
        super().__init__(records, **common)
        self.input_size = (int(self.codec.input_size[0]), int(self.codec.input_size[1]))
        self._root = root_index(self.keypoint_info)

    def _store(self, records: list[dict]) -> None:
        """Flat arrays (see `TopDownDataset._store`), and the two groups of the mixed epoch."""
        k = self.keypoint_info.num_keypoints
        n = len(records)
        for r in records[:1]:
            if np.shape(r["joints_img"]) != (k, 3) or np.shape(r["visible"]) != (k,):
                raise ValueError(
                    f"records have joints_img {np.shape(r['joints_img'])} / visible {np.shape(r['visible'])}, "
                    f"expected ({k}, 3) / ({k},) for layout {self.keypoint_info.name!r}"
                )
        self._image_files = np.array([os.fsencode(r["image_file"]) for r in records], dtype=np.bytes_)
        self._sample_ids = np.fromiter((r["sample_id"] for r in records), dtype=np.int64, count=n)
        self._image_ids = np.fromiter((r["image_id"] for r in records), dtype=np.int64, count=n)
        self._actions = np.fromiter((r.get("action", -1) for r in records), dtype=np.int64, count=n)
        self._scores = np.fromiter((r.get("score", 1.0) for r in records), dtype=np.float32, count=n)
        self._root_depth = np.fromiter((r["root_depth"] for r in records), dtype=np.float32, count=n)
        self._have_depth = np.fromiter((r["have_depth"] for r in records), dtype=np.float32, count=n)
        for key, size in _VECTOR_KEYS.items():
            setattr(self, f"_{key}", np.array([r[key] for r in records], dtype=np.float32).reshape(n, size))
        self._joints_img = np.array([r["joints_img"] for r in records], dtype=np.float32).reshape(n, k, 3)
        self._joints_cam = np.array([r["joints_cam"] for r in records], dtype=np.float32).reshape(n, k, 3)
        self._visible = np.array([r["visible"] for r in records], dtype=np.float32).reshape(n, k)
        groups = [np.flatnonzero(self._have_depth > 0), np.flatnonzero(self._have_depth <= 0)]
        self._groups = [g for g in groups if len(g)] if self.training else [np.arange(n)]
        self._group_len = max((len(g) for g in self._groups), default=0)

    def __len__(self) -> int:
        return self._group_len * len(self._groups)

    @property
    def num_records(self) -> int:
        return len(self._sample_ids)

    @property
    def root_joint(self) -> int:
        """Index of the root joint in the layout."""
        return self._root

    def camera_joints_3d(self) -> np.ndarray:
        """(M, K, 3) camera-frame ground truth (mm) of the M records that have depth (not the 2D ones)."""
        return self._joints_cam[self._have_depth > 0]

    def image_files(self) -> dict[int, str]:
        """{sample_id: image path} of every record (used to draw predictions on the images)."""
        return {int(sid): os.fsdecode(f) for sid, f in zip(self._sample_ids, self._image_files)}

    def _record_index(self, index: int) -> int:
        """Item index -> record index (the official same-length mixing of the record groups)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        group = self._groups[index // self._group_len]
        i = index % self._group_len
        whole_passes = len(group) * (self._group_len // len(group))
        if i >= whole_passes:
            i = int(self._generator().integers(len(group)))
        return int(group[i % len(group)])

    def _augmentation(self) -> tuple[float, float, bool, np.ndarray, bool]:
        """Official draws, in the official order: scale, rotation, flip, colour scale, occlusion."""
        rng = self._generator()
        scale = 1.0 + self.scale_factor * float(np.clip(rng.standard_normal(), -1.0, 1.0))
        rotation = 0.0
        if rng.random() <= self.rotation_prob:
            rotation = self.rotation_factor * float(np.clip(rng.standard_normal(), -2.0, 2.0))
        flipped = self.flip and rng.random() <= 0.5
        cf = self.color_factor
        color = rng.uniform(1.0 - cf, 1.0 + cf, size=3) if cf > 0 else np.ones(3)
        occlude = self.occlusion_prob > 0 and rng.random() <= self.occlusion_prob
        return scale, rotation, flipped, color, occlude

    def _occlusion(self, bbox: np.ndarray, image_size: tuple[int, int]) -> np.ndarray | None:
        """Corners (4, 2) of a random rectangle inside ``bbox`` and the image, or None after
        `OCCLUSION_TRIES` tries (the official loop retries until one fits)."""
        rng = self._generator()
        x, y, w, h = (float(v) for v in bbox)
        width, height = image_size
        for _ in range(OCCLUSION_TRIES):
            area = rng.random() * 0.7 * w * h
            ratio = 0.3 + rng.random() * (1 / 0.3 - 0.3)
            oh, ow = math.sqrt(area * ratio), math.sqrt(area / ratio)
            x0 = x + rng.random() * (w - ow - 1)
            y0 = y + rng.random() * (h - oh - 1)
            if x0 >= 0 and y0 >= 0 and x0 + ow < width and y0 + oh < height:
                x0, y0, x1, y1 = int(x0), int(y0), int(x0) + int(ow), int(y0) + int(oh)
                return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32) - 0.5
        return None

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        item = self._begin_item(key)
        index = self._record_index(item) if self.training else item
        bbox = self._bbox[index]
        joints = self._joints_img[index]
        visible = self._visible[index]
        scale, rotation, flipped, color, occlude = 1.0, 0.0, False, None, False
        if self.training:
            scale, rotation, flipped, color, occlude = self._augmentation()
        # BGR, possibly decoded at 1/r of its size (reduced_decode); the crop is converted below
        shrink = scale * float(bbox[2]) / self.input_size[0]
        image, reduction, (height, width) = self.read_bgr_for_crop(self._image_files[index], shrink)
        occluder = self._occlusion(bbox, (width, height)) if occlude else None

        center = np.array([bbox[0] + 0.5 * bbox[2], bbox[1] + 0.5 * bbox[3]], np.float32)
        if flipped:
            center[0] = width - 1 - center[0]
            joints = joints.copy()
            joints[:, 0] = width - 1 - joints[:, 0]
            joints, visible = joints[self._flip_index], visible[self._flip_index]
        trans = get_affine_transform(center, scale * bbox[2] / PIXEL_STD, rotation, self.input_size)
        warp = trans
        if flipped:  # T(mirror(x)) with mirror(x, y) = (W - 1 - x, y): the image itself is not flipped
            warp = trans.copy()
            warp[:, 2] += trans[:, 0] * (width - 1)
            warp[:, 0] = -trans[:, 0]
        crop = cv2.warpAffine(image, warp_from_reduced(warp, reduction), self.input_size, flags=cv2.INTER_LINEAR)
        if occluder is not None:
            self._paint_occluder(crop, occluder, warp)
        crop = self.model_channels(crop)
        if color is not None:  # official: uint8 channels times the scale, clipped (truncated to uint8)
            crop = np.clip(crop * color.astype(np.float32), 0, 255).astype(np.uint8)
        crop = self.photometric_crop(crop)

        crop_joints = affine_transform_points(joints[:, :2], trans)
        cam = self._joints_cam[index]
        depth = (cam[:, 2] - cam[self._root, 2])[self._flip_index] if flipped else cam[:, 2] - cam[self._root, 2]
        targets = self.codec.encode_crop(
            CropSample(
                joints_crop=crop_joints,
                depth_relative=depth,
                root_depth=float(self._root_depth[index]),
                visible=visible,
                have_depth=bool(self._have_depth[index]),
                bbox=bbox,
                focal=self._f[index],
                root=self._root,
            )
        )

        gt = np.empty((len(joints), 3), dtype=np.float32)
        gt[:, :2] = self._joints_img[index][:, :2]
        gt[:, 2] = self._visible[index]
        return {
            "image": self.image_tensor(crop),
            **{k: torch.as_tensor(np.asarray(v)) for k, v in targets.items()},
            "sample_id": torch.tensor(self._sample_ids[index], dtype=torch.int64),
            "image_id": torch.tensor(self._image_ids[index], dtype=torch.int64),
            "action": torch.tensor(self._actions[index], dtype=torch.int64),
            "score": torch.tensor(self._scores[index], dtype=torch.float32),
            "bbox": torch.from_numpy(self._bbox[index].copy()),
            "root_depth": torch.tensor(self._root_depth[index], dtype=torch.float32),
            "f": torch.from_numpy(self._f[index].copy()),
            "c": torch.from_numpy(self._c[index].copy()),
            "joints_cam": torch.from_numpy(self._joints_cam[index].copy()),
            "joints": torch.from_numpy(gt),
        }

    def _paint_occluder(self, crop: np.ndarray, corners: np.ndarray, warp: np.ndarray) -> None:
        """Fill the image rectangle ``corners`` (4, 2), seen through ``warp``, with uniform noise."""
        polygon = affine_transform_points(corners, warp)
        mask = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, np.round(polygon * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
        inside = mask.astype(bool)
        count = int(inside.sum())
        if count:
            crop[inside] = (self._generator().random((count, 3)) * 255).astype(np.uint8)
