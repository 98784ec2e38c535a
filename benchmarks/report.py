"""The benchmark report: this machine, its measured peak, and every model family, in one run.

    python -m benchmarks.report [--tiny] [--batch-size 8] [--iters 3] [--backend-iters 10] [--threads N]
        [--out benchmarks/results]

Writes ``<out>/<machine>-<date>.json`` and ``.png`` and prints one table:

* **machine**: CPU model, threads used, the instruction sets that matter (AVX2, AVX-512,
  AVX512_BF16, AMX), torch's CPU capability, the GPU if any;
* **peak**: fp32 and bf16 3x3-convolution GFLOP/s and memory bandwidth (a large tensor copy:
  bytes read + written per second; `benchmarks.bench_peak`);
* **training, per family** (HRNet-W32, SimpleBaseline-50, Hourglass-8, RTMPose-t, RTMPose-m,
  HigherHRNet-W32, PoseNet-50, each built from its ``model=`` config at the published input size,
  random weights): images/s of the reference path (fp32, NCHW, eager: the official arithmetic) and
  of the automatic path (what ``trainer.precision=auto`` and ``model.channels_last=auto`` choose for
  that network and batch here, `src.runner.fast_path_for`: on CPUs the memory format is measured,
  and the record is kept as the family's ``fast_path``; the fp32 prediction layers the configs
  keep), their ratio, and the share of the machine's peak each reaches. A step is forward, an fp32 MSE
  on every network output against fixed random targets, backward and an Adam step: the network's
  arithmetic, not each family's own loss. FLOPs are counted from the network on the meta device
  (torch's FlopCounterMode), a training step as 3x the forward;
* **inference, per family**: images/s of the automatic path in eval mode, without and with the
  flip test (a second forward on the mirrored batch), and HigherHRNet end to end on 640x480
  images (resize, forward, aggregation, grouping; `benchmarks.bench_bottomup`);
* **inference backends** (HRNet-W32, RTMPose-t, RTMPose-m; `benchmarks.bench_export`): ms per
  image at batch 1 and images/s at ``--batch-size`` of PyTorch's reference path (fp32, NCHW), its
  automatic path and onnxruntime (the file `src.export` writes), all calls of one batch size
  alternating, with the share of the peak each reaches, the RTMPose / HRNet-W32 images/s ratios per
  backend (the aim: RTMPose-m >= 3x) and mmpose's published onnxruntime latencies of another CPU,
  labelled as published;
* **data pipeline**: training samples/s of one worker for each paradigm on the project's synthetic
  data (`benchmarks.bench_data`: top-down 256x192 crops from 640x480 JPEGs, by stage; bottom-up 512
  images with targets at 1/4 and 1/2; 3D 256x256 crops) and the DataLoader workers per GPU the
  top-down rate implies at the published training speeds;
* **grouping**: HigherHRNet's ``HeatmapParser.parse`` ms per image, typical and stress scenarios;
* **steady video**: tracking + smoothing ms per frame for 10 people (`benchmarks.bench_steady`,
  the aim under 1 ms).

The paths alternate step by step (`benchmarks.common.alternate`), so that machine noise hits them
alike; compare figures from one run, never across runs. Nothing here runs in the test suite except
``--tiny`` (tiny networks, a few samples), which checks that the script runs and its bookkeeping.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks import bench_bottomup, bench_data, bench_export, bench_grouping, bench_peak, bench_steady
from benchmarks.common import (
    TRAIN_FLOP_FACTOR,
    TrainingPath,
    alternate,
    automatic_path,
    build_task,
    forward_gflops,
    load_average,
    log_line,
    machine_info,
    mse_to_targets,
    network_path,
    print_table,
    random_targets,
    results_stem,
    summarize,
    torch_threads,
    write_json,
)
from benchmarks.report_plot import draw_report
from src.utils.hardware import REFERENCE

#: Family -> (paradigm, ``model=`` overrides, tiny overrides for ``--tiny``).
FAMILIES: dict[str, tuple[str, list[str], list[str]]] = {
    "HRNet-W32": (
        "topdown",
        ["model=hrnet"],
        ["model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1"]
        + ["model.net.stem_channels=16", "model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"],
    ),
    "SimpleBaseline-50": (
        "topdown",
        ["model=simplebaseline"],
        # 64 wide: a 48-wide input gives a 2-wide stride-32 map (rounded up), 16 wide after the deconvolutions
        ["model.net.layers=[1,1,1,1]", "model.net.base_width=8", "model.net.deconv_channels=16"]
        + ["model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]"],
    ),
    "Hourglass-8": (
        "topdown",
        ["model=hourglass"],
        ["model.net.num_stacks=2", "model.net.num_feats=16", "model.net.depth=2"]
        + ["model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]"],
    ),
    "RTMPose-t": ("topdown", ["model=rtmpose_t"], list(bench_export.TINY_RTMPOSE)),
    "RTMPose-m": ("topdown", ["model=rtmpose_m"], list(bench_export.TINY_RTMPOSE)),
    "HigherHRNet-W32": (
        "bottomup",
        ["model=higherhrnet"],
        ["model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1"]
        + ["model.net.stem_channels=16", "model.net.num_deconv_basic_blocks=1"]
        + ["model.codec.input_size=64", "model.codec.output_sizes=[16,32]"],
    ),
    "PoseNet-50": (
        "pose3d",
        ["model=posenet", "data=synthetic_h36m"],
        # base width 16: torch 2.13's CPU bf16 channels_last backward corrupted the heap with an 8-channel stem
        ["model.net.depth=18", "model.net.base_width=16", "model.net.layers=[1,1,1,1]", "model.net.deconv_channels=16"]
        + ["model.codec.input_size=[64,64]", "model.codec.output_size=[16,16]", "model.codec.depth_dim=16"],
    ),
}

#: Models of the inference-backend section (`benchmarks.bench_export`): RTMPose beside HRNet-W32.
BACKEND_MODELS = ("hrnet", "rtmpose_t", "rtmpose_m")

#: Published HRNet-W32 256x192 training speeds on 8 V100s (seconds per iteration), and the per-GPU
#: batch assumed to turn them into samples/s (the official recipe's 32 per GPU).
PUBLISHED_SPEEDS = {"official HRNet code": 1.31, "mmpose": 0.54}
PUBLISHED_BATCH_PER_GPU = 32


def input_hw(task: Any) -> tuple[int, int]:
    size = task.codec.input_size
    return (int(size), int(size)) if isinstance(size, int) else (int(size[1]), int(size[0]))


def measure_family(
    name: str,
    overrides: list[str],
    *,
    batch: int,
    warmup: int,
    iters: int,
    seed: int,
    log: Callable,
    quick: bool = False,
) -> dict[str, Any]:
    """Training and inference images/s of one family on the reference and the automatic path
    (what ``auto`` resolves to for this network and batch, as in a training run; ``quick``: its
    memory formats timed in one step each)."""
    task = build_task(overrides)
    net, hw = task.net, input_hw(task)
    gflops = forward_gflops(net, hw)
    fast = network_path(net, hw, batch, quick=quick)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *hw, generator=g)
    targets = random_targets(net, images, g)
    settings = {
        "reference": {"precision": REFERENCE[0], "channels_last": REFERENCE[1]},
        "auto": {"precision": fast["precision"], "channels_last": fast["channels_last"]},
    }
    paths = {k: TrainingPath(net, images, targets, mse_to_targets, **v) for k, v in settings.items()}
    train = summarize(
        alternate({k: p.train_step for k, p in paths.items()}, warmup=warmup, iters=iters),
        batch=batch,
        baseline="reference",
    )
    auto = paths["auto"]
    infer = summarize(
        alternate({f: lambda f=f: auto.infer_step(f == "on") for f in ("off", "on")}, warmup=warmup, iters=iters),
        batch=batch,
    )
    out: dict[str, Any] = {
        "paradigm": task.paradigm,
        "input_hw": list(hw),
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "forward_gflops_per_image": gflops,
        "train_gflop_per_image": TRAIN_FLOP_FACTOR * gflops,
        "batch": batch,
        "fast_path": fast,
    }
    for key, path in paths.items():
        out[f"train_{key}"] = {
            "precision": path.precision,
            "channels_last": path.channels_last,
            "step_s": train[key]["times_s"],
            "images_per_s": train[key]["images_per_s"],
            "achieved_gflops": TRAIN_FLOP_FACTOR * gflops * train[key]["images_per_s"],
        }
    out["train_ratio"] = train["auto"]["ratio"]
    out["infer_auto"] = {f"flip_{f}_images_per_s": infer[f]["images_per_s"] for f in ("off", "on")}
    log(
        f"  {name}: train {out['train_reference']['images_per_s']:.2f} -> {out['train_auto']['images_per_s']:.2f} "
        f"images/s ({out['train_ratio']:.2f}x); inference {out['infer_auto']['flip_off_images_per_s']:.1f} / "
        f"{out['infer_auto']['flip_on_images_per_s']:.1f} images/s without / with flip"
    )
    return out


def _quiet(fn: Callable, *args, **kwargs) -> Any:
    """Call ``fn`` with its own printing captured (the report prints one table)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def run(args: argparse.Namespace, log: Callable = log_line) -> dict[str, Any]:
    with torch_threads(args.threads) as threads:
        return _run(args, threads, log)


