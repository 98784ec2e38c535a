"""SimCC label codec: mmpose 1.3.2's vectors, the drop and visibility rules, label smoothing, the flip
test, the contract (pairs, lists, shapes, accuracy, pictures), and the oracle's COCO AP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.codecs.simcc_label import SimCCLabel, shift_left
from src.eval import evaluate
from src.geometry import affine_transform_points
from src.layouts import COCO17
from tests.helpers import REAL_COCO, TINY_SYNTHETIC, compose_run, layout_real_coco

VECTORS_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "modern" / "algorithm_vectors_modern.json"
)

# algorithm_vectors_modern.json["a_simcc_label"] (RTMPose: 192x256, sigma (4.9, 5.66), r = 2).
# set_A: kp1 shows half-to-even rounding (20.5 -> 20, 41.5 -> 42); kp3 is slightly left of the crop
# (mu_x = -10, kept with a tail); kp4 far left (dropped); kp5 unlabelled.
SET_A_KEYPOINTS = [[96.0, 128.0], [10.25, 20.75], [191.600006, 255.399994], [-5.0, 100.0], [-20.0, 50.0], [50.0, 60.0]]
SET_A_VISIBLE = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
SET_A_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
SET_A_ARGMAX = [[192, 256], [20, 42], [383, 511], [0, 200], [0, 0], [0, 0]]
SET_A_SUM_X, SET_A_SUM_Y = 31.526102, 50.156303
KP3_X_FIRST4 = [0.124623, 0.080477, 0.049849, 0.029618]
# set_B instance 1: visibility 0.3 gives zero labels but keeps weight 0.3.
# decode: simcc[k, i] = a exp(-(i - c)^2 / 2 s^2) + b per spec (c, s, a, b).
DECODE_SPECS = [
    ((100.0, 3.0, 1.0, 0.0), (300.0, 4.0, 0.8, 0.0)),
    ((200.5, 2.0, 0.9, 0.0), (10.0, 2.0, 0.95, 0.0)),
    ((383.0, 5.0, 0.5, 0.1), (0.0, 5.0, 0.7, 0.1)),
    ((50.0, 3.0, 0.2, -0.5), (60.0, 3.0, 0.9, 0.0)),
]
DECODED = [[50.0, 150.0], [100.0, 5.0], [191.5, 0.0], [-0.5, -0.5]]
DECODED_SCORES = [0.8, 0.87231, 0.6, -0.3]


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())["a_simcc_label"]


def make_codec(**kw) -> SimCCLabel:
    kw = {"input_size": (192, 256), "sigma": (4.9, 5.66), "simcc_split_ratio": 2.0, "normalize": False, **kw}
    return SimCCLabel(**kw)


def encode_instances(codec: SimCCLabel, keypoints, visible) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, K, 2), (N, K) -> x (N, K, Lx), y (N, K, Ly), weights (N, K)."""
    out = [codec.encode(np.asarray(k, np.float32), np.asarray(v, np.float32)) for k, v in zip(keypoints, visible)]
    return tuple(np.stack([o[key] for o in out]) for key in codec.target_keys)


