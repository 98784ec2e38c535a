"""Data loading per DataLoader worker: training samples/s of each paradigm, top-down by stage.

    python -m benchmarks.bench_data [--paradigms topdown,bottomup,pose3d] [--images 16] [--passes 2]
        [--input-size 256x192] [--json out.json]

Every paradigm reads the project's synthetic data (`src.synthetic`: COCO-format 640x480 JPEGs for
top-down and bottom-up, a small Human3.6M root for 3D), written to a temporary folder, through its
public reader and training dataset with the official augmentation, in this process with one torch
thread and no OpenCV pool (what a worker gets). Every pass is read both ways, which goes first
alternating: the reference reading (full-size decoding, float32 normalised in the worker) and the
fast path's (``data.reduced_decode`` and ``data.normalize_on_device``, what training with the
automatic path runs).

Top-down stages: after the timed passes, each sample's crop (its centre and scale as the item
reports them; a rotation drawn as the augmentation draws it) is run again through the public
functions ``__getitem__`` is made of, each timed on its own: decoding (`src.readers.images.
read_image_for_crop`), the warp (`src.geometry.get_affine_transform`, ``warp_from_reduced`` and
``cv2.warpAffine``), the codec's ``encode`` and the image tensor (`src.datasets.transforms.
image_tensor`); "other" is the item's time less these (augmentation draws, colour conversion,
tensors), a difference of two measurements. Collation (``default_collate`` of a batch) is timed
apart. The aim (`AIM_SAMPLES_PER_S`, printed with the result) is for the fast path's top-down reading.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.common import log_line, machine_info, one_worker, print_table, time_call, write_json
from src.geometry import PIXEL_STD, affine_transform_points, get_affine_transform, warp_from_reduced
from src.layouts import COCO17, H36M18
from src.readers.images import read_image_for_crop, reduction_for

#: Aim for one worker's top-down training samples/s with the fast path's reading.
AIM_SAMPLES_PER_S = 400.0
#: Size (w, h) of the synthetic COCO images: COCO's typical 640x480.
IMAGE_SIZE = (640, 480)
#: Samples per collated batch in the collation timing.
COLLATE_BATCH = 32
PARADIGMS = ("topdown", "bottomup", "pose3d")
STAGES = ("decode", "warp", "encode", "normalize")


def synthetic_coco(root: Path, *, images: int, seed: int = 0) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``images`` synthetic 640x480 training images under ``root``."""
    from src.synthetic import ensure_synthetic_coco

    ensure_synthetic_coco(root, seed=seed, num_train=images, num_val=0, image_size=IMAGE_SIZE, workers=1)
    return root / "annotations" / "person_keypoints_train2017.json", root / "images" / "train2017"


def time_readings(dataset: Any, passes: int) -> dict[str, Any]:
    """Seconds of ``passes`` passes over ``dataset`` with each reading, alternating which goes first.

    Items are read as the training sampler asks for them, by (index, epoch). Returns samples per
    pass and, per reading ("reference", "fast"), the seconds of each pass.
    """
    dataset[(0, 0)]  # warm-up: lazy initialisation, page cache
    seconds: dict[str, list[float]] = {"reference": [], "fast": []}
    for p in range(passes):
        for reading in ("reference", "fast") if p % 2 == 0 else ("fast", "reference"):
            dataset.reduced_decode = dataset.normalize_on_device = reading == "fast"
            t0 = time.perf_counter()
            for i in range(len(dataset)):
                dataset[(i, p)]
            seconds[reading].append(time.perf_counter() - t0)
    dataset.reduced_decode = dataset.normalize_on_device = True
    return {"samples_per_pass": len(dataset), "seconds": seconds}


def rates(readings: dict[str, Any]) -> dict[str, float]:
    """samples/s of the fast path's and the reference reading over all their passes."""
    n, s = readings["samples_per_pass"], readings["seconds"]
    return {
        "samples": n * len(s["fast"]),
        "samples_per_s": n * len(s["fast"]) / sum(s["fast"]),
        "reference_samples_per_s": n * len(s["reference"]) / sum(s["reference"]),
    }


def stage_seconds(
    dataset: Any, keys: Sequence[tuple[int, int]], rng: np.random.Generator
) -> tuple[dict[str, float], list[float]]:
    """Seconds of each `STAGES` step of the fast path's reading over the samples ``keys``, timed
    on the public functions on each item's own crop, plus "item", the seconds of the items; and
    each crop's shrink (image pixels per crop pixel)."""
    from src.datasets.transforms import image_tensor

    files = dataset.image_files()
    w, h = dataset.input_size
    out = dict.fromkeys((*STAGES, "item"), 0.0)
    shrinks = []
    for key in keys:
        t0 = time.perf_counter()
        item = dataset[key]
        out["item"] += time.perf_counter() - t0
        center, scale = item["center"].numpy(), item["scale"].numpy()
        rotation = 0.0
        if rng.random() <= dataset.rotation_prob:
            rf = dataset.rotation_factor
            rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
        shrinks.append(float(scale[0]) * PIXEL_STD / w)
        t0 = time.perf_counter()
        image, reduction, _ = read_image_for_crop(files[int(item["sample_id"])], shrink=shrinks[-1])
        t1 = time.perf_counter()
        trans = get_affine_transform(center, scale, rotation, (w, h))
        crop = cv2.warpAffine(image, warp_from_reduced(trans, reduction), (w, h), flags=cv2.INTER_LINEAR)
        t2 = time.perf_counter()
        joints = item["joints"].numpy()
        dataset.codec.encode(affine_transform_points(joints[:, :2], trans), joints[:, 2])
        t3 = time.perf_counter()
        image_tensor(crop, on_device=True)
        t4 = time.perf_counter()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            out[stage] += seconds
    return out, shrinks


