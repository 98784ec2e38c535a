"""Bottom-up inference benchmark: HigherHRNet images/s with and without flip, and grouping time.

    python -m benchmarks.bench_bottomup [--width 32] [--input-size 512] [--images 4] [--threads N]

Runs the whole test-time path of `src.codecs.bottomup_test_time.infer_batch` (resize to a
multiple of 64, forward, flip, aggregation, projection to the image, grouping) on 640x480
images, one after the other (batch 1, as the official test), with a randomly initialised network;
then the grouping benchmark (`benchmarks.bench_grouping`, 30 candidates x 17 joints, refine on
and off). Flip on and off alternate round by round (`benchmarks.common.alternate`) so that machine
noise hits them alike.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import bench_grouping
from benchmarks.common import alternate, load_average, log_line, summarize, torch_threads
from src.codecs.bottomup_test_time import infer_batch
from src.codecs.grouping import HeatmapParser
from src.datasets.transforms import normalize_image
from src.layouts import COCO17
from src.models.higher_hrnet import HigherHRNet


def time_inference(*, width: int, input_size: int, images: int, rounds: int, seed: int) -> dict[str, float]:
    """Seconds per image of infer_batch with flip on and off: the median round over ``images``
    pictures, one at a time, after a warm-up round."""
    rng = np.random.default_rng(seed)
    pictures = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(images)]
    net = HigherHRNet(width=width).eval()
    parser = HeatmapParser()

    def run(flip: bool) -> None:
        for picture in pictures:
            infer_batch(
                net,
                [picture],
                input_size=input_size,
                test_scales=[1.0],
                flip_test=flip,
                flip_index=COCO17.flip_index,
                parser=parser,
                normalize=normalize_image,
            )

    calls = {"on": lambda: run(True), "off": lambda: run(False)}
    timed = summarize(alternate(calls, warmup=1, iters=rounds), batch=images)
    return {f"flip_{f}_s_per_image": 1.0 / timed[f]["images_per_s"] for f in ("on", "off")}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all logical CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grouping-args", default="", help="arguments passed on to bench_grouping")
    args = parser.parse_args(argv)
    if min(args.images, args.rounds) < 1 or args.threads < 0 or args.input_size % 64:
        parser.error("--images and --rounds must be >= 1, --threads >= 0, --input-size a multiple of 64")
    with torch_threads(args.threads) as threads:
        log_line(
            f"HigherHRNet-W{args.width} at {args.input_size}, 640x480 images, torch threads {threads}, "
            f"load average {load_average()}"
        )
        figures = time_inference(
            width=args.width, input_size=args.input_size, images=args.images, rounds=args.rounds, seed=args.seed
        )
    for flip in ("on", "off"):
        seconds = figures[f"flip_{flip}_s_per_image"]
        figures[f"flip_{flip}_images_per_s"] = 1.0 / seconds
        print(f"  end to end, flip {flip:>3}: {1.0 / seconds:6.2f} images/s ({seconds * 1000:.0f} ms/image)")
    print("grouping (benchmarks.bench_grouping):")
    figures.update(bench_grouping.main(args.grouping_args.split() if args.grouping_args else []))
    return figures


if __name__ == "__main__":
    main()
