"""MuCo-3DHP and MuPoTS-3D readers (3DMPPE layouts), the MuPoTS-3D ground truth and bbox_root files:
person selection, joint mapping, records, RootNet boxes, and the message of every bad input."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hydra.utils import instantiate

from src.camera import k_value
from src.geometry import process_bbox
from src.layouts import H36M17, MUCO21, MUPOTS17, KeypointInfo
from src.readers.bbox_root import read_bbox_root_entries
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.h36m import read_bbox_root
from src.readers.muco import MuCoReader, select_people
from src.readers.mupots import MuPoTSReader
from src.readers.mupots_ground_truth import read_mupots_ground_truth
from tests.helpers import compose_run

WIDTH, HEIGHT = 1280, 960
F, C = (1000.0, 1000.0), (640.0, 480.0)

#: A standing person in the 21 MuCo-3DHP joints (mm, camera axes, y down), pelvis at the origin.
BASE = np.array(
    [
        [0, -720, 0],  # head top
        [0, -480, 0],  # thorax
        [-170, -470, 0],  # right shoulder
        [-190, -220, 0],
        [-200, 20, 0],
        [170, -470, 0],  # left shoulder
        [190, -220, 0],
        [200, 20, 0],
        [-120, 0, 0],  # right hip
        [-120, 450, 20],
        [-120, 880, 0],
        [120, 0, 0],  # left hip
        [120, 450, 20],
        [120, 880, 0],
        [0, 0, 0],  # pelvis
        [0, -240, 0],  # spine
        [0, -600, -20],  # head (centre)
        [-205, 90, 0],  # right hand
        [205, 90, 0],
        [-120, 900, -120],  # right toe
        [120, 900, -120],
    ],
    dtype=np.float64,
)


def person(root: tuple[float, float, float], joints: int = 21, **extra: Any) -> dict:
    """One annotation: the base pose at ``root`` (mm), projected with F, C; box = joints +- 10 px."""
    cam = BASE[:joints] + np.asarray(root, dtype=np.float64)
    uv = np.asarray(F) * cam[:, :2] / cam[:, 2:] + np.asarray(C)
    lo, hi = uv.min(axis=0) - 10, uv.max(axis=0) + 10
    return {
        "keypoints_cam": cam.tolist(),
        "keypoints_img": uv.tolist(),
        "keypoints_vis": [True] * joints,
        "bbox": [*lo.tolist(), *(hi - lo).tolist()],
        **extra,
    }


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), 90, dtype=np.uint8))


# --------------------------------------------------------------------------- a tiny MuCo-3DHP root
#: image id -> people (root positions in mm). Image 1: the pair (0, 1) is 300 mm apart in X-Y but
#: 1044 mm in 3D; 1 is the closest person. Image 2: two far apart, the second closest. Image 3: all
#: beyond 7500 mm. Image 4: one person whose box is empty (w = 0).
MUCO_PEOPLE = {
    1: [(0, 0, 5000), (300, 0, 4000), (2500, 0, 6000), (-2500, 0, 4500)],
    2: [(1000, 0, 3500), (-1000, 0, 3000)],
    3: [(0, 0, 8000), (3000, 0, 9000)],
    4: [(0, 0, 4000)],
}


def muco_content() -> dict:
    images, annotations = [], []
    for image_id, roots in MUCO_PEOPLE.items():
        images.append(
            {
                "id": image_id,
                "file_name": f"augmented_set/train_{image_id:06d}.jpg",
                "width": WIDTH,
                "height": HEIGHT,
                "f": list(F),
                "c": list(C),
            }
        )
        for root in roots:
            annotations.append(person(root, id=len(annotations) + 1, image_id=image_id))
    annotations[-1]["bbox"][2] = 0.0  # image 4: an empty box
    annotations[2]["keypoints_vis"][4] = False  # image 1, third person: right wrist not visible
    return {"images": images, "annotations": annotations}


def write_muco(root: Path, content: dict | None = None, name: str = "MuCo-3DHP.json") -> Path:
    content = muco_content() if content is None else content
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / name).write_text(json.dumps(content))
    for img in content["images"]:
        if isinstance(img, dict) and isinstance(img.get("file_name"), str):
            _jpeg(root / "data" / img["file_name"])
    return root


def load(reader: Any, split: str, info: KeypointInfo, aspect: float = 1.0) -> list[dict]:
    return reader.load_records(split, keypoint_info=info, aspect_ratio=aspect, training=split == "train")


RECORD_KEYS = {
    "sample_id",
    "image_id",
    "image_file",
    "bbox",
    "joints_img",
    "joints_cam",
    "visible",
    "root_depth",
    "f",
    "c",
    "have_depth",
    "action",
    "sequence",
    "score",
}


@pytest.fixture(scope="module")
def muco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared read-only root; tests that change files build their own."""
    return write_muco(tmp_path_factory.mktemp("muco"))


