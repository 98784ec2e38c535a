"""What ``model.pretrained=...`` names, as a local file: a path, a registry name, ``imagenet`` (the
initialisation the network's official recipe uses), or a URL (downloaded once into the cache)."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from pathlib import Path

from src.hub.cache import weights_folder
from src.hub.download import fetch
from src.hub.registry import WeightsEntry, get_entry, known_weights

#: The spec that asks for the network's own recipe initialisation (`default_pretrained` of the network).
RECIPE_ALIAS = "imagenet"
#: A hex suffix in a published file name (``resnet50-19c8e357.pth``): a prefix of its SHA-256.
NAME_HASH = re.compile(r"-([0-9a-f]{8,64})(?:_\d{8})?\.[a-z.]+$")


def fetch_entry(entry: WeightsEntry, *, progress: bool = True) -> Path:
    """The cached file of a registry entry, downloaded and verified on first use."""
    return fetch(
        entry.urls,
        weights_folder() / entry.file_name,
        sha256=entry.sha256,
        hash_prefix=entry.hash_prefix,
        size=entry.size,
        progress=progress,
    )


def fetch_url(url: str, *, progress: bool = True) -> Path:
    """The cached file of a URL. Verified by a ``#sha256=HEX`` fragment when given, else by the hash
    prefix its file name carries, else for completeness only. Cached under its file name beside a
    digest of the URL, so two URLs with the same file name never share an entry."""
    parts = urllib.parse.urlsplit(url)
    fragment = urllib.parse.parse_qs(parts.fragment)
    sha256 = fragment.get("sha256", [None])[0]
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    name = Path(urllib.parse.unquote(parts.path)).name
    if not name:
        raise ValueError(f"{url}: the URL names no file")
    match = NAME_HASH.search(name)
    hash_prefix = match.group(1) if match and sha256 is None else None
    folder = weights_folder() / "urls" / hashlib.sha256(bare.encode()).hexdigest()[:16]
    return fetch([bare], folder / name, sha256=sha256, hash_prefix=hash_prefix, progress=progress)


def weights_path(spec: str | os.PathLike[str], *, default: str | None = None, progress: bool = True) -> Path:
    """The local file that ``spec`` names.

    Args:
        spec: an existing path; a registry name (`src.hub.registry`); ``imagenet`` for ``default``;
            an ``http(s)://`` or ``file://`` URL.
        default: the registry name ``imagenet`` stands for (the network's recipe initialisation).
        progress: show a progress bar while downloading.

    Raises:
        FileNotFoundError: a path that does not exist and is no known name.
        ValueError: ``imagenet`` for a network without a known initialisation.
        src.hub.download.WeightsUnavailable / BadDownload: see `fetch`.
    """
    text = os.fspath(spec)
    if text == RECIPE_ALIAS:
        if default is None:
            raise ValueError(
                "pretrained=imagenet: this network has no known initialisation file; give a path, a URL or one "
                "of the names of python -m src.zoo"
            )
        text = default
    if "://" in text:
        return fetch_url(text, progress=progress)
    if text in known_weights():
        return fetch_entry(get_entry(text), progress=progress)
    path = Path(text).expanduser()
    if path.exists():
        return path
    by_file = [e.name for e in known_weights().values() if e.file_name == path.name]
    hint = f"; it is the known file {by_file[0]!r}: pretrained={by_file[0]} downloads it" if by_file else ""
    raise FileNotFoundError(f"pretrained file not found: {path}{hint} (names known: python -m src.zoo)")
