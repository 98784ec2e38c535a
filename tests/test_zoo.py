"""python -m src.zoo: the listing, fetching by name and re-verifying the cache (file:// URLs)."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from src import zoo
from src.hub.cache import weights_folder


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSEKIT_OFFLINE", raising=False)
    data = b"PK" + bytes(range(256)) * 64
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / f"tiny-{digest[:8]}.pth"
    source.write_bytes(data)
    path = tmp_path / "lab.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "lab_tiny": {
                    "kind": "backbone",
                    "file_name": source.name,
                    "urls": [source.as_uri()],
                    "hash_prefix": digest[:8],
                    "licence": "MIT",
                    "initialises": "a test backbone",
                    "confirmed_at": "this test",
                }
            }
        )
    )
    monkeypatch.setenv("POSEKIT_REGISTRY", str(path))
    return source


def test_listing_shows_the_built_in_entries_and_what_is_cached(registry, capsys):
    assert zoo.main(["--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["lab_tiny"]["state"] == "-"
    assert rows["rtmpose_m_coco_256x192"]["kind"] == "checkpoint"
    assert rows["rtmpose_m_coco_256x192"]["accuracy"]["AP"] == pytest.approx(0.746)
    assert zoo.main(["fetch", "lab_tiny"]) == 0
    assert (weights_folder() / registry.name).read_bytes() == registry.read_bytes()
    zoo.main([])
    table = capsys.readouterr().out
    assert "lab_tiny" in table and "cached" in table and "hrnet_w32_imagenet" in table


def test_verify_finds_a_changed_file_and_fetch_names_unknown_ones(registry, capsys):
    assert zoo.main(["fetch", "lab_tiny"]) == 0
    assert zoo.main(["verify"]) == 0
    (weights_folder() / registry.name).write_bytes(b"changed")
    assert zoo.main(["verify"]) == 1
    assert "BAD lab_tiny" in capsys.readouterr().out
    assert zoo.main(["fetch", "no_such_name"]) == 1
    assert "no known weights called 'no_such_name'" in capsys.readouterr().err
