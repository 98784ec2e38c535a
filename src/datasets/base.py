"""What every paradigm's dataset shares: the constructor's common arguments and their checks, the
image reading, the random numbers, the augmentation keys and construction from a reader.

A paradigm's dataset (`TopDownDataset`, `BottomUpDataset`, `Pose3DDataset`) adds only what is its
own: its augmentation as keyword arguments of its constructor (they are the keys of its block of
the data config, `AUGMENTATION_KEYS`), how it keeps its records (``_store``), which records of a
reader it reads (``read_records``) and its items.
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from src.datasets.randomness import WorkerSeededRandom
from src.datasets.transforms import image_tensor, split_augmentation
from src.layouts import KeypointInfo, get_keypoint_info
from src.readers.images import read_image, read_image_for_crop

#: The key of the photometric augmentation in every paradigm's augmentation block (built by
#: `split_augmentation`, then passed to the constructor as the callable ``photometric``).
PHOTOMETRIC = "photometric"


class PoseDataset(WorkerSeededRandom, Dataset):
    """Base of the datasets of `src.paradigms`.

    Args (common to every paradigm; a subclass adds its augmentation as keyword arguments):
        records: the reader's records of one split (kept by the subclass's ``_store``).
        codec: the codec shared with the model: its ``input_size`` and ``encode`` make the items'
            inputs and targets; a codec that declares ``num_joints`` must encode the layout's K.
        keypoint_info: the keypoint layout (or its name): K, flip pairs, body parts.
        training: random augmentation and training targets; otherwise the plain evaluation items.
        color_rgb: feed RGB (HRNet and most recipes) instead of OpenCV's BGR (SimpleBaseline configs).
        photometric: None, or a callable (h, w, 3) uint8 -> (h, w, 3) uint8 applied to the training
            crop; if it has ``reseed(int)`` it is reseeded from the item's generator.
        seed: base seed of the augmentation random numbers (`WorkerSeededRandom`).
        images: BGR images by the records' ``image_file``, read in place of the files (see `images`).
        reduced_decode: decode JPEGs at 1/2, 1/4 or 1/8 of their size when the crop shrinks them
            that much (``data.reduced_decode``; training only, off for evaluation datasets;
            `src.readers.images.read_image_for_crop`). Paradigms that crop read with it.
        normalize_on_device: training items carry uint8 images, normalised by the task on its
            device (``data.normalize_on_device``; training only; `transforms.image_tensor`).
    """

    #: The codec method that makes an item's targets.
    encoder: ClassVar[str] = "encode"

    #: Keys of the data config's augmentation block: the subclass constructor's own keyword
    #: arguments and "photometric" (set for each subclass from its signature).
    AUGMENTATION_KEYS: ClassVar[tuple[str, ...]] = (PHOTOMETRIC,)
    #: Images already in memory (BGR uint8) by the records' ``image_file``, read in place of the
    #: files: prediction on video frames and arrays goes through the same crops as evaluation.
    images: Mapping[str, np.ndarray] | None = None
    reduced_decode: bool = False
    normalize_on_device: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        common = set(inspect.signature(PoseDataset.__init__).parameters)
        own = [
            name
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind == p.KEYWORD_ONLY and name not in common
        ]
        cls.AUGMENTATION_KEYS = (*own, PHOTOMETRIC)

    def __init__(
        self,
        records: list[dict],
        *,
        codec: Any,
        keypoint_info: KeypointInfo | str,
        training: bool,
        color_rgb: bool = True,
        photometric: Callable[[np.ndarray], np.ndarray] | None = None,
        seed: int | None = None,
        images: Mapping[str, np.ndarray] | None = None,
        reduced_decode: bool = False,
        normalize_on_device: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(keypoint_info, str):
            keypoint_info = get_keypoint_info(keypoint_info)
        if not isinstance(keypoint_info, KeypointInfo):
            raise TypeError(f"{name}: keypoint_info must be a KeypointInfo or a layout name, got {keypoint_info!r}")
        if not (hasattr(codec, "input_size") and callable(getattr(codec, self.encoder, None))):
            raise TypeError(f"{name}: codec must have input_size and {self.encoder}(...), got {codec!r}")
        joints = getattr(codec, "num_joints", None)
        if joints is not None and int(joints) != keypoint_info.num_keypoints:
            raise ValueError(
                f"{name}: the codec encodes {joints} joints, layout {keypoint_info.name!r} has "
                f"{keypoint_info.num_keypoints}"
            )
        if photometric is not None and not callable(photometric):
            raise TypeError(f"{name}: photometric must be None or a callable on uint8 crops, got {photometric!r}")
        if seed is not None and not isinstance(seed, numbers.Integral):
            raise TypeError(f"{name}: seed must be an integer or None, got {seed!r}")
        if images is not None and not isinstance(images, Mapping):
            raise TypeError(f"{name}: images must map image_file to a BGR image, got {type(images).__name__}")
        self.codec = codec
        self.keypoint_info = keypoint_info
        self.training = bool(training)
        self.color_rgb = bool(color_rgb)
        self.photometric = photometric
        self.seed = None if seed is None else int(seed)
        self.images = images
        self.reduced_decode = bool(reduced_decode) and self.training
        self.normalize_on_device = bool(normalize_on_device) and self.training
        self._flip_index = np.asarray(keypoint_info.flip_index, dtype=np.int64)
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple | None = None
        self._store(records)

    def _store(self, records: list[dict]) -> None:
        """Keep the records (as flat arrays: no per-item Python objects whose reference counts would
        un-share copy-on-write memory in forked DataLoader workers). Called last by ``__init__``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checks shared by the augmentations
    def _probability(self, key: str, value: float) -> float:
        """``value`` as a float in [0, 1]; ValueError naming ``key`` otherwise."""
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{type(self).__name__}: {key} is a probability in [0, 1], got {value!r}")
        return float(value)

    def _at_least(self, key: str, value: float, low: float = 0.0) -> float:
        """``value`` as a float >= ``low``; ValueError naming ``key`` otherwise."""
        if not float(value) >= low:
            raise ValueError(f"{type(self).__name__}: {key} must be >= {low:g}, got {value!r}")
        return float(value)

    def _fraction(self, key: str, value: float) -> float:
        """``value`` as a float in [0, 1) (a jitter s with 1 - s > 0); ValueError naming ``key`` otherwise."""
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{type(self).__name__}: {key} must be in [0, 1), got {value!r}")
        return float(value)

    # ------------------------------------------------------------------ pixels
    def read_bgr(self, image_file: bytes | str) -> np.ndarray:
        """The image of a record, (H, W, 3) uint8 BGR, from ``images`` or from its file."""
        name = os.fsdecode(image_file)
        if self.images is not None and name in self.images:
            return self.images[name]
        return read_image(name, color_rgb=False)

    def cache_images(self, *, max_bytes: int) -> int:
        """Decode every image of the dataset once into ``images`` (read-only BGR arrays, shared by
        forked loader workers) and return their bytes; items then read memory, not files, and
        ``reduced_decode`` no longer applies (the full image is in memory). Refused with a
        ValueError, and nothing kept, once the decoded images would pass ``max_bytes``."""
        images: dict[str, np.ndarray] = dict(self.images or {})
        total = 0
        for name in sorted(set(self.image_files().values()) - set(images)):
            image = read_image(name, color_rgb=False)
            image.flags.writeable = False  # one array serves every item: an in-place change would show in all
            total += image.nbytes
            if total > max_bytes:
                raise ValueError(
                    f"{type(self).__name__}: the decoded images pass {max_bytes / 2**30:.1f} GiB at {name} "
                    f"({len(images) + 1} images); data.cache_images=true is for data that fits in memory"
                )
            images[name] = image
        self.images = images
        return total

    def read_bgr_for_crop(self, image_file: bytes | str, shrink: float) -> tuple[np.ndarray, int, tuple[int, int]]:
        """The image of a crop taking ``shrink`` image pixels per crop pixel: (image, r, (H, W)),
        the image decoded at 1/r of its full size (H, W); r is 1 unless ``reduced_decode`` is on.
        Warp it with ``src.geometry.warp_from_reduced(matrix, r)``."""
        if not self.reduced_decode or (self.images is not None and os.fsdecode(image_file) in self.images):
            image = self.read_bgr(image_file)
            return image, 1, image.shape[:2]
        return read_image_for_crop(os.fsdecode(image_file), shrink=shrink)

    def model_channels(self, crop: np.ndarray) -> np.ndarray:
        """A BGR crop in the channel order the model is fed (``color_rgb``)."""
        return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if self.color_rgb else crop

    def photometric_crop(self, crop: np.ndarray) -> np.ndarray:
        """The training crop through ``photometric`` (drawn from this item's random state)."""
        if not self.training or self.photometric is None:
            return crop
        self._generator()  # make sure the photometric random state belongs to this worker / item
        return self.photometric(crop)

    def image_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """The item's image: normalised float32, or uint8 when ``normalize_on_device`` is on."""
        return image_tensor(crop, on_device=self.normalize_on_device)

    # ------------------------------------------------------------------ construction from a reader
    @staticmethod
    def split(training: bool) -> str:
        """The reader split a dataset reads: "train" for training, "val" for evaluation."""
        return "train" if training else "val"

    @classmethod
    def check_augmentation(cls, augmentation: Mapping[str, Any] | None) -> None:
        """ValueError listing the known keys when ``augmentation`` has others."""
        split_augmentation(dict(augmentation or {}), cls.AUGMENTATION_KEYS, training=False)

    @classmethod
    def read_records(cls, reader: Any, *, training: bool, codec: Any, keypoint_info: KeypointInfo) -> list[dict]:
        """The records of the reader's split (`split`) this dataset reads."""
        raise NotImplementedError

    @classmethod
    def from_reader(
        cls,
        reader: Any,
        *,
        training: bool,
        codec: Any,
        keypoint_info: KeypointInfo,
        augmentation: Mapping[str, Any] | None,
        color_rgb: bool,
        seed: int | None,
        reduced_decode: bool = False,
        normalize_on_device: bool = False,
    ) -> PoseDataset:
        """The dataset of a reader's split with the data config's settings (what the datamodule calls)."""
        records = cls.read_records(reader, training=training, codec=codec, keypoint_info=keypoint_info)
        own, photometric = split_augmentation(dict(augmentation or {}), cls.AUGMENTATION_KEYS, training=training)
        return cls(
            records,
            codec=codec,
            keypoint_info=keypoint_info,
            training=training,
            color_rgb=color_rgb,
            photometric=photometric,
            seed=seed,
            reduced_decode=reduced_decode,
            normalize_on_device=normalize_on_device,
            **own,
        )

    def collate_fn(self) -> Callable[[Sequence[dict]], dict] | None:
        """The DataLoader's collate function; None: the default, which stacks equal-shaped tensors."""
        return None
