"""The known weights: what each file initialises, its published accuracy, and whether it is cached.

    python -m src.zoo                         # every entry, cached or not
    python -m src.zoo fetch hrnet_w32_imagenet rtmpose_m_coco_256x192
    python -m src.zoo verify                  # re-hash every cached file
    python -m src.zoo --json                  # the same listing, machine-readable

``fetch`` downloads into ``$POSEKIT_CACHE`` (default ``~/.cache/posekit``) and converts published pose
checkpoints once; the training and prediction entry points do the same on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from src.hub.cache import cache_root, converted_folder, weights_folder
from src.hub.download import BadDownload, WeightsUnavailable, sha256_of
from src.hub.registry import WeightsEntry, get_entry, known_weights


def _size(entry: WeightsEntry) -> str:
    """The published size, else the cached file's, else nothing (no source states most sizes)."""
    cached = weights_folder() / entry.file_name
    size = entry.size or (cached.stat().st_size if cached.is_file() else None)
    return f"{size / 2**20:.1f} MiB" if size else ""


def _state(entry: WeightsEntry) -> str:
    if (converted_folder() / f"{entry.name}.ckpt").is_file():
        return "converted"
    return "cached" if (weights_folder() / entry.file_name).is_file() else "-"


def listing() -> list[dict]:
    """One row per known file (name, kind, cached state, size, what it holds, published accuracy)."""
    return [
        {
            "name": e.name,
            "kind": e.kind,
            "state": _state(e),
            "size": _size(e),
            "initialises": e.initialises,
            "experiment": e.experiment,
            "accuracy": dict(e.accuracy),
            "accuracy_source": e.accuracy_source,
            "licence": e.licence,
            "file_name": e.file_name,
            "url": e.urls[0],
        }
        for e in sorted(known_weights().values(), key=lambda e: (e.kind, e.name))
    ]


def print_table(rows: list[dict]) -> None:
    print(f"cache: {cache_root()}")
    for kind in ("backbone", "checkpoint"):
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        print(f"\n{kind}s ({len(chosen)})")
        width = max(len(r["name"]) for r in chosen)
        for r in chosen:
            extra = r["initialises"]
            if r["accuracy"]:
                extra += " | " + ", ".join(f"{k} {v:g}" for k, v in r["accuracy"].items())
            print(f"  {r['name']:<{width}}  {r['state']:<9}  {r['size']:>10}  {extra}")


def fetch_names(names: Sequence[str]) -> int:
    from src.hub.checkpoints import published_checkpoint
    from src.hub.resolve import fetch_entry

    status = 0
    for name in names:
        try:
            entry = get_entry(name)
            path = published_checkpoint(name) if entry.kind == "checkpoint" else fetch_entry(entry)
        except (KeyError, WeightsUnavailable, BadDownload, ValueError, OSError) as err:
            print(f"{name}: {err.args[0] if err.args else err}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {path}")
    return status


def verify_cached() -> int:
    status = 0
    for entry in known_weights().values():
        path = weights_folder() / entry.file_name
        if not path.is_file():
            continue
        digest = sha256_of(path)
        ok = digest == entry.sha256 if entry.sha256 else digest.startswith(str(entry.hash_prefix))
        print(f"{'ok ' if ok else 'BAD'} {entry.name}: {path} sha256 {digest}")
        status |= int(not ok)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")
    sub = parser.add_subparsers(dest="command")
    fetch = sub.add_parser("fetch", help="download (and convert) these entries into the cache")
    fetch.add_argument("names", nargs="+")
    sub.add_parser("verify", help="re-hash every cached file against the registry")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch_names(args.names)
    if args.command == "verify":
        return verify_cached()
    rows = listing()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
