"""src.camera: world -> camera -> pixel and back are exact inverses; the Camera wraps them."""

from __future__ import annotations

import numpy as np

from src.camera import Camera, camera_to_pixel, camera_to_world, pixel_to_camera, world_to_camera


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_round_trips():
    rng = np.random.default_rng(0)
    R, t = _rotation(rng), rng.normal(0.0, 1000.0, 3)
    world = rng.normal(0.0, 500.0, (4, 17, 3))
    cam = world_to_camera(world, R, t)
    np.testing.assert_allclose(cam, world @ R.T + t)
    np.testing.assert_allclose(camera_to_world(cam, R, t), world, atol=1e-9)
    cam[..., 2] += 6000.0  # in front of the camera
    f, c = np.array([1145.0, 1143.5]), np.array([512.5, 515.0])
    uvz = camera_to_pixel(cam, f, c)
    np.testing.assert_allclose(uvz[..., 0], f[0] * cam[..., 0] / cam[..., 2] + c[0])
    np.testing.assert_allclose(uvz[..., 2], cam[..., 2])
    np.testing.assert_allclose(pixel_to_camera(uvz, f, c), cam, atol=1e-9)


def test_camera_object_and_json():
    rng = np.random.default_rng(1)
    camera = Camera(fx=1000.0, fy=990.0, cx=320.0, cy=240.0, R=_rotation(rng), t=np.array([10.0, -20.0, 4500.0]))
    world = rng.normal(0.0, 300.0, (17, 3))
    uvz = camera.world_to_pixel(world)
    np.testing.assert_allclose(uvz[:, :2], camera.project(camera.world_to_camera(world)))
    again = Camera.from_json(camera.to_h36m_json())
    np.testing.assert_allclose(again.world_to_pixel(world), uvz)
    assert Camera.from_json(camera.to_json()).R.tolist() == np.eye(3).tolist()  # intrinsics-only format
