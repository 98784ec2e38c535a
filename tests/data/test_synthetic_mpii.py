"""The synthetic MPII dataset (HRNet layout): schema, coordinates, head boxes, crops, determinism, caching."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.layouts import MPII16
from src.readers.mpii_ground_truth import read_mpii_ground_truth
from src.synthetic import mpii_writer
from src.synthetic.figure import JOINT_INDEX, layout_indices
from src.synthetic.generate import ensure_synthetic_coco
from src.synthetic.mpii_writer import MANIFEST, ensure_synthetic_mpii
from src.synthetic.scene import SceneConfig, render_scene

TINY = {"num_train": 5, "num_val": 3, "image_size": (160, 128), "workers": 1}
NAMES = MPII16.keypoint_names
K = MPII16.num_keypoints
# MPII joints that are superset joints unchanged (all but the pelvis and thorax midpoints)
DIRECT = [k for k, name in enumerate(NAMES) if name not in ("pelvis", "thorax")]


def _joint(name: str) -> int:
    return NAMES.index(name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # enough people for the statistical checks, still well under a second or two
    return ensure_synthetic_mpii(
        tmp_path_factory.mktemp("mpii") / "ds", seed=5, num_train=24, num_val=12, image_size=(192, 160), workers=1
    )


@pytest.fixture(scope="module")
def annots(dataset: Path) -> dict[str, list[dict]]:
    return {split: json.loads((dataset / "annot" / f"{split}.json").read_text()) for split in ("train", "valid")}


def _arrays(entries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) 1-based joints and (N, K) bool annotated flags."""
    joints = np.array([e["joints"] for e in entries], dtype=np.float64).reshape(-1, K, 2)
    vis = np.array([e["joints_vis"] for e in entries]).reshape(-1, K) > 0
    return joints, vis


def test_layout_and_schema(dataset: Path, annots: dict[str, list[dict]]) -> None:
    manifest = json.loads((dataset / MANIFEST).read_text())
    assert manifest["generator"] == mpii_writer.GENERATOR
    assert (dataset / "annot" / "gt_valid.mat").is_file()
    images = {split: {e["image"] for e in entries} for split, entries in annots.items()}
    assert images["train"] and images["valid"] and not images["train"] & images["valid"]
    assert len(list((dataset / "images").glob("*.jpg"))) == 24 + 12
    for split, entries in annots.items():
        assert manifest["splits"][split]["people"] == len(entries)
        for e in entries:
            assert set(e) == {"image", "center", "scale", "joints", "joints_vis"}
            assert len(e["center"]) == 2 and isinstance(e["scale"], float) and e["scale"] > 0
            assert len(e["joints"]) == K and all(len(p) == 2 for p in e["joints"])
            assert len(e["joints_vis"]) == K and set(e["joints_vis"]) <= {0, 1}
    img = cv2.imread(str(dataset / "images" / annots["valid"][0]["image"]))
    assert img is not None and img.shape == (160, 192, 3)


def test_train_and_valid_names_are_disjoint_and_mpii_style() -> None:
    assert mpii_writer.image_name(0, 0) == "000000001.jpg"
    assert mpii_writer.image_name(1, 0) == "001000001.jpg"


def test_one_based_coordinates_match_the_projected_figure(annots: dict[str, list[dict]]) -> None:
    """Each entry's joints are some rendered person's 0-based projections + 1; missing ones are outside."""
    entries = [e for e in annots["train"] if e["image"] == mpii_writer.image_name(0, 0)]
    assert entries, "the first training image should hold an annotated person"
    rng = np.random.default_rng(np.random.SeedSequence([5, 0, 0]))
    scene = render_scene(rng, SceneConfig(image_size=(192, 160), empty_prob=0.0))
    direct = layout_indices("mpii16")[DIRECT]
    matched = set()
    for joints, vis in zip(*_arrays(entries)):
        found = [
            i
            for i, p in enumerate(scene.persons)
            if np.allclose(joints[DIRECT][vis[DIRECT]], p.joints_2d[direct][vis[DIRECT]] + 1.0, atol=0.006)
        ]
        assert len(found) == 1
        person = scene.persons[found[0]]
        np.testing.assert_array_equal(vis[DIRECT], person.visibility[direct] > 0)  # 0: outside the image
        assert (joints[~vis] == -1.0).all()
        matched.add(found[0])
    assert len(matched) == len(entries)


