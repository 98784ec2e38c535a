"""The synthetic Human3.6M dataset (3DMPPE layout): files, cameras, joints, boxes, motion, determinism, caching."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.camera import Camera
from src.layouts import H36M17
from src.readers.h36m_naming import ACTIONS as ACTION_NAMES
from src.synthetic import h36m_writer
from src.synthetic.figure import JOINT_INDEX, JOINT_NAMES, layout_indices, rot_x, rot_z, sample_pose
from src.synthetic.h36m_writer import MANIFEST, ensure_synthetic_h36m

SUBJECTS = (1, 9)
ACTIONS = (2, 14)  # Directions, Walking
SIZE = (96, 96)
FRAMES = 3
CAMERAS = 2
TINY = {
    "seed": 3,
    "subjects": SUBJECTS,
    "actions": ACTIONS,
    "subactions": 1,
    "frames": FRAMES,
    "num_cameras": CAMERAS,
    "image_size": SIZE,
}
NAMES = H36M17.keypoint_names
IMAGE_KEYS = {
    "id",
    "file_name",
    "width",
    "height",
    "subject",
    "action_name",
    "action_idx",
    "subaction_idx",
    "cam_idx",
    "frame_idx",
}


def _j(name: str) -> int:
    return NAMES.index(name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_h36m(tmp_path_factory.mktemp("h36m") / "ds", workers=1, **TINY)


def _load(root: Path, subject: int, kind: str) -> dict:
    return json.loads((root / "annotations" / f"Human36M_subject{subject}_{kind}.json").read_text())


@pytest.fixture(scope="module")
def data(dataset: Path) -> dict[int, dict]:
    return {s: _load(dataset, s, "data") for s in SUBJECTS}


@pytest.fixture(scope="module")
def cameras(dataset: Path) -> dict[int, dict[str, Camera]]:
    return {s: {k: Camera.from_json(v) for k, v in _load(dataset, s, "camera").items()} for s in SUBJECTS}


@pytest.fixture(scope="module")
def joints(dataset: Path) -> dict[int, dict]:
    return {s: _load(dataset, s, "joint_3d") for s in SUBJECTS}


def _world(joints: dict, subject: int, image: dict) -> np.ndarray:
    """(17, 3) world joints of an image entry."""
    return np.array(joints[subject][str(image["action_idx"])][str(image["subaction_idx"])][str(image["frame_idx"])])


def test_h36m17_layout_maps_onto_the_figure() -> None:
    names = [JOINT_NAMES[i] for i in layout_indices("h36m17")]
    renamed = {"torso": "spine", "neck": "upper_neck", "head": "head_top"}
    assert names == [renamed.get(n, n) for n in NAMES] and len(names) == 17


def test_files_and_keys(dataset: Path, data: dict[int, dict], joints: dict[int, dict]) -> None:
    manifest = json.loads((dataset / MANIFEST).read_text())
    assert manifest["generator"] == h36m_writer.GENERATOR and manifest["params"]["subjects"] == list(SUBJECTS)
    per_subject = len(ACTIONS) * 1 * CAMERAS * FRAMES
    ids = []
    for s in SUBJECTS:
        images, anns = data[s]["images"], data[s]["annotations"]
        assert set(data[s]) == {"images", "annotations"} and len(images) == len(anns) == per_subject
        assert manifest["splits"][f"S{s}"] == {"images": per_subject, "annotations": per_subject}
        for image, ann in zip(images, anns):
            assert set(image) == IMAGE_KEYS and set(ann) == {"id", "image_id", "keypoints_vis", "bbox"}
            assert ann["image_id"] == image["id"] and ann["keypoints_vis"] == [True] * 17 and len(ann["bbox"]) == 4
            assert image["subject"] == s and (image["width"], image["height"]) == SIZE
            assert image["action_name"] == ACTION_NAMES[image["action_idx"] - 2]
            a, b, c, f = image["action_idx"], image["subaction_idx"], image["cam_idx"], image["frame_idx"]
            folder = f"s_{s:02d}_act_{a:02d}_subact_{b:02d}_ca_{c:02d}"
            assert image["file_name"] == f"{folder}/{folder}_{f + 1:06d}.jpg"
            ids.append(image["id"])
        assert {(i["action_idx"], i["cam_idx"], i["frame_idx"]) for i in images} == {
            (a, c, f) for a in ACTIONS for c in range(1, CAMERAS + 1) for f in range(FRAMES)
        }
        assert set(joints[s]) == {str(a) for a in ACTIONS}
        for action in joints[s].values():
            assert set(action) == {"1"} and set(action["1"]) == {str(f) for f in range(FRAMES)}
            assert all(np.shape(p) == (17, 3) for p in action["1"].values())
    assert len(set(ids)) == len(ids), "image ids are unique over subjects"
    assert data[1]["images"][0]["action_name"] == "Directions" and data[9]["images"][-1]["action_name"] == "Walking"
    img = cv2.imread(str(dataset / "images" / data[9]["images"][-1]["file_name"]))
    assert img is not None and img.shape == (SIZE[1], SIZE[0], 3)
    assert len(list((dataset / "images").rglob("*.jpg"))) == len(ids)


def test_cameras_are_calibrated_rigs_round_the_studio(dataset: Path, cameras: dict[int, dict[str, Camera]]) -> None:
    raw = _load(dataset, 1, "camera")
    assert set(raw) == {"1", "2"} and all(set(c) == {"R", "t", "f", "c"} for c in raw.values())
    for rig in cameras.values():
        for cam in rig.values():
            np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
            assert abs(np.linalg.det(cam.R) - 1.0) < 1e-12
            centre = cam.camera_to_world(np.zeros(3))
            assert 4400 < np.hypot(*centre[:2]) < 5600 and 1150 < centre[2] < 1850
            # the optical axis points at the studio centre, slightly down
            axis = cam.R[2]
            towards = -centre[:2] / np.linalg.norm(centre[:2])
            assert axis[:2] @ towards / np.linalg.norm(axis[:2]) > 0.99 and -0.3 < axis[2] < 0.05
            assert cam.fx == cam.fy and 1.1 * SIZE[0] - 0.01 <= cam.fx <= 1.2 * SIZE[0] + 0.01
            assert abs(cam.cx - (SIZE[0] - 1) / 2) < 5 and abs(cam.cy - (SIZE[1] - 1) / 2) < 5
    assert not np.allclose(cameras[1]["1"].t, cameras[9]["1"].t), "each subject has its own calibration"


def test_projected_joints_are_in_the_image_and_the_box(
    data: dict[int, dict], cameras: dict[int, dict[str, Camera]], joints: dict[int, dict]
) -> None:
    w, h = SIZE
    for s in SUBJECTS:
        for image, ann in zip(data[s]["images"], data[s]["annotations"]):
            uvz = cameras[s][str(image["cam_idx"])].world_to_pixel(_world(joints, s, image))
            uv = uvz[:, :2]
            assert (uvz[:, 2] > 2000).all()
            assert ((uv >= 0) & (uv <= [w - 1, h - 1])).all(), image["file_name"]
            x, y, bw, bh = ann["bbox"]
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
            # every joint lies inside the figure, so in its silhouette's box (head_top on its edge)
            inside = (uv >= [x - 1.0, y - 1.0]) & (uv <= [x + bw, y + bh])
            assert inside.all(axis=1).sum() >= 16 and inside.all(axis=1).sum() / 17 > 0.9
            np.testing.assert_array_less([x - 2.0, y - 2.0], uv.min(axis=0))
            np.testing.assert_array_less(uv.max(axis=0), [x + bw + 1.0, y + bh + 1.0])
            # a standing-size person: about 1.5-2 m seen from ~4-6 m with f ~ 1.15 w
            assert 0.2 * h < bh < 0.6 * h and bw >= 4


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def test_the_person_is_drawn_inside_the_box(dataset: Path, data: dict[int, dict]) -> None:
    """The image differs from the camera's empty background inside the box and nowhere else.

    Luma, because JPEG's halved chroma resolution smears the background's colour edges.
    """
    for s in SUBJECTS:
        for image, ann in zip(data[s]["images"], data[s]["annotations"]):
            background, sigma = h36m_writer.view_background(3, s, image["cam_idx"], SIZE, 0.5)
            background = cv2.GaussianBlur(background, (0, 0), sigmaX=sigma)  # as the renderer blurs
            img = cv2.cvtColor(cv2.imread(str(dataset / "images" / image["file_name"])), cv2.COLOR_BGR2RGB)
            changed = np.abs(_luma(img) - _luma(background)) > 15.0
            x, y, bw, bh = ann["bbox"]
            box = np.zeros(changed.shape, dtype=bool)
            box[max(y - 1, 0) : y + bh + 1, max(x - 1, 0) : x + bw + 1] = True  # blur spreads the edge a little
            assert changed[box].mean() > 0.1, image["file_name"]  # a person, not a few stray pixels
            assert changed[~box].mean() < 0.002, image["file_name"]  # and nothing elsewhere


def test_joints_are_a_rigid_z_up_skeleton_on_the_floor(joints: dict[int, dict]) -> None:
    bones = [("left_hip", "left_knee"), ("right_knee", "right_ankle"), ("left_shoulder", "left_elbow")]
    for s in SUBJECTS:
        frames = np.array([p for a in joints[s].values() for sub in a.values() for p in sub.values()])  # (N, 17, 3)
        z = frames[..., 2]
        assert (z[:, _j("head")] > z[:, _j("pelvis")]).all()
        assert (z[:, _j("pelvis")] > np.maximum(z[:, _j("left_ankle")], z[:, _j("right_ankle")])).all()
        assert (z[:, _j("neck")] > z[:, _j("torso")]).all()
        lowest = np.minimum(z[:, _j("left_ankle")], z[:, _j("right_ankle")])
        assert (lowest > 20).all() and (lowest < 250).all(), "a foot stands on the floor (z = 0)"
        assert (np.hypot(frames[:, 0, 0], frames[:, 0, 1]) < 1000).all(), "the pelvis stays within 1 m of the centre"
        for a, b in bones:
            length = np.linalg.norm(frames[:, _j(a)] - frames[:, _j(b)], axis=-1)
            assert np.ptp(length) < 0.01, f"{a}-{b} keeps its length"
        thigh = np.linalg.norm(frames[0, _j("right_hip")] - frames[0, _j("right_knee")])
        assert 300 < thigh < 550
        assert 200 < np.linalg.norm(frames[0, _j("left_hip")] - frames[0, _j("right_hip")]) < 300


def test_consecutive_frames_move_smoothly(joints: dict[int, dict]) -> None:
    for s in SUBJECTS:
        for action, subactions in joints[s].items():
            seq = np.array([subactions["1"][str(f)] for f in range(FRAMES)])
            step = np.linalg.norm(np.diff(seq, axis=0), axis=-1)  # (T - 1, 17) mm per frame
            assert (step.mean(axis=1) > 1.0).all() and step.max() < 450.0
            if action == "14":  # walking: the pelvis advances about 1 m/s x 0.1 s per frame
                assert (step[:, 0] > 40).all() and (step[:, 0] < 160).all()


def test_world_joints_match_the_rendered_figure() -> None:
    """The stored joints are the rendered skeleton's, through the h36m17 mapping."""
    skeleton = h36m_writer.sequence_skeletons(3, 9, 14, 1, FRAMES)[2]
    points = h36m_writer.sequence_joints(3, 9, 14, 1, FRAMES)[2]
    np.testing.assert_array_equal(points[_j("neck")], skeleton.joints[JOINT_INDEX["upper_neck"]])
    np.testing.assert_array_equal(points[_j("torso")], skeleton.joints[JOINT_INDEX["spine"]])
    np.testing.assert_array_equal(points[_j("head")], skeleton.joints[JOINT_INDEX["head_top"]])
    # more frames extend a sequence without changing its start
    np.testing.assert_array_equal(h36m_writer.sequence_joints(3, 9, 14, 1, FRAMES + 4)[:FRAMES][2], points)


