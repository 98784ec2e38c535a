"""Inference images/s of PyTorch and onnxruntime on this CPU, in one run.

    python -m benchmarks.bench_export [--models hrnet,posenet] [--batch-size 4] [--iters 5] [--threads N]

Each model (random init, the official sizes unless ``--tiny``) is exported with `src.export`
and run on the same fixed batch by PyTorch (fp32, eval, no_grad) and by onnxruntime (CPU
execution provider, the same number of threads), alternating one call each per round; the
figure is the median call. The largest output difference, relative to the largest output, is
printed as well.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate

from benchmarks.bench_topdown import _table, cpu_info
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


def build_task(overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.model, _recursive_=False).eval()


def measure(name: str, overrides: list[str], *, batch: int, iters: int, threads: int, log=print) -> dict[str, Any]:
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
    times: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}

    def call_torch() -> list[np.ndarray]:
        with torch.no_grad():
            return [o.numpy() for o in net(images)]

    calls = {"pytorch": call_torch, "onnxruntime": lambda: session.run(None, feed)}
    results = {k: fn() for k, fn in calls.items()}  # warm-up
    for r in range(iters):
        for key in list(calls) if r % 2 == 0 else list(calls)[::-1]:
            t0 = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - t0)
    # relative to the output's magnitude: the official initialisations give near-zero outputs
    pairs = zip(results["pytorch"], results["onnxruntime"])
    diff = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-30)) for a, b in pairs)
    out = {
        k: {"median_s": statistics.median(v), "images_per_s": batch / statistics.median(v)} for k, v in times.items()
    }
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
    threads = args.threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cpu = cpu_info()
        print(f"bench_export: {cpu['model']}, {threads} threads, batch {args.batch_size}", flush=True)
        runs = {
            name: measure(
                name, MODELS[name][1 if args.tiny else 0], batch=args.batch_size, iters=args.iters, threads=threads
            )
            for name in names
        }
    finally:
        torch.set_num_threads(previous)
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
    _table(["model", "input", "pytorch img/s", "onnxruntime img/s", "ratio", "max rel. diff"], rows)
    return {"cpu": cpu, "threads": threads, "config": vars(args), "models": runs}


if __name__ == "__main__":
    main()
