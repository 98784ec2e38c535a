"""The PCK family: percentage of correct keypoints, its curve and AUC, end-point error, official MPII PCKh.

Plain numpy functions, usable on any dataset and in notebooks. Dimension letters: N people,
K keypoints, T thresholds. Coordinates are pixels; pred and gt must share one convention
(0- or 1-based), which these functions never change.

A keypoint (i, j) is correct when ``dist_ij / normalizer_i <= threshold`` (``<=`` as the official
HRNet evaluator; pytorch-pose uses ``<``). Only visible entries are scored.

People without a usable normaliser (0 for a missing or zero-size head box): `pck`, `pck_curve`
and `pck_auc` raise by default, or leave them out with ``zero_normalizer="skip"`` as mmpose's
``keypoint_pck_accuracy`` does; `mpii_pckh` divides unchecked, as the official MPII evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from src.layouts import MPII_SHORT_NAMES, mpii_joint_name

__all__ = [
    "MPII_MEAN_EXCLUDED",
    "MPII_PCKH_GROUPS",
    "OFFICIAL_MPII_THRESHOLDS",
    "PCKResult",
    "bbox_size",
    "end_point_error",
    "head_size",
    "mpii_pckh",
    "mpii_pckh_per_joint",
    "pck",
    "pck_auc",
    "pck_curve",
    "torso_size",
    "unusable_normalizers",
]

#: Threshold grid of the official evaluator (HRNet lib/dataset/mpii.py). Its row 11, threshold 0.11,
#: is what the official table labels "Mean@0.1".
OFFICIAL_MPII_THRESHOLDS = np.arange(0, 0.5 + 0.01, 0.01)
_OFFICIAL_LOW_ROW = 11

#: Reported groups of MPII PCKh: group name -> the gt_valid.mat joint names averaged (Head is one joint).
MPII_PCKH_GROUPS: dict[str, tuple[str, ...]] = {
    "Head": ("head",),
    "Shoulder": ("lsho", "rsho"),
    "Elbow": ("lelb", "relb"),
    "Wrist": ("lwri", "rwri"),
    "Hip": ("lhip", "rhip"),
    "Knee": ("lkne", "rkne"),
    "Ankle": ("lank", "rank"),
}
#: Positions of the joints left out of the official mean PCKh, pelvis and thorax (reported per joint
#: only). The official evaluators mask them by position in the 16-joint MPII order, not by name.
MPII_MEAN_EXCLUDED = (MPII_SHORT_NAMES.index("pelv"), MPII_SHORT_NAMES.index("thor"))

#: What `pck` does with a scored person whose normaliser is not finite and > 0.
ZeroNormalizer = Literal["raise", "skip"]


# --------------------------------------------------------------------------- input checks


def _keypoint_arrays(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pred, gt as (N, K, 2) float64 and visible as (N, K) bool; ValueError on any shape mismatch."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible).astype(bool)
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"gt must be (N, K, 2), got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape}, gt {gt.shape}; both must be (N, K, 2)")
    if visible.shape != gt.shape[:2]:
        raise ValueError(f"visible has shape {visible.shape}, expected (N, K) = {gt.shape[:2]}")
    return pred, gt, visible


def _normalized_errors(pred: np.ndarray, gt: np.ndarray, normalizer: np.ndarray) -> np.ndarray:
    """(N, K) distance / per-person normaliser (division, then compared: the official order of operations).

    Zero or non-finite normalisers give inf or NaN, which count as incorrect; callers that want
    a clean error check the normaliser first (`_check_normalizer`).
    """
    distances = np.linalg.norm(pred - gt, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return distances / np.asarray(normalizer, dtype=np.float64)[:, None]


def unusable_normalizers(normalizer: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N,) bool: people with a visible joint whose normaliser is not finite and > 0 (0 for a person
    without a head box or with a zero-size one); ``zero_normalizer="skip"`` leaves exactly these out."""
    normalizer = np.asarray(normalizer, dtype=np.float64)
    visible = np.asarray(visible).astype(bool)
    if visible.ndim != 2 or normalizer.shape != visible.shape[:1]:
        raise ValueError(f"normalizer has shape {normalizer.shape}, expected (N,) = {visible.shape[:1]}")
    with np.errstate(invalid="ignore"):
        return visible.any(axis=1) & ~(np.isfinite(normalizer) & (normalizer > 0))


