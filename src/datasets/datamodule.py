"""LightningDataModule generic over sources (readers), paradigms (datasets) and metrics.

The one module under ``src/datasets`` that imports Lightning. A data config is its arguments as
written (``hydra.utils.instantiate(cfg.data, codec=..., paradigm=...)``): a reader (COCO, MPII,
synthetic, ...), a metric factory, the loader settings, and the keys that only check or feed
others (see the class's Args); the runner adds the codec shared with the model and the model's
paradigm, which chooses the dataset class and the augmentation block (`src.paradigms`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from src.datasets.randomness import EpochSeededSampler
from src.layouts import KeypointInfo, get_keypoint_info
from src.paradigms import PARADIGMS, get_paradigm
from src.utils.hardware import check_auto, decide

log = logging.getLogger(__name__)


def _fast_path_flag(name: str, value: bool | str) -> bool:
    """A data shortcut's setting: true, false or ``auto`` (the fast path decides, as in a run;
    runs resolve it first, `src.runner.resolve_fast_path`, honouring fast_path=false)."""
    if check_auto(f"data.{name}", value) == "auto":
        return bool(decide(f"data.{name}"))
    return bool(value)


def stage_splits(stage: str | None) -> tuple[str, ...]:
    """The reader splits a Lightning stage reads: ("train", "val") to fit (None: fit), ("val",) otherwise."""
    return ("train", "val") if stage in (None, "fit") else ("val",)


class PoseDataModule(pl.LightningDataModule):
    """Train / val data of one source for one paradigm.

    Args:
        name: the data config's name (run folders, messages).
        reader: the source (``prepare``, ``check``, ``load_records`` / ``load_images``, ``metric_inputs``).
        metric: factory of the evaluation metric (a Hydra partial of a torchmetrics Metric that
            declares ``monitor``, ``mode`` and ``submission_options``); see `build_metric`.
        root_metric: 3D data: the metric of root models (RootNet), chosen by their codec's
            ``metric_key`` (see `build_metric`).
        dataset: the paradigm's Dataset class (``from_reader``, ``collate_fn``); set by the runner.
        codec: the codec shared with the model (targets in, predictions out).
        paradigm: the model's paradigm (`src.paradigms`): it chooses the dataset class (unless
            ``dataset`` is given) and which augmentation block the dataset receives.
        layout: the keypoint layout (`src.layouts.get_keypoint_info`: a built-in name such as "coco17",
            a conf/layouts/ file by name, a path to a layout YAML file, or a stored mapping).
        augmentation: the paradigm's training augmentation (keys checked by the dataset).
        batch_size, val_batch_size: per-process batch sizes.
        num_workers, pin_memory, persistent_workers: DataLoader settings.
        color_rgb: feed RGB (HRNet) or BGR (SimpleBaseline configs).
        seed: base seed of the augmentation random numbers.
        reduced_decode: decode training JPEGs at 1/2, 1/4 or 1/8 of their size when the crop
            shrinks them that much (`src.readers.images.read_image_for_crop`); ``auto``: the fast
            path decides (on; runs resolve it first and honour ``fast_path=false``, `src.runner`).
        normalize_on_device: training items carry uint8 images that the task normalises on its
            device (the same numbers; a quarter of the bytes between processes); ``auto`` as
            ``reduced_decode``.
        cache_images: decode every train and val image once at setup and read them from memory
            (forked loader workers share them); for data whose two splits fit in half the machine's
            memory (the synthetic sets), refused beyond that. Each process of a multi-GPU run holds a copy.
        paradigms: the paradigms the data has pipelines for (None: all); another is refused.
        num_keypoints, sigma: the data's joint count and target sigma, which the model config
            interpolates (``${data.num_keypoints}``); checked against the layout and the codec.
        root: the source's folder, which the reader interpolates (``${data.root}``).
        source_keys: the names of further settings of the data config that its reader interpolates
            (e.g. Human3.6M's ``train_subjects``); they arrive in ``settings``, checked, unused here.
        settings: the other paradigms' augmentation blocks (each paradigm names its block in
            `src.paradigms`, e.g. ``bottomup_augmentation``) and the ``source_keys``; any other
            key is refused.
    """

    def __init__(
        self,
        *,
        name: str,
        reader: Any,
        metric: Callable[..., Any],
        codec: Any,
        root_metric: Callable[..., Any] | None = None,
        paradigm: str | None = None,
        dataset: type[Dataset] | None = None,
        layout: Any = "coco17",
        augmentation: Mapping[str, Any] | None = None,
        batch_size: int = 32,
        val_batch_size: int = 32,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        color_rgb: bool = True,
        seed: int = 0,
        reduced_decode: bool | str = False,
        normalize_on_device: bool | str = False,
        cache_images: bool = False,
        paradigms: list[str] | None = None,
        num_keypoints: int | None = None,
        sigma: float | None = None,
        root: str | None = None,
        source_keys: list[str] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        blocks = {p.augmentation: settings.pop(p.augmentation, None) for p in PARADIGMS.values()}
        blocks["augmentation"] = augmentation
        unknown = sorted(set(settings) - set(source_keys or ()))
        if unknown:
            raise ValueError(
                f"data={name}: unknown keys {unknown}; a setting that the reader interpolates is named in "
                "the data config's source_keys"
            )
        if paradigm is not None:
            if paradigms is not None and paradigm not in paradigms:
                raise ValueError(f"data={name} provides pipelines for {list(paradigms)}, but the model is {paradigm!r}")
            chosen = get_paradigm(paradigm)
            augmentation = blocks[chosen.augmentation]
            if dataset is None:
                from hydra.utils import get_class

                dataset = get_class(chosen.dataset)
        if dataset is None:
            raise ValueError(f"data={name}: give the model's paradigm (or a dataset class)")
        self.name = name
        self.reader = reader
        self.metric_factory = metric
        self.root_metric_factory = root_metric
        self.dataset_class = dataset
        self.codec = codec
        self._keypoint_info = get_keypoint_info(layout)
        if num_keypoints is not None and int(num_keypoints) != self._keypoint_info.num_keypoints:
            raise ValueError(
                f"data.num_keypoints={num_keypoints} disagrees with layout {self._keypoint_info.name!r} "
                f"({self._keypoint_info.num_keypoints} keypoints)"
            )
        codec_sigma = getattr(codec, "heatmap_sigma", None)  # heatmap codecs only (SimCC's sigma counts bins)
        if sigma is not None and codec_sigma is not None and codec_sigma != sigma:
            raise ValueError(f"the model codec's sigma {codec_sigma} differs from data.sigma={sigma}")
        self.root = root
        self.augmentation = dict(augmentation or {})
        dataset.check_augmentation(self.augmentation)
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.color_rgb = bool(color_rgb)
        self.seed = int(seed)
        self.reduced_decode = _fast_path_flag("reduced_decode", reduced_decode)
        self.normalize_on_device = _fast_path_flag("normalize_on_device", normalize_on_device)
        self.cache_images = bool(cache_images)
        self._cached_bytes = 0  # images decoded by cache_images so far (train and val share the budget)
        self._train_dataset: Dataset | None = None
        self._val_dataset: Dataset | None = None
        self._resume_state: dict[str, Any] = {}  # from a checkpoint, used by the next train_dataloader

    # ----------------------------------------------------------------------- properties
    @property
    def keypoint_info(self) -> KeypointInfo:
        return self._keypoint_info

    @property
    def train_dataset(self) -> Any:
        if self._train_dataset is None:
            raise RuntimeError("train_dataset is built by setup('fit'); call it first")
        return self._train_dataset

    @property
    def val_dataset(self) -> Any:
        if self._val_dataset is None:
            raise RuntimeError("val_dataset is built by setup(); call it first")
        return self._val_dataset

    def build_metric(self, options: Mapping[str, Any] | None = None) -> Any:
        """The evaluation metric of this source, for predictions in this layout.

        ``options`` are the task's submission options (e.g. COCO rescoring and OKS-NMS); the
        metric receives those it declares in ``submission_options``. The codec names which of the
        data's metrics its predictions feed (``metric_key``: ``metric``, or ``root_metric`` for
        RootNet's roots).
        """
        key = getattr(self.codec, "metric_key", "metric")
        factory = {"metric": self.metric_factory, "root_metric": self.root_metric_factory}.get(key)
        if factory is None:
            raise ValueError(
                f"data={self.name} has no {key}: {self.codec!r} is evaluated with it (RootNet: the 3D data with "
                "cameras, h36m, muco, mupots and their synthetic_* versions)"
            )
        metric_class = getattr(factory, "func", factory)
        accepted = set(getattr(metric_class, "submission_options", ()))
        chosen = {k: v for k, v in (options or {}).items() if k in accepted}
        return factory(keypoint_info=self._keypoint_info, **self.reader.metric_inputs(), **chosen)

    # ----------------------------------------------------------------------- lifecycle
    def prepare_data(self, stage: str | None = None) -> None:
        """Generate a synthetic source, or check a real one (a message says how to get it).

        Only the splits of ``stage`` are checked (`stage_splits`): an evaluation needs no training
        files. ``stage`` defaults to what the attached trainer is doing, else "fit".
        """
        running = self.trainer.state.fn if self.trainer is not None else None
        if stage is None and running is not None:
            stage = str(running.value)  # "fit", "validate", "test", "predict"
        splits = stage_splits(stage)
        if stage in (None, "fit") and not self.has_validation:
            splits = tuple(s for s in splits if s != "val")
        self.reader.prepare(splits=splits)

    @property
    def has_validation(self) -> bool:
        """Whether the source has a validation split (MuCo-3DHP, for one, is a training set only:
        a run on it trains without validating, and is evaluated on another dataset)."""
        return "val" in getattr(self.reader, "splits", ("train", "val"))

    def setup(self, stage: str | None = None) -> None:
        """fit: train + val datasets (train alone for a source without validation split);
        validate / test / predict: the val dataset."""
        # prepare_data runs on one process only; every process checks so errors stay readable
        fitting = stage in (None, "fit")
        if fitting:
            self.reader.check("train")
        if not (fitting and not self.has_validation):
            self.reader.check("val")
        if fitting and self._train_dataset is None:
            self._train_dataset = self._build(training=True)
        if self._val_dataset is None and not (fitting and not self.has_validation):
            self._val_dataset = self._build(training=False)

    def _build(self, *, training: bool) -> Dataset:
        dataset = self.dataset_class.from_reader(
            self.reader,
            training=training,
            codec=self.codec,
            keypoint_info=self._keypoint_info,
            augmentation=self.augmentation,
            color_rgb=self.color_rgb,
            seed=self.seed,
            reduced_decode=self.reduced_decode,
            normalize_on_device=self.normalize_on_device,
        )
        if len(dataset) == 0:  # an empty file, or nobody usable in it: say so before a loader does
            split = "train" if training else "val"
            source = getattr(self.reader, "ann_files", {}).get(split, f"the {split} split")
            raise ValueError(
                f"data={self.name}: {source} yields no {self.dataset_class.__name__} samples (no annotated "
                f"people with labelled keypoints); python -m src.check_data data={self.name} lists why"
            )
        if self.cache_images:
            split = "train" if training else "val"
            try:
                size = dataset.cache_images(max_bytes=_memory_bytes() // 2 - self._cached_bytes)
            except ValueError as err:
                raise ValueError(f"data={self.name} ({split} split), data.cache_images=true: {err}") from err
            self._cached_bytes += size
            count = len(dataset.images)
            log.info("data=%s: %d %s images decoded into memory (%.1f MiB)", self.name, count, split, size / 2**20)
        return dataset

    # ----------------------------------------------------------------------- loaders
    def _loader(self, dataset: Any, *, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
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
            collate_fn=dataset.collate_fn(),
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.train_dataset, batch_size=self.batch_size, shuffle=True, drop_last=True)
        if self.trainer is not None:  # workers start (and draw their indices) before Lightning sets the
            # epoch, so a resumed run would draw its first epoch as epoch 0
            loader.sampler.set_epoch(int(self.trainer.fit_loop.epoch_progress.current.processed))
        done = int(self._resume_state.get("batches_done", 0))
        epoch_length = int(self._resume_state.get("epoch_batches", 0))
        if 0 < done < min(epoch_length, len(loader)):  # a checkpoint written part-way through an epoch
            loader.sampler.skip_next(done * self.batch_size)
            # Lightning warns that such a resume is unreliable for loaders it cannot restore; this
            # one goes on with exactly the batches that epoch had left
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        self._resume_state = {}
        return loader

    # ----------------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """Where the training epoch stands, saved in every checkpoint: an epoch interrupted after
        a mid-epoch checkpoint resumes with the batches it had left (`EpochSeededSampler.skip_next`)."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        epoch_batches = trainer.num_training_batches
        return {
            "epoch": int(trainer.current_epoch),
            "batches_done": int(progress.processed),
            "epoch_batches": int(epoch_batches) if epoch_batches != float("inf") else 0,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_state = dict(state_dict or {})

    def val_dataloader(self) -> DataLoader | list:
        if self._val_dataset is None and not self.has_validation:
            return []  # training without validation (the source has no validation split)
        return self._loader(self.val_dataset, batch_size=self.val_batch_size, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def _memory_bytes() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _worker_init(worker_id: int) -> None:
    """No OpenCV thread pool inside DataLoader workers: the workers are the parallelism."""
    import cv2

    cv2.setNumThreads(0)
