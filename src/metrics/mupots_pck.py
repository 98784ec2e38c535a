"""MuPoTS-3D's 3D PCK and AUC as the official MATLAB evaluation computes them, as plain functions
on arrays (pure numpy; usable on any 3D data and in notebooks).

Joints are the 17 of MuPoTS-3D in its order (0 head top, 1 thorax, 2-4 right arm, 5-7 left arm,
8-10 right leg, 11-13 left leg, 14 pelvis, 15 spine, 16 head); coordinates in mm (3D) and pixels
(2D). The rules, from the evaluation kit (``mpii_mupots_multiperson_eval.m`` and the utilities it
calls), per sequence:

1. people are matched frame by frame on their 2D joints, greedily in ground-truth order: each
   annotated person takes, among the predictions not yet taken, the one with the most joints of
   `MATCHING_JOINTS` (thorax to left ankle) within 40 px in both x and y, where both joints are
   visible (a joint at exactly (0, 0) is invisible); the first maximum wins and a match needs at
   least one such joint (`match_people`);
2. relative mode subtracts each pose's own pelvis from its 3D joints (absolute mode does not);
3. a matched prediction is rescaled to the ground truth's bone lengths, walking out from the pelvis,
   which keeps its predicted position (`map_to_gt_bone_lengths`);
4. the error of a joint is its Euclidean distance; an unmatched person counts as wrong everywhere
   in the "all" mode and is left out in the "matched" mode;
5. PCK is the share of the 14 scored joints (`SCORED_JOINTS`, head top to left ankle) with an error
   strictly below 150 mm, AUC the mean of that share over the thresholds 0, 5, ..., 150 mm (so a
   perfect prediction has AUC 30/31 = 96.77, since no error is below 0), both in percent;
6. the reported figure is the mean over the sequences, not over all people (`mupots_scores`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: Parent of each of the 17 joints (0-based; the pelvis is its own), the kit's bone-length mapping.
PARENTS = (1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, 14, 14, 1)
#: The order in which the joints are re-placed, parents before children (pelvis excluded).
BONE_ORDER = (15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
#: Joints compared when people are matched: thorax to left ankle.
MATCHING_JOINTS = tuple(range(1, 14))
#: Joints scored: head top to left ankle (pelvis, spine and head are not).
SCORED_JOINTS = tuple(range(14))
PELVIS = 14
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))
MATCH_THRESHOLD_PX = 40.0
#: The error given to every joint of an unmatched person in the "all" mode (the kit's 1e5 poses).
MISSED = float("inf")


def visible_2d(joints_2d: np.ndarray) -> np.ndarray:
    """(..., K) True where a 2D joint is not exactly at (0, 0), the kit's test of visibility."""
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    return ~((joints_2d[..., 0] == 0) & (joints_2d[..., 1] == 0))


def match_people(
    gt_2d: np.ndarray,
    pred_2d: np.ndarray,
    *,
    threshold: float = MATCH_THRESHOLD_PX,
    joints: Sequence[int] = MATCHING_JOINTS,
) -> np.ndarray:
    """Greedy matching in ground-truth order (rule 1 of the module docstring).

    Args:
        gt_2d: (G, K, 2) annotated people's 2D joints.
        pred_2d: (P, K, 2) predicted people's 2D joints.

    Returns:
        (G,) index of each person's prediction, -1 where none matched.
    """
    gt_2d = np.asarray(gt_2d, dtype=np.float64).reshape(-1, *np.shape(gt_2d)[-2:])
    pred_2d = np.asarray(pred_2d, dtype=np.float64).reshape(-1, *np.shape(pred_2d)[-2:])
    index = list(joints)
    taken = np.zeros(len(pred_2d), dtype=bool)
    matches = np.full(len(gt_2d), -1, dtype=np.int64)
    if len(pred_2d) == 0:
        return matches
    pred_vis = visible_2d(pred_2d[:, index])
    for g, person in enumerate(gt_2d):
        close = np.all(np.abs(pred_2d[:, index] - person[index]) < threshold, axis=-1)
        scores = np.sum(close & pred_vis & visible_2d(person[index]), axis=1)
        scores[taken] = -1
        best = int(np.argmax(scores))  # the first maximum
        if scores[best] > 0:
            matches[g] = best
            taken[best] = True
    return matches


