"""benchmarks.tracking_video and benchmarks.bench_steady: the scoring on known answers, and both
scripts end to end on tiny random checkpoints and a short video (no figure is asserted but the
bookkeeping)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_steady, tracking_video
from benchmarks.common import write_video
from src.synthetic.tracking_video import render_tracking_video
from tests.helpers import docs_results_hook, random_checkpoint


@pytest.fixture(scope="module")
def clip():
    return render_tracking_video(1, frames=30, away_frames=4)


def oracle(clip, ids=None):
    """results.json entries of a perfect tracker: the true keypoints of the people present, score 1,
    track id = ``ids[t][p]`` (default: the person's row)."""
    out = []
    for t in range(len(clip.frames)):
        for p in np.flatnonzero(clip.present[t]).tolist():
            xy = clip.keypoints[t, p]
            flat = np.concatenate([xy, np.ones((17, 1))], axis=1).reshape(-1).tolist()
            track = p if ids is None else ids[t][p]
            out.append(
                {"image_id": t, "frame": t, "category_id": 1, "keypoints": flat, "score": 1.0, "track_id": track}
            )
    return out


def test_a_perfect_tracker_scores_perfectly(clip):
    figures = tracking_video.evaluate(clip, {"raw": oracle(clip), "smoothed": oracle(clip)}, 0.5)
    raw = figures["tracking"]["raw"]
    assert raw["mota"] == 1.0 and raw["id_switches"] == 0 and raw["misses"] == raw["false_positives"] == 0
    assert raw["matches"] == raw["ground_truth"] == clip.present.sum() and raw["tracks"] == clip.people
    assert figures["ap"]["raw"] == pytest.approx(1.0) and figures["ap_cost"] == pytest.approx(0.0)
    jitter = figures["jitter_px_per_frame2"]
    assert jitter["raw"] == pytest.approx(jitter["ground_truth"]) and figures["jitter_ratio"] == pytest.approx(1.0)
    assert jitter["joint_triples"] > 100
    assert figures["aims"]["non_crossing_id_switches"]["met"] and not figures["aims"]["jitter_ratio"]["met"]


def test_switches_are_counted_per_group_and_smoothing_is_scored(clip):
    """The crossers swap ids after the crossing (two switches, both crossing), the re-entering person
    comes back under a new id (one switch, of a person who never crosses); the raw run has 2 px of
    noise on every joint, the smoothed one none: its jitter is the truth's and its AP higher."""
    frames = len(clip.frames)
    a, b = clip.people_of("cross")
    (r,) = clip.people_of("reenter")
    gap_end = np.flatnonzero(clip.present[:, r])
    back = gap_end[np.argmax(np.diff(gap_end)) + 1]
    ids = []
    for t in range(frames):
        row = {p: p for p in range(clip.people)}
        if t >= frames // 2 + 3:
            row[a], row[b] = b, a
        if t >= back:
            row[r] = 9
        ids.append(row)
    shaky = oracle(clip, ids)
    rng = np.random.default_rng(0)
    for entry in shaky:  # 2 px of noise on every coordinate
        kp = np.asarray(entry["keypoints"]).reshape(17, 3)
        kp[:, :2] += rng.normal(0, 2.0, (17, 2))
        entry["keypoints"] = kp.reshape(-1).tolist()
    figures = tracking_video.evaluate(clip, {"raw": shaky, "smoothed": oracle(clip, ids)}, 0.5)
    groups = figures["tracking"]["raw"]["id_switches_by_group"]
    assert groups == {"never_cross": 1, "never_cross_in_view": 0, "cross": 2, "reenter": 1}
    assert figures["tracking"]["raw"]["id_switches"] == 3
    jitter = figures["jitter_px_per_frame2"]
    assert jitter["raw"] > 3 * jitter["smoothed"] and jitter["smoothed"] == pytest.approx(jitter["ground_truth"])
    assert figures["jitter_ratio"] < 0.5 and figures["aims"]["jitter_ratio"]["met"]
    assert not figures["aims"]["non_crossing_id_switches"]["met"]
    assert figures["ap"]["smoothed"] == pytest.approx(1.0) and figures["ap_cost"] < 0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    topdown = random_checkpoint("topdown", folder / "topdown.ckpt", folder)
    bottomup = random_checkpoint("bottomup", folder / "bottomup.ckpt", folder)
    return topdown, bottomup


def test_tracking_video_end_to_end(checkpoints, tmp_path):
    topdown, _ = checkpoints
    keep = tmp_path / "work"
    args = ["--pose-ckpt", str(topdown), "--frames", "20", "--away-frames", "4", "--sweep", "--keep", str(keep)]
    record = tracking_video.main([*args, "--out", str(tmp_path)])
    path = Path(record["_file"])
    assert path.parent == tmp_path and path.name.startswith("truth-")
    saved = json.loads(path.read_text())
    assert saved["boxes"] == "truth" and saved["video"]["frames"] == 20
    assert saved["video"]["roles"] == ["cross", "cross", "reenter", "steady"]
    assert sorted(saved["video"]["never_cross"]) == [2, 3] and saved["video"]["meets"][0] == [1]
    raw, smoothed = saved["runs"]["raw"], saved["runs"]["smoothed"]
    assert "track=true smooth=false" in raw["command"] and "track=true smooth=true" in smoothed["command"]
    assert "boxes=<tmp>/boxes.json" in raw["command"] and raw["smoothing"] is False
    assert smoothed["smoothing"]["fps"] == 25.0 and smoothed["smoothing"]["fps_from"] == "video"
    # the truth boxes give one prediction per person present
    assert raw["people"] == smoothed["people"] == saved["video"]["ground_truth_instances"]
    for name in ("raw", "smoothed"):
        t = saved["tracking"][name]
        assert t["predictions"] == raw["people"] and t["ground_truth"] == raw["people"]
        assert t["matches"] + t["misses"] == t["ground_truth"]
        assert math.isclose(t["mota"], 1 - (t["misses"] + t["false_positives"] + t["id_switches"]) / t["ground_truth"])
    assert set(saved["aims"]) == {"non_crossing_id_switches", "jitter_ratio", "ap_cost"}
    # the sweep re-smooths the raw run as src.predict does: its default setting gives the smoothed run
    raw_results = json.loads((keep / "raw" / "results.json").read_text())
    smoothed_results = json.loads((keep / "smoothed" / "results.json").read_text())
    again = tracking_video.resmooth(raw_results, 25.0, min_cutoff=1.0, beta=0.05)
    assert [e["track_id"] for e in again] == [e["track_id"] for e in smoothed_results]
    assert np.allclose([e["keypoints"] for e in again], [e["keypoints"] for e in smoothed_results], atol=0.02)
    assert len(saved["sweep"]) == len(tracking_video.SWEEP)
    assert all(set(r) >= {"min_cutoff", "beta", "jitter_ratio", "ap", "ap_cost", "mota"} for r in saved["sweep"])
    page = docs_results_hook().render_tracking_video(tmp_path)
    assert "ground-truth boxes" in page and f"{saved['tracking']['raw']['mota']:.3f}" in page
    assert "smoothed afresh with other One-Euro settings" in page


def test_bench_steady_end_to_end(checkpoints, tmp_path):
    topdown, bottomup = checkpoints
    args = ["--frames", "5", "--people", "4", "--pose-ckpt", str(topdown), "--detector-ckpt", str(bottomup)]
    result = bench_steady.main([*args, "--video-frames", "20", "--out", str(tmp_path)])
    step = result["step"]
    assert step["people"] == 4 and step["tracks"] == 4 and step["frames"] == 5
    assert step["tracking_and_smoothing"]["median_ms"] > 0
    pipe = result["pipeline"]
    assert pipe["frames"] == 20 and pipe["boxes"] == "detector" and pipe["frames_per_s"] > 0
    assert set(pipe["stage_share"]) == set(bench_steady.STAGES)
    assert 0.9 < sum(pipe["stage_share"].values()) + pipe["untimed_share"] < 1.1
    saved = json.loads(Path(result["_file"]).read_text())
    assert saved["pipeline"]["stage_ms_per_frame"] == pytest.approx(pipe["stage_ms_per_frame"])
    page = docs_results_hook().render_steady_speed(tmp_path)
    assert "| detector |" in page and "frames/s" in page


def test_pipeline_with_truth_boxes(checkpoints, tmp_path):
    topdown, _ = checkpoints
    clip = render_tracking_video(2, frames=20, away_frames=4)
    video = write_video(clip.frames, clip.fps, tmp_path / "v.mp4")
    boxes = [clip.boxes[t][clip.present[t]] for t in range(20)]
    pipe = bench_steady.measure_pipeline(topdown, None, video, boxes=boxes, batch_size=4)
    assert pipe["boxes"] == "truth" and "detector" not in pipe["stage_share"]
    assert pipe["people"] == clip.present.sum()
