"""Bad input everywhere, as a table: each reader (COCO top-down and bottom-up, CrowdPose, MPII,
detection files, person-box files) fed truncated JSON, wrong types, missing keys, negative / NaN /
huge numbers and empty lists, and the image reader fed empty, cut-short, grayscale, RGBA, 16-bit,
CMYK and EXIF-rotated files. Every case either works correctly or stops with an error of this
project that names the file (and the entry); none ends in an exception from inside NumPy, OpenCV
or json, and none in a silently wrong result."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.inference.box_files import PersonBoxes
from src.layouts import COCO17, CROWDPOSE14, MPII16
from src.readers.coco_images import load_coco_images
from src.readers.coco_records import load_coco_records
from src.readers.errors import AnnotationError
from src.readers.images import ImageDecodeError, read_image
from src.readers.mpii import load_mpii_records

ERRORS = (AnnotationError, ValueError, FileNotFoundError)  # this project's errors (AnnotationError is a ValueError)


def _coco(k: int = 17) -> dict:
    kpts = []
    for i in range(k):
        kpts += [10.0 + i, 20.0 + i, 2]
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [5.0, 5.0, 40.0, 40.0],
                "area": 1600.0,
                "num_keypoints": k,
                "keypoints": kpts,
            }
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(k)], "skeleton": []}],
    }


def _set(path: str, value):
    """A mutation of the COCO dict: ``path`` like 'annotations.0.bbox' set to ``value`` (None deletes)."""

    def mutate(data: dict) -> dict:
        data = copy.deepcopy(data)
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[int(last) if isinstance(node, list) else last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
        return data

    return mutate


_DELETE = object()

# (case, mutation of the COCO dict or raw text, expected: "ok", "drop" (the person is left out) or
# a regular expression the error must match; the file name is always checked too)
COCO_CASES = [
    ("truncated JSON", '{"images": [', r"invalid JSON"),
    ("not an object", "[1, 2]", r"expected a JSON object"),
    ("images not a list", _set("images", {"id": 1}), r"'images' must be a list"),
    ("annotations missing", _set("annotations", _DELETE), r"missing top-level key 'annotations'"),
    ("image without id", _set("images.0.id", _DELETE), r"image #0 is missing the key 'id'"),
    ("annotation without bbox", _set("annotations.0.bbox", _DELETE), r"annotation.*bbox"),
    ("bbox of 3 numbers", _set("annotations.0.bbox", [1, 2, 3]), r"bbox"),
    ("bbox as text", _set("annotations.0.bbox", "5,5,40,40"), r"bbox"),
    ("NaN in keypoints", _set("annotations.0.keypoints.0", float("nan")), r"keypoints.*(NaN|finite)"),
    ("huge keypoint", _set("annotations.0.keypoints.0", 1e300), r"'keypoints' values beyond 1e\+07 px"),
    ("negative area", _set("annotations.0.area", -5.0), "drop"),
    # official sanitising: the box is cut to zero width, kept, and widened to the input's aspect
    ("negative box size", _set("annotations.0.bbox", [5, 5, -40, 40]), "ok"),
    ("13 joints for a 17-joint layout", lambda d: _coco(13), r"13|keypoints"),
    ("unknown image id", _set("annotations.0.image_id", 99), r"image_id 99"),
    ("no annotations", _set("annotations", []), "drop"),
    ("width as text", _set("images.0.width", "wide"), r"non-numeric"),
]


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "person_keypoints.json"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content(_coco())))
    (tmp_path / "images").mkdir(exist_ok=True)
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    return path


def _expect(load, path: Path, expected: str) -> None:
    if expected in ("ok", "drop"):
        try:
            records = load()
        except ERRORS as err:
            assert str(path) in str(err)
            return
        if expected == "drop":
            assert all(len(r.get("joints", [0])) == 0 for r in records) or len(records) == 0
        return
    with pytest.raises(ERRORS) as info:
        load()
    message = str(info.value)
    assert str(path) in message, message
    if not expected.endswith("|ok"):
        import re

        assert re.search(expected, message), message


@pytest.mark.parametrize(("case", "content", "expected"), COCO_CASES, ids=[c[0] for c in COCO_CASES])
def test_coco_top_down_reader(tmp_path, case, content, expected):
    path = _write(tmp_path, content)
    load = lambda: load_coco_records(  # noqa: E731
        path, tmp_path / "images", keypoint_info=COCO17, aspect_ratio=0.75, training=True
    )
    _expect(load, path, expected)


@pytest.mark.parametrize(("case", "content", "expected"), COCO_CASES, ids=[c[0] for c in COCO_CASES])
def test_coco_bottom_up_reader(tmp_path, case, content, expected):
    path = _write(tmp_path, content)
    load = lambda: load_coco_images(path, tmp_path / "images", keypoint_info=COCO17, training=True)  # noqa: E731
    if expected == "drop":  # whole images keep the image; its invalid person adds no joints
        expected = "ok"
    _expect(load, path, expected)


def test_crowdpose_files_without_area_are_read(tmp_path):
    data = _coco(14)
    del data["annotations"][0]["area"]
    path = tmp_path / "crowdpose_test.json"
    path.write_text(json.dumps(data))
    records = load_coco_records(
        path, tmp_path, keypoint_info=CROWDPOSE14, aspect_ratio=0.75, training=False, area_from_box=True
    )
    assert len(records) == 1
    with pytest.raises(AnnotationError, match=r"crowdpose_test.json.*area"):
        load_coco_records(path, tmp_path, keypoint_info=CROWDPOSE14, aspect_ratio=0.75, training=False)


DET_CASES = [
    ("truncated JSON", "[{", r"invalid JSON"),
    ("an object, not a list", '{"bbox": [1, 2, 3, 4]}', r"expected a list of detections"),
    ("empty list", "[]", r"no detections"),
    ("missing score", '[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]', r"score"),
    ("NaN bbox", '[{"image_id": 1, "category_id": 1, "bbox": [1, 2, NaN, 4], "score": 0.9}]', r"bbox"),
    ("unknown image", '[{"image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}]', r"image_id 5"),
]


@pytest.mark.parametrize(("case", "text", "expected"), DET_CASES, ids=[c[0] for c in DET_CASES])
def test_detection_files(tmp_path, case, text, expected):
    ann = _write(tmp_path, _set("images.0.id", 1))
    det = tmp_path / "detections.json"
    det.write_text(text)
    load = lambda: load_coco_records(  # noqa: E731
        ann, tmp_path / "images", keypoint_info=COCO17, aspect_ratio=0.75, training=False, det_file=det
    )
    _expect(load, det, expected)


MPII_CASES = [
    ("truncated JSON", '[{"image": ', r"invalid JSON"),
    ("an object", '{"image": "a.jpg"}', r"list"),
    ("missing joints", '[{"image": "a.jpg", "center": [10, 10], "scale": 1.0, "joints_vis": [1]}]', r"joints"),
    (
        "15 joints",
        json.dumps(
            [{"image": "a.jpg", "center": [10, 10], "scale": 1.0, "joints": [[1, 1]] * 15, "joints_vis": [1] * 15}]
        ),
        r"15|16",
    ),
    (
        "NaN scale",
        '[{"image": "a.jpg", "center": [10, 10], "scale": NaN, "joints": '
        + json.dumps([[1, 1]] * 16)
        + ', "joints_vis": '
        + json.dumps([1] * 16)
        + "}]",
        r"scale",
    ),
    ("empty list", "[]", "drop"),  # no records; the datamodule then refuses the empty split
]


@pytest.mark.parametrize(("case", "text", "expected"), MPII_CASES, ids=[c[0] for c in MPII_CASES])
def test_mpii_reader(tmp_path, case, text, expected):
    path = tmp_path / "train.json"
    path.write_text(text)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    load = lambda: load_mpii_records(path, tmp_path / "images", keypoint_info=MPII16, training=True)  # noqa: E731
    _expect(load, path, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[{", r"invalid JSON"),
        ('[{"file_name": "a.jpg", "bbox": [1, 2, 3, 1e999]}]', r"finite"),
        ('[{"file_name": "a.jpg", "bbox": "1 2 3 4"}]', r"4 finite numbers|needs bbox"),
    ],
)
def test_person_box_files(tmp_path, text, expected):
    path = tmp_path / "boxes.json"
    path.write_text(text)
    _expect(lambda: PersonBoxes(path), path, expected)


def _cmyk_jpeg(path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path, "JPEG")


def _exif_rotated(path: Path) -> None:
    jpeg = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 6) + b"\0" * 4
    payload = b"Exif\x00\x00" + tiff
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:])


IMAGE_CASES = [
    ("empty file", lambda p: p.write_bytes(b""), "error"),
    (
        "cut short",
        lambda p: p.write_bytes(cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1].tobytes()[:-50]),
        "error",
    ),
    ("text named .jpg", lambda p: p.write_text("hello"), "error"),
    ("grayscale", lambda p: cv2.imwrite(str(p), np.full((30, 40), 128, np.uint8)), (30, 40)),
    ("RGBA png", lambda p: cv2.imwrite(str(p), np.full((30, 40, 4), 128, np.uint8)), (30, 40)),
    ("16-bit png", lambda p: cv2.imwrite(str(p), np.full((30, 40, 3), 40000, np.uint16)), (30, 40)),
    ("CMYK jpeg", _cmyk_jpeg, (30, 40)),
    ("EXIF rotated (ignored, as the annotations assume)", _exif_rotated, (30, 40)),
]


@pytest.mark.parametrize(("case", "make", "expected"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_files(tmp_path, case, make, expected):
    path = tmp_path / ("image.png" if "png" in case else "image.jpg")
    make(path)
    if expected == "error":
        with pytest.raises(ImageDecodeError, match=str(path)):
            read_image(path, color_rgb=True)
        return
    image = read_image(path, color_rgb=True)
    assert image.dtype == np.uint8 and image.shape == (*expected, 3)
    if case == "16-bit png":
        assert int(image.max()) == 40000 >> 8  # scaled to 8 bits, not wrapped around
    if case == "CMYK jpeg":
        assert image[..., 0].mean() > 200 and image[..., 1].mean() < 60  # red: C=0, M=Y=255


def test_a_split_without_usable_people_is_refused_by_name(tmp_path):
    from hydra.utils import instantiate

    from src.utils.builders import build_datamodule
    from tests.helpers import compose_run

    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        data = _set("annotations", [])(_coco())
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))
    cfg = compose_run("train", ["model=hrnet", "data=coco", f"data.root={root}"], tmp_path / "run", tmp_path)
    codec = instantiate(cfg.model.codec)
    datamodule = build_datamodule(cfg.data, codec=codec, paradigm="topdown")
    with pytest.raises(ValueError, match=r"person_keypoints_train2017.json yields no TopDownDataset samples"):
        datamodule.setup("fit")