def test_pelvis_and_thorax_are_hip_and_shoulder_midpoints(annots: dict[str, list[dict]]) -> None:
    joints, vis = _arrays(annots["train"] + annots["valid"])
    for mid, (a, b) in (("pelvis", ("left_hip", "right_hip")), ("thorax", ("left_shoulder", "right_shoulder"))):
        m, ia, ib = _joint(mid), _joint(a), _joint(b)
        ok = vis[:, m] & vis[:, ia] & vis[:, ib]
        # the projected 3D midpoint differs from the 2D midpoint by perspective only (< 1 px here)
        err = np.linalg.norm(joints[ok, m] - (joints[ok, ia] + joints[ok, ib]) / 2, axis=-1)
        assert ok.sum() > 10 and err.max() < 1.0


def test_upper_neck_and_head_top_come_from_the_figure(annots: dict[str, list[dict]]) -> None:
    joints, _ = _arrays(annots["train"] + annots["valid"])
    neck, top, thorax = joints[:, _joint("upper_neck")], joints[:, _joint("head_top")], joints[:, _joint("thorax")]
    height = np.array([e["scale"] for e in annots["train"] + annots["valid"]]) * 200
    # head segment ~ 0.1 x stature; the head sits above the thorax for almost everyone (upright figures)
    ratio = np.linalg.norm(top - neck, axis=-1) / height
    assert 0.07 < np.median(ratio) < 0.13
    assert np.mean(top[:, 1] < thorax[:, 1]) > 0.9


def test_ground_truth_matches_valid_json(dataset: Path, annots: dict[str, list[dict]]) -> None:
    gt = read_mpii_ground_truth(dataset / "annot" / "gt_valid.mat")
    joints, vis = _arrays(annots["valid"])
    assert len(gt) == len(annots["valid"]) > 0
    np.testing.assert_array_equal(gt.positions, joints)
    np.testing.assert_array_equal(gt.missing, ~vis)
    assert gt.joint_names[0] == "rank" and gt.joint_names[-1] == "lwri"


def test_head_boxes_hold_the_head_and_have_mpii_size(dataset: Path, annots: dict[str, list[dict]]) -> None:
    gt = read_mpii_ground_truth(dataset / "annot" / "gt_valid.mat")
    lo, hi = gt.headboxes[:, 0], gt.headboxes[:, 1]
    for name in ("head_top", "upper_neck"):
        p = gt.positions[:, _joint(name)]
        assert not gt.missing[:, _joint(name)].any()
        assert ((p >= lo - 0.01) & (p <= hi + 0.01)).all()
    segment = np.linalg.norm(gt.positions[:, _joint("head_top")] - gt.positions[:, _joint("upper_neck")], axis=-1)
    # MPII: 0.6 x the box diagonal is about the upper_neck-head_top length (measured here: median ~0.97)
    assert 0.85 < np.median(gt.head_sizes() / segment) < 1.15


def test_official_crop_holds_every_annotated_joint(annots: dict[str, list[dict]]) -> None:
    """HRNet's reader: center y += 15 s, s *= 1.25, 1-based -> 0-based; a 256x256 crop spans 200 s px."""
    entries = annots["train"] + annots["valid"]
    contained = []
    for e in entries:
        c = np.array(e["center"], dtype=np.float64)
        s = e["scale"]
        c[1] += 15 * s
        s *= 1.25
        c -= 1
        joints = np.array(e["joints"], dtype=np.float64) - 1
        vis = np.array(e["joints_vis"]) > 0
        contained.append(bool((np.abs(joints[vis] - c) <= 100 * s).all()))
    assert len(entries) > 30 and np.mean(contained) >= 0.97


