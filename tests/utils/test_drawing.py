"""draw_skeletons / save_image_grid: pixels change where they should, files are written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from src.layouts import COCO17
from src.visualization.skeletons import (
    CENTER_COLOR,
    LEFT_COLOR,
    RIGHT_COLOR,
    draw_keypoint_info,
    draw_skeletons,
    keypoint_sides,
    save_image_grid,
)


def _person() -> np.ndarray:
    """(1, 17, 3) COCO keypoints spread over a 128x128 image, all confident."""
    rng = np.random.default_rng(0)
    kpts = np.ones((1, 17, 3))
    kpts[0, :, :2] = rng.uniform(10, 118, (17, 2))
    return kpts


def test_draws_at_keypoints_and_leaves_input_untouched() -> None:
    image = np.zeros((128, 128, 3), np.uint8)
    kpts = _person()
    out = draw_keypoint_info(image, kpts, COCO17)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert image.max() == 0
    for x, y, _ in kpts[0]:
        assert out[int(round(y)), int(round(x))].any()


def test_side_colours_and_low_scores() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    kpts = np.array([[[10.0, 10.0, 0.9], [30.0, 10.0, 0.9], [50.0, 50.0, 0.9], [50.0, 10.0, 0.1]]])
    names = ("left_eye", "right_eye", "nose", "left_ear")
    out = draw_skeletons(image, kpts, skeleton=[(2, 3)], keypoint_names=names, score_thr=0.3, radius=2)
    assert tuple(out[10, 10]) == LEFT_COLOR
    assert tuple(out[10, 30]) == RIGHT_COLOR
    assert tuple(out[50, 50]) == CENTER_COLOR
    assert not out[10, 50].any()  # below score_thr: neither the point nor its limb is drawn
    assert not out[30, 50].any()
    assert keypoint_sides(names) == ["left", "right", "center", "left"]


def test_layout_colours_in_the_image_order() -> None:
    from src.layout_files import layout_from_mapping

    info = layout_from_mapping(
        {"keypoints": ["a", "b"], "skeleton": [["a", "b"]], "colors": {"a": [255, 0, 0], "b": [0, 0, 255]}}
    )
    kpts = np.array([[[10.0, 32.0, 1.0], [54.0, 32.0, 1.0]]])
    image = np.zeros((64, 64, 3), np.uint8)
    bgr = draw_keypoint_info(image, kpts, info, radius=2)
    assert tuple(bgr[32, 10]) == (0, 0, 255) and tuple(bgr[32, 54]) == (255, 0, 0)  # RGB red, blue as BGR
    assert tuple(bgr[32, 32]) == (255, 0, 0)  # the limb takes its second joint's colour
    rgb = draw_keypoint_info(image, kpts, info, radius=2, bgr=False)
    assert tuple(rgb[32, 10]) == (255, 0, 0)


def test_limbs_drawn_between_confident_points() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    kpts = np.array([[[10.0, 32.0], [54.0, 32.0]]])  # (N, K, 2): no scores, all shown
    out = draw_skeletons(image, kpts, skeleton=[(0, 1)], color_by_side=False)
    assert out[32, 32].any()


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="uint8"):
        draw_skeletons(np.zeros((8, 8, 3), np.float32), np.zeros((1, 2, 3)), skeleton=[])
    with pytest.raises(ValueError, match="names"):
        draw_skeletons(np.zeros((8, 8, 3), np.uint8), np.zeros((1, 2, 3)), skeleton=[], keypoint_names=["a"])


def test_save_image_grid(tmp_path: Path) -> None:
    images = [np.full((20, 30, 3), 50 * i, np.uint8) for i in range(1, 4)] + [np.zeros((10, 10), np.uint8)]
    path = save_image_grid(images, tmp_path / "grids" / "grid.png", ncols=3)
    grid = cv2.imread(str(path))
    assert grid.shape == (40, 90, 3)
    assert grid[5, 35].tolist() == [100, 100, 100]  # second cell
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid.png"]  # no temporary file left
