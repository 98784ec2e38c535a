"""Faults during training: a NaN or infinite loss, and a disk that fills up while a checkpoint is
written. Each stops with a message naming what happened and what is intact, or is skipped as
configured; no checkpoint is lost."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback

from src.tasks.base import NonFiniteLossError
from src.train import train
from src.utils.checkpointing import AtomicCheckpointIO, CheckpointWriteError
from tests.helpers import TINY_SYNTHETIC, compose_run
from tests.test_resume import RUN
from tests.test_train import TINY_HRNET

ROOT = Path(__file__).resolve().parents[1]


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


class KillAt(Callback):
    """SIGKILLs its own process when training reaches ``step`` (no clean-up, as the OOM killer or a
    pre-empted node does)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


# 3 epochs of 3 steps; checkpoints/last.ckpt also every 2 steps (2, 4, 6, 8)
STEPPED = [
    *RUN,
    "callbacks.checkpoint_every_n_steps=2",
    "~callbacks.model_checkpoint",
]


def _train_process(run_dir, data_dir, extra: list[str]) -> subprocess.CompletedProcess:
    """python -m src.train in a fresh process (one thread, as the test session), into ``run_dir``."""
    overrides = [
        *STEPPED,
        *extra,
        "run_name=killed",
        f"paths.log_dir={run_dir.parent}",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={run_dir}",
        "data.num_workers=0",
        "data.persistent_workers=false",
        "data.pin_memory=false",
        "trainer.accelerator=cpu",
        "callbacks.progress_bar=null",
        "fast_path=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "src.train", *overrides],  # OMP_NUM_THREADS=1: one torch thread
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path, data_dir):
    whole = _train_process(tmp_path / "whole", data_dir, [])
    assert whole.returncode == 0, whole.stderr[-3000:]

    run = tmp_path / "killed"
    killed = _train_process(
        run, data_dir, ["+callbacks.kill._target_=tests.test_faults.KillAt", "+callbacks.kill.step=5"]
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # the mid-epoch checkpoint of step 4: epoch 1, one of its three batches done
    assert checkpoint["global_step"] == 4 and checkpoint["epoch"] == 1
    assert checkpoint["PoseDataModule"] == {"epoch": 1, "batches_done": 1, "epoch_batches": 3}

    resumed = _train_process(run, data_dir, ["resume=true"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 9)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert "resuming from a checkpoint that ended before the epoch" not in resumed.stderr


class RaiseOnRank(Callback):
    """Raises on one process of a DDP run at a given step (a bug, a bad sample, a lost device)."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            raise RuntimeError(f"simulated failure on rank {self.rank} at step {self.step}")


@pytest.mark.slow
def test_an_error_on_one_ddp_process_ends_both_promptly(tmp_path, data_dir):
    """Two CPU processes (gloo): rank 1 raises at step 2; the run ends at once (not at the
    collective timeout, 30 minutes) with a non-zero status, and the output names the error."""
    from tests.test_ddp_and_sweeps import CPU_DDP, QUIET, run_cli

    args = [
        "model=hrnet",
        *TINY_HRNET,
        *TINY_SYNTHETIC,
        *CPU_DDP,
        *QUIET,
        "data.num_workers=0",
        "data.batch_size=2",
        "trainer.max_epochs=3",
        "run_name=ddp_failure",
        "+callbacks.fail._target_=tests.test_faults.RaiseOnRank",
        "+callbacks.fail.rank=1",
        "+callbacks.fail.step=2",
    ]
    start = time.monotonic()
    proc = run_cli("src.train", args, tmp_path, check=False)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert "simulated failure on rank 1 at step 2" in proc.stderr
    assert elapsed < 120, elapsed
