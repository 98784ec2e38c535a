"""A CSV logger that keeps the history of a resumed run.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts. When a run resumes
(``resume=true``) its metrics so far are worth keeping: ``ResumableCSVLogger`` keeps the rows logged
before the step of the checkpoint the run continues from (the later rows belong to the part that
is repeated: its first steps, and the learning rate logged as the next epoch began) and appends
after them.
"""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _KeepingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_until_step: int | None) -> None:
        self.keep_until_step = keep_until_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        if self.keep_until_step is None:  # a fresh run: Lightning's behaviour (start a new file)
            super()._check_log_dir_exists()
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step", "") == "" or int(float(r["step"])) < self.keep_until_step]
        tmp = self.metrics_file_path + ".tmp"
        with self._fs.open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.metrics_file_path)
        self.metrics_keys = sorted(fields)


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that, with ``keep_until_step`` set, continues an existing metrics.csv."""

    def __init__(self, *args, keep_until_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_until_step = keep_until_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:  # type: ignore[override]
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _KeepingWriter(self.log_dir, self.keep_until_step)
        return self._experiment
