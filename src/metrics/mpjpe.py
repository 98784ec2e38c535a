"""3D joint errors: MPJPE and Procrustes-aligned PA-MPJPE (3DMPPE PoseNet evaluation on Human3.6M).

Dimension letters: N samples (people), K joints; coordinates are camera-frame millimetres.

Human3.6M protocols as the official PoseNet evaluator runs them: prediction and ground truth are
made root-relative (pelvis, index 0); protocol 1 ("PA-MPJPE") then aligns each prediction to its
ground truth with a rigid transform, rotation and translation and **no scale**, computed on all
joints of the model (the 17 original ones plus the added thorax); the evaluated joints (the 17
original ones) are selected only after the alignment. Protocol 2 ("MPJPE") skips the alignment.
Both are the mean Euclidean distance over every evaluated joint of every sample.

`rigid_align` solves the orthogonal Procrustes problem with an SVD (Kabsch): for centred point
sets A (prediction) and B (ground truth), H = A^T B = U S V^T and R = V U^T. When R is a
reflection (det R < 0) the last singular direction is negated (the last row of V^T), which gives
the best proper rotation. With ``scale=True`` the isotropic scale of Umeyama's similarity
transform, s = (S_1 + S_2 + d S_3) / sum |A|^2 with d = sign(det R) before the fix, is applied too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["joint_errors", "mpjpe", "pa_mpjpe", "procrustes_transform", "rigid_align", "root_relative"]


def _pose_arrays(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """pred, gt as (N, K, 3) float64, and whether the inputs were a single (K, 3) pose."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape} but gt has shape {gt.shape}; both must be (N, K, 3) or (K, 3)")
    if pred.ndim not in (2, 3) or pred.shape[-1] != 3:
        raise ValueError(f"poses must be (N, K, 3) or (K, 3) arrays of 3D joints, got shape {pred.shape}")
    single = pred.ndim == 2
    if single:
        pred, gt = pred[None], gt[None]
    return pred, gt, single


def _joint_indices(joints: Sequence[int] | None, k: int) -> np.ndarray:
    """The chosen joint indices as an int array (all K when None); ValueError when one is out of range."""
    if joints is None:
        return np.arange(k)
    indices = np.asarray(joints, dtype=np.int64).reshape(-1)
    if len(indices) == 0:
        raise ValueError("joints is empty; pass None to evaluate every joint")
    bad = indices[(indices < 0) | (indices >= k)]
    if len(bad):
        raise ValueError(f"joint index {int(bad[0])} out of range for K={k} joints")
    return indices


def root_relative(joints: np.ndarray, root_index: int = 0) -> np.ndarray:
    """Joints minus their root joint: (..., K, 3) -> (..., K, 3), the root itself at the origin.

    Args:
        joints: (N, K, 3) or (K, 3) joints.
        root_index: index of the root joint (the pelvis, 0, in the Human3.6M layouts).
    """
    joints = np.asarray(joints)
    if joints.ndim < 2 or joints.shape[-1] != 3:
        raise ValueError(f"joints must be (..., K, 3), got shape {joints.shape}")
    k = joints.shape[-2]
    if not 0 <= root_index < k:
        raise ValueError(f"root_index {root_index} out of range for K={k} joints")
    return joints - joints[..., root_index : root_index + 1, :]


