"""Weights by name: the registry of known files, downloads into the cache, published checkpoints
converted once. See docs/weights.md."""

from src.hub.cache import CACHE_ENV, OFFLINE_ENV, CacheNotWritable, cache_root
from src.hub.download import BadDownload, WeightsUnavailable, fetch, sha256_of
from src.hub.registry import WeightsEntry, get_entry, known_weights
from src.hub.resolve import fetch_entry, fetch_url, weights_path

__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENV",
    "BadDownload",
    "CacheNotWritable",
    "WeightsEntry",
    "WeightsUnavailable",
    "cache_root",
    "fetch",
    "fetch_entry",
    "fetch_url",
    "get_entry",
    "known_weights",
    "sha256_of",
    "weights_path",
]
