"""The per-frame multi-person pose mAP of the official PoseTrack evaluation, on arrays.

A reimplementation of ``evaluateAP`` of poseval (github.com/leonid-pishchulin/poseval,
``py/evaluateAP.py`` and ``py/eval_helpers.py``), the evaluation of the PoseTrack18 benchmark and of
mmpose's ``PoseTrack18Metric``, from its definition:

1. Frames: every labelled frame with at least one ground-truth person; predictions on other frames
   are not looked at.
2. Joints: the 15 of `POSEVAL_JOINTS` (the ears are not evaluated). A ground-truth joint is
   annotated unless x = y = 0 and v = 0 (so a joint with v = 0 elsewhere counts, as in poseval); a
   predicted joint exists unless x = y = 0 and its score is 0.
3. Ignore regions: in a frame with ignore regions, the ground-truth and predicted joints inside any
   region's polygon are removed, and so are the people left without joints (poseval tests the
   strict interior with shapely; here the even-odd rule, which agrees for simple polygons except on
   the boundary itself).
4. Matching, frame by frame: the head size of a ground-truth person is 0.6 times the diagonal of its
   head box; a predicted joint matches when its distance to the annotated joint, divided by the head
   size, is at most 0.5 (PCKh@0.5). pck[p, g] is the share of g's annotated joints that p matches.
   Each prediction keeps only its best person (the first on ties), then each person takes the
   prediction with the highest pck left for it (the first on ties; none when it is 0). The joints of
   an assigned prediction are true positives where they match; those of every other prediction are
   false positives. When a frame has predictions but no person left, all are false positives.
5. Per joint: the predicted joints of all frames by descending score (numpy's sort, reversed, as
   poseval), precision and recall against the number of annotated joints, AP = the area under the
   precision envelope over the recall steps (VOC, all points). A joint without predictions has AP
   0; one with predictions but no annotation anywhere has AP NaN.
6. Total: the mean of the joints' APs that are not NaN; the groups Head (head top, head bottom,
   nose), Shoulder, Elbow, Wrist, Hip, Knee and Ankle: the mean of their joints' APs.

poseval prints percentages; the values here are fractions (x 100 gives its table). No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The joints poseval evaluates, by the names of the PoseTrack18 files.
POSEVAL_JOINTS = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "head_bottom",
    "nose",
    "head_top",
)
#: The groups of poseval's table (``getCum``) and the key of each.
GROUPS = {
    "mAP_head": ("head_top", "head_bottom", "nose"),
    "mAP_shoulder": ("right_shoulder", "left_shoulder"),
    "mAP_elbow": ("right_elbow", "left_elbow"),
    "mAP_wrist": ("right_wrist", "left_wrist"),
    "mAP_hip": ("right_hip", "left_hip"),
    "mAP_knee": ("right_knee", "left_knee"),
    "mAP_ankle": ("right_ankle", "left_ankle"),
}
#: The stats `per_frame_map` returns: the total, then the groups.
MAP_NAMES = ("mAP", *GROUPS)
#: PCKh threshold and head-size factor of poseval.
DIST_THRESHOLD = 0.5
HEAD_SIZE_FACTOR = 0.6


def poseval_joint_indices(keypoint_names: Sequence[str]) -> tuple[int, ...]:
    """The layout's index of each of `POSEVAL_JOINTS`; ValueError naming the missing ones."""
    names = list(keypoint_names)
    missing = [n for n in POSEVAL_JOINTS if n not in names]
    if missing:
        raise ValueError(f"the PoseTrack mAP needs the joints {missing}, which the keypoint layout does not have")
    return tuple(names.index(n) for n in POSEVAL_JOINTS)


