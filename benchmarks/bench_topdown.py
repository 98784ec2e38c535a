"""Top-down pose benchmark on the CPU: convolution peak, HRNet training throughput, data pipeline.

Run ``python -m benchmarks.bench_topdown [--quick] [--threads N] [--iters N] [--json out.json]``.
Everything is measured in one process, one after the other, and printed side by side:

1. **Convolution peak.** A few large, compute-bound 3x3 convolutions (256 -> 256 channels on
   8x256x64x48 and 128 -> 128 on 8x128x128x96; contiguous and channels_last; forward only under
   ``torch.no_grad``), timed in fp32 and in bf16 (bf16 weights and inputs). The best achieved
   2 * MACs / time is the "fp32 conv peak" (the reference for the efficiency percentages) and the
   "bf16 conv peak" (for information).
2. **Training throughput.** HRNet-W32 at 256x192, batch 8, random init, Adam, ``JointsMSELoss``
   on random targets and target weights, one full step (forward, backward, optimiser) timed per
   iteration. Variants: ``fp32`` (contiguous), ``fp32_cl`` (channels_last), ``bf16`` (bf16-mixed:
   ``torch.autocast("cpu", dtype=torch.bfloat16)``, contiguous) and ``bf16_cl`` (bf16-mixed and
   channels_last: the optimised path). The variants run round-robin, one step each per round
   (starting variant rotated every round), so machine noise affects them equally; the figure is
   the median step time after warm-up. Achieved GFLOP/s counts a training step as 3x the forward
   FLOPs (forward + backward with respect to inputs and weights), a convention: the real backward
   of the first convolution needs no input gradient. The forward count comes from torch's
   FlopCounterMode (convolutions only) and equals the reference 15.290 GFLOPs for W32 at 256x192.
   "CPU use" (process CPU time / (wall time x threads)) shows how much of the machine the run got.
3. **Data pipeline.** JPEGs (640x480, quality 90, random gradients / shapes / noise / stick
   figures) and a COCO keypoint file are written to a temporary folder, read with
   ``load_coco_records`` and fed through ``TopDownDataset(training=True)`` with the official HRNet
   augmentation (scale 0.35, rotation 45, flip, half-body 0.3); ``__getitem__`` is timed in this
   process with one torch thread and no OpenCV thread pool (what a DataLoader worker gets), i.e.
   samples/s per worker. A second, instrumented pass splits the time into JPEG decode, warp,
   heatmap encoding, normalisation and the rest.

Aims (printed with whether they were met): optimised / fp32 >= 1.5x; >= 200 samples/s per worker.

``--quick`` keeps HRNet-W32 but uses batch 2, one timed step, batch-2 peak convolutions and 8
images; ``--width 8 --image-size 64x48`` (as in tests/test_benchmarks.py) makes it a smoke test.
With several threads on a machine whose other cores are busy, OpenMP threads wait for each other
(see the "CPU use" column); ``--threads 1`` is less sensitive to that.

Timings on a shared machine are noisy: compare ratios within one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from src.codecs.msra_heatmap import MSRAHeatmap
from src.datasets import topdown as topdown_dataset
from src.datasets.topdown import TopDownDataset
from src.layouts import COCO17, KeypointInfo
from src.losses import JointsMSELoss
from src.models.hrnet import PoseHighResolutionNet
from src.readers.coco_records import load_coco_records
from src.utils.hardware import cpu_info

#: Forward GFLOPs per image of the official HRNet-W32 at 256x192 (2 x 7.645 GMACs, convolutions only),
#: from the reference export of leoxiaobin/deep-high-resolution-net.pytorch
#: (shared/reference/pose_hrnet_w32_256x192.json, "gflops"). Checked against our own count.
REFERENCE_GFLOPS_W32_256X192 = 15.290007552
#: Training step = forward + backward w.r.t. inputs + backward w.r.t. weights = 3x forward FLOPs.
TRAIN_FLOP_FACTOR = 3.0
AIM_SPEEDUP = 1.5
AIM_SAMPLES_PER_S = 400.0

#: name -> (channels_last, bf16 autocast, label). "bf16_cl" is the optimised path.
VARIANTS: dict[str, tuple[bool, bool, str]] = {
    "fp32": (False, False, "fp32, contiguous (baseline)"),
    "bf16_cl": (True, True, "bf16-mixed + channels_last (optimised)"),
    "fp32_cl": (True, False, "fp32 + channels_last"),
    "bf16": (False, True, "bf16-mixed, contiguous"),
    "bf16_cl_compile": (True, True, "bf16-mixed + channels_last + torch.compile"),
}
#: Variants run through torch.compile (model.compile=true): not in the default list, since compiling
#: HRNet-W32 takes minutes on a small CPU; their first warm-up step holds the compile time.
COMPILED = ("bf16_cl_compile",)
BASELINE, OPTIMISED = "fp32", "bf16_cl"

#: (batch, channels, height, width) of the peak convolutions (3x3, C -> C, stride 1, padding 1).
PEAK_SHAPES = ((8, 256, 64, 48), (8, 128, 128, 96))

IMAGE_W, IMAGE_H = 640, 480


# ----------------------------------------------------------------------------- machine facts
# cpu_info: src.utils.hardware (the same facts choose the training path)
def bf16_hardware_note(info: dict[str, Any]) -> str:
    flags = info["flags"]
    if flags["amx_bf16"] or flags["avx512_bf16"]:
        have = [n for n in ("avx512_bf16", "amx_bf16") if flags[n]]
        return f"CPU has native bf16 ({', '.join(have)}): oneDNN runs bf16 convolutions in hardware."
    base = "AVX-512" if flags["avx512f"] else ("AVX2" if flags["avx2"] else "plain SIMD")
    return (
        "CPU lacks avx512_bf16 and amx_bf16 (no native bf16 arithmetic): oneDNN emulates the bf16 "
        f"dot products with {base} fp32 instructions plus conversions, so bf16 saves memory traffic "
        "but no arithmetic and is usually slower than fp32. A >= 1.5x bf16 speed-up needs "
        "AVX512-BF16 (Cooper Lake, Zen 4 and later) or AMX (Sapphire Rapids and later)."
    )


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------------------- 1. conv peak
def _time_call(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_conv_peak(*, batch: int, reps: int) -> dict[str, Any]:
    """Best forward GFLOP/s of large 3x3 convolutions, fp32 and bf16, both memory formats.

    All configurations run round-robin, ``reps`` timed calls each after one warm-up call.
    """
    configs = []
    for shape in PEAK_SHAPES:
        n, c, h, w = batch, shape[1], shape[2], shape[3]
        for dtype in (torch.float32, torch.bfloat16):
            for channels_last in (True, False):
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(dtype=dtype, memory_format=fmt).eval()
                x = torch.randn(n, c, h, w).to(dtype=dtype).contiguous(memory_format=fmt)
                macs = n * c * c * 9 * h * w
                configs.append(
                    {
                        "dtype": "bf16" if dtype == torch.bfloat16 else "fp32",
                        "shape": [n, c, h, w],
                        "memory_format": "channels_last" if channels_last else "contiguous",
                        "gflop": 2 * macs / 1e9,
                        "_conv": conv,
                        "_x": x,
                        "times_s": [],
                    }
                )
    with torch.no_grad():
        for cfg in configs:  # warm-up: oneDNN primitive creation, first-touch of the output
            cfg["_conv"](cfg["_x"])
        for _ in range(reps):
            for cfg in configs:
                conv, x = cfg["_conv"], cfg["_x"]
                cfg["times_s"].append(_time_call(lambda: conv(x)))
    runs = []
    for cfg in configs:
        best = min(cfg["times_s"])
        runs.append(
            {
                "dtype": cfg["dtype"],
                "shape": cfg["shape"],
                "memory_format": cfg["memory_format"],
                "gflop": cfg["gflop"],
                "times_s": cfg["times_s"],
                "best_s": best,
                "gflops": cfg["gflop"] / best,
            }
        )
    peak = {dt: max(r["gflops"] for r in runs if r["dtype"] == dt) for dt in ("fp32", "bf16")}
    return {"fp32_gflops": peak["fp32"], "bf16_gflops": peak["bf16"], "batch": batch, "reps": reps, "runs": runs}


# ----------------------------------------------------------------------------- 2. training
def forward_gflops_per_image(*, width: int, image_size: tuple[int, int], num_joints: int) -> float:
    """Forward GFLOPs of one image counted by torch's FlopCounterMode on the meta device (free)."""
    with torch.device("meta"):
        model = PoseHighResolutionNet(num_joints=num_joints, width=width)
        x = torch.empty(1, 3, *image_size)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


