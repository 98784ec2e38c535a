"""The synthetic MuCo-3DHP and MuPoTS-3D datasets (3DMPPE layouts): files, projection, depths,
identity across frames, determinism, caching, the direct sequence renderer and the readers."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from src.layouts import MUCO21, MUPOTS17
from src.readers.muco import MuCoReader
from src.readers.mupots import MuPoTSReader
from src.synthetic import muco_writer, mupots_writer
from src.synthetic.figure import JOINT_NAMES, layout_indices
from src.synthetic.muco_writer import MuCoParams, ensure_synthetic_muco
from src.synthetic.mupots_writer import MuPoTSParams, ensure_synthetic_mupots, render_sequence, sequence_plan
from src.synthetic.params import COCOParams
from src.synthetic.readers import SyntheticMuCoReader, SyntheticMuPoTSReader

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
SIZE = (64, 64)
ROOT = MUCO21.keypoint_names.index("pelvis")  # 14 in both layouts
MUCO = {"seed": 3, "num_images": 4, "num_val": 2, "image_size": SIZE, "min_people": 2, "max_people": 3}
MUPOTS = {"seed": 3, "num_sequences": 1, "frames": 3, "image_size": SIZE, "min_people": 2, "max_people": 3}
# segments of fixed length in the figure (the neck bends, so head - thorax is left out)
BONES = [
    tuple(MUPOTS17.keypoint_names.index(f"{side}_{joint}") for joint in pair)
    for side in ("left", "right")
    for pair in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))
]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def muco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_muco(tmp_path_factory.mktemp("muco") / "ds", workers=1, **MUCO)


@pytest.fixture(scope="module")
def mupots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_mupots(tmp_path_factory.mktemp("mupots") / "ds", workers=1, **MUPOTS)


def _check_projection(images: dict[int, tuple[np.ndarray, np.ndarray]], annotations: list[dict]) -> None:
    """keypoints_img is the pinhole projection of keypoints_cam with the image's f, c (0.01 px)."""
    for ann in annotations:
        f, c = images[ann["image_id"]]
        cam, uv = np.array(ann["keypoints_cam"]), np.array(ann["keypoints_img"])
        assert (cam[:, 2] > 1000).all()
        np.testing.assert_allclose(uv, f * cam[:, :2] / cam[:, 2:] + c, atol=0.01, rtol=0)


def _check_boxes_and_flags(annotations: list[dict], size: tuple[int, int], joints: int) -> None:
    w, h = size
    for ann in annotations:
        uv = np.array(ann["keypoints_img"])
        vis = ann["keypoints_vis"]
        assert len(vis) == joints and all(isinstance(v, bool) for v in vis)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        assert not (np.array(vis) & ~inside).any(), "a visible joint lies inside the image"
        x, y, bw, bh = ann["bbox"]
        assert all(isinstance(v, int) for v in ann["bbox"]) and bw > 0 and bh > 0
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h


# ------------------------------------------------------------------------------------- layouts
def test_layouts_map_onto_the_figure() -> None:
    assert [JOINT_NAMES[i] for i in layout_indices("muco21")] == list(MUCO21.keypoint_names)
    assert list(layout_indices("mupots17")) == list(layout_indices("muco21")[:17])