def test_person_selection_rules() -> None:
    rows = np.array([0, 0, 0, 1, 1, 1, 2])
    roots = np.array(
        [
            [0, 0, 5000],
            [300, 0, 4000],  # closest of image 0, 300 mm from the first in X-Y: kept, the first not
            [2500, 0, 6000],
            [0, 0, 3000],  # image 1: two people at the same depth, the first is the closest
            [0, 0, 3000],
            [3000, 0, 3100],
            [0, 0, 1],
        ],
        dtype=np.float64,
    )
    kept, closest = select_people(rows, roots)
    assert kept.tolist() == [False, True, True, True, False, True, True]
    assert closest.tolist() == [False, True, False, True, False, False, True]
    # images interleaved in the input: the same answer per person
    order = np.array([6, 3, 0, 4, 1, 5, 2])
    kept2, closest2 = select_people(rows[order], roots[order])
    assert kept2.tolist() == kept[order].tolist() and closest2.tolist() == closest[order].tolist()
    # 500 mm apart in X-Y (583 mm in 3D) keeps both; 499.9 mm apart (in depth only) drops both
    roots = np.array([[0, 0, 2000], [2000, 0, 3000], [2500, 0, 3300], [-2000, 0, 4000], [-2000, 0, 4499.9]])
    assert select_people(np.zeros(5, int), roots)[0].tolist() == [True, True, True, False, False]
    empty = select_people(np.zeros(0, int), np.zeros((0, 3)))
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def _select_by_pairs(rows: np.ndarray, roots: np.ndarray) -> list[bool]:
    """The selection rules written out person by person: the reference for `select_people`."""
    kept = []
    for i in range(len(rows)):
        mine = [j for j in range(len(rows)) if rows[j] == rows[i]]
        closest = min(mine, key=lambda j: (roots[j, 2], j))
        near = any(
            np.linalg.norm(roots[i, :2] - roots[j, :2]) < 500 or np.linalg.norm(roots[i] - roots[j]) < 500
            for j in mine
            if j != i
        )
        kept.append(i == closest or not near)
    return kept


def test_person_selection_matches_the_rules_written_out() -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 40, size=160)
    roots = np.stack([rng.uniform(-1500, 1500, 160), rng.uniform(-300, 300, 160), rng.uniform(2000, 4000, 160)], 1)
    roots[5, 2] = roots[6, 2]  # equal depths somewhere
    assert select_people(rows, roots)[0].tolist() == _select_by_pairs(rows, roots)


def test_muco_records_follow_the_official_selection(muco: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="src.readers.muco"):
        records = load(MuCoReader(root=muco), "train", MUCO21, aspect=0.75)
    roots = [r["joints_cam"][14].tolist() for r in records]
    # image 1: the closest first, then the others in file order (the 5000 mm one is near the closest)
    # image 2: the closest (3000) first; image 3: no depth range; image 4: the empty box left out
    assert [r["image_id"] for r in records] == [1, 1, 1, 2, 2, 3, 3]
    assert roots == [
        [300, 0, 4000],
        [2500, 0, 6000],
        [-2500, 0, 4500],
        [-1000, 0, 3000],
        [1000, 0, 3500],
        [0, 0, 8000],
        [3000, 0, 9000],
    ]
    assert "kept 7 of the 9 people of 4 images" in caplog.text
    assert "1 with another root within 500 mm" in caplog.text and "1 with an empty box" in caplog.text

    r = records[0]
    assert set(r) == RECORD_KEYS
    assert [rec["sample_id"] for rec in records] == list(range(7))
    for key, shape in (("bbox", (4,)), ("joints_img", (21, 3)), ("joints_cam", (21, 3)), ("visible", (21,))):
        assert r[key].shape == shape and r[key].dtype == np.float32, key
    assert r["f"].tolist() == list(F) and r["c"].tolist() == list(C) and r["f"].dtype == np.float32
    assert r["image_file"] == str(muco / "data" / "augmented_set" / "train_000001.jpg")
    assert r["root_depth"] == 4000.0 and r["have_depth"] == 1.0 and r["score"] == 1.0
    assert r["sequence"] == 0 and r["action"] == 0
    ann = muco_content()["annotations"][1]
    np.testing.assert_allclose(r["joints_cam"], ann["keypoints_cam"], rtol=1e-6)
    np.testing.assert_allclose(r["joints_img"][:, :2], ann["keypoints_img"], rtol=1e-6)
    np.testing.assert_allclose(r["joints_img"][:, 2], r["joints_cam"][:, 2])  # absolute Z
    expected_box, _ = process_bbox(np.array([ann["bbox"]]), WIDTH, HEIGHT, 0.75)
    np.testing.assert_allclose(r["bbox"], expected_box[0], rtol=1e-6)
    assert r["bbox"][2] / r["bbox"][3] == pytest.approx(0.75)
    assert all(np.all(rec["visible"] == 1) for rec in records)  # visibility "all" (PoseNet)


