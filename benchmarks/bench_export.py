"""Inference speed of PyTorch (reference and automatic path) and onnxruntime on this CPU, in one run.

    python -m benchmarks.bench_export [--models hrnet,rtmpose_t,rtmpose_m] [--batch-sizes 1,8] [--iters 10]
        [--threads N] [--tiny] [--no-peak] [--json out.json]

Each model (random init, the official sizes unless ``--tiny``) is exported with `src.export` and run
on the same fixed batch by three backends:

* ``pytorch_reference``: fp32, NCHW, eval, ``torch.inference_mode`` (the official arithmetic);
* ``pytorch_auto``: what ``auto`` resolves to for this network and batch here
  (`benchmarks.common.network_path`: the runner's precision rule, e.g. bf16 autocast on CPUs with
  bf16 instructions, and the memory format measured for the network, as a training run chooses it;
  the prediction layers stay fp32 as the configs keep them);
* ``onnxruntime``: the exported file on the CPU execution provider, fp32, the same number of threads.

For each batch size every (model, backend) call of every model runs once per round, the starting one
rotated each round (`benchmarks.common.alternate`), so that machine noise hits them alike; the figure
is the median call. Batch 1 gives the latency (ms per image), the largest batch the throughput
(images/s). FLOPs are counted on the meta device (`benchmarks.common.forward_gflops`: torch's
FlopCounterMode, 2 FLOPs per multiply-add of convolutions, linear layers and matrix products; norms,
activations and element-wise operations are not counted) and, with the measured convolution peak
(`benchmarks.bench_peak`), give the share of the peak each backend reaches. mmpose publishes
"FLOPS(G)" as multiply-adds (mmengine's counter, which adds norms): compare those with ``gmacs``.

The ratio of RTMPose-m's to HRNet-W32's images/s is printed per backend (the aim: >= 3x on the
same CPU and backend), and mmpose's published onnxruntime latencies beside ours, labelled as
published figures of another CPU. Compare figures within one run, never across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import bench_peak
from benchmarks.common import (
    AUTOCAST_DTYPES,
    alternate,
    build_task,
    forward_gflops,
    load_average,
    log_line,
    machine_info,
    network_path,
    output_tensors,
    print_table,
    summarize,
    torch_threads,
    write_json,
)
from src.export import _Outputs, example_input, export
from src.utils.hardware import REFERENCE

#: Tiny RTMPose: 1/8 of the widths, one block per stage, a 32-wide gated attention unit.
TINY_RTMPOSE = (
    "++model.net.size=null",
    "++model.net.deepen_factor=0.167",
    "++model.net.widen_factor=0.125",
    "++model.net.hidden_dims=32",
    "++model.net.s=16",
    "model.codec.input_size=[48,64]",
)


@dataclass(frozen=True)
class Model:
    """A benchmarked model: its label, the ``python -m src.train`` overrides of the official size,
    and the tiny overrides added for ``--tiny`` (smoke tests)."""

    label: str
    overrides: tuple[str, ...]
    tiny: tuple[str, ...]


MODELS: dict[str, Model] = {
    "hrnet": Model(
        "HRNet-W32",
        ("model=hrnet",),
        ("model.net.width=8", "model.net.stage_num_modules=[1,1,1]", "model.net.num_blocks=1")
        + ("model.net.stem_channels=16", "model.codec.input_size=[48,64]", "model.codec.heatmap_size=[12,16]"),
    ),
    "simplebaseline": Model(
        "SimpleBaseline-50",
        ("model=simplebaseline",),
        ("model.net.layers=[1,1,1,1]", "model.net.base_width=8", "model.net.deconv_channels=16")
        + ("model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]"),
    ),
    "posenet": Model(
        "PoseNet-50",
        ("model=posenet", "data=synthetic_h36m"),
        ("model.net.depth=18", "model.net.base_width=8", "model.net.layers=[1,1,1,1]")
        + ("model.net.deconv_channels=16", "model.codec.input_size=[64,64]", "model.codec.output_size=[16,16]")
        + ("model.codec.depth_dim=16",),
    ),
    "rtmpose_t": Model("RTMPose-t", ("model=rtmpose_t",), TINY_RTMPOSE),
    "rtmpose_m": Model("RTMPose-m", ("model=rtmpose_m",), TINY_RTMPOSE),
}

BACKENDS: dict[str, str] = {
    "pytorch_reference": "PyTorch fp32 NCHW (reference)",
    "pytorch_auto": "PyTorch automatic path",
    "onnxruntime": "onnxruntime CPU fp32",
}

#: The issue's aim: RTMPose-m at least this many times HRNet-W32's images/s, same CPU and backend.
SPEED_PAIR = ("rtmpose_m", "hrnet")
AIM_RATIO = 3.0

#: mmpose's published onnxruntime latencies (ms, batch 1) on another CPU: printed beside ours, never as ours.
PUBLISHED_ORT_LATENCY_MS = {"rtmpose_t": 3.20, "rtmpose_m": 11.06}
PUBLISHED_SOURCE = (
    "mmpose projects/rtmpose/README.md (Model Zoo, Body 2d, 17 keypoints, 256x192): "
    "ORT-Latency on an 8-core Intel i7-11700, a different CPU"
)


class TorchPath:
    """One network in one arithmetic variant for inference: its own copy in the memory format, a
    fixed batch, ``torch.inference_mode`` and autocast where the precision is mixed."""

    def __init__(self, net: torch.nn.Module, images: torch.Tensor, *, precision: str, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.precision, self.channels_last = precision, channels_last
        self.dtype = AUTOCAST_DTYPES.get(precision)
        self.net = _Outputs(copy.deepcopy(net).to(memory_format=fmt)).eval()
        self.images = images.contiguous(memory_format=fmt)

    def __call__(self) -> list[np.ndarray]:
        autocast = torch.autocast("cpu", dtype=self.dtype) if self.dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            out = self.net(self.images)
        return [t.float().numpy() for t in output_tensors(out)]


def onnx_session(path: Path, threads: int, *, spinning: bool = True) -> Any:
    """onnxruntime session on the CPU with ``threads`` intra-op threads. ``spinning``: its idle
    threads spin a while before sleeping (onnxruntime's default, what deployments get); without, they
    sleep at once and leave the cores to the call that follows in the alternation."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def prepare(
    name: str,
    overrides: Sequence[str],
    *,
    batches: Sequence[int],
    threads: int,
    spinning: bool,
    quick: bool,
    work: Path,
) -> dict[str, Any]:
    """One model ready to time: its figures and, per batch, the call of each backend."""
    task = build_task(overrides)
    net = task.net
    shape = tuple(example_input(task).shape[1:])
    hw = (int(shape[1]), int(shape[2]))
    session = onnx_session(export(task, work / f"{name}.onnx", file_format="onnx"), threads, spinning=spinning)
    out: dict[str, Any] = {
        "label": MODELS[name].label if name in MODELS else name,
        "paradigm": task.paradigm,
        "input_hw": list(hw),
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "forward_gflops_per_image": forward_gflops(net, hw),
        "calls": {},
        "fast_path": {},
    }
    out["gmacs_per_image"] = out["forward_gflops_per_image"] / 2
    g = torch.Generator().manual_seed(0)
    for batch in batches:
        images = torch.randn(batch, *shape, generator=g)
        fast = network_path(net, hw, batch, quick=quick)
        out["fast_path"][batch] = fast
        reference = TorchPath(net, images, precision=REFERENCE[0], channels_last=REFERENCE[1])
        auto = TorchPath(net, images, precision=fast["precision"], channels_last=fast["channels_last"])
        feed = {"image": images.numpy()}
        out["calls"][batch] = {
            "pytorch_reference": reference,
            "pytorch_auto": auto,
            "onnxruntime": lambda session=session, feed=feed: session.run(None, feed),
        }
    return out


