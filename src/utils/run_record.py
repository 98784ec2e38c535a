"""The results file of a quickstart run, written by the run that measured it.

`QuickstartRecord` is a Lightning callback that the quickstart recipes turn on. After the final
evaluation of a complete run (the last validation of ``fit``, or the re-validation of the best
checkpoint that ``src.train`` runs after it) it writes
``<dirpath>/<experiment>-<machine slug>-<precision>-<YYYY-MM-DD>.json``: the machine, the path
(precision, memory format, the ISA limits in the environment), the wall time from process start
and its phases, the final metrics, the code version and the load averages. The docs render every
file of that folder.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from src.utils.hardware import cpu_info
from src.utils.run_io import write_json_atomic

log = logging.getLogger(__name__)

#: the copy of a quickstart's record in its run folder (read by runs that start from its checkpoints)
RUN_RECORD = "quickstart_record.json"
#: Environment variables that change the arithmetic path of a CPU run.
ENV_KEYS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")
#: Short names of Lightning precisions in file names.
PRECISION_SLUGS = {"32-true": "fp32", "32": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16", "64-true": "fp64"}


def process_start_time() -> float:
    """When this process started (seconds since the epoch): /proc/self/stat's start time in clock
    ticks since boot, against /proc/uptime. Falls back to the import of this module."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()  # after the command name, which may hold spaces
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def slug(text: str) -> str:
    """Lower-case words joined by '-' ("AMD EPYC 7B13" -> "amd-epyc-7b13")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def machine_slug(machine: dict[str, Any], env: dict[str, str | None]) -> str:
    """The GPU's name, or the CPU's with the ISA the environment limits it to (e.g. amd-epyc-avx2)."""
    if machine.get("gpu"):
        return slug(machine["gpu"])
    name = slug(machine["cpu"].split(" (")[0])  # the model name without a note such as "(ISA cap AVX2)"
    limit = env.get("ONEDNN_MAX_CPU_ISA") or env.get("ATEN_CPU_CAPABILITY")
    return f"{name}-{slug(limit)}" if limit else name


def precision_slug(precision: str) -> str:
    return PRECISION_SLUGS.get(precision, slug(precision))


def git_commit(cwd: Path) -> str | None:
    """HEAD's hash, with "-dirty" when tracked files differ from it (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    return commit


def run_command(module: str = "src.train") -> str:
    """The command line of this run: Hydra's overrides when Hydra composed it, else sys.argv."""
    try:
        from hydra.core.hydra_config import HydraConfig

        args = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]
    except (ImportError, ValueError):
        args = sys.argv[1:]
    return shlex.join(["python", "-m", module, *args])