def as_prediction(labels: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One instance's encoded labels as a batched prediction (x (1, K, Lx), y (1, K, Ly))."""
    return torch.from_numpy(labels["keypoint_x_labels"])[None], torch.from_numpy(labels["keypoint_y_labels"])[None]


def decode_inputs(specs=DECODE_SPECS) -> tuple[torch.Tensor, torch.Tensor]:
    def curve(length: int, c: float, s: float, a: float, b: float) -> np.ndarray:
        i = np.arange(length, dtype=np.float32)
        return (a * np.exp(-((i - c) ** 2) / (2 * s**2)) + b).astype(np.float32)

    x = np.stack([curve(384, *sx) for sx, _ in specs])[None]
    y = np.stack([curve(512, *sy) for _, sy in specs])[None]
    return torch.from_numpy(x), torch.from_numpy(y)


# ---------------------------------------------------------------- encode


def test_encode_reproduces_mmpose_vectors_inline():
    x, y, weight = encode_instances(make_codec(), [SET_A_KEYPOINTS], [SET_A_VISIBLE])
    assert x.shape == (1, 6, 384) and y.shape == (1, 6, 512) and x.dtype == y.dtype == weight.dtype == np.float32
    np.testing.assert_array_equal(weight[0], SET_A_WEIGHTS)
    np.testing.assert_array_equal(np.stack([x[0].argmax(-1), y[0].argmax(-1)], -1), SET_A_ARGMAX)
    assert x.sum() == pytest.approx(SET_A_SUM_X, abs=1e-4) and y.sum() == pytest.approx(SET_A_SUM_Y, abs=1e-4)
    np.testing.assert_allclose(x[0, 3, :4], KP3_X_FIRST4, atol=1e-6)
    assert x[0, :3].max(-1).tolist() == [1.0, 1.0, 1.0]  # integer centres: peak exactly 1
    assert x[0, 4:].max() == 0 and y[0, 4:].max() == 0


def test_encode_reproduces_every_mmpose_vector(vectors):
    codec = make_codec()
    assert vectors["config"] == {
        "input_size": [192, 256],
        "sigma": [4.9, 5.66],
        "simcc_split_ratio": 2.0,
        "normalize": False,
        "use_dark": False,
    }
    for name, case in vectors["encode"].items():
        x, y, weight = encode_instances(codec, case["keypoints"], case["keypoints_visible"])
        assert list(x.shape) == case["target_x_shape"] and list(y.shape) == case["target_y_shape"], name
        assert str(x.dtype) == case["target_dtype"]
        np.testing.assert_allclose(weight, case["keypoint_weights"], atol=1e-7)
        assert x.sum() == pytest.approx(case["total_sum_x"], abs=1e-4) and y.sum() == pytest.approx(
            case["total_sum_y"], abs=1e-4
        )
        for ref in case["per_keypoint"]:
            n, k = ref["n"], ref["k"]
            where = f"{name} n={n} k={k}"
            mu = np.around(np.asarray(ref["keypoint"], np.float32) * np.float32(2.0)).astype(np.int64)
            assert mu.tolist() == ref["mu_split_int"], where
            for vec, axis in ((x[n, k], "x"), (y[n, k], "y")):
                assert vec.argmax() == ref[f"target_{axis}_argmax"], where
                assert vec.max() == pytest.approx(ref[f"target_{axis}_max"], abs=1e-6), where
                assert vec.sum() == pytest.approx(ref[f"target_{axis}_sum"], abs=2e-5), where
                peak = ref[f"target_{axis}_argmax"]
                for offset, value in ref[f"target_{axis}_at_argmax_offsets"].items():
                    i = peak + int(offset)
                    assert (0 <= i < len(vec)) == (value is not None), where
                    if value is not None:
                        assert vec[i] == pytest.approx(value, abs=1e-6), (where, axis, offset)
            np.testing.assert_allclose(x[n, k, :4], ref["target_x_first4"], atol=1e-6, err_msg=where)
            assert weight[n, k] == pytest.approx(ref["keypoint_weight"]), where


def test_visibility_below_half_gives_zero_labels_and_keeps_its_weight():
    x, y, weight = encode_instances(make_codec(), [[[191.0, 255.0], [100.0, 100.0]]], [[0.3, 0.5]])
    assert weight[0].tolist() == pytest.approx([0.3, 0.5])
    assert x[0, 0].max() == 0 and y[0, 0].max() == 0 and x[0, 1].max() == 1.0


@pytest.mark.parametrize(
    ("point", "kept"),
    [
        ((-7.0, 100.0), True),  # mu_x = -14, mu + 3 sigma + 1 = 1.7 >= 0: a tail is left
        ((-8.0, 100.0), False),  # mu_x = -16: -0.3 < 0
        ((100.0, 264.0), True),  # mu_y = 528, 528 - 16.98 < 512
        ((100.0, 265.0), False),  # mu_y = 530: 513.02 >= 512
    ],
)
def test_drop_rule_is_three_sigma_outside_the_bins(point, kept):
    x, y, weight = encode_instances(make_codec(), [[point]], [[1.0]])
    assert weight[0, 0] == float(kept)
    assert (x.max() > 0) == kept and (y.max() > 0) == kept


def test_normalize_and_standard_smoothing():
    point, vis = np.array([[40.0, 50.0]]), np.ones(1)
    plain = make_codec().encode(point, vis)
    normed = make_codec(normalize=True).encode(point, vis)
    np.testing.assert_allclose(
        normed["keypoint_x_labels"], plain["keypoint_x_labels"] / (4.9 * np.sqrt(2 * np.pi)), rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(
        normed["keypoint_y_labels"], plain["keypoint_y_labels"] / (5.66 * np.sqrt(2 * np.pi)), rtol=1e-6, atol=1e-12
    )
    smooth = make_codec(smoothing_type="standard", label_smooth_weight=0.1).encode(
        np.array([[40.0, 50.0], [-1.0, 5.0]]), np.ones(2)
    )
    x = smooth["keypoint_x_labels"]
    assert (
        x[0, 80] == pytest.approx(0.9)
        and x[0, 79] == pytest.approx(0.1 / 383)
        and x[0].sum() == pytest.approx(1.0, abs=1e-5)
    )
    assert smooth["target_weight"].tolist() == [1.0, 0.0] and x[1].max() == 0  # mu_x = -2: outside [0, 384)
    one_hot = make_codec(smoothing_type="standard").encode(np.array([[40.0, 50.0]]), np.ones(1))
    assert one_hot["keypoint_y_labels"][0, 100] == 1.0 and one_hot["keypoint_y_labels"].sum() == 1.0


def test_sigma_as_one_number_and_label_sizes():
    codec = SimCCLabel(input_size=(192, 256), sigma=6.0, simcc_split_ratio=2.0)
    assert codec.sigma == (6.0, 6.0) and codec.label_size == (384, 512)
    assert SimCCLabel(input_size=(10, 5), simcc_split_ratio=1.25).label_size == (12, 6)  # 12.5 -> 12, 6.25 -> 6


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"use_dark": True}, "use_dark"),
        ({"decode_visibility": True}, "decode_visibility"),
        ({"label_smooth_weight": 0.1}, "smoothing_type='standard'"),
        ({"smoothing_type": "standard", "label_smooth_weight": 1.5}, r"\[0, 1\]"),
        ({"smoothing_type": "laplace"}, "smoothing_type"),
        ({"sigma": (1.0, 2.0, 3.0)}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"simcc_split_ratio": 0.0}, "simcc_split_ratio"),
    ],
)
def test_unsupported_or_bad_settings_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        make_codec(**kw)


