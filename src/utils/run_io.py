"""Files a run leaves behind: metrics.json, run_info.json; written atomically."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

TRACKED_PACKAGES = (
    "torch",
    "lightning",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "albumentations",
    "pycocotools",
    "numpy",
    "opencv-python-headless",
    "scipy",
    "wandb",
)


def replace_atomically(path: str | Path, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Write ``path`` through ``write(handle)`` on a temporary file in the same folder, flushed to
    disk, then renamed over ``path``: readers (and a crash) see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON through a temporary file in the same folder and an atomic rename."""
    return replace_atomically(path, lambda handle: json.dump(data, handle, indent=2, sort_keys=True))


def resolved_config(cfg: Any) -> dict:
    """The run's config as plain, resolved data (Hydra's own ``hydra`` node left out)."""
    from omegaconf import OmegaConf

    return {
        key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in cfg
        if key != "hydra"
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_state(cwd: str | Path | None = None) -> dict[str, str | bool | None]:
    """Commit hash and whether the work tree has uncommitted changes (None outside git)."""

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def run_info(config: dict) -> dict[str, Any]:
    """Everything needed to reproduce a run: resolved config, code version, package versions."""
    return {
        "config": config,
        "git": git_state(Path(__file__).resolve().parent),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
    }
