"""Download COCO 2017 keypoints into the layout the data module expects.

    python -m src.readers.coco_download --root data/coco [--splits train2017 val2017] [--annotations-only]

Result::

    ROOT/annotations/person_keypoints_train2017.json
    ROOT/annotations/person_keypoints_val2017.json
    ROOT/images/train2017/*.jpg     (the zips hold train2017/..., unpacked under images/)
    ROOT/images/val2017/*.jpg
    ROOT/downloads/*.zip            (kept so a re-run does not download again; --delete-zips removes them)

Downloads are resumable: data goes to ``NAME.part`` and an interrupted run (or a dropped
connection, retried automatically) continues with an HTTP Range request from the bytes already
there; a server that ignores Range makes it start over. The received size is checked against the
server's Content-Length / Content-Range. The MD5 sums of the three official zips are hard-coded
(the values published with COCO and repeated by many download scripts); a mismatch deletes the
file and fails. The byte sizes are not hard-coded. Files without a known checksum are checked
with ``zipfile.testzip`` (CRC of every member) instead. Of the annotation zip only the
``person_keypoints_*`` files are unpacked.

Sizes: annotations_trainval2017.zip ~241 MB, val2017.zip ~778 MB, train2017.zip ~18 GB.
Person detections for evaluation with detector boxes (COCO_val2017_detections_AP_H_56_person.json)
are distributed by the HRNet authors, not by COCO: download them by hand and set data.reader.det_file.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its URL and, if known, its MD5."""

    url: str
    md5: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


COCO_FILES: dict[str, RemoteFile] = {
    "annotations": RemoteFile(
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        md5="f4bbac642086de4f52a3fdda2de5fa2c",
    ),
    "train2017": RemoteFile("http://images.cocodataset.org/zips/train2017.zip", md5="cced6f7f71b7629ddf16f17bbcfab6b2"),
    "val2017": RemoteFile("http://images.cocodataset.org/zips/val2017.zip", md5="442b8da7639aecaf257c1dceb8ba8c80"),
}

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed for good (after retries) or its checksum / size / zip check failed."""


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * _CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _total_from_headers(response, offset: int) -> int | None:
    """Full file size from Content-Range ("bytes a-b/total") or, for a 200, Content-Length."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + (offset if response.status == 206 else 0)
    return None


def _fetch_once(url: str, part: Path, *, timeout: float, quiet: bool) -> int | None:
    """One HTTP request that appends to ``part`` from its current size. Returns the total size
    announced by the server (None if unknown). Raises on network errors (the caller retries)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pose-template-downloader"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the part is complete (checked later)
            content_range = err.headers.get("Content-Range", "")
            total = content_range.rsplit("/", 1)[-1]
            return int(total) if total.isdigit() else offset
        raise
    with response:
        if offset and response.status != 206:
            _log(quiet, f"  server ignored the Range request; restarting {part.name} from 0")
            offset = 0
        total = _total_from_headers(response, offset)
        mode = "ab" if offset else "wb"
        done, last = offset, time.monotonic()
        with open(part, mode) as f:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if time.monotonic() - last > 2.0:
                    last = time.monotonic()
                    share = f" ({100.0 * done / total:.1f}%)" if total else ""
                    _log(quiet, f"  {part.name}: {done / 1e6:.1f} MB{share}")
    if total is not None and done < total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return total


def download_file(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    quiet: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` resumably and verify it.

    Args:
        url: http(s) URL.
        dest: final path; data is written to ``dest + '.part'`` first and renamed when verified.
        md5: expected MD5 hex digest; None -> a ``.zip`` is checked with ``zipfile.testzip``.
        retries: further attempts after a network error, each resuming from the bytes received.
        timeout: socket timeout in seconds.

    Returns:
        ``dest``.

    Raises:
        DownloadError: retries exhausted, size mismatch, checksum mismatch or corrupt zip.
    """
    dest = Path(dest)
    if dest.is_file():
        _log(quiet, f"{dest} already downloaded")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists():
        _log(quiet, f"resuming {url} at {part.stat().st_size / 1e6:.1f} MB")
    else:
        _log(quiet, f"downloading {url}")
    total = None
    for attempt in range(retries + 1):
        try:
            total = _fetch_once(url, part, timeout=timeout, quiet=quiet)
            break
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets, IncompleteRead
            if isinstance(err, urllib.error.HTTPError) and err.code < 500 and err.code != 408:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            if attempt == retries:
                got = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"{url}: giving up after {retries + 1} attempts ({err}); {got} bytes kept in {part}, "
                    "run the same command again to resume"
                ) from err
            wait = min(30.0, 2.0**attempt)
            _log(quiet, f"  {err}; retrying in {wait:.0f} s")
            time.sleep(wait)

    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{part}: received {size} bytes but the server announced {total}; run again to resume")
    if md5 is not None:
        digest = file_md5(part)
        if digest != md5.lower():
            part.unlink()
            raise DownloadError(f"{url}: MD5 {digest} does not match the expected {md5}; the partial file was deleted")
    elif dest.suffix == ".zip":
        bad = _test_zip(part)
        if bad is not None:
            part.unlink()
            raise DownloadError(f"{url}: corrupt zip ({bad}); the file was deleted")
    part.replace(dest)
    return dest


