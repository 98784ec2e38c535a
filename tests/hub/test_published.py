"""Weights by name: the registry, ``pretrained=`` specs, and published checkpoints converted once
and run through the predictor, all from file:// URLs into a temporary cache."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate

from src.hub.cache import converted_folder, weights_folder
from src.hub.checkpoints import published_checkpoint, recipe_config
from src.hub.registry import REGISTRY_FILE, get_entry, known_weights, read_registry
from src.hub.resolve import weights_path
from src.inference.predictor import Predictor
from src.tasks.loading import load_task
from tests.helpers import compose_run

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("POSEKIT_CACHE", str(root))
    monkeypatch.delenv("POSEKIT_OFFLINE", raising=False)
    monkeypatch.delenv("POSEKIT_REGISTRY", raising=False)
    return root


def register(tmp_path: Path, monkeypatch, entries: dict) -> Path:
    path = tmp_path / f"registry_{len(list(tmp_path.glob('registry_*')))}.yaml"
    path.write_text(yaml.safe_dump(entries))
    monkeypatch.setenv("POSEKIT_REGISTRY", str(path))
    return path


def publish(state: dict, folder: Path, stem: str) -> tuple[Path, str]:
    """Save ``state`` as a published file whose name carries its hash prefix, like the real ones."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{stem}.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = tmp.rename(folder / f"{stem}-{digest[:8]}.pth")
    return path, digest


def test_the_project_registry_is_complete_and_consistent():
    entries = read_registry(REGISTRY_FILE)
    assert entries, "the registry is empty"
    experiments = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    files = [e.file_name for e in entries.values()]
    assert len(files) == len(set(files)), "two entries share a file name"
    for entry in entries.values():
        assert all(u.startswith("https://") for u in entry.urls), entry.name
        assert entry.urls[0].rsplit("/", 1)[-1] == entry.file_name, entry.name
        assert entry.sha256 or (entry.hash_prefix and len(entry.hash_prefix) >= 8), entry.name
        if entry.kind == "checkpoint":
            assert entry.experiment in experiments, f"{entry.name}: no conf/experiment/{entry.experiment}.yaml"
            assert entry.accuracy and entry.accuracy_source, entry.name


def test_every_recipe_starts_from_its_networks_own_initialisation():
    """Recipes name their initialisation by registry name (or URL where mmpose publishes no hash), and it is
    the one the network declares, so model.pretrained=imagenet means the same file as the recipe."""
    names = set(read_registry(REGISTRY_FILE))
    checked = 0
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
        spec = model.get("pretrained")
        if not isinstance(spec, str) or spec.startswith("${"):
            continue
        assert spec in names or spec.startswith("https://"), (
            f"{path.name}: pretrained {spec!r} is neither a name nor a URL"
        )
        cfg = recipe_config(path.stem)
        with torch.device("meta"):
            net = instantiate(cfg.model.net)
        assert net.default_pretrained == spec, f"{path.name}: recipe {spec!r}, network {net.default_pretrained!r}"
        checked += 1
    assert checked >= 30


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "backbone", "file_name": "a.pth", "urls": ["https://x/a.pth"], "licence": "MIT"}, "lacks"),
        (
            {
                "kind": "backbone",
                "file_name": "a.pth",
                "urls": ["https://x/a.pth"],
                "licence": "MIT",
                "initialises": "x",
                "confirmed_at": "y",
            },
            "neither sha256 nor hash_prefix",
        ),
        (
            {
                "kind": "checkpoint",
                "file_name": "a-12345678.pth",
                "hash_prefix": "12345678",
                "urls": ["https://x/a-12345678.pth"],
                "licence": "MIT",
                "initialises": "x",
                "confirmed_at": "y",
            },
            "names the experiment",
        ),
        ({"kind": "backbone", "colour": "red"}, "unknown fields"),
    ],
)
def test_bad_registry_entries_are_named(tmp_path, entry, message):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"bad_entry": entry}))
    with pytest.raises(ValueError, match=message) as err:
        read_registry(path)
    assert "bad_entry" in str(err.value) and str(path) in str(err.value)


def test_pretrained_specs_resolve_to_files(cache, tmp_path, monkeypatch):
    state = {"conv.weight": torch.ones(2, 2)}
    file, digest = publish(state, tmp_path / "mirror", "tiny_backbone")
    register(
        tmp_path,
        monkeypatch,
        {
            "tiny_backbone": {
                "kind": "backbone",
                "file_name": file.name,
                "urls": [file.as_uri()],
                "sha256": digest,
                "licence": "MIT",
                "initialises": "a test backbone",
                "confirmed_at": "this test",
            }
        },
    )
    cached = weights_folder() / file.name
    assert weights_path("tiny_backbone", progress=False) == cached
    assert weights_path("imagenet", default="tiny_backbone", progress=False) == cached
    assert weights_path(str(file)) == file
    with pytest.raises(ValueError, match="no known initialisation"):
        weights_path("imagenet")
    with pytest.raises(FileNotFoundError, match="pretrained=tiny_backbone downloads it"):
        weights_path(tmp_path / "elsewhere" / file.name)
    with pytest.raises(KeyError, match="tiny_backbone"):
        get_entry("no_such_weights")


