"""src.predict and the Python API behind it (src.inference): images, folders, videos, person boxes
from a bottom-up detector, exported backends, and bad input reported rather than crashing.

The models are tiny networks with random weights (`random_checkpoint`): these tests check the
plumbing (every frame read once, written once, the same people from every backend); accuracy on
bottom-up boxes is a matter for `python -m src.eval ckpt_path=TOPDOWN.ckpt detector_ckpt=BOTTOMUP.ckpt`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.inference import People, Predictor
from src.inference.box_files import PersonBoxes
from src.inference.sources import Frame, Skipped, VideoFrames, open_input
from src.predict import predict
from src.synthetic.generate import ensure_synthetic_coco
from tests.helpers import TINY_SYNTHETIC, compose_run, random_checkpoint

FRAMES = 60
VIDEO_SIZE = (160, 128)  # w, h
# A bottom-up detector with random weights N(0, 0.2): its heatmaps peak above the official
# threshold, so it proposes a few (random) people per image, enough to drive the crop models.
DETECTOR = ("model.codec.max_num_people=3",)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("predict")


@pytest.fixture(scope="module")
def synthetic_images(work) -> list[Path]:
    root = work / "synthetic"
    ensure_synthetic_coco(root, num_train=12, num_val=6, seed=3, workers=1)
    return sorted(root.glob("images/*/*.jpg"))


@pytest.fixture(scope="module")
def video(work, synthetic_images) -> Path:
    """60 frames of the synthetic generator's images as an mp4 video at 12 frames per second."""
    path = work / "synthetic.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, VIDEO_SIZE)
    assert writer.isOpened()
    for i in range(FRAMES):
        writer.write(cv2.resize(cv2.imread(str(synthetic_images[i % len(synthetic_images)])), VIDEO_SIZE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def checkpoints(work) -> dict[str, Path]:
    return {
        "topdown": random_checkpoint("topdown", work / "topdown.ckpt", work),
        "pose3d": random_checkpoint("pose3d", work / "pose3d.ckpt", work),
        "bottomup": random_checkpoint("bottomup", work / "bottomup.ckpt", work, std=0.2, overrides=DETECTOR),
    }


def _run(work: Path, name: str, overrides: list[str]) -> Path:
    cfg = compose_run("predict", [*overrides, "progress=false", "device=cpu"], work / name, work / "data")
    return predict(cfg)


def _count_frames(path: Path) -> tuple[int, tuple[int, int], float]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    fps = capture.get(cv2.CAP_PROP_FPS)
    count, size = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        size = (frame.shape[1], frame.shape[0])
    capture.release()
    return count, size, fps


@pytest.mark.parametrize(
    ("model", "detector"), [("topdown", "bottomup"), ("bottomup", None), ("pose3d", "bottomup")], ids=str
)
def test_a_video_goes_through_every_paradigm(work, video, checkpoints, model, detector):
    overrides = [f"ckpt_path={checkpoints[model]}", f"input={video}", "batch_size=16"]
    if detector:
        overrides.append(f"detector_ckpt={checkpoints[detector]}")
    out = _run(work, f"video_{model}", overrides)

    count, size, fps = _count_frames(out / "annotated.mp4")
    assert (count, size) == (FRAMES, VIDEO_SIZE) and fps == pytest.approx(12.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == FRAMES and summary["skipped"] == []
    results = json.loads((out / "results.json").read_text())
    assert summary["people"] == len(results) > 0
    assert {r["frame"] for r in results} <= set(range(FRAMES)) and all("file_name" not in r for r in results)
    if model == "pose3d":
        joints = np.array([r["joints_3d"] for r in results])
        assert joints.shape[1:] == (18, 3) and np.allclose(joints[:, 0], 0.0)  # root-relative, mm
        assert all(r["root_relative"] and r["focal"] == VIDEO_SIZE[0] and r["root_depth"] > 0 for r in results)


def test_crop_models_on_detector_boxes_match_the_api(work, synthetic_images, checkpoints):
    """The CLI's results are those of the Python API called on the same arrays, and the API takes
    RGB or BGR, one image or a batch."""
    predictor = Predictor.load(checkpoints["topdown"], detector_ckpt=checkpoints["bottomup"])
    assert not predictor.needs_boxes and Predictor.load(checkpoints["topdown"]).needs_boxes
    bgr = [cv2.imread(str(p)) for p in synthetic_images[:3]]
    batch = predictor(bgr, color="bgr")
    single = predictor(bgr[0][:, :, ::-1].copy())
    assert isinstance(single, People) and len(single) == len(batch[0]) > 0
    np.testing.assert_allclose(single.keypoints, batch[0].keypoints, atol=1e-4)
    assert batch[0].boxes.shape == (len(batch[0]), 4) and batch[0].joints_3d is None
    # detector boxes lie inside the image
    h, w = bgr[0].shape[:2]
    assert (batch[0].boxes[:, :2] >= 0).all() and (batch[0].boxes[:, 0] + batch[0].boxes[:, 2] <= w - 1 + 1e-3).all()
    assert (batch[0].boxes[:, 1] + batch[0].boxes[:, 3] <= h - 1 + 1e-3).all()

    folder = work / "three"
    folder.mkdir()
    for p in synthetic_images[:3]:
        (folder / p.name).symlink_to(p)
    out = _run(
        work,
        "api_cli",
        [f"ckpt_path={checkpoints['topdown']}", f"detector_ckpt={checkpoints['bottomup']}", f"input={folder}"],
    )
    results = json.loads((out / "results.json").read_text())
    first = sorted((r for r in results if r["file_name"] == synthetic_images[0].name), key=lambda r: -r["score"])
    order = np.argsort(-batch[0].scores, kind="stable")
    assert len(first) == len(batch[0])
    np.testing.assert_allclose(
        [r["keypoints"] for r in first], batch[0].keypoints[order].reshape(len(order), -1), atol=0.01
    )
    assert len(list((out / "pictures").glob("*.jpg"))) == 3


def test_boxes_from_a_detection_file_for_images_and_frames(work, synthetic_images, checkpoints, video):
    folder = work / "boxes_images"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.jpg").symlink_to(synthetic_images[0])
    (folder / "b.jpg").symlink_to(synthetic_images[1])
    boxes = work / "boxes.json"
    boxes.write_text(
        json.dumps(
            [
                {"file_name": "sub/a.jpg", "bbox": [10, 10, 60, 120], "score": 0.9, "category_id": 1},
                {"file_name": "b.jpg", "bbox": [40, 20, 50, 100], "score": 0.8},
                {"file_name": "b.jpg", "bbox": [40, 20, 50, 100], "score": 0.8, "category_id": 2},  # not a person
                {"frame": 3, "bbox": [5, 5, 40, 90], "score": 0.7},
            ]
        )
    )
    out = _run(work, "boxes_images", [f"ckpt_path={checkpoints['topdown']}", f"input={folder}", f"boxes={boxes}"])
    results = json.loads((out / "results.json").read_text())
    assert sorted(r["file_name"] for r in results) == ["b.jpg", "sub/a.jpg"]
    assert (out / "pictures" / "sub" / "a.jpg").is_file()
    out = _run(
        work, "boxes_video", [f"ckpt_path={checkpoints['pose3d']}", f"input={video}", f"boxes={boxes}", "max_frames=8"]
    )
    results = json.loads((out / "results.json").read_text())
    assert [r["frame"] for r in results] == [3] and results[0]["bbox"] == [5, 5, 40, 90]
    assert _count_frames(out / "annotated.mp4")[0] == 8

    # without boxes and without a detector, a crop model is refused with what to give it
    with pytest.raises(ValueError, match="person boxes.*detector_ckpt"):
        _run(work, "no_boxes", [f"ckpt_path={checkpoints['topdown']}", f"input={folder}"])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"bbox": [1, 2, 3, 4]}, "expected a JSON list"),
        ([{"bbox": [1, 2, 3, 4]}], "names no image"),
        ([{"file_name": "a.jpg", "bbox": [1, 2, 3]}], "expected 4 finite numbers"),
        ([{"file_name": "a.jpg", "bbox": [1, 2, 3, "x"]}], "needs bbox"),
        ([{"file_name": "a.jpg", "bbox": [1, 2, 3, float("nan")]}], "expected 4 finite numbers"),
        ([], "no person boxes"),
    ],
)
def test_bad_box_files_name_the_file_and_entry(tmp_path, entries, message):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=message) as info:
        PersonBoxes(path)
    assert str(path) in str(info.value)