def _test_zip(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            first_bad = zf.testzip()
    except zipfile.BadZipFile as err:
        return str(err)
    return None if first_bad is None else f"bad CRC in member {first_bad}"


def _safe_members(zf: zipfile.ZipFile, prefix: str) -> list[zipfile.ZipInfo]:
    members = []
    for info in zf.infolist():
        name = info.filename
        if not name.startswith(prefix):
            continue
        if name.startswith("/") or ".." in Path(name).parts:
            raise DownloadError(f"{zf.filename}: refusing to extract unsafe path {name!r}")
        members.append(info)
    return members


def extract_annotations(zip_path: Path, root: Path, *, quiet: bool = False) -> list[Path]:
    """Unpack ``annotations/person_keypoints_*.json`` into ``root/annotations/``."""
    with zipfile.ZipFile(zip_path) as zf:
        members = _safe_members(zf, "annotations/person_keypoints_")
        if not members:
            raise DownloadError(f"{zip_path}: no annotations/person_keypoints_* files inside")
        _log(quiet, f"extracting {len(members)} keypoint annotation files to {root / 'annotations'}")
        for info in members:
            zf.extract(info, root)
    return [root / info.filename for info in members]


def extract_images(zip_path: Path, root: Path, split: str, *, quiet: bool = False) -> Path:
    """Unpack a COCO image zip (members ``split/*.jpg``) into ``root/images/split/``.

    A ``.split.done`` marker makes a repeated call a no-op; an interrupted extraction is redone.
    """
    images = root / "images"
    target = images / split
    marker = images / f".{split}.done"
    if marker.exists() and target.is_dir():
        _log(quiet, f"{target} already extracted")
        return target
    images.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        members = _safe_members(zf, f"{split}/")
        if not members:
            raise DownloadError(f"{zip_path}: no {split}/ folder inside")
        _log(quiet, f"extracting {len(members)} entries to {target}")
        for info in members:
            zf.extract(info, images)
    marker.touch()
    return target


def download_coco(
    root: Path,
    *,
    splits: tuple[str, ...] = ("train2017", "val2017"),
    annotations_only: bool = False,
    delete_zips: bool = False,
    retries: int = 5,
    timeout: float = 60.0,
    quiet: bool = False,
) -> None:
    """Download and unpack COCO 2017 keypoint annotations and the requested image splits."""
    root = Path(root)
    unknown = [s for s in splits if s not in COCO_FILES or s == "annotations"]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; choose from train2017, val2017")
    downloads = root / "downloads"
    wanted = ["annotations"] + ([] if annotations_only else list(splits))
    for key in wanted:
        remote = COCO_FILES[key]
        if key == "annotations":
            names = ("person_keypoints_train2017.json", "person_keypoints_val2017.json")
            have = all((root / "annotations" / name).is_file() for name in names)
        else:
            have = (root / "images" / f".{key}.done").exists() and (root / "images" / key).is_dir()
        if have:
            _log(quiet, f"{key}: already in place under {root}")
            continue
        zip_path = download_file(
            remote.url, downloads / remote.filename, md5=remote.md5, retries=retries, timeout=timeout, quiet=quiet
        )
        if key == "annotations":
            extract_annotations(zip_path, root, quiet=quiet)
        else:
            extract_images(zip_path, root, key, quiet=quiet)
        if delete_zips:
            zip_path.unlink()
    if delete_zips and downloads.is_dir() and not any(downloads.iterdir()):
        shutil.rmtree(downloads)
    _log(quiet, f"done: COCO keypoints under {root}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.readers.coco_download",
        description="Download COCO 2017 keypoint annotations and images (resumable, MD5-checked).",
    )
    parser.add_argument("--root", type=Path, required=True, help="dataset root, e.g. data/coco")
    parser.add_argument("--splits", nargs="+", default=["train2017", "val2017"], choices=["train2017", "val2017"])
    parser.add_argument("--annotations-only", action="store_true", help="only the keypoint annotation files")
    parser.add_argument("--delete-zips", action="store_true", help="remove the zips after unpacking")
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        download_coco(
            args.root,
            splits=tuple(args.splits),
            annotations_only=args.annotations_only,
            delete_zips=args.delete_zips,
            retries=args.retries,
            timeout=args.timeout,
            quiet=args.quiet,
        )
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
