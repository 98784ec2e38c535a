"""python -m src.check_data: every kind of problem is found, named and counted, and the exit
status says whether training would fail; a clean dataset passes."""

from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest

from src.check_data import check
from src.readers.checks import check_image, exif_orientation
from tests.helpers import TINY_SYNTHETIC, compose_run


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """JPEG bytes with an EXIF APP1 segment holding one Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_image_checks():
    good = _jpeg()
    assert exif_orientation(good) is None and exif_orientation(with_orientation(good, 6)) == 6
    assert cv2.imdecode(np.frombuffer(with_orientation(good, 6), np.uint8), cv2.IMREAD_COLOR) is not None


def _person(image_id: int, ann_id: int, points: list[tuple[float, float]], box=(5, 5, 30, 30), k: int = 17) -> dict:
    kpts = []
    for x, y in points:
        kpts += [x, y, 2]
    kpts += [0, 0, 0] * (k - len(points))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": list(box),
        "area": box[2] * box[3],
        "num_keypoints": len(points),
        "keypoints": kpts,
    }


@pytest.fixture
def broken_root(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    images = root / "images" / "val2017"
    images.mkdir(parents=True)
    (root / "images" / "train2017").mkdir()
    (images / "rotated.jpg").write_bytes(with_orientation(_jpeg(), 6))
    (images / "truncated.jpg").write_bytes(_jpeg()[:-20])
    (images / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(images / "small.png"), np.zeros((30, 40, 3), np.uint8))
    names = ["rotated.jpg", "truncated.jpg", "empty.jpg", "small.png", "missing.jpg"]
    data = {
        "images": [{"id": i + 1, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(names)],
        "annotations": [
            _person(1, 1, [(10, 10), (20, 20)]),
            _person(1, 1, [(12, 12), (22, 22)]),  # the same id again
            _person(2, 3, [(10, 10), (90, 20)]),  # x = 90 lies outside the 64 px wide image
            _person(3, 4, [(10, 10)], box=(5, 5, 0, 30)),  # an empty box
            _person(4, 5, []),  # nobody's keypoints
            _person(5, 6, [(10, 10), (20, 20)]),
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}],
    }
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))
    for name in names[:4]:
        (root / "images" / "train2017" / name).write_bytes((images / name).read_bytes())
    return root


def test_every_problem_is_found_and_training_would_fail(broken_root, tmp_path, capsys):
    cfg = compose_run("check_data", ["data=coco", f"data.root={broken_root}"], tmp_path / "run", tmp_path)
    assert check(cfg) == 1
    found = json.loads((tmp_path / "run" / "check_data.json").read_text())
    kinds = {f["kind"] for f in found}
    assert kinds >= {
        "duplicate annotation id",
        "keypoint outside image",
        "zero-area box",
        "person without keypoints",
        "missing image",
        "unreadable image",
        "EXIF orientation",
        "size mismatch",
    }
    assert any(f["kind"] == "size mismatch" and "annotated 64x48, file 40x30" in f["detail"] for f in found)
    # this OpenCV refuses a JPEG cut short (others decode it with a damaged bottom: "truncated JPEG")
    assert any(f["where"].endswith("truncated.jpg") and "cut short" in f["detail"] for f in found)
    assert any(f["where"].endswith("empty.jpg") and f["detail"] == "empty file" for f in found)
    out = capsys.readouterr().out
    assert "ERROR: missing image" in out and "missing.jpg" in out and "training would fail" in out


def test_joint_count_is_fatal_with_the_readers_message(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        (root / "images" / split / "a.jpg").write_bytes(_jpeg())
        data = {
            "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
            "annotations": [_person(1, 1, [(10, 10)], k=14)],
            "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}],
        }
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))
    assert check(compose_run("check_data", ["data=coco", f"data.root={root}"], tmp_path / "run", tmp_path)) == 1
    found = json.loads((tmp_path / "run" / "check_data.json").read_text())
    assert {"joint count", "annotation error"} <= {f["kind"] for f in found}


def test_a_clean_synthetic_dataset_is_ready_and_a_missing_one_says_where(tmp_path, capsys):
    assert check(compose_run("check_data", TINY_SYNTHETIC, tmp_path / "run", tmp_path)) == 0
    assert "ready to train" in capsys.readouterr().out
    assert (
        check(compose_run("check_data", ["data=coco", f"data.root={tmp_path / 'none'}"], tmp_path / "r2", tmp_path))
        == 2
    )
    assert check_image(tmp_path / "none.jpg")[0].kind == "missing image"
