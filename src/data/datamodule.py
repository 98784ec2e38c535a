"""LightningDataModule for top-down pose datasets in COCO format (real COCO or synthetic).

The one module under ``src/data`` that imports Lightning. Everything is configured with plain
values (Hydra builds it); the codec object is passed in by the runner so the dataset encodes
exactly what the model decodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from src.data.bottomup_dataset import BottomUpDataset, collate_bottomup_val
from src.data.coco import check_coco_layout, load_coco_records
from src.data.coco_bottomup import load_coco_images
from src.data.keypoint_info import KeypointInfo, get_keypoint_info
from src.data.randomness import EpochSeededSampler
from src.data.topdown_dataset import TopDownDataset
from src.data.transforms import build_photometric

_AUGMENTATION_KEYS = (
    "scale_factor", "rotation_factor", "rotation_prob", "flip", "half_body_prob", "half_body_min_joints",
    "photometric",
)
_BOTTOMUP_AUGMENTATION_KEYS = (
    "max_rotation", "min_scale", "max_scale", "scale_type", "max_translate", "flip", "photometric",
)
PARADIGMS = ("topdown", "bottomup")


class PoseDataModule(pl.LightningDataModule):
    """Top-down train / val data from a COCO-format keypoint dataset.

    Args:
        name: "coco" (files must exist; a clear error says how to get them) or "synthetic"
            (generated offline under ``root`` by ``ensure_synthetic_coco`` on first use).
        root: dataset root; the four paths below are resolved against it unless absolute.
        train_ann, val_ann: keypoint annotation files (e.g. annotations/person_keypoints_train2017.json).
        train_images, val_images: image folders (e.g. images/train2017).
        keypoint_info: keypoint layout name ("coco17", ...).
        codec: the heatmap codec shared with the model (input size, heatmap size, sigma).
        batch_size, val_batch_size: per-process batch sizes.
        num_workers, pin_memory, persistent_workers: DataLoader settings.
        val_boxes: "gt" (ground-truth boxes) or "detections" (person detections from ``det_file``).
        det_file: detection results JSON (resolved against ``root`` unless absolute).
        det_score_thr: keep detections with score >= this (official IMAGE_THRE 0.0).
        augmentation: training augmentation: scale_factor, rotation_factor, rotation_prob, flip,
            half_body_prob, half_body_min_joints (see ``TopDownDataset``) and photometric (a dict
            of ``PhotometricAugment`` arguments, or None).
        color_rgb: feed RGB (HRNet) or BGR (SimpleBaseline configs).
        paradigm: "topdown" (person crops, MSRAHeatmap codec) or "bottomup" (whole images,
            AssociativeEmbedding codec); set by the runner from the model config.
        bottomup_augmentation: training augmentation of bottom-up models: max_rotation,
            min_scale, max_scale, scale_type, max_translate, flip (a probability), photometric.
        synthetic: keyword arguments of ``ensure_synthetic_coco`` when ``name == "synthetic"``.
        seed: base seed of the augmentation random numbers.
    """

    def __init__(
        self,
        *,
        name: str,
        root: str,
        train_ann: str,
        val_ann: str,
        train_images: str,
        val_images: str,
        codec: Any,
        keypoint_info: str = "coco17",
        batch_size: int = 32,
        val_batch_size: int = 32,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        val_boxes: str = "gt",
        det_file: str | None = None,
        det_score_thr: float = 0.0,
        augmentation: dict | None = None,
        color_rgb: bool = True,
        synthetic: dict | None = None,
        seed: int = 0,
        paradigm: str = "topdown",
        bottomup_augmentation: dict | None = None,
    ) -> None:
        super().__init__()
        if name not in ("coco", "synthetic"):
            raise ValueError(f"data name must be 'coco' or 'synthetic', got {name!r}")
        if val_boxes not in ("gt", "detections"):
            raise ValueError(f"val_boxes must be 'gt' or 'detections', got {val_boxes!r}")
        if val_boxes == "detections" and not det_file:
            raise ValueError("val_boxes='detections' needs det_file (a person detection results JSON)")
        if paradigm not in PARADIGMS:
            raise ValueError(f"paradigm must be one of {PARADIGMS}, got {paradigm!r}")
        if paradigm == "bottomup" and val_boxes != "gt":
            raise ValueError(
                "bottom-up models find the people themselves: data.val_boxes=detections (person boxes "
                "for top-down crops) does not apply; use data.val_boxes=gt"
            )
        augmentation = _checked(augmentation, _AUGMENTATION_KEYS, "augmentation")
        bottomup_augmentation = _checked(bottomup_augmentation, _BOTTOMUP_AUGMENTATION_KEYS, "bottomup_augmentation")
        self.name = name
        self.root = Path(root).expanduser()
        self.train_ann_file = self._resolve(train_ann)
        self._val_ann_file = self._resolve(val_ann)
        self.train_image_dir = self._resolve(train_images)
        self.val_image_dir = self._resolve(val_images)
        self.det_file = self._resolve(det_file) if det_file else None
        self._keypoint_info = get_keypoint_info(keypoint_info)
        self.codec = codec
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.val_boxes = val_boxes
        self.det_score_thr = float(det_score_thr)
        self.augmentation = augmentation
        self.bottomup_augmentation = bottomup_augmentation
        self.paradigm = paradigm
        self.color_rgb = bool(color_rgb)
        self.synthetic = dict(synthetic or {})
        self.seed = int(seed)
        self._train_dataset: TopDownDataset | BottomUpDataset | None = None
        self._val_dataset: TopDownDataset | BottomUpDataset | None = None

    def _resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p)

    # ----------------------------------------------------------------------- properties
    @property
    def val_ann_file(self) -> Path:
        """Absolute path of the validation annotation file (the COCO metric loads it)."""
        return self._val_ann_file.resolve()

    @property
    def keypoint_info(self) -> KeypointInfo:
        return self._keypoint_info

    @property
    def train_dataset(self) -> TopDownDataset:
        if self._train_dataset is None:
            raise RuntimeError("train_dataset is built by setup('fit'); call it first")
        return self._train_dataset

    @property
    def val_dataset(self) -> TopDownDataset:
        if self._val_dataset is None:
            raise RuntimeError("val_dataset is built by setup(); call it first")
        return self._val_dataset

    # ----------------------------------------------------------------------- lifecycle
    def prepare_data(self) -> None:
        """Synthetic: generate (or reuse) the dataset. COCO: check the files, explain if missing."""
        if self.name == "synthetic":
            from src.data.synthetic.generate import ensure_synthetic_coco

            ensure_synthetic_coco(self.root, **self.synthetic)
            return
        check_coco_layout(self.root, self.train_ann_file, self.train_image_dir, split="train")
        check_coco_layout(self.root, self._val_ann_file, self.val_image_dir, split="val")

    def setup(self, stage: str | None = None) -> None:
        """fit: train + val datasets; validate / test / predict: the val dataset."""
        if self.name == "coco":
            # prepare_data runs on one process only; every process checks so errors stay readable
            if stage in (None, "fit"):
                check_coco_layout(self.root, self.train_ann_file, self.train_image_dir, split="train")
            check_coco_layout(self.root, self._val_ann_file, self.val_image_dir, split="val")
        if stage in (None, "fit") and self._train_dataset is None:
            self._train_dataset = self._build(training=True)
        if self._val_dataset is None:
            self._val_dataset = self._build(training=False)

    def _build(self, *, training: bool) -> TopDownDataset | BottomUpDataset:
        if self.paradigm == "bottomup":
            return self._build_bottomup(training=training)
        aspect_ratio = self.codec.input_size[0] / self.codec.input_size[1]
        det_file = self.det_file if (not training and self.val_boxes == "detections") else None
        records = load_coco_records(
            self.train_ann_file if training else self._val_ann_file,
            self.train_image_dir if training else self.val_image_dir,
            keypoint_info=self._keypoint_info,
            aspect_ratio=aspect_ratio,
            training=training,
            det_file=det_file,
            det_score_thr=self.det_score_thr,
        )
        aug: dict[str, Any] = {k: v for k, v in self.augmentation.items() if k != "photometric"}
        photometric = build_photometric(self.augmentation.get("photometric")) if training else None
        return TopDownDataset(
            records,
            codec=self.codec,
            keypoint_info=self._keypoint_info,
            training=training,
            color_rgb=self.color_rgb,
            photometric=photometric,
            seed=self.seed,
            **aug,
        )

    def _build_bottomup(self, *, training: bool) -> BottomUpDataset:
        records = load_coco_images(
            self.train_ann_file if training else self._val_ann_file,
            self.train_image_dir if training else self.val_image_dir,
            keypoint_info=self._keypoint_info,
            training=training,
        )
        aug: dict[str, Any] = {k: v for k, v in self.bottomup_augmentation.items() if k != "photometric"}
        photometric = build_photometric(self.bottomup_augmentation.get("photometric")) if training else None
        codec = self.codec
        return BottomUpDataset(
            records,
            keypoint_info=self._keypoint_info,
            input_size=codec.input_size,
            output_sizes=codec.output_sizes,
            sigma=codec.sigma,
            max_num_people=codec.max_num_people,
            tag_per_joint=codec.tag_per_joint,
            scale_aware_sigma=codec.scale_aware_sigma,
            training=training,
            color_rgb=self.color_rgb,
            photometric=photometric,
            seed=self.seed,
            **aug,
        )

    # ----------------------------------------------------------------------- loaders
    def _loader(self, dataset: Any, *, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        # Bottom-up validation images keep their own sizes: they travel as lists, not stacked tensors.
        collate = collate_bottomup_val if (self.paradigm == "bottomup" and not dataset.training) else None
        # Training draws each sample's augmentation from (seed, epoch, index): reproducible with any
        # number of workers or processes, and across an interrupted and resumed run.
        sampler = EpochSeededSampler(dataset, seed=self.seed, shuffle=True) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            worker_init_fn=_worker_init,
            collate_fn=collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, batch_size=self.val_batch_size, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def _checked(options: dict | None, known: tuple[str, ...], name: str) -> dict:
    options = dict(options or {})
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown {name} keys {sorted(unknown)}; known: {list(known)}")
    return options


def _worker_init(worker_id: int) -> None:
    """No OpenCV thread pool inside DataLoader workers: the workers are the parallelism."""
    import cv2

    cv2.setNumThreads(0)