# ---------------------------------------------------------------- decode


def test_decode_reproduces_mmpose_vectors_inline():
    coords, scores = make_codec().decode(decode_inputs())
    assert coords.dtype == torch.float32 and coords.shape == (1, 4, 2) and scores.shape == (1, 4)
    np.testing.assert_allclose(coords[0].numpy(), DECODED)  # 200.5 ties: the first bin, 200
    np.testing.assert_allclose(scores[0].numpy(), DECODED_SCORES, atol=1e-5)


def test_decode_reproduces_every_mmpose_vector(vectors):
    ref = vectors["decode"]
    specs = [(tuple(s["x"]), tuple(s["y"])) for s in ref["specs"]]
    x, y = decode_inputs(specs)
    assert x.argmax(-1)[0].tolist() == ref["argmax_x"] and y.argmax(-1)[0].tolist() == ref["argmax_y"]
    coords, scores = make_codec().decode([x, y])  # a list, as exported networks return
    np.testing.assert_allclose(coords.numpy(), ref["decoded_keypoints"])
    np.testing.assert_allclose(scores.numpy(), ref["decoded_scores"], atol=1e-5)


def test_encode_decode_round_trip_is_the_half_even_rounding():
    codec = make_codec()
    rng = np.random.default_rng(0)
    points = rng.uniform(0, (191, 255), (17, 2)).astype(np.float32)
    labels = codec.encode(points, np.ones(17))
    coords, scores = codec.decode(as_prediction(labels))
    np.testing.assert_array_equal(coords[0].numpy(), np.around(points * 2) / 2)
    assert scores.min() == 1.0


# ---------------------------------------------------------------- flip test and the contract


