"""COCO reader: official filtering, boxes, detections, validation errors and layout messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.layouts import COCO17, MPII16
from src.readers.coco_records import check_coco_layout, load_coco_records
from src.readers.errors import AnnotationError, DatasetNotFoundError
from tests.data.tiny_coco import KEPT_IDS, annotation_dict, make_tiny_coco, write_detections
from tests.helpers import layout_real_coco

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real_samples" / "coco"


def _load(ann: Path, image_dir: Path, **kw):
    kw.setdefault("training", True)
    return load_coco_records(ann, image_dir, keypoint_info=COCO17, aspect_ratio=0.75, **kw)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return make_tiny_coco(tmp_path / "coco")


def _paths(root: Path, split: str = "val2017") -> tuple[Path, Path]:
    return root / "annotations" / f"person_keypoints_{split}.json", root / "images" / split


def _official_center_scale(box, aspect_ratio=0.75, padding=1.25):
    """The official _xywh2cs written out for the test."""
    x, y, w, h = box
    center = np.array([x + w * 0.5, y + h * 0.5])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w / 200.0, h / 200.0]) * padding


def test_filtering_keeps_official_persons(tiny: Path) -> None:
    ann, images = _paths(tiny)
    records = _load(ann, images)
    assert len(records) == len(KEPT_IDS) == 3
    assert [r["sample_id"] for r in records] == [0, 1, 2]
    assert [r["image_id"] for r in records] == [1, 1, 2]
    assert records[0]["image_file"] == str(images / "000000000001.jpg")
    for r in records:
        assert r["keypoints"].shape == (17, 2) and r["keypoints"].dtype == np.float32
        assert r["visible"].shape == (17,) and r["visible"].dtype == np.float32
        assert r["center"].shape == (2,) and r["center"].dtype == np.float32
        assert r["scale"].shape == (2,) and r["scale"].dtype == np.float32
        assert r["box_score"] == 1.0
        assert r["area"] == pytest.approx(float(r["scale"][0]) * 200 * float(r["scale"][1]) * 200)
    # same records for validation with ground-truth boxes
    val = _load(ann, images, training=False)
    assert len(val) == 3
    np.testing.assert_array_equal(val[1]["keypoints"], records[1]["keypoints"])


def test_visibility_and_keypoints_outside_image(tiny: Path) -> None:
    ann, images = _paths(tiny)
    data = json.loads(ann.read_text())
    records = _load(ann, images)
    raw_a = np.array(data["annotations"][0]["keypoints"], dtype=np.float64).reshape(17, 3)
    np.testing.assert_array_equal(records[0]["visible"], (raw_a[:, 2] > 0).astype(np.float32))
    assert set(np.unique(records[0]["visible"])) == {0.0, 1.0}  # v=1 and v=2 both -> 1
    np.testing.assert_allclose(records[0]["keypoints"], raw_a[:, :2], atol=1e-4)
    out = records[1]["keypoints"]  # annotation 106
    assert out[0, 0] == pytest.approx(-5.0) and out[16, 0] == pytest.approx(171.5)
    assert records[1]["visible"].sum() == 17


def test_center_scale_from_clipped_box(tiny: Path) -> None:
    ann, images = _paths(tiny)
    records = _load(ann, images)
    # annotation 101: box (40, 10, 60, 100) on a 160 x 120 image -> clean box (40, 10, 59, 99)
    center, scale = _official_center_scale((40.0, 10.0, 59.0, 99.0))
    np.testing.assert_allclose(records[0]["center"], center, rtol=1e-6)
    np.testing.assert_allclose(records[0]["scale"], scale, rtol=1e-6)
    # annotation 106: box (90, 20, 60, 90): x2 = min(159, 90 + 59) = 149, y2 = min(119, 20 + 89) = 109
    center, scale = _official_center_scale((90.0, 20.0, 59.0, 89.0))
    np.testing.assert_allclose(records[1]["center"], center, rtol=1e-6)
    np.testing.assert_allclose(records[1]["scale"], scale, rtol=1e-6)


def test_box_clipped_at_image_border(tmp_path: Path) -> None:
    data = annotation_dict()
    data["annotations"] = [dict(data["annotations"][0], bbox=[-10.0, 100.0, 400.0, 50.0])]
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(data))
    (rec,) = _load(ann, tmp_path)
    # x1 = 0, y1 = 100, x2 = min(159, 0 + 399) = 159, y2 = min(119, 100 + 49) = 119
    center, scale = _official_center_scale((0.0, 100.0, 159.0, 19.0))
    np.testing.assert_allclose(rec["center"], center, rtol=1e-6)
    np.testing.assert_allclose(rec["scale"], scale, rtol=1e-6)


def test_detections_with_threshold(tiny: Path, tmp_path: Path) -> None:
    ann, images = _paths(tiny)
    dets = write_detections(tmp_path / "dets.json")
    records = _load(ann, images, training=False, det_file=tmp_path / "dets.json")
    assert len(records) == 3  # the non-person detection is skipped
    assert [r["box_score"] for r in records] == pytest.approx([0.9, 0.5, 0.2])
    assert [r["sample_id"] for r in records] == [0, 1, 2]
    assert records[2]["image_file"] == str(images / "000000000002.jpg")
    center, scale = _official_center_scale(dets[0]["bbox"])  # detector boxes are not clipped
    np.testing.assert_allclose(records[0]["center"], center, rtol=1e-6)
    np.testing.assert_allclose(records[0]["scale"], scale, rtol=1e-6)
    assert not records[0]["keypoints"].any() and not records[0]["visible"].any()
    # official IMAGE_THRE semantics: keep score >= thr
    kept = _load(ann, images, training=False, det_file=tmp_path / "dets.json", det_score_thr=0.5)
    assert [r["box_score"] for r in kept] == pytest.approx([0.9, 0.5])
    with pytest.raises(ValueError, match="only used for evaluation"):
        _load(ann, images, training=True, det_file=tmp_path / "dets.json")


def test_detection_for_unknown_image(tiny: Path, tmp_path: Path) -> None:
    ann, images = _paths(tiny)
    det = tmp_path / "dets.json"
    det.write_text(json.dumps([{"image_id": 999, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 1.0}]))
    with pytest.raises(AnnotationError, match="999") as info:
        _load(ann, images, training=False, det_file=det)
    assert str(det) in str(info.value)
    det.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10], "score": 1.0}]))
    with pytest.raises(AnnotationError, match="bbox"):
        _load(ann, images, training=False, det_file=det)
    det.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 10, 10], "score": 1.0}]))
    with pytest.raises(AnnotationError, match="category_id"):
        _load(ann, images, training=False, det_file=det)


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_invalid_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"images": [1, 2,')
    with pytest.raises(AnnotationError, match="invalid JSON") as info:
        _load(path, tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("key", ["images", "annotations"])
def test_missing_top_level_key(tmp_path: Path, key: str) -> None:
    data = annotation_dict()
    del data[key]
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match=key) as info:
        _load(path, tmp_path)
    assert str(path) in str(info.value)


def test_wrong_keypoint_length(tmp_path: Path) -> None:
    data = annotation_dict()
    data["annotations"][5]["keypoints"] = data["annotations"][5]["keypoints"][:-3]
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match=r"106.*48 values, expected 51") as info:
        _load(path, tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", ["12.5", None, [1]])
def test_non_numeric_keypoint(tmp_path: Path, bad) -> None:
    data = annotation_dict()
    data["annotations"][6]["keypoints"][4] = bad
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match="201") as info:
        _load(path, tmp_path)
    assert str(path) in str(info.value)


def test_non_numeric_bbox_and_missing_field(tmp_path: Path) -> None:
    data = annotation_dict()
    data["annotations"][0]["bbox"][2] = "wide"
    with pytest.raises(AnnotationError, match=r"101.*bbox"):
        _load(_write(tmp_path, data), tmp_path)
    data = annotation_dict()
    del data["annotations"][0]["keypoints"]
    with pytest.raises(AnnotationError, match=r"101.*'keypoints'"):
        _load(_write(tmp_path, data), tmp_path)
    data = annotation_dict()
    del data["images"][1]["width"]
    with pytest.raises(AnnotationError, match="width"):
        _load(_write(tmp_path, data), tmp_path)


def test_keypoint_count_mismatch_with_layout(tiny: Path) -> None:
    ann, images = _paths(tiny)
    with pytest.raises(AnnotationError, match=r"17 keypoints.*'mpii16' has 16") as info:
        load_coco_records(ann, images, keypoint_info=MPII16, aspect_ratio=0.75, training=True)
    assert str(ann) in str(info.value)


def test_unknown_image_id_in_annotation(tmp_path: Path) -> None:
    data = annotation_dict()
    data["annotations"][0]["image_id"] = 77
    with pytest.raises(AnnotationError, match="77"):
        _load(_write(tmp_path, data), tmp_path)


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope.json"):
        _load(tmp_path / "nope.json", tmp_path)


def test_empty_annotations(tmp_path: Path) -> None:
    data = annotation_dict()
    data["annotations"] = []
    assert _load(_write(tmp_path, data), tmp_path) == []


def test_check_coco_layout_message(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    ann = root / "annotations" / "person_keypoints_train2017.json"
    with pytest.raises(DatasetNotFoundError) as info:
        check_coco_layout(root, ann, root / "images" / "train2017", split="train2017")
    msg = str(info.value)
    for expected in (
        str(ann),
        "annotations/person_keypoints_train2017.json",
        "annotations/person_keypoints_val2017.json",
        "images/train2017/",
        "images/val2017/",
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        "http://images.cocodataset.org/zips/train2017.zip",
        "http://images.cocodataset.org/zips/val2017.zip",
        f"python -m src.readers.coco_download --root {root}",
        "data.root=",
        "data.reader.train_ann=",  # the paths are the reader's keys
        "data=synthetic",
    ):
        assert expected in msg, expected
    assert isinstance(info.value, FileNotFoundError)


def test_check_coco_layout_passes(tiny: Path) -> None:
    ann, images = _paths(tiny, "train2017")
    check_coco_layout(tiny, ann, images, split="train2017")
    with pytest.raises(DatasetNotFoundError, match="image folder"):
        check_coco_layout(tiny, ann, tiny / "images" / "nope", split="train2017")


@pytest.mark.skipif(not REAL.is_dir(), reason="real COCO samples (/work/shared) not available")
def test_real_coco_samples(tmp_path: Path) -> None:
    """4 COCO val2017 images: 14 persons, 12 with keypoints; 118 person detections."""
    root = layout_real_coco(tmp_path / "coco")
    ann, images = _paths(root)
    check_coco_layout(root, ann, images, split="val2017")
    records = _load(ann, images)
    assert len(records) == 12
    assert all(Path(r["image_file"]).is_file() for r in records)
    assert all(r["visible"].sum() > 0 for r in records)
    det_file = REAL / "test_coco_det_AP_H_56.json"
    dets = _load(ann, images, training=False, det_file=det_file)
    assert len(dets) == 118
    scores = [d["score"] for d in json.loads(det_file.read_text())]
    strong = _load(ann, images, training=False, det_file=det_file, det_score_thr=0.5)
    assert len(strong) == sum(s >= 0.5 for s in scores)