def _run(args: argparse.Namespace, threads: int, log: Callable) -> dict[str, Any]:
    fast = automatic_path()
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine_info(threads),
        "automatic_path": fast,
        "config": {k: v for k, v in vars(args).items() if k != "out"},
    }
    started = time.perf_counter()
    log(f"[1/7] peak: convolutions and memory bandwidth ({threads} threads) ...")
    shapes = bench_peak.TINY_PEAK_SHAPES if args.tiny else bench_peak.PEAK_SHAPES
    peak = bench_peak.measure(batch=args.peak_batch, reps=args.peak_reps, bandwidth_mb=args.bandwidth_mb, shapes=shapes)
    result["peak"] = peak
    log(f"[2/7] training and inference per family (batch {args.batch_size}; automatic path: {fast['reason']}; ")
    log("      the memory format measured per network, as training runs choose it) ...")
    families = {}
    for name, (_, overrides, tiny) in FAMILIES.items():
        families[name] = measure_family(
            name,
            overrides + (tiny if args.tiny else []),
            batch=args.batch_size,
            warmup=args.warmup,
            iters=args.iters,
            seed=args.seed,
            log=log,
            quick=args.tiny,
        )
        for key in ("train_reference", "train_auto"):
            share = families[name][key]
            share["pct_of_fp32_peak"] = 100 * share["achieved_gflops"] / peak["fp32_gflops"]
            share["pct_of_bf16_peak"] = 100 * share["achieved_gflops"] / peak["bf16_gflops"]
    result["families"] = families
    names = list(BACKEND_MODELS)
    log(f"[3/7] inference backends: {', '.join(bench_export.MODELS[n].label for n in names)}, batch 1 and ")
    log(f"      {args.batch_size}, PyTorch reference / automatic path and onnxruntime, alternating ...")
    result["backends"] = bench_export.measure(
        names,
        batches=sorted({1, args.batch_size}),
        iters=args.backend_iters,
        warmup=args.warmup,
        threads=threads,
        tiny=args.tiny,
        peak=peak,
        log=log,
    )
    log("[4/7] HigherHRNet end to end on 640x480 images (grouping included) ...")
    width, size = (8, 64) if args.tiny else (32, 512)
    end_to_end = _quiet(
        bench_bottomup.time_inference, width=width, input_size=size, images=args.e2e_images, rounds=1, seed=0
    )
    result["bottomup_end_to_end"] = {
        **end_to_end,
        **{k.replace("_s_per_image", "_images_per_s"): 1.0 / v for k, v in end_to_end.items()},
        "width": width,
        "input_size": size,
    }
    log("[5/7] data loading, one worker per paradigm ...")
    topdown = bench_data.measure_topdown(
        images=args.data_images,
        passes=args.data_passes,
        input_hw=(64, 48) if args.tiny else (256, 192),
        seed=args.seed,
        log=lambda *_: None,
    )
    _, overrides, tiny = FAMILIES["HigherHRNet-W32"]
    bottomup = bench_data.measure_bottomup(
        images=max(2, args.data_images // 2),
        passes=args.data_passes,
        codec=build_task(overrides + (tiny if args.tiny else [])).codec,
        seed=args.seed,
        log=lambda *_: None,
    )
    pose3d = bench_data.measure_pose3d(
        images=args.data_images, passes=args.data_passes, input_size=64 if args.tiny else 256, log=lambda *_: None
    )
    per_gpu = {k: PUBLISHED_BATCH_PER_GPU / s for k, s in PUBLISHED_SPEEDS.items()}
    result["data"] = {
        "topdown": {
            "samples_per_s": topdown["samples_per_s_per_worker"],
            "full_decode_samples_per_s": topdown["full_decode_samples_per_s"],
            "reduced_fraction": topdown["reduced_fraction"],
            "stage_ms_per_sample": topdown["stage_ms_per_sample"],
            "collate_ms_per_sample": topdown["collate_ms_per_sample"],
            "aim_samples_per_s": topdown["aim_samples_per_s"],
        },
        "bottomup": {
            "samples_per_s": bottomup["samples_per_s"],
            "reference_samples_per_s": bottomup["reference_samples_per_s"],
            "input_size": bottomup["input_size"],
        },
        "pose3d": {
            "samples_per_s": pose3d["samples_per_s"],
            "reference_samples_per_s": pose3d["reference_samples_per_s"],
        },
        "workers_per_gpu": {
            k: {
                "samples_per_s_per_gpu": v,
                "workers": math.ceil(v / topdown["samples_per_s_per_worker"]),
            }
            for k, v in per_gpu.items()
        },
        "published_batch_per_gpu": PUBLISHED_BATCH_PER_GPU,
    }
    log("[6/7] grouping (HeatmapParser.parse), typical and stress ...")
    grouping_args = ["--images", str(args.grouping_images), "--no-dense"]
    if args.tiny:
        grouping_args += ["--size", "64", "--repeats", "1"]
    result["grouping"] = {
        scenario: _quiet(bench_grouping.main, grouping_args + (["--stress"] if scenario == "stress" else []))
        for scenario in ("typical", "stress")
    }
    log(f"[7/7] steady video: tracking + smoothing of {bench_steady.PEOPLE} people per frame ...")
    result["steady"] = bench_steady.measure_step(people=bench_steady.PEOPLE, frames=args.steady_frames, seed=args.seed)
    result["machine"]["load_average_after"] = load_average()
    result["seconds"] = time.perf_counter() - started
    return result


def _f(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def backend_rows(backends: dict[str, Any]) -> list[list[str]]:
    """Rows of the inference-backend section: per model the batch-1 latency and the largest batch's
    images/s of PyTorch reference / automatic path / onnxruntime, the RTMPose / HRNet ratios and the
    published latencies (labelled as such)."""
    order = list(bench_export.BACKENDS)
    small, large = str(min(backends["batches"])), str(max(backends["batches"]))
    rows = []
    for m in backends["models"].values():
        lat = [m["batches"][small][b]["latency_ms"] for b in order]
        thr = [m["batches"][large][b] for b in order]
        auto = m["pytorch_auto"][large]
        shares = " / ".join(bench_export.peak_share(t) for t in thr)
        rows.append(
            [
                f"{m['label']} ms/image, batch {small}",
                " / ".join(_f(v, 2) for v in lat),
                f"PyTorch fp32 NCHW / automatic ({auto['precision']}, "
                f"{'channels_last' if auto['channels_last'] else 'NCHW'}) / onnxruntime; "
                f"{m['forward_gflops_per_image']:.2f} GFLOPs ({m['gmacs_per_image']:.2f} GMACs)",
            ]
        )
        rows.append(
            [
                f"{m['label']} images/s, batch {large}",
                " / ".join(_f(t["images_per_s"], 1) for t in thr),
                f"the same three; share of the peak {shares}",
            ]
        )
    for pair, r in backends["ratios"].items():
        name, base = pair.split("/")
        per_backend = r["batches"][large]
        note = "PyTorch reference / automatic / onnxruntime, same run"
        if r["aim"]:
            met = [b for b in order if per_backend[b] >= r["aim"]]
            note += f"; aim >= {r['aim']:.0f}x: met by {', '.join(met) or 'none'}"
        labels = (bench_export.MODELS[name].label, bench_export.MODELS[base].label)
        rows.append(
            [
                f"{labels[0]} / {labels[1]} images/s, batch {large}",
                " / ".join(f"{per_backend[b]:.2f}x" for b in order),
                note,
            ]
        )
    for name, p in backends["published"].items():
        rows.append(
            [
                f"published {bench_export.MODELS[name].label} ms (not ours)",
                f"{p['published_latency_ms']:.2f}",
                p["source"],
            ]
        )
    return rows


def table(result: dict[str, Any]) -> list[list[str]]:
    """The report's one table: rows of (figure, value, note)."""
    m, peak, fams = result["machine"], result["peak"], result["families"]
    flags = ", ".join(k for k, v in m["flags"].items() if v) or "none of note"
    rows = [
        ["machine", m["gpu"] or m["cpu"], f"{m['threads']} threads of {m['logical_cpus']}; {flags}"],
        ["automatic path", result["automatic_path"]["precision"], result["automatic_path"]["reason"]],
        ["peak fp32 conv GFLOP/s", _f(peak["fp32_gflops"]), "3x3 convolutions, best of both memory formats"],
        ["peak bf16 conv GFLOP/s", _f(peak["bf16_gflops"]), ""],
        ["memory bandwidth GB/s", _f(peak["copy_gb_per_s"]), f"copy of {peak['megabytes']} MB, read + write"],
    ]
    for name, f in fams.items():
        ref, auto = f["train_reference"], f["train_auto"]
        rows.append(
            [
                f"{name} train images/s",
                f"{_f(ref['images_per_s'], 2)} -> {_f(auto['images_per_s'], 2)} ({f['train_ratio']:.2f}x)",
                f"automatic {auto['precision']} {'channels_last' if auto['channels_last'] else 'NCHW'}; "
                f"{f['forward_gflops_per_image']:.2f} GFLOPs/image; peak share {ref['pct_of_fp32_peak']:.0f}% fp32 -> "
                f"{auto['pct_of_fp32_peak']:.0f}% fp32 / {auto['pct_of_bf16_peak']:.0f}% bf16",
            ]
        )
    for name, f in fams.items():
        inf = f["infer_auto"]
        rows.append(
            [
                f"{name} inference images/s",
                f"{_f(inf['flip_off_images_per_s'])} / {_f(inf['flip_on_images_per_s'])}",
                f"without / with flip, batch {f['batch']}, automatic path",
            ]
        )
    if result.get("backends"):  # reports from before the inference backends have none
        rows += backend_rows(result["backends"])
    e2e = result["bottomup_end_to_end"]
    rows.append(
        [
            "HigherHRNet end to end images/s",
            f"{_f(e2e['flip_off_images_per_s'], 2)} / {_f(e2e['flip_on_images_per_s'], 2)}",
            f"W{e2e['width']} at {e2e['input_size']}, 640x480, grouping included, fp32, without / with flip",
        ]
    )
    data = result["data"]
    td = data["topdown"]
    met = "met" if td["samples_per_s"] >= td["aim_samples_per_s"] else "NOT met"
    rows.append(
        [
            "data top-down samples/s/worker",
            _f(td["samples_per_s"]),
            f"aim >= {td['aim_samples_per_s']:.0f}: {met}; reference reading {_f(td['full_decode_samples_per_s'])}",
        ]
    )
    stages = {**td["stage_ms_per_sample"], "collate": td["collate_ms_per_sample"]}
    rows.append(
        [
            "top-down ms per sample by stage",
            f"{sum(stages.values()):.2f}",
            ", ".join(f"{k} {v:.2f}" for k, v in stages.items()),
        ]
    )
    size = data["bottomup"]["input_size"]
    bu, p3 = data["bottomup"], data["pose3d"]
    rows.append(
        [
            "data bottom-up samples/s/worker",
            _f(bu["samples_per_s"]),
            f"{size} inputs, two target sizes; reference reading {_f(bu['reference_samples_per_s'])}",
        ]
    )
    rows.append(
        [
            "data 3D samples/s/worker",
            _f(p3["samples_per_s"]),
            f"synthetic Human3.6M; reference reading {_f(p3['reference_samples_per_s'])}",
        ]
    )
    for k, v in data["workers_per_gpu"].items():
        rows.append(
            [
                f"workers per GPU ({k})",
                str(v["workers"]),
                f"{v['samples_per_s_per_gpu']:.1f} samples/s per GPU at {PUBLISHED_SPEEDS[k]} s/iter, "
                f"batch {data['published_batch_per_gpu']}",
            ]
        )
    for scenario, g in result["grouping"].items():
        ok = "met" if g["parse_refine"] < g["target_ms"] else "NOT met"
        aim = f"aim < {g['target_ms']:.0f}: {ok}; {g['threads']:.0f} threads, one: {g['parse_refine_1_thread']:.2f}"
        rows.append([f"grouping ms/image ({scenario})", f"{g['parse_refine']:.2f}", aim])
    steady = result.get("steady")
    if steady:  # reports from before the steady video have none
        both = steady["tracking_and_smoothing"]
        ok = "met" if steady["aim_met"] else "NOT met"
        rows.append(
            [
                f"tracking + smoothing ms/frame ({steady['people']} people)",
                f"{both['median_ms']:.3f}",
                f"median of {steady['frames']} frames; aim < {steady['aim_ms']:g}: {ok}",
            ]
        )
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny networks and samples (checks the script, in seconds)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="timed training and inference steps per path")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    p.add_argument("--backend-iters", type=int, default=10, help="timed rounds of the inference backends")
    p.add_argument("--peak-batch", type=int, default=bench_peak.PEAK_SHAPES[0][0])
    p.add_argument("--peak-reps", type=int, default=3)
    p.add_argument("--bandwidth-mb", type=int, default=256)
    p.add_argument("--e2e-images", type=int, default=2)
    p.add_argument("--data-images", type=int, default=16)
    p.add_argument("--data-passes", type=int, default=2)
    p.add_argument("--grouping-images", type=int, default=10)
    p.add_argument("--steady-frames", type=int, default=400, help="timed frames of tracking + smoothing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = build_parser()
    args = p.parse_args(argv)
    positive = (
        "batch_size",
        "iters",
        "backend_iters",
        "peak_batch",
        "peak_reps",
        "bandwidth_mb",
        "e2e_images",
        "data_images",
        "steady_frames",
    )
    for name in (*positive, "data_passes", "grouping_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.threads < 0:
        p.error("--warmup and --threads must be >= 0")
    result = run(args)
    print()
    print_table(["figure", "measured", "note"], table(result))
    print(f"total {result['seconds']:.0f} s")
    stem = results_stem(args.out, result["machine"], result["date"])
    write_json(stem.with_suffix(".json"), result)
    draw_report(result, stem.with_suffix(".png"))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    result["_files"] = [str(stem.with_suffix(".json")), str(stem.with_suffix(".png"))]
    return result


if __name__ == "__main__":
    main()
