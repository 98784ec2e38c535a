"""The benchmark report: this machine, its measured peak, and every model family, in one run.

    python -m benchmarks.report [--quick] [--tiny] [--batch-size 8] [--iters 3] [--out benchmarks/results]

Writes ``<out>/<machine>-<date>.json`` and ``.png`` and prints one table:

* **machine**: CPU model, threads used, the instruction sets that matter (AVX2, AVX-512,
  AVX512_BF16, AMX), torch's CPU capability, the GPU if any;
* **peak**: fp32 and bf16 3x3-convolution GFLOP/s (`benchmarks.bench_topdown.measure_conv_peak`)
  and memory bandwidth (a large tensor copy: bytes read + written per second);
* **training, per family** (HRNet-W32, SimpleBaseline-50, Hourglass-8, HigherHRNet-W32,
  PoseNet-50, each built from its ``model=`` config at the published input size): images/s of
  the reference path (fp32, NCHW, eager: the official arithmetic) and of the automatic path
  (`src.utils.hardware.choose_fast_path`: what ``trainer.precision=auto`` and
  ``model.channels_last=auto`` choose here, with the fp32 prediction layers the configs keep),
  their ratio, and the share of the machine's peak each reaches. A step is forward, an fp32 MSE
  on every network output against fixed random targets, backward and an Adam step: the network's
  arithmetic, not each family's own loss. FLOPs are counted from the network on the meta device
  (torch's FlopCounterMode), a training step as 3x the forward;
* **inference, per family**: images/s of the automatic path in eval mode, without and with the
  flip test (a second forward on the mirrored batch), and HigherHRNet end to end on 640x480
  images (resize, forward, aggregation, grouping; `benchmarks.bench_bottomup`);
* **data pipeline**: training samples/s of one worker for each paradigm (top-down 256x192 crops
  from 640x480 JPEGs, bottom-up 512 images with targets at 1/4 and 1/2, 3D 256x256 crops) and the
  DataLoader workers per GPU the top-down rate implies at the published training speeds;
* **grouping**: HigherHRNet's ``HeatmapParser.parse`` ms per image, typical and stress scenarios.

The paths alternate step by step, so that machine noise hits them alike; compare figures from one
run, never across runs. Nothing here runs in the test suite except ``--tiny`` (tiny networks,
a few samples), which checks that the script runs and its bookkeeping.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import io
import json
import math
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import bench_bottomup, bench_grouping, bench_pose3d, bench_topdown
from benchmarks.report_plot import draw_report
from src.utils.hardware import REFERENCE, choose_fast_path, cpu_info

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
        ["model.net.layers=[1,1,1,1]", "model.net.base_width=8", "model.net.deconv_channels=16"]
        + ["model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"],
    ),
    "Hourglass-8": (
        "topdown",
        ["model=hourglass"],
        ["model.net.num_stacks=2", "model.net.num_feats=16", "model.net.depth=2"]
        + ["model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]"],
    ),
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
        ["model.net.depth=18", "model.net.base_width=8", "model.net.layers=[1,1,1,1]", "model.net.deconv_channels=16"]
        + ["model.codec.input_size=[64,64]", "model.codec.output_size=[16,16]", "model.codec.depth_dim=16"],
    ),
}

#: Published HRNet-W32 256x192 training speeds on 8 V100s (seconds per iteration), and the per-GPU
#: batch assumed to turn them into samples/s (the official recipe's 32 per GPU).
PUBLISHED_SPEEDS = {"official HRNet code": 1.31, "mmpose": 0.54}
PUBLISHED_BATCH_PER_GPU = 32


def build_task(overrides: list[str]) -> Any:
    """The LightningModule of a ``train`` config with ``overrides`` (random weights), in eval mode."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.model, _recursive_=False).eval()


def input_hw(task: Any) -> tuple[int, int]:
    size = task.codec.input_size
    return (int(size), int(size)) if isinstance(size, int) else (int(size[1]), int(size[0]))