def test_motion_helpers() -> None:
    rng = np.random.default_rng(0)
    _, pose = sample_pose(rng, "wave")
    mirrored = h36m_writer.mirror_pose(pose)
    assert mirrored["r_shoulder_abd"] == pose["l_shoulder_abd"] and mirrored["neck_twist"] == -pose["neck_twist"]
    assert h36m_writer.mirror_pose(mirrored) == pose
    full = rot_z(50.0) @ rot_x(-30.0)
    half = h36m_writer._partial_rotation(full, 0.5)
    np.testing.assert_allclose(half @ half, full, atol=1e-12)
    np.testing.assert_allclose(h36m_writer._partial_rotation(full, 0.0), np.eye(3))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_bytes_with_one_or_two_workers(tmp_path: Path) -> None:
    # 64 images: enough for cache.parallel_map to use a process pool with 2 workers
    params = {**TINY, "frames": 4, "num_cameras": 4, "image_size": (64, 64)}
    a = _files(ensure_synthetic_h36m(tmp_path / "a", workers=1, **params))
    b = _files(ensure_synthetic_h36m(tmp_path / "b", workers=2, **params))
    assert len(a) == 64 + 3 * len(SUBJECTS) + 1 and a == b
    c = _files(ensure_synthetic_h36m(tmp_path / "c", workers=1, **{**params, "seed": 4, "subjects": (1,)}))
    assert c["annotations/Human36M_subject1_joint_3d.json"] != a["annotations/Human36M_subject1_joint_3d.json"]


