"""Integral (soft-argmax) 3D codec: the official soft-argmax vector, the target rules of the
official loader, flip test, and a camera -> crop -> targets -> volume -> camera round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.camera import camera_to_pixel
from src.codecs.integral_3d import Integral3D
from src.geometry import affine_transform_points, get_affine_transform
from src.metrics.mpjpe import root_relative

torch.set_num_threads(1)

VECTORS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "algorithm_vectors.json"


def peaked_logits(coords: np.ndarray, depth_dim: int, height: int, width: int) -> torch.Tensor:
    """(K, 3) fractional x, y, z -> (1, K * D, H, W) logits whose softmax is the trilinear split of
    unit mass over the 8 surrounding voxels (so the soft-argmax is exactly `coords`)."""
    num_k = coords.shape[0]
    mass = np.zeros((num_k, depth_dim, height, width), dtype=np.float64)
    base = np.floor(coords).astype(np.int64)
    frac = coords - base
    for corner in np.ndindex(2, 2, 2):  # offsets along x, y, z
        offset = np.array(corner)
        share = np.prod(np.where(offset == 1, frac, 1 - frac), axis=1)  # (K,)
        x, y, z = (base + offset).T
        ok = share > 0
        np.add.at(mass, (np.flatnonzero(ok), z[ok], y[ok], x[ok]), share[ok])
    logits = np.where(mass > 0, np.log(np.where(mass > 0, mass, 1.0)), -1e4)
    return torch.from_numpy(logits.reshape(1, num_k * depth_dim, height, width)).float()


# --------------------------------------------------------------------------- decode


def test_official_soft_argmax_vector() -> None:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"{VECTORS_FILE} not available")
    vec = json.loads(VECTORS_FILE.read_text())["soft_argmax"]
    codec = Integral3D()
    d = codec.depth_dim
    x, y, z = vec["joint0_spike_xyz"]
    logits = torch.zeros(1, 2 * d, 64, 64)
    logits[0, 0 * d + z, y, x] = 50.0  # joint 0: a strong spike; joint 1: uniform
    assert vec["joint1_uniform"]
    out = codec.decode(logits)
    assert out.shape == (1, 2, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], torch.tensor(vec["result_xyz"]), atol=1e-4, rtol=0)


def test_peaked_volume_decodes_to_its_voxel_on_a_non_square_grid() -> None:
    codec = Integral3D(input_size=(48, 32), output_size=(12, 8), depth_dim=5)
    voxels = [(0, 0, 0), (11, 7, 4), (3, 6, 2)]  # x, y, z
    logits = torch.randn(2, len(voxels) * 5, 8, 12)
    for k, (x, y, z) in enumerate(voxels):
        logits[1, k * 5 + z, y, x] = 60.0
    out = codec.decode(logits)
    torch.testing.assert_close(out[1], torch.tensor(voxels, dtype=torch.float32), atol=1e-4, rtol=0)
    assert ((out[0] >= 0) & (out[0] <= torch.tensor([11.0, 7.0, 4.0]))).all()


def test_decode_matches_a_full_volume_expectation_and_is_differentiable() -> None:
    torch.manual_seed(0)
    codec = Integral3D(input_size=(12, 16), output_size=(3, 4), depth_dim=2)
    logits = torch.randn(2, 3 * 2, 4, 3, dtype=torch.float64, requires_grad=True)
    prob = torch.softmax(logits.reshape(2, 3, -1), -1).reshape(2, 3, 2, 4, 3)
    zz, yy, xx = torch.meshgrid(torch.arange(2.0), torch.arange(4.0), torch.arange(3.0), indexing="ij")
    expected = torch.stack([(prob * g.double()).sum(dim=(2, 3, 4)) for g in (xx, yy, zz)], dim=-1)
    out = codec.decode(logits)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(codec.decode, (logits,))
    out.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_decode_runs_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    codec = Integral3D(input_size=(32, 32), output_size=(8, 8), depth_dim=4)
    logits = torch.randn(1, 2 * 4, 8, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = codec.decode(logits)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, codec.decode(logits.float()))


def test_decode_rejects_mismatched_outputs() -> None:
    codec = Integral3D(output_size=(8, 8), depth_dim=4)
    with pytest.raises(ValueError, match="multiple of depth_dim 4"):
        codec.decode(torch.zeros(1, 6, 8, 8))
    with pytest.raises(ValueError, match="output_size"):
        codec.decode(torch.zeros(1, 8, 8, 6))


# --------------------------------------------------------------------------- encode


def test_encode_targets_and_visibility_at_every_border() -> None:
    codec = Integral3D()  # 256 x 256 -> 64 x 64, D 64, +-1000 mm
    keypoints = np.array(
        [[100, 60], [-0.1, 10], [256.0, 10], [255.9, 255.9], [10, 256.0], [10, -0.1], [10, 10], [10, 10], [10, 10]]
    )
    depth = np.array([250, 0, 0, 0, 0, 0, 1000, -1000, 999.9])
    visible = np.ones(9)
    visible[3] = 0.0
    out = codec.encode(keypoints, depth, visible)
    assert set(out) == {"coords", "coord_weight", "have_depth"}
    assert out["coords"].dtype == np.float32 and out["coords"].shape == (9, 3)
    assert out["coord_weight"].dtype == np.float32 and out["have_depth"].dtype == np.float32
    np.testing.assert_array_equal(out["coord_weight"], [1, 0, 0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_allclose(out["coords"][0], [25.0, 15.0, 40.0])  # (250 / 1000 + 1) / 2 * 64
    np.testing.assert_allclose(out["coords"][1], [-0.025, 2.5, 32.0])  # out-of-range joints keep coordinates
    np.testing.assert_allclose(out["coords"][6:, 2], [64.0, 0.0, 63.9968], rtol=1e-6)
    assert out["have_depth"].shape == () and out["have_depth"] == 1.0
    assert codec.encode(keypoints[:1], [-1000.1], [1.0])["coord_weight"][0] == 0.0


def test_encode_uses_width_and_height_in_order() -> None:
    codec = Integral3D(input_size=(192, 256), output_size=(48, 64), depth_dim=64)
    keypoints = np.array([[191.9, 255.9], [192.0, 10.0], [10.0, 200.0]])
    out = codec.encode(keypoints, np.zeros(3), np.ones(3))
    np.testing.assert_array_equal(out["coord_weight"], [1, 0, 1])
    np.testing.assert_allclose(out["coords"][0, :2], [191.9 / 4, 255.9 / 4], rtol=1e-6)


def test_encode_2d_sample_ignores_depth() -> None:
    codec = Integral3D()
    out = codec.encode(np.array([[10.0, 20.0], [300.0, 20.0]]), np.array([5000.0, 0.0]), np.ones(2), have_depth=False)
    np.testing.assert_allclose(out["coords"], [[2.5, 5.0, 32.0], [75.0, 5.0, 32.0]])
    np.testing.assert_array_equal(out["coord_weight"], [1, 0])
    assert out["have_depth"] == 0.0
    assert codec.encode(np.zeros((1, 2)), None, [1.0], have_depth=False)["coords"][0, 2] == 32.0
    with pytest.raises(ValueError, match="disagree"):
        codec.encode(np.zeros((2, 2)), np.zeros(3), np.ones(2))


# --------------------------------------------------------------------------- flip test


def test_flip_back_undoes_a_mirrored_volume() -> None:
    torch.manual_seed(0)
    codec = Integral3D(input_size=(32, 24), output_size=(8, 6), depth_dim=4)
    flip_index = (0, 2, 1, 4, 3)
    logits = 3 * torch.randn(2, 5 * 4, 6, 8)
    coords = codec.decode(logits)
    mirrored = logits.reshape(2, 5, 4, 6, 8).flip(-1)[:, list(flip_index)].reshape(2, 20, 6, 8)
    flipped = codec.decode(mirrored)
    assert not torch.allclose(flipped, coords)
    torch.testing.assert_close(codec.flip_back(flipped, flip_index), coords, atol=1e-5, rtol=0)
    torch.testing.assert_close(codec.flip_back(codec.flip_back(coords, flip_index), flip_index), coords)
    np.testing.assert_allclose(codec.flip_back(coords, flip_index)[:, 0, 0], 7 - coords[:, 0, 0])
    with pytest.raises(ValueError, match="3 entries for 5 joints"):
        codec.flip_back(coords, (0, 2, 1))


# --------------------------------------------------------------------------- back-projection


def test_back_projection_numbers() -> None:
    codec = Integral3D()
    coords = np.array([[[32.0, 16.0, 32.0], [0.0, 64.0, 0.0], [16.0, 48.0, 48.0]]])
    bbox = np.array([[100.0, 50.0, 200.0, 200.0]])
    np.testing.assert_allclose(codec.to_image(coords, bbox)[0], [[200, 100], [100, 250], [150, 200]])
    np.testing.assert_allclose(codec.to_depth(torch.from_numpy(coords), np.array([4000.0]))[0], [4000, 3000, 4500])
    cam = codec.to_camera(coords, bbox, [4000.0], f=[[1000.0, 500.0]], c=[[200.0, 50.0]])
    np.testing.assert_allclose(cam[0, 0], [0.0, 50 / 500 * 4000, 4000.0])
    rel = root_relative(cam, root_index=0)
    np.testing.assert_allclose(rel[0, 0], 0.0)
    np.testing.assert_allclose(rel[0, 2], cam[0, 2] - cam[0, 0])


def test_camera_round_trip_through_crop_targets_and_volume() -> None:
    """Camera joints -> pixels -> crop (get_affine_transform) -> encode -> a volume whose soft-argmax
    is the target -> decode -> to_camera: the joints come back to well under a millimetre."""
    rng = np.random.default_rng(0)
    f, c = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
    root = np.array([150.0, -80.0, 4600.0])
    joints = root + rng.uniform([-300, -800, -250], [300, 800, 250], size=(18, 3))
    joints[0] = root
    uv = camera_to_pixel(joints, f, c)[:, :2]

    # square crop box around the joints, x1.25 (the input is square)
    lo, hi = uv.min(0), uv.max(0)
    side = 1.25 * (hi - lo).max()
    center = (lo + hi) / 2
    bbox = np.array([center[0] - side / 2, center[1] - side / 2, side, side])
    codec = Integral3D()
    trans = get_affine_transform(center, np.array([side, side]) / 200, 0.0, codec.input_size)
    crop = affine_transform_points(uv, trans)

    target = codec.encode(crop, joints[:, 2] - root[2], np.ones(18))
    assert target["coord_weight"].all()
    direct = codec.to_camera(target["coords"][None], bbox[None], root[2:], f[None], c[None])
    np.testing.assert_allclose(direct[0], joints, atol=0.05)

    decoded = codec.decode(peaked_logits(target["coords"].astype(np.float64), 64, 64, 64))
    np.testing.assert_allclose(decoded[0].numpy(), target["coords"], atol=1e-3)
    back = codec.to_camera(decoded, bbox[None], root[2:], f[None], c[None])
    assert np.abs(back[0] - joints).max() < 0.5
    np.testing.assert_allclose(root_relative(back)[0], joints - root, atol=0.5)
