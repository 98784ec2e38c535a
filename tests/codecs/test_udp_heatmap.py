"""UDP heatmap codec: mmpose 1.3.2's vectors, restated reference loops, the UDP warp, the two decode
scales end to end in image space, the flip test, the contract, and the oracle's COCO AP."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from src.codecs.udp_heatmap import UDPHeatmap, blur_keep_max
from src.eval import evaluate
from src.geometry import affine_transform_points, get_affine_transform
from src.layouts import COCO17
from tests.helpers import REAL_COCO, TINY_SYNTHETIC, compose_run, layout_real_coco

VECTORS_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "modern" / "algorithm_vectors_modern.json"
)

# algorithm_vectors_modern.json["c_udp_heatmap"] (192x256 -> 48x64, sigma 2): the encode case and
# its decoding. Joint 3 lies left of the crop, joint 4 far left (heatmap x -7.38: mu truncates to
# -6, so column 0 still gets a tail), joint 5 is unlabelled (an all-zero map decodes to NaN).
ENCODE_KEYPOINTS = [
    [96.0, 128.0],
    [10.3, 20.700001],
    [191.0, 255.0],
    [-3.0, 100.0],
    [-30.0, 40.0],
    [60.0, 80.0],
    [150.25, 33.75],
]
ENCODE_VISIBLE = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
ENCODE_ARGMAX_XY = [[24, 32], [3, 5], [47, 63], [0, 25], [0, 10], [0, 0], [37, 8]]
ENCODE_MAX = [0.965143, 0.9717, 1.0, 0.924101, 0.001098, 0.0, 0.985708]
DECODED = [
    [96.502488, 128.501845],
    [10.774063, 20.782829],
    [194.042553, 258.031746],
    [-2.042548, 100.392012],
    [-2.566719, 39.368288],
    [math.nan, math.nan],
    [151.036626, 33.882495],
]
# decode_of_synthetic: ch0, ch1 Gaussians, ch2 constant -0.1 (location -1, its Taylor step reads
# the end of channel 1 across the flattened padded maps).
SYNTHETIC_DECODED = [[82.927805, 125.155428], [22.876521, 243.553959], [-8.170213, -4.063492]]
SYNTHETIC_SCORES = [0.983881, 0.59337, -0.1]
DECODE_ATOL = 5e-5  # input pixels: OpenCV's float32 blur against ours


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())["c_udp_heatmap"]


def make_codec(decode_scale: str = "mmpose", **kw) -> UDPHeatmap:
    kw = {"input_size": (192, 256), "heatmap_size": (48, 64), "sigma": 2, **kw}
    return UDPHeatmap(decode_scale=decode_scale, **kw)


def synthetic_heatmaps() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:48].astype(np.float32)
    return np.stack(
        [
            np.exp(-((x - 20.3) ** 2 + (y - 30.8) ** 2) / 8),
            0.6 * np.exp(-((x - 5.6) ** 2 + (y - 60.2) ** 2) / 18),
            np.full((64, 48), -0.1),
        ]
    ).astype(np.float32)


# ---------------------------------------------------------------- restated references (slow loops)


def reference_encode(points_hm: np.ndarray, visible: np.ndarray, size: tuple[int, int], sigma: float):
    """mmpose's per-joint UDP loop restated: points already in heatmap pixels (float32)."""
    w, h = size
    radius = sigma * 3
    side = 2 * radius + 1
    grid = np.arange(0, side, 1, dtype=np.float32)
    maps = np.zeros((len(points_hm), h, w), np.float32)
    weight = np.array(visible, np.float32)
    for k, p in enumerate(points_hm):
        if visible[k] < 0.5:
            continue
        mu = (p + np.float32(0.5)).astype(np.int64)
        left, top = (mu - radius).astype(np.int64)
        right, bottom = (mu + radius + 1).astype(np.int64)
        if left >= w or top >= h or right < 0 or bottom < 0:
            weight[k] = 0
            continue
        cx = np.float32(side // 2 + (float(p[0]) - int(mu[0])))
        cy = np.float32(side // 2 + (float(p[1]) - int(mu[1])))
        g = np.exp(-((grid - cx) ** 2 + (grid[:, None] - cy) ** 2) / np.float32(2 * sigma**2))
        gx = max(0, -left), min(w, right) - left
        gy = max(0, -top), min(h, bottom) - top
        maps[k, max(0, top) : min(h, bottom), max(0, left) : min(w, right)] = g[gy[0] : gy[1], gx[0] : gx[1]]
    return maps, weight


def reference_decode(heatmaps: np.ndarray, kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's get_heatmap_maximum + refine_keypoints_dark_udp restated with OpenCV and numpy's
    negative indexing, for one instance (K, H, W) -> (K, 2) heatmap pixels, (K,) scores."""
    cv2 = pytest.importorskip("cv2")
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    idx = flat.argmax(axis=1)
    locs = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    scores = flat.max(axis=1)
    locs[scores <= 0] = -1
    border = (kernel - 1) // 2
    maps = heatmaps.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in range(k):
            peak = maps[c].max()
            padded = np.zeros((h + 2 * border, w + 2 * border), np.float32)
            padded[border:-border, border:-border] = maps[c]
            blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
            maps[c] = blurred * (peak / blurred.max())
    maps = np.log(np.clip(maps, 1e-3, 50.0))
    pad = np.pad(maps, ((0, 0), (1, 1), (1, 1)), mode="edge").ravel()
    row = w + 2
    index = (locs[:, 0] + 1 + (locs[:, 1] + 1) * row + row * (h + 2) * np.arange(k)).astype(int)
    i0, ix1, ix1_, iy1, iy1_ = pad[index], pad[index + 1], pad[index - 1], pad[index + row], pad[index - row]
    ixy1, ixy1_ = pad[index + row + 1], pad[index - row - 1]
    grad = np.stack([0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)], axis=-1)[..., None]
    dxy = 0.5 * (ixy1 - ix1 - iy1 + i0 + i0 - ix1_ - iy1_ + ixy1_)
    hess = np.stack([ix1 - 2 * i0 + ix1_, dxy, dxy, iy1 - 2 * i0 + iy1_], axis=-1).reshape(k, 2, 2)
    inv = np.linalg.inv(hess + np.finfo(np.float32).eps * np.eye(2))
    return locs - (inv @ grad)[..., 0], scores


# ---------------------------------------------------------------- encode


def test_encode_reproduces_mmpose_vectors_inline():
    heatmaps, weight = make_codec().encode_heatmaps(np.array(ENCODE_KEYPOINTS), np.array(ENCODE_VISIBLE))
    assert heatmaps.shape == (7, 64, 48) and heatmaps.dtype == np.float32 and weight.dtype == np.float32
    np.testing.assert_array_equal(weight, ENCODE_VISIBLE)
    for k, ((x, y), peak) in enumerate(zip(ENCODE_ARGMAX_XY, ENCODE_MAX)):
        assert np.unravel_index(heatmaps[k].argmax(), (64, 48)) == (y, x), k
        assert heatmaps[k].max() == pytest.approx(peak, abs=1e-6), k
    assert heatmaps[5].max() == 0.0


def test_encode_reproduces_every_mmpose_vector(vectors):
    case = vectors["encode"]
    codec = make_codec()
    np.testing.assert_allclose(codec.scale_factor, vectors["scale_factor"], atol=1e-6)
    heatmaps, weight = codec.encode_heatmaps(np.array(case["keypoints"][0]), np.array(case["keypoints_visible"][0]))
    assert list(heatmaps.shape) == case["heatmaps_shape"] and str(heatmaps.dtype) == case["heatmaps_dtype"]
    np.testing.assert_array_equal(weight, case["keypoint_weights"][0])
    for ref in case["per_keypoint"]:
        k, hm = ref["k"], heatmaps[ref["k"]]
        np.testing.assert_allclose(
            np.asarray(ref["keypoint"], np.float32) / codec.scale_factor, ref["keypoint_in_heatmap_space"], atol=1e-5
        )
        x, y = ref["argmax_xy"]
        assert np.unravel_index(hm.argmax(), hm.shape) == (y, x), k
        assert hm.max() == pytest.approx(ref["max"], abs=1e-6) and hm.sum() == pytest.approx(ref["sum"], abs=1e-5)
        assert weight[k] == ref["keypoint_weight"]
        for dy, row in zip((-1, 0, 1), ref["window_3x3_rows_y_minus1_to_plus1"]):
            for dx, value in zip((-1, 0, 1), row):
                inside = 0 <= y + dy < 64 and 0 <= x + dx < 48
                assert inside == (value is not None), (k, dx, dy)
                if inside:
                    assert hm[y + dy, x + dx] == pytest.approx(value, abs=1e-6), (k, dx, dy)


@pytest.mark.parametrize(
    ("sigma", "input_size", "heatmap_size"),
    [(2, (192, 256), (48, 64)), (3, (288, 384), (72, 96)), (2.5, (64, 64), (16, 16))],
)
def test_encode_equals_the_restated_loop_exactly(sigma, input_size, heatmap_size):
    """Also for a non-integer 3 sigma (7.5): mmpose's truncated window origin is reproduced."""
    rng = np.random.default_rng(0)
    codec = UDPHeatmap(input_size=input_size, heatmap_size=heatmap_size, sigma=sigma)
    joints = rng.uniform(-60, np.array(input_size) + 60, (60, 2)).astype(np.float32)
    visible = rng.choice([0.0, 0.3, 1.0], 60, p=[0.15, 0.1, 0.75]).astype(np.float32)
    ours = codec.encode_heatmaps(joints, visible)
    ref = reference_encode(joints / codec.scale_factor, visible, heatmap_size, sigma)
    np.testing.assert_array_equal(ours[1], ref[1])
    np.testing.assert_allclose(ours[0], ref[0], atol=1e-7, rtol=0)
    assert (ours[1] == 0.3).sum() == (visible == 0.3).sum()  # unlabelled joints keep their visibility


# ---------------------------------------------------------------- decode


def test_decode_of_encoded_reproduces_mmpose_inline():
    codec = make_codec()
    heatmaps, _ = codec.encode_heatmaps(np.array(ENCODE_KEYPOINTS), np.array(ENCODE_VISIBLE))
    coords, scores = codec.decode(torch.from_numpy(heatmaps)[None])
    assert coords.shape == (1, 7, 2) and coords.dtype == torch.float32 and scores.shape == (1, 7)
    np.testing.assert_allclose(coords[0].numpy(), DECODED, atol=DECODE_ATOL)  # NaN == NaN here
    assert torch.isnan(coords[0, 5]).all() and scores[0, 5] == 0
    np.testing.assert_allclose(scores[0].numpy(), ENCODE_MAX, atol=1e-6)


def test_decode_of_synthetic_maps_reproduces_mmpose_inline():
    coords, scores = make_codec().decode(torch.from_numpy(synthetic_heatmaps())[None])
    np.testing.assert_allclose(coords[0].numpy(), SYNTHETIC_DECODED, atol=DECODE_ATOL)
    np.testing.assert_allclose(scores[0].numpy(), SYNTHETIC_SCORES, atol=1e-6)


def test_decode_reproduces_every_mmpose_vector(vectors):
    codec = make_codec()
    case = vectors["encode"]
    heatmaps, _ = codec.encode_heatmaps(np.array(case["keypoints"][0]), np.array(case["keypoints_visible"][0]))
    coords, scores = codec.decode(torch.from_numpy(heatmaps)[None])
    expected = np.array(vectors["decode_of_encoded"]["decoded_keypoints"], dtype=object)
    expected = np.where(expected == "NaN", np.nan, expected).astype(np.float64)
    np.testing.assert_allclose(coords.numpy(), expected, atol=DECODE_ATOL)
    np.testing.assert_allclose(scores.numpy(), vectors["decode_of_encoded"]["decoded_scores"], atol=1e-6)
    synthetic = vectors["decode_of_synthetic"]
    coords, scores = codec.decode(torch.from_numpy(synthetic_heatmaps())[None])
    raw, _ = codec.decode_heatmaps(torch.from_numpy(synthetic_heatmaps())[None])
    np.testing.assert_allclose(coords.numpy(), synthetic["decoded_keypoints"], atol=DECODE_ATOL)
    np.testing.assert_allclose(scores.numpy(), synthetic["decoded_scores"], atol=1e-6)
    # the constant map sits at -1 before the step: it moved only in x (reads across channels)
    assert raw[0, 2, 1].item() == pytest.approx(-1.0) and raw[0, 2, 0].item() == pytest.approx(-2.0, abs=1e-4)


def test_decode_equals_the_restated_opencv_numpy_reference_on_random_maps():
    rng = np.random.default_rng(1)
    maps = rng.uniform(0, 1, (2, 6, 16, 12)).astype(np.float32) ** 4
    maps[0, 0] = 0.0  # NaN
    maps[0, 1] = -rng.uniform(0.1, 1, (16, 12))  # negative: -1, reads channel 0's NaN
    maps[1, 0] = -0.5  # channel 0 at -1 wraps to the end of the instance's last channel
    maps[1, 3, 15, 11] = 5.0  # peak in a corner
    coords, scores = make_codec(input_size=(48, 64), heatmap_size=(12, 16)).decode_heatmaps(torch.from_numpy(maps))
    for n in range(2):
        ref, ref_scores = reference_decode(maps[n])
        np.testing.assert_allclose(coords[n].numpy(), ref, atol=1e-4)  # float32 blur sums differ
        np.testing.assert_allclose(scores[n].numpy(), ref_scores)
    assert torch.isnan(coords[0, :2]).all() and not torch.isnan(coords[1]).any()


def test_blur_matches_opencv_for_small_and_large_kernels():
    cv2 = pytest.importorskip("cv2")
    x = np.random.default_rng(2).uniform(size=(16, 12)).astype(np.float32)
    for kernel in (3, 5, 7, 11, 17):
        b = (kernel - 1) // 2
        expected = cv2.GaussianBlur(np.pad(x, b), (kernel, kernel), 0)[b:-b, b:-b]
        expected *= x.max() / expected.max()
        ours = blur_keep_max(torch.from_numpy(x)[None, None], kernel)[0, 0].numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-6, err_msg=str(kernel))


def test_decode_any_dtype_and_batch():
    rng = np.random.default_rng(3)
    maps = torch.from_numpy(rng.uniform(size=(3, 4, 16, 12)).astype(np.float32))
    codec = make_codec(input_size=(48, 64), heatmap_size=(12, 16))
    coords, scores = codec.decode(maps)
    for n in range(3):
        one, one_scores = codec.decode(maps[n : n + 1])
        torch.testing.assert_close(one[0], coords[n])
        torch.testing.assert_close(one_scores[0], scores[n])
    torch.testing.assert_close(codec.decode(maps.double())[0], coords)
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        codec.decode(maps[0])


# ---------------------------------------------------------------- geometry: warp, decode scales, image space


def mmpose_udp_warp(center, box, rot, output_size):
    """get_udp_warp_matrix as mmpose defines it, element by element (box in pixels)."""
    image = np.asarray(center, np.float64) * 2
    t = np.deg2rad(rot)
    sx, sy = (output_size[0] - 1) / box[0], (output_size[1] - 1) / box[1]
    return np.array(
        [
            [
                math.cos(t) * sx,
                -math.sin(t) * sx,
                sx * (-0.5 * image[0] * math.cos(t) + 0.5 * image[1] * math.sin(t) + 0.5 * box[0]),
            ],
            [
                math.sin(t) * sy,
                math.cos(t) * sy,
                sy * (-0.5 * image[0] * math.sin(t) - 0.5 * image[1] * math.cos(t) + 0.5 * box[1]),
            ],
        ]
    )


@pytest.mark.parametrize("rotation", [0.0, 30.0, -75.5])
def test_crop_transform_is_mmpose_udp_warp(rotation):
    codec = make_codec()
    center, scale = np.array([310.5, 222.25]), np.array([1.3, 1.3 / 0.75])
    trans = codec.crop_transform(center, scale, rotation)
    np.testing.assert_allclose(trans, mmpose_udp_warp(center, scale * 200, rotation, (192, 256)), atol=1e-9)
    # the box centre goes to the crop centre (in pixel intervals), the box's left edge to column 0
    np.testing.assert_allclose(affine_transform_points(center[None], trans)[0], (95.5, 127.5), atol=1e-9)
    if rotation == 0.0:
        left = affine_transform_points(np.array([[center[0] - 130.0, center[1]]]), trans)[0]
        assert left[0] == pytest.approx(0.0, abs=1e-9)
        # the standard warp scales by input / box instead of (input - 1) / box
        standard = get_affine_transform(center, scale, 0.0, (192, 256))
        np.testing.assert_allclose(trans[0, 0] / standard[0, 0], 191 / 192)
    else:  # UDP's rotation turns the other way round than the standard warp's
        standard = get_affine_transform(center, scale, -rotation, (192, 256))
        ratio = trans[:, :2] / standard[:, :2]
        np.testing.assert_allclose(ratio, [[191 / 192] * 2, [255 / 256 * (256 / 192) * 0.75] * 2], rtol=1e-9)


def _round_trip_offsets(codec: UDPHeatmap, rng: np.random.Generator, trials: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(image-pixel offsets, crop-pixel offsets of `decode`) of crop -> encode -> decode -> image, for
    joints inside the crop at random boxes."""
    image_errors, crop_errors = [], []
    for _ in range(trials):
        center = rng.uniform(200, 400, 2)
        scale = np.array([1.0, 1.0 / 0.75]) * rng.uniform(0.5, 2.0)
        joints = center + rng.uniform(-0.35, 0.35, (17, 2)) * scale * 200
        crop_joints = affine_transform_points(joints, codec.crop_transform(center, scale, 0.0))
        coords, _ = codec.decode(torch.from_numpy(codec.encode(crop_joints, np.ones(17))["heatmaps"])[None])
        image_errors.append(codec.crop_to_image(coords.numpy(), center[None], scale[None])[0] - joints)
        crop_errors.append(coords[0].numpy() - crop_joints)
    return np.concatenate(image_errors), np.concatenate(crop_errors)


@pytest.mark.parametrize("decode_scale", ["mmpose", "consistent"])
def test_both_decode_scales_land_on_the_annotated_point_in_the_image(decode_scale):
    """End to end through the UDP warp both forms are exact (up to DARK's error, < 0.01 px);
    in crop pixels mmpose's decoding sits +0.5 px off at the crop centre, the consistent one not."""
    codec = make_codec(decode_scale)
    image_err, crop_err = _round_trip_offsets(codec, np.random.default_rng(4))
    assert np.abs(image_err).max() < 0.02 and np.abs(image_err.mean(axis=0)).max() < 1e-3
    centre_offset = codec.decode(
        torch.from_numpy(codec.encode(np.array([[95.5, 127.5]]), np.ones(1))["heatmaps"])[None]
    )
    offset = centre_offset[0][0, 0].numpy() - (95.5, 127.5)
    if decode_scale == "mmpose":
        np.testing.assert_allclose(offset, (95.5 / 191, 127.5 / 255), atol=1e-3)  # input / (input - 1) stretch
        assert crop_err.mean(axis=0) == pytest.approx((0.5, 0.5), abs=0.05)
    else:
        np.testing.assert_allclose(offset, (0.0, 0.0), atol=1e-3)
        assert np.abs(crop_err).max() < 0.01


def test_consistent_decoding_with_mmpose_mapping_would_be_off_by_up_to_a_crop_pixel():
    """Why each decode scale carries its own inverse warp: crossing them shifts points."""
    codec = make_codec("consistent")
    center, scale = np.array([300.0, 300.0]), np.array([1.0, 1.0 / 0.75])
    joints = np.array([[220.0, 300.0], [300.0, 300.0], [380.0, 300.0]])
    crop_joints = affine_transform_points(joints, codec.crop_transform(center, scale, 0.0))
    coords, _ = codec.decode(torch.from_numpy(codec.encode(crop_joints, np.ones(3))["heatmaps"])[None])
    mixed = make_codec("mmpose").crop_to_image(coords.numpy(), center[None], scale[None])[0]
    box = 200.0
    np.testing.assert_allclose(mixed[:, 0] - joints[:, 0], -crop_joints[:, 0] / 191 * box / 192, atol=0.01)
    assert mixed[2, 0] - joints[2, 0] < -0.9


# ---------------------------------------------------------------- flip test and the contract


def test_flip_back_of_the_mirrored_crop_equals_the_unmirrored_maps():
    """UDP geometry: mirroring the crop's pixels (x -> w - 1 - x) mirrors the heatmap columns exactly,
    so flip_back without shift (the codec's default) restores the maps of the unmirrored crop."""
    codec = make_codec()
    rng = np.random.default_rng(5)
    cells = rng.integers(8, (40, 56), (17, 2)) + rng.uniform(0.1, 0.4, (17, 2))  # fractions away from .5
    joints = (cells * codec.scale_factor).astype(np.float32)
    mirrored = joints[list(COCO17.flip_index)].copy()
    mirrored[:, 0] = 191 - mirrored[:, 0]
    original = torch.from_numpy(codec.encode(joints, np.ones(17))["heatmaps"])[None]
    flipped = torch.from_numpy(codec.encode(mirrored, np.ones(17))["heatmaps"])[None]
    assert codec.evaluation_defaults == {"shift_heatmap": False}
    back = codec.flip_back(flipped, COCO17.flip_index, dict(codec.evaluation_defaults))
    torch.testing.assert_close(back, original, atol=1e-5, rtol=0)
    torch.testing.assert_close(codec.decode(codec.average(original, back))[0], codec.decode(original)[0])
    shifted = codec.flip_back(flipped, COCO17.flip_index, {"shift_heatmap": True})
    assert (codec.decode(shifted)[0] - codec.decode(original)[0])[..., 0].mean() == pytest.approx(4.0, abs=0.2)


def test_contract_shapes_prediction_accuracy_and_picture():
    codec = make_codec(input_size=(48, 64), heatmap_size=(12, 16))
    assert codec.output_shapes(17) == (17, 16, 12) and codec.target_keys == ("heatmaps", "target_weight")
    maps = torch.rand(2, 17, 16, 12)
    codec.check_outputs(maps, 17, "model 'vit'")
    assert codec.prediction([torch.zeros(1), maps]) is maps
    with pytest.raises(ValueError, match=r"\(2, 17, 32, 24\).*UDPHeatmap.*\(N, 17, 16, 12\)"):
        codec.check_outputs(torch.zeros(2, 17, 32, 24), 17, "model 'vit'")
    rng = np.random.default_rng(6)
    joints = rng.uniform(8, (40, 56), (2, 17, 2))
    targets = [codec.encode(j, np.ones(17)) for j in joints]
    batch = {key: torch.stack([torch.from_numpy(t[key]) for t in targets]) for key in codec.target_keys}
    assert codec.accuracy(batch["heatmaps"], batch).item() == 1.0
    assert codec.accuracy(batch["heatmaps"].flip(-2), batch).item() < 0.5
    picture = codec.picture(np.zeros((64, 48, 3), np.uint8), codec.one(batch["heatmaps"], 1))
    assert picture.shape == (64, 48, 3) and picture.dtype == np.uint8 and picture.any()
    with pytest.raises(ValueError, match="refine for UDPHeatmap"):
        codec.set_refine("dark")


def test_decode_to_image_round_trips_through_the_crop():
    codec = make_codec("consistent")
    center, scale = np.array([[150.0, 90.0]]), np.array([[0.6, 0.8]])
    joints = np.array([[130.0, 70.0], [160.5, 101.25]])
    crop = affine_transform_points(joints, codec.crop_transform(center[0], scale[0], 0.0))
    heatmaps = torch.from_numpy(codec.encode(crop, np.ones(2))["heatmaps"])[None]
    out = codec.decode_to_image(heatmaps, torch.from_numpy(center), torch.from_numpy(scale))
    assert out.shape == (1, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, :2], joints, atol=0.01)
    np.testing.assert_allclose(out[0, :, 2], heatmaps.amax(dim=(-2, -1))[0].numpy())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="decode_scale"):
        make_codec("exact")
    with pytest.raises(ValueError, match="blur_kernel_size"):
        make_codec(blur_kernel_size=10)
    for sigma in (0, None):
        with pytest.raises(ValueError, match="sigma must be a positive number"):
            make_codec(sigma=sigma)
    with pytest.raises(ValueError, match="size - 1"):
        make_codec(heatmap_size=(1, 64))
    with pytest.raises(ValueError, match="3 keypoints but 2"):
        make_codec().encode(np.zeros((3, 2)), np.ones(2))


# ---------------------------------------------------------------- the oracle: COCO AP without a network


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def oracle_ap(overrides: list[str], run_dir: Path, data_dir: Path) -> float:
    cfg = compose_run(
        "eval", ["oracle=true", "model=hrnet", "model/codec=udp", "num_visualized=0", *overrides], run_dir, data_dir
    )
    assert cfg.model.codec.input_size == [192, 256] and cfg.model.codec.heatmap_size == [48, 64]
    return evaluate(cfg)["oracle/AP"]


@pytest.mark.parametrize("decode_scale", ["mmpose", "consistent"])
def test_oracle_on_synthetic_data(decode_scale, tmp_path, data_dir):
    assert oracle_ap([f"model.codec.decode_scale={decode_scale}", *TINY_SYNTHETIC], tmp_path, data_dir) >= 0.99


@pytest.mark.skipif(not REAL_COCO.is_dir(), reason="../shared/data/real_samples is not present")
@pytest.mark.parametrize("decode_scale", ["mmpose", "consistent"])
def test_oracle_on_the_real_coco_samples(decode_scale, tmp_path):
    layout_real_coco(tmp_path / "data" / "coco")
    overrides = ["data=coco", f"model.codec.decode_scale={decode_scale}"]
    assert oracle_ap(overrides, tmp_path / "run", tmp_path / "data") >= 0.99