def quickstart_task():
    cfg = recipe_config("quickstart")
    torch.manual_seed(0)
    task = instantiate(cfg.model, _recursive_=False)
    with torch.no_grad():
        for p in task.net.parameters():
            p.normal_(0, 0.05)
    return task


def checkpoint_entry(file: Path, digest: str, **extra) -> dict:
    return {
        "kind": "checkpoint",
        "file_name": file.name,
        "urls": [file.as_uri()],
        "hash_prefix": digest[:8],
        "licence": "MIT",
        "initialises": "the quickstart HRNet",
        "confirmed_at": "this test",
        "experiment": "quickstart",
        "accuracy": {"AP": 0.5},
        "accuracy_source": "this test",
        **extra,
    }


def test_a_published_checkpoint_is_converted_once_and_predicts_like_its_weights(cache, tmp_path, monkeypatch):
    task = quickstart_task()
    # saved the way another code base names it: backbone and head under prefixes
    state = {("head." if k.startswith("final_layer") else "backbone.") + k: v for k, v in task.net.state_dict().items()}
    file, digest = publish({"state_dict": state, "meta": {"epoch": 210}}, tmp_path / "mirror", "quick_pose")
    register(
        tmp_path,
        monkeypatch,
        {"quick_pose": checkpoint_entry(file, digest, key_map={"backbone.": "", "head.": ""})},
    )
    path = published_checkpoint("quick_pose", progress=False)
    assert path == converted_folder() / "quick_pose.ckpt"
    loaded = load_task(path)
    for key, value in task.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    assert sorted(p.name for p in converted_folder().iterdir() if not p.name.endswith(".lock")) == ["quick_pose.ckpt"]

    image = np.random.default_rng(0).integers(0, 255, (160, 120, 3), dtype=np.uint8)
    boxes = [np.array([[10.0, 20.0, 80.0, 120.0]])]
    expected = Predictor(task)([image], boxes)[0]
    # later uses read the cache only
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("the network was used"))
    got = Predictor.from_pretrained("quick_pose")([image], boxes)[0]
    np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-4)


def test_src_predict_runs_a_model_by_name(cache, tmp_path, monkeypatch):
    from src.predict import predict

    task = quickstart_task()
    file, digest = publish(task.net.state_dict(), tmp_path / "mirror", "quick_pose")
    register(tmp_path, monkeypatch, {"quick_pose": checkpoint_entry(file, digest)})
    image = tmp_path / "person.png"
    import cv2

    cv2.imwrite(str(image), np.full((128, 96, 3), 127, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"file_name": "person.png", "bbox": [8, 8, 80, 110], "score": 1.0}]))
    cfg = compose_run(
        "predict",
        ["model_name=quick_pose", f"input={image}", f"boxes={boxes}", "progress=false", "device=cpu"],
        tmp_path / "run",
        tmp_path / "data",
    )
    out = predict(cfg)
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 1 and len(results[0]["keypoints"]) == 17 * 3
    with pytest.raises(ValueError, match="not both"):
        predict(
            compose_run(
                "predict",
                ["model_name=quick_pose", "ckpt_path=x.ckpt", f"input={image}"],
                tmp_path / "r2",
                tmp_path / "data",
            )
        )


def test_a_checkpoint_of_another_network_is_refused_and_nothing_is_kept(cache, tmp_path, monkeypatch):
    task = quickstart_task()
    state = dict(task.net.state_dict())
    state["final_layer.weight"] = torch.zeros(16, *state["final_layer.weight"].shape[1:])  # 16 joints, not 17
    state["final_layer.bias"] = torch.zeros(16)
    file, digest = publish(state, tmp_path / "mirror", "mpii_pose")
    register(tmp_path, monkeypatch, {"mpii_pose": checkpoint_entry(file, digest)})
    with pytest.raises(ValueError, match=r"final_layer.weight: file \(16,"):
        published_checkpoint("mpii_pose", progress=False)
    assert not (converted_folder() / "mpii_pose.ckpt").exists()


def test_registry_names_must_not_collide(cache, tmp_path, monkeypatch):
    name = next(iter(read_registry(REGISTRY_FILE)))
    entry = {**checkpoint_entry(tmp_path / "x-12345678.pth", "12345678")}
    register(tmp_path, monkeypatch, {name: entry})
    with pytest.raises(ValueError, match="already known"):
        known_weights()