def _check_normalizer(
    normalizer: np.ndarray, visible: np.ndarray, zero_normalizer: ZeroNormalizer
) -> tuple[np.ndarray, np.ndarray, int]:
    """(N,) float64 normaliser, the (N, K) visible entries still scored, and how many people were left out.

    ``zero_normalizer="raise"``: ValueError unless the normaliser is finite and > 0 for every person
    with a visible joint. ``"skip"``: those people's joints are not scored.
    """
    if zero_normalizer not in ("raise", "skip"):
        raise ValueError(f"zero_normalizer must be 'raise' or 'skip', got {zero_normalizer!r}")
    bad = unusable_normalizers(normalizer, visible)
    normalizer = np.asarray(normalizer, dtype=np.float64)
    first = np.flatnonzero(bad)
    if zero_normalizer == "raise" and len(first):
        raise ValueError(
            f"normalizer must be finite and > 0 for every person with a visible joint; {len(first)} are not "
            f"(first: person {first[0]}, value {normalizer[first[0]]}). Drop those people, mark their joints "
            'invisible, or pass zero_normalizer="skip" to leave them out'
        )
    return normalizer, visible & ~bad[:, None], len(first)


def _percent_correct(errors: np.ndarray, visible: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per joint (K,) percent of visible entries with ``errors <= threshold`` (NaN where none is
    visible), and the counts (K,)."""
    counts = visible.sum(axis=0)
    correct = ((errors <= threshold) & visible).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = 100.0 * correct / counts  # 0 / 0 -> NaN for joints without a visible entry
    return percent, counts


# --------------------------------------------------------------------------- PCK, curve, AUC, EPE


class PCKResult(tuple):
    """What `pck` returns: unpacks as ``(per_joint, counts)``; ``skipped`` is the number of people
    left out for their normaliser (always 0 with ``zero_normalizer="raise"``)."""

    skipped: int

    def __new__(cls, per_joint: np.ndarray, counts: np.ndarray, skipped: int) -> PCKResult:
        result = super().__new__(cls, (per_joint, counts))
        result.skipped = int(skipped)
        return result

    @property
    def per_joint(self) -> np.ndarray:
        return self[0]

    @property
    def counts(self) -> np.ndarray:
        return self[1]


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    normalizer: np.ndarray,
    threshold: float,
    *,
    zero_normalizer: ZeroNormalizer = "raise",
) -> PCKResult:
    """Percentage of correct keypoints per joint.

    Args:
        pred: (N, K, 2) predicted keypoints.
        gt: (N, K, 2) ground truth, same pixel convention as pred.
        visible: (N, K) bool, True where the joint is annotated (only these are scored).
        normalizer: (N,) per-person scale (head size, box size, torso size).
        threshold: correct when ``dist / normalizer <= threshold``.
        zero_normalizer: what to do with a person who has a visible joint but a normaliser that is
            not finite and > 0 (no head box, a zero-size box): "raise" a ValueError (the default),
            or "skip" the person, as mmpose's ``keypoint_pck_accuracy`` leaves out samples whose
            normaliser is 0 (mmpose replaces negative ones by 1e6 and scores them; "skip" leaves
            those out too). The official MPII evaluator checks nothing (see `mpii_pckh`).

    Returns:
        A `PCKResult`, unpacked as ``per_joint, counts``:
        per_joint: (K,) float64 percent in [0, 100], NaN where a joint has no scored entry.
        counts: (K,) int64 number of scored entries per joint.
        ``.skipped``: the number of people left out by ``zero_normalizer="skip"``.
    """
    pred, gt, visible = _keypoint_arrays(pred, gt, visible)
    normalizer, scored, skipped = _check_normalizer(normalizer, visible, zero_normalizer)
    per_joint, counts = _percent_correct(_normalized_errors(pred, gt, normalizer), scored, threshold)
    return PCKResult(per_joint, counts, skipped)


def pck_curve(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    normalizer: np.ndarray,
    thresholds: Sequence[float],
    *,
    zero_normalizer: ZeroNormalizer = "raise",
) -> np.ndarray:
    """(T, K) per-joint PCK (percent, NaN where a joint has no scored entry) at each of T thresholds.

    ``zero_normalizer`` as in `pck` (the people left out are the same at every threshold:
    ``pck(...).skipped`` or ``unusable_normalizers(normalizer, visible).sum()`` counts them).
    """
    pred, gt, visible = _keypoint_arrays(pred, gt, visible)
    normalizer, scored, _ = _check_normalizer(normalizer, visible, zero_normalizer)
    errors = _normalized_errors(pred, gt, normalizer)  # computed once for all thresholds
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if len(thresholds) == 0:
        raise ValueError("thresholds is empty")
    return np.stack([_percent_correct(errors, scored, t)[0] for t in thresholds])


def pck_auc(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    normalizer: np.ndarray,
    thresholds: Sequence[float],
    *,
    zero_normalizer: ZeroNormalizer = "raise",
) -> float:
    """Area under the mean-PCK curve, normalised to [0, 100] over the threshold range.

    Integrated: the mean-PCK curve m(t) = unweighted mean of the per-joint PCK (percent) over the
    joints that have at least one visible entry, sampled at the given thresholds t_0 < ... < t_{T-1}.
    The area is the trapezoid rule over those samples divided by (t_{T-1} - t_0), so a model that
    is correct at every threshold scores 100. Example: thresholds np.linspace(0, 0.5, 51).

    Returns NaN when no joint is visible at all. ``zero_normalizer`` as in `pck`.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if len(thresholds) < 2 or not np.all(np.diff(thresholds) > 0):
        raise ValueError(f"thresholds must be at least two strictly increasing values, got {thresholds.tolist()}")
    curve = pck_curve(pred, gt, visible, normalizer, thresholds, zero_normalizer=zero_normalizer)  # (T, K)
    scored = ~np.isnan(curve[0])  # NaN columns (no visible entry) are NaN at every threshold
    if not scored.any():
        return float("nan")
    mean_pck = curve[:, scored].mean(axis=1)  # (T,)
    area = np.sum(0.5 * (mean_pck[1:] + mean_pck[:-1]) * np.diff(thresholds))
    return float(area / (thresholds[-1] - thresholds[0]))


def end_point_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean Euclidean distance between prediction and ground truth, in pixels, over visible entries.

    Returns:
        per_joint: (K,) mean distance per joint, NaN where a joint has no visible entry.
        overall: mean distance over all visible (person, joint) entries (so joints weigh by their
            visible counts); NaN when nothing is visible.
    """
    pred, gt, visible = _keypoint_arrays(pred, gt, visible)
    distances = np.where(visible, np.linalg.norm(pred - gt, axis=-1), 0.0)  # (N, K); NaN preds stay NaN if visible
    counts = visible.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint = distances.sum(axis=0) / counts
    total = counts.sum()
    overall = float(distances.sum() / total) if total else float("nan")
    return per_joint, overall


# --------------------------------------------------------------------------- normalisers


def head_size(headboxes: np.ndarray, sc_bias: float = 0.6) -> np.ndarray:
    """(N,) PCKh normaliser: ``sc_bias`` times the diagonal of each head box (official SC_BIAS 0.6).

    Args:
        headboxes: (N, 2, 2) head box corners [[x1, y1], [x2, y2]].
    """
    headboxes = np.asarray(headboxes, dtype=np.float64)
    if headboxes.ndim != 3 or headboxes.shape[1:] != (2, 2):
        raise ValueError(f"headboxes must be (N, 2, 2) [[x1, y1], [x2, y2]], got shape {headboxes.shape}")
    return sc_bias * np.linalg.norm(headboxes[:, 1] - headboxes[:, 0], axis=-1)


def bbox_size(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N,) box normaliser: max(width, height) of the tight box around each person's visible gt joints.

    The max side, as in the PCK of Yang & Ramanan: it does not shrink for a person seen from the
    side the way the short side does. NaN for a person with no visible joint (`pck` does not score
    them) and 0 for a person with a single one (`pck` rejects it, or leaves it out with
    ``zero_normalizer="skip"``).

    Args:
        gt: (N, K, 2) ground-truth keypoints.
        visible: (N, K) bool.
    """
    _, gt, visible = _keypoint_arrays(gt, gt, visible)
    lo = np.where(visible[..., None], gt, np.inf).min(axis=1)  # (N, 2)
    hi = np.where(visible[..., None], gt, -np.inf).max(axis=1)
    size = (hi - lo).max(axis=1)
    return np.where(visible.any(axis=1), size, np.nan)


def torso_size(gt: np.ndarray, left_shoulder: int, right_hip: int, *, visible: np.ndarray | None = None) -> np.ndarray:
    """(N,) torso normaliser: distance between two gt joints (PCK on LSP: left shoulder to right hip).

    Args:
        gt: (N, K, 2) ground-truth keypoints.
        left_shoulder, right_hip: indices of the two joints in the layout (any pair may be given).
        visible: optional (N, K) bool; where either joint is not visible the size is NaN.
    """
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"gt must be (N, K, 2), got shape {gt.shape}")
    k = gt.shape[1]
    for index in (left_shoulder, right_hip):
        if not 0 <= index < k:
            raise ValueError(f"joint index {index} out of range for K={k} keypoints")
    size = np.linalg.norm(gt[:, left_shoulder] - gt[:, right_hip], axis=-1)
    if visible is not None:
        visible = np.asarray(visible).astype(bool)
        if visible.shape != gt.shape[:2]:
            raise ValueError(f"visible has shape {visible.shape}, expected (N, K) = {gt.shape[:2]}")
        size = np.where(visible[:, left_shoulder] & visible[:, right_hip], size, np.nan)
    return size


