"""Experiment loggers beyond CSV: Weights & Biases (offline unless logged in) and TensorBoard."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any


def wandb_logged_in() -> bool:
    """True when W&B credentials are available: WANDB_API_KEY, or `wandb login`'s netrc entry."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(path).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return base in hosts


def wandb_logger(*, offline: bool | str = "auto", **kwargs: Any):
    """A Lightning ``WandbLogger``; ``offline='auto'`` logs online only when the user is logged in.

    Offline runs are written under ``<save_dir>/wandb/`` and can be uploaded later with
    ``wandb sync <save_dir>/wandb/offline-run-*``. WANDB_MODE, when set, wins (W&B's own rule).
    """
    try:
        import wandb  # noqa: F401
        from lightning.pytorch.loggers import WandbLogger
    except ImportError as err:
        raise ImportError("logger=wandb needs the wandb package: pip install -e '.[loggers]'") from err
    if offline == "auto":
        offline = not wandb_logged_in()
    elif not isinstance(offline, bool):
        raise ValueError(f"logger.wandb.offline must be true, false or 'auto', got {offline!r}")
    Path(kwargs.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=offline, **kwargs)


def finish_loggers(loggers: list[Any] | None = None) -> None:
    """End the W&B run of this job, so that the next job of a sweep starts its own run (every
    entry point does, through `src.runner.task`). ``loggers``: only when one of them is a
    ``WandbLogger``; None: whenever W&B was imported and has a run open."""
    import sys

    if loggers is not None:
        from lightning.pytorch.loggers import WandbLogger  # importable without wandb installed

        if not any(isinstance(logger, WandbLogger) for logger in loggers):
            return
    wandb = sys.modules.get("wandb")
    if loggers is not None and wandb is None:
        import wandb
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
