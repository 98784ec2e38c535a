"""Steady video end to end: a 60-frame video of three stick figures on known, non-crossing paths
(one hidden for a few frames) goes through `src.predict` with a tiny top-down model and person
boxes from a file; results.json must give every person one track id over all their frames.
The ids are checked, not the pixels."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.inference import sources
from src.layouts import COCO17
from src.predict import predict
from src.visualization.skeletons import draw_keypoint_info
from tests.helpers import compose_run, random_checkpoint

FRAMES = 60
FPS = 15.0
SIZE = (192, 160)  # w, h
HIDDEN = range(25, 29)  # frames in which C is away (fewer than the default ttl)
#: A standing figure (COCO-17, x y) about 18 x 40 px around its centre.
FIGURE = np.array(
    [
        [0, -18], [-2, -19], [2, -19], [-4, -18], [4, -18], [-6, -11], [6, -11], [-8, -3], [8, -3],
        [-9, 4], [9, 4], [-4, 4], [4, 4], [-4, 12], [4, 12], [-4, 20], [4, 20],
    ],
    dtype=np.float64,
)  # fmt: skip
PAD = 4.0  # the person boxes enlarge the figure's extent by this many pixels on each side


def centre(name: str, f: int) -> tuple[float, float] | None:
    """Where person ``name`` stands in frame ``f``: A walks right along the top, B left along the
    bottom (they swap sides without meeting), C sways in the middle and leaves for a few frames."""
    if name == "A":
        return 20 + 150 * f / (FRAMES - 1), 25.0
    if name == "B":
        return 170 - 150 * f / (FRAMES - 1), 135.0
    if f in HIDDEN:
        return None
    return 96 + 10 * math.sin(2 * math.pi * f / FRAMES), 80.0


def box(c: tuple[float, float]) -> list[float]:
    lo, hi = FIGURE.min(axis=0) + c - PAD, FIGURE.max(axis=0) + c + PAD
    return [round(float(v), 2) for v in (*lo, *(hi - lo))]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("steady")
    video = work / "three_people.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    assert writer.isOpened()
    entries = []
    for f in range(FRAMES):
        image = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        for name in "ABC":
            c = centre(name, f)
            if c is None:
                continue
            keypoints = np.concatenate([FIGURE + c, np.ones((17, 1))], axis=1)
            image = draw_keypoint_info(image, keypoints, COCO17, radius=2, thickness=2)
            entries.append({"frame": f, "bbox": box(c), "score": 0.9, "category_id": 1})
        writer.write(image)
    writer.release()
    random.Random(0).shuffle(entries)  # frames out of order: the boxes are read by frame number
    boxes = work / "boxes.json"
    boxes.write_text(json.dumps(entries))
    ckpt = random_checkpoint("topdown", work / "topdown.ckpt", work)
    return {"work": work, "video": video, "boxes": boxes, "ckpt": ckpt}


def _run(scene: dict[str, Path], name: str, overrides: list[str]) -> Path:
    work = scene["work"]
    common = [f"ckpt_path={scene['ckpt']}", f"boxes={scene['boxes']}", "progress=false", "device=cpu"]
    return predict(compose_run("predict", [*common, *overrides], work / name, work / "data"))


def _who(entry: dict) -> str:
    """The person a result belongs to: the one whose box was given at that frame."""
    for name in "ABC":
        c = centre(name, entry["frame"])
        if c is not None and np.allclose(entry["bbox"], box(c), atol=0.02):
            return name
    raise AssertionError(f"no person has the box {entry['bbox']} in frame {entry['frame']}")


def test_a_60_frame_video_keeps_one_id_per_person(scene):
    # the random model's joint scores are near 0: smoothing.keypoint_thr=-1 lets every joint count
    overrides = [f"input={scene['video']}", "tracking.similarity=iou", "smoothing.keypoint_thr=-1", "batch_size=7"]
    out = _run(scene, "tracked", overrides)
    results = json.loads((out / "results.json").read_text())
    ids: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    frames: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    for entry in results:
        name = _who(entry)
        ids[name].append(entry["track_id"])
        frames[name].append(entry["frame"])
    assert {n: sorted(f) for n, f in frames.items()} == {
        "A": list(range(FRAMES)),
        "B": list(range(FRAMES)),
        "C": [f for f in range(FRAMES) if f not in HIDDEN],
    }
    assert {n: set(i) for n, i in ids.items()} == {"A": {0}, "B": {1}, "C": {2}}  # one id each, from 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracking"]["tracks"] == 3 and summary["tracking"]["similarity"] == "iou"
    assert summary["smoothing"]["fps"] == pytest.approx(FPS) and summary["smoothing"]["fps_from"] == "video"
    capture = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    capture.release()

    # without tracking: no ids, and the raw keypoints of the same model, which smoothing changed
    # from the second frame on (the first starts every filter at its raw sample)
    raw_out = _run(scene, "untracked", [f"input={scene['video']}", "track=false", "max_frames=12"])
    raw = json.loads((raw_out / "results.json").read_text())
    assert len(raw) == 36 and all("track_id" not in r for r in raw)
    assert json.loads((raw_out / "summary.json").read_text())["tracking"] is False
    smoothed = {(r["frame"], _who(r)): np.array(r["keypoints"]) for r in results}
    moved = []
    for r in raw:
        mine = smoothed[(r["frame"], _who(r))]
        np.testing.assert_array_equal(mine[2::3], r["keypoints"][2::3])  # scores as predicted
        moved.append(np.abs(mine - r["keypoints"]).max())
    frame_of = [r["frame"] for r in raw]
    assert max(m for m, f in zip(moved, frame_of) if f == 0) == 0
    assert min(m for m, f in zip(moved, frame_of) if f > 0) > 0


def test_a_video_without_frame_rate_smooths_at_30_and_says_so(scene, monkeypatch, caplog):
    opencv_capture = cv2.VideoCapture

    class NoFrameRate:
        """OpenCV's capture of the file, reporting frame rate 0 (wrapped: subclasses of OpenCV's
        classes can crash the interpreter when collected)."""

        def __init__(self, *args) -> None:
            self.capture = opencv_capture(*args)

        def get(self, prop: int) -> float:
            return 0.0 if prop == cv2.CAP_PROP_FPS else self.capture.get(prop)

        def __getattr__(self, name: str):
            return getattr(self.capture, name)

    monkeypatch.setattr(sources.cv2, "VideoCapture", NoFrameRate)
    with caplog.at_level(logging.WARNING, logger="src.predict"):
        out = _run(scene, "no_fps", [f"input={scene['video']}", "tracking.similarity=iou", "max_frames=10"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["smoothing"]["fps"] == sources.DEFAULT_FPS == 30.0
    assert summary["smoothing"]["fps_from"] == "default"
    assert any("reports no frame rate" in r.message and "30 frames per second" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tracking.similarity=euclid"], "similarity must be one of"),
        (["tracking.ttl=-2"], "ttl must be a whole number"),
        (["smoothing.beta=-1"], "beta must be >= 0"),
        (["track=false", "smooth=true"], "needs track=true"),
        (["fps=0"], "fps must be a frame rate > 0"),
        (["+tracking.speed=3"], r"unknown tracking option\(s\) \['speed'\]"),
    ],
)
def test_bad_tracking_and_smoothing_options_are_named(scene, overrides, message):
    with pytest.raises(ValueError, match=message):
        _run(scene, "bad", [f"input={scene['video']}", "max_frames=2", *overrides])
