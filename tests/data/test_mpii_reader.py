"""MPII reader: official box arithmetic, record format, validation errors, gt_valid.mat checks, reader protocol."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from src.layouts import MPII16
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.mpii import (
    MPIIReader,
    check_ground_truth_matches,
    check_mpii_layout,
    load_mpii_records,
    read_mpii_json,
)
from src.readers.mpii_ground_truth import (
    MPII_JOINT_NAMES,
    MPIIGroundTruth,
    read_mpii_ground_truth,
    write_mpii_ground_truth,
)
from src.synthetic.readers import SyntheticMPIIReader
from tests.helpers import REAL_MPII, layout_real_mpii

REAL = REAL_MPII
K = 16
HEAD_TOP, UPPER_NECK = 9, 8


# --------------------------------------------------------------------------- a tiny MPII root
def _entry(image: str, x0: float, y0: float, scale: float, missing: tuple[int, ...] = ()) -> dict:
    """One person: joints on a 4 x 4 grid at (x0, y0), head top 12 px above the upper neck."""
    joints = [[x0 + 10.0 * (j % 4), y0 + 10.0 * (j // 4) + 0.5] for j in range(K)]
    joints[UPPER_NECK] = [x0 + 15.0, y0 + 20.0]
    joints[HEAD_TOP] = [x0 + 15.0, y0 + 8.0]
    vis = [0 if j in missing else 1 for j in range(K)]
    for j in missing:
        joints[j] = [-1.0, -1.0]  # how the official files mark unannotated joints
    return {"image": image, "center": [x0 + 20.0, y0 + 30.0], "scale": scale, "joints": joints, "joints_vis": vis}


TRAIN = [_entry("a.jpg", 10, 10, 1.5), _entry("b.jpg", 200, 40, 0.8, missing=(0, 5)), _entry("a.jpg", 120, 20, 2)]
VALID = [
    _entry("a.jpg", 10, 10, 1.5),
    _entry("b.jpg", 200, 40, 0.8, missing=(0, 5, 10)),
    _entry("a.jpg", 120, 20, 2.0),
    _entry("c.jpg", 60, 150, 1.2),
]


def _head_box(joints: np.ndarray) -> np.ndarray:
    """(2, 2) square head box centred between head top and upper neck, side = their distance."""
    mid = 0.5 * (joints[HEAD_TOP] + joints[UPPER_NECK])
    half = 0.5 * np.linalg.norm(joints[HEAD_TOP] - joints[UPPER_NECK])
    return np.stack([mid - half, mid + half])


def _ground_truth(entries: list[dict]) -> MPIIGroundTruth:
    """The gt_valid.mat contents that belong to ``entries`` (same people, same order)."""
    joints = np.array([e["joints"] for e in entries], dtype=np.float64).reshape(-1, K, 2)
    missing = np.array([e["joints_vis"] for e in entries]).reshape(-1, K) == 0
    boxes = np.stack([_head_box(j) for j in joints]) if len(joints) else np.zeros((0, 2, 2))
    return MPIIGroundTruth(positions=joints, missing=missing, headboxes=boxes)


def make_tiny_mpii(root: Path, train: list[dict] = TRAIN, valid: list[dict] = VALID) -> Path:
    """ROOT/annot/{train,valid}.json, ROOT/annot/gt_valid.mat and ROOT/images/{a,b,c}.jpg."""
    (root / "annot").mkdir(parents=True)
    (root / "images").mkdir()
    for i, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        cv2.imwrite(str(root / "images" / name), np.full((24, 32, 3), 40 * i, dtype=np.uint8))
    (root / "annot" / "train.json").write_text(json.dumps(train))
    (root / "annot" / "valid.json").write_text(json.dumps(valid))
    write_mpii_ground_truth(root / "annot" / "gt_valid.mat", _ground_truth(valid))
    return root


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return make_tiny_mpii(tmp_path / "mpii")


def _load(ann: Path, images: Path, **kw: Any) -> list[dict]:
    kw.setdefault("training", True)
    return load_mpii_records(ann, images, keypoint_info=MPII16, **kw)


def _valid_records(root: Path) -> list[dict]:
    return _load(root / "annot" / "valid.json", root / "images")


# --------------------------------------------------------------------------- records
def test_records_box_arithmetic_and_format(tiny: Path) -> None:
    records = _load(tiny / "annot" / "valid.json", tiny / "images")
    assert len(records) == len(VALID)
    assert [r["sample_id"] for r in records] == [0, 1, 2, 3]  # JSON order = gt_valid.mat columns
    assert [r["image_id"] for r in records] == [0, 1, 0, 2]  # distinct names in order of first appearance
    assert records[1]["image_file"] == str(tiny / "images" / "b.jpg")
    assert all(os.path.isabs(r["image_file"]) for r in records)

    # entry 0: center (30, 40), s = 1.5 -> center (30 - 1, 40 + 15 * 1.5 - 1), scale 1.5 * 1.25
    r = records[0]
    np.testing.assert_allclose(r["center"], [29.0, 61.5])
    np.testing.assert_allclose(r["scale"], [1.875, 1.875])
    assert r["area"] == pytest.approx((1.875 * 200) ** 2)
    assert r["box_score"] == 1.0
    np.testing.assert_allclose(r["keypoints"], np.array(VALID[0]["joints"]) - 1.0)
    for r, e in zip(records, VALID):
        s = e["scale"] * 1.25
        np.testing.assert_allclose(r["center"], [e["center"][0] - 1, e["center"][1] + 15 * e["scale"] - 1], rtol=1e-6)
        np.testing.assert_allclose(r["scale"], [s, s], rtol=1e-6)
        np.testing.assert_array_equal(r["visible"], np.array(e["joints_vis"], dtype=np.float32))
        assert r["keypoints"].shape == (K, 2) and r["keypoints"].dtype == np.float32
        assert r["visible"].shape == (K,) and r["visible"].dtype == np.float32
        assert r["center"].shape == (2,) and r["center"].dtype == np.float32
        assert r["scale"].shape == (2,) and r["scale"].dtype == np.float32
        assert isinstance(r["sample_id"], int) and isinstance(r["image_id"], int)
    assert records[1]["visible"][[0, 5, 10]].sum() == 0
    # training and evaluation records are the same, as in the official reader
    val = _load(tiny / "annot" / "valid.json", tiny / "images", training=False)
    np.testing.assert_array_equal(val[2]["center"], records[2]["center"])


def test_no_box_marker_skips_the_adjustment(tmp_path: Path) -> None:
    entry = _entry("a.jpg", 10, 10, 2.0)
    entry["center"] = [-1, 55]
    no_scale = _entry("a.jpg", 10, 10, 0)
    no_scale["center"] = [-1, -1]
    root = make_tiny_mpii(tmp_path / "mpii", train=[entry, no_scale])
    first, second = _load(root / "annot" / "train.json", root / "images")
    np.testing.assert_allclose(first["center"], [-2.0, 54.0])  # only the -1 of the 1-based pixels
    np.testing.assert_allclose(first["scale"], [2.0, 2.0])  # not padded
    np.testing.assert_allclose(second["center"], [-2.0, -2.0])
    np.testing.assert_allclose(second["scale"], [0.0, 0.0])  # scale <= 0 is allowed with the marker


def test_read_mpii_json_entries(tiny: Path) -> None:
    entries = read_mpii_json(tiny / "annot" / "valid.json")
    assert [e["image"] for e in entries] == ["a.jpg", "b.jpg", "a.jpg", "c.jpg"]
    assert entries[0]["joints"].shape == (K, 2) and entries[0]["joints_vis"].shape == (K,)
    np.testing.assert_array_equal(entries[3]["joints"], VALID[3]["joints"])  # still 1-based
    assert entries[2]["scale"] == 2.0


# --------------------------------------------------------------------------- malformed files
def _set(index: int, key: str, value: Any) -> Callable[[list], None]:
    def edit(entries: list) -> None:
        entries[index][key] = value

    return edit


def _drop(index: int, key: str) -> Callable[[list], None]:
    def edit(entries: list) -> None:
        del entries[index][key]

    return edit


def _joint(index: int, joint: int, value: Any) -> Callable[[list], None]:
    def edit(entries: list) -> None:
        entries[index]["joints"][joint] = value

    return edit


MALFORMED = {
    "missing image": (_drop(1, "image"), "entry #1 is missing the key 'image'"),
    "missing center": (_drop(1, "center"), "entry #1 ('b.jpg') is missing the key 'center'"),
    "missing scale": (_drop(1, "scale"), "entry #1 ('b.jpg') is missing the key 'scale'"),
    "missing joints": (_drop(1, "joints"), "entry #1 ('b.jpg') is missing the key 'joints'"),
    "missing joints_vis": (_drop(1, "joints_vis"), "entry #1 ('b.jpg') is missing the key 'joints_vis'"),
    "15 joints": (lambda e: e[1]["joints"].pop(), "entry #1 ('b.jpg') has 15 joints in 'joints', expected 16"),
    "joint with 3 values": (
        _joint(1, 4, [1, 2, 3]),
        "entry #1 ('b.jpg') has 'joints'[4] = [1, 2, 3], expected 2 numbers",
    ),
    "joints_vis length": (lambda e: e[1]["joints_vis"].append(1), "entry #1 ('b.jpg') has 17 values in 'joints_vis'"),
    "nested joint": (_joint(1, 3, [[1, 2], [3, 4]]), "entry #1 ('b.jpg') has a non-numeric or non-finite value [1, 2]"),
    "joint not a list": (_joint(1, 0, 5.0), "entry #1 ('b.jpg') has 'joints'[0] = 5.0, expected 2 numbers"),
    "bool in joints_vis": (lambda e: e[1]["joints_vis"].__setitem__(3, True), "non-numeric or non-finite value True"),
    "joints_vis not 0/1": (lambda e: e[1]["joints_vis"].__setitem__(3, 2), "entry #1 ('b.jpg') has 'joints_vis'"),
    "string in joints": (_joint(1, 2, [3.0, "x"]), "entry #1 ('b.jpg') has a non-numeric or non-finite value 'x'"),
    "null in joints": (_joint(1, 2, [None, 1.0]), "entry #1 ('b.jpg') has a non-numeric or non-finite value None"),
    "string scale": (_set(1, "scale", "big"), "entry #1 ('b.jpg') has a non-numeric or non-finite value 'big'"),
    "list scale": (_set(1, "scale", [1.0]), "entry #1 ('b.jpg') has 'scale' [1.0], expected a number"),
    "bool center": (_set(1, "center", [True, False]), "entry #1 ('b.jpg') has a non-numeric"),
    "center with 3 values": (_set(1, "center", [1, 2, 3]), "entry #1 ('b.jpg') has 'center' [1, 2, 3]"),
    "nan joint": (_joint(1, 2, [float("nan"), 1.0]), "entry #1 ('b.jpg') has a non-numeric or non-finite value nan"),
    "inf scale": (_set(1, "scale", float("inf")), "entry #1 ('b.jpg') has a non-numeric or non-finite value inf"),
    "zero scale": (_set(1, "scale", 0), "entry #1 ('b.jpg') has 'scale' 0, expected > 0"),
    "negative scale": (_set(1, "scale", -2.5), "entry #1 ('b.jpg') has 'scale' -2.5, expected > 0"),
    "not an object": (lambda e: e.__setitem__(1, ["b.jpg"]), "entry #1 is a list, expected an object"),
    "image not a string": (_set(1, "image", 7), "entry #1 has 'image' 7"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_entries_name_file_and_entry(tiny: Path, case: str) -> None:
    edit, message = MALFORMED[case]
    entries = json.loads(json.dumps(TRAIN))
    edit(entries)
    ann = tiny / "annot" / "train.json"
    ann.write_text(json.dumps(entries))  # NaN and Infinity as Python's json writes them
    with pytest.raises(AnnotationError) as err:
        _load(ann, tiny / "images")
    assert str(ann) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"image": ', "invalid JSON"),
        ('{"image": "a.jpg"}', "expected a JSON list"),
        ("\x80[]", "not a UTF-8 JSON file"),
    ],
)
def test_malformed_files(tiny: Path, text: str, message: str) -> None:
    ann = tiny / "annot" / "train.json"
    ann.write_bytes(text.encode("latin-1"))
    with pytest.raises(AnnotationError, match=message) as err:
        read_mpii_json(ann)
    assert str(ann) in str(err.value)


def test_joint_count_follows_the_layout(tiny: Path) -> None:
    with pytest.raises(AnnotationError, match="expected 17"):
        read_mpii_json(tiny / "annot" / "train.json", num_keypoints=17)


def test_missing_json_and_missing_image(tiny: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope.json"):
        read_mpii_json(tiny / "annot" / "nope.json")
    (tiny / "images" / "c.jpg").unlink()
    ann = tiny / "annot" / "valid.json"
    with pytest.raises(DatasetNotFoundError) as err:
        _load(ann, tiny / "images")
    assert "'c.jpg'" in str(err.value) and "entry #3" in str(err.value) and str(ann) in str(err.value)
    assert len(_load(ann, tiny / "images", check_images=False)) == 4  # the check can be turned off
    with pytest.raises(DatasetNotFoundError, match="image folder"):
        _load(ann, tiny / "elsewhere")


def test_empty_file_gives_no_records(tiny: Path) -> None:
    (tiny / "annot" / "train.json").write_text("[]")
    assert _load(tiny / "annot" / "train.json", tiny / "images") == []


# --------------------------------------------------------------------------- ground truth
def test_ground_truth_matches_records_and_entries(tiny: Path) -> None:
    gt = _ground_truth(VALID)
    records = _load(tiny / "annot" / "valid.json", tiny / "images")
    check_ground_truth_matches(records, gt, "valid.json", "gt_valid.mat")
    check_ground_truth_matches(read_mpii_json(tiny / "annot" / "valid.json"), gt, "valid.json", "gt_valid.mat")


def test_ground_truth_count_mismatch(tiny: Path) -> None:
    records = _load(tiny / "annot" / "valid.json", tiny / "images")
    with pytest.raises(AnnotationError) as err:
        check_ground_truth_matches(records, _ground_truth(VALID[:3]), "/d/valid.json", "/d/gt_valid.mat")
    text = str(err.value)
    assert "/d/valid.json" in text and "/d/gt_valid.mat" in text and "3 people" in text and "has 4" in text


def test_ground_truth_order_mismatch(tiny: Path) -> None:
    swapped = [VALID[0], VALID[2], VALID[1], VALID[3]]
    records = _load(tiny / "annot" / "valid.json", tiny / "images")
    with pytest.raises(AnnotationError) as err:
        check_ground_truth_matches(records, _ground_truth(swapped), "/d/valid.json", "/d/gt_valid.mat")
    text = str(err.value)
    assert "/d/valid.json" in text and "/d/gt_valid.mat" in text and "2 of 4 entries differ" in text
    assert "#1 ('b.jpg'" in text and "#2 ('a.jpg'" in text and "#0" not in text


def test_ground_truth_without_common_joints_is_not_checked(tiny: Path) -> None:
    gt = _ground_truth([VALID[0], VALID[2], VALID[1], VALID[3]])
    missing = gt.missing.copy()
    missing[[1, 2]] = True  # the swapped people have no annotated joint in the .mat file
    gt = MPIIGroundTruth(positions=gt.positions, missing=missing, headboxes=gt.headboxes)
    check_ground_truth_matches(_load(tiny / "annot" / "valid.json", tiny / "images"), gt, "v.json", "gt.mat")


def test_small_offsets_pass_the_head_size_test(tiny: Path) -> None:
    gt = _ground_truth(VALID)
    # head size = 0.6 * sqrt(2) * 12 px ~ 10.2 px: a 6 px shift passes, a 12 px shift does not
    shifted = MPIIGroundTruth(positions=gt.positions + 6.0 / np.sqrt(2), missing=gt.missing, headboxes=gt.headboxes)
    check_ground_truth_matches(_valid_records(tiny), shifted, "v.json", "gt.mat")
    far = MPIIGroundTruth(positions=gt.positions + 12.0, missing=gt.missing, headboxes=gt.headboxes)
    with pytest.raises(AnnotationError, match="4 of 4 entries differ"):
        check_ground_truth_matches(_valid_records(tiny), far, "v.json", "gt.mat")


# --------------------------------------------------------------------------- layout message
def test_layout_message(tmp_path: Path) -> None:
    root = tmp_path / "mpii"
    with pytest.raises(DatasetNotFoundError) as err:
        check_mpii_layout(
            root, root / "annot" / "valid.json", root / "images", split="val", gt_file=root / "annot" / "gt_valid.mat"
        )
    text = str(err.value)
    for needle in (
        f"dataset root {root}",
        f"{root / 'annot' / 'valid.json'}",
        f"{root / 'annot' / 'gt_valid.mat'}",
        f"image folder {root / 'images'}",
        "ROOT/annot/train.json",
        "ROOT/annot/valid.json",
        "ROOT/annot/gt_valid.mat",
        "ROOT/images/",
        "mpii_human_pose_v1.tar.gz",
        "HRNet",
        "data.root=",
        "data.reader.train_ann=",
        "data.reader.val_ann=",
        "data.reader.gt_file=",
        "data.reader.images=",
    ):
        assert needle in text, needle
    # only what is missing is listed
    make_tiny_mpii(root)
    (root / "annot" / "gt_valid.mat").unlink()
    check_mpii_layout(root, root / "annot" / "train.json", root / "images", split="train")
    with pytest.raises(DatasetNotFoundError) as err:
        check_mpii_layout(
            root, root / "annot" / "valid.json", root / "images", split="val", gt_file=root / "annot" / "gt_valid.mat"
        )
    assert f"Missing: ground-truth file {root / 'annot' / 'gt_valid.mat'}." in str(err.value)


# --------------------------------------------------------------------------- reader protocol
def test_reader_protocol(tiny: Path) -> None:
    reader = MPIIReader(root=tiny)
    assert reader.name == "mpii"
    reader.prepare()
    reader.check("train")
    reader.check("val")
    train = reader.load_records("train", keypoint_info=MPII16, aspect_ratio=0.75, training=True)
    val = reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)
    assert len(train) == 3 and len(val) == 4
    np.testing.assert_allclose(train[0]["scale"], [1.875, 1.875])  # isotropic whatever the aspect ratio
    assert reader.metric_inputs() == {"gt_file": tiny / "annot" / "gt_valid.mat"}
    for bad in ("test", "valid"):
        with pytest.raises(ValueError, match="unknown split"):
            reader.check(bad)
        with pytest.raises(ValueError, match="unknown split"):
            reader.load_records(bad, keypoint_info=MPII16, aspect_ratio=1.0, training=False)


def test_reader_paths(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny.parent)
    reader = MPIIReader(root="mpii", images=str(tiny / "images"), gt_file="annot/gt_valid.mat")
    assert reader.metric_inputs()["gt_file"].is_absolute()
    assert reader.metric_inputs()["gt_file"] == tiny / "annot" / "gt_valid.mat"
    assert reader.image_dir == tiny / "images"
    monkeypatch.setenv("HOME", str(tmp_path))
    home_reader = MPIIReader(root="~/mpii", val_ann="~/mpii/annot/valid.json")
    assert home_reader.root == tiny and home_reader.val_ann == tiny / "annot" / "valid.json"
    assert len(home_reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)) == 4


def test_reader_missing_data_and_ground_truth_mismatch(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        MPIIReader(root=tmp_path / "none").prepare()
    text = str(err.value)
    for name in ("train.json", "valid.json", "gt_valid.mat", "images/"):
        assert f"{tmp_path / 'none'}" in text and name in text
    assert text.count(f"dataset root {tmp_path / 'none'}") == 1  # one listing, not one per split
    with pytest.raises(DatasetNotFoundError, match="MPII val data not found"):
        MPIIReader(root=tmp_path / "none").load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)

    write_mpii_ground_truth(tiny / "annot" / "gt_valid.mat", _ground_truth([VALID[1], VALID[0], *VALID[2:]]))
    reader = MPIIReader(root=tiny)
    reader.load_records("train", keypoint_info=MPII16, aspect_ratio=1.0, training=True)  # train needs no .mat
    with pytest.raises(AnnotationError, match="do not describe the same people"):
        reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)


def test_prepare_checks_only_the_given_splits(tmp_path: Path, tiny: Path) -> None:
    """An evaluation prepares ("val",): valid.json, gt_valid.mat and the images, no train.json."""
    (tiny / "annot" / "train.json").unlink()
    reader = MPIIReader(root=tiny)
    reader.prepare(splits=("val",))
    assert len(reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)) == 4
    with pytest.raises(
        DatasetNotFoundError, match=r"MPII train/val data not found. Missing: annotation file .*train\.json"
    ):
        reader.prepare()
    (tiny / "annot" / "gt_valid.mat").unlink()
    reader.prepare(splits=[])  # nothing asked, nothing checked
    with pytest.raises(DatasetNotFoundError, match=r"MPII val data not found. Missing: ground-truth file .*gt_valid"):
        reader.prepare(splits=("val",))


def test_synthetic_reader_generates_on_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, dict]] = []

    def ensure_synthetic_mpii(root: str | Path, **params: Any) -> Path:
        calls.append((Path(root), params))
        if not Path(root).exists():
            make_tiny_mpii(Path(root))
        return Path(root)

    fake = types.ModuleType("src.synthetic.mpii_writer")
    fake.ensure_synthetic_mpii = ensure_synthetic_mpii  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "src.synthetic.mpii_writer", fake)

    root = tmp_path / "synthetic_mpii"
    reader = SyntheticMPIIReader(root=root, synthetic={"seed": 3, "num_train": 5})
    assert reader.name == "synthetic_mpii" and isinstance(reader, MPIIReader)
    with pytest.raises(DatasetNotFoundError):
        reader.check("train")  # nothing generated before prepare
    reader.prepare()
    reader.prepare()
    assert calls == [(root, {"seed": 3, "num_train": 5})] * 2
    assert len(reader.load_records("val", keypoint_info=MPII16, aspect_ratio=0.75, training=False)) == 4

    # a generator that writes an incomplete tree is caught by the layout check
    broken = SyntheticMPIIReader(root=tmp_path / "broken", images="pictures")
    monkeypatch.setattr(fake, "ensure_synthetic_mpii", lambda root, **kw: make_tiny_mpii(Path(root)))
    with pytest.raises(DatasetNotFoundError, match="pictures"):
        broken.prepare()


def test_ground_truth_joint_names_in_any_spelling_read_as_gt_valid_names(tmp_path: Path) -> None:
    """The MPII tools spell the thorax "thrx", the Stacked Hourglass code "Thrx" and capitalises the
    rest: all read as the names of the HRNet gt_valid.mat, the positions untouched."""
    truth = _ground_truth(VALID)
    tools = tuple("thrx" if n == "thor" else n for n in MPII_JOINT_NAMES)
    hourglass = tuple(n.capitalize() if n != "thor" else "Thrx" for n in MPII_JOINT_NAMES)
    for i, names in enumerate((tools, hourglass)):
        path = write_mpii_ground_truth(
            tmp_path / f"{i}.mat", MPIIGroundTruth(truth.positions, truth.missing, truth.headboxes, joint_names=names)
        )
        read = read_mpii_ground_truth(path)
        assert read.joint_names == MPII_JOINT_NAMES
        np.testing.assert_array_equal(read.positions, truth.positions)


# --------------------------------------------------------------------------- real samples
@pytest.mark.skipif(not REAL.is_dir(), reason="real MPII samples (../shared/data/real_samples/mpii) not present")
def test_real_samples(tmp_path: Path) -> None:
    """The real samples laid out as an MPII root (symlinks; nothing is copied)."""
    root = layout_real_mpii(tmp_path / "mpii")  # head boxes built as _ground_truth builds them
    entries = json.loads((REAL / "test_mpii.json").read_text())

    reader = MPIIReader(root=root)
    reader.prepare()
    train = reader.load_records("train", keypoint_info=MPII16, aspect_ratio=1.0, training=True)
    val = reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)
    assert len(train) == len(val) == len(entries) > 0
    for r, e in zip(val, entries):
        assert Path(r["image_file"]).name == e["image"] and Path(r["image_file"]).exists()
        s = e["scale"] * 1.25
        np.testing.assert_allclose(r["center"], [e["center"][0] - 1, e["center"][1] + 15 * e["scale"] - 1], rtol=1e-6)
        np.testing.assert_allclose(r["scale"], [s, s], rtol=1e-6)
        np.testing.assert_allclose(r["keypoints"], np.array(e["joints"]) - 1, rtol=1e-6)
        np.testing.assert_array_equal(r["visible"], e["joints_vis"])
        # the padded box holds the annotated joints
        inside = np.abs(r["keypoints"] - r["center"]) <= 100 * r["scale"]
        assert inside[r["visible"] > 0].all()
    # swapping two people of the .mat file is caught
    write_mpii_ground_truth(root / "annot" / "gt_valid.mat", _ground_truth([entries[1], entries[0], *entries[2:]]))
    with pytest.raises(AnnotationError, match=r"#0 \('005808361.jpg'"):
        reader.load_records("val", keypoint_info=MPII16, aspect_ratio=1.0, training=False)