def test_folders_recurse_with_a_glob_and_skip_unreadable_files(work, synthetic_images, checkpoints):
    folder = work / "mixed"
    (folder / "deep" / "er").mkdir(parents=True)
    (folder / "x.jpg").symlink_to(synthetic_images[0])
    (folder / "deep" / "er" / "y.png").write_bytes(cv2.imencode(".png", cv2.imread(str(synthetic_images[1])))[1])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "deep" / "text.png").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")

    source = open_input(folder)
    assert len(source) == 4  # x.jpg, empty.jpg, deep/text.png, deep/er/y.png
    assert len(open_input(folder, glob="*.jpg")) == 2  # this folder only
    assert len(open_input(folder, glob="**/*.png")) == 2

    out = _run(work, "mixed", [f"ckpt_path={checkpoints['bottomup']}", f"input={folder}"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2
    assert sorted(s["name"] for s in summary["skipped"]) == ["deep/text.png", "empty.jpg"]
    assert all("cannot decode" in s["reason"] for s in summary["skipped"])
    assert sorted(p.relative_to(out / "pictures").as_posix() for p in (out / "pictures").rglob("*.jpg")) == [
        "deep/er/y.jpg",
        "x.jpg",
    ]


def test_inputs_that_cannot_be_read_are_clear_errors(tmp_path, checkpoints):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="no images matching"):
        open_input(tmp_path / "empty_dir")
    with pytest.raises(FileNotFoundError, match="input not found"):
        open_input(tmp_path / "missing.jpg")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="cannot open video"):
        open_input(tmp_path / "broken.mp4")
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(ValueError, match="not an image"):
        open_input(tmp_path / "data.csv")
    with pytest.raises(ValueError, match="cannot open webcam 99"):
        open_input("webcam:99")

    # checkpoints of other projects
    (tmp_path / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="cannot be read as a PyTorch checkpoint"):
        Predictor.load(tmp_path / "random.ckpt")
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "state_dict.pth")
    with pytest.raises(ValueError, match=r"not a checkpoint of src.train.*src.convert"):
        Predictor.load(tmp_path / "state_dict.pth")
    # arrays that are not images
    predictor = Predictor.load(checkpoints["bottomup"])
    with pytest.raises(ValueError, match=r"image 0: expected an \(H, W, 3\) uint8 array"):
        predictor(np.zeros((8, 8, 3), np.float32))