# ------------------------------------------------------------------------------------- MuCo-3DHP
def test_muco_files_parse(muco: Path) -> None:
    manifest = _load(muco / muco_writer.MANIFEST)
    assert manifest["generator"] == muco_writer.GENERATOR and manifest["params"]["num_images"] == 4
    train, val = _load(muco / "data/MuCo-3DHP.json"), _load(muco / "data/MuCo-3DHP_val.json")
    assert manifest["splits"] == {
        "train": {"images": 4, "annotations": len(train["annotations"])},
        "val": {"images": 2, "annotations": len(val["annotations"])},
    }
    for data, count in ((train, 4), (val, 2)):
        assert set(data) == {"images", "annotations"} and len(data["images"]) == count
        for image in data["images"]:
            assert set(image) == {"id", "file_name", "width", "height", "f", "c"}
            assert (image["width"], image["height"]) == SIZE and len(image["f"]) == len(image["c"]) == 2
            pixels = cv2.imread(str(muco / "data" / image["file_name"]))
            assert pixels is not None and pixels.shape == (SIZE[1], SIZE[0], 3)
        ids = [a["id"] for a in data["annotations"]]
        assert len(set(ids)) == len(ids) and {a["image_id"] for a in data["annotations"]} <= {
            i["id"] for i in data["images"]
        }
        for ann in data["annotations"]:
            assert set(ann) == {"id", "image_id", "keypoints_cam", "keypoints_img", "keypoints_vis", "bbox"}
            assert np.shape(ann["keypoints_cam"]) == (21, 3) and np.shape(ann["keypoints_img"]) == (21, 2)
        _check_boxes_and_flags(data["annotations"], SIZE, 21)
        _check_projection({i["id"]: (np.array(i["f"]), np.array(i["c"])) for i in data["images"]}, data["annotations"])
    assert train["images"][0]["file_name"].startswith("augmented_set/")
    assert {i["id"] for i in train["images"]}.isdisjoint(i["id"] for i in val["images"])
    # the validation stream is not the training one
    first = [cv2.imread(str(muco / "data" / d["images"][0]["file_name"])) for d in (train, val)]
    assert np.abs(first[0].astype(int) - first[1]).mean() > 5


def test_muco_people_stand_at_clearly_different_depths(muco: Path) -> None:
    data = _load(muco / "data/MuCo-3DHP.json")
    roots: dict[int, list[np.ndarray]] = {}
    for ann in data["annotations"]:
        roots.setdefault(ann["image_id"], []).append(np.array(ann["keypoints_cam"][ROOT]))
    assert sum(len(r) >= 2 for r in roots.values()) >= 3
    for people in roots.values():
        assert all(2000 <= r[2] <= 8000 for r in people)
        for a, b in combinations(people, 2):
            assert abs(a[2] - b[2]) > 500, "two people of an image stand at clearly different depths"
    intrinsics = {tuple(i["f"]) for i in data["images"]}
    assert len(intrinsics) == len(data["images"]), "every image has its own camera"


def test_muco_reader_reads_both_files(muco: Path) -> None:
    reader = SyntheticMuCoReader(root=muco, synthetic=MUCO, val_file="data/MuCo-3DHP_val.json", mix_2d=False)
    assert isinstance(reader, MuCoReader) and reader.name == "synthetic_muco"
    reader.prepare()  # the cache matches: nothing is generated
    counts = {}
    for split in ("train", "val"):
        records = reader.load_records(split, keypoint_info=MUCO21, aspect_ratio=1.0, training=split == "train")
        counts[split] = len(records)
        assert all(r["joints_cam"].shape == (21, 3) and r["root_depth"] > 1500 for r in records)
    people = len(_load(muco / "data/MuCo-3DHP.json")["annotations"])
    assert counts["val"] > 0 and counts["train"] >= people - 1  # the roots of an image are kept apart


# ------------------------------------------------------------------------------------- MuPoTS-3D
def test_mupots_files_parse(mupots: Path) -> None:
    manifest = _load(mupots / mupots_writer.MANIFEST)
    assert manifest["params"]["fps"] == 10.0 and manifest["splits"]["test"]["fps"] == 10.0
    data = _load(mupots / "data/MuPoTS-3D.json")
    assert set(data) == {"images", "annotations"}
    assert [i["file_name"] for i in data["images"]] == [f"TS1/img_{t:06d}.jpg" for t in range(3)]
    for image in data["images"]:
        assert set(image) == {"id", "file_name", "width", "height", "intrinsic"}
        assert len(image["intrinsic"]) == 4 and (image["width"], image["height"]) == SIZE
        assert (mupots / "data/MultiPersonTestSet" / image["file_name"]).is_file()
    assert len({tuple(i["intrinsic"]) for i in data["images"]}) == 1, "one fixed camera per sequence"
    keys = {"id", "image_id", "keypoints_cam", "keypoints_img", "keypoints_vis", "bbox", "is_valid", "person_id"}
    assert all(set(a) == keys and np.shape(a["keypoints_cam"]) == (17, 3) for a in data["annotations"])
    assert all(isinstance(a["is_valid"], bool) for a in data["annotations"])
    cameras = {i["id"]: (np.array(i["intrinsic"][:2]), np.array(i["intrinsic"][2:])) for i in data["images"]}
    _check_projection(cameras, data["annotations"])
    _check_boxes_and_flags([a for a in data["annotations"] if a["is_valid"]], SIZE, 17)


