"""OmegaConf resolvers used by the configs (registered when an entry point is imported)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

MAX_DIRNAME = 120


def safe_dirname(name: str, limit: int = MAX_DIRNAME) -> str:
    """A sweep job's override string as one folder name: '/' replaced, and when longer than
    ``limit`` cut with a hash of the whole string appended (file systems allow 255 bytes)."""
    name = str(name).replace("/", "_").replace("\\", "_")
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: limit - 11]}~{digest}"


def _metric_class(target: str) -> type:
    from hydra.utils import get_class

    return get_class(target)


def metric_monitor(target: str, prefix: str = "val") -> str:
    """The logged key that a metric class declares as its headline, e.g. ``val/AP`` or ``val/PCKh``."""
    return f"{prefix}/{_metric_class(target).monitor}"


def metric_mode(target: str) -> str:
    """``max`` or ``min``: the direction in which the metric class's headline improves."""
    return _metric_class(target).mode


def metric_direction(target: str) -> str:
    """The metric's direction in the words of sweepers such as Optuna: maximize / minimize."""
    return {"max": "maximize", "min": "minimize"}[metric_mode(target)]


def data_metric(key: str, *, _root_: Any) -> Any:
    """The metric config ``data.<key>`` (e.g. ``root_metric`` for RootNet); a data config without
    one is refused with the data's name."""
    data = _root_.get("data")
    if data is None or key not in data or data[key] is None:
        name = data.get("name") if data is not None else None
        raise ValueError(
            f"data={name} has no {key}: this model is evaluated with it (RootNet: the 3D data with cameras, "
            "h36m, muco, mupots and their synthetic_* versions)"
        )
    return data[key]


def latest_checkpoint(runs_dir: str, experiment: str, checkpoint: str = "last.ckpt") -> str:
    """The ``checkpoints/<checkpoint>`` of the most recent run of an experiment under ``runs_dir``:
    of the folders ``<runs_dir>/<experiment>_*`` (run names ending in their launch time), the one
    whose checkpoint was written last. Raises FileNotFoundError naming the command that makes one."""
    found = [p for p in Path(runs_dir).glob(f"{experiment}_*/checkpoints/{checkpoint}") if p.is_file()]
    if not found:
        raise FileNotFoundError(
            f"no {checkpoint} of an experiment={experiment} run under {runs_dir}/ (looked for "
            f"{runs_dir}/{experiment}_*/checkpoints/{checkpoint}): run `python -m src.train "
            f"experiment={experiment}` first, or name a checkpoint file yourself"
        )
    return str(max(found, key=lambda p: p.stat().st_mtime))


def layout_size(layout: object) -> int:
    """The number of keypoints of a layout (a built-in name, a layout file, or a stored mapping)."""
    from src.layouts import get_keypoint_info

    return get_keypoint_info(layout).num_keypoints


RESOLVERS = {
    "safe_dirname": safe_dirname,
    "metric_monitor": metric_monitor,
    "metric_mode": metric_mode,
    "metric_direction": metric_direction,
    "latest_checkpoint": latest_checkpoint,
    "data_metric": data_metric,
    "layout_size": layout_size,
}


def register() -> None:
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register()
