"""The benchmark report's figures as one PNG, drawn with OpenCV (no plotting library needed).

Panels of labelled horizontal bars, each scaled to its own largest value: training images/s per
family (reference and automatic path), inference images/s (without and with flip), the inference
backends (images/s at the largest batch and ms per image at batch 1 of PyTorch reference, automatic
path and onnxruntime), data samples/s per worker (with the top-down aim), grouping ms per image
(with the aims).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

WIDTH, ROW, LABEL_W, VALUE_W = 1100, 22, 330, 150
COLORS = {"a": (180, 120, 40), "b": (40, 140, 230), "c": (60, 160, 60), "aim": (40, 40, 200), "text": (30, 30, 30)}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(image: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, bold: bool = False) -> None:
    cv2.putText(image, text, (x, y), FONT, scale, COLORS["text"], 2 if bold else 1, cv2.LINE_AA)


def _panel(title: str, rows: list[tuple[str, float, str, str]], aims: dict[str, float] | None = None) -> np.ndarray:
    """rows: (label, value, value text, colour key); aims: {label: value} drawn as a red tick."""
    height = 34 + ROW * len(rows) + 8
    image = np.full((height, WIDTH, 3), 255, np.uint8)
    _text(image, title, 10, 22, 0.55, bold=True)
    top = max([v for _, v, _, _ in rows] + list((aims or {}).values()) + [1e-9])
    bar_w = WIDTH - LABEL_W - VALUE_W - 20
    for i, (label, value, shown, color) in enumerate(rows):
        y = 34 + i * ROW
        _text(image, label, 10, y + 15)
        length = int(round(bar_w * max(value, 0.0) / top))
        cv2.rectangle(image, (LABEL_W, y + 3), (LABEL_W + max(length, 1), y + ROW - 4), COLORS[color], -1)
        _text(image, shown, LABEL_W + bar_w + 10, y + 15)
        if aims and label in aims:
            x = LABEL_W + int(round(bar_w * aims[label] / top))
            cv2.line(image, (x, y + 1), (x, y + ROW - 2), COLORS["aim"], 2)
    return image


#: Bar colour of each inference backend.
BACKEND_COLORS = {"pytorch_reference": "a", "pytorch_auto": "b", "onnxruntime": "c"}
BACKEND_SHORT = {"pytorch_reference": "PyTorch ref.", "pytorch_auto": "PyTorch auto", "onnxruntime": "onnxruntime"}


def _backend_panels(backends: dict[str, Any]) -> list[np.ndarray]:
    """Two panels: images/s at the largest batch and ms per image at batch 1, per model and backend."""
    small, large = str(min(backends["batches"])), str(max(backends["batches"]))
    throughput, latency = [], []
    for m in backends["models"].values():
        for backend, color in BACKEND_COLORS.items():
            label = f"{m['label']} {BACKEND_SHORT[backend]}"
            thr, lat = m["batches"][large][backend]["images_per_s"], m["batches"][small][backend]["latency_ms"]
            throughput.append((label, thr, f"{thr:.1f}", color))
            latency.append((label, lat, f"{lat:.2f} ms", color))
    return [
        _panel(
            f"inference backends, images/s at batch {large} (PyTorch reference / automatic, onnxruntime)", throughput
        ),
        _panel(f"inference backends, ms per image at batch {small} (shorter is faster)", latency),
    ]


def draw_report(result: dict[str, Any], path: Path) -> None:
    """Write the report's PNG to ``path``."""
    fams = result["families"]
    training = []
    for name, f in fams.items():
        ref, auto = f["train_reference"], f["train_auto"]
        training.append((f"{name} reference", ref["images_per_s"], f"{ref['images_per_s']:.2f}", "a"))
        training.append(
            (f"{name} automatic", auto["images_per_s"], f"{auto['images_per_s']:.2f} ({f['train_ratio']:.2f}x)", "b")
        )
    inference = []
    for name, f in fams.items():
        for flip, color in (("off", "b"), ("on", "a")):
            v = f["infer_auto"][f"flip_{flip}_images_per_s"]
            inference.append((f"{name} flip {flip}", v, f"{v:.1f}", color))
    data = result["data"]
    td_aim = data["topdown"]["aim_samples_per_s"]
    pipeline = [
        ("top-down", data["topdown"]["samples_per_s"], f"{data['topdown']['samples_per_s']:.0f}", "b"),
        ("bottom-up", data["bottomup"]["samples_per_s"], f"{data['bottomup']['samples_per_s']:.0f}", "b"),
        ("3D", data["pose3d"]["samples_per_s"], f"{data['pose3d']['samples_per_s']:.0f}", "b"),
    ]
    backends = _backend_panels(result["backends"]) if result.get("backends") else []
    grouping = [(s, g["parse_refine"], f"{g['parse_refine']:.2f} ms", "b") for s, g in result["grouping"].items()]
    m = result["machine"]
    header = np.full((40, WIDTH, 3), 255, np.uint8)
    _text(header, f"{m['gpu'] or m['cpu']}, {m['threads']} threads, {result['date']}", 10, 26, 0.6, bold=True)
    panels = [
        header,
        _panel("training images/s (reference fp32 NCHW vs automatic path)", training),
        _panel("inference images/s, automatic path", inference),
        *backends,
        _panel("data pipeline samples/s per worker (red: aim)", pipeline, {"top-down": td_aim}),
        _panel(
            "grouping ms per image (red: aim)",
            grouping,
            {s: g["target_ms"] for s, g in result["grouping"].items()},
        ),
    ]
    if not cv2.imwrite(str(path), np.vstack(panels)):
        raise OSError(f"could not write {path}")
