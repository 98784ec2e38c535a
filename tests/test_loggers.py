"""Loggers: CSV, TensorBoard and W&B (offline) together; run info and prediction pictures reach them."""

from __future__ import annotations

import pytest
import yaml

from src.train import train
from tests.helpers import TINY_SYNTHETIC, compose_run
from tests.test_train import TINY_HRNET


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))


@pytest.mark.slow
def test_all_loggers_get_metrics_run_info_and_pictures(tmp_path, offline_wandb) -> None:
    wandb = pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from src.utils.loggers import wandb_logged_in

    assert not wandb_logged_in()
    overrides = [
        "model=hrnet",
        *TINY_HRNET,
        *TINY_SYNTHETIC,
        "logger=many",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "data.batch_size=4",
        "evaluate_best=false",
        "callbacks.prediction_pictures.every_n_epochs=1",
        "callbacks.prediction_pictures.num_images=3",
    ]
    run = tmp_path / "run"
    train(compose_run("train", overrides, run, tmp_path / "data"))

    assert sorted(p.name for p in (run / "pictures").glob("*.jpg")) == ["epoch_000.jpg", "epoch_001.jpg"]
    assert "val/AP" in (run / "csv" / "metrics.csv").read_text().splitlines()[0]

    hparams = yaml.safe_load((run / "tensorboard" / "hparams.yaml").read_text())
    assert {"config", "git", "packages"} <= set(hparams)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert len(events.Images("val/predictions")) == 2
    assert "val/AP" in events.Tags()["scalars"]

    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and any(offline_runs[0].rglob("*.wandb"))
    assert wandb.run is None  # the job finished its W&B run