def test_muco_depth_range_drops_the_closest_too(muco: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="src.readers.muco"):
        records = load(MuCoReader(root=muco, root_depth_range=[1500, 7500]), "train", MUCO21)
    assert [r["image_id"] for r in records] == [1, 1, 1, 2, 2]  # image 3 (8000, 9000 mm) is gone
    assert "2 with the root depth outside [1500, 7500] mm" in caplog.text
    inclusive = load(MuCoReader(root=muco, root_depth_range=[3000, 8000]), "train", MUCO21)
    assert sorted(r["root_depth"] for r in inclusive) == [3000, 3500, 4000, 4500, 6000, 8000]
    with pytest.raises(ValueError, match="root_depth_range"):
        MuCoReader(root=muco, root_depth_range=[7500, 1500])


def test_muco_visibility_from_the_file(muco: Path) -> None:
    records = load(MuCoReader(root=muco, visibility="file"), "train", MUCO21)
    assert records[1]["visible"][4] == 0 and records[1]["visible"].sum() == 20  # the 2500 mm person's wrist
    assert all(np.all(r["visible"] == 1) for i, r in enumerate(records) if i != 1)
    with pytest.raises(ValueError, match="visibility"):
        MuCoReader(root=muco, visibility="some")


def test_layouts_are_mapped_by_name(muco: Path) -> None:
    full = load(MuCoReader(root=muco), "train", MUCO21)
    first17 = load(MuCoReader(root=muco), "train", MUPOTS17)
    assert len(first17) == len(full)
    for a, b in zip(first17, full):
        assert a["joints_cam"].shape == (17, 3) and a["visible"].shape == (17,)
        np.testing.assert_array_equal(a["joints_cam"], b["joints_cam"][:17])
        np.testing.assert_array_equal(a["joints_img"], b["joints_img"][:17])
        assert a["root_depth"] == b["root_depth"]
    with pytest.raises(ValueError, match="'neck'") as err:  # Human3.6M names joints MuCo-3DHP lacks
        load(MuCoReader(root=muco), "train", H36M17)
    assert "MuCo-3DHP" in str(err.value) and "h36m17" in str(err.value)


def test_muco_has_no_validation_split_unless_a_file_is_named(tmp_path: Path, muco: Path) -> None:
    reader = MuCoReader(root=muco)
    assert reader.splits == ("train",)
    for call in (lambda: reader.check("val"), lambda: load(reader, "val", MUCO21), lambda: reader.prepare(["val"])):
        with pytest.raises(ValueError, match="no validation split") as err:
            call()
        assert "data=mupots" in str(err.value) and "val_file" in str(err.value)
    reader.prepare()  # the splits it has
    root = write_muco(tmp_path)
    content = muco_content()
    content["images"], content["annotations"] = content["images"][1:2], content["annotations"][4:6]
    write_muco(root, content, name="MuCo-3DHP_val.json")
    with_val = MuCoReader(root=root, val_file="data/MuCo-3DHP_val.json")
    with_val.prepare(["train", "val"])
    assert [r["root_depth"] for r in load(with_val, "val", MUCO21)] == [3000.0, 3500.0]
    assert with_val.metric_inputs() == {"actions": ["MuCo-3DHP"]}
    with pytest.raises(ValueError, match="unknown split"):
        reader.check("test")


class FakeExtra:
    """A 2D reader stand-in that records how it is called (``layout``: its keypoint_layout, or none)."""

    name = "fake2d"

    def __init__(self, layout: str | None = "coco17", missing: bool = False) -> None:
        if layout is not None:
            self.keypoint_layout = layout
        self.missing = missing
        self.calls: list[Any] = []

    def prepare(self, splits: tuple[str, ...] = ("train", "val")) -> None:
        self.calls.append(("prepare", tuple(splits)))
        if self.missing:
            raise DatasetNotFoundError("fake 2D data not found: /nowhere/coco/train.json")

    def load_records(self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool) -> list:
        self.calls.append((split, keypoint_info.name, aspect_ratio, training))
        return [{"sample_id": 0}]


def test_muco_mixes_in_2d_records(muco: Path) -> None:
    extra = FakeExtra()
    assert MuCoReader(root=muco, extra_2d=extra).extra_records("train", aspect_ratio=1.0) == (
        [{"sample_id": 0}],
        "coco17",
    )
    assert extra.calls == [("train", "coco17", 1.0, True)]
    unnamed = FakeExtra(layout=None)
    with pytest.raises(ValueError, match="extra_2d_layout"):
        MuCoReader(root=muco, extra_2d=unnamed).extra_records("train", aspect_ratio=1.0)
    named = MuCoReader(root=muco, extra_2d=unnamed, extra_2d_layout="coco17")
    assert named.extra_records("train", aspect_ratio=0.75)[1] == "coco17"
    assert MuCoReader(root=muco, extra_2d=extra, mix_2d=False).extra_records("train", aspect_ratio=1.0) == ([], None)
    MuCoReader(root=muco, extra_2d=extra).prepare()
    assert extra.calls[-1] == ("prepare", ("train",))
    with pytest.raises(DatasetNotFoundError, match="/nowhere/coco") as err:
        MuCoReader(root=muco, extra_2d=FakeExtra(missing=True)).prepare()
    assert "mix_2d=false" in str(err.value)