def largest_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[float, float]:
    """(largest absolute difference, the same over the largest absolute output) of two output lists."""
    absolute = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    scale = max(float(np.abs(x).max()) for x in a)
    return absolute, absolute / (scale + 1e-30)


def measure(
    names: Sequence[str],
    *,
    batches: Sequence[int],
    iters: int,
    warmup: int,
    threads: int,
    tiny: bool = False,
    peak: dict[str, Any] | None = None,
    spinning: bool = True,
    log: Callable[[str], Any] = log_line,
) -> dict[str, Any]:
    """Every backend of every model in ``names`` at every batch in ``batches``, alternating within a
    batch size; returns {"models": {name: figures}, "ratios", "published", ...} (see the module's doc)."""
    models: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = MODELS[name]
            log(f"  {spec.label}: export, FLOPs, the automatic path per batch ...")
            overrides = [*spec.overrides, *(spec.tiny if tiny else ())]
            models[name] = prepare(
                name, overrides, batches=batches, threads=threads, spinning=spinning, quick=tiny, work=Path(tmp)
            )
        for m in models.values():  # parity on the first batch size, before any timing
            calls = m["calls"][batches[0]]
            ref = calls["pytorch_reference"]()
            m["onnx_max_abs_difference"], m["onnx_max_rel_difference"] = largest_difference(ref, calls["onnxruntime"]())
            m["auto_max_abs_difference"], m["auto_max_rel_difference"] = largest_difference(
                ref, calls["pytorch_auto"]()
            )
            m["output_max_abs"] = max(float(np.abs(o).max()) for o in ref)
        for batch in batches:
            log(f"  batch {batch}: {len(models) * len(BACKENDS)} calls a round, {warmup} + {iters} rounds ...")
            calls = {f"{n}/{b}": m["calls"][batch][b] for n, m in models.items() for b in BACKENDS}
            timed = summarize(alternate(calls, warmup=warmup, iters=iters), batch=batch)
            for name, m in models.items():
                figures = m.setdefault("batches", {})[str(batch)] = {}
                for backend in BACKENDS:
                    t = timed[f"{name}/{backend}"]
                    row = {
                        "times_s": t["times_s"],
                        "median_s": t["median_step_s"],
                        "latency_ms": 1000 * t["median_step_s"] / batch,
                        "images_per_s": t["images_per_s"],
                        "achieved_gflops": m["forward_gflops_per_image"] * t["images_per_s"],
                    }
                    if peak:
                        row["pct_of_fp32_peak"] = 100 * row["achieved_gflops"] / peak["fp32_gflops"]
                        if backend == "pytorch_auto" and m["fast_path"][batch]["precision"] != "32-true":
                            row["pct_of_bf16_peak"] = 100 * row["achieved_gflops"] / peak["bf16_gflops"]
                    figures[backend] = row
    for m in models.values():
        auto = {str(b): m["fast_path"][b] for b in batches}
        m["pytorch_auto"] = {
            b: {"precision": f["precision"], "channels_last": f["channels_last"], "reason": f["reason"]}
            for b, f in auto.items()
        }
        del m["calls"], m["fast_path"]
    return {
        "batches": list(batches),
        "iters": iters,
        "warmup": warmup,
        "backends": dict(BACKENDS),
        "onnxruntime_spinning": spinning,
        "flops_convention": "2 FLOPs per multiply-add (torch FlopCounterMode): convolutions, linear, matmul/bmm",
        "models": models,
        "ratios": ratios(models, batches),
        "published": published(models, batches),
    }


