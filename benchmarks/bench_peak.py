"""The machine's measured peak: 3x3-convolution GFLOP/s in fp32 and bf16, and memory bandwidth.

    python -m benchmarks.bench_peak [--batch 8] [--reps 3] [--bandwidth-mb 256] [--threads N] [--json out.json]

Large, compute-bound 3x3 convolutions (C -> C, stride 1, padding 1; the shapes `PEAK_SHAPES` with
the batch replaced by ``--batch``), forward under ``torch.no_grad``, contiguous and channels_last,
fp32 and bf16 (bf16 weights and inputs), run round-robin after one warm-up call each. The best
2 x MACs / time is the "fp32 conv peak" (what the training benchmarks' peak shares divide by) and
the "bf16 conv peak". Memory bandwidth: the best copy of a large fp32 tensor, bytes read plus bytes
written per second.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.common import alternate, log_line, machine_info, print_table, time_call, torch_threads, write_json

#: (batch, channels, height, width) of the peak convolutions; the batch is a default (``--batch``).
PEAK_SHAPES = ((8, 256, 64, 48), (8, 128, 128, 96))
#: Small shapes that check the bookkeeping in seconds (``--tiny``), even where bf16 is emulated.
TINY_PEAK_SHAPES = ((1, 16, 16, 12), (1, 8, 24, 16))


def measure_conv_peak(*, batch: int, reps: int, shapes: tuple = PEAK_SHAPES) -> dict[str, Any]:
    """Best forward GFLOP/s of each shape x dtype x memory format, and the best per dtype."""
    configs: dict[str, dict[str, Any]] = {}
    for _, c, h, w in shapes:
        for dtype, dname in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            for fmt, fname in ((torch.channels_last, "channels_last"), (torch.contiguous_format, "contiguous")):
                conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(dtype=dtype, memory_format=fmt).eval()
                x = torch.randn(batch, c, h, w).to(dtype=dtype).contiguous(memory_format=fmt)
                configs[f"{dname} {batch}x{c}x{h}x{w} {fname}"] = {
                    "dtype": dname,
                    "shape": [batch, c, h, w],
                    "memory_format": fname,
                    "gflop": 2 * batch * c * c * 9 * h * w / 1e9,
                    "call": lambda conv=conv, x=x: conv(x),
                }
    with torch.no_grad():
        timings = alternate({k: v["call"] for k, v in configs.items()}, warmup=1, iters=reps)
    runs = []
    for key, cfg in configs.items():
        best = min(timings[key]["times_s"])
        runs.append({k: v for k, v in cfg.items() if k != "call"} | {"times_s": timings[key]["times_s"]})
        runs[-1].update(best_s=best, gflops=cfg["gflop"] / best)
    peak = {d: max(r["gflops"] for r in runs if r["dtype"] == d) for d in ("fp32", "bf16")}
    return {"fp32_gflops": peak["fp32"], "bf16_gflops": peak["bf16"], "batch": batch, "reps": reps, "runs": runs}


def memory_bandwidth(*, megabytes: int, reps: int) -> dict[str, Any]:
    """Best GB/s of copying a ``megabytes`` fp32 tensor (bytes read + bytes written)."""
    n = megabytes * 2**20 // 4
    src, dst = torch.rand(n), torch.empty(n)
    dst.copy_(src)  # first touch
    best = min(time_call(lambda: dst.copy_(src)) for _ in range(reps))
    return {"copy_gb_per_s": 2 * n * 4 / best / 1e9, "megabytes": megabytes, "reps": reps}


def measure(*, batch: int, reps: int, bandwidth_mb: int, shapes: tuple = PEAK_SHAPES) -> dict[str, Any]:
    """The peak as the report records it: conv peak fields plus the bandwidth fields."""
    peak = measure_conv_peak(batch=batch, reps=reps, shapes=shapes)
    peak.update(memory_bandwidth(megabytes=bandwidth_mb, reps=reps + 2))
    return peak


def print_peak(peak: dict[str, Any], log=log_line) -> None:
    print_table(
        ["dtype", "input NCHW", "memory format", "GFLOP", "best ms", "GFLOP/s"],
        [
            [
                r["dtype"],
                "x".join(map(str, r["shape"])),
                r["memory_format"],
                f"{r['gflop']:.2f}",
                f"{1000 * r['best_s']:.2f}",
                f"{r['gflops']:.1f}",
            ]
            for r in peak["runs"]
        ],
        log,
    )
    log(
        f"fp32 conv peak {peak['fp32_gflops']:.1f} GFLOP/s, bf16 conv peak {peak['bf16_gflops']:.1f} GFLOP/s "
        f"(bf16 / fp32 = {peak['bf16_gflops'] / peak['fp32_gflops']:.2f}x); memory bandwidth "
        f"{peak['copy_gb_per_s']:.1f} GB/s (copy of {peak['megabytes']} MB, read + write)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_peak", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=PEAK_SHAPES[0][0], help="batch of the peak convolutions")
    p.add_argument("--reps", type=int, default=3, help="timed calls per convolution")
    p.add_argument("--bandwidth-mb", type=int, default=256, help="size of the copied tensor")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    p.add_argument("--tiny", action="store_true", help="small convolutions (checks the script, in seconds)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = build_parser()
    args = p.parse_args(argv)
    for name in ("batch", "reps", "bandwidth_mb"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.threads < 0:
        p.error("--threads must be >= 0")
    with torch_threads(args.threads) as threads:
        machine = machine_info(threads)
        log_line(f"bench_peak: {machine['cpu']}, {threads} threads, load average {machine['load_average_before']}")
        shapes = TINY_PEAK_SHAPES if args.tiny else PEAK_SHAPES
        peak = measure(batch=args.batch, reps=args.reps, bandwidth_mb=args.bandwidth_mb, shapes=shapes)
    print_peak(peak)
    result = {"machine": machine, "config": {k: v for k, v in vars(args).items() if k != "json"}, "peak": peak}
    if args.json is not None:
        log_line(f"wrote {write_json(args.json, result)}")
    return result


if __name__ == "__main__":
    main()
