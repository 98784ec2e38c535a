"""The quickstart results file: written after the final evaluation of a complete run, in the schema
the docs render, and not by partial or evaluation-only runs."""

from __future__ import annotations

import json
import time

import lightning.pytorch as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.utils.run_record import QuickstartRecord, machine_slug, precision_slug, process_start_time

KEYS = {
    "experiment", "date", "command", "machine", "fast_path", "precision", "channels_last", "wall_s", "phases_s",
    "epochs", "metrics", "headline", "git_commit", "torch", "env", "load",
}  # fmt: skip


class Tiny(L.LightningModule):
    """One linear layer; its validation logs the epoch as val/AP, so the last validation is visible."""

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters({"channels_last": False})
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())
        self.log("val/AP", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)


def run(tmp_path, *, record_options=None, **trainer_options) -> QuickstartRecord:
    record = QuickstartRecord(
        experiment="quickstart_x", dirpath=tmp_path / "results", headline="val/AP", **(record_options or {})
    )
    options = {"max_epochs": 4, "check_val_every_n_epoch": 2, **trainer_options}
    trainer = L.Trainer(
        accelerator="cpu", callbacks=[record], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, **options,
    )  # fmt: skip
    trainer.fit(Tiny(), train_dataloaders=loader(), val_dataloaders=loader())
    return record


def test_complete_run_writes_the_final_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    before = time.time()
    record = run(tmp_path)
    files = list((tmp_path / "results").iterdir())
    assert files == [record.written]
    data = json.loads(record.written.read_text())
    assert set(data) == KEYS
    assert record.written.name == f"quickstart_x-{machine_slug(data['machine'], data['env'])}-fp32-{data['date']}.json"
    assert "-avx2-fp32-" in record.written.name and data["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    # the validation after the last epoch (epoch index 3), not the one after epoch index 1
    assert data["epochs"] == 4 and data["metrics"]["val/AP"] == 3.0
    assert data["headline"] == {"key": "val/AP", "value": 3.0, "mode": "max"}
    assert data["precision"] == "32-true" and data["channels_last"] is False
    assert data["fast_path"]["precision"] == "32-true" and data["fast_path"]["reason"]
    assert data["command"].startswith("python -m src.train")
    phases = data["phases_s"]
    assert set(phases) == {"startup", "data", "train", "final_eval"} and min(phases.values()) >= 0
    # wall time counts from process start, before this test began
    assert data["wall_s"] >= round(time.time() - before, 1) and data["wall_s"] == pytest.approx(
        sum(phases.values()), abs=0.3
    )
    assert isinstance(data["machine"]["cores"], int) and data["machine"]["gpu"] is None
    assert len(data["load"]["start"]) == 3 and len(data["load"]["end"]) == 3


@pytest.mark.parametrize(
    "options", [{"limit_train_batches": 1}, {"fast_dev_run": True}, {"max_epochs": 3}, {"max_epochs": 2}]
)
def test_partial_runs_write_nothing(tmp_path, options):
    # max_epochs 2 with validation every 2nd epoch: complete; 3: no validation after the last epoch
    record = run(tmp_path, **options)
    assert (record.written is not None) == (options == {"max_epochs": 2})


def test_a_run_from_another_quickstart_adds_its_record(tmp_path):
    # stage 1: a complete quickstart leaves its record in its run folder, beside its checkpoints
    stage1 = tmp_path / "logs" / "quickstart_a_2026"
    (stage1 / "checkpoints").mkdir(parents=True)
    first = run(tmp_path / "one", record_options={"run_dir": stage1})
    assert json.loads((stage1 / "quickstart_record.json").read_text()) == json.loads(first.written.read_text())
    checkpoint = stage1 / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(b"")
    # stage 2 starts from its checkpoint: the record carries stage 1's time and the sum
    second = run(tmp_path / "two", record_options={"pretrained": checkpoint})
    data = json.loads(second.written.read_text())
    before = json.loads(first.written.read_text())
    assert set(data) == KEYS | {"pretraining", "total_wall_s"}
    assert data["pretraining"]["experiment"] == "quickstart_x" and data["pretraining"]["checkpoint"] == str(checkpoint)
    assert data["pretraining"]["wall_s"] == before["wall_s"] and data["pretraining"]["headline"] == before["headline"]
    assert data["total_wall_s"] == pytest.approx(data["wall_s"] + before["wall_s"], abs=0.11)
    # a checkpoint whose run left no record: named, with no time to add
    other = tmp_path / "elsewhere" / "checkpoints" / "x.ckpt"
    other.parent.mkdir(parents=True)
    third = run(tmp_path / "three", record_options={"pretrained": other})
    data = json.loads(third.written.read_text())
    assert data["pretraining"]["wall_s"] is None and "not a complete quickstart run" in data["pretraining"]["note"]
    assert data["total_wall_s"] is None


def test_evaluation_only_writes_nothing(tmp_path):
    record = QuickstartRecord(experiment="quickstart_x", dirpath=tmp_path / "results", headline="val/AP")
    trainer = L.Trainer(accelerator="cpu", callbacks=[record], logger=False, enable_progress_bar=False)
    trainer.validate(Tiny(), dataloaders=loader(), verbose=False)
    assert record.written is None and not (tmp_path / "results").exists()


def test_names_and_start_time():
    assert precision_slug("bf16-mixed") == "bf16" and precision_slug("32-true") == "fp32"
    machine = {"cpu": "AMD EPYC 7B13", "gpu": None}
    assert machine_slug(machine, {"ONEDNN_MAX_CPU_ISA": None, "ATEN_CPU_CAPABILITY": "avx2"}) == "amd-epyc-7b13-avx2"
    assert machine_slug({"cpu": "x", "gpu": "NVIDIA H100 80GB HBM3"}, {}) == "nvidia-h100-80gb-hbm3"
    capped = {"cpu": "AMD EPYC (ISA cap AVX2)", "gpu": None}
    assert machine_slug(capped, {"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "amd-epyc-avx2"
    with pytest.raises(ValueError, match="mode"):
        QuickstartRecord(experiment="q", dirpath=".", headline="val/AP", mode="best")
    assert time.time() - 3600 * 24 < process_start_time() <= time.time()
