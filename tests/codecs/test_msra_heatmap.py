"""MSRA heatmap codec against the official HRNet vectors, plus round-trip properties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.codecs import MSRAHeatmap, flip_heatmaps_back
from src.layouts import COCO17

VECTORS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "algorithm_vectors.json"

# algorithm_vectors.json["hrnet_generate_target"]: joint (100.3, 150.8) px, 192x256 -> 48x64, sigma 2.
TARGET_JOINT = (100.3, 150.8)
TARGET_PEAK_RC = (38, 25)
TARGET_SUPPORT_ROWS = (32, 44)
TARGET_SUPPORT_COLS = (19, 31)
TARGET_VALUE_1PX_RIGHT = 0.8824968934059143
TARGET_VALUE_3PX_RIGHT = 0.32465243339538574
TARGET_X_MINUS_20_MAX = 0.1353352814912796
# algorithm_vectors.json["get_final_preds"]: peak (20, 30) on 48x64, L=.5 R=.7 U=.6 D=.4.
PEAK_XY = (20, 30)
FINAL_CENTER = (100.0, 200.0)
FINAL_SCALE = (1.0, 1.333333)
FINAL_WITH_POST = (84.375, 190.625)
FINAL_WITHOUT_POST = (83.333336, 191.666672)
# algorithm_vectors.json["flip_back_shift"]: 3 channels of 2x3, channels 1 and 2 form a pair.
FLIP_INPUT = np.arange(18, dtype=np.float32).reshape(3, 2, 3)
FLIP_BACK_CH0 = [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
FLIP_BACK_CH1 = [[14.0, 13.0, 12.0], [17.0, 16.0, 15.0]]
AFTER_SHIFT_CH1 = [[14.0, 14.0, 13.0], [17.0, 17.0, 16.0]]


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())


def make_codec(refine: str = "quarter", unbiased: bool = False) -> MSRAHeatmap:
    return MSRAHeatmap(input_size=(192, 256), heatmap_size=(48, 64), sigma=2, refine=refine, unbiased=unbiased)


def reference_generate_target(joints, vis, image_wh, heatmap_wh, sigma):
    """The official per-joint loop, restated from the facts (slow, only for comparison)."""
    w, h = heatmap_wh
    stride = (image_wh[0] / w, image_wh[1] / h)
    tmp = sigma * 3
    size = 2 * tmp + 1
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    x0 = y0 = size // 2
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    target = np.zeros((len(joints), h, w), np.float32)
    weight = np.array(vis, np.float32)
    for k, (jx, jy) in enumerate(joints):
        mx, my = int(jx / stride[0] + 0.5), int(jy / stride[1] + 0.5)
        ul = [int(mx - tmp), int(my - tmp)]
        br = [int(mx + tmp + 1), int(my + tmp + 1)]
        if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
            weight[k] = 0
            continue
        gx = max(0, -ul[0]), min(br[0], w) - ul[0]
        gy = max(0, -ul[1]), min(br[1], h) - ul[1]
        ix = max(0, ul[0]), min(br[0], w)
        iy = max(0, ul[1]), min(br[1], h)
        if weight[k] > 0.5:
            target[k, iy[0] : iy[1], ix[0] : ix[1]] = g[gy[0] : gy[1], gx[0] : gx[1]]
    return target, weight


# ---------------------------------------------------------------- encode


def test_encode_official_vector():
    heatmaps, weight = make_codec().encode_heatmaps(np.array([TARGET_JOINT]), np.array([1.0]))
    hm = heatmaps[0]
    assert heatmaps.shape == (1, 64, 48) and heatmaps.dtype == np.float32
    assert weight.dtype == np.float32 and weight[0] == 1.0
    assert np.unravel_index(hm.argmax(), hm.shape) == TARGET_PEAK_RC
    assert hm[TARGET_PEAK_RC] == 1.0
    rows, cols = np.nonzero(hm)
    assert (rows.min(), rows.max()) == TARGET_SUPPORT_ROWS
    assert (cols.min(), cols.max()) == TARGET_SUPPORT_COLS
    r, c = TARGET_PEAK_RC
    assert hm[r, c + 1] == pytest.approx(TARGET_VALUE_1PX_RIGHT, abs=1e-7)
    assert hm[r, c + 3] == pytest.approx(TARGET_VALUE_3PX_RIGHT, abs=1e-7)


def test_encode_joint_outside_crop_keeps_weight_and_tail():
    heatmaps, weight = make_codec().encode_heatmaps(np.array([[-20.0, TARGET_JOINT[1]]]), np.array([1.0]))
    assert weight[0] == 1.0
    assert heatmaps[0].max() == pytest.approx(TARGET_X_MINUS_20_MAX, abs=1e-7)


def test_encode_vectors_agree_with_reference_json(vectors):
    ref = vectors["hrnet_generate_target"]
    assert tuple(ref["joint_xy_input_px"]) == TARGET_JOINT
    assert tuple(ref["peak_rc"]) == TARGET_PEAK_RC
    assert tuple(ref["support_rows"]) == TARGET_SUPPORT_ROWS
    assert tuple(ref["support_cols"]) == TARGET_SUPPORT_COLS
    assert ref["value_1px_right"] == pytest.approx(TARGET_VALUE_1PX_RIGHT, abs=1e-12)
    assert ref["value_3px_right"] == pytest.approx(TARGET_VALUE_3PX_RIGHT, abs=1e-12)
    assert ref["joint_at_x=-20px_heatmap_max"] == pytest.approx(TARGET_X_MINUS_20_MAX, abs=1e-12)
    codec = MSRAHeatmap(
        input_size=tuple(ref["image_size_wh"]), heatmap_size=tuple(ref["heatmap_size_wh"]), sigma=ref["sigma"]
    )
    heatmaps, weight = codec.encode_heatmaps(np.array([ref["joint_xy_input_px"]]), np.array([1.0]))
    np.testing.assert_allclose(weight, ref["target_weight"])
    r, c = ref["peak_rc"]
    assert heatmaps[0, r, c] == pytest.approx(ref["peak_value"], abs=1e-6)
    assert heatmaps[0, r, c + 1] == pytest.approx(ref["value_1px_right"], abs=1e-6)


def test_encode_weight_zero_only_when_window_entirely_outside():
    codec = make_codec()
    joints = np.array(
        [
            [-40.0, 100.0],  # mu_x = int(-9.5) = -9, window ends at x = -3: outside -> weight 0
            [-31.0, 100.0],  # mu_x = -7, exclusive end br = 0: the official `br < 0` test keeps weight 1
            [100.0, 300.0],  # mu_y = 75, window starts at row 69 >= 64 -> weight 0
            [-3.0, 100.0],  # int(-0.25) truncates toward zero: peak in column 0
            [100.0, 100.0],  # invisible: weight 0, nothing drawn
        ]
    )
    heatmaps, weight = codec.encode_heatmaps(joints, np.array([1, 1, 1, 1, 0], dtype=np.float32))
    np.testing.assert_array_equal(weight, [0, 1, 0, 1, 0])
    assert heatmaps[[0, 1, 2, 4]].max() == 0.0
    assert np.unravel_index(heatmaps[3].argmax(), (64, 48)) == (25, 0)


def test_encode_equals_official_loop_exactly():
    rng = np.random.default_rng(0)
    cases = [(2, (192, 256), (48, 64)), (3, (288, 384), (72, 96)), (2.5, (64, 64), (16, 16))]
    for sigma, image_wh, heatmap_wh in cases:
        codec = MSRAHeatmap(input_size=image_wh, heatmap_size=heatmap_wh, sigma=sigma)
        joints = rng.uniform(-60, np.array(image_wh) + 60, (40, 2))
        vis = (rng.uniform(size=40) > 0.2).astype(np.float32)
        ours = codec.encode_heatmaps(joints, vis)
        ref = reference_generate_target(joints, vis, image_wh, heatmap_wh, sigma)
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_array_equal(ours[1], ref[1])


def test_unbiased_encoding_peaks_at_subpixel_location():
    heatmaps, _ = make_codec(unbiased=True).encode_heatmaps(np.array([[101.0, 150.0]]), np.array([1.0]))
    # x = 101 / 4 = 25.25, y = 150 / 4 = 37.5: the Gaussian is sampled off-centre.
    x = np.arange(48) - 25.25
    y = np.arange(64)[:, None] - 37.5
    expected = np.exp(-(x**2 + y**2) / 8.0)
    window = heatmaps[0] > 0
    np.testing.assert_allclose(heatmaps[0][window], expected[window], atol=1e-6)
    assert window.sum() == 13 * 13


# ---------------------------------------------------------------- decode


def _final_preds_heatmap() -> torch.Tensor:
    hm = torch.zeros(1, 1, 64, 48)
    x, y = PEAK_XY
    hm[0, 0, y, x] = 1.0
    hm[0, 0, y, x - 1], hm[0, 0, y, x + 1] = 0.5, 0.7
    hm[0, 0, y - 1, x], hm[0, 0, y + 1, x] = 0.6, 0.4
    return hm


@pytest.mark.parametrize(("refine", "expected"), [("quarter", FINAL_WITH_POST), ("none", FINAL_WITHOUT_POST)])
def test_get_final_preds_official_vector(refine, expected):
    codec = make_codec(refine)
    out = codec.decode_to_image(_final_preds_heatmap(), np.array([FINAL_CENTER]), np.array([FINAL_SCALE]))
    assert out.shape == (1, 1, 3) and out.dtype == np.float32
    coords, maxvals = out[..., :2], out[..., 2]
    assert coords.shape == (1, 1, 2) and maxvals.shape == (1, 1)
    np.testing.assert_allclose(coords[0, 0], expected, atol=1e-4)
    assert maxvals[0, 0] == pytest.approx(1.0)
    raw, _ = codec.decode_heatmaps(_final_preds_heatmap())
    expected_hm = (20.25, 29.75) if refine == "quarter" else (20.0, 30.0)
    np.testing.assert_allclose(raw[0, 0].numpy(), expected_hm)


def test_get_final_preds_vectors_agree_with_reference_json(vectors):
    ref = vectors["get_final_preds"]
    assert tuple(ref["peak_xy"]) == PEAK_XY
    np.testing.assert_allclose(ref["final_with_post_process"], FINAL_WITH_POST, atol=1e-6)
    np.testing.assert_allclose(ref["final_without_post_process"], FINAL_WITHOUT_POST, atol=1e-6)
    out = make_codec("quarter").decode_to_image(
        _final_preds_heatmap(), np.array([ref["center"]]), np.array([ref["scale"]])
    )
    coords, maxvals = out[..., :2], out[..., 2]
    np.testing.assert_allclose(coords[0, 0], ref["final_with_post_process"], atol=1e-4)
    np.testing.assert_allclose(maxvals[0], ref["maxval"], atol=1e-6)


def test_decode_nonpositive_peak_gives_origin():
    hm = torch.full((2, 3, 8, 8), -1.0)
    hm[0, 0, 5, 6] = -0.1  # max still negative
    hm[1, 2, 4, 3] = 0.5  # a real peak
    for refine in ("quarter", "dark", "none"):
        coords, maxvals = make_codec(refine).decode_heatmaps(hm)
        assert coords.shape == (2, 3, 2) and maxvals.shape == (2, 3)
        assert coords[0].abs().sum() == 0
        np.testing.assert_allclose(coords[1, 2].numpy(), (3.0, 4.0))
        assert maxvals[0, 0] == pytest.approx(-0.1)
    coords, maxvals = make_codec().decode_heatmaps(torch.zeros(1, 1, 8, 8))
    assert coords.abs().sum() == 0 and maxvals[0, 0] == 0


@pytest.mark.parametrize(("px", "refined"), [(1, False), (2, True), (46, True), (47, False)])
def test_quarter_refine_strict_border_rule(px, refined):
    """Only 1 < px < W - 1 is refined (W = 48): columns 0, 1 and 47 never move."""
    hm = torch.zeros(1, 1, 64, 48)
    hm[0, 0, 30, px] = 1.0
    hm[0, 0, 30, px - 1] = 0.5  # left neighbour higher than the right one
    coords, _ = make_codec("quarter").decode_heatmaps(hm)
    assert coords[0, 0, 0].item() == (px - 0.25 if refined else px)
    assert coords[0, 0, 1].item() == 30.0  # equal vertical neighbours: sign 0, no move


def test_decode_batched_matches_single_and_any_dtype():
    rng = np.random.default_rng(1)
    heatmaps = torch.from_numpy(rng.uniform(size=(3, 5, 16, 12)).astype(np.float32))
    for refine in ("quarter", "dark", "none"):
        codec = make_codec(refine)
        coords, maxvals = codec.decode_heatmaps(heatmaps)
        for n in range(3):
            c1, m1 = codec.decode_heatmaps(heatmaps[n : n + 1])
            torch.testing.assert_close(c1[0], coords[n])
            torch.testing.assert_close(m1[0], maxvals[n])
        c64, _ = codec.decode_heatmaps(heatmaps.double())
        torch.testing.assert_close(c64, coords)


def test_dark_skips_border_peaks():
    hm = torch.zeros(1, 2, 16, 16)
    hm[0, 0, 5, 0] = 1.0
    hm[0, 0, 5, 1] = 0.6
    hm[0, 1, 15, 7] = 1.0
    hm[0, 1, 14, 8] = 0.6
    coords, _ = make_codec("dark").decode_heatmaps(hm)
    np.testing.assert_allclose(coords[0].numpy(), [[0.0, 5.0], [7.0, 15.0]])


# ---------------------------------------------------------------- round trip


def _interior_joints(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 2) sub-pixel joints at least 5 heatmap px from the 192x256 crop border."""
    return rng.uniform((20.0, 20.0), (172.0, 236.0), (n, 2))