def test_flip_back_of_mirrored_vectors_equals_the_unmirrored_prediction():
    """Reversing x bins mirrors x -> w - 1/r - x: labels of that mirror image flip back exactly."""
    codec = make_codec()
    rng = np.random.default_rng(1)
    points = (rng.integers(10, (370, 500), (17, 2)) / 2.0).astype(np.float32)
    mirrored = points[list(COCO17.flip_index)].copy()
    mirrored[:, 0] = 192 - 0.5 - mirrored[:, 0]
    original = codec.encode(points, np.ones(17))
    flipped = codec.encode(mirrored, np.ones(17))
    back = codec.flip_back(as_prediction(flipped), COCO17.flip_index, {})
    assert isinstance(back, tuple) and codec.evaluation_defaults == {"shift_simcc": False}
    torch.testing.assert_close(back, as_prediction(original), atol=1e-6, rtol=0)
    torch.testing.assert_close(codec.average(as_prediction(original), back), as_prediction(original))


def test_mirrored_crop_pixels_flip_back_half_a_pixel_right():
    """The crop mirrored pixel-wise (x -> w - 1 - x), as the flip test does: mmpose's flip_vectors
    leaves the x vector (r - 1) = 1 bin, 0.5 px, right of the original; y is untouched."""
    codec = make_codec()
    points = np.array([[40.0, 60.0], [150.0, 200.0]], np.float32)
    mirrored = points.copy()
    mirrored[:, 0] = 191 - points[:, 0]
    flipped = codec.encode(mirrored, np.ones(2))
    coords, _ = codec.decode(codec.flip_back(as_prediction(flipped), [0, 1], {}))
    np.testing.assert_allclose(coords[0].numpy(), points + [0.5, 0.0])


@pytest.mark.parametrize("ratio", [2.0, 2.5])
def test_shift_simcc_puts_the_mirrored_crop_back_on_the_original(ratio):
    """With shift_simcc the flipped-back x vector moves (r - 1) bins left: the mirrored crop's
    prediction peaks where the original's does (exactly for r = 2, by interpolation for r = 2.5)."""
    codec = make_codec(simcc_split_ratio=ratio)
    points = np.array([[40.0, 60.0], [150.0, 200.0]], np.float32)
    mirrored = points.copy()
    mirrored[:, 0] = 191 - points[:, 0]
    flipped = codec.encode(mirrored, np.ones(2))
    original = codec.encode(points, np.ones(2))
    back = codec.flip_back(as_prediction(flipped), [0, 1], {"shift_simcc": True})
    coords, _ = codec.decode(back)
    # the labels' centres are whole bins (round(x r)): at r = 2.5 each peak may sit a bin away
    np.testing.assert_allclose(coords[0].numpy(), points, atol=0 if ratio == 2.0 else 1 / ratio + 1e-5)
    unshifted, _ = codec.decode(codec.flip_back(as_prediction(flipped), [0, 1], {}))
    assert np.abs(coords[0].numpy() - points).max() < np.abs(unshifted[0].numpy() - points).max()
    if ratio == 2.0:  # a whole bin: the vectors themselves agree away from the last bin
        torch.testing.assert_close(back[0][..., :-1], as_prediction(original)[0][..., :-1], atol=1e-6, rtol=0)


def test_shift_left_whole_and_fractional_bins():
    v = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    assert torch.equal(shift_left(v, 0.0), v)
    assert torch.equal(shift_left(v, 1.0), torch.tensor([[1.0, 2.0, 3.0, 4.0, 4.0]]))
    assert torch.equal(shift_left(v, 2.0), torch.tensor([[2.0, 3.0, 4.0, 4.0, 4.0]]))
    torch.testing.assert_close(shift_left(v, 1.5), torch.tensor([[1.5, 2.5, 3.5, 4.0, 4.0]]))


