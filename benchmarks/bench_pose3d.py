"""3D PoseNet benchmark on the CPU: training images/s in fp32 and in the fast path, data samples/s.

    python -m benchmarks.bench_pose3d [--depth 50] [--input-size 256] [--batch-size 4] [--iters 3] [--threads N]

1. **Training.** PoseNet (ResNet backbone, three deconvolutions, K x 64 depth bins; random init)
   on a fixed random batch with random coordinate targets: forward, soft-argmax decoding, the
   integral L1 loss, backward and an Adam step, timed per step. Variants as in
   `benchmarks.bench_topdown`: ``fp32`` (the official arithmetic: fp32, contiguous), ``fp32_cl``
   (channels_last), ``bf16`` (bf16 autocast) and ``bf16_cl``; they run round-robin, one step each
   per round with the starting variant rotated, and the figure is the median step. The "fast
   path" is ``bf16_cl`` on CPUs with native bf16 (AVX512-BF16 or AMX) and ``fp32_cl`` otherwise;
   its ratio to ``fp32`` is printed. The soft-argmax runs in fp32 in every variant (the codec
   leaves autocast for it).
2. **Data pipeline.** A small synthetic Human3.6M root (written to a temporary folder) read by the
   Human3.6M reader and fed through ``Pose3DDataset(training=True)`` with the official 3DMPPE
   augmentation, timed in this process with one torch thread: samples/s per DataLoader worker.

Ratios are measured in one run; figures across runs or machines are not comparable.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.bench_topdown import VARIANTS, _table, bf16_hardware_note, cpu_info
from src.codecs.integral_3d import Integral3D
from src.layouts import H36M18
from src.losses import IntegralL1Loss
from src.models.posenet import PoseNet

BASELINE = "fp32"


def fast_path(cpu: dict[str, Any]) -> str:
    """The variant a CPU should train with: bf16 + channels_last with native bf16, else channels_last."""
    flags = cpu["flags"]
    return "bf16_cl" if flags["avx512_bf16"] or flags["amx_bf16"] else "fp32_cl"


def forward_gflops(net: PoseNet, input_size: int) -> float:
    """Forward GFLOPs of one image (convolutions), counted on the meta device."""
    with torch.device("meta"):
        meta = copy.deepcopy(net).to("meta")
        x = torch.empty(1, 3, input_size, input_size)
    with FlopCounterMode(display=False) as counter:
        meta(x)
    return counter.get_total_flops() / 1e9


class _Variant:
    def __init__(self, name: str, base: PoseNet, codec: Integral3D, *, batch: int, input_size: int) -> None:
        self.name = name
        self.channels_last, self.bf16, self.label = VARIANTS[name]
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.net = copy.deepcopy(base).to(memory_format=fmt).train()
        self.codec = codec
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.loss = IntegralL1Loss()
        g = torch.Generator().manual_seed(1)
        k, out = base.num_joints, codec.output_size[0]
        self.images = torch.randn(batch, 3, input_size, input_size, generator=g).contiguous(memory_format=fmt)
        self.targets = torch.rand(batch, k, 3, generator=g) * out
        self.weight = torch.ones(batch, k)
        self.have_depth = torch.ones(batch)
        self.times_s: list[float] = []

    def step(self) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            coords = self.codec.decode(self.net(self.images))
        loss = self.loss(coords, self.targets, self.weight, self.have_depth)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if not math.isfinite(float(loss.detach())):
            raise RuntimeError(f"variant {self.name}: non-finite loss")
        return time.perf_counter() - t0


def measure_training(
    *, depth: int, input_size: int, batch: int, warmup: int, iters: int, base_width: int, log=print
) -> dict[str, Any]:
    torch.manual_seed(0)
    out = input_size // 4
    codec = Integral3D(input_size=(input_size, input_size), output_size=(out, out), depth_dim=64)
    base = PoseNet(depth=depth, num_joints=H36M18.num_keypoints, depth_dim=64, base_width=base_width)
    gflops = forward_gflops(base, input_size)
    runs = [_Variant(name, base, codec, batch=batch, input_size=input_size) for name in VARIANTS]
    for r in range(warmup + iters):
        order = runs[r % len(runs) :] + runs[: r % len(runs)]
        times = {run.name: run.step() for run in order}
        if r >= warmup:
            for run in runs:
                run.times_s.append(times[run.name])
        phase = "warm-up" if r < warmup else "timed"
        log(f"  round {r + 1}/{warmup + iters} ({phase}): " + ", ".join(f"{n} {t:.2f}s" for n, t in times.items()))
    variants = {}
    for run in runs:
        median = statistics.median(run.times_s)
        variants[run.name] = {
            "label": run.label,
            "median_step_s": median,
            "images_per_s": batch / median,
            "achieved_gflops": 3 * gflops * batch / median,
        }
    for v in variants.values():
        v["speedup_vs_fp32"] = v["images_per_s"] / variants[BASELINE]["images_per_s"]
    return {"forward_gflops_per_image": gflops, "variants": variants}


def measure_data(*, images: int, passes: int, input_size: int, log=print) -> dict[str, Any]:
    """Samples/s per worker of `Pose3DDataset` with the official augmentation on synthetic Human3.6M."""
    from src.datasets.pose3d import Pose3DDataset
    from src.readers.h36m import Human36MReader
    from src.synthetic.h36m_writer import ensure_synthetic_h36m

    with tempfile.TemporaryDirectory() as tmp:
        frames = max(1, math.ceil(images / 2))
        ensure_synthetic_h36m(Path(tmp), subjects=(1,), actions=(2,), subactions=1, frames=frames, num_cameras=2)
        reader = Human36MReader(root=tmp, train_subjects=(1,), val_subjects=(1,), train_frame_step=1)
        out = input_size // 4
        codec = Integral3D(input_size=(input_size, input_size), output_size=(out, out), depth_dim=64)
        records = reader.load_records("train", keypoint_info=H36M18, aspect_ratio=1.0, training=True)
        dataset = Pose3DDataset(records, codec=codec, keypoint_info=H36M18, training=True, seed=0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cv2.setNumThreads(0)
        try:
            dataset[(0, 0)]  # warm-up
            seconds = {False: 0.0, True: 0.0}  # the reference reading, the fast path's
            for p in range(passes):
                for fast in seconds:  # data.reduced_decode and data.normalize_on_device
                    dataset.reduced_decode = dataset.normalize_on_device = fast
                    t0 = time.perf_counter()
                    for i in range(len(dataset)):
                        dataset[(i, p)]
                    seconds[fast] += time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)
    count = passes * len(dataset)
    log(
        f"  data: {count} samples in {seconds[True]:.2f}s with the fast path's reading, "
        f"{seconds[False]:.2f}s with the reference reading"
    )
    return {
        "samples": count,
        "seconds": seconds[True],
        "samples_per_s": count / seconds[True],
        "reference_samples_per_s": count / seconds[False],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pose3d", description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=50, help="ResNet depth (default 50)")
    p.add_argument("--base-width", type=int, default=64, help="ResNet stem width (default 64, the official)")
    p.add_argument("--input-size", type=int, default=256, help="square input side, multiple of 32 (default 256)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: os.cpu_count())")
    p.add_argument("--data-images", type=int, default=16)
    p.add_argument("--data-passes", type=int, default=2)
    args = p.parse_args(argv)
    if args.input_size % 32 or args.input_size <= 0:
        raise SystemExit(f"--input-size must be a positive multiple of 32, got {args.input_size}")
    threads = args.threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cpu = cpu_info()
        print(f"bench_pose3d: {cpu['model']}, {threads} threads; flags {cpu['flags']}", flush=True)
        print(bf16_hardware_note(cpu), flush=True)
        train = measure_training(
            depth=args.depth,
            input_size=args.input_size,
            batch=args.batch_size,
            warmup=args.warmup,
            iters=args.iters,
            base_width=args.base_width,
        )
        data = measure_data(images=args.data_images, passes=args.data_passes, input_size=args.input_size)
    finally:
        torch.set_num_threads(previous)
    fast = fast_path(cpu)
    print(
        f"\nPoseNet-{args.depth} training at {args.input_size}x{args.input_size}, batch {args.batch_size} "
        f"({train['forward_gflops_per_image']:.2f} forward GFLOPs per image)"
    )
    rows = [
        [
            f"{name}{' (fast path)' if name == fast else ''}",
            f"{v['median_step_s']:.3f}",
            f"{v['images_per_s']:.2f}",
            f"{v['speedup_vs_fp32']:.2f}x",
            f"{v['achieved_gflops']:.1f}",
        ]
        for name, v in train["variants"].items()
    ]
    _table(["variant", "step s", "images/s", "vs fp32", "GFLOP/s"], rows)
    print(f"\nfast path {fast}: {train['variants'][fast]['speedup_vs_fp32']:.2f}x the fp32 reference")
    print(f"data pipeline (Pose3DDataset, official augmentation): {data['samples_per_s']:.1f} samples/s per worker")
    return {"cpu": cpu, "threads": threads, "fast_path": fast, "train": train, "data": data, "config": vars(args)}


if __name__ == "__main__":
    main()
