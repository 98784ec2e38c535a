"""Synthetic cameras: sampled intrinsics and the body-to-camera rotation.

The camera itself (`Camera`, projection, world / camera / pixel conversions) lives in
`src.camera`. Camera frame (OpenCV, millimetres): x right, y down, z forward (into the scene).
Pixel coordinates put the centre of pixel column i at x = i, so an image of width W covers
[-0.5, W - 0.5) and a keypoint counts as inside when 0 <= x <= W - 1.
"""

from __future__ import annotations

import numpy as np

from src.camera import Camera
from src.synthetic.figure import rot_x, rot_y, rot_z

# Body frame (x left, y up, z facing) -> camera frame for a person facing the camera.
# A person facing us has their left on our right, so body x maps to camera +x.
BODY_TO_CAMERA = np.diag([1.0, -1.0, -1.0])

__all__ = ["BODY_TO_CAMERA", "Camera", "body_to_camera_rotation", "sample_camera"]


def sample_camera(rng: np.random.Generator, image_size: tuple[int, int]) -> Camera:
    """Horizontal field of view about 35-55 degrees, principal point near the image centre.

    Values are rounded to 0.01 px so the stored camera is exactly the one used for rendering.
    """
    w, h = image_size
    f = round(float(w * rng.uniform(1.0, 1.6)), 2)
    cx = round(float((w - 1) / 2 + rng.normal(0.0, 0.01 * w)), 2)
    cy = round(float((h - 1) / 2 + rng.normal(0.0, 0.01 * h)), 2)
    return Camera(fx=f, fy=f, cx=cx, cy=cy)


def body_to_camera_rotation(
    *, yaw: float, pitch: float = 0.0, roll: float = 0.0, camera_pitch: float = 0.0, camera_roll: float = 0.0
) -> np.ndarray:
    """(3, 3) rotation taking body-frame vectors to camera-frame vectors (angles in degrees).

    yaw 0 faces the camera, 90 faces image-right (showing the right side), 180 shows the back. pitch > 0 leans
    the person forward (towards where they face), roll tilts them sideways. camera_pitch /
    camera_roll tilt the whole camera (shared by every person of an image).
    """
    return rot_x(camera_pitch) @ rot_z(camera_roll) @ BODY_TO_CAMERA @ rot_y(yaw) @ rot_x(pitch) @ rot_z(roll)
