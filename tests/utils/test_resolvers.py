"""Config resolvers: the most recent checkpoint of an experiment's runs (the RTMPose quickstart's
backbone comes from the CSPNeXt quickstart's last run)."""

from __future__ import annotations

import os

import pytest

from src.utils.resolvers import latest_checkpoint
from tests.helpers import compose_run


def make_run(root, name: str, mtime: float):
    path = root / name / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_latest_checkpoint_picks_the_newest_run(tmp_path):
    make_run(tmp_path, "stage_a_2026-01-01_10-00-00", 1000)
    newest = make_run(tmp_path, "stage_a_2026-01-01_09-00-00", 2000)  # written last, whatever its name
    make_run(tmp_path, "stage_b_2026-01-02_10-00-00", 3000)  # another experiment
    (tmp_path / "stage_a_2026-01-03_10-00-00" / "checkpoints").mkdir(parents=True)  # a run without last.ckpt
    assert latest_checkpoint(str(tmp_path), "stage_a") == str(newest)


def test_no_run_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `python -m src.train experiment=stage_a` first"):
        latest_checkpoint(str(tmp_path), "stage_a")


def test_quickstart_rtmpose_starts_from_the_cspnext_quickstart(tmp_path):
    run_dir = tmp_path / "run"  # compose_run puts the logs under <run_dir>/logs
    checkpoint = make_run(run_dir / "logs" / "train", "quickstart_cspnext_2026-01-01_10-00-00", 1000)
    cfg = compose_run("train", ["experiment=quickstart_rtmpose"], run_dir, tmp_path / "data")
    assert cfg.model.pretrained == str(checkpoint)
    assert cfg.callbacks.quickstart_record.pretrained == str(checkpoint)
