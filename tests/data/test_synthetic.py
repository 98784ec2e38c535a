"""The embedded synthetic COCO dataset: format, geometry, visibility, determinism and caching."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from src.layouts import COCO17
from src.synthetic import generate
from src.synthetic.camera import Camera, body_to_camera_rotation
from src.synthetic.figure import (
    JOINT_INDEX,
    JOINT_LIMITS,
    JOINT_NAMES,
    LAYOUT_JOINTS,
    forward_kinematics,
    layout_indices,
    sample_body_shape,
    sample_pose,
)
from src.synthetic.generate import MANIFEST, ensure_synthetic_coco

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

TINY = {"num_train": 8, "num_val": 4, "workers": 1}
SPLITS = ("train2017", "val2017")


def _ann_file(root: Path, split: str) -> Path:
    return root / "annotations" / f"person_keypoints_{split}.json"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_coco(tmp_path_factory.mktemp("synth") / "ds", seed=3, crowd_prob=0.5, **TINY)


@pytest.fixture(scope="module")
def loaded(dataset: Path) -> dict[str, tuple[COCO, dict]]:
    out = {}
    for split in SPLITS:
        path = _ann_file(dataset, split)
        out[split] = (COCO(str(path)), json.loads(path.read_text()))
    return out


def _person_anns(loaded):
    for split, (_, data) in loaded.items():
        images = {im["id"]: im for im in data["images"]}
        for ann in data["annotations"]:
            if not ann["iscrowd"]:
                yield split, images[ann["image_id"]], ann


def test_files_exist(dataset: Path, loaded) -> None:
    assert (dataset / MANIFEST).is_file()
    for split in SPLITS:
        _, data = loaded[split]
        assert len(data["images"]) == TINY["num_train" if split == "train2017" else "num_val"]
        for image in data["images"]:
            img = cv2.imread(str(dataset / "images" / split / image["file_name"]))
            assert img is not None and img.shape == (image["height"], image["width"], 3)
            assert set(image["camera"]) == {"f", "c"}


def test_coco_format(loaded) -> None:
    coco, data = loaded["train2017"]
    (cat,) = data["categories"]
    assert cat["id"] == 1 and cat["name"] == "person"
    assert cat["keypoints"] == list(COCO17.keypoint_names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in COCO17.skeleton]
    assert data["info"]["keypoints_3d_names"] == list(JOINT_NAMES)
    assert coco.getCatIds() == [1]
    ids = [a["id"] for _, d in loaded.values() for a in d["annotations"]]
    assert len(ids) == len(set(ids))
    persons = list(_person_anns(loaded))
    assert persons, "tiny dataset should still contain people"
    for split, image, ann in persons:
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        assert set(np.unique(kps[:, 2])) <= {0.0, 1.0, 2.0}
        assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
        assert ann["category_id"] == 1 and ann["area"] > 0
        assert isinstance(ann["segmentation"], list) and all(len(p) >= 6 for p in ann["segmentation"])
        assert len(ann["keypoints_3d"]) == 3 * len(JOINT_NAMES)
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= image["width"] and y + h <= image["height"]
        mask = loaded[split][0].annToMask(ann)
        assert mask.shape == (image["height"], image["width"]) and mask.sum() > 0


def test_bbox_contains_labelled_keypoints(loaded) -> None:
    for _, _, ann in _person_anns(loaded):
        x, y, w, h = ann["bbox"]
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        lab = kps[kps[:, 2] > 0]
        assert np.all((lab[:, 0] >= x) & (lab[:, 0] <= x + w) & (lab[:, 1] >= y) & (lab[:, 1] <= y + h))


def test_visibility_zero_iff_outside_image(loaded) -> None:
    coco_idx = layout_indices("coco17")
    checked = 0
    for _, image, ann in _person_anns(loaded):
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        if ann["num_keypoints"] == 0:
            assert not kps.any()
            continue
        cam = Camera.from_json(image["camera"])
        joints = np.array(ann["keypoints_3d"]).reshape(-1, 3)[coco_idx]
        uv = cam.project(joints)
        inside = (
            (joints[:, 2] > 0)
            & (uv[:, 0] >= 0)
            & (uv[:, 0] <= image["width"] - 1)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] <= image["height"] - 1)
        )
        # a tolerance band of 0.01 px around the border absorbs the JSON rounding
        near_border = (
            (np.abs(uv[:, 0]) < 0.01)
            | (np.abs(uv[:, 0] - image["width"] + 1) < 0.01)
            | (np.abs(uv[:, 1]) < 0.01)
            | (np.abs(uv[:, 1] - image["height"] + 1) < 0.01)
        )
        ok = ((kps[:, 2] > 0) == inside) | near_border
        assert ok.all(), (ann["id"], kps, uv)
        assert not kps[kps[:, 2] == 0].any()
        checked += 1
    assert checked > 0


def test_keypoints_3d_project_to_keypoints(loaded) -> None:
    coco_idx = layout_indices("coco17")
    for _, image, ann in _person_anns(loaded):
        kps = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        lab = kps[:, 2] > 0
        if not lab.any():
            continue
        uv = Camera.from_json(image["camera"]).project(np.array(ann["keypoints_3d"]).reshape(-1, 3)[coco_idx])
        np.testing.assert_allclose(uv[lab], kps[lab, :2], atol=0.05)


def test_self_evaluation_gives_ap_one(dataset: Path, loaded) -> None:
    coco, data = loaded["val2017"]
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in data["annotations"]
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]
    assert results
    ev = COCOeval(coco, coco.loadRes(results), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = ensure_synthetic_coco(tmp_path / "a", seed=5, **TINY)
    b = ensure_synthetic_coco(tmp_path / "b", seed=5, **TINY)
    c = ensure_synthetic_coco(tmp_path / "c", seed=6, **TINY)
    for split in SPLITS:
        assert _ann_file(a, split).read_bytes() == _ann_file(b, split).read_bytes()
        assert _ann_file(a, split).read_bytes() != _ann_file(c, split).read_bytes()
    first = sorted((a / "images" / "val2017").iterdir())[0].name
    assert (a / "images" / "val2017" / first).read_bytes() == (b / "images" / "val2017" / first).read_bytes()


def test_cache_hit_and_parameter_change(tmp_path: Path) -> None:
    root = ensure_synthetic_coco(tmp_path / "ds", seed=0, **TINY)
    files = [root / MANIFEST, _ann_file(root, "train2017")]
    stamps = [f.stat().st_mtime_ns for f in files]
    start = time.perf_counter()
    assert ensure_synthetic_coco(tmp_path / "ds", seed=0, **TINY) == root
    assert time.perf_counter() - start < 1.0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    old_hash = json.loads((root / MANIFEST).read_text())["params_hash"]
    ensure_synthetic_coco(tmp_path / "ds", seed=0, **{**TINY, "num_val": 3})
    assert json.loads((root / MANIFEST).read_text())["params_hash"] != old_hash
    assert len(json.loads(_ann_file(root, "val2017").read_text())["images"]) == 3
    assert not list(tmp_path.glob(".ds.*")), "temporary folders must be cleaned up"


def test_interrupted_generation_leaves_nothing_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "_map", boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_coco(tmp_path / "ds", **TINY)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.iterdir())


def test_refuses_to_replace_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        ensure_synthetic_coco(tmp_path / "mine", **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_crowd_region_is_rle(tmp_path: Path) -> None:
    root = ensure_synthetic_coco(
        tmp_path / "ds", seed=1, num_train=3, num_val=1, crowd_prob=1.0, empty_prob=0.0, workers=1
    )
    data = json.loads(_ann_file(root, "train2017").read_text())
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds
    for ann in crowds:
        seg = ann["segmentation"]
        assert isinstance(seg, dict) and isinstance(seg["counts"], str)
        assert ann["num_keypoints"] == 0 and not any(ann["keypoints"])
        rle = {"size": seg["size"], "counts": seg["counts"].encode()}
        assert int(mask_utils.area(rle)) == ann["area"]
    COCO(str(_ann_file(root, "train2017")))


def test_people_without_keypoints_and_images_without_people(tmp_path: Path) -> None:
    root = ensure_synthetic_coco(
        tmp_path / "ds", seed=2, num_train=6, num_val=1, empty_prob=0.5, crowd_prob=0.0, workers=1
    )
    data = json.loads(_ann_file(root, "train2017").read_text())
    with_people = {a["image_id"] for a in data["annotations"]}
    assert len(with_people) < len(data["images"])


def test_layout_mapping_names() -> None:
    coco = LAYOUT_JOINTS["coco17"]
    assert list(coco) == list(COCO17.keypoint_names)
    assert [JOINT_NAMES[i] for i in coco.values()] == list(COCO17.keypoint_names)
    assert len(LAYOUT_JOINTS["mpii16"]) == 16


def test_joint_limits_and_bend_directions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = sample_body_shape(rng)
        _, pose = sample_pose(rng)
        for name, (lo, hi) in JOINT_LIMITS.items():
            assert lo <= pose[name] <= hi
        skel = forward_kinematics(shape, pose)
        j = skel.joints
        for side in ("left", "right"):
            knee, ankle = j[JOINT_INDEX[f"{side}_knee"]], j[JOINT_INDEX[f"{side}_ankle"]]
            thigh = skel.frames[f"{side}_thigh"]
            # the shin swings backwards from the thigh (knees bend one way)
            assert (ankle - knee) @ thigh[:, 2] <= 1e-6
            elbow, wrist = j[JOINT_INDEX[f"{side}_elbow"]], j[JOINT_INDEX[f"{side}_wrist"]]
            assert (wrist - elbow) @ skel.frames[f"{side}_upper_arm"][:, 2] >= -1e-6  # elbows bend forwards
            assert np.linalg.norm(knee - j[JOINT_INDEX[f"{side}_hip"]]) == pytest.approx(shape.thigh)
            assert np.linalg.norm(wrist - elbow) == pytest.approx(shape.forearm)


def test_left_right_seen_from_front_and_back() -> None:
    rng = np.random.default_rng(0)
    skel = forward_kinematics(sample_body_shape(rng), sample_pose(rng, "stand")[1])
    cam = Camera(fx=500.0, fy=500.0, cx=160.0, cy=128.0)
    for yaw, left_on_image_right in ((0.0, True), (180.0, False)):
        moved = skel.transformed(body_to_camera_rotation(yaw=yaw), np.array([0.0, 0.0, 5000.0]))
        uv = cam.project(moved.joints)
        left, right = uv[JOINT_INDEX["left_shoulder"], 0], uv[JOINT_INDEX["right_shoulder"], 0]
        assert (left > right) == left_on_image_right
        head_up = uv[JOINT_INDEX["head_top"], 1] < uv[JOINT_INDEX["left_ankle"], 1]
        assert head_up


def _render_single(yaw: float, style_changes: dict) -> tuple:
    """One person (neutral pose) 3 m in front of the camera; returns (skeleton, color, vis)."""
    from dataclasses import replace

    from src.synthetic.appearance import figure_primitives, sample_style
    from src.synthetic.render import rasterise
    from src.synthetic.scene import joint_visibility

    rng = np.random.default_rng(0)
    cam = Camera(fx=400.0, fy=400.0, cx=99.5, cy=149.5)
    skel = forward_kinematics(sample_body_shape(rng), {"l_shoulder_abd": 10.0, "r_shoulder_abd": 10.0})
    skel = skel.transformed(body_to_camera_rotation(yaw=yaw), np.array([0.0, -150.0, 3000.0]))
    prims = figure_primitives(skel, replace(sample_style(rng), **style_changes), owner=0)
    color, depth, ids = rasterise(
        prims, camera=cam, background=np.zeros((300, 200, 3), np.float32), light=np.array([0.0, 0.0, -1.0])
    )
    owners = np.array([p.owner for p in prims] + [-1])
    uv, vis = joint_visibility(0, skel, cam, depth, ids, owners, [p.part for p in prims])
    return skel, uv, color, vis


def test_face_on_front_hair_on_back_and_visibility() -> None:
    hair = np.array([220.0, 20.0, 20.0])
    style = {"hair": hair, "hair_style": "short", "skin": np.array([200.0, 160.0, 120.0])}
    eye, nose, ear = JOINT_INDEX["left_eye"], JOINT_INDEX["nose"], JOINT_INDEX["left_ear"]
    _, uv, color, vis = _render_single(0.0, style)
    x, y = np.round(uv[eye]).astype(int)
    assert color[y, x].max() < 70, "the eye is drawn where the left-eye keypoint projects"
    assert vis[eye] == 2 and vis[JOINT_INDEX["right_eye"]] == 2 and vis[nose] == 2
    assert uv[eye, 0] > uv[JOINT_INDEX["right_eye"], 0], "a person facing us has their left on our right"
    _, uv, color, vis = _render_single(180.0, style)
    x, y = np.round(uv[eye]).astype(int)
    r, g, _ = color[y, x]
    assert r > 3 * g, "seen from behind, the head shows hair where the eyes would be"
    assert vis[eye] == 1 and vis[nose] == 1 and vis[ear] == 2
    assert uv[eye, 0] < uv[JOINT_INDEX["right_eye"], 0]


def test_feet_point_forward() -> None:
    rng = np.random.default_rng(1)
    skel = forward_kinematics(sample_body_shape(rng), {})
    for side in ("left", "right"):
        toe, heel = skel.joints[JOINT_INDEX[f"{side}_toe"]], skel.joints[JOINT_INDEX[f"{side}_heel"]]
        assert toe[2] - heel[2] > 0.1 * skel.shape.height  # body z is the facing direction


def test_min_people_sets_the_people_per_image(tmp_path):
    """min_people..max_people people per non-empty image (a person hidden below min_area pixels
    gets no annotation, so a few images may show fewer)."""
    import json
    from collections import Counter

    from src.synthetic.generate import ensure_synthetic_coco

    root = ensure_synthetic_coco(
        tmp_path / "multi", seed=5, num_train=0, num_val=16, min_people=3, max_people=5, empty_prob=0.0, crowd_prob=0.0
    )
    data = json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())
    counts = Counter(a["image_id"] for a in data["annotations"] if not a["iscrowd"])
    per_image = [counts.get(img["id"], 0) for img in data["images"]]
    assert max(per_image) <= 5
    assert sum(n >= 3 for n in per_image) >= 0.8 * len(per_image)
    with pytest.raises(ValueError, match="min_people"):
        ensure_synthetic_coco(tmp_path / "bad", num_train=1, num_val=1, min_people=5, max_people=4)
