"""HigherHRNet target generators against the official vectors and the official per-joint loops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.codecs.bottomup_targets import HeatmapGenerator, JointsGenerator, gaussian_kernel, scale_aware_sigmas

VECTORS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "algorithm_vectors.json"

# algorithm_vectors.json["higher_targets"]: sigma 2, joint (10.7, 20.2) in output pixels.
JOINT_XY = (10.7, 20.2)
KERNEL_SHAPE = (15, 15)
PEAK_RC = (20, 10)
SUPPORT_ROWS = (13, 27)  # inclusive
SUPPORT_COLS = (3, 17)
VALUE_PEAK_PLUS_1_COL = 0.8824968934059143
VALUE_PEAK_PLUS_3_COL = 0.32465246319770813
# joint 0 at (10.7, 20.2) on the 128 x 128 tag maps: 0 * 128^2 + 20 * 128 + 10 = 2570.
JOINTS_FIRST_ENTRY = (2570, 1)


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text())["higher_targets"]


def one_joint(k: int = 0, num_joints: int = 17) -> np.ndarray:
    joints = np.zeros((1, num_joints, 3))
    joints[0, k] = (*JOINT_XY, 1)
    return joints


def official_heatmaps(joints: np.ndarray, size: int, num_joints: int, sigma: float | None) -> np.ndarray:
    """The official loop (restated from the facts; slow). sigma None: per person from joints[m, 0, 3]."""
    hms = np.zeros((num_joints, size, size), dtype=np.float32)
    for person in joints:
        s = person[0, 3] if sigma is None else sigma
        g = gaussian_kernel(s)
        for k, pt in enumerate(person):
            if pt[2] <= 0:
                continue
            x, y = int(pt[0]), int(pt[1])
            if x < 0 or y < 0 or x >= size or y >= size:
                continue
            ul = int(np.round(x - 3 * s - 1)), int(np.round(y - 3 * s - 1))
            br = int(np.round(x + 3 * s + 2)), int(np.round(y + 3 * s + 2))
            c, d = max(0, -ul[0]), min(br[0], size) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], size) - ul[1]
            cc, dd = max(0, ul[0]), min(br[0], size)
            aa, bb = max(0, ul[1]), min(br[1], size)
            hms[k, aa:bb, cc:dd] = np.maximum(hms[k, aa:bb, cc:dd], g[a:b, c:d])
    return hms


def official_joints(joints: np.ndarray, max_people: int, size: int, tag_per_joint: bool = True) -> np.ndarray:
    out = np.zeros((max_people, joints.shape[1], 2))
    for i, person in enumerate(joints[:max_people]):
        tot = 0
        for k, pt in enumerate(person):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] > 0 and 0 <= x < size and 0 <= y < size:
                out[i, tot] = (k * size**2 + y * size + x if tag_per_joint else y * size + x, 1)
                tot += 1
    return out


def random_joints(rng: np.random.Generator, people: int, size: int, num_joints: int = 17) -> np.ndarray:
    """People partly outside the map, some unlabelled joints, a few joints near -0.5 (int() -> 0)."""
    xy = rng.uniform(-12, size + 12, (people, num_joints, 2))
    xy[rng.random((people, num_joints)) < 0.05] = -0.5
    v = (rng.random((people, num_joints, 1)) < 0.8) * rng.integers(1, 3, (people, num_joints, 1))
    return np.concatenate([xy, v], axis=-1)


# --------------------------------------------------------------------------- official vectors


def test_heatmap_vector() -> None:
    hm = HeatmapGenerator(output_size=128, num_joints=17, sigma=2)(one_joint())
    assert hm.shape == (17, 128, 128) and hm.dtype == np.float32
    assert gaussian_kernel(2).shape == KERNEL_SHAPE and gaussian_kernel(2)[7, 7] == 1.0
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == PEAK_RC and hm[0][PEAK_RC] == 1.0
    rows, cols = np.nonzero(hm[0])
    assert (rows.min(), rows.max()) == SUPPORT_ROWS and (cols.min(), cols.max()) == SUPPORT_COLS
    assert len(rows) == 15 * 15
    assert hm[0, PEAK_RC[0], PEAK_RC[1] + 1] == np.float32(VALUE_PEAK_PLUS_1_COL)
    assert hm[0, PEAK_RC[0], PEAK_RC[1] + 3] == np.float32(VALUE_PEAK_PLUS_3_COL)
    assert not hm[1:].any()


def test_joints_vector() -> None:
    gen = JointsGenerator(max_num_people=30, num_joints=17, output_size=128)
    out = gen(one_joint())
    assert out.shape == (30, 17, 2) and out.dtype == np.int64
    assert tuple(out[0, 0]) == JOINTS_FIRST_ENTRY
    assert not out[0, 1:].any() and not out[1:].any()
    # the same joint at the 256 resolution, and as joint 2 (packed to slot 0)
    assert tuple(JointsGenerator(max_num_people=30, num_joints=17, output_size=256)(one_joint())[0, 0]) == (5130, 1)
    assert tuple(gen(one_joint(k=2))[0, 0]) == (2 * 128**2 + 2570, 1)


def test_vectors_match_reference_json(vectors: dict) -> None:
    assert tuple(vectors["kernel_shape_sigma2"]) == KERNEL_SHAPE
    assert tuple(vectors["joint_xy"]) == JOINT_XY and tuple(vectors["peak_rc"]) == PEAK_RC
    assert tuple(vectors["support_rows"]) == SUPPORT_ROWS and tuple(vectors["support_cols"]) == SUPPORT_COLS
    assert vectors["value_at_peak+1col"] == VALUE_PEAK_PLUS_1_COL
    assert vectors["value_at_peak+3col"] == VALUE_PEAK_PLUS_3_COL
    assert tuple(vectors["joints_generator_first_entry"]) == JOINTS_FIRST_ENTRY


# --------------------------------------------------------------------------- equal to the official loops


@pytest.mark.parametrize("size", [128, 256])
def test_heatmaps_equal_official_loop(size: int) -> None:
    rng = np.random.default_rng(size)
    joints = random_joints(rng, 30, size)
    joints[1, :, :2] = joints[0, :, :2] + rng.uniform(-3, 3, (17, 2))  # overlapping people: max-merge
    gen = HeatmapGenerator(output_size=size, num_joints=17, sigma=2)
    np.testing.assert_array_equal(gen(joints), official_heatmaps(joints, size, 17, 2))


def test_heatmaps_border_and_truncation() -> None:
    gen = HeatmapGenerator(output_size=32, num_joints=2, sigma=2)
    joints = np.array([[[-0.5, 31.9, 1], [32.0, 5, 1]]])  # int(-0.5) = 0 is inside; x = 32 is outside
    hm = gen(joints)
    assert hm[0, 31, 0] == 1.0 and hm[0, 24:, :8].astype(bool).all() and not hm[1].any()
    np.testing.assert_array_equal(hm, official_heatmaps(joints, 32, 2, 2))
    assert not gen(np.zeros((0, 2, 3))).any()
    assert not gen(np.array([[[5, 5, 0], [6, 6, 0]]])).any()


def test_scale_aware_sigma_equals_official_loop() -> None:
    rng = np.random.default_rng(1)
    joints = random_joints(rng, 12, 64)
    boxes = np.concatenate([rng.uniform(0, 100, (12, 2)), rng.uniform(40, 400, (12, 2))], axis=1)
    for int_sigma in (False, True):
        sigmas = scale_aware_sigmas(boxes, int_sigma=int_sigma) / rng.uniform(0.75, 1.5)
        with_sigma = np.concatenate([joints, np.broadcast_to(sigmas[:, None, None], (12, 17, 1))], axis=-1)
        gen = HeatmapGenerator(output_size=64, num_joints=17, sigma=2, scale_aware_sigma=True)
        np.testing.assert_array_equal(gen(with_sigma), official_heatmaps(with_sigma, 64, 17, None))
    assert scale_aware_sigmas(np.array([[0, 0, 128, 64]]))[0] == 1.0
    assert scale_aware_sigmas(np.array([[0, 0, 100, 300]]), int_sigma=True)[0] == 3.0  # round(2.34 + .5)
    with pytest.raises(ValueError, match="column 3"):
        HeatmapGenerator(output_size=64, num_joints=17, sigma=2, scale_aware_sigma=True)(joints)


@pytest.mark.parametrize("tag_per_joint", [True, False])
def test_joints_equal_official_loop(tag_per_joint: bool) -> None:
    rng = np.random.default_rng(2)
    for people, size in ((30, 128), (5, 256), (0, 128), (34, 64)):  # 34 > max: the first 30 are kept
        joints = random_joints(rng, people, size)
        gen = JointsGenerator(max_num_people=30, num_joints=17, output_size=size, tag_per_joint=tag_per_joint)
        np.testing.assert_array_equal(gen(joints), official_joints(joints, 30, size, tag_per_joint))