def ratios(models: dict[str, Any], batches: Sequence[int]) -> dict[str, Any]:
    """images/s of each RTMPose over HRNet-W32's, per batch and backend, with the aim for RTMPose-m."""
    base = SPEED_PAIR[1]
    if base not in models:
        return {}
    out: dict[str, Any] = {}
    for name in models:
        if name == base or not name.startswith("rtmpose"):
            continue
        per_batch = {}
        for batch in batches:
            mine, theirs = models[name]["batches"][str(batch)], models[base]["batches"][str(batch)]
            per_batch[str(batch)] = {b: mine[b]["images_per_s"] / theirs[b]["images_per_s"] for b in BACKENDS}
        out[f"{name}/{base}"] = {"batches": per_batch, "aim": AIM_RATIO if name == SPEED_PAIR[0] else None}
    return out


def published(models: dict[str, Any], batches: Sequence[int]) -> dict[str, Any]:
    """mmpose's published onnxruntime latencies of the models measured here, beside our batch-1 ones."""
    out = {}
    for name, ms in PUBLISHED_ORT_LATENCY_MS.items():
        if name in models:
            ours = (
                models[name]["batches"].get("1", {}).get("onnxruntime", {}).get("latency_ms") if 1 in batches else None
            )
            out[name] = {"published_latency_ms": ms, "measured_latency_ms": ours, "source": PUBLISHED_SOURCE}
    return out


