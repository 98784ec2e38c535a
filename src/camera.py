"""Pinhole cameras: world -> camera -> pixel and back, in millimetres and pixels.

The one module of camera geometry: the Human3.6M reader, the 3D codec's back-projection, the
MPJPE metric and the synthetic generators all use it. Conventions (those of the Human3.6M
annotations of the 3DMPPE repository):

* camera frame (OpenCV): x right, y down, z forward (into the scene), millimetres;
* extrinsics ``R`` (3, 3), ``t`` (3,) in mm map world points into the camera:
  ``X_cam = R @ X_world + t``;
* intrinsics ``f = (fx, fy)``, ``c = (cx, cy)`` in pixels, no distortion:
  ``u = fx X / Z + cx``, ``v = fy Y / Z + cy``; the centre of pixel column i is at u = i.

Points are arrays (..., 3); every function broadcasts over the leading dimensions. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: RootNet's real-world size of a person's box (mm, square) for Human3.6M, MuCo-3DHP and MuPoTS-3D.
BBOX_REAL_MM = (2000.0, 2000.0)


def k_value(boxes: np.ndarray, focal: np.ndarray, bbox_real: tuple[float, float] = BBOX_REAL_MM) -> np.ndarray:
    """RootNet's k: the camera distance at which a ``bbox_real`` (mm) box appears as large as the
    crop box, ``k = sqrt(bbox_real_x bbox_real_y f_x f_y / (w h))``, float32 as the official code
    (computed in float64, then cast). RootNet predicts the root depth as a correction gamma times k.

    Args:
        boxes: (..., 4) crop boxes [x, y, w, h] after `src.geometry.process_bbox` (pixels).
        focal: (..., 2) focal lengths (f_x, f_y) in pixels (MPII and COCO: the dummy 1500).
        bbox_real: the box's real size (mm; (2, 2) in metres for 3DPW).

    Returns:
        (...) float32.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    focal = np.asarray(focal, dtype=np.float64)
    area = boxes[..., 2] * boxes[..., 3]
    k = np.sqrt(bbox_real[0] * bbox_real[1] * focal[..., 0] * focal[..., 1] / area)
    return k.astype(np.float32)


def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World points (..., 3) mm -> camera frame (..., 3) mm: ``R X + t``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(R, dtype=np.float64).T + np.asarray(t, dtype=np.float64).reshape(3)


def camera_to_world(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) mm -> world (..., 3) mm: ``R^T (X - t)``."""
    points = np.asarray(points, dtype=np.float64)
    return (points - np.asarray(t, dtype=np.float64).reshape(3)) @ np.asarray(R, dtype=np.float64)


def camera_to_pixel(points: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) (Z > 0) -> (..., 3) ``(u, v, Z)``: pixels and the depth kept in mm."""
    points = np.asarray(points, dtype=np.float64)
    f, c = np.asarray(f, dtype=np.float64).reshape(2), np.asarray(c, dtype=np.float64).reshape(2)
    z = points[..., 2:3]
    return np.concatenate([f * points[..., :2] / z + c, z], axis=-1)


def pixel_to_camera(uvz: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(u, v, Z)`` (..., 3) pixels and depth in mm -> camera-frame points (..., 3) mm."""
    uvz = np.asarray(uvz, dtype=np.float64)
    f, c = np.asarray(f, dtype=np.float64).reshape(2), np.asarray(c, dtype=np.float64).reshape(2)
    z = uvz[..., 2:3]
    return np.concatenate([(uvz[..., :2] - c) / f * z, z], axis=-1)


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels (no distortion) and extrinsics (world -> camera, mm).

    ``R`` and ``t`` default to the identity: a camera whose frame is the world frame (the
    single-image synthetic generators place people directly in camera coordinates).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    R: np.ndarray = field(default_factory=lambda: np.eye(3), compare=False)
    t: np.ndarray = field(default_factory=lambda: np.zeros(3), compare=False)

    @property
    def f(self) -> np.ndarray:
        return np.array([self.fx, self.fy])

    @property
    def c(self) -> np.ndarray:
        return np.array([self.cx, self.cy])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points (z > 0) -> (N, 2) pixel coordinates."""
        return camera_to_pixel(points, self.f, self.c)[..., :2]

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return world_to_camera(points, self.R, self.t)

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        return camera_to_world(points, self.R, self.t)

    def world_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> (..., 3) ``(u, v, Z)``."""
        return camera_to_pixel(self.world_to_camera(points), self.f, self.c)

    def to_json(self) -> dict[str, list[float]]:
        """Intrinsics only, ``{"f": [fx, fy], "c": [cx, cy]}`` (the synthetic COCO format)."""
        return {"f": [self.fx, self.fy], "c": [self.cx, self.cy]}

    def to_h36m_json(self) -> dict[str, list]:
        """``{"R": 3 x 3, "t": 3, "f": 2, "c": 2}``: one camera of a Human36M_subject*_camera.json file."""
        return {
            "R": np.asarray(self.R, dtype=np.float64).tolist(),
            "t": np.asarray(self.t, dtype=np.float64).reshape(3).tolist(),
            **self.to_json(),
        }

    @staticmethod
    def from_json(data: dict) -> Camera:
        """From ``{"f", "c"}`` and, when present, ``{"R", "t"}`` (either camera format above)."""
        (fx, fy), (cx, cy) = data["f"], data["c"]
        extrinsics = {}
        if "R" in data:
            extrinsics["R"] = np.asarray(data["R"], dtype=np.float64).reshape(3, 3)
        if "t" in data:
            extrinsics["t"] = np.asarray(data["t"], dtype=np.float64).reshape(3)
        return Camera(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), **extrinsics)
