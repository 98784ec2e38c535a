"""Draw a whole scene of people in camera coordinates: an oblique view from above the camera.

Joints are camera-frame millimetres (x right, y down, z forward), absolute (each person at their
own distance), K per person. The view looks down at ``elevation`` degrees (90: straight from
above, 0: from the camera's height): depth runs up the picture, so people stand at their
distances from the camera, which sits at the bottom centre. A floor grid of 1 m squares lies under
the lowest joint of the scene, and each person carries their root depth in metres.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.layouts import KeypointInfo, root_index
from src.visualization.skeletons import draw_keypoint_info

GRID_MM = 1000.0
GRID_COLOR = (70, 70, 70)
CAMERA_COLOR = (0, 200, 255)
TEXT_COLOR = (230, 230, 230)
MARGIN = 0.08  # of the picture on each side


def scene_view(points: np.ndarray, elevation: float) -> np.ndarray:
    """(..., 3) camera-frame mm -> (..., 2) view coordinates (u right, v down) in mm."""
    e = np.deg2rad(elevation)
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., 0], -points[..., 2] * np.sin(e) + points[..., 1] * np.cos(e)], axis=-1)


def draw_scene_3d(
    joints: np.ndarray, info: KeypointInfo, *, size: int = 256, elevation: float = 60.0, labels: bool = True
) -> np.ndarray:
    """A (size, size, 3) uint8 BGR picture of the people (N, K, 3) (or (K, 3)) at their places, mm."""
    people = np.asarray(joints, dtype=np.float64).reshape(-1, info.num_keypoints, 3)
    canvas = np.full((size, size, 3), 25, np.uint8)
    finite = people[np.isfinite(people).all(axis=(1, 2))]
    camera = np.zeros((1, 3))
    if len(finite):
        floor = float(finite[..., 1].max())
        far = float(finite[..., 2].max())
        half_width = float(np.abs(finite[..., 0]).max())
    else:
        floor, far, half_width = 1000.0, 5000.0, 2000.0
    far = max(far, 1000.0) + 500.0
    half_width = max(half_width, 0.5 * far * 0.5) + 500.0
    ground = np.array(
        [[-half_width, floor, 0.0], [half_width, floor, 0.0], [-half_width, floor, far], [half_width, floor, far]]
    )
    extent = scene_view(
        np.concatenate([ground, camera, *finite]) if len(finite) else np.concatenate([ground, camera]), elevation
    )
    low, high = extent.min(axis=0), extent.max(axis=0)
    scale = (1 - 2 * MARGIN) * size / max(float((high - low).max()), 1.0)
    offset = size / 2 - scale * (low + high) / 2

    def to_pixels(points: np.ndarray) -> np.ndarray:
        return scene_view(points, elevation) * scale + offset

    def line(a: np.ndarray, b: np.ndarray, color: tuple[int, int, int]) -> None:
        p = to_pixels(np.array([a, b]))
        cv2.line(canvas, tuple(int(round(v)) for v in p[0]), tuple(int(round(v)) for v in p[1]), color, 1, cv2.LINE_AA)

    for x in np.arange(-np.floor(half_width / GRID_MM) * GRID_MM, half_width + 1, GRID_MM):
        line(np.array([x, floor, 0.0]), np.array([x, floor, far]), GRID_COLOR)
    for z in np.arange(0.0, far + 1, GRID_MM):
        line(np.array([-half_width, floor, z]), np.array([half_width, floor, z]), GRID_COLOR)
    cam = to_pixels(np.array([0.0, floor, 0.0]))
    cv2.drawMarker(canvas, (int(round(cam[0])), int(round(cam[1]))), CAMERA_COLOR, cv2.MARKER_TRIANGLE_UP, 10, 2)
    root = root_index(info)
    order = np.argsort(-finite[:, root, 2]) if len(finite) else []  # far people first, near ones on top
    for person in finite[order]:
        pixels = to_pixels(person)
        keypoints = np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)
        canvas = draw_keypoint_info(canvas, keypoints, info, score_thr=0.5, radius=2, thickness=2)
        if labels:
            top = pixels[np.argmin(pixels[:, 1])]
            text = f"{person[root, 2] / 1000:.1f} m"
            cv2.putText(
                canvas,
                text,
                (int(top[0]) - 12, max(int(top[1]) - 4, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                TEXT_COLOR,
                1,
            )
    return canvas
