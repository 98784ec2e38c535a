"""Errors of predicted root positions (RootNet's evaluation), as plain functions on arrays (pure numpy).

* `mrpe`: the mean root position error on Human3.6M, the mean Euclidean distance between predicted
  and true camera-frame roots (mm), and the mean absolute error along x, y and z;
* `ap_root`: MuPoTS-3D's AP of roots at 25 cm, as the official ``MuPoTS_eval.py``
  (``calculate_score``) computes it: the predictions of the whole dataset ranked by score; one on an
  image without annotated people is skipped (neither right nor wrong); otherwise its nearest
  annotated root (3D distance) makes it a true positive when closer than the threshold and not yet
  taken, else a false positive (no second-nearest root is tried); AP is the sum over n >= 1 of
  precision[n] (recall[n] - recall[n - 1]), which skips the first prediction's recall step and does
  not interpolate precision, so it is lower than a textbook AP of the same ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AP_ROOT_THRESHOLD_MM = 250.0


def mrpe(pred_roots: np.ndarray, gt_roots: np.ndarray) -> dict[str, float]:
    """{"MRPE", "MRPE_x", "MRPE_y", "MRPE_z"} in mm of (N, 3) predicted and true camera-frame roots."""
    pred_roots = np.asarray(pred_roots, dtype=np.float64).reshape(-1, 3)
    gt_roots = np.asarray(gt_roots, dtype=np.float64).reshape(-1, 3)
    if pred_roots.shape != gt_roots.shape:
        raise ValueError(f"{len(pred_roots)} predicted roots for {len(gt_roots)} true ones")
    err = pred_roots - gt_roots
    out = {"MRPE": float(np.linalg.norm(err, axis=1).mean())}
    out.update({f"MRPE_{axis}": float(np.abs(err[:, i]).mean()) for i, axis in enumerate("xyz")})
    return out


def ap_root(
    pred_roots: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    gt_roots: Sequence[np.ndarray],
    *,
    threshold: float = AP_ROOT_THRESHOLD_MM,
) -> float:
    """AP of root positions (module docstring), in [0, 1].

    Args:
        pred_roots: per image, (P_i, 3) predicted camera-frame roots (mm).
        scores: per image, (P_i,) their scores (detector scores, or 1 with ground-truth boxes).
        gt_roots: per image, (G_i, 3) the valid annotated roots.
    """
    if not len(pred_roots) == len(scores) == len(gt_roots):
        raise ValueError("pred_roots, scores and gt_roots must list the same images")
    num_gt = sum(len(np.reshape(g, (-1, 3))) for g in gt_roots)
    if num_gt == 0:
        raise ValueError("AP_root needs annotated roots; none given")
    entries = [
        (float(s), i, np.asarray(r, dtype=np.float64))
        for i, (roots, image_scores) in enumerate(zip(pred_roots, scores))
        for r, s in zip(np.reshape(roots, (-1, 3)), np.reshape(image_scores, (-1,)))
    ]
    entries.sort(key=lambda e: -e[0])  # stable: ties keep the image order
    taken = [np.zeros(len(np.reshape(g, (-1, 3))), dtype=bool) for g in gt_roots]
    hits = []
    for _, image, root in entries:
        gt = np.asarray(gt_roots[image], dtype=np.float64).reshape(-1, 3)
        if len(gt) == 0:
            continue
        dist = np.linalg.norm(gt - root, axis=1)
        nearest = int(np.argmin(dist))
        hit = bool(dist[nearest] < threshold and not taken[image][nearest])
        if hit:
            taken[image][nearest] = True
        hits.append(hit)
    if not hits:
        return 0.0
    tp = np.cumsum(hits, dtype=np.float64)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / num_gt
    return float(np.sum(precision[1:] * (recall[1:] - recall[:-1])))
