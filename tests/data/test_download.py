"""COCO downloader: resume with HTTP Range, checksum / size checks and extraction (local server only)."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from src.readers import coco_download as dl


class _Server:
    """A bounded local HTTP server for one file, with Range support and fault injection.

    ``cut_after``: number of body bytes after which the next response is cut off (once).
    ``honour_range``: answer Range requests with 206 (else a full 200).
    ``fail_status``: answer every request with this HTTP error status.
    ``requests``: the Range header of every GET (None when absent).
    """

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cut_after: int | None = None
        self.honour_range = True
        self.fail_status: int | None = None
        self.requests: list[str | None] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner.requests.append(self.headers.get("Range"))
                if owner.fail_status is not None:
                    self.send_error(owner.fail_status)
                    return
                data, start = owner.payload, 0
                rng = self.headers.get("Range")
                if rng and owner.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.cut_after is not None:
                    body, owner.cut_after = body[: owner.cut_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/val2017.zip"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _zip_bytes(tmp_path: Path, members: dict[str, bytes]) -> bytes:
    path = tmp_path / "src.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path.read_bytes()


@pytest.fixture()
def payload(tmp_path: Path) -> bytes:
    members = {f"val2017/{i:012d}.jpg": bytes([i]) * 5000 for i in range(1, 9)}
    return _zip_bytes(tmp_path, members)


def test_resume_after_dropped_connection(tmp_path: Path, payload: bytes) -> None:
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "dl" / "val2017.zip"
    with _Server(payload) as server:
        server.cut_after = 12345
        with pytest.raises(dl.DownloadError, match="resume"):
            dl.download_file(server.url, dest, md5=md5, retries=0, timeout=5, quiet=True)
        part = dest.with_name("val2017.zip.part")
        assert part.stat().st_size == 12345 and not dest.exists()
        dl.download_file(server.url, dest, md5=md5, retries=0, timeout=5, quiet=True)
        assert server.requests == [None, "bytes=12345-"]
    assert dest.read_bytes() == payload and not part.exists()


def test_retry_resumes_within_one_call(tmp_path: Path, payload: bytes, monkeypatch) -> None:
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    dest = tmp_path / "val2017.zip"
    with _Server(payload) as server:
        server.cut_after = 777
        dl.download_file(server.url, dest, md5=hashlib.md5(payload).hexdigest(), retries=2, timeout=5, quiet=True)
        assert server.requests == [None, "bytes=777-"]
    assert dest.read_bytes() == payload


def test_server_without_range_support_restarts(tmp_path: Path, payload: bytes) -> None:
    dest = tmp_path / "val2017.zip"
    dest.with_name("val2017.zip.part").write_bytes(b"garbage that must be discarded")
    with _Server(payload) as server:
        server.honour_range = False
        dl.download_file(server.url, dest, md5=None, retries=0, timeout=5, quiet=True)  # zip test instead of md5
        assert server.requests == ["bytes=30-"]
    assert dest.read_bytes() == payload


def test_complete_part_file_gets_416(tmp_path: Path, payload: bytes) -> None:
    dest = tmp_path / "val2017.zip"
    dest.with_name("val2017.zip.part").write_bytes(payload)
    with _Server(payload) as server:
        dl.download_file(server.url, dest, md5=hashlib.md5(payload).hexdigest(), retries=0, timeout=5, quiet=True)
    assert dest.read_bytes() == payload


def test_checksum_mismatch_and_corrupt_zip(tmp_path: Path, payload: bytes) -> None:
    dest = tmp_path / "val2017.zip"
    with _Server(payload) as server:
        with pytest.raises(dl.DownloadError, match="MD5"):
            dl.download_file(server.url, dest, md5="0" * 32, retries=0, timeout=5, quiet=True)
        assert not dest.exists() and not dest.with_name("val2017.zip.part").exists()
    broken = bytearray(payload)
    broken[200] ^= 0xFF  # inside the first member's data: CRC error
    with _Server(bytes(broken)) as server:
        with pytest.raises(dl.DownloadError, match="corrupt zip"):
            dl.download_file(server.url, dest, md5=None, retries=0, timeout=5, quiet=True)


def test_http_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    with _Server(b"x") as server:
        server.fail_status = 404
        with pytest.raises(dl.DownloadError, match="HTTP 404"):
            dl.download_file(server.url, tmp_path / "a.zip", retries=3, timeout=5, quiet=True)
        assert len(server.requests) == 1  # client errors are final
        server.fail_status = 503
        with pytest.raises(dl.DownloadError, match="giving up after 2 attempts"):
            dl.download_file(server.url, tmp_path / "b.zip", retries=1, timeout=5, quiet=True)
        assert len(server.requests) == 3  # server errors are retried


def test_download_coco_layout(tmp_path: Path, payload: bytes, monkeypatch) -> None:
    annotations = _zip_bytes(
        tmp_path,
        {
            "annotations/person_keypoints_val2017.json": b'{"images": [], "annotations": []}',
            "annotations/person_keypoints_train2017.json": b'{"images": [], "annotations": []}',
            "annotations/instances_val2017.json": b"{}",
        },
    )
    root = tmp_path / "coco"
    with _Server(annotations) as ann_server, _Server(payload) as img_server:
        monkeypatch.setattr(
            dl,
            "COCO_FILES",
            {
                "annotations": dl.RemoteFile(
                    ann_server.url.replace("val2017", "annotations_trainval2017"),
                    md5=hashlib.md5(annotations).hexdigest(),
                ),
                "train2017": dl.RemoteFile(img_server.url.replace("val2017", "train2017")),
                "val2017": dl.RemoteFile(img_server.url, md5=hashlib.md5(payload).hexdigest()),
            },
        )
        assert dl.main(["--root", str(root), "--splits", "val2017", "--quiet", "--retries", "0"]) == 0
        assert (root / "annotations" / "person_keypoints_val2017.json").is_file()
        assert not (root / "annotations" / "instances_val2017.json").exists()
        assert len(list((root / "images" / "val2017").glob("*.jpg"))) == 8
        assert not (root / "images" / "train2017").exists()
        assert (root / "downloads" / "val2017.zip").is_file()
        # a second run finds everything in place and downloads nothing
        count = len(img_server.requests) + len(ann_server.requests)
        assert dl.main(["--root", str(root), "--splits", "val2017", "--quiet"]) == 0
        assert len(img_server.requests) + len(ann_server.requests) == count
        # --annotations-only on a fresh root
        assert dl.main(["--root", str(tmp_path / "ann_only"), "--annotations-only", "--quiet", "--delete-zips"]) == 0
        assert (tmp_path / "ann_only" / "annotations" / "person_keypoints_train2017.json").is_file()
        assert not (tmp_path / "ann_only" / "images").exists()
        assert not (tmp_path / "ann_only" / "downloads").exists()


def test_official_table() -> None:
    assert set(dl.COCO_FILES) == {"annotations", "train2017", "val2017"}
    assert dl.COCO_FILES["val2017"].filename == "val2017.zip"
    assert all(len(f.md5 or "") == 32 for f in dl.COCO_FILES.values())
