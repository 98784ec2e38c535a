"""Resumable runs: an interrupted run continues exactly; checkpoints are written atomically."""

from __future__ import annotations

import csv
import os

import pytest
import torch
from lightning.pytorch import Callback

from src.train import train
from src.utils.checkpointing import AtomicCheckpointIO, RandomStateCallback, write_atomic
from tests.helpers import TINY_SYNTHETIC, compose_run
from tests.test_train import TINY_HRNET


class CrashInSecondEpoch(Callback):
    """Simulates a crash (power cut, pre-emption) part-way through the second epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("simulated crash")


RUN = [
    "model=hrnet",
    *TINY_HRNET,
    *TINY_SYNTHETIC,
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "data.batch_size=4",
    "trainer.limit_train_batches=3",
    "trainer.log_every_n_steps=1",
    "num_visualized=0",
    "evaluate_best=false",
    "model.scheduler.milestones=[1]",
    "seed=5",
    "data.augmentation.half_body_prob=0.5",
]
CRASH = ["+callbacks.crash._target_=tests.test_resume.CrashInSecondEpoch"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def final_state(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, data_dir) -> None:
    whole = tmp_path / "whole"
    expected = train(compose_run("train", RUN, whole, data_dir))

    run = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_run("train", [*RUN, *CRASH], run, data_dir))
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    resumed = train(compose_run("train", [*RUN, "resume=true"], run, data_dir))

    a, b = final_state(whole), final_state(run)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 9)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert resumed["val/AP"] == expected["val/AP"]
    assert resumed["train/loss"] == expected["train/loss"]

    # the resumed run's CSV keeps the first epoch and has each step once
    with open(run / "csv" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 8


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, data_dir) -> None:
    with pytest.raises(FileNotFoundError, match="resume=true: there is no .*last.ckpt"):
        train(compose_run("train", [*RUN, "resume=true"], tmp_path / "never_ran", data_dir))


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path, data_dir) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"previous run")
    with pytest.raises(FileExistsError, match="resume=true"):
        train(compose_run("train", RUN, tmp_path, data_dir))
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == b"previous run"


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)

    kept = torch.load(path, weights_only=True)
    assert kept["epoch"] == 1 and torch.equal(kept["w"], torch.ones(3))
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind

    write_atomic({"epoch": 3}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 3


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path) -> None:
    import random

    import numpy as np

    callback = RandomStateCallback()
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    write_atomic({"state": callback.state_dict()}, tmp_path / "s.ckpt")
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    callback.load_state_dict(torch.load(tmp_path / "s.ckpt", weights_only=True)["state"])
    got = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]