class _TrainVariant:
    """One model + optimiser + fixed random batch, trained in one configuration."""

    def __init__(
        self, name: str, base: nn.Module, *, batch: int, image_size: tuple[int, int], num_joints: int, seed: int
    ) -> None:
        self.name = name
        self.channels_last, self.bf16, self.label = VARIANTS[name]
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = copy.deepcopy(base).to(memory_format=fmt).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.forward = torch.compile(self.model) if name in COMPILED else self.model
        self.criterion = JointsMSELoss(use_target_weight=True)
        g = torch.Generator().manual_seed(seed)
        h, w = image_size
        self.images = torch.randn(batch, 3, h, w, generator=g).contiguous(memory_format=fmt)
        self.targets = torch.rand(batch, num_joints, h // 4, w // 4, generator=g)
        self.target_weight = (torch.rand(batch, num_joints, 1, generator=g) > 0.2).float()
        self.times_s: list[float] = []
        self.cpu_s: list[float] = []  # process CPU time (all threads) of the timed steps
        self.warmup_s: list[float] = []
        self.losses: list[float] = []

    def step(self) -> tuple[float, float]:
        """One training step; returns (wall seconds, process CPU seconds)."""
        c0, t0 = time.process_time(), time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            heatmaps = self.forward(self.images)
        loss = self.criterion(heatmaps.float(), self.targets, self.target_weight)  # loss in fp32
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"training variant {self.name}: non-finite loss {value}")
        self.losses.append(value)
        return elapsed, cpu