def procrustes_transform(
    pred: np.ndarray, gt: np.ndarray, *, scale: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample transform that best maps pred onto gt: ``aligned = s * pred @ R.T + t`` (least squares).

    Args:
        pred: (N, K, 3) or (K, 3) points to move.
        gt: the same shape, the target points.
        scale: also fit an isotropic scale (similarity transform); otherwise s = 1 (rigid transform).

    Returns:
        s: (N,) scales (ones without ``scale``).
        R: (N, 3, 3) proper rotations (det +1).
        t: (N, 3) translations.
        For a single (K, 3) pose the leading N axis is dropped: s is a 0-d array, R (3, 3), t (3,).
    """
    pred, gt, single = _pose_arrays(pred, gt)
    mean_pred = pred.mean(axis=1, keepdims=True)  # (N, 1, 3)
    mean_gt = gt.mean(axis=1, keepdims=True)
    a = pred - mean_pred
    b = gt - mean_gt
    h = np.einsum("nki,nkj->nij", a, b)  # (N, 3, 3) cross-covariance A^T B
    u, sv, vt = np.linalg.svd(h)
    rotation = np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)  # V U^T
    reflected = np.linalg.det(rotation) < 0
    if reflected.any():  # flip the last singular direction: the best proper rotation
        vt[reflected, 2] *= -1.0
        rotation[reflected] = np.swapaxes(vt[reflected], 1, 2) @ np.swapaxes(u[reflected], 1, 2)
    if scale:
        sv = sv.copy()
        sv[reflected, 2] *= -1.0
        variance = np.einsum("nki,nki->n", a, a)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(variance > 0, sv.sum(axis=1) / variance, 1.0)  # all points equal: nothing to scale
    else:
        s = np.ones(len(pred))
    t = mean_gt[:, 0] - s[:, None] * np.einsum("nij,nj->ni", rotation, mean_pred[:, 0])
    if single:
        return s[0], rotation[0], t[0]
    return s, rotation, t


def rigid_align(pred: np.ndarray, gt: np.ndarray, *, scale: bool = False) -> np.ndarray:
    """pred moved by the rotation + translation (+ isotropic scale with ``scale``) that best fits gt.

    The official PoseNet protocol-1 alignment is ``scale=False``. Vectorised over samples.

    Args:
        pred: (N, K, 3) or (K, 3) predicted joints.
        gt: the same shape, ground-truth joints.
        scale: fit a similarity transform (the PA-MPJPE of most later papers) instead of a rigid one.

    Returns:
        Aligned prediction, float64, the shape of pred.
    """
    pred, gt, single = _pose_arrays(pred, gt)
    s, rotation, t = procrustes_transform(pred, gt, scale=scale)
    aligned = s[:, None, None] * np.einsum("nij,nkj->nki", rotation, pred) + t[:, None, :]
    return aligned[0] if single else aligned


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance of every joint: (N, K, 3) pairs -> (N, K); a single (K, 3) pose gives (K,)."""
    pred, gt, single = _pose_arrays(pred, gt)
    errors = np.linalg.norm(pred - gt, axis=-1)
    return errors[0] if single else errors


def mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int] | None = None) -> float:
    """Mean per-joint position error: the mean distance over all samples and the chosen joints.

    No root alignment is done here: pass root-relative joints (`root_relative`) for the Human3.6M
    protocol-2 MPJPE.

    Args:
        pred: (N, K, 3) or (K, 3) predicted joints.
        gt: the same shape, ground truth.
        joints: indices of the evaluated joints (all K when None).
    """
    pred, gt, _ = _pose_arrays(pred, gt)
    indices = _joint_indices(joints, pred.shape[1])
    return float(joint_errors(pred[:, indices], gt[:, indices]).mean())


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int] | None = None, *, scale: bool = False) -> float:
    """MPJPE after Procrustes alignment of each prediction to its ground truth (Human3.6M protocol 1).

    The official order: the alignment is fitted on **all K joints** (for the PoseNet Human3.6M
    model this includes the added thorax), and the evaluated joints are selected afterwards.

    Args:
        pred: (N, K, 3) or (K, 3) predicted joints.
        gt: the same shape, ground truth.
        joints: indices of the evaluated joints (all K when None); they do not limit the alignment.
        scale: also fit an isotropic scale (official PoseNet: no scale).
    """
    pred, gt, _ = _pose_arrays(pred, gt)
    return mpjpe(rigid_align(pred, gt, scale=scale), gt, joints)
