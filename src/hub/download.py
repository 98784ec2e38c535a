"""Download one file into the cache: resumed after a broken transfer, retried, verified by size
and SHA-256, and renamed to its final name only when complete.

    path = fetch(["https://host/a/resnet50-19c8e357.pth"], cache / "resnet50-19c8e357.pth",
                 hash_prefix="19c8e357")

A file already under its final name is returned without any network access. The transfer goes to
``<name>.part``; a new attempt asks the server for the rest (an HTTP ``Range`` request) and starts
over when the server sends the whole file instead. An answer that is an HTML page (a cloud drive's
login or quota page), or a file of the wrong size or hash, is refused with the URL and what came
back, and nothing of it stays in the cache. Two processes fetching the same file share a lock: one
downloads, the other waits and then uses the file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from src.hub.cache import file_lock, offline, writable_folder

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "posekit-weights/1"
#: Errors after which the same URL is tried again (the partial file is kept and resumed).
TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout)


class WeightsUnavailable(RuntimeError):
    """The file is not in the cache and could not be downloaded (offline, or every URL failed)."""


class BadDownload(ValueError):
    """A URL answered with something that is not the expected file (HTML, wrong size or hash)."""


@dataclass(frozen=True)
class Expected:
    """What the downloaded file must be: its full SHA-256, or the prefix of it that the file name
    carries (``resnet50-19c8e357.pth``), and its size in bytes when known."""

    sha256: str | None = None
    hash_prefix: str | None = None
    size: int | None = None

    def check(self, path: Path, url: str) -> str:
        """The file's SHA-256 hex digest; raises `BadDownload` when it is not the expected file."""
        actual_size = path.stat().st_size
        if self.size is not None and actual_size != self.size:
            raise BadDownload(f"{url} gave {actual_size} bytes, expected {self.size}")
        digest = sha256_of(path)
        if self.sha256 is not None and digest != self.sha256.lower():
            raise BadDownload(f"{url} gave a file with SHA-256 {digest}, expected {self.sha256.lower()}")
        if self.hash_prefix is not None and not digest.startswith(self.hash_prefix.lower()):
            raise BadDownload(
                f"{url} gave a file with SHA-256 {digest}, which does not start with {self.hash_prefix.lower()} "
                "(the hash its name carries)"
            )
        return digest


def sha256_of(path: Path) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def looks_like_html(first_bytes: bytes, content_type: str | None) -> bool:
    """A web page rather than a weights file (zip or pickle): by content type or the first bytes."""
    if content_type and content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    head = first_bytes.lstrip()[:64].lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _describe_page(first_bytes: bytes, content_type: str | None) -> str:
    text = first_bytes.decode("utf-8", "replace")
    title = ""
    lower = text.lower()
    if "<title>" in lower:
        start = lower.index("<title>") + len("<title>")
        title = text[start : lower.find("</title>", start)].strip()[:80]
    kind = content_type or "no content type"
    return f"an HTML page ({kind}" + (f", title {title!r}" if title else "") + ")"


def _transfer(url: str, part: Path, *, expected_size: int | None, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (or rewrite it when the server ignores the range)."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if start and getattr(response, "status", None) != 206:
            start = 0  # the whole file again (file:// and servers without ranges)
        content_type = response.headers.get("Content-Type")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else expected_size
        first = response.read(CHUNK)
        if start == 0 and looks_like_html(first, content_type):
            raise BadDownload(f"{url} answered with {_describe_page(first, content_type)} instead of the file")
        with (
            open(part, "ab" if start else "wb") as out,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            block = first
            while block:
                out.write(block)
                bar.update(len(block))
                block = response.read(CHUNK)
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def _missing_message(dest: Path, urls: Sequence[str], why: str) -> str:
    where = urls[0] if urls else "no known URL"
    return f"{dest.name} is not in the cache and {why}: put the file at {dest} (download it from {where})"


def fetch(
    urls: Sequence[str],
    dest: Path,
    *,
    sha256: str | None = None,
    hash_prefix: str | None = None,
    size: int | None = None,
    progress: bool = True,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
) -> Path:
    """``dest``, downloaded from the first of ``urls`` that gives the expected file if not cached.

    Args:
        urls: mirrors tried in order (http, https or file URLs).
        dest: the final path in the cache; its folder is created.
        sha256 / hash_prefix / size: what the file must be (see `Expected`); without a hash the file
            is kept unverified (a warning says so).
        progress: show a progress bar on stderr.
        retries: further attempts per URL after a transient failure, resuming the partial file.
        backoff_s: wait before the first retry, doubled each time.
        timeout_s: socket timeout of each attempt.

    Raises:
        WeightsUnavailable: offline (``$POSEKIT_OFFLINE``) or every URL failed to answer; one line
            naming the file, where to put it and its URL.
        BadDownload: a URL answered with an HTML page or a file of the wrong size or hash (nothing is
            kept); raised when no other URL gave the file.
        CacheNotWritable: the cache folder cannot be written.
    """
    if dest.is_file():
        return dest
    if offline():
        raise WeightsUnavailable(_missing_message(dest, urls, "downloads are off ($POSEKIT_OFFLINE)"))
    writable_folder(dest.parent)
    expected = Expected(sha256=sha256, hash_prefix=hash_prefix, size=size)
    if sha256 is None and hash_prefix is None:
        log.warning("%s: no hash known, the download is checked for completeness only", dest.name)
    with file_lock(dest):
        if dest.is_file():  # another process finished it while this one waited
            log.info("%s: downloaded by another process", dest)
            return dest
        part = dest.with_name(dest.name + ".part")
        failures: list[str] = []
        bad: list[BadDownload] = []
        for url in urls:
            for attempt in range(retries + 1):
                try:
                    _transfer(url, part, expected_size=size, progress=progress, timeout=timeout_s)
                    expected.check(part, url)
                except BadDownload as err:
                    part.unlink(missing_ok=True)
                    bad.append(err)
                    break
                except urllib.error.HTTPError as err:
                    failures.append(f"{url}: HTTP {err.code} {err.reason}")
                    if err.code < 500 and err.code != 429:
                        break  # not found / forbidden: another attempt gives the same answer
                except TRANSIENT as err:
                    reason = getattr(err, "reason", None) or err
                    failures.append(f"{url}: {type(err).__name__} ({reason})")
                else:
                    part.replace(dest)
                    log.info("downloaded %s -> %s", url, dest)
                    return dest
                if attempt < retries:
                    time.sleep(backoff_s * 2**attempt)
        if bad:
            raise bad[-1]
        if part.exists() and part.stat().st_size == 0:
            part.unlink()
        why = "could not be downloaded (" + "; ".join(dict.fromkeys(failures)) + ")"
        raise WeightsUnavailable(_missing_message(dest, urls, why))