# --------------------------------------------------------------------------- a tiny MuPoTS-3D root
#: (image id, file name, people as (root, is_valid)); the invalid person of image 10 holds a NaN
#: (invalid annotations are not read); image 20 has no valid person.
MUPOTS_IMAGES = [
    (10, "TS1/img_000000.jpg", [((-800, 0, 4000), 1), ((0, 0, 6000), 0), ((800, 0, 5000), 1)]),
    (11, "TS1/img_000001.jpg", [((-700, 0, 4100), 1)]),
    (20, "TS2/img_000000.jpg", [((0, 0, 3000), 0)]),
    (21, "TS2/img_000001.jpg", [((100, 50, 3500), True)]),
]


def mupots_content() -> dict:
    images, annotations = [], []
    for image_id, name, people in MUPOTS_IMAGES:
        images.append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT, "intrinsic": [*F, *C]})
        for root, valid in people:
            annotations.append(person(root, joints=17, id=len(annotations), image_id=image_id, is_valid=valid))
    annotations[1]["keypoints_cam"][0][0] = math.nan
    annotations[2]["keypoints_vis"][16] = False
    return {"images": images, "annotations": annotations}


def write_mupots(root: Path, content: dict | None = None) -> Path:
    content = mupots_content() if content is None else content
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "MuPoTS-3D.json").write_text(json.dumps(content))
    for img in content["images"]:
        _jpeg(root / "data" / "MultiPersonTestSet" / img["file_name"])
    return root


@pytest.fixture(scope="module")
def mupots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mupots(tmp_path_factory.mktemp("mupots"))


def test_ground_truth_view(mupots: Path) -> None:
    gt = read_mupots_ground_truth(mupots / "data" / "MuPoTS-3D.json")
    assert gt.image_ids() == [10, 11, 20, 21] and len(gt) == 4 and gt.num_invalid == 2 and gt.num_people == 4
    first = gt.image(10)
    assert (first.sequence, first.frame, first.file_name, first.name) == (1, 0, "TS1/img_000000.jpg", "TS1_img_000000")
    assert first.f.tolist() == list(F) and first.c.tolist() == list(C)
    assert first.joints_cam.shape == (2, 17, 3) and first.joints_img.shape == (2, 17, 2)
    assert first.visible.shape == (2, 17) and first.visible.dtype == bool
    assert first.joints_cam[:, 14].tolist() == [[-800, 0, 4000], [800, 0, 5000]]  # the invalid one is left out
    assert first.annotation_index.tolist() == [0, 2] and first.visible[1, 16] == False  # noqa: E712
    assert (gt.image(21).sequence, gt.image(21).frame) == (2, 1)
    assert gt.image(20).num_people == 0 and gt.image(20).joints_cam.shape == (0, 17, 3)
    assert 20 in gt and 99 not in gt
    with pytest.raises(KeyError, match="MuPoTS-3D.json has no image with id 99"):
        gt.image(99)


def test_mupots_records_from_the_ground_truth(mupots: Path) -> None:
    reader = MuPoTSReader(root=mupots)
    records = load(reader, "val", MUPOTS17, aspect=1.0)
    assert [r["image_id"] for r in records] == [10, 10, 11, 21]  # one per valid annotation
    assert [r["sequence"] for r in records] == [1, 1, 1, 2]
    assert [r["root_depth"] for r in records] == [4000.0, 5000.0, 4100.0, 3500.0]
    r = records[1]
    assert set(r) == RECORD_KEYS and r["action"] == -1 and r["score"] == 1.0 and r["have_depth"] == 1.0
    assert r["image_file"] == str(mupots / "data" / "MultiPersonTestSet" / "TS1" / "img_000000.jpg")
    ann = mupots_content()["annotations"][2]
    np.testing.assert_allclose(r["joints_cam"], ann["keypoints_cam"], rtol=1e-6)
    expected_box, _ = process_bbox(np.array([ann["bbox"]]), WIDTH, HEIGHT, 1.0)
    np.testing.assert_allclose(r["bbox"], expected_box[0], rtol=1e-6)
    assert np.all(r["visible"] == 1)
    assert load(MuPoTSReader(root=mupots, visibility="file"), "val", MUPOTS17)[1]["visible"][16] == 0
    assert reader.metric_inputs()["gt_file"] == mupots / "data" / "MuPoTS-3D.json"
    roots = reader.metric_inputs()["ground_truth_roots"]
    assert sorted(roots) == [10, 11, 20, 21] and roots[10].tolist() == [[-800, 0, 4000], [800, 0, 5000]]
    assert roots[20].shape == (0, 3)