def peak_share(figures: dict[str, Any]) -> str:
    """The share of the peak of the path's own arithmetic: bf16 for a mixed-precision path, else fp32."""
    if "pct_of_bf16_peak" in figures:
        return f"{figures['pct_of_bf16_peak']:.1f}% bf16"
    if "pct_of_fp32_peak" in figures:
        return f"{figures['pct_of_fp32_peak']:.1f}% fp32"
    return "-"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows of the per-model table: model, input, GFLOPs / GMACs, then per backend the batch-1
    latency, the largest batch's images/s and its share of the peak (`peak_share`)."""
    batches = result["batches"]
    small, large = str(min(batches)), str(max(batches))
    rows = []
    for m in result["models"].values():
        for backend, label in result["backends"].items():
            lat, thr = m["batches"][small][backend], m["batches"][large][backend]
            path = ""
            if backend == "pytorch_auto":
                auto = m["pytorch_auto"][large]
                path = f" ({auto['precision']}, {'channels_last' if auto['channels_last'] else 'NCHW'})"
            rows.append(
                [
                    m["label"],
                    "x".join(map(str, m["input_hw"])),
                    f"{m['forward_gflops_per_image']:.3g} / {m['gmacs_per_image']:.3g}",
                    label + path,
                    f"{lat['latency_ms']:.2f}",
                    f"{thr['images_per_s']:.2f}",
                    peak_share(thr),
                ]
            )
    return rows


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The ratio lines, the parity lines and the published figures, as printed under the table."""
    lines = []
    for pair, r in result["ratios"].items():
        for batch, per_backend in r["batches"].items():
            text = ", ".join(f"{b} {v:.2f}x" for b, v in per_backend.items())
            aim = ""
            if r["aim"]:
                met = [b for b, v in per_backend.items() if v >= r["aim"]]
                aim = f" (aim >= {r['aim']:.0f}x: met by {', '.join(met) or 'none'})"
            lines.append(f"images/s {pair} at batch {batch}: {text}{aim}")
    for m in result["models"].values():
        lines.append(
            f"{m['label']}: onnxruntime vs PyTorch fp32 max |difference| {m['onnx_max_abs_difference']:.1e} "
            f"({m['onnx_max_rel_difference']:.1e} of the largest output {m['output_max_abs']:.1e}); automatic path "
            f"{m['auto_max_rel_difference']:.1e} relative"
        )
    for name, p in result["published"].items():
        ours = p["measured_latency_ms"]
        ours_text = f"; ours (onnxruntime, batch 1, this CPU): {ours:.2f} ms" if ours is not None else ""
        lines.append(
            f"published, not ours: {MODELS[name].label} {p['published_latency_ms']} ms ({p['source']}){ours_text}"
        )
    return lines


HEADERS = ["model", "input", "GFLOPs / GMACs", "backend", "ms/image batch 1", "images/s batch 8", "share of peak"]


def parse_batches(text: str) -> list[int]:
    try:
        batches = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch-sizes takes comma-separated integers, got {text!r}") from None
    if not batches or batches[0] < 1:
        raise argparse.ArgumentTypeError(f"--batch-sizes must be >= 1, got {text!r}")
    return batches


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_export", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {list(MODELS)}")
    p.add_argument("--batch-sizes", type=parse_batches, default=[1, 8], help="the smallest gives the latency")
    p.add_argument("--iters", type=int, default=10, help="timed rounds per batch size")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds per batch size")
    p.add_argument("--threads", type=int, default=0, help="threads of both backends (0: all logical CPUs)")
    p.add_argument("--tiny", action="store_true", help="tiny widths and peak shapes (a smoke test of the script)")
    p.add_argument("--no-peak", action="store_true", help="skip the peak measurement (no peak shares)")
    p.add_argument(
        "--ort-no-spinning", action="store_true", help="onnxruntime's idle threads sleep at once (default: they spin)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = build_parser()
    args = p.parse_args(argv)
    names = list(dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip()))
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        p.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if args.iters < 1 or args.warmup < 0 or args.threads < 0:
        p.error("--iters must be >= 1, --warmup and --threads >= 0")
    with torch_threads(args.threads) as threads:
        machine = machine_info(threads)
        log_line(f"bench_export: {machine['cpu']}, {threads} threads, batches {args.batch_sizes}")
        peak = None
        if not args.no_peak:
            log_line("  peak: 3x3 convolutions ...")
            shapes = bench_peak.TINY_PEAK_SHAPES if args.tiny else bench_peak.PEAK_SHAPES
            batch = 1 if args.tiny else bench_peak.PEAK_SHAPES[0][0]
            peak = bench_peak.measure(
                batch=batch, reps=1 if args.tiny else 3, bandwidth_mb=4 if args.tiny else 256, shapes=shapes
            )
        result = measure(
            names,
            batches=args.batch_sizes,
            iters=args.iters,
            warmup=args.warmup,
            threads=threads,
            tiny=args.tiny,
            peak=peak,
            spinning=not args.ort_no_spinning,
        )
    machine["load_average_after"] = load_average()
    headers = [*HEADERS]
    headers[4], headers[5] = f"ms/image batch {min(args.batch_sizes)}", f"images/s batch {max(args.batch_sizes)}"
    print()
    print_table(headers, table_rows(result))
    for line in summary_lines(result):
        print(line)
    if peak:
        print(
            f"peak: fp32 {peak['fp32_gflops']:.1f} GFLOP/s, bf16 {peak['bf16_gflops']:.1f} GFLOP/s (3x3 convolutions)"
        )
    out = {"machine": machine, "config": {k: v for k, v in vars(args).items() if k != "json"}, "peak": peak, **result}
    if args.json is not None:
        log_line(f"wrote {write_json(args.json, out)}")
    return out


if __name__ == "__main__":
    main()