def measure_topdown(
    *, images: int, passes: int, input_hw: tuple[int, int], seed: int = 0, log=log_line
) -> dict[str, Any]:
    """One worker's top-down samples/s (both readings), the fast path's by stage, and collation."""
    from torch.utils.data import default_collate

    from src.codecs.msra_heatmap import MSRAHeatmap
    from src.datasets.topdown import TopDownDataset
    from src.readers.coco_records import load_coco_records

    h, w = input_hw
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        ann_file, image_dir = synthetic_coco(Path(tmp), images=images, seed=seed)
        jpeg_kb = sum(p.stat().st_size for p in image_dir.iterdir()) / images / 1024
        records = load_coco_records(ann_file, image_dir, keypoint_info=COCO17, aspect_ratio=w / h, training=True)
        codec = MSRAHeatmap(input_size=(w, h), heatmap_size=(w // 4, h // 4), sigma=2)
        dataset = TopDownDataset(records, codec=codec, keypoint_info=COCO17, training=True, seed=seed)
        with one_worker():
            readings = time_readings(dataset, passes)
            keys = [(i, p) for p in range(passes) for i in range(len(dataset))]
            stages, shrinks = stage_seconds(dataset, keys, np.random.default_rng(seed))
            items = [dataset[(i % len(dataset), 0)] for i in range(COLLATE_BATCH)]
            collate_s = min(time_call(lambda: default_collate(items)) for _ in range(3))
    for name, shape in {"image": (3, h, w), "heatmaps": (COCO17.num_keypoints, h // 4, w // 4)}.items():
        if tuple(items[0][name].shape) != shape:
            raise RuntimeError(f"top-down item {name} has shape {tuple(items[0][name].shape)}, expected {shape}")
    fig = rates(readings)
    n = len(keys)
    stage_ms = {s: 1000.0 * stages[s] / n for s in STAGES}
    stage_ms["other"] = 1000.0 * stages["item"] / n - sum(stage_ms.values())
    out = {
        "images": images,
        "mean_jpeg_kb": jpeg_kb,
        "records": len(records),
        "passes": passes,
        "input_hw": [h, w],
        "samples": fig["samples"],
        "samples_per_s_per_worker": fig["samples_per_s"],
        "ms_per_sample": 1000.0 / fig["samples_per_s"],
        "full_decode_samples_per_s": fig["reference_samples_per_s"],
        "reduced_decode_speedup": fig["samples_per_s"] / fig["reference_samples_per_s"],
        "reduced_fraction": sum(reduction_for(s) >= 2 for s in shrinks) / n,
        "stage_ms_per_sample": stage_ms,
        "collate_ms_per_sample": 1000.0 * collate_s / COLLATE_BATCH,
        "aim_samples_per_s": AIM_SAMPLES_PER_S,
        "aim_met": fig["samples_per_s"] >= AIM_SAMPLES_PER_S,
    }
    log(f"  top-down: {out['samples_per_s_per_worker']:.1f} samples/s per worker ({len(records)} people)")
    return out


def measure_bottomup(*, images: int, passes: int, codec: Any, seed: int = 0, log=log_line) -> dict[str, Any]:
    """One worker's bottom-up samples/s with ``codec`` (both readings) on synthetic 640x480 JPEGs."""
    from src.datasets.bottomup import BottomUpDataset
    from src.readers.coco_images import load_coco_images

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        ann_file, image_dir = synthetic_coco(Path(tmp), images=images, seed=seed)
        records = load_coco_images(ann_file, image_dir, keypoint_info=COCO17, training=True)
        dataset = BottomUpDataset(records, codec=codec, keypoint_info=COCO17, training=True, seed=seed)
        with one_worker():
            out = rates(time_readings(dataset, passes))
    out["input_size"] = codec.input_size
    log(f"  bottom-up: {out['samples_per_s']:.1f} samples/s per worker ({len(records)} images)")
    return out


def measure_pose3d(*, images: int, passes: int, input_size: int, seed: int = 0, log=log_line) -> dict[str, Any]:
    """One worker's 3D samples/s (both readings) on a synthetic Human3.6M root, ``input_size`` crops."""
    from src.codecs.integral_3d import Integral3D
    from src.datasets.pose3d import Pose3DDataset
    from src.readers.h36m import Human36MReader
    from src.synthetic.h36m_writer import ensure_synthetic_h36m

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        frames = max(1, math.ceil(images / 2))  # two cameras per frame
        ensure_synthetic_h36m(Path(tmp), subjects=(1,), actions=(2,), subactions=1, frames=frames, num_cameras=2)
        reader = Human36MReader(root=tmp, train_subjects=(1,), val_subjects=(1,), train_frame_step=1)
        out_size = input_size // 4
        codec = Integral3D(input_size=(input_size, input_size), output_size=(out_size, out_size), depth_dim=64)
        records = reader.load_records("train", keypoint_info=H36M18, aspect_ratio=1.0, training=True)
        dataset = Pose3DDataset(records, codec=codec, keypoint_info=H36M18, training=True, seed=seed)
        with one_worker():
            out = rates(time_readings(dataset, passes))
    log(f"  3D: {out['samples_per_s']:.1f} samples/s per worker ({len(records)} crops)")
    return out


def bottomup_codec(input_size: int) -> Any:
    """HigherHRNet's codec from its ``model=higherhrnet`` config, at ``input_size``."""
    from benchmarks.common import build_task

    return build_task(["model=higherhrnet", f"model.codec.input_size={input_size}"]).codec


def print_data(result: dict[str, Any], log=log_line) -> None:
    rows = []
    td = result.get("topdown")
    if td:
        met = "met" if td["aim_met"] else "NOT met"
        rows.append(
            [
                f"top-down {td['input_hw'][0]}x{td['input_hw'][1]}",
                f"{td['samples_per_s_per_worker']:.1f}",
                f"{td['full_decode_samples_per_s']:.1f}",
                f"aim >= {td['aim_samples_per_s']:.0f}: {met}; {100 * td['reduced_fraction']:.0f}% of crops "
                "decoded reduced",
            ]
        )
    for key, label in (("bottomup", "bottom-up"), ("pose3d", "3D")):
        if key in result:
            r = result[key]
            rows.append([label, f"{r['samples_per_s']:.1f}", f"{r['reference_samples_per_s']:.1f}", ""])
    log("\nsamples/s per worker (fast path's reading / reference reading)")
    print_table(["paradigm", "fast path", "reference", "note"], rows, log)
    if td:
        stages = td["stage_ms_per_sample"]
        log(
            f"\ntop-down by stage, fast path's reading ({td['images']} JPEGs {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, "
            f"about {td['mean_jpeg_kb']:.0f} KB; {td['records']} people)"
        )
        print_table(
            ["stage", "ms/sample"],
            [[k, f"{v:.3f}"] for k, v in stages.items()]
            + [[f"collate (batch {COLLATE_BATCH})", f"{td['collate_ms_per_sample']:.3f}"]],
            log,
        )


def _input_hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x192, got {text!r}") from err
    if h < 16 or w < 16 or h % 4 or w % 4:
        raise argparse.ArgumentTypeError(f"input size {text!r}: H and W must be multiples of 4, at least 16")
    return h, w


def _paradigms(text: str) -> list[str]:
    names = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [n for n in names if n not in PARADIGMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown paradigm(s) {unknown}; choose from {list(PARADIGMS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_data", description=__doc__.splitlines()[0])
    p.add_argument("--paradigms", type=_paradigms, default=list(PARADIGMS), help=f"of {','.join(PARADIGMS)}")
    p.add_argument("--images", type=int, default=16, help="synthetic images (top-down, bottom-up) or 3D crops")
    p.add_argument("--passes", type=int, default=2, help="timed passes per reading")
    p.add_argument("--input-size", type=_input_hw, default=(256, 192), help="top-down crop HxW")
    p.add_argument("--bottomup-size", type=int, default=512, help="bottom-up input side (multiple of 64)")
    p.add_argument("--pose3d-size", type=int, default=256, help="3D crop side (multiple of 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = build_parser()
    args = p.parse_args(argv)
    if args.images < 1 or args.passes < 1:
        p.error("--images and --passes must be >= 1")
    if args.bottomup_size < 64 or args.bottomup_size % 64 or args.pose3d_size < 16 or args.pose3d_size % 4:
        p.error("--bottomup-size must be a multiple of 64 and --pose3d-size a multiple of 4 (at least 16)")
    machine = machine_info(1)
    log_line(f"bench_data: {machine['cpu']}, one worker (1 thread), load average {machine['load_average_before']}")
    result: dict[str, Any] = {"machine": machine, "config": {k: v for k, v in vars(args).items() if k != "json"}}
    if "topdown" in args.paradigms:
        result["topdown"] = measure_topdown(
            images=args.images, passes=args.passes, input_hw=tuple(args.input_size), seed=args.seed
        )
    if "bottomup" in args.paradigms:
        codec = bottomup_codec(args.bottomup_size)
        result["bottomup"] = measure_bottomup(images=args.images, passes=args.passes, codec=codec, seed=args.seed)
    if "pose3d" in args.paradigms:
        result["pose3d"] = measure_pose3d(
            images=args.images, passes=args.passes, input_size=args.pose3d_size, seed=args.seed
        )
    print_data(result)
    if args.json is not None:
        log_line(f"wrote {write_json(args.json, result)}")
    return result


if __name__ == "__main__":
    main()