def _tensors(out: Any) -> list[torch.Tensor]:
    """Every tensor of a network output (a tensor, or nested lists / tuples / dicts of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _tensors(o)]


def forward_gflops(net: torch.nn.Module, hw: tuple[int, int]) -> float:
    """Forward GFLOPs of one image, counted on the meta device (no memory, no arithmetic)."""
    meta = copy.deepcopy(net).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, *hw, device="meta"))
    return counter.get_total_flops() / 1e9


def memory_bandwidth(*, megabytes: int, reps: int) -> dict[str, float]:
    """Best GB/s of copying a ``megabytes`` fp32 tensor (bytes read + bytes written)."""
    n = megabytes * 2**20 // 4
    src, dst = torch.rand(n), torch.empty(n)
    dst.copy_(src)  # first touch
    best = min(bench_topdown._time_call(lambda: dst.copy_(src)) for _ in range(reps))
    return {"copy_gb_per_s": 2 * n * 4 / best / 1e9, "megabytes": megabytes, "reps": reps}


class _Path:
    """One arithmetic path of one network: its own copy, optimiser and fixed random batch."""

    def __init__(
        self, net: torch.nn.Module, *, hw: tuple[int, int], batch: int, precision: str, channels_last: bool, seed: int
    ) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision, self.channels_last = precision, channels_last
        self.dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net = copy.deepcopy(net).to(self.device, memory_format=fmt)
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(batch, 3, *hw, generator=g).to(self.device).contiguous(memory_format=fmt)
        with torch.no_grad():
            outputs = _tensors(self.net.eval()(self.images[:1]))
        self.targets = [torch.rand(batch, *o.shape[1:], generator=g).to(self.device) for o in outputs]
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4)
        self.train_s: list[float] = []
        self.infer_s: dict[bool, list[float]] = {False: [], True: []}

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(self) -> float:
        self.net.train()
        self._sync()
        t0 = time.perf_counter()
        with self._autocast():
            outputs = _tensors(self.net(self.images))
        loss = sum(torch.nn.functional.mse_loss(o.float(), t) for o, t in zip(outputs, self.targets))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._sync()
        elapsed = time.perf_counter() - t0
        if not math.isfinite(float(loss.detach())):
            raise RuntimeError(f"non-finite loss on the {self.precision} path")
        return elapsed

    def infer_step(self, flip: bool) -> float:
        self.net.eval()
        self._sync()
        t0 = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            self.net(self.images)
            if flip:
                self.net(self.images.flip(3))
        self._sync()
        return time.perf_counter() - t0


def measure_family(
    name: str, overrides: list[str], *, batch: int, warmup: int, iters: int, fast: Any, seed: int, log: Callable
) -> dict[str, Any]:
    """Training and inference images/s of one family on the reference and the automatic path."""
    task = build_task(overrides)
    net, hw = task.net, input_hw(task)
    gflops = forward_gflops(net, hw)
    paths = {
        "reference": _Path(net, hw=hw, batch=batch, precision=REFERENCE[0], channels_last=REFERENCE[1], seed=seed),
        "auto": _Path(net, hw=hw, batch=batch, precision=fast.precision, channels_last=fast.channels_last, seed=seed),
    }
    order = list(paths)
    for r in range(warmup + iters):  # alternating, the starting path rotated each round
        for key in order if r % 2 == 0 else order[::-1]:
            elapsed = paths[key].train_step()
            if r >= warmup:
                paths[key].train_s.append(elapsed)
    auto = paths["auto"]
    for r in range(warmup + iters):
        for flip in (False, True) if r % 2 == 0 else (True, False):
            elapsed = auto.infer_step(flip)
            if r >= warmup:
                auto.infer_s[flip].append(elapsed)
    out: dict[str, Any] = {
        "paradigm": task.paradigm,
        "input_hw": list(hw),
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "forward_gflops_per_image": gflops,
        "train_gflop_per_image": 3 * gflops,
        "batch": batch,
    }
    for key, path in paths.items():
        median = statistics.median(path.train_s)
        out[f"train_{key}"] = {
            "precision": path.precision,
            "channels_last": path.channels_last,
            "step_s": path.train_s,
            "images_per_s": batch / median,
            "achieved_gflops": 3 * gflops * batch / median,
        }
    out["train_ratio"] = out["train_auto"]["images_per_s"] / out["train_reference"]["images_per_s"]
    out["infer_auto"] = {
        f"flip_{'on' if f else 'off'}_images_per_s": batch / statistics.median(auto.infer_s[f]) for f in (False, True)
    }
    log(
        f"  {name}: train {out['train_reference']['images_per_s']:.2f} -> {out['train_auto']['images_per_s']:.2f} "
        f"images/s ({out['train_ratio']:.2f}x); inference {out['infer_auto']['flip_off_images_per_s']:.1f} / "
        f"{out['infer_auto']['flip_on_images_per_s']:.1f} images/s without / with flip"
    )
    return out


def measure_bottomup_data(*, images: int, passes: int, tiny: bool, seed: int) -> dict[str, Any]:
    """Samples/s of one worker of `BottomUpDataset(training=True)` on synthetic 640x480 JPEGs."""
    import cv2

    from src.datasets.bottomup import BottomUpDataset
    from src.layouts import COCO17
    from src.readers.coco_images import load_coco_images

    paradigm, overrides, tiny_overrides = FAMILIES["HigherHRNet-W32"]
    codec = build_task(overrides + (tiny_overrides if tiny else [])).codec
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        ann = bench_topdown.write_synthetic_coco(Path(tmp), num_images=images, keypoint_info=COCO17, seed=seed)
        records = load_coco_images(ann, Path(tmp) / "images", keypoint_info=COCO17, training=True)
        dataset = BottomUpDataset(records, codec=codec, keypoint_info=COCO17, training=True, seed=seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cv2.setNumThreads(0)
        try:
            dataset[(0, 0)]  # warm-up
            seconds = {False: 0.0, True: 0.0}  # the reference reading, the fast path's (uint8 images)
            for p in range(passes):
                for fast in seconds:
                    dataset.normalize_on_device = fast
                    t0 = time.perf_counter()
                    for i in range(len(dataset)):
                        dataset[(i, p)]
                    seconds[fast] += time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)
    count = passes * len(dataset)
    return {
        "samples": count,
        "seconds": seconds[True],
        "samples_per_s": count / seconds[True],
        "reference_samples_per_s": count / seconds[False],
        "input_size": codec.input_size,
    }


def _quiet(fn: Callable, *args, **kwargs) -> Any:
    """Call ``fn`` with its own printing captured (the report prints one table)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def machine_name(cpu: dict[str, Any]) -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return re.sub(r"[^A-Za-z0-9]+", "-", gpu or cpu["model"]).strip("-").lower() or "machine"


