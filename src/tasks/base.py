"""What every pose LightningModule shares: plain hyperparameters, network construction,
optimiser and schedule, the evaluation metric's life cycle and test-time options.

Subclasses set ``paradigm`` (a name of `src.paradigms`), ``default_evaluation`` and
``test_options`` (which evaluation keys may change at test time), and implement the steps. The
metric comes from the datamodule (the data config chooses it); the task only says which
submission options it has (`submission`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch import LightningModule
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from src.datasets.transforms import normalize_images
from src.hub.resolve import weights_path
from src.layouts import get_keypoint_info, layout_spec
from src.models.weights import (
    kaiming_init_,
    keep_batchnorm_fp32_,
    keep_prediction_layers_fp32_,
    load_official_weights,
)
from src.paradigms import get_paradigm
from src.tasks.param_groups import optimizer_params
from src.utils.hardware import UNKNOWN_BATCH, check_auto, choose_fast_path, decide_channels_last, input_shape_of

log = logging.getLogger(__name__)

#: Checkpoint key holding the class path of the task that wrote it (read by `load_task`).
TASK_CLASS_KEY = "task_class"


def to_plain(value: Any) -> Any:
    """DictConfig / ListConfig -> dict / list (resolved); everything else unchanged."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (more often than ``max_nonfinite_skips`` allows)."""


def last_checkpoint(trainer: Any) -> str:
    """The most recently written checkpoint of the trainer's checkpoint callbacks, or a note."""
    paths = []
    for callback in getattr(trainer, "checkpoint_callbacks", []) or []:
        for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
            if path and Path(path).is_file():
                paths.append(Path(path))
    if not paths:
        return "none written yet"
    return str(max(paths, key=lambda p: p.stat().st_mtime))


