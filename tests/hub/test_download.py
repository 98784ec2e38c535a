"""Downloads into the cache, offline: file:// URLs and a local HTTP server, a temporary cache."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import urllib.request
from pathlib import Path

import pytest

from src.hub.cache import CacheNotWritable, weights_folder
from src.hub.download import BadDownload, WeightsUnavailable, fetch
from src.hub.resolve import fetch_url
from tests.hub.file_server import Behaviour, serve


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("POSEKIT_CACHE", str(root))
    monkeypatch.delenv("POSEKIT_OFFLINE", raising=False)
    return root


def weights_file(folder: Path, name: str, size: int = 300_000) -> tuple[Path, str]:
    """A file of random bytes that starts like a torch zip file; returns it and its SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    data = b"PK\x03\x04" + os.urandom(size - 4)
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def no_network(*args, **kwargs):
    raise AssertionError("the network was used")


def cache_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_file_url_is_verified_cached_and_then_read_without_network(cache, tmp_path, monkeypatch):
    source, digest = weights_file(tmp_path / "mirror", "net.pth")
    dest = weights_folder() / "net.pth"
    got = fetch([source.as_uri()], dest, sha256=digest, progress=False)
    assert got == dest and dest.read_bytes() == source.read_bytes()
    assert cache_files(cache) == ["net.pth"]  # no .part left behind
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    source.unlink()
    assert fetch([source.as_uri()], dest, sha256=digest, progress=False) == dest


def test_hash_prefix_of_the_file_name_verifies_a_url(cache, tmp_path):
    data = b"PK" + bytes(range(256)) * 100
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / f"resnet-{digest[:8]}.pth"
    source.write_bytes(data)
    path = fetch_url(source.as_uri(), progress=False)
    assert path.name == source.name and path.read_bytes() == data
    wrong = tmp_path / "resnet-0badc0de.pth"
    wrong.write_bytes(data)
    with pytest.raises(BadDownload, match="does not start with 0badc0de"):
        fetch_url(wrong.as_uri(), progress=False)


def test_url_fragment_gives_the_full_hash(cache, tmp_path):
    source, digest = weights_file(tmp_path, "plain.pth")
    assert fetch_url(f"{source.as_uri()}#sha256={digest}", progress=False).read_bytes() == source.read_bytes()
    other, _ = weights_file(tmp_path / "b", "plain2.pth")
    with pytest.raises(BadDownload, match=f"expected {digest}"):
        fetch_url(f"{other.as_uri()}#sha256={digest}", progress=False)


def test_hash_mismatch_is_refused_and_nothing_stays_in_the_cache(cache, tmp_path):
    source, digest = weights_file(tmp_path, "net.pth")
    with pytest.raises(BadDownload) as err:
        fetch([source.as_uri()], weights_folder() / "net.pth", sha256="0" * 64, progress=False)
    assert source.as_uri() in str(err.value) and digest in str(err.value)
    assert cache_files(cache) == []


def test_wrong_size_is_refused(cache, tmp_path):
    source, digest = weights_file(tmp_path, "net.pth", size=1000)
    with pytest.raises(BadDownload, match="gave 1000 bytes, expected 2000"):
        fetch([source.as_uri()], weights_folder() / "net.pth", sha256=digest, size=2000, progress=False)
    assert cache_files(cache) == []


def test_an_html_page_is_refused_with_the_url_and_what_came_back(cache, tmp_path):
    page = tmp_path / "hrnet_w32-36af842e.pth"
    page.write_text("<!DOCTYPE html><html><head><title>Sign in - Drive</title></head><body>quota</body></html>")
    with pytest.raises(BadDownload) as err:
        fetch([page.as_uri()], weights_folder() / page.name, hash_prefix="36af842e", progress=False)
    message = str(err.value)
    assert page.as_uri() in message and "HTML page" in message and "Sign in - Drive" in message
    assert cache_files(cache) == []


def test_an_html_content_type_is_refused_over_http(cache, tmp_path):
    source, digest = weights_file(tmp_path / "srv", "net.pth")
    server, base = serve(tmp_path / "srv", Behaviour(content_type="text/html; charset=utf-8"))
    try:
        with pytest.raises(BadDownload, match="HTML page"):
            fetch([f"{base}/net.pth"], weights_folder() / "net.pth", sha256=digest, progress=False)
    finally:
        server.shutdown()
    assert cache_files(cache) == []


