"""MPJPE, PA-MPJPE and the Procrustes alignment on hand-made and randomly moved poses."""

from __future__ import annotations

import numpy as np
import pytest

from src.metrics.mpjpe import joint_errors, mpjpe, pa_mpjpe, procrustes_transform, rigid_align, root_relative


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (Rodrigues)."""
    x, y, z = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    cross = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def _poses(n: int, k: int = 18, seed: int = 0) -> np.ndarray:
    """(N, K, 3) body-sized random joints in mm, 5 m in front of the camera."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 300.0, size=(n, k, 3)) + np.array([0.0, 0.0, 5000.0])


def _moved(gt: np.ndarray, scale: float = 1.0, seed: int = 1) -> np.ndarray:
    """Each pose of gt rotated about its own random axis, scaled and translated (pred = s R gt + t)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(gt)
    for i, pose in enumerate(gt):
        rotation = _rotation(rng.normal(size=3), rng.uniform(0.2, 3.0))
        out[i] = scale * pose @ rotation.T + rng.normal(0.0, 500.0, size=3)
    return out


def _kabsch_one(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Textbook single-pose Kabsch with the sign matrix diag(1, 1, d), an independent reference."""
    a, b = pred - pred.mean(0), gt - gt.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return a @ rotation.T + gt.mean(0)


def test_rigid_motion_is_removed_exactly() -> None:
    gt = _poses(5)
    pred = _moved(gt)
    assert joint_errors(pred, gt).mean() > 100.0
    assert np.abs(rigid_align(pred, gt) - gt).max() < 1e-9
    assert pa_mpjpe(pred, gt) < 1e-9
    s, rotation, t = procrustes_transform(pred, gt)
    np.testing.assert_allclose(s, 1.0)
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0)
    np.testing.assert_allclose(rotation @ np.swapaxes(rotation, 1, 2), np.tile(np.eye(3), (5, 1, 1)), atol=1e-12)


def test_scale_is_removed_only_by_the_similarity_alignment() -> None:
    gt = _poses(4)
    pred = _moved(gt, scale=1.2)
    assert pa_mpjpe(pred, gt) > 10.0  # a 20 % larger body stays 20 % larger after a rigid fit
    assert pa_mpjpe(pred, gt, scale=True) < 1e-9
    s, _, _ = procrustes_transform(pred, gt, scale=True)
    np.testing.assert_allclose(s, 1.0 / 1.2)


def test_reflection_gives_a_proper_rotation() -> None:
    gt = _poses(3, seed=4)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # mirror image: no rotation reaches it
    for scale in (False, True):
        s, rotation, t = procrustes_transform(mirrored, gt, scale=scale)
        np.testing.assert_allclose(np.linalg.det(rotation), 1.0)
        aligned = rigid_align(mirrored, gt, scale=scale)
        np.testing.assert_allclose(aligned, s[:, None, None] * mirrored @ np.swapaxes(rotation, 1, 2) + t[:, None])
        assert joint_errors(aligned, gt).mean() > 1.0  # the reflection cannot be undone
    np.testing.assert_allclose(rigid_align(mirrored, gt), np.stack([_kabsch_one(p, g) for p, g in zip(mirrored, gt)]))
    # Umeyama's sign also enters the scale: S_1 + S_2 - S_3, smaller than the plain sum of singular values
    s, _, _ = procrustes_transform(mirrored, gt, scale=True)
    a = mirrored - mirrored.mean(1, keepdims=True)
    sv = np.linalg.svd(np.einsum("nki,nkj->nij", a, gt - gt.mean(1, keepdims=True)), compute_uv=False)
    np.testing.assert_allclose(s, (sv[:, 0] + sv[:, 1] - sv[:, 2]) / (a**2).sum(axis=(1, 2)))


def test_alignment_is_optimal() -> None:
    rng = np.random.default_rng(7)
    gt = _poses(6)
    pred = _moved(gt) + rng.normal(0.0, 30.0, size=gt.shape)  # noisy: the fit is no longer exact
    aligned = rigid_align(pred, gt)
    best = ((aligned - gt) ** 2).sum(axis=(1, 2))
    for _ in range(5):  # any nearby rigid motion of the aligned pose fits worse
        nudge = _rotation(rng.normal(size=3), 0.01)
        other = (aligned - aligned.mean(1, keepdims=True)) @ nudge.T + gt.mean(1, keepdims=True) + rng.normal(0, 1, 3)
        assert np.all(((other - gt) ** 2).sum(axis=(1, 2)) > best)


def test_vectorised_equals_per_sample_loop() -> None:
    rng = np.random.default_rng(3)
    gt = _poses(8, seed=2)
    pred = _moved(gt, scale=0.9) + rng.normal(0.0, 40.0, size=gt.shape)
    pred[2] *= np.array([1.0, -1.0, 1.0])  # one sample needs the reflection fix
    for scale in (False, True):
        batched = rigid_align(pred, gt, scale=scale)
        looped = np.stack([rigid_align(p, g, scale=scale) for p, g in zip(pred, gt)])
        assert looped.shape == pred.shape and rigid_align(pred[0], gt[0]).shape == (18, 3)
        np.testing.assert_allclose(batched, looped, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rigid_align(pred, gt), np.stack([_kabsch_one(p, g) for p, g in zip(pred, gt)]))


def test_mpjpe_of_hand_made_arrays() -> None:
    gt = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, 1] = [3.0, 4.0, 0.0]  # 5 mm
    pred[1, 2] = [0.0, 0.0, 2.0]  # 2 mm
    pred[1, 0] = [1.0, 2.0, 2.0]  # 3 mm
    np.testing.assert_allclose(joint_errors(pred, gt), [[0.0, 5.0, 0.0], [3.0, 0.0, 2.0]])
    assert mpjpe(pred, gt) == pytest.approx(10.0 / 6.0)
    assert mpjpe(pred, gt, joints=[1, 2]) == pytest.approx(7.0 / 4.0)
    assert mpjpe(pred[0], gt[0]) == pytest.approx(5.0 / 3.0)
    assert joint_errors(pred[1], gt[1]).shape == (3,)


def test_pa_mpjpe_aligns_on_all_joints_then_selects() -> None:
    gt = _poses(4)
    pred = gt.copy()
    pred[:, -1] += 400.0  # a wrong last joint ("thorax") pulls the alignment of the others
    evaluated = list(range(17))
    assert mpjpe(pred, gt, joints=evaluated) == 0.0
    shifted = pa_mpjpe(pred, gt, joints=evaluated)
    assert shifted > 1.0
    aligned = rigid_align(pred, gt)
    assert shifted == pytest.approx(mpjpe(aligned[:, evaluated], gt[:, evaluated]))
    assert pa_mpjpe(pred[:, evaluated], gt[:, evaluated]) < 1e-9  # aligning on the 17 alone would hide it


def test_root_relative() -> None:
    joints = _poses(2)
    relative = root_relative(joints)
    np.testing.assert_allclose(relative[:, 0], 0.0)
    np.testing.assert_allclose(relative[:, 5], joints[:, 5] - joints[:, 0])
    np.testing.assert_allclose(root_relative(joints[0], root_index=3)[3], 0.0)
    with pytest.raises(ValueError, match="root_index 18 out of range for K=18"):
        root_relative(joints, root_index=18)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"pred has shape \(2, 17, 3\) but gt has shape \(2, 18, 3\)"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 18, 3)))
    with pytest.raises(ValueError, match=r"\(N, K, 3\) or \(K, 3\)"):
        rigid_align(np.zeros((2, 17, 2)), np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match="joint index 17 out of range for K=17"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)), joints=[0, 17])