class QuickstartRecord(Callback):
    """Write a quickstart's results file after its final evaluation.

    Args:
        experiment: the recipe's name (the file name's first part).
        dirpath: the results folder (benchmarks/results/quickstarts).
        headline: the metric key the docs show (e.g. val/AP) and its mode (max or min).
        run_dir: the run folder, whose run_info.json holds the fast path chosen at start-up; the
            record is also written there (``quickstart_record.json``), for runs that start from
            this run's checkpoints.
        pretrained: the checkpoint this run's backbone starts from, when it is another quickstart's
            (the RTMPose quickstart's CSPNeXt): that run's own record (``quickstart_record.json``
            two folders up from the checkpoint) goes into this one under ``pretraining``, and
            ``total_wall_s`` adds the two wall times; without a record there, ``pretraining``
            names the file and says so.
        baseline: also score the model's baseline without a network on the same validation split
            (3D tasks: `Pose3DModule.baseline`, e.g. RootNet's k-value) and record it under
            ``baseline`` beside the headline.

    Phases (seconds): startup from process start to this callback's construction (imports,
    config, model), data from there to the end of the datamodule's setup (generation of a
    synthetic set, reading annotations), train from there to the start of the final evaluation,
    final_eval that evaluation. Runs that are not the recipe's whole schedule (fast_dev_run,
    limited batches, stopped before max_epochs) and evaluation-only runs write nothing.
    """

    def __init__(
        self,
        *,
        experiment: str,
        dirpath: str | Path,
        headline: str,
        mode: str = "max",
        run_dir: str | Path | None = None,
        pretrained: str | Path | None = None,
        baseline: bool = False,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"QuickstartRecord: mode must be 'max' or 'min', got {mode!r}")
        self.experiment = str(experiment)
        self.dirpath = Path(dirpath)
        self.headline = {"key": str(headline), "mode": mode}
        self.run_dir = Path(run_dir) if run_dir else None
        self.pretrained = Path(pretrained) if pretrained else None
        self.baseline = bool(baseline)
        self.started = process_start_time()
        self.constructed = time.time()
        self.load_start = list(os.getloadavg())
        self.data_ready: float | None = None
        self.eval_started: float | None = None
        self.epochs = 0  # training epochs run, as of the latest validation of fit
        self.written: Path | None = None

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and self.data_ready is None:
            self.data_ready = time.time()

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.eval_started = time.time()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.eval_started is None:
            return
        reason = self.incomplete(trainer)
        if reason:
            log.info("no quickstart results file: %s", reason)
            return
        ended = time.time()
        record = self.record(trainer, pl_module, ended)
        if self.baseline:
            record["baseline"] = self.baseline_score(trainer, pl_module)
        name = f"{self.experiment}-{machine_slug(record['machine'], record['env'])}-"
        name += f"{precision_slug(record['precision'])}-{record['date']}.json"
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self.written = write_json_atomic(self.dirpath / name, record)
        if self.run_dir is not None and self.run_dir.is_dir():
            write_json_atomic(self.run_dir / RUN_RECORD, record)
        log.info("quickstart results: %s (%.1f s)", self.written, record["wall_s"])

    # ------------------------------------------------------------------ the record
    def incomplete(self, trainer: Trainer) -> str | None:
        """Why this validation is not the final evaluation of a complete run (None when it is)."""
        if self.data_ready is None:
            return "no training ran in this process"
        if trainer.fast_dev_run:
            return "fast_dev_run"
        for key in ("limit_train_batches", "limit_val_batches"):
            value = getattr(trainer, key)
            if value is not None and not (isinstance(value, float) and value == 1.0):
                return f"trainer.{key}={value}"
        if trainer.state.fn == "fit":
            self.epochs = trainer.current_epoch + 1
            if self.epochs < (trainer.max_epochs or 0):
                return f"validation after epoch {self.epochs} of {trainer.max_epochs}"
        return None

    def record(self, trainer: Trainer, pl_module: LightningModule, ended: float) -> dict[str, Any]:
        env = {key: os.environ.get(key) for key in ENV_KEYS}
        precision = str(trainer.precision)
        channels_last = bool(getattr(pl_module, "hparams", {}).get("channels_last", False))
        metrics = {
            k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/") and v.numel() == 1
        }
        key = self.headline["key"]
        if key not in metrics:
            raise KeyError(f"QuickstartRecord: headline metric {key!r} not among the run's metrics {sorted(metrics)}")
        data_ready = self.data_ready or self.constructed
        wall_s = round(ended - self.started, 1)
        pretraining = self.pretraining()
        totals = {}
        if pretraining is not None:
            before = pretraining.get("wall_s")
            totals = {"total_wall_s": round(wall_s + before, 1) if isinstance(before, (int, float)) else None}
        return {
            "experiment": self.experiment,
            "date": datetime.date.fromtimestamp(ended).isoformat(),
            "command": run_command(),
            "machine": self.machine(trainer),
            "fast_path": self.fast_path(precision, channels_last),
            "precision": precision,
            "channels_last": channels_last,
            "wall_s": wall_s,
            **({"pretraining": pretraining} if pretraining is not None else {}),
            **totals,
            "phases_s": {
                "startup": round(self.constructed - self.started, 1),
                "data": round(data_ready - self.constructed, 1),
                "train": round(self.eval_started - data_ready, 1),
                "final_eval": round(ended - self.eval_started, 1),
            },
            "epochs": self.epochs,
            "metrics": metrics,
            "headline": {"key": key, "value": metrics[key], "mode": self.headline["mode"]},
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "torch": torch.__version__,
            "env": env,
            "load": {"start": [round(v, 2) for v in self.load_start], "end": [round(v, 2) for v in os.getloadavg()]},
        }

    def baseline_score(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """The headline metric of the task's baseline without a network on the validation split."""
        datamodule = trainer.datamodule
        method = getattr(type(pl_module), "baseline", None)
        if method is None or datamodule is None:
            raise ValueError(f"QuickstartRecord(baseline=true): {type(pl_module).__name__} has no baseline")
        metric = datamodule.build_metric(pl_module.submission(pl_module.hparams.evaluation))
        for predictions, batch, _ in method(pl_module.codec, datamodule.train_dataset, datamodule.val_dataloader()):
            metric.update(predictions, batch)
        values = {f"val/{k}": float(v) for k, v in metric.compute().items()}
        key = self.headline["key"]
        return {"method": f"{type(pl_module.codec).__name__}.baseline", "key": key, "value": values[key]}

    def pretraining(self) -> dict[str, Any] | None:
        """What the run that made ``pretrained`` recorded: experiment, wall time, headline, date and
        results file name (None without ``pretrained``; ``wall_s`` None when it left no record)."""
        if self.pretrained is None:
            return None
        entry: dict[str, Any] = {"checkpoint": str(self.pretrained)}
        source = self.pretrained.resolve().parent.parent / RUN_RECORD
        try:
            before = json.loads(source.read_text())
        except (OSError, ValueError):
            return {**entry, "wall_s": None, "note": f"no readable {source}: not a complete quickstart run"}
        if not isinstance(before, dict):
            return {**entry, "wall_s": None, "note": f"{source} is not a results record"}
        return {**entry, **{key: before.get(key) for key in ("experiment", "date", "wall_s", "headline", "epochs")}}

    @staticmethod
    def machine(trainer: Trainer) -> dict[str, Any]:
        info = cpu_info()
        gpu = None
        if trainer.strategy.root_device.type == "cuda":
            gpu = torch.cuda.get_device_name(trainer.strategy.root_device)
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        return {
            "cpu": info["model"],
            "cores": cores,
            "threads": torch.get_num_threads(),
            "flags": [name for name, present in info["flags"].items() if present],
            "gpu": gpu,
        }

    def fast_path(self, precision: str, channels_last: bool) -> dict[str, Any]:
        """The run's path: what start-up resolved (run_info.json), else the values given explicitly."""
        chosen: dict[str, Any] = {}
        if self.run_dir is not None and (self.run_dir / "run_info.json").is_file():
            try:
                chosen = dict(json.loads((self.run_dir / "run_info.json").read_text()).get("fast_path") or {})
            except (OSError, ValueError, AttributeError):
                chosen = {}
        reason = chosen.pop("reason", None)
        command = run_command().split()
        keys = ("trainer.precision", "model.channels_last")
        explicit = [k for k in keys if k.split(".")[1] not in chosen or any(a.startswith(f"{k}=") for a in command)]
        if explicit:  # the run's values, not the machine's automatic choice (whose reason is kept)
            given = " and ".join(explicit)
            reason = f"{given} given explicitly" + (f" (the automatic choice here: {reason})" if reason else "")
        return {**chosen, "precision": precision, "channels_last": channels_last, "reason": reason}
