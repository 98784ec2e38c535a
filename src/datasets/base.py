"""What every paradigm's dataset shares: construction from a reader and the augmentation check.

A dataset class names its augmentation keys and says which records of a reader it reads
(`read_records`); `from_reader` (what the datamodule calls) does the rest the same way for all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from src.datasets.randomness import WorkerSeededRandom
from src.datasets.transforms import image_tensor, split_augmentation
from src.layouts import KeypointInfo
from src.readers.images import read_image, read_image_for_crop


class PoseDataset(WorkerSeededRandom, Dataset):
    """Base of the datasets of `src.paradigms`: constructors take ``(records, *, codec, keypoint_info,
    training, color_rgb, photometric, seed, **geometric augmentation)``."""

    #: Keys of the data config's augmentation block (all but photometric are constructor arguments).
    AUGMENTATION_KEYS: ClassVar[tuple[str, ...]] = ()
    #: Images already in memory (BGR uint8) by the records' ``image_file``, read in place of the
    #: files: prediction on video frames and arrays goes through the same crops as evaluation.
    images: Mapping[str, np.ndarray] | None = None
    #: Decode JPEGs at 1/2, 1/4 or 1/8 of their size when the crop shrinks them that much
    #: (``data.reduced_decode``, training only; see `src.readers.images`). Set by `from_reader`.
    reduced_decode: bool = False
    #: Training items carry uint8 images, normalised by the task on its device
    #: (``data.normalize_on_device``; `src.datasets.transforms.image_tensor`). Set by `from_reader`.
    normalize_on_device: bool = False

    def read_bgr(self, image_file: bytes | str) -> np.ndarray:
        """The image of a record, (H, W, 3) uint8 BGR, from ``images`` or from its file."""
        name = os.fsdecode(image_file)
        if self.images is not None and name in self.images:
            return self.images[name]
        return read_image(name, color_rgb=False)

    def image_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """The item's image: normalised float32, or uint8 when ``normalize_on_device`` is on."""
        return image_tensor(crop, on_device=self.normalize_on_device)

    def read_bgr_for_crop(self, image_file: bytes | str, shrink: float) -> tuple[np.ndarray, int, tuple[int, int]]:
        """The image of a crop taking ``shrink`` image pixels per crop pixel: (image, r, (H, W)),
        the image decoded at 1/r of its full size (H, W); r is 1 unless ``reduced_decode`` is on.
        Warp it with ``src.geometry.warp_from_reduced(matrix, r)``."""
        if not self.reduced_decode or (self.images is not None and os.fsdecode(image_file) in self.images):
            image = self.read_bgr(image_file)
            return image, 1, image.shape[:2]
        return read_image_for_crop(os.fsdecode(image_file), shrink=shrink)

    @classmethod
    def check_augmentation(cls, augmentation: dict) -> None:
        """ValueError listing the known keys when ``augmentation`` has others."""
        split_augmentation(augmentation, cls.AUGMENTATION_KEYS, training=False)

    @classmethod
    def read_records(cls, reader: Any, *, training: bool, codec: Any, keypoint_info: KeypointInfo) -> list[dict]:
        """The records of the reader's split ("train" when ``training``, else "val") this dataset reads."""
        raise NotImplementedError

    @classmethod
    def from_reader(
        cls,
        reader: Any,
        *,
        training: bool,
        codec: Any,
        keypoint_info: KeypointInfo,
        augmentation: dict,
        color_rgb: bool,
        seed: int | None,
        reduced_decode: bool = False,
        normalize_on_device: bool = False,
    ) -> PoseDataset:
        records = cls.read_records(reader, training=training, codec=codec, keypoint_info=keypoint_info)
        geometric, photometric = split_augmentation(augmentation, cls.AUGMENTATION_KEYS, training=training)
        dataset = cls(
            records,
            codec=codec,
            keypoint_info=keypoint_info,
            training=training,
            color_rgb=color_rgb,
            photometric=photometric,
            seed=seed,
            **geometric,
        )
        dataset.reduced_decode = bool(reduced_decode) and training
        dataset.normalize_on_device = bool(normalize_on_device) and training
        return dataset

    def collate_fn(self) -> Callable[[Sequence[dict]], dict] | None:
        """The DataLoader's collate function; None: the default, which stacks equal-shaped tensors."""
        return None