def run(args: argparse.Namespace, log: Callable = print) -> dict[str, Any]:
    threads = args.threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    cpu = cpu_info()
    fast = choose_fast_path("auto")
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpu": cpu["model"],
            "threads": threads,
            "logical_cpus": cpu["logical_cpus"],
            "flags": cpu["flags"],
            "torch_cpu_capability": cpu["torch_cpu_capability"],
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": bench_topdown.load_average(),
        },
        "automatic_path": {"precision": fast.precision, "channels_last": fast.channels_last, "reason": fast.reason},
        "config": {k: v for k, v in vars(args).items() if k != "out"},
    }
    started = time.perf_counter()
    try:
        log(f"[1/5] peak: convolutions and memory bandwidth ({threads} threads) ...")
        peak = bench_topdown.measure_conv_peak(batch=args.peak_batch, reps=args.peak_reps)
        peak.update(memory_bandwidth(megabytes=args.bandwidth_mb, reps=args.peak_reps + 2))
        result["peak"] = peak
        log(f"[2/5] training and inference per family (batch {args.batch_size}; automatic path: {fast.reason}) ...")
        families = {}
        for name, (_, overrides, tiny) in FAMILIES.items():
            families[name] = measure_family(
                name,
                overrides + (tiny if args.tiny else []),
                batch=args.batch_size,
                warmup=args.warmup,
                iters=args.iters,
                fast=fast,
                seed=args.seed,
                log=log,
            )
            for key in ("train_reference", "train_auto"):
                share = families[name][key]
                share["pct_of_fp32_peak"] = 100 * share["achieved_gflops"] / peak["fp32_gflops"]
                share["pct_of_bf16_peak"] = 100 * share["achieved_gflops"] / peak["bf16_gflops"]
        result["families"] = families
        log("[3/5] HigherHRNet end to end on 640x480 images (grouping included) ...")
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
        log("[4/5] data pipeline, one worker per paradigm ...")
        from src.layouts import COCO17

        td_size = (64, 48) if args.tiny else (256, 192)
        topdown = bench_topdown.measure_data(
            num_images=args.data_images, passes=args.data_passes, image_size=td_size, keypoint_info=COCO17
        )
        bottomup = measure_bottomup_data(
            images=max(2, args.data_images // 2), passes=args.data_passes, tiny=args.tiny, seed=0
        )
        pose3d = _quiet(
            bench_pose3d.measure_data,
            images=args.data_images,
            passes=args.data_passes,
            input_size=64 if args.tiny else 256,
            log=lambda *_: None,
        )
        per_gpu = {k: PUBLISHED_BATCH_PER_GPU / s for k, s in PUBLISHED_SPEEDS.items()}
        result["data"] = {
            "topdown": {
                "samples_per_s": topdown["samples_per_s_per_worker"],
                "full_decode_samples_per_s": topdown["full_decode_samples_per_s"],
                "reduced_fraction": topdown["reduced_fraction"],
                "stage_ms_per_sample": topdown["stage_ms_per_sample"],
                "collate_ms_per_sample": topdown["collate_ms_per_sample"],
                "aim_samples_per_s": bench_topdown.AIM_SAMPLES_PER_S,
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
        log("[5/5] grouping (HeatmapParser.parse), typical and stress ...")
        grouping_args = ["--images", str(args.grouping_images), "--no-dense"]
        if args.tiny:
            grouping_args += ["--size", "64", "--repeats", "1"]
        result["grouping"] = {
            scenario: _quiet(bench_grouping.main, grouping_args + (["--stress"] if scenario == "stress" else []))
            for scenario in ("typical", "stress")
        }
    finally:
        torch.set_num_threads(previous)
    result["machine"]["load_average_after"] = bench_topdown.load_average()
    result["seconds"] = time.perf_counter() - started
    return result


def _f(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


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
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny networks and samples (checks the script, in seconds)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="timed training and inference steps per path")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    p.add_argument("--peak-batch", type=int, default=bench_topdown.PEAK_SHAPES[0][0])
    p.add_argument("--peak-reps", type=int, default=3)
    p.add_argument("--bandwidth-mb", type=int, default=256)
    p.add_argument("--e2e-images", type=int, default=2)
    p.add_argument("--data-images", type=int, default=16)
    p.add_argument("--data-passes", type=int, default=2)
    p.add_argument("--grouping-images", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    result = run(args)
    rows = table(result)
    print()
    bench_topdown._table(["figure", "measured", "note"], rows)
    print(f"total {result['seconds']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{machine_name(cpu_info())}-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    draw_report(result, stem.with_suffix(".png"))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    result["_files"] = [str(stem.with_suffix(".json")), str(stem.with_suffix(".png"))]
    return result


if __name__ == "__main__":
    main()
