"""Tracking and smoothing on a synthetic video with known identities: ID switches, MOTA, jitter, AP.

    python -m benchmarks.tracking_video --pose-ckpt TOPDOWN.ckpt --detector-ckpt BOTTOMUP.ckpt
    python -m benchmarks.tracking_video --pose-ckpt TOPDOWN.ckpt            # ground-truth boxes
        [--frames 100] [--fps 25] [--seed 0] [--override smoothing.beta=0.1 ...]
        [--sweep] [--out benchmarks/results/tracking_video] [--keep FOLDER]

Renders the tracking video of `src.synthetic.tracking_video` (two people crossing, the nearer
hiding the farther; one leaving the image and coming back; one who meets nobody), writes it as an
MP4 and runs the pipeline a user runs, ``python -m src.predict``, twice on it: ``track=true
smooth=false`` (raw keypoints) and ``track=true smooth=true``, each with the person boxes of a
bottom-up ``--detector-ckpt`` or, without one, the ground-truth boxes of the people present
(``boxes=``, so that the figures are of tracking and smoothing alone). From the two results.json
files, against the ground truth (`src.metrics.tracking`):

* CLEAR MOT per run (MOTA, misses, false positives, ID switches), predictions matched to the
  people present by OKS (COCO's, with the true person's visible area) of at least
  ``--oks-threshold``; the ID switches of the people whose boxes never overlap another's (with and
  without the re-entering person, who is one of them), of the people who cross, and of the
  re-entering person;
* jitter: the mean frame-to-frame acceleration (px / frame^2) of the joints visible in the ground
  truth, along each true person, of the raw keypoints, the smoothed ones and the ground truth
  itself, over the same joints and frames;
* COCO keypoint AP of the raw and of the smoothed keypoints against the ground truth.

With ``--sweep``, the raw run's keypoints are also smoothed afresh (the same `PoseSmoother`, ids
and raw keypoints as in ``src.predict``) with each One-Euro setting of `SWEEP`, and the jitter
ratio, AP and MOTA of each are recorded: the trade-off the defaults are chosen on.

Writes ``<out>/<boxes>[-<label>]-<machine>-<date>.json`` (``boxes``: detector or truth) with the machine,
both ``src.predict`` command lines, their wall times and every figure, and whether the aims are
met: no ID switch on people who never cross, the jitter at most half the raw one, an AP cost below
0.01.
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
import torch

from benchmarks.common import log_line, machine_info, machine_slug, write_video
from src.inference.smoothing import PoseSmoother
from src.layouts import COCO17
from src.metrics.tracking import (
    MOTResult,
    clear_mot,
    keypoint_oks,
    matched_trajectories,
    mean_acceleration,
    video_keypoint_ap,
)
from src.synthetic.tracking_video import (
    TrackingClip,
    coco_ground_truth,
    default_away_frames,
    meetings,
    render_tracking_video,
)
from src.utils.run_io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
#: The aims: ID switches allowed on people who never cross, the largest smoothed / raw jitter
#: ratio, the largest AP lost to smoothing.
AIMS = {"non_crossing_id_switches": 0, "jitter_ratio": 0.5, "ap_cost": 0.01}
RUNS = {"raw": ["track=true", "smooth=false"], "smoothed": ["track=true", "smooth=true"]}


def write_truth_boxes(clip: TrackingClip, path: Path) -> Path:
    """The whole-person boxes of the people present in each frame, as COCO detection results by frame."""
    entries = [
        {"frame": t, "bbox": [float(v) for v in clip.boxes[t, p]], "score": 1.0, "category_id": 1}
        for t in range(len(clip.frames))
        for p in np.flatnonzero(clip.present[t]).tolist()
    ]
    path.write_text(json.dumps(entries))
    return path


def predictions_by_frame(results: list[dict], frames: int) -> list[dict[int, np.ndarray]]:
    """results.json of a tracked run -> per frame, track id -> (K, 3) keypoints."""
    out: list[dict[int, np.ndarray]] = [{} for _ in range(frames)]
    for entry in results:
        if "track_id" not in entry:
            raise ValueError("a results.json entry has no track_id: was the run made with track=true?")
        t = int(entry["frame"])
        if t < frames:
            out[t][int(entry["track_id"])] = np.asarray(entry["keypoints"], dtype=np.float64).reshape(-1, 3)
    return out


def match_run(clip: TrackingClip, found: list[dict[int, np.ndarray]], threshold: float) -> MOTResult:
    """CLEAR MOT of one run: the people present in each frame against its tracked predictions."""
    sigmas = np.asarray(COCO17.sigmas)

    def frames():
        for t, tracks in enumerate(found):
            people = np.flatnonzero(clip.present[t])
            ids = sorted(tracks)
            predicted = np.stack([tracks[i] for i in ids]) if ids else np.zeros((0, len(sigmas), 3))
            sim = keypoint_oks(
                clip.keypoints[t, people], clip.visibility[t, people] > 0, clip.areas[t, people], predicted, sigmas
            )
            yield people, ids, sim

    return clear_mot(frames(), threshold=threshold)


def switches_of(result: MOTResult, people: list[int]) -> int:
    return int(sum(result.switches_by_object.get(p, 0) for p in people))


def clip_facts(clip: TrackingClip) -> dict[str, Any]:
    """What the rendered video holds: roles, frames present, who meets whom, the re-entry gap."""
    met = meetings(clip)
    facts: dict[str, Any] = {
        "roles": list(clip.roles),
        "stature_px": clip.stature_px.tolist(),
        "frames_present": clip.present.sum(axis=0).tolist(),
        "meets": [np.flatnonzero(row).tolist() for row in met],
        "never_cross": np.flatnonzero(~met.any(axis=1)).tolist(),
        "ground_truth_instances": int(clip.present.sum()),
    }
    for p in clip.people_of("reenter"):
        seen = np.flatnonzero(clip.present[:, p])
        gaps = np.diff(seen) - 1
        facts["reentry_gap_frames"] = int(gaps.max()) if len(gaps) else 0
    return facts


def evaluate(clip: TrackingClip, runs: dict[str, list[dict]], threshold: float) -> dict[str, Any]:
    """Every figure of the benchmark from the results.json entries of the raw and smoothed runs."""
    frames, k = len(clip.frames), len(COCO17.sigmas)
    found = {name: predictions_by_frame(results, frames) for name, results in runs.items()}
    mot = {name: match_run(clip, f, threshold) for name, f in found.items()}
    met = meetings(clip)
    never = np.flatnonzero(~met.any(axis=1)).tolist()
    reenter = clip.people_of("reenter")
    groups = {
        "never_cross": never,  # the aim's people (the re-entering one among them)
        "never_cross_in_view": [p for p in never if p not in reenter],
        "cross": np.flatnonzero(met.any(axis=1)).tolist(),
        "reenter": reenter,
    }
    out: dict[str, Any] = {"tracking": {}}
    for name, result in mot.items():
        summary = result.summary()
        summary["id_switches_by_group"] = {g: switches_of(result, people) for g, people in groups.items()}
        summary["tracks"] = len({i for f in found[name] for i in f})
        out["tracking"][name] = summary
    # jitter along each true person, over joints visible in the truth and matched in both runs
    people = list(range(clip.people))
    paths = {name: matched_trajectories(mot[name], found[name], people, k) for name in found}
    common = clip.visibility == 2
    for p in paths.values():
        common &= np.isfinite(p).all(axis=-1)
    truth = np.where((clip.visibility > 0)[..., None], clip.keypoints, np.nan)
    jitter = {name: mean_acceleration(p, common) for name, p in paths.items()}
    jitter["ground_truth"] = mean_acceleration(truth, common)
    triples = common[2:] & common[1:-1] & common[:-2]
    out["jitter_px_per_frame2"] = {**jitter, "joint_triples": int(triples.sum())}
    ratio = jitter["smoothed"] / jitter["raw"] if jitter["raw"] > 0 else float("nan")
    above = jitter["raw"] - jitter["ground_truth"]
    excess = (jitter["smoothed"] - jitter["ground_truth"]) / above if above > 0 else float("nan")
    out["jitter_ratio"] = ratio
    out["jitter_excess_ratio"] = excess  # the same, counting only what exceeds the true motion's
    dataset = coco_ground_truth(clip)
    ap = {
        name: video_keypoint_ap(dataset, [{**r, "image_id": r["frame"]} for r in rs], COCO17.sigmas)
        for name, rs in runs.items()
    }
    out["ap"] = {name: stats["AP"] for name, stats in ap.items()}
    out["coco_stats"] = ap
    out["ap_cost"] = ap["raw"]["AP"] - ap["smoothed"]["AP"]
    switches = out["tracking"]["smoothed"]["id_switches_by_group"]["never_cross"]
    out["aims"] = {
        "non_crossing_id_switches": {"aim": AIMS["non_crossing_id_switches"], "measured": switches},
        "jitter_ratio": {"aim": AIMS["jitter_ratio"], "measured": ratio},
        "ap_cost": {"aim": AIMS["ap_cost"], "measured": out["ap_cost"]},
    }
    for name, aim in out["aims"].items():
        aim["met"] = bool(aim["measured"] <= aim["aim"] if name != "ap_cost" else aim["measured"] < aim["aim"])
    return out


#: The One-Euro settings `smoothing_sweep` tries: (min_cutoff Hz, beta s/px).
SWEEP = tuple((c, b) for c in (0.5, 1.0, 3.0) for b in (0.05, 0.2, 0.5, 1.0))


def resmooth(results: list[dict], fps: float, **options: float) -> list[dict]:
    """The entries of a raw tracked run smoothed afresh by a `PoseSmoother` with ``options`` (the
    same ids and raw keypoints that ``src.predict`` smooths, read back from results.json)."""
    smoother = PoseSmoother(fps=fps, **options)
    by_frame: dict[int, list[dict]] = {}
    for entry in results:
        by_frame.setdefault(int(entry["frame"]), []).append(entry)
    out = []
    for t in sorted(by_frame):
        entries = by_frame[t]
        keypoints = np.stack([np.reshape(e["keypoints"], (-1, 3)) for e in entries])
        smoothed = smoother(keypoints, np.array([e["track_id"] for e in entries]), frame=t)
        out += [{**e, "keypoints": np.round(k, 2).reshape(-1).tolist()} for e, k in zip(entries, smoothed)]
    return out


def smoothing_sweep(clip: TrackingClip, raw: list[dict], threshold: float, grid=SWEEP) -> list[dict[str, float]]:
    """Jitter ratio, AP and MOTA of the raw run smoothed with each (min_cutoff, beta) of ``grid`` (the
    other options `PoseSmoother`'s defaults): the trade-off between jitter and accuracy."""
    rows = []
    for min_cutoff, beta in grid:
        figures = evaluate(
            clip, {"raw": raw, "smoothed": resmooth(raw, clip.fps, min_cutoff=min_cutoff, beta=beta)}, threshold
        )
        rows.append(
            {
                "min_cutoff": min_cutoff,
                "beta": beta,
                "jitter_ratio": figures["jitter_ratio"],
                "jitter_smoothed": figures["jitter_px_per_frame2"]["smoothed"],
                "ap": figures["ap"]["smoothed"],
                "ap_cost": figures["ap_cost"],
                "mota": figures["tracking"]["smoothed"]["mota"],
            }
        )
    return rows


def run_predict(name: str, extra: list[str], common: list[str], folder: Path) -> tuple[list[dict], dict, list[str]]:
    """One ``python -m src.predict`` run; returns its results, its summary and the command."""
    output = folder / name
    command = [sys.executable, "-m", "src.predict", *common, *extra, f"paths.output_dir={output}", "progress=false"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"src.predict failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    results = json.loads((output / "results.json").read_text())
    summary = json.loads((output / "summary.json").read_text())
    return results, summary, command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tracking_video", description=__doc__.splitlines()[0])
    p.add_argument("--pose-ckpt", required=True, help="the pose checkpoint (top-down, or bottom-up without boxes)")
    p.add_argument("--detector-ckpt", help="a bottom-up checkpoint whose people give the boxes (default: true boxes)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--away-frames", type=int, help="frames the re-entering person spends outside (default 15%%)")
    p.add_argument("--image-size", type=int, nargs=2, default=[320, 256], metavar=("W", "H"))
    p.add_argument("--oks-threshold", type=float, default=0.5, help="least OKS of a match to a true person")
    p.add_argument("--override", nargs="*", default=[], help="extra src.predict overrides for both runs")
    p.add_argument("--label", help="a name for the file, beside the boxes (e.g. the overrides tried)")
    p.add_argument(
        "--sweep", action="store_true", help="also re-smooth the raw run with each One-Euro setting of SWEEP"
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tracking_video")
    p.add_argument("--keep", type=Path, help="write the video and both runs' outputs (annotated.mp4, ...) here")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.away_frames is None:
        args.away_frames = default_away_frames(args.frames)
    started = time.perf_counter()
    machine = machine_info(torch.get_num_threads())
    clip = render_tracking_video(
        args.seed,
        frames=args.frames,
        image_size=tuple(args.image_size),
        fps=args.fps,
        away_frames=args.away_frames,
    )
    boxes = "detector" if args.detector_ckpt else "truth"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        video = write_video(clip.frames, clip.fps, folder / "video.mp4")
        common = [f"ckpt_path={Path(args.pose_ckpt).resolve()}", f"input={video}"]
        if args.detector_ckpt:
            common.append(f"detector_ckpt={Path(args.detector_ckpt).resolve()}")
        else:
            common.append(f"boxes={write_truth_boxes(clip, folder / 'boxes.json')}")
        common += list(args.override)
        runs, record_runs = {}, {}
        for name, extra in RUNS.items():
            t0 = time.perf_counter()
            results, summary, command = run_predict(name, extra, common, folder)
            runs[name] = results
            record_runs[name] = {
                "command": " ".join(["python", *command[1:]]).replace(str(folder), "<tmp>"),
                "wall_s": round(time.perf_counter() - t0, 2),
                "predict_seconds": summary.get("seconds"),
                "frames_per_s": summary.get("per_second"),
                "people": summary.get("people"),
                "tracking": summary.get("tracking"),
                "smoothing": summary.get("smoothing"),
            }
    figures = evaluate(clip, runs, args.oks_threshold)
    if args.sweep:
        figures["sweep"] = smoothing_sweep(clip, runs["raw"], args.oks_threshold)
    date = dt.date.today().isoformat()
    record = {
        "benchmark": "tracking_video",
        "date": date,
        "machine": machine,
        "command": " ".join(["python -m benchmarks.tracking_video", *(argv if argv is not None else sys.argv[1:])]),
        "boxes": boxes,
        "pose_ckpt": str(args.pose_ckpt),
        "detector_ckpt": str(args.detector_ckpt) if args.detector_ckpt else None,
        "video": {
            "seed": args.seed,
            "frames": args.frames,
            "fps": args.fps,
            "image_size": list(args.image_size),
            "away_frames": args.away_frames,
            **clip_facts(clip),
        },
        "oks_threshold": args.oks_threshold,
        "overrides": list(args.override),
        "runs": record_runs,
        **figures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    label = f"{boxes}-{args.label}" if args.label else boxes
    out = Path(args.out) / f"{label}-{machine_slug(machine)}-{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, record)
    t, j = figures["tracking"], figures["jitter_px_per_frame2"]
    log_line(
        f"tracking_video ({boxes} boxes): MOTA {t['raw']['mota']:.3f}, ID switches {t['raw']['id_switches']} "
        f"(never crossing: {t['raw']['id_switches_by_group']['never_cross']}); jitter raw {j['raw']:.2f} -> "
        f"smoothed {j['smoothed']:.2f} px/frame^2 (truth {j['ground_truth']:.2f}, "
        f"ratio {figures['jitter_ratio']:.2f}); "
        f"AP raw {figures['ap']['raw']:.3f} -> smoothed {figures['ap']['smoothed']:.3f} -> {out}"
    )
    record["_file"] = str(out)
    return record


if __name__ == "__main__":
    main()
