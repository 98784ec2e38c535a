"""Draw root-relative 3D skeletons as a picture: a rotated orthographic view with a floor grid.

Joints are camera-frame millimetres (x right, y down, z forward), root-relative, K per person.
The view turns the skeleton about the vertical axis by ``azimuth`` and tilts it by
``elevation`` (degrees), so depth errors that the image plane hides become visible.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.layouts import KeypointInfo
from src.visualization.skeletons import draw_keypoint_info

#: Half the side of the viewed cube in mm (a person fits in +-1 m around the root).
VIEW_HALF_MM = 1100.0
GRID_MM = 250.0
GRID_COLOR = (70, 70, 70)


def view_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """(3, 3) rotation of camera-frame vectors into the view: turn about y, then tilt about x."""
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    turn = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(e), -np.sin(e)], [0.0, np.sin(e), np.cos(e)]])
    return tilt @ turn


def draw_skeleton_3d(
    joints: np.ndarray,
    info: KeypointInfo,
    *,
    size: int = 256,
    azimuth: float = 45.0,
    elevation: float = 15.0,
) -> np.ndarray:
    """A (size, size, 3) uint8 BGR picture of root-relative skeletons (K, 3) or (N, K, 3) in mm."""
    joints = np.asarray(joints, dtype=np.float64)
    people = joints.reshape(-1, info.num_keypoints, 3)
    rotation = view_rotation(azimuth, elevation)
    scale = size / (2 * VIEW_HALF_MM)
    canvas = np.full((size, size, 3), 25, np.uint8)
    # floor grid at the lowest joint of the first person (y down: the largest y)
    floor = float(people[0][:, 1].max()) if len(people) else VIEW_HALF_MM / 2
    ticks = np.arange(-VIEW_HALF_MM, VIEW_HALF_MM + 1, GRID_MM)
    for t in ticks:
        for a, b in (
            ((t, floor, -VIEW_HALF_MM), (t, floor, VIEW_HALF_MM)),
            ((-VIEW_HALF_MM, floor, t), (VIEW_HALF_MM, floor, t)),
        ):
            p = np.array([a, b]) @ rotation.T * scale + size / 2
            cv2.line(
                canvas, tuple(int(v) for v in p[0, :2]), tuple(int(v) for v in p[1, :2]), GRID_COLOR, 1, cv2.LINE_AA
            )
    for person in people:
        view = person @ rotation.T * scale + size / 2
        keypoints = np.concatenate([view[:, :2], np.ones((len(view), 1))], axis=1)
        canvas = draw_keypoint_info(canvas, keypoints, info, score_thr=0.5, radius=2, thickness=2)
    return canvas