def test_mupots_joint_mapping_and_the_training_split(mupots: Path) -> None:
    reader = MuPoTSReader(root=mupots)
    # a 21-joint MuCo model reads the 17 joints of MuPoTS-3D; hands and toes are zeros, not visible
    wide, narrow = load(reader, "val", MUCO21), load(reader, "val", MUPOTS17)
    assert len(wide) == len(narrow) > 0
    for w, n in zip(wide, narrow):
        assert np.array_equal(w["joints_cam"][:17], n["joints_cam"]) and not w["joints_cam"][17:].any()
        assert np.array_equal(w["visible"][:17], n["visible"]) and not w["visible"][17:].any()
    for call in (lambda: reader.check("train"), lambda: load(reader, "train", MUPOTS17)):
        with pytest.raises(ValueError, match="no training split") as err:
            call()
        assert "data=muco" in str(err.value)
    with pytest.raises(ValueError, match="no training split"):
        reader.prepare(["train", "val"])
    reader.prepare()  # "val" only
    assert reader.extra_records("val", aspect_ratio=1.0) == ([], None)


def _entries(mupots: Path, entries: list[dict]) -> Path:
    path = mupots / "bbox_root" / "bbox_root_mupots_output.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


ENTRIES = [
    {"image_id": 10, "bbox": [100.0, 50.0, 400.0, 400.0], "root_cam": [-800.0, 0.0, 4100.0], "score": 0.9},
    {"image_id": 10, "bbox": [600.0, 60.0, 300.0, 300.0], "root_cam": [800.0, 0.0, 5200.0]},
    {"image_id": 11, "bbox": [120.0, 40.0, 380.0, 380.0], "root_cam": [-700.0, 0.0, 4000.0], "score": 0.5},
    {"image_id": 20, "bbox": [500.0, 10.0, 500.0, 500.0], "root_cam": [0.0, 0.0, 3000.0], "score": 0.2},
]


def test_mupots_records_from_a_bbox_root_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_mupots(tmp_path)
    entries = [*ENTRIES, {"image_id": 21, "bbox": [1.0, 2.0, 30.0, 40.0], "root_cam": [0.0, 0.0, 3500.0]}]
    _entries(root, entries)
    with pytest.raises(ValueError, match="bbox_root_file"):
        MuPoTSReader(root=root, use_gt_info=False)
    reader = MuPoTSReader(root=root, use_gt_info=False, bbox_root_file="bbox_root/bbox_root_mupots_output.json")
    records = load(reader, "val", MUPOTS17, aspect=0.75)
    assert [r["image_id"] for r in records] == [10, 10, 11, 20, 21]  # one per entry, in file order
    for r, entry in zip(records, entries):
        np.testing.assert_array_equal(r["bbox"], np.float32(entry["bbox"]))  # as given: already processed
        assert r["root_depth"] == entry["root_cam"][2] and r["score"] == pytest.approx(entry.get("score", 1.0))
        assert not r["joints_cam"].any() and not r["joints_img"].any() and not r["visible"].any()
        assert set(r) == RECORD_KEYS
    assert [r["sequence"] for r in records] == [1, 1, 1, 2, 2]

    # an annotated image without an entry: named, or the ground-truth boxes with k-value depths
    _entries(root, ENTRIES)
    with pytest.raises(AnnotationError) as err:
        load(reader, "val", MUPOTS17)
    for part in (
        "bbox_root_mupots_output.json",
        "no entry for 1 of the 3 annotated images",
        "image id 21",
        "TS2/img_000001.jpg",
    ):
        assert part in str(err.value), part
    fallback = MuPoTSReader(
        root=root,
        use_gt_info=False,
        bbox_root_file="bbox_root/bbox_root_mupots_output.json",
        bbox_root_missing="kvalue",
    )
    with caplog.at_level(logging.WARNING, logger="src.readers.mupots"):
        records = load(fallback, "val", MUPOTS17, aspect=0.75)
    assert "1 of 3 annotated images have no entry" in caplog.text and "their 1 ground-truth boxes" in caplog.text
    assert [r["image_id"] for r in records] == [10, 10, 11, 20, 21]
    last, ann = records[-1], mupots_content()["annotations"][-1]
    box, _ = process_bbox(np.array([ann["bbox"]]), WIDTH, HEIGHT, 0.75)
    np.testing.assert_allclose(last["bbox"], box[0], rtol=1e-6)
    assert last["root_depth"] == pytest.approx(float(k_value(box[0], np.array(F), (2000, 2000))), rel=1e-6)
    assert last["root_depth"] != 3500.0 and last["score"] == 1.0
    np.testing.assert_allclose(last["joints_cam"], ann["keypoints_cam"], rtol=1e-6)  # a ground-truth person
    with pytest.raises(ValueError, match="bbox_root_missing"):
        MuPoTSReader(root=root, use_gt_info=False, bbox_root_file="x.json", bbox_root_missing="skip")


