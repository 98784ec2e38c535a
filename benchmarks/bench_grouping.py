"""CPU benchmark of the HigherHRNet grouping (`HeatmapParser.parse`).

Run ``python -m benchmarks.bench_grouping [--images 20] [--size 256] [--joints 17] [--no-flip] [--stress]
[--threads N]``.

Inputs are synthetic but shaped like a trained network's output at the base (input-image)
resolution: 5-10 people per image, each with a body-sized cloud of joints (about 15 % missing),
a Gaussian peak (sigma 2, value 0.3-1) per visible joint and tags close to the person's own tag
value around each peak. Spurious peaks (tags near a random person's tag) bring every joint type
to 30 top-k candidates: in the default scenario 0-3 of them per joint type are above the
detection threshold (0.1-0.45) and the rest weak (0.02-0.1); with ``--stress`` all 30 are above
it (the official grouping then opens well over 100 fragment "people", each refined). The
background has small heatmap noise and a smooth random tag field. With ``--flip`` (default)
the tags have L = 2 (original and flipped), as in the official flip test.

Printed: median milliseconds per image of ``parse()`` with refine on and off (with the parser's
threads, by default as many as it takes in a process with all cores: up to 4; and with refine on
in one thread), the stages of
``parse()`` with refine (candidates = the compiled pass over the heatmaps for NMS + top-k, which
also lists refine's strong runs; matching, adjust, refine), the number of (person, missing joint)
pairs refine fills and, for comparison, refine by a full-map scan per pair (`method="dense"`,
the official cost). Timings on a shared machine are noisy: compare figures from one run, and
see the load average printed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import load_average, torch_threads
from src.codecs.grouping import HeatmapParser

#: Aims for parse() with refine, ms per image, in each scenario.
TARGET_MS = {"typical": 2.0, "stress": 8.0}


def make_inputs(
    rng: np.random.Generator, *, size: int, num_joints: int, dim: int, stress: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """One synthetic image: heatmaps (K, S, S) float32, tags (K, S, S, L) float32, number of people.

    Every joint type gets 30 peaks (people + spurious); spurious ones are weak (0.02-0.1, below
    the detection threshold) except 0-3 per joint type, or all of them with ``stress``.
    """
    k, s = num_joints, size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    det = rng.normal(0, 0.01, size=(k, s, s)).astype(np.float32)
    coarse = rng.uniform(-5, 5, size=(k, s // 32 + 1, s // 32 + 1, dim)).astype(np.float32)
    tag = np.repeat(np.repeat(coarse, 32, axis=1), 32, axis=2)[:, :s, :s]
    tag = tag + rng.normal(0, 0.05, size=(k, s, s, dim)).astype(np.float32)
    num_people = int(rng.integers(5, 11))
    person_tags = rng.permutation(np.arange(num_people) * 1.5 - 6.0)

    def paste(j: int, cx: float, cy: float, value: float, t: np.ndarray) -> None:
        x0, x1 = max(int(cx) - 6, 0), min(int(cx) + 7, s)
        y0, y1 = max(int(cy) - 6, 0), min(int(cy) + 7, s)
        g = value * np.exp(-((xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2) / 8)
        det[j, y0:y1, x0:x1] = np.maximum(det[j, y0:y1, x0:x1], g)
        near = g > 0.05 * value
        tag[j, y0:y1, x0:x1][near] = t + rng.normal(0, 0.08, size=(int(near.sum()), dim))

    for p in range(num_people):
        box = rng.uniform(0.1, 0.35) * s
        cx, cy = rng.uniform(box / 2, s - box / 2, size=2)
        for j in range(k):
            if rng.random() < 0.15:
                continue
            jx, jy = cx + rng.uniform(-box / 2, box / 2), cy + rng.uniform(-box / 2, box / 2)
            paste(j, jx, jy, rng.uniform(0.3, 1.0), np.full(dim, person_tags[p], dtype=np.float32))
    for j in range(k):  # spurious peaks; their tags are clustered around the people's tags
        strong = 30 - num_people if stress else int(rng.integers(0, 4))
        for i in range(30 - num_people):
            t = person_tags[rng.integers(num_people)] + rng.normal(0, 0.3, size=dim)
            value = rng.uniform(0.1, 0.45) if i < strong else rng.uniform(0.02, 0.1)
            paste(j, rng.uniform(0, s), rng.uniform(0, s), value, t.astype(np.float32))
    return det, tag, num_people


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="heatmap side (base resolution)")
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per image (median over all)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="L = 2 tags")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stress", action="store_true", help="30 candidates above threshold per joint type")
    parser.add_argument(
        "--dense", action=argparse.BooleanOptionalAction, default=True, help="also time the official full-map refine"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="HeatmapParser threads (default 0: min(4, CPUs), its choice there)"
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    threads = args.threads or min(4, os.cpu_count() or 1)
    with torch_threads(1):  # parse() does no torch work; its threads are its own
        return _run(args, threads)


def _run(args: argparse.Namespace, threads: int) -> dict[str, float]:

    rng = np.random.default_rng(args.seed)
    dim = 2 if args.flip else 1
    images = [
        make_inputs(rng, size=args.size, num_joints=args.joints, dim=dim, stress=args.stress)
        for _ in range(args.images)
    ]
    hp = HeatmapParser(num_joints=args.joints, threads=threads)
    single = HeatmapParser(num_joints=args.joints, threads=1)
    as_tensors = [(torch.from_numpy(d)[None], torch.from_numpy(t)[None]) for d, t, _ in images]

    stats: dict[str, list[float]] = {
        k: []
        for k in (
            "parse_refine",
            "parse_refine_1_thread",
            "parse_no_refine",
            "candidates",
            "match",
            "adjust",
            "refine",
            "refine_dense",
        )
    }
    found, true_people, candidates, pairs = [], [], [], []
    for index, ((det, tag, n), (det_t, tag_t)) in enumerate(zip(images, as_tensors)):
        # with the parser's threads and in one, in alternating order (the second finds warm caches)
        for key, parser in (("parse_refine", hp), ("parse_refine_1_thread", single))[:: 1 if index % 2 else -1]:
            parser.parse(det_t, tag_t)  # warm-up
            stats[key].append(_median_ms(lambda: parser.parse(det_t, tag_t), args.repeats))  # noqa: B023
        stats["parse_no_refine"].append(_median_ms(lambda: hp.parse(det_t, tag_t, refine=False), args.repeats))
        # The stages of parse() with refine, each timed on its own.
        cand, scan = hp._candidates(det, tag)
        stats["candidates"].append(_median_ms(lambda: hp._candidates(det, tag), args.repeats))
        stats["match"].append(_median_ms(lambda: hp.match_by_tag(*cand), args.repeats))
        people = hp.match_by_tag(*cand)
        stats["adjust"].append(_median_ms(lambda: hp.adjust(people.copy(), det), args.repeats))
        adjusted = hp.adjust(people.copy(), det)
        stats["refine"].append(_median_ms(lambda: hp._refine(adjusted.copy(), det, tag, "auto", scan), args.repeats))
        if args.dense:
            stats["refine_dense"].append(_median_ms(lambda: hp.refine(adjusted.copy(), det, tag, method="dense"), 1))
        found.append(len(people))
        true_people.append(n)
        candidates.append(int((cand[2] > hp.detection_threshold).sum()))
        detected = adjusted[:, :, 2] > 0
        pairs.append(int(((adjusted[:, :, 2] == 0) & detected.any(axis=1, keepdims=True)).sum()))

    load = (load_average() or [float("nan")])[0]
    print(
        f"HeatmapParser.parse on {args.images} synthetic images: {args.joints} joints, {args.size}x{args.size} maps, "
        f"L={dim}, {'stress' if args.stress else 'typical'} scenario, {threads} parser threads, "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"  candidates above threshold per image: median {np.median(candidates):.0f} "
        f"({np.median(candidates) / args.joints:.1f} per joint); people: true median {np.median(true_people):.0f}, "
        f"grouped median {np.median(found):.0f}; (person, missing joint) pairs to refine: median "
        f"{np.median(pairs):.0f}"
    )
    medians = {k: float(np.median(v)) for k, v in stats.items() if v}
    print(f"  parse(), refine on : {medians['parse_refine']:7.2f} ms / image (median)")
    print(f"  parse(), refine on, one thread: {medians['parse_refine_1_thread']:7.2f} ms / image (median)")
    print(f"  parse(), refine off: {medians['parse_no_refine']:7.2f} ms / image (median)")
    stages = ("candidates", "match", "adjust", "refine")
    print("  stages (refine on): " + ", ".join(f"{k.replace('_', ' ')} {medians[k]:.2f} ms" for k in stages))
    if args.dense:
        print(f"  refine by full-map scan per pair (official cost, for comparison): {medians['refine_dense']:.2f} ms")
    target = TARGET_MS["stress" if args.stress else "typical"]
    medians["target_ms"] = target
    medians["threads"] = threads
    print(f"  target < {target:.0f} ms with refine: {'met' if medians['parse_refine'] < target else 'NOT met'}")
    return medians


if __name__ == "__main__":
    main()
