"""Checkpoints that survive crashes, runs that resume exactly.

- ``AtomicCheckpointIO`` writes a checkpoint to a temporary file next to its destination, flushes
  it to disk and renames it over the destination: a crash while writing leaves the previous
  checkpoint intact (a rename within one folder is atomic on POSIX and Windows).
- ``RandomStateCallback`` stores the global random states (Python, NumPy, torch) in every
  checkpoint and restores them on resume. The data pipeline needs none of them (its random
  numbers come from (seed, epoch, index), see ``src.datasets.randomness``); they cover everything
  else a model may draw (dropout, random layers).
- ``resume_checkpoint`` decides what ``resume=true`` continues from, refusing to guess.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Callback

from src.utils.run_io import replace_atomically

LAST_CHECKPOINT = "last.ckpt"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the file it would have replaced is unchanged."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose writes are all-or-nothing."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        path = Path(path)
        try:
            write_atomic(checkpoint, path)
        except OSError as err:  # a full disk, a quota, a lost mount: the old file was not touched
            before = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} existed"
            raise CheckpointWriteError(
                f"cannot write the checkpoint {path}: {err.strerror or err}; {before}. Free space (or fix the "
                f"folder) and continue with resume=true."
            ) from err


def write_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    replace_atomically(path, lambda handle: torch.save(obj, handle), binary=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; the rename is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RandomStateCallback(Callback):
    """Save the global random states with each checkpoint; restore them when a run resumes.

    The states are stored as tensors, lists and numbers only, so checkpoints still load with
    ``torch.load(weights_only=True)``.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": str(kind),
                "keys": torch.from_numpy(np.asarray(keys, np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            },
            "python": {
                "version": int(version),
                "internal": list(internal),
                "gauss": None if gauss is None else float(gauss),
            },
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        n = state_dict["numpy"]
        np.random.set_state(
            (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        )
        p = state_dict["python"]
        random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def existing_checkpoints(output_dir: Path) -> list[Path]:
    folder = Path(output_dir) / "checkpoints"
    return sorted(folder.glob("*.ckpt")) if folder.is_dir() else []


def resume_checkpoint(output_dir: Path, *, resume: bool, ckpt_path: str | None, run_name: str) -> str | None:
    """The checkpoint ``trainer.fit`` continues from, or None for a fresh run.

    ``resume=true`` continues ``<run folder>/checkpoints/last.ckpt`` and fails clearly when there is
    none. A fresh run refuses a folder that already holds checkpoints instead of mixing two runs.
    An explicit ``ckpt_path`` continues that file (into this run folder).
    """
    output_dir = Path(output_dir)
    last = output_dir / "checkpoints" / LAST_CHECKPOINT
    if resume and ckpt_path:
        raise ValueError(
            f"resume=true continues {last}; ckpt_path={ckpt_path} names another checkpoint. Give one of the two."
        )
    if ckpt_path:
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
        return str(ckpt_path)
    if resume:
        if not last.is_file():
            found = ", ".join(p.name for p in existing_checkpoints(output_dir)) or "none"
            raise FileNotFoundError(
                f"resume=true: there is no {last} to continue (checkpoints in that folder: {found}). "
                f"The run folder follows run_name ({run_name!r}): pass the name of the interrupted run, "
                f"or start a new run without resume=true."
            )
        return str(last)
    found = existing_checkpoints(output_dir)
    if found:
        raise FileExistsError(
            f"the run folder {output_dir} already holds checkpoints of a run named {run_name!r} "
            f"({', '.join(p.name for p in found)}). Continue it with resume=true, or start a new run "
            f"with another run_name=..., or delete the folder."
        )
    return None