def measure_training(
    *,
    variants: list[str],
    width: int,
    image_size: tuple[int, int],
    batch: int,
    warmup: int,
    iters: int,
    num_joints: int,
    train_gflop_per_image: float,
    peak: dict[str, Any],
    threads: int,
    seed: int = 0,
    log=print,
) -> dict[str, Any]:
    """Median images/s of each variant; ``cpu_utilisation`` = process CPU time / (wall time x threads)
    of the timed steps (well below 1 means the threads waited for cores taken by other processes)."""
    torch.manual_seed(seed)
    base = PoseHighResolutionNet(num_joints=num_joints, width=width)
    runs = [
        _TrainVariant(name, base, batch=batch, image_size=image_size, num_joints=num_joints, seed=seed + 1)
        for name in variants
    ]
    del base
    total = warmup + iters
    for r in range(total):
        order = runs[r % len(runs) :] + runs[: r % len(runs)]  # rotate the starting variant
        step_s = {}
        for run in order:
            step_s[run.name], cpu_s = run.step()
            if r >= warmup:
                run.times_s.append(step_s[run.name])
                run.cpu_s.append(cpu_s)
            else:
                run.warmup_s.append(step_s[run.name])
        phase = "warm-up" if r < warmup else "timed"
        log(f"  round {r + 1}/{total} ({phase}): " + ", ".join(f"{n} {step_s[n]:.2f}s" for n in variants))
    results: dict[str, Any] = {}
    for run in runs:
        median_s = statistics.median(run.times_s)
        images_per_s = batch / median_s
        achieved = train_gflop_per_image * images_per_s
        results[run.name] = {
            "label": run.label,
            "channels_last": run.channels_last,
            "bf16": run.bf16,
            "times_s": run.times_s,
            "warmup_times_s": run.warmup_s,
            "median_step_s": median_s,
            "min_step_s": min(run.times_s),
            "images_per_s": images_per_s,
            "achieved_gflops": achieved,
            "pct_of_fp32_peak": 100.0 * achieved / peak["fp32_gflops"],
            "pct_of_bf16_peak": 100.0 * achieved / peak["bf16_gflops"] if run.bf16 else None,
            "cpu_utilisation": sum(run.cpu_s) / (sum(run.times_s) * threads),
            "final_loss": run.losses[-1],
        }
        if run.name in COMPILED and run.warmup_s:  # the first step compiles
            results[run.name]["first_step_s"] = run.warmup_s[0]
            results[run.name]["compile_s"] = max(0.0, run.warmup_s[0] - median_s)
    for res in results.values():
        res["speedup_vs_fp32"] = (
            res["images_per_s"] / results[BASELINE]["images_per_s"] if BASELINE in results else None
        )
    return results


