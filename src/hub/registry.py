"""The known weight files: backbone initialisations and published pose checkpoints, by name.

The entries are data (`known_weights.yaml` beside this file): for each, the URLs, the SHA-256 (or
the prefix of it that the file name carries), the size when published, the licence, what it
initialises, where the URL and hash were confirmed, and for pose checkpoints the recipe whose
network holds them and the published accuracy. Nothing here touches the network.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGISTRY_FILE = Path(__file__).with_name("known_weights.yaml")
#: More registry files (a lab's own checkpoints), separated by os.pathsep.
REGISTRY_ENV = "POSEKIT_REGISTRY"
KINDS = ("backbone", "checkpoint")
FIELDS = {
    "kind",
    "file_name",
    "urls",
    "sha256",
    "hash_prefix",
    "size",
    "licence",
    "initialises",
    "confirmed_at",
    "experiment",
    "accuracy",
    "accuracy_source",
    "key_map",
}


@dataclass(frozen=True)
class WeightsEntry:
    """One known file.

    Attributes:
        name: the registry name (``model.pretrained=NAME``, ``model_name=NAME``).
        kind: ``backbone`` (initialises a backbone for training) or ``checkpoint`` (a whole pose model).
        file_name: the name it is cached under (the published one).
        urls: mirrors, tried in order.
        sha256 / hash_prefix: the full digest, or the prefix of it that the published name carries.
        size: bytes, when a source states it.
        licence: the licence of the releasing repository.
        initialises: what it holds, in words.
        confirmed_at: where the URL and hash were read (repository and file, or page).
        experiment: checkpoints: the ``experiment=`` recipe whose network holds the file.
        accuracy: checkpoints: the published figures, metric name -> value.
        accuracy_source: where the figures are published.
        key_map: checkpoints: prefixes renamed before the strict load (file prefix -> model prefix),
            for files saved by another code base.
    """

    name: str
    kind: str
    file_name: str
    urls: tuple[str, ...]
    licence: str
    initialises: str
    confirmed_at: str
    sha256: str | None = None
    hash_prefix: str | None = None
    size: int | None = None
    experiment: str | None = None
    accuracy: Mapping[str, float] = field(default_factory=dict)
    accuracy_source: str | None = None
    key_map: Mapping[str, str] = field(default_factory=dict)


def _entry(name: str, raw: Any, source: Path) -> WeightsEntry:
    where = f"{source}: entry {name!r}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} is not a mapping")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}; known: {sorted(FIELDS)}")
    for required in ("kind", "file_name", "urls", "licence", "initialises", "confirmed_at"):
        if not raw.get(required):
            raise ValueError(f"{where} lacks {required!r}")
    if raw["kind"] not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {raw['kind']!r}")
    if not raw.get("sha256") and not raw.get("hash_prefix"):
        raise ValueError(f"{where} has neither sha256 nor hash_prefix: an unverifiable file is not registered")
    if raw.get("hash_prefix") and raw["hash_prefix"] not in raw["file_name"]:
        raise ValueError(f"{where}: hash_prefix {raw['hash_prefix']!r} is not part of file_name {raw['file_name']!r}")
    if raw["kind"] == "checkpoint" and not raw.get("experiment"):
        raise ValueError(f"{where}: a checkpoint names the experiment= recipe whose network holds it")
    urls = raw["urls"]
    if isinstance(urls, str) or not all(isinstance(u, str) and "://" in u for u in urls):
        raise ValueError(f"{where}: urls must be a list of URLs, got {urls!r}")
    return WeightsEntry(
        name=name,
        kind=raw["kind"],
        file_name=raw["file_name"],
        urls=tuple(urls),
        licence=raw["licence"],
        initialises=raw["initialises"],
        confirmed_at=raw["confirmed_at"],
        sha256=raw.get("sha256"),
        hash_prefix=raw.get("hash_prefix"),
        size=raw.get("size"),
        experiment=raw.get("experiment"),
        accuracy=dict(raw.get("accuracy") or {}),
        accuracy_source=raw.get("accuracy_source"),
        key_map=dict(raw.get("key_map") or {}),
    )


def read_registry(path: Path) -> dict[str, WeightsEntry]:
    """Every entry of a registry file, checked; raises ValueError naming the file and entry."""
    with open(path) as handle:
        raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a mapping of names to entries")
    return {str(name): _entry(str(name), value, path) for name, value in raw.items()}


@functools.cache
def _merged(extra: tuple[str, ...]) -> dict[str, WeightsEntry]:
    entries = read_registry(REGISTRY_FILE)
    for item in extra:
        path = Path(item).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${REGISTRY_ENV} names {path}, which is not a file")
        for name, entry in read_registry(path).items():
            if name in entries:
                raise ValueError(f"{path}: entry {name!r} is already known; give your entries other names")
            entries[name] = entry
    return entries


def known_weights() -> dict[str, WeightsEntry]:
    """The project's registry by name, with the entries of the files listed in ``$POSEKIT_REGISTRY``
    (separated by ``os.pathsep``: ":" on Linux and macOS; e.g. a lab's own published checkpoints)."""
    extra = tuple(p for p in os.environ.get(REGISTRY_ENV, "").split(os.pathsep) if p.strip())
    return _merged(extra)


def get_entry(name: str, *, kind: str | None = None) -> WeightsEntry:
    """The entry called ``name`` (of ``kind`` when given); the error lists the known names."""
    entries = known_weights()
    if name not in entries or (kind is not None and entries[name].kind != kind):
        choices = sorted(n for n, e in entries.items() if kind is None or e.kind == kind)
        what = f"{kind} " if kind else ""
        raise KeyError(f"no known {what}weights called {name!r}; known: {', '.join(choices)} (python -m src.zoo)")
    return entries[name]
