"""Time of the COCO keypoint metric on a validation set's worth of predictions, in one run.

    python -m benchmarks.bench_metric [--images 5000] [--people 3] [--detections 10]

Writes a synthetic ground truth of ``--images`` images (1 to 2 x ``--people`` - 1 people each, 17
keypoints) and feeds `COCOKeypointMetric` ``--detections`` person crops per image on average, as
the official top-down evaluation on detector boxes does (COCO val2017: about 21 per image): a
noisy copy of every person, near-duplicates of some and false positives. Reports the seconds of
`update` and of `compute`, and of pycocotools' COCOeval alone (`evaluate_results` called again on
the results `compute` kept); the rest of `compute` is rescoring, OKS-NMS and building the results.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import log_line, machine_info, print_table, time_call
from src.layouts import COCO17
from src.metrics.coco_metric import COCOKeypointMetric


def synthetic_case(images: int, people: int, detections: int, seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """A COCO ground truth and the metric's input columns (sample ids, image ids, keypoints, areas, scores)."""
    rng = np.random.default_rng(seed)
    anns, rows = [], {"sample_ids": [], "image_ids": [], "keypoints": [], "areas": [], "box_scores": []}
    for image_id in range(1, images + 1):
        truths = []
        for _ in range(int(rng.integers(1, 2 * people))):
            x, y, w, h = rng.uniform(0, 500), rng.uniform(0, 300), rng.uniform(40, 140), rng.uniform(80, 300)
            kpts = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)], axis=1)
            truths.append(kpts)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "bbox": [x, y, w, h],
                    "area": w * h * 0.6,
                    "num_keypoints": 17,
                    "keypoints": kpts.round(2).reshape(-1).tolist(),
                }
            )
        count = max(len(truths), int(rng.poisson(detections)))
        for d in range(count):
            base = (
                truths[d % len(truths)]
                if d < 2 * len(truths)
                else truths[0] + rng.uniform(-200, 200, (1, 3)) * [1, 1, 0]
            )
            kpts = base.copy()
            kpts[:, :2] += rng.normal(0, 4 + d, (17, 2))
            kpts[:, 2] = rng.uniform(0.05, 1.0, 17)
            rows["sample_ids"].append(len(rows["sample_ids"]))
            rows["image_ids"].append(image_id)
            rows["keypoints"].append(kpts)
            rows["areas"].append(float(np.ptp(kpts[:, 0]) * np.ptp(kpts[:, 1]) * 1.56))
            rows["box_scores"].append(float(rng.uniform(0.3, 1.0)))
    data = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(1, images + 1)],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoint_names), "skeleton": []}],
    }
    return data, {k: np.asarray(v) for k, v in rows.items()}


def measure(images: int, people: int, detections: int) -> dict[str, Any]:
    data, columns = synthetic_case(images, people, detections)
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = Path(tmp) / "gt.json"
        ann_file.write_text(json.dumps(data))
        metric = COCOKeypointMetric(ann_file=str(ann_file), keypoint_info=COCO17)
        metric._get_coco_gt()  # loading the ground truth is done once per run, not per evaluation
        start = time.perf_counter()
        # one update with every instance (as the validation loop's updates, in one call)
        names = {"sample_ids": "sample_id", "image_ids": "image_id", "areas": "area", "box_scores": "box_score"}
        metric.update({names.get(k, k): torch.as_tensor(v) for k, v in columns.items()}, {})
        added = time.perf_counter() - start
        start = time.perf_counter()
        stats = metric.compute()
        computed = time.perf_counter() - start
        # COCOeval alone, on the instances compute kept (the same input as inside compute)
        cocoeval = time_call(lambda: metric.evaluate_results(metric._get_coco_gt(), metric.last_results))
    return {
        "images": images,
        "ground_truth_people": len(data["annotations"]),
        "detections": int(len(columns["sample_ids"])),
        "kept_after_nms": len(metric.last_results),
        "add_s": added,
        "compute_s": computed,
        "cocoeval_s": cocoeval,
        "rest_of_compute_s": computed - cocoeval,
        "AP": stats["AP"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_metric", description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--people", type=int, default=3, help="mean ground-truth people per image, about")
    p.add_argument("--detections", type=float, default=10.0, help="mean person crops per image")
    args = p.parse_args(argv)
    if args.images < 1 or args.people < 1 or args.detections <= 0:
        raise SystemExit("--images, --people and --detections must be positive")
    machine = machine_info(1)
    log_line(f"bench_metric: {machine['cpu']}, load average {machine['load_average_before']}")
    result = measure(args.images, args.people, args.detections)
    print()
    print_table(
        ["images", "people", "detections", "kept", "update s", "compute s", "COCOeval s", "rest s"],
        [
            [
                str(result["images"]),
                str(result["ground_truth_people"]),
                str(result["detections"]),
                str(result["kept_after_nms"]),
                f"{result['add_s']:.2f}",
                f"{result['compute_s']:.2f}",
                f"{result['cocoeval_s']:.2f}",
                f"{result['rest_of_compute_s']:.2f}",
            ]
        ],
    )
    return {"machine": machine, "config": vars(args), **result}


if __name__ == "__main__":
    main()
