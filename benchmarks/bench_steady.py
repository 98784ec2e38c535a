"""Steady video speed: tracking + smoothing per frame, and the video pipeline's time by stage.

    python -m benchmarks.bench_steady [--people 10] [--frames 400]
        [--pose-ckpt TOPDOWN.ckpt --detector-ckpt BOTTOMUP.ckpt [--video-frames 100]]
        [--out benchmarks/results/steady]

* **step** (`measure_step`; also a section of `make bench`): the milliseconds per frame of
  `SteadyVideo` (tracking, then One-Euro smoothing, as ``src.predict`` applies them) on ``--people``
  synthetic people walking with noisy joints, each frame's `People` made beforehand; median and
  90th percentile over ``--frames`` frames, and the same for the tracker and the smoother alone.
  The aim: under 1 ms per frame for 10 people.
* **pipeline** (`measure_pipeline`, with checkpoints): the loop of ``src.predict`` on the synthetic
  tracking video (`src.synthetic.tracking_video`, written as an MP4) in one process, each stage
  timed: decode (reading a frame and its colour conversion), detector (the bottom-up model's
  boxes), pose (the crops through the pose model), tracking, smoothing, drawing (`annotate`),
  encode (the annotated frame into an MP4) and results (the results.json entries); frames / s of
  the whole loop and each stage's share of its time. Models are loaded, and their memory format
  chosen as ``src.predict`` chooses it, before the clock starts.

Writes ``<out>/<machine>-<date>.json``. Timings on a shared machine vary: compare figures of one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import log_line, machine_info, results_stem, write_json, write_video
from src.inference.predictor import People
from src.inference.steady import SteadyVideo
from src.layouts import COCO17

REPO = Path(__file__).resolve().parents[1]
AIM_MS = 1.0
PEOPLE = 10  # people per frame of the timed step (the aim's)
STAGES = ("decode", "detector", "pose", "tracking", "smoothing", "drawing", "encode", "results")


def synthetic_people(people: int, frames: int, *, seed: int = 0, size: tuple[int, int] = (1280, 720)) -> list[People]:
    """``frames`` frames of ``people`` people (K = 17 joints) walking across a ``size`` (w, h) image
    at 1-4 px per frame, each a fixed random pose of about 120 px with 1.5 px of noise per joint and
    scores in [0.2, 1] (some under the smoothing threshold)."""
    rng = np.random.default_rng(seed)
    w, h = size
    k = len(COCO17.keypoint_names)
    pose = rng.normal(0.0, 1.0, (people, k, 2)) * [20.0, 45.0]  # (P, K, 2) offsets around the centre
    start = np.stack([rng.uniform(0.1, 0.9, people) * w, rng.uniform(0.2, 0.8, people) * h], axis=1)
    speed = rng.uniform(1.0, 4.0, (people, 1)) * rng.choice([-1.0, 1.0], (people, 2))
    out = []
    for t in range(frames):
        xy = start[:, None] + speed[:, None] * t + pose + rng.normal(0.0, 1.5, (people, k, 2))
        scores = rng.uniform(0.2, 1.0, (people, k, 1))
        keypoints = np.concatenate([xy, scores], axis=-1).astype(np.float32)
        lo, hi = xy.min(axis=1), xy.max(axis=1)
        boxes = np.concatenate([lo, hi - lo], axis=1).astype(np.float32)
        order = rng.permutation(people)  # detectors list people in any order
        out.append(People(keypoints=keypoints[order], scores=scores.mean(axis=(1, 2))[order], boxes=boxes[order]))
    return out


def _ms(times: list[float]) -> dict[str, float]:
    values = np.asarray(times) * 1000.0
    return {
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "mean_ms": float(values.mean()),
        "max_ms": float(values.max()),
    }


def measure_step(
    *, people: int = PEOPLE, frames: int = 400, warmup: int = 20, fps: float = 30.0, seed: int = 0
) -> dict:
    """Milliseconds per frame of `SteadyVideo` (tracking + smoothing), of its tracker alone and of
    its smoother alone, on `synthetic_people` (default options of conf/predict.yaml)."""
    clip = synthetic_people(people, frames + warmup, seed=seed)
    whole = SteadyVideo.create(COCO17, fps=fps)
    alone = SteadyVideo.create(COCO17, fps=fps)
    timings: dict[str, list[float]] = {"tracking_and_smoothing": [], "tracking": [], "smoothing": []}
    tracks = []
    for t, found in enumerate(clip):
        t0 = time.perf_counter()
        steady = whole(found, frame=t)
        t1 = time.perf_counter()
        ids = alone.tracker.update(found.keypoints, found.boxes, frame=t)
        t2 = time.perf_counter()
        alone.smoother(found.keypoints, ids, frame=t)
        t3 = time.perf_counter()
        tracks.append(steady.track_ids)
        if t >= warmup:
            timings["tracking_and_smoothing"].append(t1 - t0)
            timings["tracking"].append(t2 - t1)
            timings["smoothing"].append(t3 - t2)
    out: dict[str, Any] = {"people": people, "frames": frames, "warmup": warmup, "fps": fps}
    out.update({name: _ms(values) for name, values in timings.items()})
    out["tracks"] = int(whole.tracker.next_id)  # = people when every person kept their id
    out["aim_ms"] = AIM_MS
    out["aim_met"] = bool(out["tracking_and_smoothing"]["median_ms"] < AIM_MS)
    return out


def measure_pipeline(
    pose_ckpt: str | Path,
    detector_ckpt: str | Path | None,
    video: Path,
    *,
    boxes: list[np.ndarray] | None = None,
    batch_size: int = 8,
    score_thr: float = 0.2,
) -> dict:
    """The ``src.predict`` loop on ``video`` in one process, stage by stage (module docstring).
    Crop models take their boxes from ``detector_ckpt`` or, without one, from ``boxes`` (B, 4|5)
    per frame."""
    import cv2

    from src import runner
    from src.inference.outputs import annotate, result_entries
    from src.inference.predictor import Predictor, as_image_list
    from src.inference.sources import open_input

    t0 = time.perf_counter()
    predictor = Predictor.load(pose_ckpt, detector_ckpt=detector_ckpt, device="cpu", batch_size=batch_size)
    common = {"enabled": True, "batch_size": batch_size, "accelerator": "cpu"}
    runner.resolve_task(predictor.task, **common)
    if predictor.detector is not None:
        runner.resolve_task(predictor.detector.task, **common)
    load_s = time.perf_counter() - t0
    source = open_input(str(video))
    steady = SteadyVideo.create(predictor.keypoint_info, fps=source.fps)
    seconds = dict.fromkeys(STAGES, 0.0)
    frames, people_found = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        writer = None
        iterator = iter(source)
        start = time.perf_counter()
        while True:
            pending, images = [], []
            for _ in range(batch_size):  # decode a batch, as src.predict gathers one
                t = time.perf_counter()
                item = next(iterator, None)
                if item is None:
                    seconds["decode"] += time.perf_counter() - t
                    break
                images += as_image_list([item.image], color="bgr")[0]
                pending.append(item)
                seconds["decode"] += time.perf_counter() - t
            if not pending:
                break
            t = time.perf_counter()
            if predictor.detector is not None:
                crops = predictor.detect(images)
            elif predictor.task.needs_boxes:
                crops = [boxes[f.index] for f in pending]
            else:
                crops = None
            seconds["detector"] += time.perf_counter() - t
            t = time.perf_counter()
            found = predictor(images, crops, color="rgb")
            seconds["pose"] += time.perf_counter() - t
            for frame, people in zip(pending, found):
                t = time.perf_counter()
                ids = steady.tracker.update(people.keypoints, people.boxes, frame=frame.index)
                t1 = time.perf_counter()
                smoothed = steady.smoother(people.keypoints, ids, frame=frame.index)
                people = People(
                    keypoints=smoothed.astype(people.keypoints.dtype),
                    scores=people.scores,
                    boxes=people.boxes,
                    track_ids=ids,
                )
                t2 = time.perf_counter()
                picture = annotate(frame.image, people, predictor.keypoint_info, score_thr=score_thr)
                t3 = time.perf_counter()
                if writer is None:
                    height, width = picture.shape[:2]
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(Path(tmp) / "annotated.mp4"), fourcc, source.fps, (width, height))
                writer.write(picture)
                t4 = time.perf_counter()
                result_entries(frame, people, video=True)
                t5 = time.perf_counter()
                for stage, (a, b) in zip(STAGES[3:], ((t, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
                    seconds[stage] += b - a
                frames += 1
                people_found += len(people)
        if writer is not None:
            t = time.perf_counter()
            writer.release()
            seconds["encode"] += time.perf_counter() - t
        total = time.perf_counter() - start
    if predictor.detector is None:
        del seconds["detector"]
    timed = sum(seconds.values())
    return {
        "pose_model": predictor.name,
        "detector_model": predictor.detector.name if predictor.detector is not None else None,
        "boxes": "detector" if predictor.detector is not None else ("truth" if boxes is not None else "none"),
        "frames": frames,
        "people": people_found,
        "batch_size": batch_size,
        "load_s": load_s,
        "total_s": total,
        "frames_per_s": frames / total if total > 0 else float("nan"),
        "stage_ms_per_frame": {k: 1000.0 * v / max(frames, 1) for k, v in seconds.items()},
        "stage_share": {k: v / total for k, v in seconds.items()},
        "untimed_share": max(0.0, 1.0 - timed / total),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_steady", description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=PEOPLE)
    p.add_argument("--frames", type=int, default=400, help="timed frames of the tracking + smoothing step")
    p.add_argument("--pose-ckpt", help="with it, also the video pipeline by stage")
    p.add_argument("--detector-ckpt", help="the bottom-up model giving the pose model its boxes")
    p.add_argument("--video-frames", type=int, default=100, help="frames of the synthetic tracking video")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "steady")
    args = p.parse_args(argv)
    if args.people < 1 or args.frames < 1:
        p.error("--people and --frames must be >= 1")
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "steady",
        "date": dt.date.today().isoformat(),
        "machine": machine_info(torch.get_num_threads()),
        "command": " ".join(["python -m benchmarks.bench_steady", *(argv if argv is not None else sys.argv[1:])]),
    }
    step = measure_step(people=args.people, frames=args.frames, seed=args.seed)
    result["step"] = step
    log_line(
        f"tracking + smoothing, {args.people} people: {step['tracking_and_smoothing']['median_ms']:.3f} ms per frame "
        f"(median; tracking {step['tracking']['median_ms']:.3f}, smoothing {step['smoothing']['median_ms']:.3f}; "
        f"aim < {AIM_MS:g} ms: {'met' if step['aim_met'] else 'NOT met'})"
    )
    if args.pose_ckpt:
        from src.synthetic.tracking_video import render_tracking_video

        clip = render_tracking_video(args.seed, frames=args.video_frames)
        truth = [clip.boxes[t][clip.present[t]] for t in range(len(clip.frames))]
        with tempfile.TemporaryDirectory() as tmp:
            video = write_video(clip.frames, clip.fps, Path(tmp) / "video.mp4")
            pipeline = measure_pipeline(
                args.pose_ckpt, args.detector_ckpt, video, boxes=truth, batch_size=args.batch_size
            )
        pipeline.update(pose_ckpt=str(args.pose_ckpt), detector_ckpt=args.detector_ckpt)
        pipeline["video"] = {"frames": len(clip.frames), "size": list(clip.frames.shape[2:0:-1]), "fps": clip.fps}
        result["pipeline"] = pipeline
        shares = ", ".join(f"{k} {100 * v:.1f}%" for k, v in pipeline["stage_share"].items())
        log_line(f"video pipeline: {pipeline['frames_per_s']:.2f} frames/s; {shares}")
    result["seconds"] = time.perf_counter() - started
    out = results_stem(args.out, result["machine"], result["date"]).with_suffix(".json")
    write_json(out, result)
    log_line(f"-> {out}")
    result["_file"] = str(out)
    return result


if __name__ == "__main__":
    main()