def test_annotated_people_are_mostly_inside(annots: dict[str, list[dict]]) -> None:
    _, vis = _arrays(annots["train"] + annots["valid"])
    assert (vis.sum(axis=1) >= 10).all()
    assert vis[:, _joint("head_top")].all() and vis[:, _joint("upper_neck")].all()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = _files(ensure_synthetic_mpii(tmp_path / "a", seed=1, **TINY))
    b = _files(ensure_synthetic_mpii(tmp_path / "b", seed=1, **TINY))
    assert a == b  # images, JSON, gt_valid.mat and manifest, byte for byte
    c = _files(ensure_synthetic_mpii(tmp_path / "c", seed=2, **TINY))
    assert c["annot/train.json"] != a["annot/train.json"]


def test_same_pictures_as_the_coco_generator(tmp_path: Path) -> None:
    size = {"num_train": 2, "num_val": 1, "image_size": (96, 96), "workers": 1, "empty_prob": 0.0}
    coco = ensure_synthetic_coco(tmp_path / "coco", seed=4, **size)
    mpii = ensure_synthetic_mpii(tmp_path / "mpii", seed=4, **size)
    assert (coco / "images/train2017/000000000002.jpg").read_bytes() == (mpii / "images/000000002.jpg").read_bytes()
    assert (coco / "images/val2017/000001000001.jpg").read_bytes() == (mpii / "images/001000001.jpg").read_bytes()


def test_cache_hit_and_parameter_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_synthetic_mpii(tmp_path / "ds", seed=0, **TINY)
    stamp = (root / MANIFEST).read_text()

    def boom(*args, **kwargs):
        raise AssertionError("a matching cache must not be regenerated")

    with monkeypatch.context() as m:
        m.setattr(mpii_writer, "_write_dataset", boom)
        assert ensure_synthetic_mpii(root, seed=0, **{**TINY, "workers": 2}) == root  # workers do not matter
    ensure_synthetic_mpii(root, seed=0, **{**TINY, "min_joints": 12})
    changed = json.loads((root / MANIFEST).read_text())
    assert changed["params"]["min_joints"] == 12 and (root / MANIFEST).read_text() != stamp
    assert not list(tmp_path.glob(".ds.*")), "temporary folders are cleaned up"


def test_interrupted_generation_leaves_nothing_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(mpii_writer, "_fixed_mat_header", fail)
    with pytest.raises(RuntimeError):
        ensure_synthetic_mpii(tmp_path / "ds", seed=0, **TINY)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.iterdir())


def test_refuses_foreign_folders(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        ensure_synthetic_mpii(foreign, **TINY)
    coco = ensure_synthetic_coco(tmp_path / "coco", num_train=1, num_val=1, image_size=(64, 64), workers=1)
    with pytest.raises(FileExistsError):  # a COCO dataset is not ours to replace
        ensure_synthetic_mpii(coco, **TINY)


def test_head_box_rule_on_a_known_figure() -> None:
    """The box is the projected head sphere's square, grown to hold head_top and upper_neck."""
    rng = np.random.default_rng(np.random.SeedSequence([0, 0, 3]))
    scene = render_scene(rng, SceneConfig(image_size=(192, 160), empty_prob=0.0))
    person = scene.persons[0]
    box = mpii_writer.head_box(scene.camera, person.joints_3d)
    centre = person.joints_3d[JOINT_INDEX["head_center"]]
    r = np.linalg.norm(person.joints_3d[JOINT_INDEX["head_top"]] - centre) * scene.camera.fx / centre[2]
    mid = scene.camera.project(centre[None])[0]
    assert (box[0] <= mid - r + 1e-9).all() and (box[1] >= mid + r - 1e-9).all()
    for name in ("head_top", "upper_neck"):
        p = person.joints_2d[JOINT_INDEX[name]]
        assert (box[0] <= p).all() and (p <= box[1]).all()
