"""OmegaConf resolvers used by the configs (registered when an entry point is imported)."""

from __future__ import annotations

import hashlib

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


def register() -> None:
    if not OmegaConf.has_resolver("safe_dirname"):
        OmegaConf.register_new_resolver("safe_dirname", safe_dirname)


register()
