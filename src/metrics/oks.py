"""Object keypoint similarity (OKS) and OKS-based non-maximum suppression.

Restates the official HRNet NMS code (lib/nms/nms.py) in vectorised numpy. Dimension letters:
M detections compared against one instance, N instances, K keypoints. `pairwise_oks` compares two
sets at once (the tracker of `src.inference.tracking` matches people across frames with it).

OKS between an instance g and a detection d, over all K joints (visibility is not used):

    e_k = d_k^2 / (2 sigma_k)^2 / ((a_g + a_d) / 2 + eps) / 2,   OKS = mean_k exp(-e_k)

with d_k the pixel distance of joint k, a_g / a_d the instance areas and eps = np.spacing(1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EPS = np.spacing(1)


def pairwise_oks(
    a: np.ndarray,
    b: np.ndarray,
    areas_a: np.ndarray,
    areas_b: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
    *,
    valid_a: np.ndarray | None = None,
    valid_b: np.ndarray | None = None,
) -> np.ndarray:
    """OKS of every instance of ``a`` against every instance of ``b`` (the formula above).

    Args:
        a: (N, K, 2|3) keypoints [x, y(, score)] in pixels; only x, y are used.
        b: (M, K, 2|3) keypoints of the other set.
        areas_a, areas_b: (N,) and (M,) instance areas in pixels^2.
        sigmas: (K,) per-keypoint OKS sigmas.
        valid_a, valid_b: (N, K) and (M, K) bool, the joints that count; the mean runs over the
            joints valid in both instances (a pair with none in common has OKS 0). None: all.

    Returns:
        (N, M) float64 OKS values in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    areas_a = np.asarray(areas_a, dtype=np.float64).reshape(-1)
    areas_b = np.asarray(areas_b, dtype=np.float64).reshape(-1)
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"expected keypoints (N, K, 2|3) and (M, K, 2|3), got {a.shape} and {b.shape}")
    if not (a.shape[1] == b.shape[1] == sigmas.shape[0]):
        raise ValueError(f"keypoint counts disagree: {a.shape[1]} and {b.shape[1]} keypoints, {sigmas.shape[0]} sigmas")
    if areas_a.shape[0] != a.shape[0] or areas_b.shape[0] != b.shape[0]:
        raise ValueError(f"{areas_a.shape[0]} and {areas_b.shape[0]} areas for {a.shape[0]} and {b.shape[0]} instances")
    sq_dist = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=-1)  # (N, M, K)
    variances = (2.0 * sigmas) ** 2  # (K,)
    mean_area = (areas_a[:, None] + areas_b[None, :]) / 2.0 + _EPS  # (N, M)
    similarity = np.exp(-(sq_dist / variances / mean_area[:, :, None] / 2.0))
    if valid_a is None and valid_b is None:
        return similarity.mean(axis=-1)
    both = np.ones(similarity.shape, dtype=bool)
    if valid_a is not None:
        both &= np.asarray(valid_a, dtype=bool)[:, None, :]
    if valid_b is not None:
        both &= np.asarray(valid_b, dtype=bool)[None, :, :]
    counts = both.sum(axis=-1)
    total = np.where(both, similarity, 0.0).sum(axis=-1)
    return np.divide(total, counts, out=np.zeros(counts.shape), where=counts > 0)


def compute_oks(
    gt: np.ndarray,
    dets: np.ndarray,
    gt_area: float,
    det_areas: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """OKS of one reference instance against M others (official `oks_iou`, without visibility).

    Args:
        gt: (K, 2) or (K, 3) reference keypoints [x, y(, score)] in pixels; only x, y are used.
        dets: (M, K, 2) or (M, K, 3) keypoints of the compared instances.
        gt_area: area of the reference instance in pixels^2.
        det_areas: (M,) areas of the compared instances.
        sigmas: (K,) per-keypoint OKS sigmas.

    Returns:
        (M,) float64 OKS values in [0, 1].
    """
    gt = np.asarray(gt, dtype=np.float64)
    dets = np.asarray(dets, dtype=np.float64)
    if dets.ndim != 3 or gt.ndim != 2:
        raise ValueError(f"expected gt (K, 2|3) and dets (M, K, 2|3), got {gt.shape} and {dets.shape}")
    det_areas = np.asarray(det_areas, dtype=np.float64).reshape(-1)
    if det_areas.shape[0] != dets.shape[0]:
        raise ValueError(f"det_areas has {det_areas.shape[0]} entries for {dets.shape[0]} detections")
    return pairwise_oks(gt[None], dets, np.array([gt_area], dtype=np.float64), det_areas, sigmas)[0]


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting scores high to low exactly as the official code does,
    ``np.argsort(scores)[::-1]`` on float64: tied scores come out in reverse of the order NumPy's
    default sort leaves them in (not a stable descending sort; with ties this changes which
    duplicate NMS keeps, and so AP)."""
    return np.argsort(np.asarray(scores, dtype=np.float64))[::-1]


def _check_instances(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray) -> None:
    if keypoints.ndim != 3:
        raise ValueError(f"keypoints must be (N, K, 2|3), got shape {keypoints.shape}")
    n = keypoints.shape[0]
    if scores.shape != (n,) or areas.shape != (n,):
        raise ValueError(f"scores {scores.shape} and areas {areas.shape} must both be ({n},)")
    bad = np.flatnonzero(~(np.isfinite(areas) & (areas > 0)))
    if bad.size:  # a NaN area makes every OKS with the instance NaN, which no threshold test drops
        raise ValueError(
            f"OKS-NMS needs finite, positive instance areas; rows {bad[:10].tolist()} have {areas[bad[:10]].tolist()}"
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"OKS-NMS needs finite scores; rows {np.flatnonzero(~np.isfinite(scores))[:10].tolist()}")


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    *,
    thr: float,
    sigmas: Sequence[float] | np.ndarray,
) -> list[int]:
    """Greedy OKS-NMS (official `oks_nms`).

    Sort by score (descending), keep the best instance, drop every remaining one whose OKS with
    it is > thr (those with OKS <= thr survive), repeat on the survivors.

    Args:
        keypoints: (N, K, 2|3) instance keypoints in pixels.
        scores: (N,) instance scores.
        areas: (N,) instance areas in pixels^2.
        thr: OKS threshold (official OKS_THRE 0.9).
        sigmas: (K,) per-keypoint OKS sigmas.

    Returns:
        Indices of the kept instances, in the order they were selected (best first).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    _check_instances(keypoints, scores, areas)
    order = descending_order(scores)
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = compute_oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[overlap <= thr]
    return keep


def soft_oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    *,
    thr: float,
    sigmas: Sequence[float] | np.ndarray,
    max_dets: int = 20,
) -> list[int]:
    """Soft OKS-NMS (official `soft_oks_nms`, Gaussian rescoring; off in the official configs).

    Repeatedly keep the best-scored instance, then decay the scores of the others by
    exp(-OKS^2 / thr) and re-sort, until max_dets instances are kept or none are left. Nothing
    is dropped by a threshold; only the order (and the max_dets cap) changes.

    Args / shapes as in `oks_nms`; max_dets caps the number of kept instances.

    Returns:
        Indices of the kept instances, in selection order.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    _check_instances(keypoints, scores, areas)
    order = descending_order(scores)
    current = scores[order]
    keep: list[int] = []
    while order.size > 0 and len(keep) < max_dets:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = compute_oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        current = current[1:] * np.exp(-(overlap**2) / thr)
        resort = descending_order(current)
        order, current = rest[resort], current[resort]
    return keep
