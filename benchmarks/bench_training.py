"""Top-down training step in each arithmetic variant: HRNet images/s, GFLOP/s and share of the peak.

    python -m benchmarks.bench_training [--width 32] [--image-size 256x192] [--batch-size 8] [--iters 3]
        [--variants fp32,fp32_cl,bf16,bf16_cl] [--threads N] [--json out.json]

HRNet (random init) on a fixed random batch: forward under the variant's autocast, the fp32
``JointsMSELoss`` on random heatmaps and target weights, backward and an Adam step. The variants
(`benchmarks.common.VARIANTS`; the torch.compile one is opt-in, its first step holds the compile
time) run round-robin, one step each per round with the starting one rotated (`common.alternate`),
and each figure is the median step after the warm-up rounds. A training step counts as 3x the
forward FLOPs (torch's FlopCounterMode on the meta device; for W32 at 256x192 it must equal the
official 15.29 GFLOPs); the peak shares divide by `benchmarks.bench_peak`'s conv peak measured in
the same run. "CPU use" (process CPU time / (wall time x threads)) shows how much of the machine the
run got. The automatic path is the variant ``auto`` resolves to for this network and batch
(`common.network_path`: on CPUs the memory format is measured, as training runs do); the aim
(`AIM_SPEEDUP`, printed with the result) is for its images/s over fp32's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from benchmarks import bench_peak
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
    parse_variants,
    print_table,
    summarize,
    torch_threads,
    variant_of,
    write_json,
)
from src.layouts import COCO17
from src.losses import JointsMSELoss
from src.models.hrnet import PoseHighResolutionNet

#: Forward GFLOPs per image of the official HRNet-W32 at 256x192 (2 x 7.645 GMACs, convolutions
#: only), from the reference export of leoxiaobin/deep-high-resolution-net.pytorch; our count must match.
REFERENCE_GFLOPS_W32_256X192 = 15.290007552
#: Aims for the automatic path's training images/s over the fp32 reference's, by the path's precision:
#: native bf16 should pay 1.5x; an fp32 path (channels_last) should never be slower than the reference.
AIM_SPEEDUP = {"bf16-mixed": 1.5, "16-mixed": 1.5, "32-true": 1.0}
DEFAULT_VARIANTS = [v for v in VARIANTS if not VARIANTS[v].compile]


def image_size(text: str) -> tuple[int, int]:
    """``HxW`` (argparse type): H a multiple of 32 and W of 16, as HRNet's four branches need."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x192, got {text!r}") from err
    if h <= 0 or w <= 0 or h % 32 or w % 16:
        raise argparse.ArgumentTypeError(f"image size {text!r}: H must be a multiple of 32 and W of 16")
    return h, w


