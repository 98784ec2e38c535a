"""A generated dataset cached in a folder, stamped by a manifest; shared by every synthetic writer.

``root/manifest.json`` holds the generator's name and version, the hash of every generation
parameter, the parameters themselves and the writer's per-split summary. ``ensure_cached``
returns at once when that stamp matches; otherwise it writes into a temporary sibling folder,
writes the manifest last and renames the folder into place, so an interrupted run never leaves
a folder that looks complete. Nothing here knows what a generator writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from src.synthetic.params import SyntheticParams

MANIFEST = "manifest.json"

T = TypeVar("T")
R = TypeVar("R")


def params_hash(params: dict) -> str:
    """SHA-256 of the parameters as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def read_manifest(root: str | Path) -> dict | None:
    """root's manifest, or None when it is missing or not a JSON object."""
    try:
        manifest = json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_complete(
    root: str | Path, *, generator: str, version: int | str, params: dict, required: Iterable[str] = ()
) -> bool:
    """True when root holds a finished output of this generator, version and parameters, with
    every ``required`` file (paths relative to root) present."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None or manifest.get("generator") != generator or manifest.get("version") != version:
        return False
    if manifest.get("params_hash") != params_hash(params):
        return False
    return all((root / name).is_file() for name in required)


def default_workers() -> int:
    """Worker processes for generation: the available cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def parallel_map(fn: Callable[[T], R], tasks: list[T], workers: int) -> list[R]:
    """[fn(t) for t in tasks], in worker processes when there are enough tasks; fn must be picklable."""
    if workers <= 1 or len(tasks) < 64 or mp.current_process().daemon:
        return [fn(t) for t in tasks]
    # spawn: safe when the caller has threads (torch), and the same on every platform
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(fn, tasks, chunksize=max(1, min(32, len(tasks) // (4 * workers))))


def _owned_by(root: Path, generator: str) -> bool:
    """Whether root may be replaced: empty, or stamped by this generator."""
    if not any(root.iterdir()):
        return True
    manifest = read_manifest(root)
    return manifest is not None and manifest.get("generator") == generator


def _install(tmp: Path, root: Path, already_there: Callable[[], bool]) -> None:
    """Move the finished folder tmp to root, replacing an older copy of ours."""
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(root, old)
        os.replace(tmp, root)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.replace(tmp, root)
    except OSError:
        if not already_there():  # a concurrent run finished first: keep its copy
            raise


def remove_stale_temporaries(root: Path, max_age_s: float = 3600.0) -> None:
    """Remove temporary siblings of root older than max_age_s (left by killed runs)."""
    for path in root.parent.glob(f".{root.name}.tmp-*"):
        try:
            if time.time() - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def ensure_cached(
    root: str | Path,
    *,
    generator: str,
    version: int | str,
    params: dict,
    write: Callable[[Path], dict],
    required: Iterable[str] = (),
    force: bool = False,
    what: str,
) -> Path:
    """Make sure root holds the output of ``write`` for these parameters; return root.

    Returns at once when root's manifest matches (generator, version, parameter hash) and the
    ``required`` files exist, unless ``force``. Otherwise calls ``write(tmp) -> summary`` on an
    empty temporary sibling folder, writes the manifest (summary under "splits") and moves the
    folder into place. ``what`` names the output in errors ("synthetic MPII dataset").

    Raises FileExistsError when root exists, is not empty and was not written by this generator.
    """
    root = Path(root)
    required = tuple(required)
    complete = lambda: is_complete(root, generator=generator, version=version, params=params, required=required)
    if not force and complete():
        return root
    if root.exists() and not (root.is_dir() and _owned_by(root, generator)):
        raise FileExistsError(
            f"{root} exists and is not a {what} written by {generator}; pick another root or remove it"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        summary = write(tmp)
        manifest = {
            "generator": generator,
            "version": version,
            "params_hash": params_hash(params),
            "params": params,
            "splits": summary,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _install(tmp, root, complete)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    remove_stale_temporaries(root)
    return root


def cli_parser(description: str, *, default_root: str, params: type[SyntheticParams]) -> argparse.ArgumentParser:
    """A parser with --root, --workers, --force and one flag per field of ``params``. Options left
    out on the command line are absent from the parsed namespace, so the defaults stay the
    parameters class's."""
    parser = argparse.ArgumentParser(description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--root", default=default_root, help=f"output folder (default: {default_root})")
    parser.add_argument("--workers", type=int, help="processes (default: available cores, <= 8)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the cache matches")
    params.add_arguments(parser.add_argument_group(f"{params.WHAT} parameters"))
    return parser


def run_cli(
    ensure: Callable[..., Path],
    params: type[SyntheticParams],
    argv: list[str] | None,
    *,
    description: str,
    default_root: str,
    what: str,
    count: str,
) -> None:
    """A writer's command line: parse ``argv`` (`cli_parser`), call ``ensure(root, parameters,
    workers=..., force=...)`` and print the split sizes: each split's "images" and ``count``
    entries of the manifest's summary."""
    args = cli_parser(description, default_root=default_root, params=params).parse_args(argv)
    try:
        chosen = params.from_namespace(args)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    options = {k: v for k, v in vars(args).items() if k in ("workers", "force")}
    start = time.perf_counter()
    root = ensure(args.root, chosen, **options)
    elapsed = time.perf_counter() - start
    splits = json.loads((Path(root) / MANIFEST).read_text())["splits"]
    counts = ", ".join(f"{name}: {s['images']} images / {s[count]} {count}" for name, s in splits.items())
    print(f"{what} ready at {Path(root).resolve()} ({counts}) in {elapsed:.1f} s")
