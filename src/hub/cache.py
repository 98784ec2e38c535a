"""Where downloaded weights live, and the lock that lets two processes share the folder.

The cache folder is ``$POSEKIT_CACHE`` (default ``~/.cache/posekit``): downloaded files under
``weights/``, checkpoints converted from them under ``converted/``. A file appears under its final
name only once it is complete and verified, so a name in the cache is a file that can be used.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "POSEKIT_CACHE"
OFFLINE_ENV = "POSEKIT_OFFLINE"


class CacheNotWritable(OSError):
    """The cache folder cannot be created or written."""


def cache_root() -> Path:
    """``$POSEKIT_CACHE``, else ``~/.cache/posekit`` (not created here)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "posekit"


def offline() -> bool:
    """True when ``$POSEKIT_OFFLINE`` is set to 1/true/yes: nothing is downloaded, cached files are used."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def writable_folder(folder: Path) -> Path:
    """``folder``, created if needed and checked by writing a probe file into it.

    Raises:
        CacheNotWritable: one line naming the folder and ``$POSEKIT_CACHE``.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise CacheNotWritable(
            f"the weights cache {folder} is not writable ({err.strerror or err}); "
            f"set ${CACHE_ENV} to a folder you can write"
        ) from None
    return folder


def weights_folder() -> Path:
    """The folder of downloaded files (not created here)."""
    return cache_root() / "weights"


def converted_folder() -> Path:
    """The folder of checkpoints converted from downloaded files (not created here)."""
    return cache_root() / "converted"


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` (blocking): the process that gets it first
    writes ``target``; the others wait and then find it written."""
    lock_path = target.with_name(target.name + ".lock")
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks one byte of the lock file
            import msvcrt

            handle.seek(0)
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
