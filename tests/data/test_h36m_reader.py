"""Human3.6M reader (3DMPPE layout): frame steps, camera math, thorax, crop boxes, errors, reader protocol."""

from __future__ import annotations

import json
import logging
import math
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hydra.utils import instantiate

from src.geometry import process_bbox
from src.layouts import H36M17, MPII16, ROOT_JOINT, KeypointInfo
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.h36m import Human36MReader
from src.readers.h36m_naming import ACTIONS, image_file_name, subject_files
from src.readers.mpii import MPIIReader
from src.synthetic.readers import SyntheticHuman36MReader
from tests.helpers import TINY_POSENET, compose_run

# --------------------------------------------------------------------------- a tiny Human3.6M root
SUBJECTS = (1, 5, 9)
SEQUENCES = ((2, 1), (2, 2), (3, 1))  # (action_idx, subaction_idx)
CAMERAS = (1, 2)
FRAMES = tuple(range(5))
WIDTH, HEIGHT = 1000, 1002
NAMES = H36M17.keypoint_names

#: A standing person (mm, y down), pelvis at the origin.
BASE = np.array(
    [
        [0, 0, 0],  # pelvis
        [-120, 0, 0],  # right hip
        [-120, 450, 20],
        [-120, 880, 0],
        [120, 0, 0],  # left hip
        [120, 450, 20],
        [120, 880, 0],
        [0, -250, 0],  # torso
        [0, -500, 0],  # neck
        [0, -600, -80],  # nose
        [0, -700, 0],  # head
        [170, -480, 10],  # left shoulder
        [190, -220, 0],
        [200, 20, 0],
        [-170, -480, -30],  # right shoulder
        [-190, -220, 0],
        [-200, 20, 0],
    ],
    dtype=np.float64,
)


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    about_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    about_x = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return about_x @ about_y


def camera(subject: int, cam: int) -> dict[str, np.ndarray]:
    """A camera 4.5-4.7 m from the person, turned by a subject- and camera-dependent angle."""
    return {
        "R": _rotation(0.3 * cam + 0.05 * subject, 0.1 * cam),
        "t": np.array([100.0 * cam, -50.0 * subject, 4500.0 + 100 * cam]),
        "f": np.array([1145.0 + cam, 1143.0 - cam]),
        "c": np.array([500.0 + cam, 505.0 - cam]),
    }


def world_joints(subject: int, action: int, subaction: int, frame: int) -> np.ndarray:
    """(17, 3) world joints of one frame: the base pose, moved a little per sequence and frame."""
    return BASE + np.array([10.0 * frame + 5 * subaction, 20.0 * action, 30.0 * subject]) + 3.0 * frame * BASE / 1000


def _project(world: np.ndarray, cam: dict) -> np.ndarray:
    """(17, 2) pixels, written out here as the reference."""
    x = world @ cam["R"].T + cam["t"]
    return cam["f"] * x[:, :2] / x[:, 2:] + cam["c"]


def make_tiny_h36m(root: Path, subjects: tuple[int, ...] = SUBJECTS) -> Path:
    """ROOT/annotations/Human36M_subject{S}_{data,camera,joint_3d}.json and 8 x 8 JPEGs under ROOT/images."""
    (root / "annotations").mkdir(parents=True)
    pixel = np.full((8, 8, 3), 90, dtype=np.uint8)
    for subject in subjects:
        images, annotations, joints = [], [], {}
        cams = {str(c): {k: v.tolist() for k, v in camera(subject, c).items()} for c in CAMERAS}
        for action, subaction in SEQUENCES:
            for frame in FRAMES:
                world = world_joints(subject, action, subaction, frame)
                joints.setdefault(str(action), {}).setdefault(str(subaction), {})[str(frame)] = world.tolist()
                for cam in CAMERAS:
                    image_id = subject * 1000 + len(images)
                    name = image_file_name(subject, action, subaction, cam, frame)
                    (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / "images" / name), pixel)
                    uv = _project(world, camera(subject, cam))
                    lo, hi = uv.min(axis=0) - 20, uv.max(axis=0) + 20
                    images.append(
                        {
                            "id": image_id,
                            "file_name": name,
                            "width": WIDTH,
                            "height": HEIGHT,
                            "subject": subject,
                            "action_name": ACTIONS[action - 2],
                            "action_idx": action,
                            "subaction_idx": subaction,
                            "cam_idx": cam,
                            "frame_idx": frame,
                        }
                    )
                    annotations.append(
                        {
                            "id": image_id,
                            "image_id": image_id,
                            "keypoints_vis": [True] * 17,
                            "bbox": [*lo.tolist(), *(hi - lo).tolist()],
                        }
                    )
        files = subject_files(root / "annotations", subject)
        files["data"].write_text(json.dumps({"images": images, "annotations": annotations}))
        files["camera"].write_text(json.dumps(cams))
        files["joint"].write_text(json.dumps(joints))
    return root