class PoseModule(LightningModule):
    """Base of the paradigm modules; its arguments are those of every task.

    Args:
        name: model name used in run folders and logs.
        net: config of the network (a ``_target_`` dict), built with Hydra.
        codec: config of the codec; the data pipeline builds the same codec from it.
        loss: config of the loss.
        optimizer: config of the optimiser, without ``params`` (e.g. ``_target_: torch.optim.Adam``).
        scheduler: config of the LR schedule, a ``_target_`` with ``_partial_: true`` that takes the
            optimiser (e.g. ``torch.optim.lr_scheduler.MultiStepLR`` with milestones and gamma, the
            official schedules); ``interval`` (epoch | step) says how often it is stepped and is not
            passed on. A schedule that needs the run's length declares ``total_steps`` and / or
            ``steps_per_epoch`` parameters and receives them (`src.tasks.schedules`). Keys set to
            null are left out, so a recipe can switch a model's schedule by nulling the old keys.
            None: a constant LR.
        param_groups: per-parameter LR and weight decay, a ``_target_`` in `src.tasks.param_groups`
            with its options (e.g. ``paramwise_groups`` with ``norm_decay_mult: 0`` and
            ``bias_decay_mult: 0``; ``layer_decay_groups`` with ``num_layers`` and
            ``layer_decay_rate``); the rules see the network's parameter names (``backbone.*``,
            ``head.*``). Null keys are left out. None: all parameters in one group.
        evaluation: test-time options, merged over ``default_evaluation``.
        keypoint_info: the keypoint layout (``data.layout``: a built-in name, a layout file, or the mapping a
            checkpoint stores); the hyperparameters keep a built-in's name or a file's whole content.
        pretrained: the backbone's initialisation, or None: a local file, a URL, a name of the weights
            registry (``python -m src.zoo``) or ``imagenet`` for the network's ``default_pretrained``
            (the file its official recipe starts from); downloads go to the cache once (`src.hub`).
        pretrained_partial: networks that list what a pretrained file gave their backbone
            (`src.models.pretrained`) refuse a file that leaves part of it uninitialised unless
            this is true.
        init: "official" (the official initialisation, e.g. N(0, 0.001) convolutions, then the
            ``pretrained`` file) or "pytorch" (PyTorch's default Kaiming-uniform init, better when
            training from scratch without ImageNet weights; ``pretrained`` must then be None) or
            "kaiming" (from scratch: Kaiming-normal convolutions and N(0, 0.001) prediction layers,
            `kaiming_init_`; ``pretrained`` must be None).
        channels_last: run the network in channels_last memory format; "auto": the fast path
            decides, as for a run (`src.utils.hardware.decide_channels_last`: channels_last on GPUs,
            the faster format measured on CPUs). Runs resolve it before the task is built
            (`src.runner.resolve_fast_path`, which honours ``fast_path=false``); the hyperparameter
            holds the resolved value.
        zero_init_residual: with init="kaiming", every residual block starts as its shortcut (the
            weight of its last BN is 0).
        official_weights: a local official checkpoint of this network (e.g. an HRNet ``.pth``
            state_dict or a PoseNet ``snapshot_24.pth.tar``) loaded over the initialisation with strict
            key and shape checks (`load_official_weights`), for evaluation or fine-tuning.
        max_nonfinite_skips: how many training steps with a NaN or infinite loss are skipped (no
            backward, no optimiser step, a warning) before training stops with an error that names
            the step and the last checkpoint; 0: stop at the first.
        fp32_prediction_layers: under mixed precision (bf16 / fp16 autocast), run the prediction
            layers (the 1x1 convolutions that output heatmaps, tags or 3D volumes) in fp32, so that
            the outputs the losses and decoders see are not rounded to 8 mantissa bits; no effect in
            fp32. Why: docs/performance.md (the fast path).
        fp32_batchnorm: under mixed precision, run the BatchNorm layers in fp32 and keep their
            outputs (and the residual sums after them) in fp32 (`keep_batchnorm_fp32_`); no effect
            in fp32. Why: docs/performance.md (the fast path).
        compile: run the network through ``torch.compile`` (``compile_mode``: default,
            reduce-overhead, max-autotune, ...; ``compile_backend``: inductor, or eager to check the
            plumbing). Compiling costs time at the first steps (``make bench`` measures when it
            pays); the weights and checkpoints are those of the plain network.
        paradigm: accepted for checkpoints written before the task class was recorded; must equal
            the class's ``paradigm`` when given.
        extra: further plain hyperparameters of the subclass.
    """

    paradigm: ClassVar[str]
    default_evaluation: ClassVar[dict[str, Any]] = {}
    #: Evaluation keys that `set_test_options` may change (besides ``refine``, see there).
    test_options: ClassVar[tuple[str, ...]] = ()
    #: Whether prediction on images needs person boxes (top-down crops) or finds the people itself.
    needs_boxes: ClassVar[bool] = False
    #: Whether predictions carry root-relative 3D joints (``predict_step`` returns ``joints_cam``).
    output_3d: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str,
        net: dict,
        codec: dict,
        loss: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        param_groups: dict | None = None,
        evaluation: dict | None = None,
        keypoint_info: Any = "coco17",
        pretrained: str | None = None,
        pretrained_partial: bool = False,
        channels_last: bool | str = False,
        init: str = "official",
        zero_init_residual: bool = False,
        official_weights: str | None = None,
        max_nonfinite_skips: int = 0,
        fp32_prediction_layers: bool = True,
        fp32_batchnorm: bool = True,
        compile: bool = False,
        compile_mode: str = "default",
        compile_backend: str = "inductor",
        paradigm: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__()
        if paradigm not in (None, self.paradigm):
            raise ValueError(f"{type(self).__name__} trains {self.paradigm} models, got paradigm={paradigm!r}")
        if init not in ("official", "pytorch", "kaiming"):
            raise ValueError(f"init must be 'official', 'pytorch' or 'kaiming', got {init!r}")
        if init != "official" and pretrained:
            raise ValueError(f"init={init!r} trains from scratch; it cannot be combined with pretrained weights")
        if zero_init_residual and init != "kaiming":
            raise ValueError(f"zero_init_residual is an option of init='kaiming', not of init={init!r}")
        if isinstance(codec, str):
            raise ValueError(
                f"model.codec is the string {codec!r}, not a codec config: choose a codec with the config "
                f"group syntax, model/codec={codec} (conf/model/codec/)"
            )
        built_codec = instantiate(to_plain(codec))
        evaluation_defaults = {**self.default_evaluation, **getattr(built_codec, "evaluation_defaults", {})}
        unknown = sorted(set(to_plain(evaluation) or {}) - set(evaluation_defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} with {type(built_codec).__name__} has no evaluation option {unknown}; "
                f"its options: {sorted(evaluation_defaults)}"
            )
        check_auto("channels_last", channels_last)
        hparams = {
            "name": name,
            "net": to_plain(net),
            "codec": to_plain(codec),
            "loss": to_plain(loss),
            "optimizer": to_plain(optimizer),
            "scheduler": to_plain(scheduler),
            "param_groups": to_plain(param_groups),
            "evaluation": {**evaluation_defaults, **(to_plain(evaluation) or {})},
            "keypoint_info": layout_spec(keypoint_info),
            "pretrained": pretrained,
            "pretrained_partial": bool(pretrained_partial),
            "channels_last": channels_last,
            "init": init,
            "zero_init_residual": zero_init_residual,
            "official_weights": official_weights,
            "max_nonfinite_skips": int(max_nonfinite_skips),
            "fp32_prediction_layers": bool(fp32_prediction_layers),
            "fp32_batchnorm": bool(fp32_batchnorm),
            "compile": bool(compile),
            "compile_mode": str(compile_mode),
            "compile_backend": str(compile_backend),
            **{k: to_plain(v) for k, v in extra.items()},
        }
        self.save_hyperparameters(hparams)
        self.net = instantiate(hparams["net"])
        if pretrained:  # a path, a URL, a registry name or "imagenet": the local file (downloaded once)
            pretrained = str(weights_path(pretrained, default=getattr(self.net, "default_pretrained", None)))
        if init == "official" and hasattr(self.net, "init_weights"):
            if "partial" in inspect.signature(self.net.init_weights).parameters:
                self.net.init_weights(pretrained, partial=bool(pretrained_partial))
            else:
                self.net.init_weights(pretrained)
        elif init == "kaiming":
            kaiming_init_(self.net, zero_residual=zero_init_residual)
        if official_weights:
            load_official_weights(self.net, official_weights)
        if fp32_prediction_layers:
            keep_prediction_layers_fp32_(self.net)
        if fp32_batchnorm:
            keep_batchnorm_fp32_(self.net)
        self.codec = built_codec
        if channels_last == "auto":  # built outside a run (e.g. a notebook): the same decider
            chosen = decide_channels_last(
                self.net,
                input_shape=input_shape_of(self.codec),
                batch_size=UNKNOWN_BATCH,
                precision=choose_fast_path().precision,
            )
            channels_last = bool(chosen["channels_last"])
        self.set_channels_last(bool(channels_last))
        self.loss_fn = instantiate(hparams["loss"])
        self.keypoint_info = get_keypoint_info(keypoint_info)
        self.val_metric: Any = None
        self.nonfinite_skipped = 0
        self._compiled: tuple[Any, Any] | None = None  # (network, its compiled form); not a submodule
        # Predictions of the last validation epoch for a few samples, drawn after training.
        self.visualized: dict[int, np.ndarray] = {}
        self.num_visualized = 0

    def set_channels_last(self, channels_last: bool) -> None:
        """Run the network (weights and inputs) in channels_last or NCHW memory format."""
        self.hparams.channels_last = bool(channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=layout)

    # ------------------------------------------------------------------ forward
    def forward(self, images: torch.Tensor, *inputs: torch.Tensor) -> Any:
        """The network's outputs on a batch (channels_last and torch.compile as configured);
        uint8 images (``data.normalize_on_device``) are normalised here, on the model's device.
        ``inputs``: what the network reads besides the images (a 3D codec's ``input_keys``)."""
        if images.dtype == torch.uint8:
            images = normalize_images(images)
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.network()(images, *inputs)

    def network(self) -> Any:
        """``net``, or its ``torch.compile`` form when ``compile`` is on (made on first use, and again
        if ``net`` was replaced, e.g. by an exported network)."""
        if not self.hparams.get("compile"):
            return self.net
        if self._compiled is None or self._compiled[0] is not self.net:
            compiled = torch.compile(self.net, mode=self.hparams.compile_mode, backend=self.hparams.compile_backend)
            object.__setattr__(self, "_compiled", (self.net, compiled))
        return self._compiled[1]

    # ------------------------------------------------------------------ training
    def training_loss(self, batch: dict) -> torch.Tensor:
        """The loss of one training batch (each paradigm logs its parts)."""
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        """`training_loss`, guarded: a NaN or infinite loss is skipped (returning None skips the
        backward pass and the optimiser step) up to ``max_nonfinite_skips`` times, then stops the
        run with `NonFiniteLossError`. The check reads the loss on the host once per step."""
        loss = self.training_loss(batch)
        if bool(torch.isfinite(loss.detach()).all()):
            return loss
        self.nonfinite_skipped += 1
        where = f"step {self.global_step} (epoch {self.current_epoch}, batch {batch_idx})"
        allowed = int(self.hparams.get("max_nonfinite_skips", 0))
        if self.nonfinite_skipped <= allowed:
            log.warning(
                "loss is %s at %s: step skipped (%d of %d allowed)", loss.item(), where, self.nonfinite_skipped, allowed
            )
            return None
        raise NonFiniteLossError(
            f"the training loss is {loss.item()} at {where}; training stopped. Last checkpoint: "
            f"{last_checkpoint(self.trainer)} (resume=true continues from it). A lower learning rate, "
            f"bf16 instead of fp16, or gradient clipping (trainer.gradient_clip_val) usually help; "
            f"model.max_nonfinite_skips=N skips up to N such steps."
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the task class, so a checkpoint loads without knowing its paradigm."""
        checkpoint[TASK_CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
        hparams = checkpoint.get("hyper_parameters")
        if hparams and hparams.get("official_weights"):  # the weights are in the checkpoint now
            checkpoint["hyper_parameters"] = {
                **hparams,
                "initialised_from": hparams["official_weights"],
                "official_weights": None,
            }

    # ------------------------------------------------------------------ test-time options
    def set_test_options(self, **options: Any) -> None:
        """Change test-time options (flip test, test scales, ...); None values keep the current one.

        Keys are `test_option_names` and ``refine`` (the codec's refinement, see `set_refine`);
        others raise a ValueError that lists the valid ones.
        """
        options = {k: v for k, v in options.items() if v is not None}
        valid = (*self.test_option_names(), "refine")
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no test-time option {unknown}; its options: {list(valid)}")
        if "refine" in options:
            self.set_refine(options.pop("refine"))
        self.hparams.evaluation.update(options)

    def set_refine(self, refine: Any) -> None:
        raise ValueError(f"{type(self).__name__} has no refinement option")

    def test_option_names(self) -> tuple[str, ...]:
        """The evaluation options that may change at test time: the task's ``test_options`` and
        those its codec adds (``codec.evaluation_defaults``)."""
        return (*self.test_options, *getattr(self.codec, "evaluation_defaults", {}))

    def current_test_options(self) -> dict[str, Any]:
        """The test-time options in force (recorded with evaluation results)."""
        return {k: self.hparams.evaluation[k] for k in self.test_option_names() if k in self.hparams.evaluation}

    # ------------------------------------------------------------------ prediction on images
    def infer(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int = 16,
        focal: float | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """The people in RGB uint8 images (H, W, 3), with this paradigm's test-time processing.

        Args:
            images: the images.
            boxes: per image, person boxes (B, 5) [x, y, w, h, score]; required when
                ``needs_boxes`` (top-down and 3D crops), ignored otherwise.
            batch_size: crops or images per network call.
            focal: 3D models: the focal length in pixels for the back-projection (default: the
                image width).

        Returns:
            Per image a dict of numpy arrays: ``keypoints`` (P, K, 3) [x, y, score] in image
            pixels, ``scores`` (P,), ``boxes`` (P, 4) [x, y, w, h]; 3D models add ``joints_3d``
            (P, K, 3) root-relative camera-frame joints in mm, ``root_depth`` (P,) and ``focal`` (P,).
        """
        raise NotImplementedError(f"{type(self).__name__} does not predict on images")

    def check_boxes(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None) -> list[np.ndarray]:
        """Per-image boxes as (B, 5) float32 arrays; a clear error when they are missing or malformed."""
        if boxes is None:
            raise ValueError(
                f"{self.hparams.name} is a model of person crops: it needs person boxes per image "
                "(or a bottom-up detector, detector_ckpt=...)"
            )
        if len(boxes) != len(images):
            raise ValueError(f"got person boxes for {len(boxes)} images, but {len(images)} images")
        checked = []
        for i, image_boxes in enumerate(boxes):
            array = np.asarray(image_boxes, dtype=np.float32)
            if array.size == 0:
                array = np.zeros((0, 5), np.float32)
            if array.ndim != 2 or array.shape[1] not in (4, 5) or not np.isfinite(array).all():
                raise ValueError(f"person boxes of image {i}: expected finite (B, 4) or (B, 5) [x, y, w, h(, score)]")
            if array.shape[1] == 4:
                array = np.concatenate([array, np.ones((len(array), 1), np.float32)], axis=1)
            checked.append(array)
        return checked

    def predict_crops(
        self, records: list[dict], images: Mapping[str, np.ndarray], *, batch_size: int
    ) -> Iterator[dict]:
        """``predict_step`` over the crops of ``records`` cut from in-memory BGR ``images`` (keyed by the
        records' ``image_file``) by this paradigm's dataset, exactly as in evaluation."""
        dataset_class = get_class(get_paradigm(self.paradigm).dataset)
        dataset = dataset_class(
            records,
            codec=self.codec,
            keypoint_info=self.keypoint_info,
            training=False,
            color_rgb=bool(self.hparams.get("color_rgb", True)),
            images=images,
        )
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn()):
            batch["image"] = batch["image"].to(self.device)
            yield self.predict_step(batch, 0)

    # ------------------------------------------------------------------ metric
    @classmethod
    def submission(cls, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        """How this paradigm submits predictions to a metric (e.g. COCO rescoring and OKS-NMS)."""
        return {}

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        self.check_layout(datamodule.keypoint_info, getattr(datamodule, "name", "the data"))
        if stage in ("fit", "validate", "test") and self.val_metric is None:
            self.val_metric = datamodule.build_metric(self.submission(self.hparams.evaluation))

    def check_layout(self, info: Any, data_name: str) -> None:
        """Refuse data annotated in another keypoint layout than the one this model predicts."""
        if (info.name, info.keypoint_names) != (self.keypoint_info.name, self.keypoint_info.keypoint_names):
            raise ValueError(
                f"{self.hparams.name} predicts the {self.keypoint_info.name!r} layout "
                f"({self.keypoint_info.num_keypoints} keypoints), but data={data_name} is annotated in "
                f"{info.name!r} ({info.num_keypoints} keypoints); evaluate it on data of its own layout"
            )

    def remember_for_picture(self, key: int, keypoints: np.ndarray) -> None:
        if len(self.visualized) < self.num_visualized or key in self.visualized:
            self.visualized[key] = keypoints

    def on_validation_epoch_end(self) -> None:
        self.log_metric("val")

    def on_test_epoch_end(self) -> None:
        self.log_metric("test")

    def log_metric(self, prefix: str) -> None:
        results = self.val_metric.compute()
        self.val_metric.reset()
        monitor = getattr(self.val_metric, "monitor", None)
        for key, value in results.items():
            self.log(f"{prefix}/{key}", value, prog_bar=key == monitor, rank_zero_only=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        factory = instantiate({**self.hparams.optimizer, "_partial_": True, "_convert_": "all"})
        optimizer = factory(optimizer_params(self, self.hparams.get("param_groups"), factory, strip_prefix="net."))
        config = {k: v for k, v in (self.hparams.scheduler or {}).items() if v is not None}
        if not config:
            return optimizer
        if "_target_" not in config:
            raise ValueError(
                f"model.scheduler needs a _target_ (e.g. torch.optim.lr_scheduler.MultiStepLR with _partial_: true), "
                f"got keys {sorted(config)}"
            )
        interval = config.pop("interval", "epoch")
        if interval not in ("epoch", "step"):
            raise ValueError(f"model.scheduler.interval must be 'epoch' or 'step', got {interval!r}")
        factory = instantiate({**config, "_partial_": True})
        required = getattr(factory.func, "interval", None)
        if required is not None and required != interval:
            raise ValueError(
                f"model.scheduler {config['_target_']} is stepped every {required}: "
                f"set model.scheduler.interval={required} (got {interval!r})"
            )
        run_length: dict[str, int] = {}
        wanted = inspect.signature(factory.func).parameters
        if "total_steps" in wanted or "steps_per_epoch" in wanted:
            total = int(self.trainer.estimated_stepping_batches)
            per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
            run_length = {k: v for k, v in (("total_steps", total), ("steps_per_epoch", per_epoch)) if k in wanted}
        scheduler = factory(optimizer, **run_length)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