# ----------------------------------------------------------------------------- 3. data pipeline
# Rough COCO-17 layout of a standing person facing the camera, in box-normalised (x, y).
_POSE_TEMPLATE = np.array(
    [
        (0.50, 0.08), (0.54, 0.06), (0.46, 0.06), (0.58, 0.07), (0.42, 0.07),
        (0.68, 0.22), (0.32, 0.22), (0.76, 0.38), (0.24, 0.38), (0.80, 0.52), (0.20, 0.52),
        (0.62, 0.55), (0.38, 0.55), (0.63, 0.75), (0.37, 0.75), (0.64, 0.95), (0.36, 0.95),
    ],
    dtype=np.float64,
)  # fmt: skip


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _synthetic_image(rng: np.random.Generator, people: list[np.ndarray], skeleton) -> np.ndarray:
    """(480, 640, 3) uint8: colour gradient, random shapes, stick figures, Gaussian noise."""
    yy, xx = np.mgrid[0:IMAGE_H, 0:IMAGE_W].astype(np.float32)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(40, 200), rng.uniform(-80, 80), rng.uniform(-80, 80)
        freq, phase = rng.uniform(0.005, 0.03), rng.uniform(0, 2 * np.pi)
        channels.append(a + b * xx / IMAGE_W + c * yy / IMAGE_H + 20 * np.sin(freq * (xx + yy) + phase))
    image = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(15, 30))):
        kind = rng.integers(0, 4)
        color, thick = _random_color(rng), int(rng.choice([-1, 1, 2, 4]))
        cx, cy = int(rng.integers(0, IMAGE_W)), int(rng.integers(0, IMAGE_H))
        if kind == 0:
            cv2.circle(image, (cx, cy), int(rng.integers(5, 80)), color, thick, cv2.LINE_AA)
        elif kind == 1:
            corner = (cx + int(rng.integers(10, 150)), cy + int(rng.integers(10, 150)))
            cv2.rectangle(image, (cx, cy), corner, color, thick)
        elif kind == 2:
            axes = (int(rng.integers(5, 90)), int(rng.integers(5, 60)))
            cv2.ellipse(image, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, color, thick, cv2.LINE_AA)
        else:
            pts = rng.integers(0, [IMAGE_W, IMAGE_H], size=(int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(image, [pts], color, cv2.LINE_AA)
    for kpts in people:  # (K, 3) x, y, v
        color = _random_color(rng)
        for a, b in skeleton:
            if kpts[a, 2] > 0 and kpts[b, 2] > 0:
                pa = (int(kpts[a, 0]), int(kpts[a, 1]))
                pb = (int(kpts[b, 0]), int(kpts[b, 1]))
                cv2.line(image, pa, pb, color, int(rng.integers(4, 12)), cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (3, 3), 0)
    noise = rng.normal(0, 6, size=image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def write_synthetic_coco(root: Path, *, num_images: int, keypoint_info: KeypointInfo, seed: int = 0) -> Path:
    """Write ``num_images`` 640x480 JPEGs (quality 90) to root/images and a COCO keypoint file
    with 2-3 people per image to root/annotations.json; returns the annotation path."""
    rng = np.random.default_rng(seed)
    k = keypoint_info.num_keypoints
    if k != len(_POSE_TEMPLATE):
        raise ValueError(f"the synthetic pose template has {len(_POSE_TEMPLATE)} keypoints, layout has {k}")
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        people = []
        for _ in range(int(rng.integers(2, 4))):
            h = float(rng.uniform(160, 420))
            w = h * float(rng.uniform(0.35, 0.6))
            x0 = float(rng.uniform(0, IMAGE_W - w))
            y0 = float(rng.uniform(0, IMAGE_H - h))
            uv = _POSE_TEMPLATE + rng.normal(0, 0.03, size=_POSE_TEMPLATE.shape)
            xy = np.stack([x0 + uv[:, 0] * w, y0 + uv[:, 1] * h], axis=1)
            v = rng.choice([0, 1, 2], size=k, p=[0.1, 0.1, 0.8])
            xy[v == 0] = 0.0  # COCO stores unlabelled keypoints as (0, 0, 0)
            kpts = np.concatenate([np.round(xy, 1), v[:, None]], axis=1)
            people.append(kpts)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "bbox": [round(x0, 1), round(y0, 1), round(w, 1), round(h, 1)],
                    "area": round(0.55 * w * h, 1),
                    "num_keypoints": int((v > 0).sum()),
                    "keypoints": [float(x) if i % 3 < 2 else int(x) for i, x in enumerate(kpts.reshape(-1))],
                }
            )
        file_name = f"{image_id:012d}.jpg"
        image = _synthetic_image(rng, people, keypoint_info.skeleton)
        if not cv2.imwrite(str(image_dir / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {image_dir / file_name}")
        images.append({"id": image_id, "file_name": file_name, "width": IMAGE_W, "height": IMAGE_H})
    categories = [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(keypoint_info.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in keypoint_info.skeleton],
        }
    ]
    ann_file = root / "annotations.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann_file


#: Stages of ``TopDownDataset.__getitem__`` timed by ``_stage_timers`` (the rest is "other").
_STAGES = {
    "decode": "JPEG decode (read_bgr)",
    "warp": "cv2.warpAffine crop",
    "encode": "heatmap encode (codec)",
    "normalize": "image -> tensor (image_tensor)",
}


class _Cv2Proxy:
    """Stands in for the ``cv2`` module inside src.datasets.topdown, timing ``warpAffine``."""

    def __init__(self, stages: dict[str, float]) -> None:
        self._stages = stages

    def __getattr__(self, name: str) -> Any:
        return getattr(cv2, name)

    def warpAffine(self, *args, **kwargs):  # noqa: N802 (OpenCV's name)
        t0 = time.perf_counter()
        out = cv2.warpAffine(*args, **kwargs)
        self._stages["warp"] += time.perf_counter() - t0
        return out


@contextlib.contextmanager
def _stage_timers(dataset: TopDownDataset, stages: dict[str, float]):
    """Temporarily wrap the functions ``__getitem__`` calls and add their times to ``stages``."""

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            stages[key] += time.perf_counter() - t0
            return out

        return wrapper

    saved_cv2 = topdown_dataset.cv2
    dataset.read_bgr_for_crop = timed(dataset.read_bgr_for_crop, "decode")  # instance attributes shadow methods
    dataset.image_tensor = timed(dataset.image_tensor, "normalize")
    topdown_dataset.cv2 = _Cv2Proxy(stages)
    dataset.codec.encode = timed(dataset.codec.encode, "encode")  # instance attribute shadows the method
    try:
        yield
    finally:
        topdown_dataset.cv2 = saved_cv2
        del dataset.codec.encode
        del dataset.read_bgr_for_crop
        del dataset.image_tensor


#: Batch size of the collation timing.
COLLATE_BATCH = 32


def bench_collate(items: list[dict]) -> float:
    """Seconds of one ``default_collate`` of ``items`` (what a DataLoader worker does per batch)."""
    from torch.utils.data import default_collate

    t0 = time.perf_counter()
    default_collate(items)
    return time.perf_counter() - t0


def _shrink(dataset: TopDownDataset, key: tuple[int, int]) -> float:
    """Image pixels per crop pixel of item ``key`` (the same draws as ``__getitem__``)."""
    index = dataset._begin_item(key)
    scale = dataset._scales[index]
    if dataset.training:
        _, scale, _, _ = dataset._augment(
            dataset._keypoints[index], dataset._visible[index], dataset._centers[index], scale
        )
    return float(scale[0]) * 200.0 / dataset.input_size[0]


def measure_data(
    *,
    num_images: int,
    passes: int,
    image_size: tuple[int, int],
    keypoint_info: KeypointInfo,
    seed: int = 0,
) -> dict[str, Any]:
    """samples/s of ``TopDownDataset.__getitem__`` in one process with one thread (= one worker),
    with the fast path's training reading (``reduced_decode`` and ``normalize_on_device`` on) and
    with the reference reading (full-size decoding, float32 normalised on the worker)."""
    h, w = image_size
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    with tempfile.TemporaryDirectory(prefix="bench_topdown_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        ann_file = write_synthetic_coco(root, num_images=num_images, keypoint_info=keypoint_info, seed=seed)
        generate_s = time.perf_counter() - t0
        jpeg_bytes = sum(p.stat().st_size for p in (root / "images").iterdir())
        t0 = time.perf_counter()
        records = load_coco_records(
            ann_file, root / "images", keypoint_info=keypoint_info, aspect_ratio=w / h, training=True
        )
        load_records_s = time.perf_counter() - t0
        codec = MSRAHeatmap(input_size=(w, h), heatmap_size=(w // 4, h // 4), sigma=2)
        dataset = TopDownDataset(
            records, codec=codec, keypoint_info=keypoint_info, training=True,
            scale_factor=0.35, rotation_factor=45.0, flip=True, half_body_prob=0.3, seed=seed,
        )  # fmt: skip
        rng = np.random.default_rng(seed)
        pass_rates: list[float] = []  # the fast path's reading (what training runs with it)
        full_rates: list[float] = []  # the reference reading
        reductions = 0
        stages = {name: 0.0 for name in _STAGES}
        instrumented_s, instrumented_n = 0.0, 0
        try:
            torch.set_num_threads(1)  # what a DataLoader worker runs with
            cv2.setNumThreads(0)  # as src.datasets.datamodule._worker_init: no OpenCV thread pool
            for i in range(min(len(dataset), 8)):  # warm-up: lazy initialisation, page cache
                dataset[i]
            for epoch in range(passes):
                # (index, epoch) keys, as the training sampler yields them (per-sample seeded augmentation)
                order = [(i, epoch) for i in rng.permutation(len(dataset)).tolist()]
                for reduced in (False, True):  # the reference reading, then the fast path's
                    dataset.reduced_decode = dataset.normalize_on_device = reduced
                    t0 = time.perf_counter()
                    for key in order:
                        item = dataset[key]
                    (pass_rates if reduced else full_rates).append(len(order) / (time.perf_counter() - t0))
                    reductions += sum(reduced and _shrink(dataset, key) >= 2 for key in order)
                with _stage_timers(dataset, stages):  # a second, instrumented pass for the breakdown
                    t0 = time.perf_counter()
                    for key in order:
                        dataset[key]
                    instrumented_s += time.perf_counter() - t0
                    instrumented_n += len(order)
            # collation, as the DataLoader does it per batch (in the worker, for 32 samples)
            items = [dataset[(i % len(dataset), 0)] for i in range(COLLATE_BATCH)]
            collate_s = min(bench_collate(items) for _ in range(3))
        finally:
            torch.set_num_threads(torch_threads)
            cv2.setNumThreads(cv2_threads)
        expected = {"image": (3, h, w), "heatmaps": (keypoint_info.num_keypoints, h // 4, w // 4)}
        for key, shape in expected.items():
            if tuple(item[key].shape) != shape:
                raise RuntimeError(f"dataset item {key} has shape {tuple(item[key].shape)}, expected {shape}")
    rate = statistics.median(pass_rates)
    full_rate = statistics.median(full_rates)
    return {
        "num_images": num_images,
        "num_records": len(records),
        "passes": passes,
        "samples_timed": passes * len(records),
        "mean_jpeg_kb": jpeg_bytes / num_images / 1024,
        "generate_s": generate_s,
        "load_records_s": load_records_s,
        "pass_samples_per_s": pass_rates,
        "samples_per_s_per_worker": rate,
        "ms_per_sample": 1000.0 / rate,
        "full_decode_samples_per_s": full_rate,
        "full_decode_pass_samples_per_s": full_rates,
        "reduced_decode_speedup": rate / full_rate,
        "reduced_fraction": reductions / (passes * len(records)),
        "decode_only_per_s": instrumented_n / stages["decode"],
        "stage_ms_per_sample": {
            **{name: 1000.0 * t / instrumented_n for name, t in stages.items()},
            "other": 1000.0 * (instrumented_s - sum(stages.values())) / instrumented_n,
        },
        "collate_ms_per_sample": 1000.0 * collate_s / COLLATE_BATCH,
        "aim_samples_per_s": AIM_SAMPLES_PER_S,
        "aim_met": rate >= AIM_SAMPLES_PER_S,
    }


# ----------------------------------------------------------------------------- output
def _table(headers: list[str], rows: list[list[str]], log=print) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    log(line)
    log("-" * len(line))
    for r in rows:
        log("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def report(result: dict[str, Any], log=print) -> None:
    cfg, cpu, peak, train, data = (result[k] for k in ("config", "cpu", "peak", "train", "data"))
    log("")
    log("=" * 100)
    log(
        f"Top-down pose benchmark  (torch {cfg['torch_version']}, {cfg['threads']} threads, "
        f"{'quick' if cfg['quick'] else 'full'} run)"
    )
    log(f"CPU: {cpu['model']}  ({cpu['logical_cpus']} logical CPUs, torch capability {cpu['torch_cpu_capability']})")
    log(
        "bf16 flags: "
        + ", ".join(f"{k} {'yes' if cpu['flags'][k] else 'NO'}" for k in ("avx512f", "avx512_bf16", "amx_bf16"))
    )
    log(
        f"Load average before: {result['load_average']['before']}  after: {result['load_average']['after']}"
        "  (shared machine: compare ratios within this run)"
    )
    before = result["load_average"]["before"]
    if before and cpu["logical_cpus"] and before[0] > cpu["logical_cpus"] - 0.5 and cfg["threads"] > 1:
        log(
            f"WARNING: load average {before[0]} with {cpu['logical_cpus']} CPUs: other processes compete for the "
            f"cores, so {cfg['threads']}-thread timings include OpenMP barrier waits for descheduled threads "
            "(small operations suffer most); --threads 1 is less sensitive to this."
        )
    log("=" * 100)

    log(f"\n[1] Convolution peak: 3x3 conv C->C, forward, no_grad, best of {peak['reps']}")
    _table(
        ["dtype", "input NCHW", "memory format", "GFLOP", "best ms", "GFLOP/s"],
        [
            [
                r["dtype"],
                "x".join(map(str, r["shape"])),
                r["memory_format"],
                f"{r['gflop']:.1f}",
                f"{1000 * r['best_s']:.1f}",
                f"{r['gflops']:.1f}",
            ]
            for r in peak["runs"]
        ],
        log,
    )
    log(
        f"fp32 conv peak: {peak['fp32_gflops']:.1f} GFLOP/s    bf16 conv peak: {peak['bf16_gflops']:.1f} GFLOP/s "
        f"(bf16/fp32 = {peak['bf16_gflops'] / peak['fp32_gflops']:.2f}x)"
    )

    m = result["model"]
    log(
        f"\n[2] Training: HRNet-W{cfg['width']} {cfg['image_size'][0]}x{cfg['image_size'][1]}, batch "
        f"{cfg['batch_size']}, Adam, JointsMSELoss; median of {cfg['iters']} steps after {cfg['warmup']} warm-up "
        "round(s), variants round-robin"
    )
    ref = f" (reference {m['reference_gflops_per_image']:.3f})" if m["reference_gflops_per_image"] else ""
    log(
        f"forward {m['forward_gflops_per_image']:.3f} GFLOPs/image{ref}; a training step is counted as "
        f"{TRAIN_FLOP_FACTOR:.0f}x forward = {m['train_gflop_per_image']:.3f} GFLOP/image "
        "(forward + backward w.r.t. inputs and weights)"
    )
    _table(
        ["variant", "step s", "images/s", "GFLOP/s", "% fp32 peak", "% bf16 peak", "vs fp32", "CPU use"],
        [
            [
                f"{name}: {v['label']}",
                f"{v['median_step_s']:.2f}",
                f"{v['images_per_s']:.2f}",
                f"{v['achieved_gflops']:.1f}",
                _pct(v["pct_of_fp32_peak"]),
                _pct(v["pct_of_bf16_peak"]),
                "-" if v["speedup_vs_fp32"] is None else f"{v['speedup_vs_fp32']:.2f}x",
                f"{100 * v['cpu_utilisation']:.0f}%",
            ]
            for name, v in train["variants"].items()
        ],
        log,
    )
    if train["speedup"] is not None:
        verdict = "MET" if train["aim_met"] else "NOT met"
        log(f"optimised ({OPTIMISED}) / fp32 = {train['speedup']:.2f}x; aim >= {AIM_SPEEDUP:.1f}x: {verdict}")
        log(
            f"cross-check with each variant's fastest step instead of the median (less sensitive to load "
            f"spikes): {OPTIMISED} / fp32 = {train['speedup_from_min_step']:.2f}x"
        )
    for name, v in train["variants"].items():
        if "compile_s" in v:
            reference = train["variants"].get("bf16_cl")
            gain = reference["median_step_s"] - v["median_step_s"] if reference else None
            pays = f"; pays after {v['compile_s'] / gain:.0f} steps" if gain and gain > 0 else "; no faster per step"
            log(f"{name}: compile about {v['compile_s']:.1f} s (first step {v['first_step_s']:.1f} s){pays}")
    if train.get("best_variant"):
        best = train["variants"][train["best_variant"]]
        log(
            f"fastest variant: {train['best_variant']} ({best['label']}), {best['speedup_vs_fp32']:.2f}x fp32"
            if best["speedup_vs_fp32"] is not None
            else f"fastest variant: {train['best_variant']}"
        )
    ratio = peak["bf16_gflops"] / peak["fp32_gflops"]
    log(
        f"hardware: {train['hardware_note']} Measured here: bf16 conv peak / fp32 conv peak = {ratio:.2f}x"
        + (
            " (bf16 convolutions are slower than fp32 on this CPU, so no bf16 path can reach the aim)."
            if ratio < 1
            else "."
        )
    )
    log(
        "CPU use = process CPU time / (wall time x threads) over the timed steps; well below 100% means the "
        "threads waited for cores held by other processes."
    )

    log(
        f"\n[3] Data pipeline: TopDownDataset(training=True) __getitem__, one process, 1 thread (= 1 worker), "
        f"{data['num_images']} JPEGs {IMAGE_W}x{IMAGE_H} q90 (~{data['mean_jpeg_kb']:.0f} KB), "
        f"{data['num_records']} person records, {data['samples_timed']} samples timed"
    )
    _table(
        ["stage", "samples/s", "ms/sample"],
        [["__getitem__ (timed passes)", f"{data['samples_per_s_per_worker']:.1f}", f"{data['ms_per_sample']:.2f}"]]
        + [
            [
                _STAGES.get(k, "other (augment draws, cvtColor, joints, tensors)"),
                f"{1000 / v:.1f}" if v > 0 else "-",
                f"{v:.2f}",
            ]
            for k, v in data["stage_ms_per_sample"].items()
        ],
        log,
    )
    log("(the stage rows come from separate instrumented passes over the same samples)")
    log(
        f"collation (default_collate of {COLLATE_BATCH} samples, outside __getitem__): "
        f"{data['collate_ms_per_sample']:.3f} ms per sample"
    )
    log(
        f"reference reading (full-size decoding, float32 normalised in the worker): "
        f"{data['full_decode_samples_per_s']:.1f} samples/s; the fast path's reading (data.reduced_decode, "
        f"data.normalize_on_device) {data['reduced_decode_speedup']:.2f}x that, with "
        f"{100 * data['reduced_fraction']:.0f}% of the crops shrinking the image 2x or more"
    )
    log(f"aim >= {AIM_SAMPLES_PER_S:.0f} samples/s per worker: {'MET' if data['aim_met'] else 'NOT met'}")

    log("\nSummary")
    rows = [
        ["fp32 conv peak (GFLOP/s)", f"{peak['fp32_gflops']:.1f}", "-", "-"],
        ["bf16 conv peak (GFLOP/s)", f"{peak['bf16_gflops']:.1f}", "-", "-"],
    ]
    for name, v in train["variants"].items():
        rows.append(
            [
                f"train {name} (images/s)",
                f"{v['images_per_s']:.2f}",
                "-",
                f"{v['achieved_gflops']:.1f} GFLOP/s = {v['pct_of_fp32_peak']:.1f}% fp32 peak",
            ]
        )
    if train["speedup"] is not None:
        rows.append(
            [
                f"{OPTIMISED} / fp32 speed-up",
                f"{train['speedup']:.2f}x",
                f">= {AIM_SPEEDUP:.1f}x",
                "met" if train["aim_met"] else "not met",
            ]
        )
    rows.append(
        [
            "data samples/s per worker",
            f"{data['samples_per_s_per_worker']:.1f}",
            f">= {AIM_SAMPLES_PER_S:.0f}",
            "met" if data["aim_met"] else "not met",
        ]
    )
    _table(["figure", "measured", "aim", "note"], rows, log)


# ----------------------------------------------------------------------------- CLI
def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x192, got {text!r}") from err
    if h <= 0 or w <= 0 or h % 32 or w % 16:
        raise argparse.ArgumentTypeError(f"image size {text!r}: H must be a multiple of 32 and W of 16")
    return h, w


def _variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_topdown", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="short run: batch 2, 1 timed step, smaller peak convolutions, 8 images"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: os.cpu_count())")
    p.add_argument("--iters", type=int, default=None, help="timed training steps per variant (default 3, quick 1)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up rounds (one step per variant each), default 1")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (default 8, quick 2)")
    p.add_argument("--width", type=int, default=32, help="HRNet width (default 32)")
    p.add_argument("--image-size", type=_image_size, default=(256, 192), help="HxW input (default 256x192)")
    p.add_argument(
        "--variants",
        type=_variants,
        default=[v for v in VARIANTS if v not in COMPILED],
        help=f"comma-separated training variants of {','.join(VARIANTS)} (default: all but {','.join(COMPILED)})",
    )
    p.add_argument("--peak-batch", type=int, default=None, help="batch of the peak convolutions (default 8, quick 2)")
    p.add_argument("--peak-reps", type=int, default=None, help="timed calls per peak convolution (default 3, quick 2)")
    p.add_argument("--data-images", type=int, default=None, help="synthetic JPEGs (default 32, quick 8)")
    p.add_argument("--data-passes", type=int, default=None, help="timed passes over the records (default 3, quick 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write all figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, return (and optionally write) all figures."""
    args = build_parser().parse_args(argv)
    quick = args.quick
    iters = args.iters if args.iters is not None else (1 if quick else 3)
    batch = args.batch_size if args.batch_size is not None else (2 if quick else 8)
    peak_batch = args.peak_batch if args.peak_batch is not None else (2 if quick else PEAK_SHAPES[0][0])
    peak_reps = args.peak_reps if args.peak_reps is not None else (2 if quick else 3)
    data_images = args.data_images if args.data_images is not None else (8 if quick else 32)
    data_passes = args.data_passes if args.data_passes is not None else (1 if quick else 3)
    for name, value, low in (
        ("--iters", iters, 1),
        ("--warmup", args.warmup, 0),
        ("--batch-size", batch, 1),
        ("--peak-reps", peak_reps, 1),
        ("--peak-batch", peak_batch, 1),
        ("--data-images", data_images, 1),
        ("--data-passes", data_passes, 1),
        ("--threads", args.threads, 0),
        ("--width", args.width, 1),
    ):
        if value < low:
            raise SystemExit(f"{name} must be >= {low}, got {value}")
    threads = args.threads or os.cpu_count() or 1
    keypoint_info = COCO17
    num_joints = keypoint_info.num_keypoints
    image_size = tuple(args.image_size)

    def log(msg: str = "") -> None:
        print(msg, flush=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    load_before = load_average()
    try:
        cpu = cpu_info()
        log(f"bench_topdown: {threads} threads, load average {load_before}")

        fwd = forward_gflops_per_image(width=args.width, image_size=image_size, num_joints=num_joints)
        official = args.width == 32 and image_size == (256, 192) and num_joints == 17
        if official and abs(fwd - REFERENCE_GFLOPS_W32_256X192) > 1e-3:
            raise RuntimeError(f"FLOP count {fwd:.6f} differs from the reference {REFERENCE_GFLOPS_W32_256X192}")
        model_info = {
            "name": f"HRNet-W{args.width}",
            "forward_gflops_per_image": fwd,
            "reference_gflops_per_image": REFERENCE_GFLOPS_W32_256X192 if official else None,
            "train_flop_factor": TRAIN_FLOP_FACTOR,
            "train_gflop_per_image": TRAIN_FLOP_FACTOR * fwd,
            "flop_convention": "training step = 3 x forward FLOPs (forward + backward w.r.t. inputs and weights)",
        }

        log(f"[1/3] convolution peak (batch {peak_batch}, {peak_reps} reps) ...")
        t0 = time.perf_counter()
        peak = measure_conv_peak(batch=peak_batch, reps=peak_reps)
        peak["seconds"] = time.perf_counter() - t0

        log(
            f"[2/3] training HRNet-W{args.width} {image_size[0]}x{image_size[1]} batch {batch}: "
            f"{', '.join(args.variants)}; {args.warmup} warm-up + {iters} timed rounds ..."
        )
        t0 = time.perf_counter()
        variants = measure_training(
            variants=args.variants,
            width=args.width,
            image_size=image_size,
            batch=batch,
            warmup=args.warmup,
            iters=iters,
            num_joints=num_joints,
            train_gflop_per_image=model_info["train_gflop_per_image"],
            peak=peak,
            threads=threads,
            seed=args.seed,
            log=log,
        )
        speedup = speedup_min = None
        if BASELINE in variants and OPTIMISED in variants:
            speedup = variants[OPTIMISED]["images_per_s"] / variants[BASELINE]["images_per_s"]
            speedup_min = variants[BASELINE]["min_step_s"] / variants[OPTIMISED]["min_step_s"]
        train = {
            "variants": variants,
            "baseline": BASELINE,
            "optimised": OPTIMISED,
            "speedup": speedup,
            "speedup_from_min_step": speedup_min,
            "aim_speedup": AIM_SPEEDUP,
            "aim_met": None if speedup is None else speedup >= AIM_SPEEDUP,
            "best_variant": max(variants, key=lambda n: variants[n]["images_per_s"]),
            "hardware_note": bf16_hardware_note(cpu),
            "seconds": time.perf_counter() - t0,
        }

        log(f"[3/3] data pipeline ({data_images} images, {data_passes} passes) ...")
        t0 = time.perf_counter()
        data = measure_data(
            num_images=data_images,
            passes=data_passes,
            image_size=image_size,
            keypoint_info=keypoint_info,
            seed=args.seed,
        )
        data["seconds"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous_threads)

    result = {
        "config": {
            "quick": quick,
            "threads": threads,
            "iters": iters,
            "warmup": args.warmup,
            "batch_size": batch,
            "width": args.width,
            "image_size": list(image_size),
            "variants": args.variants,
            "peak_batch": peak_batch,
            "peak_reps": peak_reps,
            "data_images": data_images,
            "data_passes": data_passes,
            "seed": args.seed,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
        },
        "cpu": cpu,
        "load_average": {"before": load_before, "after": load_average()},
        "model": model_info,
        "peak": peak,
        "train": train,
        "data": data,
        "total_seconds": time.perf_counter() - started,
    }
    report(result, log)
    log(f"\ntotal time {result['total_seconds']:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
