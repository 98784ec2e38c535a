"""load_coco_images: record selection, joints, ignore regions, malformed input, real COCO samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from src.layouts import COCO17, MPII16
from src.readers.coco_images import decode_ignore_mask, load_coco_images
from src.readers.errors import AnnotationError, DatasetNotFoundError
from tests.data.tiny_coco_bottomup import (
    ALL_IDS,
    FILES,
    SIZES,
    TRAIN_IDS,
    annotation_dict,
    expected_ignore,
    expected_joints,
    make_bottomup_coco,
)

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real_samples" / "coco"


@pytest.fixture(scope="module")
def ann_file(tmp_path_factory) -> Path:
    return make_bottomup_coco(tmp_path_factory.mktemp("bottomup_coco"))


def _load(ann_file: Path, training: bool) -> list[dict]:
    return load_coco_images(ann_file, ann_file.parent.parent / "images", keypoint_info=COCO17, training=training)


def test_training_keeps_images_with_any_annotation(ann_file) -> None:
    records = _load(ann_file, training=True)
    assert [r["image_id"] for r in records] == list(TRAIN_IDS)  # image 4 (no annotation) dropped
    val = _load(ann_file, training=False)
    assert [r["image_id"] for r in val] == list(ALL_IDS)  # validation keeps every image


def test_record_fields(ann_file) -> None:
    images = ann_file.parent.parent / "images"
    for r in _load(ann_file, training=False):
        i = r["image_id"]
        assert r["image_file"] == str(images / FILES[i])
        assert (r["width"], r["height"]) == SIZES[i]
        assert r["joints"].dtype == np.float32 and r["joints"].shape[1:] == (17, 3)
        np.testing.assert_allclose(r["joints"], expected_joints(i), rtol=0, atol=1e-5)
        assert r["box_sizes"].shape == (len(r["joints"]),) and r["box_sizes"].dtype == np.float32
    by_id = {r["image_id"]: r for r in _load(ann_file, training=False)}
    assert len(by_id[1]["joints"]) == 2  # crowd 13 and keypoint-less 14 are not people
    assert len(by_id[2]["joints"]) == 1  # no num_keypoints field: counted from v
    assert len(by_id[5]["joints"]) == 0  # only a crowd region
    # box size = max(w, h) of the bbox
    ann = next(a for a in annotation_dict()["annotations"] if a["id"] == 21)
    assert by_id[2]["box_sizes"][0] == pytest.approx(max(ann["bbox"][2:]))


def test_ignore_regions_exact(ann_file) -> None:
    for r in _load(ann_file, training=False):
        i = r["image_id"]
        w, h = SIZES[i]
        mask = decode_ignore_mask(r["ignore_rle"], h, w)
        assert mask.shape == (h, w) and mask.dtype == np.uint8 and mask.flags.c_contiguous
        np.testing.assert_array_equal(mask, expected_ignore(i))
        assert (r["ignore_rle"] is None) == (i in (2, 4))
        if r["ignore_rle"] is not None:
            assert isinstance(r["ignore_rle"], bytes) and len(r["ignore_rle"]) < 200


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _mutate(fn) -> dict:
    data = copy.deepcopy(annotation_dict())
    fn(data)
    return data


def _ann(data: dict, ann_id: int) -> dict:
    return next(a for a in data["annotations"] if a["id"] == ann_id)


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda d: d.pop("annotations"), "missing top-level key 'annotations'"),
        (lambda d: _ann(d, 11).update(keypoints=[1.0] * 50), "annotation 11 has 'keypoints' with 50 values"),
        (lambda d: _ann(d, 11).update(keypoints=[None] * 51), "non-numeric"),
        (lambda d: _ann(d, 12).update(image_id=99), "image_id 99"),
        (lambda d: _ann(d, 12).update(bbox=[1, 2, 3]), "annotation 12 has 'bbox'"),
        (lambda d: _ann(d, 12).pop("keypoints"), "annotation 12 is missing the key 'keypoints'"),
        (lambda d: _ann(d, 13).update(segmentation="abc"), "annotation 13 has a 'segmentation' of type str"),
        (lambda d: _ann(d, 13)["segmentation"].update(size=[10, 10]), "annotation 13 has an RLE segmentation of size"),
        (lambda d: _ann(d, 13)["segmentation"]["counts"].append(5), "RLE counts summing to"),
        (lambda d: _ann(d, 14).update(segmentation=[[1, 2, 3, "x", 5, 6]]), "annotation 14 has a segmentation polygon"),
        (lambda d: _ann(d, 51)["segmentation"].update(counts="0000"), "annotation 51 has a compressed RLE"),
        (lambda d: _ann(d, 14).update(num_keypoints="many"), "invalid 'num_keypoints'"),
        (lambda d: d["annotations"].append(5), "annotation #8 is a int"),
        (lambda d: d["images"][0].pop("width"), "is missing the key 'width'"),
    ],
)
def test_malformed_input_names_the_file(tmp_path, mutation, message) -> None:
    path = _write(tmp_path, _mutate(mutation))
    with pytest.raises(AnnotationError, match=message) as err:
        load_coco_images(path, tmp_path, keypoint_info=COCO17, training=True)
    assert str(path) in str(err.value)


def test_invalid_json_missing_file_and_wrong_layout(tmp_path) -> None:
    path = _write(tmp_path, '{"images": [')
    with pytest.raises(AnnotationError, match="invalid JSON") as err:
        load_coco_images(path, tmp_path, keypoint_info=COCO17, training=False)
    assert str(path) in str(err.value)
    with pytest.raises(DatasetNotFoundError, match="annotation file not found"):
        load_coco_images(tmp_path / "nope.json", tmp_path, keypoint_info=COCO17, training=False)
    good = _write(tmp_path, annotation_dict())
    with pytest.raises(AnnotationError, match="17 keypoints but the keypoint layout 'mpii16' has 16"):
        load_coco_images(good, tmp_path, keypoint_info=MPII16, training=False)


def test_other_categories_and_missing_segmentation(tmp_path) -> None:
    def change(d: dict) -> None:
        d["categories"].append({"id": 2, "name": "car"})
        d["annotations"].append({"id": 90, "image_id": 4, "category_id": 2, "bbox": [0, 0, 5, 5], "iscrowd": 0})
        _ann(d, 14).pop("segmentation")  # keypoint-less person without a region: nothing to ignore

    records = load_coco_images(_write(tmp_path, _mutate(change)), tmp_path, keypoint_info=COCO17, training=True)
    assert [r["image_id"] for r in records] == list(TRAIN_IDS)  # the car does not make image 4 a training image
    w, h = SIZES[1]
    mask = decode_ignore_mask(records[0]["ignore_rle"], h, w)
    assert mask.sum() == 20 * 30  # only the crowd region is left


@pytest.mark.skipif(not (REAL / "test_coco.json").is_file(), reason="real COCO samples not available")
def test_real_coco_samples() -> None:
    records = load_coco_images(REAL / "test_coco.json", REAL, keypoint_info=COCO17, training=True)
    assert len(records) == 4
    data = json.loads((REAL / "test_coco.json").read_text())
    for r in records:
        anns = [a for a in data["annotations"] if a["image_id"] == r["image_id"]]
        people = [a for a in anns if a["num_keypoints"] > 0]
        assert len(r["joints"]) == len(people)
        assert int((r["joints"][..., 2] > 0).sum()) == sum(a["num_keypoints"] for a in people)
        ignored = [a for a in anns if a["iscrowd"] or a["num_keypoints"] == 0]
        assert (r["ignore_rle"] is not None) == bool(ignored)
        if ignored:
            mask = decode_ignore_mask(r["ignore_rle"], r["height"], r["width"])
            # the rasterised polygons cover roughly their annotated area
            area = sum(a["area"] for a in ignored)
            assert 0.7 * area < mask.sum() < 1.3 * area + 50
        assert Path(r["image_file"]).is_file()