def test_the_command_line_reports_a_user_mistake_without_a_traceback(tmp_path):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "src.predict", f"ckpt_path={tmp_path / 'missing.ckpt'}", f"input={empty}"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 1
    assert "error: checkpoint not found" in done.stderr and "Traceback" not in done.stderr


class _FlakyCapture:
    """A VideoCapture stand-in whose frame 2 cannot be decoded."""

    def __init__(self, frames: int) -> None:
        self.frames, self.index, self.released = frames, 0, False

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 25.0, cv2.CAP_PROP_FRAME_COUNT: float(self.frames)}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.index += 1
        if self.index > self.frames or self.index == 3:
            return False, None
        return True, np.zeros((4, 6, 3), np.uint8)

    def release(self) -> None:
        self.released = True


def test_a_corrupt_frame_is_skipped_and_reported():
    capture = _FlakyCapture(5)
    items = list(VideoFrames(capture, "clip.mp4", kind="video", max_frames=None))
    assert [type(i) for i in items] == [Frame, Frame, Skipped, Frame, Frame]
    assert items[2].reason == "clip.mp4: frame 2 cannot be decoded" and items[3].index == 3
    assert capture.released


def test_exported_backends_find_the_same_people(work, synthetic_images, checkpoints):
    """ONNX (onnxruntime) and TorchScript files run through the same pre- and post-processing."""
    pytest.importorskip("onnxruntime")
    from src.export import export
    from src.tasks.loading import load_task

    images = [cv2.imread(str(p))[:, :, ::-1].copy() for p in synthetic_images[:4]]
    boxes = [np.array([[20, 10, 80, 150, 0.9], [100, 30, 60, 120, 0.8]], np.float32)] * len(images)
    for paradigm, ckpt in checkpoints.items():
        task = load_task(ckpt).eval()
        reference = Predictor(task)(images, boxes if task.needs_boxes else None)
        assert sum(len(p) for p in reference) > 0, paradigm
        for backend, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
            model_file = export(task, work / f"{paradigm}{suffix}", file_format=backend)
            exported = Predictor.load(backend=backend, model_file=model_file)
            got = exported(images, boxes if task.needs_boxes else None)
            for ref, new in zip(reference, got):
                assert len(ref) == len(new), (paradigm, backend)
                np.testing.assert_allclose(new.keypoints, ref.keypoints, atol=1e-3, err_msg=f"{paradigm} {backend}")
                np.testing.assert_allclose(new.scores, ref.scores, atol=1e-4)
                if ref.joints_3d is not None:
                    np.testing.assert_allclose(new.joints_3d, ref.joints_3d, atol=0.05)
    # the command line with an exported file
    out = _run(
        work, "onnx_cli", ["backend=onnx", f"model_file={work / 'bottomup.onnx'}", f"input={synthetic_images[0]}"]
    )
    assert len(json.loads((out / "results.json").read_text())) == len(
        Predictor.load(checkpoints["bottomup"])(images[0])
    )
    with pytest.raises(ValueError, match="needs model_file"):
        Predictor.load(backend="onnx")


def test_eval_on_boxes_from_a_bottom_up_checkpoint(work, checkpoints):
    """src.eval detector_ckpt=...: the crop model is evaluated on the detector's validation boxes."""
    from src.eval import evaluate

    data_dir = work / "eval_data"
    overrides = [f"ckpt_path={checkpoints['topdown']}", f"detector_ckpt={checkpoints['bottomup']}", *TINY_SYNTHETIC]
    metrics = evaluate(compose_run("eval", overrides, work / "eval_det", data_dir))
    boxes = json.loads((work / "eval_det" / "detector_boxes.json").read_text())
    images = json.loads((data_dir / "synthetic" / "annotations" / "person_keypoints_val2017.json").read_text())
    assert {b["image_id"] for b in boxes} <= {i["id"] for i in images["images"]} and len(boxes) > 0
    assert all(b["bbox"][2] > 0 and b["bbox"][3] > 0 and b["category_id"] == 1 for b in boxes)
    assert 0.0 <= metrics["val/AP"] <= 1.0
    bad = [f"ckpt_path={checkpoints['bottomup']}", f"detector_ckpt={checkpoints['bottomup']}", *TINY_SYNTHETIC]
    with pytest.raises(ValueError, match="finds people itself"):
        evaluate(compose_run("eval", bad, work / "eval_bad", data_dir))