def inside_polygons(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """(M,) bool: whether each of the (M, 2) points lies inside any of the (P, 2) polygons (even-odd)."""
    inside = np.zeros(len(points), dtype=bool)
    px, py = points[:, 0:1], points[:, 1:2]
    for polygon in polygons:
        x1, y1 = polygon[:, 0], polygon[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        spans = (y1 > py) != (y2 > py)  # (M, P): the edge crosses the point's horizontal line
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        crossings = np.count_nonzero(spans & (px < x_cross), axis=1)
        inside |= crossings % 2 == 1
    return inside


def _drop_ignored(keypoints: np.ndarray, present: np.ndarray, polygons: Sequence[np.ndarray]) -> tuple:
    """(present without the joints inside the ignore regions, (N,) whether each person keeps one)."""
    if len(keypoints) == 0:
        return present, np.zeros(0, dtype=bool)
    n, j = present.shape
    ignored = inside_polygons(keypoints[:, :, :2].reshape(-1, 2), polygons).reshape(n, j)
    present = present & ~ignored
    return present, present.any(axis=1)


def _frame(truth: Any, predicted: np.ndarray, joints: tuple[int, ...]) -> tuple[list, list, np.ndarray]:
    """Scores and labels of one frame's predicted joints ((J,) lists of arrays) and its (J,) counts
    of annotated joints."""
    gt = np.asarray(truth.keypoints, np.float64)[:, joints]  # (G, J, 3)
    heads = np.asarray(truth.head_boxes, np.float64).reshape(-1, 4)
    pr = np.asarray(predicted, np.float64).reshape(-1, np.asarray(truth.keypoints).shape[1], 3)[:, joints]
    gt_has = ~((gt[..., 0] == 0) & (gt[..., 1] == 0) & (gt[..., 2] == 0))
    pr_has = ~((pr[..., 0] == 0) & (pr[..., 1] == 0) & (pr[..., 2] == 0))
    regions = list(truth.ignore_regions)
    if regions:  # people left without joints go too, as poseval removes them in such frames
        gt_has, keep = _drop_ignored(gt, gt_has, regions)
        gt, gt_has, heads = gt[keep], gt_has[keep], heads[keep]
        pr_has, keep = _drop_ignored(pr, pr_has, regions)
        pr, pr_has = pr[keep], pr_has[keep]
    n_joints = len(joints)
    labels = np.zeros(pr_has.shape, dtype=bool)
    if len(pr) and len(gt):
        with np.errstate(divide="ignore", invalid="ignore"):
            head_size = HEAD_SIZE_FACTOR * np.hypot(heads[:, 2], heads[:, 3])  # (G,)
            dist = np.linalg.norm(pr[:, None, :, :2] - gt[None, :, :, :2], axis=-1) / head_size[None, :, None]
        both = pr_has[:, None, :] & gt_has[None, :, :]
        match = both & (np.where(both, dist, np.inf) <= DIST_THRESHOLD)  # (N, G, J)
        annotated = gt_has.sum(axis=1)  # (G,)
        pck = match.sum(axis=2).astype(np.float64)
        pck[:, annotated > 0] /= annotated[annotated > 0]
        best = np.argmax(pck, axis=1)
        only_best = np.zeros_like(pck)
        rows = np.arange(len(pck))
        only_best[rows, best] = pck[rows, best]
        winner = np.argmax(only_best, axis=0)  # (G,) the prediction each person takes
        winner[only_best.max(axis=0) == 0] = -1
        for g, p in enumerate(winner):
            if p >= 0:
                labels[p] = match[p, g]
    scores = [pr[pr_has[:, j], j, 2] for j in range(n_joints)]
    flags = [labels[pr_has[:, j], j] for j in range(n_joints)]
    return scores, flags, gt_has.sum(axis=0)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope at the recall steps (poseval's ``VOCap``)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def joint_ap(scores: np.ndarray, labels: np.ndarray, num_annotated: float) -> float:
    """AP of one joint over all frames: 0 without predictions, NaN without annotations."""
    if len(scores) == 0:
        return 0.0
    order = np.asarray(scores).argsort()[::-1]
    true_pos = np.cumsum(np.asarray(labels, np.float64)[order])
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = true_pos / num_annotated
    precision = true_pos / np.arange(1, len(order) + 1)
    return voc_ap(recall, precision)


def per_frame_map(
    frames: Sequence[Any], predictions: Mapping[int, np.ndarray], joints: tuple[int, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """The PoseTrack per-frame mAP (module docstring).

    Args:
        frames: the evaluated frames, each with ``image_id``, ``keypoints`` (G, K, 3) x, y, v of its
            people, ``head_boxes`` (G, 4) x, y, w, h and ``ignore_regions`` ((P, 2) polygons).
        predictions: image id -> (N, K, 3) x, y, score of the people predicted on it.
        joints: the layout's index of each of `POSEVAL_JOINTS` (`poseval_joint_indices`).

    Returns:
        ({"mAP", "mAP_head", ...} as fractions, NaN where poseval gives NaN; {joint name: AP}).
    """
    n_joints = len(joints)
    scores: list[list[np.ndarray]] = [[] for _ in range(n_joints)]
    labels: list[list[np.ndarray]] = [[] for _ in range(n_joints)]
    annotated = np.zeros(n_joints)
    for truth in frames:
        k = np.asarray(truth.keypoints).shape[1]
        predicted = predictions.get(int(truth.image_id), np.zeros((0, k, 3)))
        frame_scores, frame_labels, frame_annotated = _frame(truth, predicted, joints)
        for j in range(n_joints):
            scores[j].append(frame_scores[j])
            labels[j].append(frame_labels[j])
        annotated += frame_annotated
    aps = np.array(
        [joint_ap(np.concatenate(scores[j]), np.concatenate(labels[j]), annotated[j]) for j in range(n_joints)]
    )
    by_name = dict(zip(POSEVAL_JOINTS, aps.tolist()))
    valid = aps[~np.isnan(aps)]
    stats = {"mAP": float(valid.mean()) if valid.size else float("nan")}
    for key, names in GROUPS.items():
        stats[key] = float(np.mean([by_name[n] for n in names]))
    return stats, by_name