# --------------------------------------------------------------------------- official MPII PCKh


def _joint_index(joint_names: Sequence[str], name: str) -> int:
    """Index of the joint ``name`` (gt_valid.mat spelling) among names in any known spelling."""
    spelled = [mpii_joint_name(n) for n in joint_names]
    try:
        return spelled.index(name)
    except ValueError:
        raise ValueError(f"MPII PCKh needs joint {name!r}, which is not in joint_names {list(joint_names)}") from None


def _group_value(per_joint: np.ndarray, indices: Sequence[int]) -> float:
    """Official group value: the joint itself, or 0.5 * (left + right).

    Where one side has no visible entry (NaN), the group is the other side; NaN when neither has one.
    """
    values = per_joint[list(indices)]
    if len(values) == 2 and not np.isnan(values).any():
        return float(0.5 * (values[0] + values[1]))  # the official expression, bit for bit
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def _weighted_mean(per_joint: np.ndarray, counts: np.ndarray, included: np.ndarray) -> float:
    """Official Mean: sum over included joints of PCKh_j * count_j / sum(count).

    Evaluated as the official masked-array expression is (excluded joints filled with 0, summed over
    all K), so the result is bit-identical; joints with no visible entry add 0 instead of NaN.
    """
    weights = np.where(included, counts, 0).astype(np.float64)
    total = weights.sum()
    if total == 0:
        return 0.0  # nothing visible to score
    ratio = weights / total
    return float(np.sum(np.where(included & (counts > 0), per_joint * ratio, 0.0)))