def test_cache_hit_and_parameter_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"subjects": (5,), "actions": (9,), "subactions": 1, "frames": 1, "num_cameras": 1, "image_size": (48, 48)}
    root = ensure_synthetic_h36m(tmp_path / "ds", workers=1, **small)
    stamp = (root / MANIFEST).read_text()

    def boom(*args, **kwargs):
        raise AssertionError("a matching cache must not be regenerated")

    with monkeypatch.context() as m:
        m.setattr(h36m_writer, "_write_dataset", boom)
        assert ensure_synthetic_h36m(root, workers=2, **small) == root  # workers do not matter
    ensure_synthetic_h36m(root, workers=1, **{**small, "frames": 2})
    changed = json.loads((root / MANIFEST).read_text())
    assert changed["params"]["frames"] == 2 and (root / MANIFEST).read_text() != stamp
    assert len(list((root / "images").rglob("*.jpg"))) == 2
    assert not list(tmp_path.glob(".ds.*")), "temporary folders are cleaned up"


def test_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="action_idx"):
        ensure_synthetic_h36m(tmp_path / "x", actions=(1,))
    with pytest.raises(ValueError, match="subjects"):
        ensure_synthetic_h36m(tmp_path / "x", subjects=(1, 1))
    assert not (tmp_path / "x").exists()
