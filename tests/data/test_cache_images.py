"""data.cache_images: every image decoded once into memory, the same items as from the files, the
arrays read-only, and a clear refusal for data that does not fit."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from tests.data.test_datamodule import _module
from tests.data.tiny_coco import make_tiny_coco


def _items(dataset) -> list[dict]:
    return [dataset[(i, 0)] if dataset.training else dataset[i] for i in range(len(dataset))]


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), key


@pytest.mark.parametrize("training", [True, False])
def test_cached_items_equal_the_files_and_need_no_files(tmp_path: Path, caplog, training: bool) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    plain = _module(root)
    plain.setup("fit")
    reference = _items(plain.train_dataset if training else plain.val_dataset)
    cached = _module(root, cache_images=True)
    with caplog.at_level(logging.INFO, logger="src.datasets.datamodule"):
        cached.setup("fit")
    split = "train" if training else "val"
    assert f"2 {split} images decoded into memory" in caplog.text
    dataset = cached.train_dataset if training else cached.val_dataset
    assert len(dataset.images) == 2  # 3 people on 2 images
    assert all(not image.flags.writeable for image in dataset.images.values())
    shutil.rmtree(root / "images")  # items now come from memory only
    _same(_items(dataset), reference)


def test_items_without_cache_read_the_files(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    dm = _module(root)
    dm.setup("fit")
    assert dm.train_dataset.images is None
    shutil.rmtree(root / "images")
    with pytest.raises(FileNotFoundError, match="image file not found"):
        dm.train_dataset[(0, 0)]


def test_cache_images_refuses_data_past_the_limit(tmp_path: Path, monkeypatch) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    monkeypatch.setattr("src.datasets.datamodule._memory_bytes", lambda: 2 * 100_000)
    dm = _module(root, cache_images=True)
    expected = r"data=coco \(train split\), data.cache_images=true: .*pass 0.0 GiB at .*\.jpg"
    with pytest.raises(ValueError, match=expected):
        dm.setup("fit")


def test_cache_keeps_nothing_when_refused(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    dm = _module(root)
    dm.setup("fit")
    dataset = dm.val_dataset
    with pytest.raises(ValueError, match="fits in memory"):
        dataset.cache_images(max_bytes=1)
    assert dataset.images is None
    size = dataset.cache_images(max_bytes=2**30)
    assert size == sum(image.nbytes for image in dataset.images.values()) > 0


def test_train_and_val_share_the_memory_budget(tmp_path: Path, monkeypatch) -> None:
    """Half the memory is the limit of both splits together: here the train images fit, and the
    val images (the same size) would pass what is left."""
    root = make_tiny_coco(tmp_path / "coco")
    probe = _module(root)
    probe.setup("fit")
    size = probe.train_dataset.cache_images(max_bytes=2**30)
    monkeypatch.setattr("src.datasets.datamodule._memory_bytes", lambda: 2 * (size + size // 2))
    dm = _module(root, cache_images=True)
    with pytest.raises(ValueError, match=r"\(val split\)"):
        dm.setup("fit")