@pytest.mark.parametrize("refine", ["quarter", "dark", "none"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_round_trip_exact_for_integer_aligned_joints(refine, unbiased):
    """Exact wherever the Gaussian window (3 sigma = 6 px) is not clipped by the map border.

    (Closer to the border DARK's blur sees a truncated Gaussian and is biased inward.)
    """
    rng = np.random.default_rng(2)
    joints = rng.integers(6, (42, 58), (17, 2)) * 4.0  # heatmap-integer positions, 6 <= x <= W - 7
    decoded = make_codec(refine, unbiased).oracle_round_trip(joints)
    np.testing.assert_allclose(decoded, joints, atol=1e-4)


def test_round_trip_error_bounds():
    """Per-axis error in heatmap px, joints uniform at sub-pixel positions.

    Official encoding puts the peak at round(p): every decoder sees a symmetric peak, so the
    error is |p - round(p)| <= 0.5 whatever the refinement. With unbiased encoding the argmax is
    still round(p) (error <= 0.5), the quarter step moves 0.25 toward the true centre (error
    ||d| - 0.25| <= 0.25), and DARK recovers the centre up to the blur / window truncation.
    """
    joints = _interior_joints(np.random.default_rng(3), 400)
    stride = np.array([4.0, 4.0])

    def errors(refine: str, unbiased: bool) -> np.ndarray:
        return np.abs(make_codec(refine, unbiased).oracle_round_trip(joints) - joints) / stride

    for refine in ("none", "quarter", "dark"):
        assert errors(refine, unbiased=False).max() <= 0.5 + 1e-6
    plain = errors("none", unbiased=True)
    quarter = errors("quarter", unbiased=True)
    dark = errors("dark", unbiased=True)
    assert plain.max() <= 0.5 + 1e-6 and plain.mean() > 0.2
    assert quarter.max() <= 0.25 + 1e-4
    assert quarter.mean() < 0.6 * plain.mean()
    assert dark.max() < 0.05
    assert dark.mean() < 0.02 * plain.mean()


def test_dark_tolerates_noise_better_than_argmax():
    rng = np.random.default_rng(4)
    joints = _interior_joints(rng, 100)
    codec = make_codec("dark", unbiased=True)
    clean = np.stack([codec.encode_heatmaps(j[None], np.ones(1))[0][0] for j in joints])[:, None]  # (100, 1, 64, 48)
    noisy = torch.from_numpy(clean + rng.normal(0, 0.02, clean.shape).astype(np.float32))
    target = joints / 4.0
    dark_err = np.abs(codec.decode_heatmaps(noisy)[0][:, 0].numpy() - target).mean()
    plain_err = np.abs(make_codec("none").decode_heatmaps(noisy)[0][:, 0].numpy() - target).mean()
    assert dark_err < 0.5 * plain_err


# ---------------------------------------------------------------- flip


def test_flip_back_and_shift_official_vector():
    hm = torch.from_numpy(FLIP_INPUT)[None]
    flipped = flip_heatmaps_back(hm, [0, 2, 1], shift=False)
    np.testing.assert_array_equal(flipped[0, 0].numpy(), FLIP_BACK_CH0)
    np.testing.assert_array_equal(flipped[0, 1].numpy(), FLIP_BACK_CH1)
    shifted = flip_heatmaps_back(hm, [0, 2, 1], shift=True)
    np.testing.assert_array_equal(shifted[0, 1].numpy(), AFTER_SHIFT_CH1)
    assert torch.equal(hm[0], torch.from_numpy(FLIP_INPUT))  # input untouched


def test_flip_back_vectors_agree_with_reference_json(vectors):
    ref = vectors["flip_back_shift"]
    inputs = np.stack([ref["input_ch0"], ref["input_ch1"], ref["input_ch2"]])
    np.testing.assert_array_equal(inputs, FLIP_INPUT)
    np.testing.assert_array_equal(ref["flip_back_ch0"], FLIP_BACK_CH0)
    np.testing.assert_array_equal(ref["flip_back_ch1"], FLIP_BACK_CH1)
    np.testing.assert_array_equal(ref["after_shift_ch1"], AFTER_SHIFT_CH1)
    shifted = flip_heatmaps_back(torch.from_numpy(FLIP_INPUT)[None], [0, 2, 1])
    np.testing.assert_array_equal(shifted[0, 1].numpy(), ref["after_shift_ch1"])


def test_flip_back_twice_without_shift_is_identity():
    hm = torch.randn(2, 17, 8, 6)
    once = flip_heatmaps_back(hm, COCO17.flip_index, shift=False)
    twice = flip_heatmaps_back(once, COCO17.flip_index, shift=False)
    assert torch.equal(twice, hm)


def test_dark_blur_matches_opencv_zero_padded_gaussian_blur():
    cv2 = pytest.importorskip("cv2")
    from src.codecs.msra_heatmap import blur_preserving_max

    x = np.random.default_rng(5).uniform(size=(16, 12)).astype(np.float32)
    padded = np.pad(x, 5)
    expected = cv2.GaussianBlur(padded, (11, 11), 0)[5:-5, 5:-5]
    expected *= x.max() / expected.max()
    ours = blur_preserving_max(torch.from_numpy(x)[None, None], 11)[0, 0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert ours.max() == pytest.approx(x.max())


def test_fractional_flip_shift_aligns_unbiased_targets():
    """With sub-pixel targets the mirrored crop's map, flipped back, lies 1 - 1/stride columns left of
    the original; shift = 0.75 (stride 4) aligns it, the official one-column shift overshoots."""
    codec = MSRAHeatmap(input_size=(96, 128), heatmap_size=(24, 32), sigma=2, refine="dark", unbiased=True)
    rng = np.random.default_rng(0)
    joints = rng.uniform([20, 20], [76, 108], size=(17, 2)).astype(np.float32)
    visible = np.ones(17, np.float32)
    original, _ = codec.encode_heatmaps(joints, visible)
    mirrored_joints = joints.copy()
    mirrored_joints[:, 0] = 96 - 1 - joints[:, 0]
    identity = list(range(17))
    mirrored, _ = codec.encode_heatmaps(mirrored_joints, visible)
    want = codec.decode_heatmaps(torch.from_numpy(original)[None])[0][0]
    errors = {}
    for shift in (0.75, True, False):
        back = flip_heatmaps_back(torch.from_numpy(mirrored)[None], identity, shift=shift)
        errors[shift] = (codec.decode_heatmaps(back)[0][0] - want)[:, 0].abs().mean().item()
    assert errors[0.75] < 0.05
    assert errors[True] == pytest.approx(0.25, abs=0.05)
    assert errors[False] == pytest.approx(0.75, abs=0.05)
    with pytest.raises(ValueError, match="flip shift"):
        flip_heatmaps_back(torch.zeros(1, 17, 4, 4), identity, shift=1.5)


def test_decode_is_decode_heatmaps_in_input_pixels():
    heatmaps = torch.from_numpy(np.random.default_rng(3).uniform(size=(2, 4, 64, 48)).astype(np.float32))
    codec = make_codec("dark")
    coords, scores = codec.decode(heatmaps)
    raw, raw_scores = codec.decode_heatmaps(heatmaps)
    torch.testing.assert_close(coords, raw * torch.tensor([192 / 48, 256 / 64]))
    torch.testing.assert_close(scores, raw_scores)
