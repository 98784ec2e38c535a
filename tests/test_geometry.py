"""Crop geometry against the official HRNet test vectors, plus property tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.geometry import (
    affine_transform_points,
    box_iou,
    box_xywh_to_center_scale,
    flip_joints,
    get_affine_transform,
    half_body_center_scale,
    heatmap_to_image_coords,
)
from src.layouts import COCO17

VECTORS_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "algorithm_vectors.json"

# Official vectors (algorithm_vectors.json["affine"]), hard-coded so the tests run without it.
CENTER = (320.0, 240.0)
SCALE = (1.2, 1.6)
OUTPUT_WH = (192, 256)
AFFINE_ROT0 = [[0.8, 0.0, -160.0], [0.0, 0.8, -64.0]]
AFFINE_ROT30 = [[0.69282, 0.4, -221.702535], [-0.4, 0.69282, 89.723141]]
AFFINE_ROT30_INV = [[1.082532, -0.625, 296.076965], [0.625, 1.082532, 41.435933]]
AFFINE_ROT0_SHIFT = [[0.8, 0.0, -179.2], [0.0, 0.8, -51.2]]
SHIFT = (0.1, -0.05)
POINT_300_200_ROT30 = [66.143591, 108.287189]
# algorithm_vectors.json["get_final_preds"], without post-processing: peak (20, 30) on 48x64.
FINAL_PREDS_NO_POST = [83.333336, 191.666672]


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())


def _three_point_affine(center, scale, rot, output_size, shift=(0.0, 0.0), inv=False) -> np.ndarray:
    """The official construction written out: three point pairs solved by OpenCV."""
    center = np.asarray(center, np.float64)
    box_w = scale[0] * 200.0
    shift_px = np.asarray(scale, np.float64) * 200.0 * np.asarray(shift, np.float64)
    t = np.deg2rad(rot)
    src_dir = np.array([0.0 * np.cos(t) + box_w * 0.5 * np.sin(t), -box_w * 0.5 * np.cos(t)])
    dst_w, dst_h = output_size
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center + shift_px
    src[1] = center + src_dir + shift_px
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0.0, -dst_w * 0.5])
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize(
    ("rot", "shift", "inv", "expected"),
    [
        (0.0, (0.0, 0.0), False, AFFINE_ROT0),
        (30.0, (0.0, 0.0), False, AFFINE_ROT30),
        (30.0, (0.0, 0.0), True, AFFINE_ROT30_INV),
        (0.0, SHIFT, False, AFFINE_ROT0_SHIFT),
    ],
)
def test_affine_matches_official_vectors(rot, shift, inv, expected):
    mat = get_affine_transform(CENTER, SCALE, rot, OUTPUT_WH, shift=shift, inv=inv)
    assert mat.shape == (2, 3)
    assert mat.dtype == np.float64
    np.testing.assert_allclose(mat, expected, atol=1e-5)


def test_point_mapping_matches_official_vector():
    mat = get_affine_transform(CENTER, SCALE, 30.0, OUTPUT_WH)
    out = affine_transform_points(np.array([[300.0, 200.0]]), mat)
    np.testing.assert_allclose(out[0], POINT_300_200_ROT30, atol=1e-5)


def test_hard_coded_vectors_agree_with_reference_json(vectors):
    ref = vectors["affine"]
    assert tuple(ref["center"]) == CENTER and tuple(ref["scale"]) == SCALE
    assert tuple(ref["output_size_wh"]) == OUTPUT_WH
    np.testing.assert_allclose(ref["rot0"], AFFINE_ROT0, atol=1e-6)
    np.testing.assert_allclose(ref["rot30"], AFFINE_ROT30, atol=1e-6)
    np.testing.assert_allclose(ref["rot30_inv"], AFFINE_ROT30_INV, atol=1e-6)
    np.testing.assert_allclose(ref["rot0_shift(0.1,-0.05)"], AFFINE_ROT0_SHIFT, atol=1e-6)
    np.testing.assert_allclose(ref["point(300,200)_rot30_to_crop"], POINT_300_200_ROT30, atol=1e-6)
    np.testing.assert_allclose(vectors["get_final_preds"]["final_without_post_process"], FINAL_PREDS_NO_POST)
    # And the implementation against the file itself.
    mat = get_affine_transform(ref["center"], ref["scale"], 30.0, ref["output_size_wh"], inv=True)
    np.testing.assert_allclose(mat, ref["rot30_inv"], atol=1e-5)


def test_closed_form_equals_three_point_construction():
    rng = np.random.default_rng(0)
    for _ in range(20):
        center = rng.uniform(0, 640, 2)
        scale = rng.uniform(0.2, 3.0, 2)
        rot = rng.uniform(-90, 90)
        shift = rng.uniform(-0.2, 0.2, 2)
        size = (int(rng.integers(32, 400)), int(rng.integers(32, 400)))
        for inv in (False, True):
            ours = get_affine_transform(center, scale, rot, size, shift=shift, inv=inv)
            ref = _three_point_affine(center, scale, rot, size, shift=shift, inv=inv)
            # cv2 solves in float32 points: compare at a relative tolerance.
            np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)


def test_forward_and_inverse_compose_to_identity():
    fwd = get_affine_transform(CENTER, SCALE, 17.0, OUTPUT_WH, shift=SHIFT)
    inv = get_affine_transform(CENTER, SCALE, 17.0, OUTPUT_WH, shift=SHIFT, inv=True)
    pts = np.random.default_rng(1).uniform(0, 500, (10, 2))
    round_trip = affine_transform_points(affine_transform_points(pts, fwd), inv)
    np.testing.assert_allclose(round_trip, pts, atol=1e-9)


def test_heatmap_to_image_coords_inverts_forward_affine_at_rot0():
    rng = np.random.default_rng(2)
    heatmap_wh = (48, 64)
    centers = rng.uniform(50, 500, (3, 2))
    scales = rng.uniform(0.3, 2.0, (3, 2))
    image_pts = rng.uniform(0, 600, (3, 5, 2))
    forward = [get_affine_transform(centers[n], scales[n], 0.0, heatmap_wh) for n in range(3)]
    hm_pts = np.stack([affine_transform_points(image_pts[n], forward[n]) for n in range(3)])
    back = heatmap_to_image_coords(hm_pts, centers, scales, heatmap_wh)
    assert back.shape == (3, 5, 2)
    np.testing.assert_allclose(back, image_pts, atol=1e-9)


def test_heatmap_to_image_coords_official_vector():
    out = heatmap_to_image_coords(
        np.array([[[20.0, 30.0]]]), np.array([[100.0, 200.0]]), np.array([[1.0, 1.333333]]), (48, 64)
    )
    np.testing.assert_allclose(out[0, 0], FINAL_PREDS_NO_POST, atol=1e-4)


@pytest.mark.parametrize(
    ("box", "center", "scale"),
    [
        # wide box: h grows to w / 0.75
        ((10.0, 20.0, 150.0, 100.0), (85.0, 70.0), (150 / 200 * 1.25, 200 / 200 * 1.25)),
        # tall box: w grows to 0.75 h
        ((0.0, 0.0, 60.0, 200.0), (30.0, 100.0), (150 / 200 * 1.25, 200 / 200 * 1.25)),
        # already at the aspect ratio
        ((5.0, 5.0, 75.0, 100.0), (42.5, 55.0), (75 / 200 * 1.25, 100 / 200 * 1.25)),
    ],
)
def test_box_to_center_scale_grows_short_side(box, center, scale):
    c, s = box_xywh_to_center_scale(np.array(box), aspect_ratio=0.75)
    np.testing.assert_allclose(c, center, rtol=1e-6)
    np.testing.assert_allclose(s, scale, rtol=1e-6)
    assert c.dtype == np.float32 and s.dtype == np.float32
    assert s[0] / s[1] == pytest.approx(0.75, rel=1e-6)


def test_box_to_center_scale_padding_and_missing_box_sentinel():
    _, s = box_xywh_to_center_scale((0, 0, 75, 100), aspect_ratio=0.75, padding=1.0)
    np.testing.assert_allclose(s, (0.375, 0.5), rtol=1e-6)
    # center x == -1 is the official "no box" sentinel: no padding applied.
    c, s = box_xywh_to_center_scale((-2.0, 0.0, 2.0, 4.0), aspect_ratio=0.5)
    assert c[0] == -1
    np.testing.assert_allclose(s, (2 / 200, 4 / 200), rtol=1e-6)


def _coco_pose() -> np.ndarray:
    """(17, 2) an upright person: head around y 20-40, shoulders 60, hips 140, ankles 260."""
    return np.array(
        [
            [50, 20],
            [45, 15],
            [55, 15],
            [40, 20],
            [60, 20],  # face
            [30, 60],
            [70, 60],
            [25, 100],
            [75, 100],
            [20, 130],
            [80, 130],  # arms
            [40, 140],
            [60, 140],
            [38, 200],
            [62, 200],
            [36, 260],
            [64, 260],
        ],  # legs
        dtype=np.float32,
    )


def _seed_with_first_normal(below: bool) -> int:
    """A seed whose first standard-normal draw is < 0.5 (below=True) or >= 0.5."""
    for seed in range(1000):
        if (np.random.default_rng(seed).standard_normal() < 0.5) == below:
            return seed
    raise AssertionError("no seed found")


def _expected_box(points: np.ndarray, aspect: float = 0.75, padding: float = 1.5):
    w, h = points.max(0) - points.min(0)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return points.mean(0), np.array([w, h]) / 200 * padding


@pytest.mark.parametrize("upper", [True, False])
def test_half_body_selects_half_and_pads(upper):
    joints, vis = _coco_pose(), np.ones(17)
    rng = np.random.default_rng(_seed_with_first_normal(below=upper))
    result = half_body_center_scale(
        joints,
        vis,
        upper_ids=COCO17.upper_body_ids,
        lower_ids=COCO17.lower_body_ids,
        aspect_ratio=0.75,
        rng=rng,
    )
    assert result is not None
    ids = list(COCO17.upper_body_ids if upper else COCO17.lower_body_ids)
    center, scale = _expected_box(joints[ids])
    np.testing.assert_allclose(result[0], center, rtol=1e-5)
    np.testing.assert_allclose(result[1], scale, rtol=1e-5)


def test_half_body_falls_back_and_gives_up():
    joints = _coco_pose()
    kwargs = dict(upper_ids=COCO17.upper_body_ids, lower_ids=COCO17.lower_body_ids, aspect_ratio=0.75)
    # Only 2 upper joints visible: the lower half is used even when the draw says "upper".
    vis = np.zeros(17)
    vis[[5, 6]] = 1
    vis[11:] = 1
    rng = np.random.default_rng(_seed_with_first_normal(True))
    center, _ = half_body_center_scale(joints, vis, rng=rng, **kwargs)
    np.testing.assert_allclose(center, joints[11:].mean(0), rtol=1e-6)
    # Lower has <= 2 joints: upper is used even when the draw says "lower".
    vis = np.zeros(17)
    vis[:11] = 1
    vis[[11, 12]] = 1
    rng = np.random.default_rng(_seed_with_first_normal(False))
    center, _ = half_body_center_scale(joints, vis, rng=rng, **kwargs)
    np.testing.assert_allclose(center, joints[:11].mean(0), rtol=1e-6)
    # Fewer than 2 joints in the chosen half: no box.
    vis = np.zeros(17)
    vis[0] = 1
    assert half_body_center_scale(joints, vis, rng=np.random.default_rng(0), **kwargs) is None


def test_half_body_upper_probability_follows_randn_quirk():
    joints, vis = _coco_pose(), np.ones(17)
    rng = np.random.default_rng(123)
    upper_center = joints[:11].mean(0)
    n, hits = 2000, 0
    for _ in range(n):
        center, _ = half_body_center_scale(
            joints,
            vis,
            upper_ids=COCO17.upper_body_ids,
            lower_ids=COCO17.lower_body_ids,
            aspect_ratio=0.75,
            rng=rng,
        )
        hits += bool(np.allclose(center, upper_center))
    assert abs(hits / n - 0.6915) < 0.04  # P(N(0, 1) < 0.5)


def test_flip_joints_mirrors_and_swaps():
    joints = np.array([[10.0, 5.0], [20.0, 6.0], [30.0, 7.0]], dtype=np.float32)
    vis = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    out, out_vis = flip_joints(joints, vis, image_width=100, flip_index=[0, 2, 1])
    np.testing.assert_allclose(out, [[89.0, 5.0], [69.0, 7.0], [79.0, 6.0]])
    np.testing.assert_allclose(out_vis, [1.0, 1.0, 0.0])
    assert out.dtype == np.float32
    np.testing.assert_allclose(joints[:, 0], [10.0, 20.0, 30.0])  # input untouched


def test_flip_joints_twice_is_identity():
    rng = np.random.default_rng(3)
    joints = rng.uniform(0, 200, (17, 2))
    vis = (rng.uniform(size=17) > 0.3).astype(np.float32)
    once = flip_joints(joints, vis, 201, COCO17.flip_index)
    twice = flip_joints(*once, 201, COCO17.flip_index)
    np.testing.assert_allclose(twice[0], joints, atol=1e-12)
    np.testing.assert_array_equal(twice[1], vis)


def test_keypoint_boxes_enlarge_and_clip():
    from src.geometry import clip_boxes, enlarge_boxes, keypoint_boxes

    people = np.array(
        [
            [[10, 20, 0.9], [30, 60, 0.8], [100, 100, 0.05]],  # the weak joint is left out
            [[5, 5, 0.01], [15, 25, 0.02], [9, 9, 0.0]],  # fewer than two strong joints: all of them
        ],
        np.float32,
    )
    np.testing.assert_allclose(keypoint_boxes(people, min_score=0.1), [[10, 20, 20, 40], [5, 5, 10, 20]])
    assert keypoint_boxes(np.zeros((0, 3, 3)), min_score=0.1).shape == (0, 4)
    np.testing.assert_allclose(enlarge_boxes(np.array([[10, 20, 20, 40]]), 1.5), [[5, 10, 30, 60]])
    np.testing.assert_allclose(clip_boxes(np.array([[-5, 10, 30, 100]]), 20, 50), [[0, 10, 19, 39]])


def test_box_iou_of_box_sets():
    a = np.array([[0, 0, 10, 10], [20, 20, 10, 10]], dtype=np.float64)
    b = np.array([[5, 0, 10, 10], [0, 0, 10, 10], [100, 100, 0, 0], [0, 0, np.nan, 10]], dtype=np.float64)
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == 1.0
    assert iou[1, 0] == iou[1, 1] == 0.0  # apart
    assert iou[0, 2] == 0.0 and iou[0, 3] == 0.0  # an empty box, a box without width
    np.testing.assert_array_equal(box_iou(b[:2], a[:1]), iou[:1, :2].T)
    assert box_iou(np.zeros((0, 4)), a).shape == (0, 2)