def map_to_gt_bone_lengths(
    pred: np.ndarray, gt: np.ndarray, *, parents: Sequence[int] = PARENTS, order: Sequence[int] = BONE_ORDER
) -> np.ndarray:
    """A predicted pose (K, 3) with every bone rescaled to the ground truth's length (K, 3), keeping
    its directions and the position of the root (rule 3). A zero-length predicted bone gives NaN,
    which no threshold accepts."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mapped = pred.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for joint in order:
            parent = parents[joint]
            bone = pred[joint] - pred[parent]
            length = np.linalg.norm(gt[joint] - gt[parent])
            mapped[joint] = mapped[parent] + bone / np.linalg.norm(bone) * length
    return mapped


def frame_errors(
    gt_3d: np.ndarray,
    gt_2d: np.ndarray,
    pred_3d: np.ndarray,
    pred_2d: np.ndarray,
    *,
    relative: bool = True,
    matched_only: bool = False,
) -> np.ndarray:
    """Per-joint errors (n, K) in mm of one frame's annotated people (rules 1-4).

    Args:
        gt_3d, gt_2d: (G, K, 3) and (G, K, 2) annotated people.
        pred_3d, pred_2d: (P, K, 3) absolute camera-frame mm and (P, K, 2) pixels, predicted people.
        relative: 3DPCK_rel (each pose relative to its own pelvis) or 3DPCK_abs.
        matched_only: the "matched" mode (unmatched people left out) instead of "all" (unmatched
            people wrong at every joint, `MISSED`).
    """
    gt_3d = np.asarray(gt_3d, dtype=np.float64)
    pred_3d = np.asarray(pred_3d, dtype=np.float64)
    matches = match_people(gt_2d, pred_2d)
    errors = []
    for g, p in enumerate(matches):
        if p < 0:
            if not matched_only:
                errors.append(np.full(gt_3d.shape[1], MISSED))
            continue
        gt, pred = gt_3d[g], pred_3d[p]
        if relative:
            gt, pred = gt - gt[PELVIS], pred - pred[PELVIS]
        errors.append(np.linalg.norm(map_to_gt_bone_lengths(pred, gt) - gt, axis=-1))
    return np.asarray(errors, dtype=np.float64).reshape(len(errors), gt_3d.shape[1])


def pck_3d(errors: np.ndarray, *, threshold: float = PCK_THRESHOLD_MM, joints: Sequence[int] = SCORED_JOINTS) -> float:
    """Percentage of the ``joints`` of all people (errors (N, K) mm) strictly below ``threshold``."""
    errors = np.asarray(errors, dtype=np.float64)[:, list(joints)]
    if errors.size == 0:
        return float("nan")
    with np.errstate(invalid="ignore"):
        return float(100.0 * np.mean(errors < threshold))


def auc_3d(
    errors: np.ndarray, *, thresholds: Iterable[float] = AUC_THRESHOLDS_MM, joints: Sequence[int] = SCORED_JOINTS
) -> float:
    """The mean of `pck_3d` over ``thresholds`` (official: 0 to 150 mm in steps of 5)."""
    return float(np.mean([pck_3d(errors, threshold=t, joints=joints) for t in thresholds]))


def mupots_scores(
    sequences: Mapping[str, Sequence[Mapping[str, np.ndarray]]], *, relative: bool = True, matched_only: bool = False
) -> dict[str, object]:
    """3D PCK and AUC of every sequence and their means over the sequences (rules 5 and 6).

    Args:
        sequences: sequence name -> frames, each {"gt_3d", "gt_2d", "pred_3d", "pred_2d"} as for
            `frame_errors` (frames without annotated people are skipped, as the kit does).

    Returns:
        {"PCK": mean over sequences, "AUC": likewise, "per_sequence": {name: {"PCK", "AUC", "people"}}};
        a sequence without a scored person (possible in the "matched" mode) is left out of the means.
    """
    per_sequence: dict[str, dict[str, float]] = {}
    for name, frames in sequences.items():
        errors = [
            frame_errors(
                f["gt_3d"], f["gt_2d"], f["pred_3d"], f["pred_2d"], relative=relative, matched_only=matched_only
            )
            for f in frames
            if len(f["gt_3d"])
        ]
        stacked = np.concatenate(errors) if errors else np.zeros((0, len(PARENTS)))
        per_sequence[name] = {"PCK": pck_3d(stacked), "AUC": auc_3d(stacked), "people": float(len(stacked))}
    scored = [v for v in per_sequence.values() if v["people"] > 0]
    return {
        "PCK": float(np.mean([v["PCK"] for v in scored])) if scored else float("nan"),
        "AUC": float(np.mean([v["AUC"] for v in scored])) if scored else float("nan"),
        "per_sequence": per_sequence,
    }
