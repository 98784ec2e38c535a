"""Absolute 3D on a synthetic video: are the people's distances ordered as the true ones in every frame?

    python -m benchmarks.absolute_video --pose-ckpt POSENET.ckpt --root-ckpt ROOTNET.ckpt
        [--frames 60] [--depths 2500 4500 6500] [--out benchmarks/results/absolute_video]

Renders one MuPoTS-style sequence (`src.synthetic.mupots_writer.render_sequence`: a fixed
calibrated camera, the given number of people at the given pelvis depths in the middle frame,
walking or turning), writes it as an MP4 with the people's boxes (COCO detection results by
frame: the ground-truth boxes, so that the check is of the depths and not of a detector), and runs
``python -m src.predict ckpt_path=POSENET root_ckpt=ROOTNET boxes=... focal=<the camera's>`` on it,
the absolute pipeline a user runs on a video. Each predicted person is the box it was given; the
results file (``<out>/<machine>-<date>.json``) holds, per frame, the true and predicted root depths
and whether their order agrees, the share of frames in order, each person's mean depth error, the
command and the wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import log_line, machine_info, results_stem, write_video
from src.layouts import MUPOTS17, root_index
from src.synthetic.mupots_writer import render_sequence
from src.utils.run_io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]


def write_inputs(clip: Any, folder: Path) -> tuple[Path, Path, list[list[list[float]]]]:
    """The clip as ``video.mp4`` and ``boxes.json`` (a box per person and frame, as predict reads them);
    returns both paths and the boxes [frame][person]."""
    video = write_video(clip.frames, clip.fps, folder / "video.mp4")
    boxes = [[[float(v) for v in box] for box in frame_boxes] for frame_boxes in clip.boxes]
    entries = [
        {"frame": t, "bbox": box, "score": 1.0, "category_id": 1}
        for t, frame_boxes in enumerate(boxes)
        for box in frame_boxes
    ]
    path = folder / "boxes.json"
    path.write_text(json.dumps(entries))
    return video, path, boxes


def depths_by_person(results: list[dict], boxes: list[list[list[float]]]) -> np.ndarray:
    """(T, P) predicted root depths (mm; NaN where a person's box gave no prediction), each result
    matched to its person by the box it was predicted from."""
    frames, people = len(boxes), max((len(b) for b in boxes), default=0)
    depth = np.full((frames, people), np.nan)
    for entry in results:
        t = int(entry["frame"])
        for p, box in enumerate(boxes[t]):
            if np.allclose(entry["bbox"], box, atol=0.01):
                depth[t, p] = float(entry["root_depth"])
    return depth


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.absolute_video", description=__doc__.splitlines()[0])
    p.add_argument("--pose-ckpt", required=True, help="a 3D pose checkpoint (PoseNet)")
    p.add_argument("--root-ckpt", required=True, help="a RootNet checkpoint")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--depths", type=float, nargs="+", default=[2500.0, 4500.0, 6500.0], help="mm, middle frame")
    p.add_argument("--image-size", type=int, nargs=2, default=[320, 256], help="w h")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "absolute_video"))
    args = p.parse_args(argv)
    machine = machine_info(0)
    clip = render_sequence(
        seed=args.seed,
        sequence=1,
        people=len(args.depths),
        depths_mm=tuple(args.depths),
        frames=args.frames,
        image_size=tuple(args.image_size),
        fps=args.fps,
    )
    true_depth = clip.joints_cam[:, :, root_index(MUPOTS17), 2]  # (T, P) pelvis depths
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video, box_file, boxes = write_inputs(clip, folder)
        command = [
            sys.executable,
            "-m",
            "src.predict",
            f"ckpt_path={Path(args.pose_ckpt).resolve()}",
            f"root_ckpt={Path(args.root_ckpt).resolve()}",
            f"boxes={box_file}",
            f"input={video}",
            f"focal={clip.camera.fx}",
            f"paths.output_dir={folder / 'predict'}",
            "progress=false",
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - start
        results = json.loads((folder / "predict" / "results.json").read_text())
    predicted = depths_by_person(results, boxes)
    found = np.isfinite(predicted).all(axis=1)
    ordered = found & np.array(
        [np.array_equal(np.argsort(t), np.argsort(q)) for t, q in zip(true_depth, np.nan_to_num(predicted))]
    )
    errors = np.abs(predicted - true_depth)
    record = {
        "benchmark": "absolute_video",
        "date": dt.date.today().isoformat(),
        "machine": machine,
        "command": " ".join(["python -m benchmarks.absolute_video", *(argv if argv is not None else sys.argv[1:])]),
        "pose_ckpt": str(args.pose_ckpt),
        "root_ckpt": str(args.root_ckpt),
        "frames": int(args.frames),
        "people": len(args.depths),
        "depths_mm_middle_frame": list(args.depths),
        "frames_with_every_person": int(found.sum()),
        "frames_in_order": int(ordered.sum()),
        "all_frames_in_order": bool(ordered.all()),
        "mean_abs_depth_error_mm": [round(float(v), 1) for v in np.nanmean(errors, axis=0)],
        "true_depth_range_mm": [
            [round(float(a), 1), round(float(b), 1)] for a, b in zip(true_depth.min(0), true_depth.max(0))
        ],
        "per_frame": [
            {"true": [round(float(v), 1) for v in t], "predicted": [round(float(v), 1) for v in q], "in_order": bool(o)}
            for t, q, o in zip(true_depth, predicted, ordered)
        ],
        "predict_wall_s": round(wall, 1),
    }
    out = results_stem(Path(args.out), machine).with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, record)
    log_line(
        f"absolute_video: {record['frames_in_order']} of {record['frames']} frames with the {record['people']} people "
        f"in the true depth order; mean depth error per person {record['mean_abs_depth_error_mm']} mm -> {out}"
    )
    return record


if __name__ == "__main__":
    main()