def test_bbox_root_entry_for_an_unknown_image(tmp_path: Path) -> None:
    root = write_mupots(tmp_path)
    path = _entries(root, [*ENTRIES, {"image_id": 99, "bbox": [1.0, 2.0, 30.0, 40.0], "root_cam": [0, 0, 3000.0]}])
    reader = MuPoTSReader(root=root, use_gt_info=False, bbox_root_file=str(path), bbox_root_missing="kvalue")
    with pytest.raises(AnnotationError) as err:
        load(reader, "val", MUPOTS17)
    for part in (str(path), "entry #4", "image id 99", "MuPoTS-3D.json"):
        assert part in str(err.value), part
    _entries(root, [{**ENTRIES[0], "bbox": [1500.0, 10.0, 100.0, 100.0]}])
    with pytest.raises(AnnotationError, match=r"entry #0 \(image id 10, 'TS1/img_000000.jpg'\).*entirely outside"):
        load(reader, "val", MUPOTS17)


def test_read_bbox_root_entries(tmp_path: Path) -> None:
    path = tmp_path / "bbox_root.json"
    path.write_text(json.dumps([{**ENTRIES[0], "ann_id": 7}, ENTRIES[1]]))
    first, second = read_bbox_root_entries(path)
    assert (first.image_id, first.score, first.ann_id) == (10, 0.9, 7)
    assert first.bbox.dtype == np.float64 and first.bbox.tolist() == [100.0, 50.0, 400.0, 400.0]
    assert first.root_cam.tolist() == [-800.0, 0.0, 4100.0]
    assert (second.score, second.ann_id) == (1.0, None)
    # the Human3.6M reader's view of the same file: {image_id: (box, root depth)}, the last entry wins
    assert {k: (v[0].tolist(), v[1]) for k, v in read_bbox_root(path).items()} == {
        10: ([600.0, 60.0, 300.0, 300.0], 5200.0)
    }


