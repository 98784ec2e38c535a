"""PipelineSwitch: stage-2 augmentation from the right epoch, through persistent DataLoader workers
and across a resume."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from src.datasets.randomness import EpochSeededSampler
from src.datasets.topdown import TopDownDataset
from src.tasks.pipeline_switch import PipelineSwitch
from tests.data.test_rtmpose_augmentation import CropPoints, person_image, person_record

#: Stage 1 always shrinks the box (scale 0.5..0.9), stage 2 always grows it (1.1..1.5): an item's
#: ``scale`` says its stage.
AUGMENTATION = dict(
    geometric="mmpose",
    mmpose=dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, rotate_prob=0.0, scale_factor=[0.5, 0.9]),
    stage2=dict(mmpose=dict(scale_factor=[1.1, 1.5])),
)
BASE_SCALE = float(person_record()["scale"][0])


class Data(LightningDataModule):
    """8 crops of one synthetic person, 2 batches an epoch, read by persistent workers."""

    def __init__(self, *, workers: int = 2, **augmentation) -> None:
        super().__init__()
        self.workers = workers
        self.augmentation = augmentation or AUGMENTATION
        self.train_dataset = None

    def setup(self, stage: str) -> None:
        if self.train_dataset is None:
            self.train_dataset = TopDownDataset(
                [dict(person_record(), sample_id=i) for i in range(8)],
                codec=CropPoints((24, 32)),
                keypoint_info="coco17",
                training=True,
                seed=0,
                images={"person.png": person_image()},
                normalize_on_device=True,
                **self.augmentation,
            )

    def train_dataloader(self) -> DataLoader:
        ds = self.train_dataset
        sampler = EpochSeededSampler(ds, seed=0)
        # Lightning starts the workers (and their prefetch) before it sets the sampler's epoch, so a
        # resumed run would draw its first epoch as epoch 0: the epoch is set here, when the loader is made
        sampler.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed)
        return DataLoader(
            ds, batch_size=4, sampler=sampler, num_workers=self.workers, persistent_workers=self.workers > 0
        )


class Recorder(LightningModule):
    """Keeps every training item's scale ratio (to its record's scale, ``base(batch)``) by epoch;
    ``stages`` reads the stage of each epoch."""

    def __init__(self, base=lambda batch: BASE_SCALE) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.base = base
        self.ratios: dict[int, list[float]] = {}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        ratio = (batch["scale"][:, 0] / self.base(batch)).tolist()
        self.ratios.setdefault(self.current_epoch, []).extend(ratio)
        return (self.w * batch["image"].float().mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def stages(self) -> list[int]:
        out = []
        for epoch in sorted(self.ratios):
            r = np.array(self.ratios[epoch])
            assert (r < 0.9 + 1e-5).all() or (r > 1.1 - 1e-5).all(), (epoch, r)  # one stage per epoch
            out.append(1 if r[0] < 1 else 2)
        return out


def _fit(model: Recorder, data: Data, callbacks: list, max_epochs: int, tmp_path, ckpt_path=None) -> Trainer:
    trainer = Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer


def test_switch_at_the_right_epoch_with_persistent_workers(tmp_path) -> None:
    model, data = Recorder(), Data(workers=2)
    _fit(model, data, [PipelineSwitch(stage2_num_epochs=2)], 5, tmp_path)
    assert model.stages() == [1, 1, 1, 2, 2]  # switch_epoch = 5 - 2 = 3 (0-based)
    assert data.train_dataset.stage2_epoch == 3 and data.train_dataset.stage == 2
    assert len(model.ratios[0]) == 8


def test_an_attribute_set_at_epoch_start_does_not_reach_persistent_workers(tmp_path) -> None:
    """Why the dataset derives the stage from the epoch: the workers hold copies made at the first
    epoch, so setting the stage in the main process later changes nothing there."""

    class NaiveSwitch(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            if trainer.current_epoch >= 1:
                trainer.datamodule.train_dataset.stage = 2

    model = Recorder()
    _fit(model, Data(workers=2), [NaiveSwitch()], 3, tmp_path)
    assert model.stages() == [1, 1, 1]


def test_a_run_resumed_in_stage_2_stays_in_stage_2(tmp_path) -> None:
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1, every_n_epochs=1)
    whole = Recorder()
    _fit(whole, Data(workers=2), [PipelineSwitch(switch_epoch=1), checkpoints], 3, tmp_path)
    assert whole.stages() == [1, 2, 2]

    resumed = Recorder()
    _fit(
        resumed,
        Data(workers=2),
        [PipelineSwitch(switch_epoch=1)],
        3,
        tmp_path,
        ckpt_path=tmp_path / "ckpt" / "epoch=1.ckpt",
    )
    assert sorted(resumed.ratios) == [2] and resumed.stages() == [2]
    assert resumed.ratios[2] == whole.ratios[2]  # the very same items as the uninterrupted run


def test_arguments_and_datasets_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one of stage2_num_epochs and switch_epoch"):
        PipelineSwitch()
    with pytest.raises(ValueError, match="exactly one of"):
        PipelineSwitch(stage2_num_epochs=30, switch_epoch=390)
    with pytest.raises(ValueError, match="stage2_num_epochs must be an integer >= 0"):
        PipelineSwitch(stage2_num_epochs=-1)
    assert PipelineSwitch(stage2_num_epochs=30).switch_epoch(420) == 390  # RTMPose
    assert PipelineSwitch(switch_epoch=7).switch_epoch(None) == 7
    with pytest.raises(ValueError, match="stage2_num_epochs=30 is more than trainer.max_epochs=10"):
        PipelineSwitch(stage2_num_epochs=30).switch_epoch(10)
    with pytest.raises(ValueError, match="needs trainer.max_epochs"):
        PipelineSwitch(stage2_num_epochs=30).switch_epoch(-1)

    def trainer_with(data) -> SimpleNamespace:
        return SimpleNamespace(datamodule=data, max_epochs=10)

    switch = PipelineSwitch(stage2_num_epochs=3)
    with pytest.raises(ValueError, match="must come from the trainer's datamodule"):
        switch.setup(trainer_with(None), None, "fit")
    single = Data(workers=0, geometric="mmpose")
    single.setup("fit")
    with pytest.raises(ValueError, match="no stage-2 augmentation to switch to; set data.augmentation.stage2"):
        switch.setup(trainer_with(single), None, "fit")
    with pytest.raises(TypeError, match="has no two-stage augmentation"):
        switch.setup(trainer_with(SimpleNamespace(train_dataset=object())), None, "fit")
    switch.setup(trainer_with(None), None, "validate")  # nothing to do outside fitting


def test_a_resumed_run_of_the_pose_datamodule_with_workers_is_in_its_epochs_stage(tmp_path) -> None:
    from src.datasets.datamodule import PoseDataModule
    from src.metrics.coco_metric import COCOKeypointMetric
    from src.readers.coco import COCOReader
    from tests.data.tiny_coco import make_tiny_coco

    root = make_tiny_coco(tmp_path / "coco")
    paths = dict(
        train_ann="annotations/person_keypoints_train2017.json",
        val_ann="annotations/person_keypoints_val2017.json",
        train_images="images/train2017",
        val_images="images/val2017",
    )

    def module() -> PoseDataModule:
        return PoseDataModule(
            name="coco",
            reader=COCOReader(root=str(root), **paths),
            metric=COCOKeypointMetric,
            dataset=TopDownDataset,
            codec=CropPoints((24, 32)),
            batch_size=1,
            num_workers=2,
            pin_memory=False,
            persistent_workers=True,
            augmentation=AUGMENTATION,
        )

    def recorder(dm: PoseDataModule) -> Recorder:
        return Recorder(base=lambda batch: torch.from_numpy(dm.train_dataset._scales[batch["sample_id"].numpy(), 0]))

    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1, every_n_epochs=1)
    dm = module()
    whole = recorder(dm)
    _fit(whole, dm, [PipelineSwitch(switch_epoch=1), checkpoints], 3, tmp_path)
    assert whole.stages() == [1, 2, 2]
    dm = module()
    resumed = recorder(dm)
    _fit(resumed, dm, [PipelineSwitch(switch_epoch=1)], 3, tmp_path, ckpt_path=tmp_path / "ckpt" / "epoch=1.ckpt")
    assert resumed.stages() == [2] and resumed.ratios[2] == whole.ratios[2]
