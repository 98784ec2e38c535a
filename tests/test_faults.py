"""Faults during training: a NaN or infinite loss, and a disk that fills up while a checkpoint is
written. Each stops with a message naming what happened and what is intact, or is skipped as
configured; no checkpoint is lost."""

from __future__ import annotations

import errno

import pytest
import torch
from lightning.pytorch import Callback

from src.tasks.base import NonFiniteLossError
from src.train import train
from src.utils.checkpointing import AtomicCheckpointIO, CheckpointWriteError
from tests.helpers import compose_run
from tests.test_resume import RUN


class PoisonLoss(Callback):
    """Turns the training loss of the given training-step calls (1-based) into NaN."""

    def __init__(self, calls: list[int]) -> None:
        self.calls = set(calls)
        self.count = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        def hook(module, inputs, output):
            if not pl_module.training:
                return None
            self.count += 1
            return output * float("nan") if self.count in self.calls else None

        pl_module.loss_fn.register_forward_hook(hook)


class DiskFullOnSecondSave(AtomicCheckpointIO):
    """Writes the first checkpoint, then fails the next one half-way through, as a full disk does."""

    saves = 0

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        type(self).saves += 1
        if type(self).saves == 1:
            return super().save_checkpoint(checkpoint, path, storage_options)
        real_save = torch.save

        def full(obj, handle, *args, **kwargs):
            handle.write(b"\x00" * 1024)
            raise OSError(errno.ENOSPC, "No space left on device")

        torch.save = full
        try:
            super().save_checkpoint(checkpoint, path, storage_options)
        finally:
            torch.save = real_save


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _poison(calls: str) -> list[str]:
    return ["+callbacks.poison._target_=tests.test_faults.PoisonLoss", f"+callbacks.poison.calls={calls}"]


def test_a_nan_loss_stops_training_and_names_the_step_and_checkpoint(tmp_path, data_dir):
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as info:
        train(compose_run("train", [*RUN, *_poison("[5]")], run, data_dir))
    last = run / "checkpoints" / "last.ckpt"
    message = str(info.value)
    assert "loss is nan at step 4 (epoch 1, batch 1)" in message and str(last) in message
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)  # intact, from the first epoch
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


def test_nan_steps_are_skipped_when_allowed(tmp_path, data_dir):
    run = tmp_path / "run"
    train(compose_run("train", [*RUN, *_poison("[2,7]"), "model.max_nonfinite_skips=2"], run, data_dir))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # Lightning counts the two poisoned batches as steps, but no parameter moved on them: Adam's own
    # step count of each parameter is two short
    assert checkpoint["global_step"] == 9
    assert {float(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()} == {9.0 - 2}
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    with pytest.raises(NonFiniteLossError, match="model.max_nonfinite_skips=N"):
        train(compose_run("train", [*RUN, *_poison("[2,3]"), "model.max_nonfinite_skips=1"], tmp_path / "b", data_dir))


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, data_dir, monkeypatch):
    DiskFullOnSecondSave.saves = 0
    run = tmp_path / "run"
    overrides = [*RUN, "~callbacks.model_checkpoint", "+plugins.io._target_=tests.test_faults.DiskFullOnSecondSave"]
    with pytest.raises(CheckpointWriteError, match="No space left on device"):
        train(compose_run("train", overrides, run, data_dir))
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert files == ["last.ckpt"]  # no temporary file left behind
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 0


def test_the_atomic_writer_names_the_file_and_what_is_intact(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def full(obj, handle, *args, **kwargs):
        handle.write(b"\x00" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(
        CheckpointWriteError, match=r"last.ckpt: No space left on device; the previous last.ckpt is intact"
    ):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