def test_contract_shapes_prediction_checks_and_pictures():
    codec = make_codec(input_size=(48, 64))
    assert codec.output_shapes(17) == ((17, 96), (17, 128))
    x, y = torch.randn(2, 17, 96), torch.randn(2, 17, 128)
    assert codec.prediction([x, y]) == (x, y) and isinstance(codec.prediction([x, y]), tuple)
    codec.check_outputs([x, y], 17, "model 'rtmpose'")
    with pytest.raises(
        ValueError, match=r"\[\(2, 17, 192\), \(2, 17, 256\)\].*SimCCLabel.*\[\(N, 17, 96\), \(N, 17, 128\)\]"
    ):
        codec.check_outputs((torch.zeros(2, 17, 192), torch.zeros(2, 17, 256)), 17, "model 'rtmpose'")
    with pytest.raises(ValueError, match=r"model 'hrnet' outputs \(2, 17, 16, 12\).*SimCC vectors"):
        codec.check_outputs(torch.zeros(2, 17, 16, 12), 17, "model 'hrnet'")
    with pytest.raises(ValueError, match="pair of SimCC vectors"):
        codec.decode(x)
    picture = codec.picture(np.zeros((64, 48, 3), np.uint8), codec.one((x, y), 1))
    assert picture.shape == (64, 48, 3) and picture.dtype == np.uint8 and picture.any()
    with pytest.raises(ValueError, match="refine for SimCCLabel"):
        codec.set_refine("dark")


def test_accuracy_counts_only_weighted_joints():
    """Targets of invisible joints are zero vectors (decoded to -0.5) with weight 0: not counted."""
    codec = make_codec(input_size=(48, 64))
    rng = np.random.default_rng(2)
    points = rng.uniform(5, (43, 59), (2, 17, 2))
    visible = np.ones((2, 17), np.float32)
    visible[0, :5] = 0
    x, y, weight = encode_instances(codec, points, visible)
    batch = {
        "keypoint_x_labels": torch.from_numpy(x),
        "keypoint_y_labels": torch.from_numpy(y),
        "target_weight": torch.from_numpy(weight),
    }
    targets, weights = codec.loss_targets(batch)
    assert isinstance(targets, tuple) and weights.shape == (2, 17)
    assert codec.accuracy(targets, batch).item() == 1.0
    wrong = (targets[0].clone(), targets[1].clone())
    wrong[0][1] = wrong[0][1].flip(-1)  # instance 1's x mirrored: most of its joints move far
    bins = np.around(
        points[1, :, 0].astype(np.float32) * np.float32(2)
    )  # bin b decodes to b / 2, mirrored to (95 - b) / 2
    moved = (np.abs(47.5 - bins) >= 0.5 * 48 / 10).sum()
    assert codec.accuracy(wrong, batch).item() == pytest.approx((29 - moved) / 29)
    # the invisible joints' predictions do not matter
    junk = (targets[0].clone(), targets[1].clone())
    junk[0][0, :5] = torch.randn(5, 96)
    assert codec.accuracy(junk, batch).item() == 1.0


def test_decode_to_image_round_trips_through_the_crop():
    codec = make_codec()
    center, scale = np.array([[150.0, 90.0]]), np.array([[0.6, 0.8]])
    joints = np.array([[130.0, 70.0], [160.5, 101.25]])
    crop = affine_transform_points(joints, codec.crop_transform(center[0], scale[0], 0.0))
    prediction = as_prediction(codec.encode(crop, np.ones(2)))
    out = codec.decode_to_image(prediction, torch.from_numpy(center), torch.from_numpy(scale))
    assert out.shape == (1, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, :2], joints, atol=0.25 * 120 / 192 + 1e-4)  # half a bin in image pixels
    np.testing.assert_allclose(out[0, :, 2], 1.0)


# ---------------------------------------------------------------- the oracle: COCO AP without a network

ORACLE = [
    "oracle=true",
    "model=hrnet",
    "model/codec=simcc",
    "data.sigma=null",  # data.sigma is a heatmap sigma; SimCC's is in bins
    "num_visualized=0",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def oracle_ap(overrides: list[str], run_dir: Path, data_dir: Path) -> float:
    cfg = compose_run("eval", [*ORACLE, *overrides], run_dir, data_dir)
    assert cfg.model.codec.input_size == [192, 256] and cfg.model.codec.sigma == [4.9, 5.66]
    return evaluate(cfg)["oracle/AP"]


def test_oracle_on_synthetic_data(tmp_path, data_dir):
    assert oracle_ap(TINY_SYNTHETIC, tmp_path, data_dir) >= 0.99


@pytest.mark.skipif(not REAL_COCO.is_dir(), reason="../shared/data/real_samples is not present")
def test_oracle_on_the_real_coco_samples(tmp_path):
    layout_real_coco(tmp_path / "data" / "coco")
    assert oracle_ap(["data=coco"], tmp_path / "run", tmp_path / "data") >= 0.99