def mpii_pckh_per_joint(
    pred: np.ndarray, gt_positions: np.ndarray, missing: np.ndarray, headboxes: np.ndarray, *, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Official per-joint PCKh of every joint (pelvis and thorax included), as `mpii_pckh` scores them.

    Args: as `mpii_pckh` (pred and gt_positions (N, K, 2), missing (N, K), headboxes (N, 2, 2)).

    Returns:
        per_joint: (K,) percent, NaN where a joint has no annotated entry.
        counts: (K,) number of annotated entries per joint (the weights of the official mean).
    """
    pred, gt_positions, visible, headboxes = _mpii_arrays(pred, gt_positions, missing, headboxes)
    errors = _normalized_errors(pred, gt_positions, head_size(headboxes))  # official: no check on head size
    return _percent_correct(errors, visible, threshold)


def _mpii_arrays(
    pred: np.ndarray, gt_positions: np.ndarray, missing: np.ndarray, headboxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pred, gt (N, K, 2) float64, visible (N, K) bool = not missing, headboxes (N, 2, 2); ValueError on shapes."""
    pred, gt_positions, missing = _keypoint_arrays(pred, gt_positions, missing)
    headboxes = np.asarray(headboxes, dtype=np.float64)
    n = len(missing)
    if headboxes.shape != (n, 2, 2):
        raise ValueError(f"headboxes has shape {headboxes.shape}, expected (N, 2, 2) = {(n, 2, 2)}")
    return pred, gt_positions, ~missing, headboxes


def mpii_pckh(
    pred: np.ndarray,
    gt_positions: np.ndarray,
    missing: np.ndarray,
    headboxes: np.ndarray,
    *,
    joint_names: Sequence[str],
    threshold: float = 0.5,
    low_threshold: float = 0.1,
    official_low_column: bool = False,
) -> dict[str, float]:
    """MPII PCKh as the official HRNet evaluator (lib/dataset/mpii.py `evaluate`) computes it.

    Head size = 0.6 x head box diagonal; a joint is correct when dist / head size <= threshold;
    per-joint PCKh in percent over the annotated entries; groups Head (joint 'head') and
    Shoulder/Elbow/Wrist/Hip/Knee/Ankle (mean of left and right), found by name as the official
    code does; Mean = sum over the joints other than pelvis and thorax of PCKh_j * count_j /
    sum(count) (count-weighted). Pelvis and thorax are left out by position (6 and 7 of the
    16-joint MPII order), as the official code masks them, so their spelling does not matter.

    Head sizes are not checked, as in the official evaluators (HRNet and MPII's MATLAB code): a
    person with a zero-size head box has every annotated joint counted as wrong. Use `pck` with
    `head_size` to raise on such people or leave them out instead.

    Args:
        pred: (N, K, 2) predictions, same pixel convention as gt (for gt_valid.mat: 1-based, so the
            caller adds 1 to 0-based predictions, as the official code does).
        gt_positions: (N, K, 2) ground truth.
        missing: (N, K) bool, True where a joint is not annotated (not scored).
        headboxes: (N, 2, 2) head box corners [[x1, y1], [x2, y2]].
        joint_names: the 16 names of gt_valid.mat ('rank', 'rkne', ..., 'head', ..., 'lwri'), in
            any case or known spelling (the MPII tools' 'thrx', the mpii16 layout's long names);
            the group joints are found by name (ValueError naming a missing one).
        threshold: threshold of "PCKh" and the group values.
        low_threshold: threshold of "PCKh@0.1".
        official_low_column: report as "PCKh@0.1" the official "Mean@0.1" column instead, which
            is row 11 of np.arange(0, 0.51, 0.01), i.e. threshold 0.11 (bit-identical to the
            official table; low_threshold is then ignored).

    Returns:
        {"PCKh", "PCKh@0.1", "PCKh/Head", "PCKh/Shoulder", "PCKh/Elbow", "PCKh/Wrist", "PCKh/Hip",
        "PCKh/Knee", "PCKh/Ankle"}, percentages. Where the official code divides 0 by 0 (a joint
        with no annotated entry) the per-joint PCKh is NaN: it adds nothing to the means (its weight
        is 0), a left/right group takes the other side, and a group with no annotated entry at all
        is NaN. The means are 0 when nothing at all is annotated.
    """
    pred, gt_positions, visible, headboxes = _mpii_arrays(pred, gt_positions, missing, headboxes)
    k = visible.shape[1]
    if len(joint_names) != k:
        raise ValueError(f"joint_names has {len(joint_names)} names for K={k} joints")
    if k != len(MPII_SHORT_NAMES):
        raise ValueError(f"MPII PCKh scores the {len(MPII_SHORT_NAMES)} MPII joints in their official order, got K={k}")
    groups = {group: [_joint_index(joint_names, name) for name in names] for group, names in MPII_PCKH_GROUPS.items()}
    included = np.ones(k, dtype=bool)
    included[list(MPII_MEAN_EXCLUDED)] = False

    errors = _normalized_errors(pred, gt_positions, head_size(headboxes))  # official: no check on head size
    per_joint, counts = _percent_correct(errors, visible, threshold)
    low = OFFICIAL_MPII_THRESHOLDS[_OFFICIAL_LOW_ROW] if official_low_column else low_threshold
    per_joint_low, _ = _percent_correct(errors, visible, low)

    result = {
        "PCKh": _weighted_mean(per_joint, counts, included),
        "PCKh@0.1": _weighted_mean(per_joint_low, counts, included),
    }
    for group, indices in groups.items():
        result[f"PCKh/{group}"] = _group_value(per_joint, indices)
    return result