BAD_ENTRIES = {
    "no image id": ({"bbox": [1, 2, 3, 4], "root_cam": [0, 0, 1]}, "entry #1 has no integer 'image_id'"),
    "bool image id": ({"image_id": True, "bbox": [1, 2, 3, 4], "root_cam": [0, 0, 1]}, "entry #1 has no integer"),
    "zero width": ({"image_id": 3, "bbox": [1, 2, 0, 4], "root_cam": [0, 0, 1]}, "entry #1 (image id 3) has 'bbox'"),
    "short bbox": ({"image_id": 3, "bbox": [1, 2, 3], "root_cam": [0, 0, 1]}, "'bbox' [1, 2, 3]"),
    "short root": ({"image_id": 3, "bbox": [1, 2, 3, 4], "root_cam": [0, 1]}, "entry #1 (image id 3) has 'root_cam'"),
    "root behind": ({"image_id": 3, "bbox": [1, 2, 3, 4], "root_cam": [0, 0, -5]}, "Z > 0"),
    "NaN root": ({"image_id": 3, "bbox": [1, 2, 3, 4], "root_cam": [0, math.nan, 5]}, "'root_cam'"),
    "text score": ({"image_id": 3, "bbox": [1, 2, 3, 4], "root_cam": [0, 0, 5], "score": "high"}, "'score' 'high'"),
    "float ann id": ({"image_id": 3, "bbox": [1, 2, 3, 4], "root_cam": [0, 0, 5], "ann_id": 1.5}, "'ann_id' 1.5"),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_bad_bbox_root_entries_are_named(tmp_path: Path, case: str) -> None:
    entry, expected = BAD_ENTRIES[case]
    path = tmp_path / "bbox_root.json"
    path.write_text(json.dumps([ENTRIES[0], entry]))
    with pytest.raises(AnnotationError) as err:
        read_bbox_root_entries(path)
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


def test_bbox_root_file_structure(tmp_path: Path) -> None:
    path = tmp_path / "bbox_root.json"
    path.write_text(json.dumps({"image_id": 1}))
    with pytest.raises(AnnotationError, match="expected a list"):
        read_bbox_root_entries(path)
    path.write_text("[{")
    with pytest.raises(AnnotationError, match="invalid JSON"):
        read_bbox_root_entries(path)
    with pytest.raises(DatasetNotFoundError, match="MuPoTS-3D bbox_root file not found"):
        read_bbox_root_entries(tmp_path / "none.json", what="MuPoTS-3D bbox_root file")


# --------------------------------------------------------------------------- bad inputs
def _set(path: tuple, value: Any) -> Callable[[dict], None]:
    """A change of the file content: the item at ``path`` (keys and indices) set to ``value``."""

    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _drop(path: tuple) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def _joints(index: int, count: int, key: str = "keypoints_cam") -> Callable[[dict], None]:
    def change(data: dict) -> None:
        ann = data["annotations"][index]
        ann[key] = (ann[key] * 2)[:count]

    return change


MUCO_BAD = {
    "missing f": (_drop(("images", 1, "f")), ["image #1 (id 2", "'f' None", "[fx, fy]"]),
    "missing c": (_drop(("images", 0, "c")), ["image #0 (id 1", "'c' None", "[cx, cy]"]),
    "zero focal": (_set(("images", 0, "f"), [0, 1000]), ["image #0", "fx, fy > 0"]),
    "20 joints": (_joints(4, 20), ["annotation #4 (image id 2", "20 joints in 'keypoints_cam'", "21 x"]),
    "17 joints": (_joints(0, 17), ["annotation #0", "17 joints", "expected 21"]),
    "short 2D": (_joints(2, 19, "keypoints_img"), ["annotation #2", "19 joints in 'keypoints_img'"]),
    "NaN camera": (
        _set(("annotations", 3, "keypoints_cam", 5, 1), math.nan),
        ["annotation #3", "NaN", "keypoints_cam"],
    ),
    "text joint": (_set(("annotations", 3, "keypoints_cam", 5, 1), "x"), ["annotation #3", "non-numeric"]),
    "joint of 2": (_set(("annotations", 3, "keypoints_cam", 5), [1, 2]), ["annotation #3", "joint 5 = [1, 2]"]),
    "behind": (_set(("annotations", 6, "keypoints_cam", 14, 2), -20.0), ["annotation #6", "joint 14", "Z > 0"]),
    "outside right": (_set(("annotations", 5, "bbox"), [1300, 10, 50, 50]), ["annotation #5", "entirely outside"]),
    "outside left": (
        _set(("annotations", 0, "bbox"), [-500, 10, 100, 50]),
        ["annotation #0 (image id 1", "1280 x 960"],
    ),
    "negative box": (_set(("annotations", 0, "bbox"), [10, 10, -5, 50]), ["annotation #0", "w, h >= 0"]),
    "unknown image": (_set(("annotations", 2, "image_id"), 77), ["annotation #2 has image id 77"]),
    "repeated image id": (_set(("images", 2, "id"), 1), ["image id 1 is used twice"]),
    "no width": (_drop(("images", 0, "width")), ["image #0", "'width' None"]),
    "not a list": (_set(("annotations",), {}), ["expected a list under 'annotations'"]),
    "bad vis": (_set(("annotations", 1, "keypoints_vis"), [1] * 5), ["annotation #1", "5 joints in 'keypoints_vis'"]),
}


@pytest.mark.parametrize("case", list(MUCO_BAD))
def test_bad_muco_content_names_file_and_entry(tmp_path: Path, case: str) -> None:
    change, expected = MUCO_BAD[case]
    content = muco_content()
    change(content)
    root = write_muco(tmp_path, content)
    with pytest.raises(AnnotationError) as err:
        load(MuCoReader(root=root, visibility="file"), "train", MUCO21)
    message = str(err.value)
    assert str(root / "data" / "MuCo-3DHP.json") in message, message
    for part in expected:
        assert part in message, (part, message)


MUPOTS_BAD = {
    "missing intrinsic": (_drop(("images", 2, "intrinsic")), ["image #2 (id 20", "'intrinsic' None"]),
    "short intrinsic": (_set(("images", 0, "intrinsic"), [1000, 1000, 640]), ["image #0", "[fx, fy, cx, cy]"]),
    "21 joints": (_joints(3, 21), ["annotation #3 (image id 11", "21 joints", "expected 17"]),
    "NaN camera": (_set(("annotations", 0, "keypoints_cam", 2, 2), math.nan), ["annotation #0", "NaN"]),
    "file name": (_set(("images", 1, "file_name"), "TS1/frame_1.jpg"), ["image #1 (id 11)", "TS<k>/img_<frame>.jpg"]),
    "is_valid": (_set(("annotations", 0, "is_valid"), 2), ["annotation #0", "'is_valid' 2", "0 or 1"]),
    "no is_valid": (_drop(("annotations", 3, "is_valid")), ["annotation #3", "'is_valid' None"]),
    "outside": (_set(("annotations", 5, "bbox"), [10, 1000, 50, 50]), ["annotation #5 (image id 21", "outside"]),
}


@pytest.mark.parametrize("case", list(MUPOTS_BAD))
def test_bad_mupots_content_names_file_and_entry(tmp_path: Path, case: str) -> None:
    change, expected = MUPOTS_BAD[case]
    content = mupots_content()
    change(content)
    root = write_mupots(tmp_path, content)
    for call in (
        lambda: read_mupots_ground_truth(root / "data" / "MuPoTS-3D.json"),
        lambda: load(MuPoTSReader(root=root), "val", MUPOTS17),
    ):
        with pytest.raises(AnnotationError) as err:
            call()
        message = str(err.value)
        assert str(root / "data" / "MuPoTS-3D.json") in message, message
        for part in expected:
            assert part in message, (part, message)


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    root = write_muco(tmp_path / "muco")
    path = root / "data" / "MuCo-3DHP.json"
    path.write_text(path.read_text()[:-2])
    with pytest.raises(AnnotationError, match="invalid JSON") as err:
        load(MuCoReader(root=root), "train", MUCO21)
    assert str(path) in str(err.value)
    root = write_mupots(tmp_path / "mupots")
    (root / "data" / "MuPoTS-3D.json").write_text("[]")
    with pytest.raises(AnnotationError, match="expected an object"):
        load(MuPoTSReader(root=root), "val", MUPOTS17)


# --------------------------------------------------------------------------- missing data
def test_missing_muco_gives_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        MuCoReader(root=tmp_path / "none").prepare()
    message = str(err.value)
    for part in (
        "MuCo-3DHP train data not found",
        f"train annotation file {tmp_path / 'none' / 'data' / 'MuCo-3DHP.json'}",
        f"image folder {tmp_path / 'none' / 'data'}/",
        "ROOT/data/MuCo-3DHP.json",
        "ROOT/data/augmented_set/*.jpg",
        "3DMPPE_POSENET_RELEASE",
        "augmented.zip",
        "data.root=",
    ):
        assert part in message, part
    root = write_muco(tmp_path / "muco")
    (root / "data" / "augmented_set" / "train_000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        load(MuCoReader(root=root), "train", MUCO21)
    assert "train_000002.jpg not found" in str(err.value) and "image id 2" in str(err.value)
    assert len(load(MuCoReader(root=root, check_images=False), "train", MUCO21)) == 7


def test_missing_mupots_gives_the_layout(tmp_path: Path) -> None:
    reader = MuPoTSReader(root=tmp_path / "none", use_gt_info=False, bbox_root_file="bbox_root/boxes.json")
    with pytest.raises(DatasetNotFoundError) as err:
        reader.prepare()
    message = str(err.value)
    for part in (
        "MuPoTS-3D data not found",
        f"annotation file {tmp_path / 'none' / 'data' / 'MuPoTS-3D.json'}",
        f"bbox_root file {tmp_path / 'none' / 'bbox_root' / 'boxes.json'}",
        "ROOT/data/MultiPersonTestSet/TS1..TS20/img_XXXXXX.jpg",
        "gvv.mpi-inf.mpg.de",
        "3DMPPE_POSENET_RELEASE",
        "data.root=",
    ):
        assert part in message, part
    root = write_mupots(tmp_path / "mupots")
    (root / "data" / "MultiPersonTestSet" / "TS2" / "img_000001.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"TS2/img_000001\.jpg not found \(image id 21"):
        load(MuPoTSReader(root=root), "val", MUPOTS17)


# --------------------------------------------------------------------------- configs and the dataset
def test_data_configs_build_the_readers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_muco(data / "muco")
    write_mupots(data / "mupots")
    cfg = compose_run("train", ["model=posenet", "data=muco"], tmp_path / "run", data)
    assert cfg.data.layout == "muco21" and cfg.data.paradigms == ["pose3d"]
    assert cfg.data.metric.eval_layout == "mupots17"
    muco = instantiate(cfg.data.reader)
    assert isinstance(muco, MuCoReader) and muco.root == data / "muco" and muco.files["val"] is None
    assert muco.extra_2d_layout == "coco17" and muco.root_depth_range is None and muco.visibility == "all"
    assert len(load(muco, "train", MUCO21)) == 7
    cfg = compose_run("eval", ["model=posenet", "data=mupots"], tmp_path / "run", data)
    assert cfg.data.layout == "muco21" and cfg.data.metric._target_ == "src.metrics.mupots_metric.MuPoTSMetric"
    mupots = instantiate(cfg.data.reader)
    assert isinstance(mupots, MuPoTSReader) and mupots.use_gt_info and mupots.bbox_root_missing == "error"
    assert len(load(mupots, "val", MUPOTS17)) == 4


def test_the_3d_dataset_reads_the_records(muco: Path) -> None:
    from src.codecs.integral_3d import Integral3D
    from src.datasets.pose3d import Pose3DDataset

    codec = Integral3D(input_size=(64, 64), output_size=(16, 16), depth_dim=16, bbox_3d_depth=2000.0)
    records = load(MuCoReader(root=muco), "train", MUCO21)
    dataset = Pose3DDataset(copy.deepcopy(records), codec=codec, keypoint_info=MUCO21, training=True)
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64) and item["joints_cam"].shape == (21, 3)
    assert float(item["root_depth"]) == records[0]["root_depth"]
