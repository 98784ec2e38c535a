"""3D PoseNet benchmark: training images/s in each arithmetic variant, and data samples/s per worker.

    python -m benchmarks.bench_pose3d [--depth 50] [--input-size 256] [--batch-size 4] [--iters 3] [--threads N]

1. **Training.** PoseNet (ResNet backbone, three deconvolutions, K x 64 depth bins; random init)
   on a fixed random batch with random coordinate targets: forward under the variant's autocast,
   soft-argmax decoding (in fp32: the codec leaves autocast), the integral L1 loss, backward and an
   Adam step. The variants of `benchmarks.common.VARIANTS` but the compiled one run round-robin
   (`common.alternate`); each figure is the median step, and the variant ``auto`` resolves to
   for this network (`common.network_path`) is marked with its ratio to ``fp32``.
2. **Data loading.** `benchmarks.bench_data.measure_pose3d`: a synthetic Human3.6M root read by
   the Human3.6M reader through ``Pose3DDataset(training=True)`` with the official 3DMPPE
   augmentation, one worker, the reference and the fast path's reading.

Ratios are measured in one run; figures across runs or machines are not comparable.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from benchmarks import bench_data
from benchmarks.common import (
    REFERENCE_VARIANT,
    TRAIN_FLOP_FACTOR,
    VARIANTS,
    TrainingPath,
    alternate,
    bf16_hardware_note,
    forward_gflops,
    log_line,
    machine_info,
    network_path,
    print_table,
    summarize,
    torch_threads,
    variant_of,
)
from src.codecs.integral_3d import Integral3D
from src.layouts import H36M18
from src.losses import IntegralL1Loss
from src.models.posenet import PoseNet

#: Depth bins of the official 3DMPPE PoseNet.
DEPTH_DIM = 64
TRAIN_VARIANTS = [v for v in VARIANTS if not VARIANTS[v].compile]


def measure_training(
    *,
    depth: int,
    input_size: int,
    batch: int,
    warmup: int,
    iters: int,
    base_width: int,
    threads: int | None = None,
    log=log_line,
) -> dict[str, Any]:
    """Per variant: median step, images/s, GFLOP/s and the ratio to fp32."""
    torch.manual_seed(0)
    out = input_size // 4
    codec = Integral3D(input_size=(input_size, input_size), output_size=(out, out), depth_dim=DEPTH_DIM)
    net = PoseNet(depth=depth, num_joints=H36M18.num_keypoints, depth_dim=DEPTH_DIM, base_width=base_width)
    gflops = forward_gflops(net, (input_size, input_size))
    fast = network_path(net, (input_size, input_size), batch)
    g = torch.Generator().manual_seed(1)
    k = H36M18.num_keypoints
    images = torch.randn(batch, 3, input_size, input_size, generator=g)
    targets = (torch.rand(batch, k, 3, generator=g) * out, torch.ones(batch, k), torch.ones(batch))
    criterion = IntegralL1Loss()

    def loss(outputs: torch.Tensor, t: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return criterion(codec.decode(outputs), *t)

    paths = {
        name: TrainingPath(
            net,
            images,
            targets,
            loss,
            precision=VARIANTS[name].precision,
            channels_last=VARIANTS[name].channels_last,
            lr=1e-3,
        )
        for name in TRAIN_VARIANTS
    }

    def progress(r: int, seconds: dict[str, float]) -> None:
        phase = "warm-up" if r < warmup else "timed"
        log(f"  round {r + 1}/{warmup + iters} ({phase}): " + ", ".join(f"{n} {s:.2f}s" for n, s in seconds.items()))

    timings = alternate({n: p.train_step for n, p in paths.items()}, warmup=warmup, iters=iters, on_round=progress)
    variants = summarize(timings, batch=batch, baseline=REFERENCE_VARIANT, threads=threads)
    for name, v in variants.items():
        v["label"] = VARIANTS[name].label
        v["achieved_gflops"] = TRAIN_FLOP_FACTOR * gflops * v["images_per_s"]
    return {"forward_gflops_per_image": gflops, "variants": variants, "fast_path": fast}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pose3d", description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=50, help="ResNet depth")
    p.add_argument("--base-width", type=int, default=64, help="ResNet stem width (64: the official)")
    p.add_argument("--input-size", type=int, default=256, help="square input side, a multiple of 32")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    p.add_argument("--data-images", type=int, default=16)
    p.add_argument("--data-passes", type=int, default=2)
    args = p.parse_args(argv)
    if args.input_size % 32 or args.input_size <= 0:
        p.error(f"--input-size must be a positive multiple of 32, got {args.input_size}")
    if min(args.batch_size, args.iters, args.data_images, args.data_passes) < 1 or args.warmup < 0 or args.threads < 0:
        p.error("--batch-size, --iters, --data-images and --data-passes must be >= 1, --warmup and --threads >= 0")
    with torch_threads(args.threads) as threads:
        machine = machine_info(threads)
        log_line(f"bench_pose3d: {machine['cpu']}, {threads} threads, load average {machine['load_average_before']}")
        train = measure_training(
            depth=args.depth,
            input_size=args.input_size,
            batch=args.batch_size,
            warmup=args.warmup,
            iters=args.iters,
            base_width=args.base_width,
            threads=threads,
        )
    data = bench_data.measure_pose3d(images=args.data_images, passes=args.data_passes, input_size=args.input_size)
    fast = train.pop("fast_path")
    auto = variant_of(fast["precision"], fast["channels_last"])
    log_line(
        f"\nPoseNet-{args.depth} training at {args.input_size}x{args.input_size}, batch {args.batch_size} "
        f"({train['forward_gflops_per_image']:.2f} forward GFLOPs per image)"
    )
    print_table(
        ["variant", "step s", "images/s", "vs fp32", "GFLOP/s"],
        [
            [
                f"{name}: {v['label']}{' (automatic path)' if name == auto else ''}",
                f"{v['median_step_s']:.3f}",
                f"{v['images_per_s']:.2f}",
                f"{v['ratio']:.2f}x",
                f"{v['achieved_gflops']:.1f}",
            ]
            for name, v in train["variants"].items()
        ],
    )
    log_line(bf16_hardware_note(machine["flags"]))
    if auto in train["variants"]:
        log_line(f"automatic path ({auto}): {train['variants'][auto]['ratio']:.2f}x the fp32 reference")
    log_line(
        f"data loading (Pose3DDataset, official augmentation): {data['samples_per_s']:.1f} samples/s per worker "
        f"with the fast path's reading, {data['reference_samples_per_s']:.1f} with the reference reading"
    )
    return {
        "machine": machine,
        "automatic_path": fast,
        "automatic_variant": auto,
        "train": train,
        "data": data,
        "config": vars(args),
    }


if __name__ == "__main__":
    main()
