"""Top-down single-person dataset: image + person box -> normalised crop and heatmap targets.

The training augmentation reproduces the official HRNet ``JointsDataset.__getitem__`` in its
order: half-body box (if more than ``half_body_min_joints`` joints are visible and U(0, 1) <
``half_body_prob``), scale jitter s * clip(1 + N(0, 1) sf, 1 - sf, 1 + sf), rotation clip(N(0, 1)
rf, -2 rf, 2 rf) with probability ``rotation_prob`` (else 0), horizontal flip with probability 0.5
(joints mirrored with x <- W - 1 - x and left/right swapped, c_x <- W - 1 - c_x), then one
bilinear ``cv2.warpAffine`` to the codec's input size; joints are mapped with the same matrix.

``geometric: mmpose`` replaces that by mmpose 1.x's RandomFlip + RandomHalfBody +
RandomBBoxTransform (`src.datasets.bbox_transform`, parameters in the ``mmpose`` block; ViTPose and
RTMPose train with it); either may be followed by RTMPose's photometric stage on the crop
(``crop_photometric``: HSV jitter, blur, median blur, coarse dropout, `src.datasets.photometric`).
A ``stage2`` block overrides any of these for a second stage, RTMPose's milder last epochs: items
drawn for an epoch >= ``stage2_epoch`` use it (`PipelineSwitch` in ``src.tasks`` sets that epoch).

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from src.datasets.base import PoseDataset
from src.datasets.bbox_transform import BoxAugmentation
from src.datasets.photometric import CropPhotometric
from src.geometry import (
    PIXEL_STD,
    affine_transform_points,
    fix_aspect_ratio,
    flip_joints,
    half_body_center_scale,
    warp_from_reduced,
)
from src.layouts import KeypointInfo

#: The geometric augmentations a top-down dataset offers (``data.augmentation.geometric``).
GEOMETRIC = ("hrnet", "mmpose")
#: The augmentation blocks that a ``stage2`` block merges key by key into stage 1's.
_NESTED = ("mmpose", "crop_photometric")


@dataclass(frozen=True)
class AugmentationStage:
    """The training augmentation of one stage: the geometric choice with the parameters of both
    kinds, and the optional photometric stage of the crop (None: off)."""

    geometric: str
    scale_factor: float
    rotation_factor: float
    rotation_prob: float
    flip: bool
    half_body_prob: float
    half_body_min_joints: int
    mmpose: BoxAugmentation
    crop_photometric: CropPhotometric | None


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
        geometric: "hrnet" (the official HRNet augmentation, the keys above) or "mmpose" (mmpose
            1.x's, the ``mmpose`` block; the keys above are then unused).
        mmpose: `BoxAugmentation` keys (flip_prob, half_body_prob, min_total_keypoints,
            min_upper_keypoints, min_lower_keypoints, half_body_padding, upper_prioritized_prob,
            shift_factor, shift_prob, scale_factor [low, high], scale_prob, rotate_factor,
            rotate_prob); missing keys take mmpose's defaults. The records' boxes are already
            padded by the reader (1.25, as GetBBoxCenterScale), so no padding is added here.
        crop_photometric: None, or `CropPhotometric` keys (RTMPose's HSV / blur / median blur /
            coarse dropout of the BGR crop; missing keys take RTMPose's stage-1 values).
        stage2: None, or overrides of the keys above for stage 2 (``mmpose`` and
            ``crop_photometric`` merged key by key into stage 1's blocks); see `set_stage2_epoch`.
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
        category_id () int64 the record's COCO category (only where the records have one);
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
        geometric: str = "hrnet",
        mmpose: Mapping[str, Any] | None = None,
        crop_photometric: Mapping[str, Any] | None = None,
        stage2: Mapping[str, Any] | None = None,
        **common: Any,
    ) -> None:
        first = dict(
            scale_factor=scale_factor,
            rotation_factor=rotation_factor,
            rotation_prob=rotation_prob,
            flip=flip,
            half_body_prob=half_body_prob,
            half_body_min_joints=half_body_min_joints,
            geometric=geometric,
            mmpose=mmpose,
            crop_photometric=crop_photometric,
        )
        stages = [self._build_stage(first, prefix="")]
        if stage2:
            stages.append(self._build_stage(self._merge_stage2(first, stage2), prefix="stage2."))
        self._stages = tuple(stages)
        s1 = stages[0]  # stage 1's values keep their attribute names
        self.scale_factor = s1.scale_factor
        self.rotation_factor = s1.rotation_factor
        self.rotation_prob = s1.rotation_prob
        self.flip = s1.flip
        self.half_body_prob = s1.half_body_prob
        self.half_body_min_joints = s1.half_body_min_joints
        self.geometric = s1.geometric
        self._stage = 1
        self.stage2_epoch: int | None = None
        super().__init__(records, **common)
        self.input_size = (int(self.codec.input_size[0]), int(self.codec.input_size[1]))
        self.aspect_ratio = self.input_size[0] / self.input_size[1]

    # ------------------------------------------------------------------ stages
    def _build_stage(self, values: dict[str, Any], *, prefix: str) -> AugmentationStage:
        """One stage's augmentation from its keys, checked; messages name ``prefix + key``."""
        name = type(self).__name__
        if values["geometric"] not in GEOMETRIC:
            raise ValueError(f"{name}: {prefix}geometric must be one of {list(GEOMETRIC)}, got {values['geometric']!r}")
        for key in _NESTED:
            if values[key] is not None and not isinstance(values[key], Mapping):
                raise TypeError(f"{name}: {prefix}{key} must be a mapping of its keys or null, got {values[key]!r}")
        return AugmentationStage(
            geometric=str(values["geometric"]),
            scale_factor=self._fraction(prefix + "scale_factor", values["scale_factor"]),
            rotation_factor=self._at_least(prefix + "rotation_factor", values["rotation_factor"]),
            rotation_prob=self._probability(prefix + "rotation_prob", values["rotation_prob"]),
            flip=bool(values["flip"]),
            half_body_prob=self._probability(prefix + "half_body_prob", values["half_body_prob"]),
            half_body_min_joints=int(self._at_least(prefix + "half_body_min_joints", values["half_body_min_joints"])),
            mmpose=BoxAugmentation.from_config(values["mmpose"], where=f"{name}: {prefix}mmpose"),
            crop_photometric=CropPhotometric.from_config(
                values["crop_photometric"], where=f"{name}: {prefix}crop_photometric"
            ),
        )

    def _merge_stage2(self, first: dict[str, Any], stage2: Mapping[str, Any]) -> dict[str, Any]:
        """Stage 1's keys with the ``stage2`` overrides (nested blocks merged key by key)."""
        name = type(self).__name__
        if not isinstance(stage2, Mapping):
            raise TypeError(f"{name}: stage2 must be a mapping of augmentation keys or null, got {stage2!r}")
        unknown = sorted(set(stage2) - set(first))
        if unknown:
            raise ValueError(f"{name}: unknown stage2 keys {unknown}; known: {list(first)}")
        merged = dict(first)
        for key, value in stage2.items():
            if key in _NESTED and isinstance(value, Mapping) and isinstance(first[key], Mapping):
                merged[key] = {**first[key], **value}
            else:
                merged[key] = value
        return merged

    @property
    def has_stage2(self) -> bool:
        """Whether a ``stage2`` augmentation is configured."""
        return len(self._stages) == 2

    def augmentation_stage(self, stage: int) -> AugmentationStage:
        """The parameters of stage 1 or 2."""
        if stage not in (1, 2) or stage > len(self._stages):
            raise ValueError(
                f"{type(self).__name__}: there is no augmentation stage {stage!r} (data.augmentation.stage2)"
            )
        return self._stages[stage - 1]

    @property
    def stage(self) -> int:
        """The stage of items read without an epoch (plain indices), or while ``stage2_epoch`` is None."""
        return self._stage

    @stage.setter
    def stage(self, stage: int) -> None:
        self.augmentation_stage(stage)
        self._stage = int(stage)

    def set_stage2_epoch(self, epoch: int | None) -> None:
        """Items drawn for an epoch >= ``epoch`` (the ``(index, epoch)`` keys of `EpochSeededSampler`)
        use stage 2; None: the ``stage`` attribute decides. DataLoader workers keep a copy of the
        dataset made when they start (persistent workers for the whole run), so set this before the
        first training loader is iterated; a resumed run is in the stage of its epoch."""
        if epoch is not None:
            if not self.has_stage2:
                raise ValueError(
                    f"{type(self).__name__}: no stage-2 augmentation to switch to; set data.augmentation.stage2"
                )
            if int(epoch) != epoch or epoch < 0:
                raise ValueError(f"{type(self).__name__}: the stage-2 epoch must be an integer >= 0, got {epoch!r}")
            epoch = int(epoch)
        self.stage2_epoch = epoch

    def stage_of(self, epoch: int | None) -> int:
        """The augmentation stage (1 or 2) of an item drawn for ``epoch`` (None: a plain index)."""
        if epoch is not None and self.stage2_epoch is not None:
            return 2 if epoch >= self.stage2_epoch else 1
        return self._stage

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
        # COCO-format records carry the category of their box (AP-10K's species); others have none
        with_category = n > 0 and all("category_id" in r for r in records)
        self._category_ids = (
            np.fromiter((r["category_id"] for r in records), dtype=np.int64, count=n) if with_category else None
        )
        self._centers = np.array([r["center"] for r in records], dtype=np.float32).reshape(n, 2)
        self._scales = np.array([r["scale"] for r in records], dtype=np.float32).reshape(n, 2)
        self._keypoints = np.array([r["keypoints"] for r in records], dtype=np.float32).reshape(n, k, 2)
        self._visible = np.array([r["visible"] for r in records], dtype=np.float32).reshape(n, k)
        self._box_sizes = self._padded_box_sizes(records)

    def _padded_box_sizes(self, records: list[dict]) -> np.ndarray | None:
        """(N, 2) padded box sizes in pixels before the aspect-ratio fix (mmpose's ``bbox_scale``,
        which its random shift is a fraction of), when every record has its ``bbox`` (x, y, w, h);
        else None and the shift is a fraction of the aspect-fixed size ``200 * scale``."""
        if not records or any(r.get("bbox") is None for r in records):
            return None
        wh = np.array([np.asarray(r["bbox"], dtype=np.float64).reshape(4)[2:] for r in records]).reshape(-1, 2)
        fixed = fix_aspect_ratio(wh, float(self.codec.input_size[0]) / float(self.codec.input_size[1]))
        ratio = np.divide(wh, fixed, out=np.ones_like(wh), where=fixed > 0)
        return (self._scales.astype(np.float64) * PIXEL_STD * ratio).astype(np.float32)

    def __len__(self) -> int:
        return len(self._sample_ids)

    def image_files(self) -> dict[int, str]:
        """{sample_id: image path} of every sample (used to draw predictions on the images)."""
        return {int(sid): os.fsdecode(f) for sid, f in zip(self._sample_ids, self._image_files)}

    def _augment(
        self, joints: np.ndarray, visible: np.ndarray, center: np.ndarray, scale: np.ndarray, stage: AugmentationStage
    ) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """Official random crop parameters, drawn in the official order. The flip is drawn but
        not applied: it needs the image width, and the image is read after the crop scale is known.

        Args:
            joints: (K, 2) image pixels; visible: (K,); center (2,); scale (2,); the stage's parameters.

        Returns:
            center (2,), scale (2,), rotation (degrees), flipped.
        """
        rng = self._generator()
        if (
            stage.half_body_prob > 0
            and visible.sum() > stage.half_body_min_joints
            and rng.random() < stage.half_body_prob
        ):
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
        sf, rf = stage.scale_factor, stage.rotation_factor
        scale = scale * np.float32(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
        rotation = 0.0
        if rng.random() <= stage.rotation_prob:
            rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
        flipped = bool(stage.flip and rng.random() <= 0.5)
        return np.asarray(center, np.float32), np.asarray(scale, np.float32), rotation, flipped

    def _augment_mmpose(
        self,
        index: int,
        joints: np.ndarray,
        visible: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        box: BoxAugmentation,
    ) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """mmpose 1.x random crop parameters (`BoxAugmentation.draw`), as `_augment` returns them:
        the centre in the unmirrored image, the scale aspect-fixed in units of 200 px."""
        size = scale * np.float32(PIXEL_STD) if self._box_sizes is None else self._box_sizes[index]
        draw = box.draw(
            self._generator(),
            joints=joints,
            visible=visible,
            center=center,
            size=size,
            upper_ids=self.keypoint_info.upper_body_ids,
            lower_ids=self.keypoint_info.lower_body_ids,
        )
        scale = (fix_aspect_ratio(draw.size, self.aspect_ratio) / PIXEL_STD).astype(np.float32)
        return draw.center, scale, draw.rotation, draw.flipped

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = self._begin_item(key)
        stage = self._stages[self.stage_of(int(key[1]) if isinstance(key, (tuple, list)) else None) - 1]
        joints = self._keypoints[index]
        visible = self._visible[index]
        center = self._centers[index]
        scale = self._scales[index]
        rotation, flipped = 0.0, False
        if self.training and stage.geometric == "mmpose":
            center, scale, rotation, flipped = self._augment_mmpose(index, joints, visible, center, scale, stage.mmpose)
        elif self.training:
            center, scale, rotation, flipped = self._augment(joints, visible, center, scale, stage)
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
        if self.training and stage.crop_photometric is not None:  # on the BGR crop, as mmpose
            crop = stage.crop_photometric(crop, self._generator())
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
            **self._category_item(index),
        }

    def _category_item(self, index: int) -> dict[str, torch.Tensor]:
        """{"category_id": () int64} where the records have categories, else {}."""
        if self._category_ids is None:
            return {}
        return {"category_id": torch.tensor(self._category_ids[index], dtype=torch.int64)}