def test_mupots_identity_is_stable_across_frames(mupots: Path) -> None:
    data = _load(mupots / "data/MuPoTS-3D.json")
    frames: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        frames.setdefault(ann["image_id"], []).append(ann)
    people = [[a["person_id"] for a in anns] for anns in frames.values()]
    assert len(people) == 3 and people[0] in ([0, 1], [0, 1, 2]) and all(p == people[0] for p in people)
    joints = np.array([[a["keypoints_cam"] for a in anns] for anns in frames.values()])  # (T, P, 17, 3)
    roots = joints[:, :, ROOT]
    assert len({round(float(z), -2) for z in roots[1, :, 2]}) == roots.shape[1], "people at different depths"
    bones = np.stack([np.linalg.norm(joints[..., a, :] - joints[..., b, :], axis=-1) for a, b in BONES], -1)
    np.testing.assert_allclose(bones, np.broadcast_to(bones[:1], bones.shape), atol=0.01)  # the same bodies
    for t in range(2):
        step = np.linalg.norm(roots[t + 1][:, None] - roots[t][None], axis=-1)  # (P, P) next x this
        assert (step.diagonal() < 300).all() and (step.argmin(axis=1) == np.arange(len(step))).all()


def test_mupots_appearance_is_stable_and_matches_the_files(mupots: Path) -> None:
    clip = render_sequence(MUPOTS["seed"], 1, frames=3, image_size=SIZE)
    params = MuPoTSParams.from_options(MUPOTS)
    plan = sequence_plan(mupots_writer.sequence_spec(mupots_writer.mupots_generation_params(params), 1))
    for figures in plan.figures[1:]:
        assert [f.style for f in figures] == [f.style for f in plan.figures[0]]
        assert [f.skeleton.shape for f in figures] == [f.skeleton.shape for f in plan.figures[0]]
    for p in range(clip.valid.shape[1]):
        for t in range(2):
            a, b = clip.masks[t, p], clip.masks[t + 1, p]
            if a.sum() >= 20 and b.sum() >= 20:
                shift = np.median(clip.frames[t][a], axis=0) - np.median(clip.frames[t + 1][b], axis=0)
                assert np.abs(shift).max() < 40, "a person keeps their colours"
    data = _load(mupots / "data/MuPoTS-3D.json")
    written = np.array([a["keypoints_cam"] for a in data["annotations"]]).reshape(clip.joints_cam.shape)
    np.testing.assert_array_equal(written, clip.joints_cam)
    assert (np.array([a["is_valid"] for a in data["annotations"]]).reshape(clip.valid.shape) == clip.valid).all()
    for t in range(3):
        jpeg = cv2.imread(str(mupots / "data/MultiPersonTestSet" / f"TS1/img_{t:06d}.jpg"))[:, :, ::-1]
        assert np.abs(jpeg.astype(int) - clip.frames[t]).mean() < 8  # JPEG noise only
    assert (clip.person_ids == np.arange(clip.valid.shape[1])).all()


def test_mupots_reader_reads_the_valid_people(mupots: Path) -> None:
    reader = SyntheticMuPoTSReader(root=mupots, synthetic=MUPOTS)
    assert isinstance(reader, MuPoTSReader) and reader.name == "synthetic_mupots"
    reader.prepare()
    records = reader.load_records("val", keypoint_info=MUPOTS17, aspect_ratio=1.0, training=False)
    valid = sum(a["is_valid"] for a in _load(mupots / "data/MuPoTS-3D.json")["annotations"])
    assert 0 < len(records) <= valid and {r["sequence"] for r in records} == {1}


