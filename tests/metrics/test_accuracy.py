"""heatmap_accuracy against hand-computed values and a loop restatement of the official HRNet code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.metrics.accuracy import heatmap_accuracy, heatmap_argmax

H, W = 64, 48  # norm = (H/10, W/10) = (6.4, 4.8), applied to (x, y) as in the official code


def _peak_maps(peaks: list[list[tuple[int, int] | None]]) -> torch.Tensor:
    """(N, K, H, W) maps with a single 1.0 at each (x, y) peak; None gives an all-zero map."""
    maps = torch.zeros(len(peaks), len(peaks[0]), H, W)
    for n, row in enumerate(peaks):
        for k, peak in enumerate(row):
            if peak is not None:
                maps[n, k, peak[1], peak[0]] = 1.0
    return maps


def test_perfect_prediction() -> None:
    target = _peak_maps([[(10, 20), (30, 40), None], [(5, 5), (40, 60), (20, 30)]])
    acc, avg, count = heatmap_accuracy(target.clone(), target)
    assert acc.tolist() == [1.0, 1.0, 1.0]
    assert (avg, count) == (1.0, 3)


def test_known_offsets() -> None:
    target = _peak_maps([[(10, 20), (10, 20), (10, 20), None], [(30, 40), (30, 40), None, None]])
    output = _peak_maps(
        [
            [(10, 20), (13, 20), (10, 23), (1, 1)],  # dx 3 -> 3/6.4 = .47 hit; dy 3 -> 3/4.8 = .63 miss
            [(30, 40), (34, 40), (0, 0), (5, 5)],  # dx 4 -> 4/6.4 = .63 miss
        ]
    )
    acc, avg, count = heatmap_accuracy(output, target, thr=0.5)
    assert acc.tolist() == pytest.approx([1.0, 0.5, 0.0, -1.0])
    assert avg == pytest.approx(0.5)
    assert count == 3


def test_argmax_ignores_non_positive_peaks() -> None:
    maps = -torch.ones(1, 2, H, W)
    maps[0, 1, 7, 9] = 2.0
    coords, maxvals = heatmap_argmax(maps)
    assert coords.tolist() == [[[0.0, 0.0], [9.0, 7.0]]]
    assert maxvals.tolist() == [[-1.0, 2.0]]


def _official_loop(output: np.ndarray, target: np.ndarray, thr: float) -> tuple[list[float], float, int]:
    """Plain-loop restatement of HRNet get_max_preds / calc_dists / dist_acc / accuracy."""

    def peaks(maps):
        n, k = maps.shape[:2]
        flat = maps.reshape(n, k, -1)
        idx, val = flat.argmax(-1), flat.max(-1)
        xy = np.stack([idx % W, idx // W], -1).astype(np.float64)
        return xy * (val > 0)[..., None]

    pred, gt = peaks(output), peaks(target)
    norm = np.array([H, W]) / 10
    acc, total, cnt = [], 0.0, 0
    for k in range(output.shape[1]):
        dists = [
            np.linalg.norm(pred[n, k] / norm - gt[n, k] / norm) if gt[n, k, 0] > 1 and gt[n, k, 1] > 1 else -1.0
            for n in range(output.shape[0])
        ]
        valid = [d for d in dists if d != -1]
        acc.append(sum(d < thr for d in valid) / len(valid) if valid else -1.0)
        if acc[-1] >= 0:
            total, cnt = total + acc[-1], cnt + 1
    return acc, (total / cnt if cnt else 0.0), cnt


def test_matches_official_loop_on_random_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(6, 5, H, W, generator=gen)
    target[:, 2] = 0.0  # never visible
    target[0, 0] = 0.0
    output = target + 0.9 * torch.rand(6, 5, H, W, generator=gen)
    acc, avg, count = heatmap_accuracy(output, target, thr=0.5)
    ref_acc, ref_avg, ref_count = _official_loop(output.numpy(), target.numpy(), 0.5)
    assert acc.tolist() == pytest.approx(ref_acc)
    assert (avg, count) == (pytest.approx(ref_avg), ref_count)