def test_an_interrupted_http_transfer_resumes_with_a_range_request(cache, tmp_path):
    source, digest = weights_file(tmp_path / "srv", "net.pth", size=400_000)
    behaviour = Behaviour(cut_first_after=150_000)
    server, base = serve(tmp_path / "srv", behaviour)
    try:
        path = fetch([f"{base}/net.pth"], weights_folder() / "net.pth", sha256=digest, progress=False, backoff_s=0)
    finally:
        server.shutdown()
    assert path.read_bytes() == source.read_bytes()
    assert [r["range"] for r in behaviour.requests] == [None, "bytes=150000-"]
    assert cache_files(cache) == ["net.pth"]


def test_a_partial_file_left_by_a_killed_run_is_finished(cache, tmp_path):
    source, digest = weights_file(tmp_path / "srv", "net.pth", size=200_000)
    dest = weights_folder() / "net.pth"
    dest.parent.mkdir(parents=True)
    dest.with_name("net.pth.part").write_bytes(source.read_bytes()[:70_000])  # truncated
    behaviour = Behaviour()
    server, base = serve(tmp_path / "srv", behaviour)
    try:
        fetch([f"{base}/net.pth"], dest, sha256=digest, progress=False)
    finally:
        server.shutdown()
    assert dest.read_bytes() == source.read_bytes()
    assert [r["range"] for r in behaviour.requests] == ["bytes=70000-"]
    # a file:// mirror cannot send a range: the partial file is rewritten from the start
    dest.unlink()
    dest.with_name("net.pth.part").write_bytes(b"garbage" * 100)
    assert fetch([source.as_uri()], dest, sha256=digest, progress=False).read_bytes() == source.read_bytes()


def test_the_next_mirror_is_tried_after_a_bad_one(cache, tmp_path):
    source, digest = weights_file(tmp_path / "good", "net.pth")
    page = tmp_path / "bad" / "net.pth"
    page.parent.mkdir()
    page.write_text("<html><title>Quota exceeded</title></html>")
    path = fetch([page.as_uri(), source.as_uri()], weights_folder() / "net.pth", sha256=digest, progress=False)
    assert path.read_bytes() == source.read_bytes()


def test_offline_uses_the_cache_and_names_a_missing_file_in_one_line(cache, tmp_path, monkeypatch):
    source, digest = weights_file(tmp_path, "net.pth")
    dest = weights_folder() / "net.pth"
    fetch([source.as_uri()], dest, sha256=digest, progress=False)
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert fetch([source.as_uri()], dest, sha256=digest, progress=False) == dest
    with pytest.raises(WeightsUnavailable) as err:
        fetch(["https://example.org/w/other.pth"], weights_folder() / "other.pth", sha256=digest, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert str(weights_folder() / "other.pth") in message and "https://example.org/w/other.pth" in message


def test_an_unreachable_server_gives_one_line_with_the_url_and_the_place(cache):
    url = "http://127.0.0.1:9/hrnet_w32-36af842e.pth"  # nothing listens on the discard port
    with pytest.raises(WeightsUnavailable) as err:
        fetch([url], weights_folder() / "hrnet_w32-36af842e.pth", hash_prefix="36af842e", retries=1, backoff_s=0)
    message = str(err.value)
    assert "\n" not in message and url in message and "put the file at" in message


def test_a_cache_that_cannot_be_written_is_named_with_the_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("POSEKIT_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("POSEKIT_OFFLINE", raising=False)
    source, digest = weights_file(tmp_path, "net.pth")
    with pytest.raises(CacheNotWritable) as err:
        fetch([source.as_uri()], weights_folder() / "net.pth", sha256=digest, progress=False)
    assert str(blocker / "cache" / "weights") in str(err.value) and "$POSEKIT_CACHE" in str(err.value)


def _fetch_in_process(url: str, cache: str, digest: str, out: multiprocessing.Queue) -> None:
    os.environ["POSEKIT_CACHE"] = cache
    from src.hub.cache import weights_folder as folder
    from src.hub.download import fetch as fetch_file

    path = fetch_file([url], folder() / "big.pth", sha256=digest, progress=False)
    out.put(str(path))


def test_two_processes_fetching_one_file_download_it_once(cache, tmp_path):
    source, digest = weights_file(tmp_path / "srv", "big.pth", size=2_000_000)
    behaviour = Behaviour(seconds_per_chunk=0.1)  # about 3 s per transfer: the two processes overlap
    server, base = serve(tmp_path / "srv", behaviour)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    try:
        workers = [
            context.Process(target=_fetch_in_process, args=(f"{base}/big.pth", str(cache), digest, results))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    finally:
        server.shutdown()
    assert [w.exitcode for w in workers] == [0, 0]
    paths = {results.get(timeout=5) for _ in workers}
    assert paths == {str(weights_folder() / "big.pth")}
    assert len(behaviour.requests) == 1  # one transfer; the other process waited for it
    assert (weights_folder() / "big.pth").read_bytes() == source.read_bytes()
    assert cache_files(cache) == ["big.pth"]