def test_render_sequence_honours_depths() -> None:
    depths = (2500.0, 4500.0, 6500.0)
    clip = render_sequence(1, 2, depths_mm=depths, frames=3, image_size=SIZE)
    assert clip.frames.shape == (3, SIZE[1], SIZE[0], 3) and clip.frames.dtype == np.uint8
    assert clip.joints_cam.shape == (3, 3, 17, 3) and clip.joints_img.shape == (3, 3, 17, 2)
    np.testing.assert_allclose(clip.joints_cam[1, :, ROOT, 2], depths, atol=0.01)  # the middle frame
    assert (np.abs(clip.joints_cam[:, :, ROOT, 2] - depths).max()) < 300
    two = render_sequence(1, 2, people=2, frames=1, image_size=SIZE, layout="muco21")
    assert two.joints_cam.shape == (1, 2, 21, 3)
    with pytest.raises(ValueError, match="depths_mm"):
        render_sequence(1, 2, people=2, depths_mm=depths, frames=1, image_size=SIZE)


# ------------------------------------------------------------------------------------- both
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_bytes_for_the_same_parameters(tmp_path: Path, muco: Path, mupots: Path) -> None:
    a = _files(ensure_synthetic_mupots(tmp_path / "mupots", workers=2, **MUPOTS))
    assert a == _files(mupots)
    assert _files(ensure_synthetic_muco(tmp_path / "muco", workers=1, **MUCO)) == _files(muco)
    # 64 images: cache.parallel_map uses a process pool with 2 workers
    bigger = {**MUCO, "num_images": 62}  # with num_val 2
    one = _files(ensure_synthetic_muco(tmp_path / "one", workers=1, **bigger))
    two = _files(ensure_synthetic_muco(tmp_path / "two", workers=2, **bigger))
    assert one == two and len(one) == 64 + 3  # the images, two annotation files, the manifest
    assert _load(tmp_path / "one/data/MuCo-3DHP_val.json") == _load(muco / "data/MuCo-3DHP_val.json")


@pytest.mark.parametrize(
    ("module", "ensure", "options", "change"),
    [
        (muco_writer, ensure_synthetic_muco, {**MUCO, "num_images": 1, "num_val": 1}, {"max_people": 2}),
        (mupots_writer, ensure_synthetic_mupots, {**MUPOTS, "frames": 1}, {"fps": 25.0}),
    ],
)
def test_cache_hit_and_parameter_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module, ensure, options, change
):
    root = ensure(tmp_path / "ds", workers=1, **options)
    stamp = (root / module.MANIFEST).read_text()

    def boom(*args, **kwargs):
        raise AssertionError("a matching cache must not be regenerated")

    with monkeypatch.context() as m:
        m.setattr(module, "_write_dataset", boom)
        assert ensure(root, workers=2, **options) == root
    ensure(root, workers=1, **{**options, **change})
    manifest = _load(root / module.MANIFEST)
    assert (root / module.MANIFEST).read_text() != stamp
    assert all(manifest["params"][k] == v for k, v in change.items())


def test_parameters_are_checked_and_configs_build_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="min_people"):
        ensure_synthetic_muco(tmp_path / "x", min_people=5, max_people=4)
    with pytest.raises(ValueError, match="unknown"):
        ensure_synthetic_mupots(tmp_path / "x", people=3)
    assert not (tmp_path / "x").exists()
    muco = OmegaConf.load(CONF / "synthetic_muco.yaml").reader
    assert MuCoParams.from_options(muco.synthetic) == MuCoParams()
    COCOParams.from_options(muco.extra_2d.synthetic)
    assert MuPoTSParams.from_options(OmegaConf.load(CONF / "synthetic_mupots.yaml").reader.synthetic) == MuPoTSParams()
    mupots_writer.main(["--root", str(tmp_path / "cli"), "--frames", "1", "--image-size", "32", "32", "--workers", "1"])
    assert "4 images" in capsys.readouterr().out and (tmp_path / "cli/data/MultiPersonTestSet/TS4").is_dir()
