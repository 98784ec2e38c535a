"""Inference images/s of PyTorch and onnxruntime on this CPU, in one run.

    python -m benchmarks.bench_export [--models hrnet,posenet] [--batch-size 4] [--iters 5] [--threads N]

Each model (random init, the official sizes unless ``--tiny``) is exported with `src.export`
and run on the same fixed batch by PyTorch (fp32, eval, no_grad) and by onnxruntime (CPU
execution provider, the same number of threads), alternating one call each per round after a
warm-up round (`benchmarks.common.alternate`); the figure is the median call. The largest output
difference, relative to the largest output, is printed as well.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import alternate, build_task, log_line, machine_info, print_table, summarize, torch_threads
from src.export import _Outputs, example_input, export

#: model -> overrides of `python -m src.train` (official sizes) and the tiny ones (smoke tests)
MODELS = {
    "hrnet": (["model=hrnet"], ["model=hrnet", "model.net.width=8", "model.net.stage_num_modules=[1,1,1]"]),
    "simplebaseline": (["model=simplebaseline"], ["model=simplebaseline", "model.net.layers=[1,1,1,1]"]),
    "posenet": (
        ["model=posenet", "data=synthetic_h36m"],
        ["model=posenet", "data=synthetic_h36m", "model.net.depth=18", "model.net.base_width=8"],
    ),
}


def measure(name: str, overrides: list[str], *, batch: int, iters: int, threads: int, log=log_line) -> dict[str, Any]:
    import onnxruntime

    task = build_task(overrides)
    images = torch.randn(batch, *example_input(task).shape[1:], generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = export(task, Path(tmp) / f"{name}.onnx", file_format="onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    net = _Outputs(task.net).eval()
    feed = {"image": images.numpy()}

    def call_torch() -> list[np.ndarray]:
        with torch.no_grad():
            return [o.numpy() for o in net(images)]

    calls = {"pytorch": call_torch, "onnxruntime": lambda: session.run(None, feed)}
    results = {k: fn() for k, fn in calls.items()}  # compared below; the timed calls warm up first
    timed = summarize(alternate(calls, warmup=1, iters=iters), batch=batch)
    # relative to the output's magnitude: the official initialisations give near-zero outputs
    pairs = zip(results["pytorch"], results["onnxruntime"])
    diff = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-30)) for a, b in pairs)
    out = {k: {"median_s": v["median_step_s"], "images_per_s": v["images_per_s"]} for k, v in timed.items()}
    speeds = {k: round(v["images_per_s"], 2) for k, v in out.items()}
    log(f"  {name}: images/s {speeds}")
    return {"backends": out, "max_rel_difference": diff, "input": list(images.shape)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_export", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {list(MODELS)}")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="threads of both backends (default: os.cpu_count())")
    p.add_argument("--tiny", action="store_true", help="tiny widths (a smoke test of the script)")
    args = p.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if args.batch_size < 1 or args.iters < 1 or args.threads < 0:
        raise SystemExit("--batch-size and --iters must be >= 1, --threads >= 0")
    with torch_threads(args.threads) as threads:
        machine = machine_info(threads)
        log_line(f"bench_export: {machine['cpu']}, {threads} threads, batch {args.batch_size}")
        runs = {
            name: measure(
                name, MODELS[name][1 if args.tiny else 0], batch=args.batch_size, iters=args.iters, threads=threads
            )
            for name in names
        }
    rows = [
        [
            name,
            "x".join(map(str, r["input"][2:])),
            f"{r['backends']['pytorch']['images_per_s']:.2f}",
            f"{r['backends']['onnxruntime']['images_per_s']:.2f}",
            f"{r['backends']['onnxruntime']['images_per_s'] / r['backends']['pytorch']['images_per_s']:.2f}x",
            f"{r['max_rel_difference']:.1e}",
        ]
        for name, r in runs.items()
    ]
    print()
    print_table(["model", "input", "pytorch img/s", "onnxruntime img/s", "ratio", "max rel. diff"], rows)
    return {"machine": machine, "config": vars(args), "models": runs}


if __name__ == "__main__":
    main()
