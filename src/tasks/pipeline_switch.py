"""Switch the training data to its stage-2 augmentation for the last epochs (RTMPose's two stages).

mmdet's ``PipelineSwitchHook`` replaces the training pipeline before the 0-based epoch
``switch_epoch`` (RTMPose: max_epochs - 30) and restarts persistent DataLoader workers, which keep
a copy of the dataset. Here the dataset decides itself: the training sampler hands it
``(index, epoch)`` keys, and items drawn for an epoch >= its ``stage2_epoch`` use the stage-2
augmentation (`src.datasets.topdown.TopDownDataset.set_stage2_epoch`). This callback sets that
epoch once, at ``setup``, before the first training DataLoader starts its workers, so persistent
workers switch at the right epoch without a restart, and a run resumed from a checkpoint is in the
stage of its epoch. At each epoch start it also sets the dataset's ``stage`` (used by items read by
plain index) and says when stage 2 begins.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info


class PipelineSwitch(Callback):
    """Stage-2 augmentation from the 0-based epoch ``switch_epoch`` on.

    Args (one of the two):
        stage2_num_epochs: the last this many epochs use stage 2 (switch_epoch = trainer.max_epochs
            - stage2_num_epochs; RTMPose: 30).
        switch_epoch: the first 0-based epoch of stage 2.

    The training dataset must come from the trainer's datamodule (its ``train_dataset``) and offer
    ``set_stage2_epoch``, ``stage_of`` and ``stage`` (`TopDownDataset` with ``data.augmentation.stage2``).
    """

    def __init__(self, *, stage2_num_epochs: int | None = None, switch_epoch: int | None = None) -> None:
        if (stage2_num_epochs is None) == (switch_epoch is None):
            raise ValueError("PipelineSwitch: give exactly one of stage2_num_epochs and switch_epoch")
        for key, value in (("stage2_num_epochs", stage2_num_epochs), ("switch_epoch", switch_epoch)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
                raise ValueError(f"PipelineSwitch: {key} must be an integer >= 0, got {value!r}")
        self.stage2_num_epochs = None if stage2_num_epochs is None else int(stage2_num_epochs)
        self._switch_epoch = None if switch_epoch is None else int(switch_epoch)
        self._dataset: Any = None

    def switch_epoch(self, max_epochs: int | None) -> int:
        """The first 0-based epoch of stage 2 for a run of ``max_epochs`` epochs."""
        if self._switch_epoch is not None:
            return self._switch_epoch
        if max_epochs is None or max_epochs < 0:
            raise ValueError(
                f"PipelineSwitch: stage2_num_epochs={self.stage2_num_epochs} needs trainer.max_epochs, "
                f"got {max_epochs!r}"
            )
        if self.stage2_num_epochs > max_epochs:
            raise ValueError(
                f"PipelineSwitch: stage2_num_epochs={self.stage2_num_epochs} is more than "
                f"trainer.max_epochs={max_epochs}"
            )
        return max_epochs - self.stage2_num_epochs

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        datamodule = trainer.datamodule
        try:
            dataset = getattr(datamodule, "train_dataset", None) if datamodule is not None else None
        except RuntimeError:  # PoseDataModule before its setup("fit")
            dataset = None
        if dataset is None:
            raise ValueError(
                "PipelineSwitch: the training dataset must come from the trainer's datamodule (its train_dataset), "
                "so that the stage-2 epoch reaches it before the DataLoader workers copy it"
            )
        if not callable(getattr(dataset, "set_stage2_epoch", None)):
            raise TypeError(
                f"PipelineSwitch: {type(dataset).__name__} has no two-stage augmentation (set_stage2_epoch); "
                "use a top-down model with data.augmentation.stage2"
            )
        switch = self.switch_epoch(trainer.max_epochs)
        dataset.set_stage2_epoch(switch)  # refuses a dataset without data.augmentation.stage2
        self._dataset = dataset
        rank_zero_info(f"PipelineSwitch: stage-2 augmentation from epoch {switch} (0-based) on")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loaders = trainer.train_dataloader
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        datasets = [getattr(dl, "dataset", None) for dl in loaders]
        if self._dataset is None or not any(d is self._dataset for d in datasets):
            raise RuntimeError(
                "PipelineSwitch: the training DataLoader does not read the datamodule's train_dataset that "
                "setup() switched; its workers would not see the stage-2 epoch"
            )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._dataset is None:
            return
        stage = self._dataset.stage_of(trainer.current_epoch)
        if stage != self._dataset.stage and stage == 2:
            rank_zero_info(f"PipelineSwitch: epoch {trainer.current_epoch}: stage-2 augmentation")
        self._dataset.stage = stage