def measure(
    *,
    variants: list[str],
    width: int,
    hw: tuple[int, int],
    batch: int,
    warmup: int,
    iters: int,
    threads: int,
    fp32_peak_gflops: float,
    bf16_peak_gflops: float,
    seed: int = 0,
    log=log_line,
) -> dict[str, Any]:
    """Per variant: steps, median, images/s, GFLOP/s, peak shares, ratio to fp32, CPU use, loss;
    and ``fast_path``, what ``auto`` resolves to for this network."""
    k = COCO17.num_keypoints
    torch.manual_seed(seed)
    net = PoseHighResolutionNet(num_joints=k, width=width)
    gflops = forward_gflops(net, hw)
    fast = network_path(net, hw, batch)
    g = torch.Generator().manual_seed(seed + 1)
    images = torch.randn(batch, 3, *hw, generator=g)
    targets = (torch.rand(batch, k, hw[0] // 4, hw[1] // 4, generator=g), torch.rand(batch, k, 1, generator=g) > 0.2)
    criterion = JointsMSELoss(use_target_weight=True)

    def loss(heatmaps: torch.Tensor, t: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return criterion(heatmaps.float(), t[0], t[1].float())

    paths = {
        name: TrainingPath(
            net,
            images,
            targets,
            loss,
            precision=VARIANTS[name].precision,
            channels_last=VARIANTS[name].channels_last,
            compile=VARIANTS[name].compile,
            lr=1e-3,
        )
        for name in variants
    }
    del net
    total = warmup + iters

    def progress(r: int, seconds: dict[str, float]) -> None:
        phase = "warm-up" if r < warmup else "timed"
        log(f"  round {r + 1}/{total} ({phase}): " + ", ".join(f"{n} {s:.2f}s" for n, s in seconds.items()))

    timings = alternate({n: p.train_step for n, p in paths.items()}, warmup=warmup, iters=iters, on_round=progress)
    baseline = REFERENCE_VARIANT if REFERENCE_VARIANT in variants else None
    out = summarize(timings, batch=batch, baseline=baseline, threads=threads)
    for name, v in out.items():
        variant = VARIANTS[name]
        v["label"], v["precision"], v["channels_last"] = variant.label, variant.precision, variant.channels_last
        v["warmup_times_s"] = timings[name]["warmup_s"]
        v["achieved_gflops"] = TRAIN_FLOP_FACTOR * gflops * v["images_per_s"]
        v["pct_of_fp32_peak"] = 100.0 * v["achieved_gflops"] / fp32_peak_gflops
        v["pct_of_bf16_peak"] = (
            100.0 * v["achieved_gflops"] / bf16_peak_gflops if variant.precision != "32-true" else None
        )
        v["final_loss"] = paths[name].losses[-1]
        if variant.compile and v["warmup_times_s"]:
            v["first_step_s"] = v["warmup_times_s"][0]
            v["compile_s"] = max(0.0, v["first_step_s"] - v["median_step_s"])
    return {
        "forward_gflops_per_image": gflops,
        "train_gflop_per_image": TRAIN_FLOP_FACTOR * gflops,
        "variants": out,
        "fast_path": fast,
    }


def print_training(result: dict[str, Any], log=log_line) -> None:
    cfg, train = result["config"], result["train"]
    h, w = cfg["image_size"]
    log(
        f"\nHRNet-W{cfg['width']} {h}x{w}, batch {cfg['batch_size']}, Adam, JointsMSELoss: median of {cfg['iters']} "
        f"steps after {cfg['warmup']} warm-up round(s); {train['forward_gflops_per_image']:.3f} forward GFLOPs/image, "
        f"a step counted as {TRAIN_FLOP_FACTOR:.0f}x"
    )
    auto, aim = train["automatic_variant"], train["aim_speedup"]
    print_table(
        ["variant", "step s", "images/s", "GFLOP/s", "% fp32 peak", "% bf16 peak", "vs fp32", "CPU use"],
        [
            [
                f"{name}: {v['label']}{' (automatic path)' if name == auto else ''}",
                f"{v['median_step_s']:.3f}",
                f"{v['images_per_s']:.2f}",
                f"{v['achieved_gflops']:.1f}",
                f"{v['pct_of_fp32_peak']:.1f}%",
                "-" if v["pct_of_bf16_peak"] is None else f"{v['pct_of_bf16_peak']:.1f}%",
                f"{v['ratio']:.2f}x" if "ratio" in v else "-",
                f"{100 * v['cpu_utilisation']:.0f}%" if "cpu_utilisation" in v else "-",
            ]
            for name, v in train["variants"].items()
        ],
        log,
    )
    for name, v in train["variants"].items():
        if "compile_s" in v:
            log(f"{name}: compile about {v['compile_s']:.1f} s (first step {v['first_step_s']:.1f} s)")
    log(result["hardware_note"])
    log(f"automatic path for this network and batch: {result['automatic_path']['reason']}")
    if train["speedup"] is None:
        log(f"aim: automatic path ({auto}) / fp32 >= {aim:.2f}x: not measured (run both variants)")
    else:
        verdict = "met" if train["aim_met"] else "NOT met"
        log(f"aim: automatic path ({auto}) / fp32 >= {aim:.2f}x: {train['speedup']:.2f}x, {verdict}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_training", description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=32, help="HRNet width")
    p.add_argument("--image-size", type=image_size, default=(256, 192), help="HxW input")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1, help="warm-up rounds (one step per variant each)")
    p.add_argument("--iters", type=int, default=3, help="timed steps per variant")
    p.add_argument(
        "--variants",
        type=parse_variants,
        default=DEFAULT_VARIANTS,
        help=f"comma-separated, of {','.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})",
    )
    p.add_argument(
        "--peak-batch", type=int, default=bench_peak.PEAK_SHAPES[0][0], help="batch of the peak convolutions"
    )
    p.add_argument("--peak-reps", type=int, default=3)
    p.add_argument("--tiny-peak", action="store_true", help="small peak convolutions (checks the script)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = build_parser()
    args = p.parse_args(argv)
    for name, low in (("width", 1), ("batch_size", 1), ("warmup", 0), ("iters", 1), ("peak_batch", 1)):
        if getattr(args, name) < low:
            p.error(f"--{name.replace('_', '-')} must be >= {low}")
    if args.peak_reps < 1 or args.threads < 0:
        p.error("--peak-reps must be >= 1 and --threads >= 0")
    hw = tuple(args.image_size)
    with torch_threads(args.threads) as threads:
        machine = machine_info(threads)
        log_line(f"bench_training: {machine['cpu']}, {threads} threads, load average {machine['load_average_before']}")
        shapes = bench_peak.TINY_PEAK_SHAPES if args.tiny_peak else bench_peak.PEAK_SHAPES
        peak = bench_peak.measure_conv_peak(batch=args.peak_batch, reps=args.peak_reps, shapes=shapes)
        train = measure(
            variants=args.variants,
            width=args.width,
            hw=hw,
            batch=args.batch_size,
            warmup=args.warmup,
            iters=args.iters,
            threads=threads,
            fp32_peak_gflops=peak["fp32_gflops"],
            bf16_peak_gflops=peak["bf16_gflops"],
            seed=args.seed,
        )
    official = args.width == 32 and hw == (256, 192)
    if official and abs(train["forward_gflops_per_image"] - REFERENCE_GFLOPS_W32_256X192) > 1e-3:
        counted = train["forward_gflops_per_image"]
        raise RuntimeError(f"FLOP count {counted:.6f} differs from the official {REFERENCE_GFLOPS_W32_256X192}")
    fast = train.pop("fast_path")
    auto = variant_of(fast["precision"], fast["channels_last"])
    variants = train["variants"]
    speedup = variants[auto]["ratio"] if auto in variants and "ratio" in variants[auto] else None
    aim = AIM_SPEEDUP.get(fast["precision"], 1.0)
    train.update(
        automatic_variant=auto,
        speedup=speedup,
        aim_speedup=aim,
        aim_met=None if speedup is None else speedup >= aim,
        reference_gflops_per_image=REFERENCE_GFLOPS_W32_256X192 if official else None,
    )
    machine["load_average_after"] = machine_info(threads)["load_average_before"]
    result = {
        "machine": machine,
        "automatic_path": fast,
        "hardware_note": bf16_hardware_note(machine["flags"]),
        "config": {**{k: v for k, v in vars(args).items() if k != "json"}, "image_size": list(hw)},
        "peak": peak,
        "train": train,
    }
    print_training(result)
    if args.json is not None:
        log_line(f"wrote {write_json(args.json, result)}")
    return result


if __name__ == "__main__":
    main()