def edit(root: Path, subject: int, kind: str, change: Callable[[Any], Any]) -> None:
    """Rewrite one annotation file after ``change(content)`` has edited the content in place."""
    path = subject_files(root / "annotations", subject)[kind]
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def reader(root: Path, **kwargs: Any) -> Human36MReader:
    options = {"train_subjects": (1, 5), "val_subjects": (9,), "train_frame_step": 2, "val_frame_step": 4}
    return Human36MReader(root=root, **{**options, **kwargs})


def load(r: Human36MReader, split: str = "train", info: KeypointInfo = H36M17, aspect: float = 1.0) -> list[dict]:
    return r.load_records(split, keypoint_info=info, aspect_ratio=aspect, training=split == "train")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared read-only root; tests that change files build their own."""
    return make_tiny_h36m(tmp_path_factory.mktemp("h36m"))


# --------------------------------------------------------------------------- records
def test_frame_steps_order_and_record_format(tiny: Path) -> None:
    train = load(reader(tiny, train_subjects=(5, 1)))
    per_subject = len(SEQUENCES) * len(CAMERAS) * 3  # frames 0, 2, 4
    assert len(train) == 2 * per_subject
    assert [r["sample_id"] for r in train] == list(range(len(train)))
    assert [r["subject"] for r in train] == [5] * per_subject + [1] * per_subject  # the order asked for
    assert {r["frame"] for r in train} == {0, 2, 4}
    assert [r["image_id"] for r in train[:per_subject]] == sorted(r["image_id"] for r in train[:per_subject])

    val = load(reader(tiny), "val")
    assert len(val) == len(SEQUENCES) * len(CAMERAS) * 2 and {r["frame"] for r in val} == {0, 4}
    assert {r["subject"] for r in val} == {9}

    r = train[0]
    assert set(r) == {
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
        "subject",
        "action",
        "subaction",
        "camera",
        "frame",
        "have_depth",
    }
    for key, shape in (("bbox", (4,)), ("joints_img", (17, 3)), ("joints_cam", (17, 3)), ("visible", (17,))):
        assert r[key].shape == shape and r[key].dtype == np.float32
    assert r["f"].dtype == np.float32 and r["c"].shape == (2,)
    assert np.all(r["visible"] == 1) and r["have_depth"] == 1.0
    name = image_file_name(5, r["action"] + 2, r["subaction"], r["camera"], r["frame"])
    assert r["image_file"] == str(tiny / "images" / name) and Path(r["image_file"]).is_file()


def test_joints_cam_and_img_follow_the_cameras(tiny: Path) -> None:
    records = load(reader(tiny)) + load(reader(tiny), "val")
    for r in records:
        cam = camera(r["subject"], r["camera"])
        world = world_joints(r["subject"], r["action"] + 2, r["subaction"], r["frame"])
        expected = world @ cam["R"].T + cam["t"]
        np.testing.assert_allclose(r["joints_cam"], expected, rtol=0, atol=1e-2)
        x, y, z = expected.T
        np.testing.assert_allclose(r["joints_img"][:, 0], cam["f"][0] * x / z + cam["c"][0], atol=1e-3)
        np.testing.assert_allclose(r["joints_img"][:, 1], cam["f"][1] * y / z + cam["c"][1], atol=1e-3)
        np.testing.assert_allclose(r["joints_img"][:, 2], z, atol=1e-2)
        np.testing.assert_allclose(r["f"], cam["f"]) and np.testing.assert_allclose(r["c"], cam["c"])
        assert r["root_depth"] == pytest.approx(expected[NAMES.index(ROOT_JOINT), 2], abs=1e-2)
        assert 4000 < r["root_depth"] < 5000


def test_action_index_and_names(tiny: Path) -> None:
    records = load(reader(tiny))
    assert {(r["action"], ACTIONS[r["action"]]) for r in records} == {(0, "Directions"), (1, "Discussion")}
    assert {(r["action"], r["subaction"]) for r in records} == {(a - 2, s) for a, s in SEQUENCES}
    assert reader(tiny).metric_inputs() == {"actions": list(ACTIONS)}
    assert len(ACTIONS) == 15 and ACTIONS[14] == "WalkTogether"


def test_thorax_is_the_projected_mean_of_the_shoulders(tiny: Path) -> None:
    names18 = (*NAMES, "thorax")
    h36m18 = KeypointInfo("h36m18", names18, (), (), (), (), None, (1.0,) * 18)
    r18 = load(reader(tiny), info=h36m18)[3]
    r17 = load(reader(tiny))[3]
    np.testing.assert_array_equal(r18["joints_cam"][:17], r17["joints_cam"])
    np.testing.assert_array_equal(r18["joints_img"][:17], r17["joints_img"])
    ls, rs = NAMES.index("left_shoulder"), NAMES.index("right_shoulder")
    thorax = (r17["joints_cam"][ls].astype(np.float64) + r17["joints_cam"][rs]) / 2
    np.testing.assert_allclose(r18["joints_cam"][17], thorax, atol=1e-3)
    x, y, z = thorax
    f, c = r18["f"].astype(np.float64), r18["c"].astype(np.float64)
    np.testing.assert_allclose(r18["joints_img"][17], [f[0] * x / z + c[0], f[1] * y / z + c[1], z], atol=1e-3)
    # the projection of the mean, not the mean of the projections (the shoulders differ in depth)
    assert not np.allclose(r18["joints_img"][17, :2], (r17["joints_img"][ls, :2] + r17["joints_img"][rs, :2]) / 2)
    assert r18["visible"].shape == (18,)


def test_layouts_are_mapped_by_name(tiny: Path) -> None:
    names = tuple(reversed(NAMES))
    reversed_info = KeypointInfo("reversed", names, (), (), (), (), None, (1.0,) * 17)
    r, ref = load(reader(tiny), info=reversed_info)[0], load(reader(tiny))[0]
    np.testing.assert_array_equal(r["joints_cam"], ref["joints_cam"][::-1])
    with pytest.raises(ValueError, match="upper_neck"):
        load(reader(tiny), info=MPII16)


def test_process_bbox_hand_computed() -> None:
    boxes = [[-10, 20, 100, 300], [950, 900, 100, 200], [1200, 10, 50, 50], [10, 10, 0, 40], [100, 200, 400, 100]]
    out, keep = process_bbox(np.array(boxes), 1000, 1000, 1.0)
    np.testing.assert_array_equal(keep, [True, True, False, False, True])
    # clipped (0, 20, 99, 299): centre (49.5, 169.5), side 299 * 1.25 = 373.75
    np.testing.assert_allclose(out[0], [49.5 - 186.875, 169.5 - 186.875, 373.75, 373.75])
    # clipped (950, 900, 49, 99): centre (974.5, 949.5), side 99 * 1.25 = 123.75
    np.testing.assert_allclose(out[1], [974.5 - 61.875, 949.5 - 61.875, 123.75, 123.75])
    # clipped (100, 200, 399, 99): wide, h becomes 399; both * 1.25 = 498.75 around (299.5, 249.5)
    np.testing.assert_allclose(out[4], [299.5 - 249.375, 249.5 - 249.375, 498.75, 498.75])
    assert np.isnan(out[2]).all() and np.isnan(out[3]).all()
    # aspect 0.75 (192 x 256 inputs): the narrow box widens to 0.75 * 299 = 224.25
    out, _ = process_bbox(np.array(boxes[:1]), 1000, 1000, 0.75)
    np.testing.assert_allclose(out[0], [49.5 - 140.15625, 169.5 - 186.875, 280.3125, 373.75])


def test_records_get_processed_boxes_and_empty_ones_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1,))

    def boxes(data: dict) -> None:
        data["annotations"][0]["bbox"] = [-10, 20, 100, 300]  # frame 0 of the first sequence, camera 1
        data["annotations"][1]["bbox"] = [1200, 10, 50, 50]  # outside the image: skipped

    edit(root, 1, "data", boxes)
    with caplog.at_level(logging.WARNING, logger="src.readers.h36m"):
        records = load(reader(root, train_subjects=(1,)), aspect=0.75)
    assert len(records) == len(SEQUENCES) * len(CAMERAS) * 3 - 1
    assert [r["sample_id"] for r in records] == list(range(len(records)))
    assert records[0]["image_id"] == 1000 and records[1]["image_id"] == 1000 + 2 * len(CAMERAS)
    np.testing.assert_allclose(records[0]["bbox"], [49.5 - 140.15625, 169.5 - 186.875, 280.3125, 373.75], atol=1e-4)
    warnings = [m for m in caplog.messages if "skipped" in m]
    assert len(warnings) == 1 and "1 of" in warnings[0]


def test_only_the_requested_subjects_files_are_read(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path)
    for kind in ("data", "camera", "joint"):
        subject_files(root / "annotations", 5)[kind].write_text("{ corrupt")
        subject_files(root / "annotations", 9)[kind].unlink()
    records = load(reader(root, train_subjects=(1,)))
    assert {r["subject"] for r in records} == {1} and len(records) == 18
    with pytest.raises(AnnotationError, match="Human36M_subject5_data.json"):
        load(reader(root))
    with pytest.raises(DatasetNotFoundError, match="subject 9") as err:
        load(reader(root), "val")
    assert "Human36M_subject9_camera.json" in str(err.value) and "Expected layout" in str(err.value)
    reader(root, train_subjects=(1, 5)).check("train")  # files present (content is read later)


def test_frames_are_filtered_before_they_are_validated(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1,))
    edit(root, 1, "data", lambda d: d["images"][2].pop("cam_idx"))  # frame 1: not kept with step 2
    assert len(load(reader(root, train_subjects=(1,)))) == 18
    with pytest.raises(AnnotationError, match="'cam_idx'"):
        load(reader(root, train_subjects=(1,), train_frame_step=1))


# --------------------------------------------------------------------------- bad input
def _drop_camera(cams: dict) -> None:
    del cams["2"]


def _drop_frame(joints: dict) -> None:
    del joints["2"]["1"]["2"]


def _drop_action(joints: dict) -> None:
    del joints["3"]


def _drop_subaction(joints: dict) -> None:
    del joints["2"]["2"]


def _nan_joint(joints: dict) -> None:
    joints["2"]["1"]["2"][5][1] = float("nan")


def _sixteen_joints(joints: dict) -> None:
    joints["2"]["1"]["2"] = joints["2"]["1"]["2"][:16]


def _drop_annotation(data: dict) -> None:
    image = next(i for i in data["images"] if (i["action_idx"], i["cam_idx"], i["frame_idx"]) == (2, 2, 2))
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != image["id"]]


def _short_bbox(data: dict) -> None:
    data["annotations"][4]["bbox"] = [1.0, 2.0, 3.0]  # action 2, subaction 1, frame 2, camera 1


def _behind_camera(cams: dict) -> None:
    cams["1"]["t"][2] = -4500.0


BAD_INPUTS = {
    "missing camera": ("camera", _drop_camera, ["camera.json", "no camera 2", "subject 5", "action 2", "frame 0"]),
    "missing frame": ("joint", _drop_frame, ["joint_3d.json", "no frame 2", "subaction 1", "camera 1", "subject 5"]),
    "missing action": ("joint", _drop_action, ["joint_3d.json", "no action 3", "(Discussion)", "subject 5"]),
    "missing subaction": ("joint", _drop_subaction, ["joint_3d.json", "no subaction 2 of action 2", "frame 0"]),
    "NaN joint": ("joint", _nan_joint, ["joint_3d.json", "NaN", "action 2", "subaction 1", "camera 1", "frame 2"]),
    "16 joints": ("joint", _sixteen_joints, ["joint_3d.json", "16 joints", "subaction 1", "camera 1", "frame 2"]),
    "short bbox": ("data", _short_bbox, ["data.json", "annotation #4", "'bbox'", "camera 1", "frame 2"]),
    "behind camera": ("camera", _behind_camera, ["camera.json", "behind camera 1", "subject 5", "frame 0"]),
    "no annotation": ("data", _drop_annotation, ["data.json", "no annotation", "camera 2", "frame 2", "subject 5"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_content_names_file_and_frame(tmp_path: Path, case: str) -> None:
    kind, change, expected = BAD_INPUTS[case]
    root = make_tiny_h36m(tmp_path, subjects=(1, 5))
    edit(root, 5, kind, change)
    load(reader(root, train_subjects=(1,)))  # the other subject is untouched
    with pytest.raises(AnnotationError) as err:
        load(reader(root))
    for part in expected:
        assert part in str(err.value), (part, str(err.value))


@pytest.mark.parametrize("kind", ["data", "camera", "joint"])
def test_malformed_json_names_the_file(tmp_path: Path, kind: str) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1,))
    path = subject_files(root / "annotations", 1)[kind]
    path.write_text(path.read_text()[:-3])
    with pytest.raises(AnnotationError, match="invalid JSON") as err:
        load(reader(root, train_subjects=(1,)))
    assert str(path) in str(err.value)


def test_missing_image_names_the_frame(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1,))
    name = image_file_name(1, 3, 1, 2, 4)
    (root / "images" / name).unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        load(reader(root, train_subjects=(1,)))
    for part in (name, "subject 1", "action 3", "subaction 1", "camera 2", "frame 4"):
        assert part in str(err.value)
    assert len(load(reader(root, train_subjects=(1,), check_images=False))) == 18


def test_missing_subject_files_give_the_layout_message(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1,))
    subject_files(root / "annotations", 1)["joint"].unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        load(reader(root, train_subjects=(1,)))
    message = str(err.value)
    assert "subject 1 joint file" in message and "Human36M_subject1_joint_3d.json" in message
    assert "Expected layout" in message and "data=synthetic_h36m" in message


def test_prepare_on_an_empty_root_lists_everything(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        Human36MReader(root=tmp_path).prepare()
    message = str(err.value)
    for part in (
        f"annotation folder {tmp_path / 'annotations'}/",
        "subjects 1, 5, 6, 7, 8",
        "subjects 9, 11",
        f"image folder {tmp_path / 'images'}/",
        "Human36M_subject{S}_joint_3d.json",
        "licence",
        "3DMPPE",
        "data.root=",
        "data.train_subjects=",
        "data=synthetic_h36m",
    ):
        assert part in message, part
    assert message.count(f"image folder {tmp_path / 'images'}/") == 1  # listed once for both splits


class FakeExtra:
    """A 2D reader stand-in that records how it is called."""

    name = "fake2d"
    keypoint_layout = "mpii16"

    def __init__(self, missing: bool = False) -> None:
        self.missing = missing
        self.calls: list[Any] = []

    def prepare(self, splits: tuple[str, ...] = ("train", "val")) -> None:
        self.calls.append(("prepare", tuple(splits)))
        if self.missing:
            raise DatasetNotFoundError("fake 2D data not found: /nowhere/annot/train.json")

    def load_records(self, split: str, *, keypoint_info: KeypointInfo, aspect_ratio: float, training: bool) -> list:
        self.calls.append((split, keypoint_info.name, aspect_ratio, training))
        return [{"sample_id": 0, "keypoints": np.zeros((16, 2))}]


def test_prepare_includes_the_mixed_2d_source(tmp_path: Path) -> None:
    make_tiny_h36m(tmp_path, subjects=(1, 5, 9))
    extra = FakeExtra()
    reader(tmp_path, extra_2d=extra).prepare()
    assert extra.calls == [("prepare", ("train",))]  # only its training split is mixed in
    missing = FakeExtra(missing=True)
    with pytest.raises(DatasetNotFoundError, match="/nowhere/annot/train.json") as err:
        reader(tmp_path, extra_2d=missing).prepare()
    assert "mix_2d=false" in str(err.value)
    skipped = FakeExtra(missing=True)
    reader(tmp_path, extra_2d=skipped, mix_2d=False).prepare()
    assert skipped.calls == []
    with pytest.raises(DatasetNotFoundError) as err:  # both missing: one message with both
        Human36MReader(root=tmp_path / "none", extra_2d=FakeExtra(missing=True)).prepare()
    assert "Human3.6M train/val data not found" in str(err.value) and "/nowhere/annot" in str(err.value)


def test_extra_records(tmp_path: Path) -> None:
    extra = FakeExtra()
    records, layout = reader(tmp_path, extra_2d=extra).extra_records("train", aspect_ratio=0.75)
    assert layout == "mpii16" and len(records) == 1 and records[0]["keypoints"].shape == (16, 2)
    assert extra.calls == [("train", "mpii16", 0.75, True)]
    assert reader(tmp_path, extra_2d=extra).extra_records("val", aspect_ratio=1.0) == ([], None)
    assert reader(tmp_path, extra_2d=extra, mix_2d=False).extra_records("train", aspect_ratio=1.0) == ([], None)
    assert reader(tmp_path).extra_records("train", aspect_ratio=1.0) == ([], None)
    assert len(extra.calls) == 1
    assert MPIIReader.keypoint_layout == "mpii16" and Human36MReader.keypoint_layout == "h36m17"


# --------------------------------------------------------------------------- RootNet boxes and depths
def test_bbox_root_file(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path, subjects=(1, 9))
    with pytest.raises(ValueError, match="bbox_root_file"):
        Human36MReader(root=root, use_gt_info=False)
    gt = load(reader(root), "val")
    entries = [
        {"image_id": r["image_id"], "bbox": [10.0 + i, 20.0, 300.0, 310.0 + i], "root_cam": [1.0, 2.0, 4000.0 + i]}
        for i, r in enumerate(gt)
    ]
    (root / "boxes").mkdir()
    (root / "boxes" / "bbox_root_h36m.json").write_text(json.dumps(entries))
    r = reader(root, use_gt_info=False, bbox_root_file="boxes/bbox_root_h36m.json")
    assert r.bbox_root_file == root / "boxes" / "bbox_root_h36m.json"
    val = load(r, "val")
    assert len(val) == len(gt)
    for i, (rec, ref) in enumerate(zip(val, gt)):
        np.testing.assert_array_equal(rec["bbox"], [10.0 + i, 20.0, 300.0, 310.0 + i])
        assert rec["root_depth"] == 4000.0 + i
        np.testing.assert_array_equal(rec["joints_cam"], ref["joints_cam"])  # ground truth joints either way
    train = load(reader(root, train_subjects=(1,), use_gt_info=False, bbox_root_file="boxes/bbox_root_h36m.json"))
    assert train[0]["root_depth"] == pytest.approx(train[0]["joints_cam"][0, 2])

    (root / "boxes" / "bbox_root_h36m.json").write_text(json.dumps(entries[1:]))
    with pytest.raises(AnnotationError) as err:
        load(r, "val")
    assert "bbox_root_h36m.json" in str(err.value) and f"image id {gt[0]['image_id']}" in str(err.value)
    (root / "boxes" / "bbox_root_h36m.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="bbox_root file"):
        r.check("val")


# --------------------------------------------------------------------------- synthetic
def test_synthetic_reader_generates_then_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def ensure(root: Path, **kwargs: Any) -> Path:
        calls.append((Path(root), kwargs))
        if not Path(root).exists():
            make_tiny_h36m(Path(root))
        return Path(root)

    fake = types.ModuleType("src.synthetic.h36m_writer")
    fake.ensure_synthetic_h36m = ensure
    monkeypatch.setitem(sys.modules, "src.synthetic.h36m_writer", fake)

    root = tmp_path / "synthetic_h36m"
    options = {"train_subjects": (1, 5), "val_subjects": (9,), "val_frame_step": 1}
    r = SyntheticHuman36MReader(root=root, synthetic={"seed": 3, "frames": 5}, **options)
    assert r.name == "synthetic_h36m" and isinstance(r, Human36MReader)
    with pytest.raises(DatasetNotFoundError):
        r.check("train")  # nothing generated before prepare
    r.prepare()
    r.prepare()
    assert calls == [(root, {"seed": 3, "frames": 5})] * 2
    assert len(load(r, "val")) == len(SEQUENCES) * len(CAMERAS) * len(FRAMES)


# --------------------------------------------------------------------------- evaluation needs the evaluated split only
def test_prepare_checks_only_the_given_splits(tmp_path: Path) -> None:
    root = make_tiny_h36m(tmp_path / "h36m", subjects=(9,))  # the validation subject, no training subject
    missing_2d = FakeExtra(missing=True)
    reader(root, extra_2d=missing_2d).prepare(splits=("val",))
    assert missing_2d.calls == []  # evaluation does not look at the 2D training data
    with pytest.raises(DatasetNotFoundError) as err:
        reader(root, extra_2d=missing_2d).prepare()
    message = str(err.value)
    assert "Human3.6M train/val data not found" in message
    assert "subject 1 data file" in message and "subject 5 joint file" in message and "subject 9" not in message
    assert "/nowhere/annot/train.json" in message and "mix_2d=false" in message
    with pytest.raises(DatasetNotFoundError, match="Human3.6M train data not found"):
        reader(root, mix_2d=False).prepare(splits=("train",))
    with pytest.raises(ValueError, match="unknown split 'test'"):
        reader(root).prepare(splits=("test",))


H36M_EVAL = [
    "model=posenet",
    *TINY_POSENET,
    "data=h36m",
    "data.val_subjects=[9]",
    "data.val_frame_step=4",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "data.pin_memory=false",
    "data.val_batch_size=16",
    "num_visualized=0",
]


def test_an_evaluation_runs_on_the_validation_subjects_alone(tmp_path: Path) -> None:
    """python -m src.eval oracle=true on a Human3.6M folder with only subject 9 and no MPII data;
    training on it still stops with the message that names the missing files."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.trainer.states import TrainerFn

    from src.eval import evaluate
    from src.utils.builders import build_datamodule

    root = make_tiny_h36m(tmp_path / "h36m", subjects=(9,))
    overrides = [*H36M_EVAL, f"data.root={root}"]
    metrics = evaluate(compose_run("eval", [*overrides, "oracle=true"], tmp_path / "eval", tmp_path / "data"))
    assert np.isfinite(metrics["oracle/MPJPE"]) and metrics["oracle/MPJPE"] < 100.0, metrics

    cfg = compose_run("train", overrides, tmp_path / "train", tmp_path / "data")
    datamodule = build_datamodule(cfg.data, codec=instantiate(cfg.model.codec), paradigm="pose3d")
    with pytest.raises(DatasetNotFoundError) as err:
        datamodule.prepare_data()  # no trainer: a training run's check
    message = str(err.value)
    assert "subject 1 data file" in message and f"{tmp_path / 'data' / 'mpii'}" in message
    assert "data.reader.extra_2d" in message and "data.mix_2d=false" in message
    # a checkpoint evaluation: the trainer says what it does
    datamodule.trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    datamodule.trainer.state.fn = TrainerFn.VALIDATING
    datamodule.prepare_data()
    datamodule.trainer.state.fn = TrainerFn.FITTING
    with pytest.raises(DatasetNotFoundError, match="subject 1 data file"):
        datamodule.prepare_data()
