"""The mmpose / RTMPose augmentation of top-down crops: draw semantics, keypoint consistency, the
photometric stage, stage-2 overrides, and the default (HRNet) path with the new config keys."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.stats import truncnorm

from src.codecs.msra_heatmap import MSRAHeatmap
from src.datasets.bbox_transform import BoxAugmentation, truncated_normal
from src.datasets.photometric import CropPhotometric, draw_hsv_gains, shift_hsv
from src.datasets.topdown import TopDownDataset
from src.geometry import box_xywh_to_center_scale, fix_aspect_ratio, get_affine_transform
from src.layouts import COCO17

ROOT = Path(__file__).resolve().parents[2]
#: RTMPose's stage-1 and stage-2 RandomBBoxTransform (recipe_facts.md, "Two-stage data pipeline").
STAGE1 = BoxAugmentation(scale_factor=(0.6, 1.4), rotate_factor=80.0)
STAGE2 = BoxAugmentation(shift_factor=0.0, scale_factor=(0.75, 1.25), rotate_factor=60.0)
#: Variance of N(0, 1) truncated to [-1, 1]: 1 - 2 phi(1) / (Phi(1) - Phi(-1)).
TRUNC_VAR = float(truncnorm.var(-1, 1))
UPPER, LOWER = COCO17.upper_body_ids, COCO17.lower_body_ids


# --------------------------------------------------------------------------- a synthetic person with coloured joints
IMAGE_W, IMAGE_H = 400, 360
BOX = (150.0, 80.0, 100.0, 200.0)  # x, y, w, h
#: 17 well-separated BGR colours (channels from {0, 128, 255}; mid-gray is the background's neighbour, left out).
COLOURS = np.array(
    [(b, g, r) for b in (0, 128, 255) for g in (0, 128, 255) for r in (0, 128, 255) if (b, g, r) != (128, 128, 128)][
        :17
    ],
    dtype=np.uint8,
)
JOINTS = np.array([(160.0 + 25 * (k % 4), 90.0 + 40 * (k // 4)) for k in range(17)], dtype=np.float32)


def person_image() -> np.ndarray:
    image = np.full((IMAGE_H, IMAGE_W, 3), 60, np.uint8)
    for (x, y), colour in zip(JOINTS, COLOURS):
        cv2.circle(image, (int(x), int(y)), 6, tuple(int(c) for c in colour), -1)
    return image


def person_record(*, bbox: bool = False, visible: np.ndarray | None = None) -> dict:
    center, scale = box_xywh_to_center_scale(BOX, aspect_ratio=0.75)
    record = {
        "sample_id": 0,
        "image_id": 1,
        "image_file": "person.png",
        "center": center,
        "scale": scale,
        "area": float(scale[0] * scale[1]) * 200.0**2,
        "box_score": 1.0,
        "keypoints": JOINTS.copy(),
        "visible": np.ones(17, np.float32) if visible is None else visible,
    }
    if bbox:
        record["bbox"] = np.array(BOX, np.float32)
    return record


class CropPoints:
    """A codec whose target is the crop keypoints themselves: exact, for geometry checks."""

    def __init__(self, input_size: tuple[int, int]) -> None:
        self.input_size = input_size

    def crop_transform(self, center: np.ndarray, scale: np.ndarray, rotation: float) -> np.ndarray:
        return get_affine_transform(center, scale, rotation, self.input_size)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        return {"points": np.asarray(keypoints, np.float32), "target_weight": np.asarray(visible, np.float32)}


def person_dataset(records: list[dict] | None = None, **augmentation) -> TopDownDataset:
    return TopDownDataset(
        records or [person_record()],
        codec=CropPoints((96, 128)),
        keypoint_info=COCO17,
        training=True,
        color_rgb=False,
        seed=3,
        images={"person.png": person_image()},
        normalize_on_device=True,  # uint8 crops in the items
        **augmentation,
    )


# --------------------------------------------------------------------------- draw semantics
def test_truncated_normal_is_scipys_truncnorm_on_minus_one_one() -> None:
    draws = truncated_normal(np.random.default_rng(0), 20000)
    assert draws.dtype == np.float32 and draws.min() >= -1 and draws.max() <= 1
    grid = np.linspace(-1, 1, 21)
    empirical = (draws[None, :] <= grid[:, None]).mean(axis=1)
    assert np.abs(empirical - truncnorm.cdf(grid, -1, 1)).max() < 0.012  # KS distance; 5% critical ~0.0096
    assert abs(draws.mean()) < 0.015 and draws.var() == pytest.approx(TRUNC_VAR, rel=0.03)


def _draws(box: BoxAugmentation, n: int, *, size=(100.0, 200.0), visible=None, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    vis = np.zeros(17) if visible is None else visible
    return [
        box.draw(
            rng,
            joints=JOINTS,
            visible=vis,
            center=np.array([200.0, 180.0]),
            size=np.array(size),
            upper_ids=UPPER,
            lower_ids=LOWER,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize(("box", "low", "high", "max_rotation"), [(STAGE1, 0.6, 1.4, 80.0), (STAGE2, 0.75, 1.25, 60.0)])
def test_shift_scale_rotation_draws(box, low, high, max_rotation) -> None:
    n = 4000
    draws = _draws(box, n)
    flipped = np.array([d.flipped for d in draws])
    center = np.array([d.center for d in draws])
    ratio = np.array([d.size for d in draws]) / np.array([100.0, 200.0])
    rotation = np.array([d.rotation for d in draws])
    tol = 4 * np.sqrt(0.25 / n)  # four binomial standard deviations
    assert abs(flipped.mean() - 0.5) < tol
    assert not any(d.half_body for d in draws)  # no visible keypoints: no half body
    # isotropic scale in [low, high], always applied (scale_prob 1), truncated normal about the middle
    np.testing.assert_allclose(ratio[:, 0], ratio[:, 1], rtol=1e-6)
    assert ratio.min() >= low - 1e-6 and ratio.max() <= high + 1e-6
    assert (ratio[:, 0] != 1).all()
    t = (ratio[:, 0] - (low + high) / 2) / ((high - low) / 2)
    assert abs(t.mean()) < 0.03 and t.var() == pytest.approx(TRUNC_VAR, rel=0.08)
    # rotation: probability 0.6, |r| <= rotate_factor, r / rotate_factor truncated normal
    rotated = rotation != 0
    assert abs(rotated.mean() - 0.6) < tol
    assert np.abs(rotation).max() <= max_rotation + 1e-4
    assert (rotation[rotated] / max_rotation).var() == pytest.approx(TRUNC_VAR, rel=0.08)
    # shift: probability 0.3 of a move of at most 0.16 of the (unscaled) size per axis; none in stage 2
    moved = (center != [200.0, 180.0]).any(axis=1)
    if box.shift_factor == 0:
        assert not moved.any()
        return
    assert abs(moved.mean() - 0.3) < tol
    offset = (center[moved] - [200.0, 180.0]) / (0.16 * np.array([100.0, 200.0]))
    assert np.abs(offset).max() <= 1 + 1e-5 and np.abs(offset).max() > 0.95
    assert offset.var(axis=0) == pytest.approx([TRUNC_VAR, TRUNC_VAR], rel=0.15)


def test_probabilities_of_zero_and_one() -> None:
    never = BoxAugmentation(flip_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
    assert all(
        not d.flipped and d.rotation == 0 and (d.size == [100, 200]).all() and (d.center == [200, 180]).all()
        for d in _draws(never, 200)
    )
    always = BoxAugmentation(flip_prob=1.0, shift_prob=1.0, rotate_prob=1.0)
    draws = _draws(always, 200)
    assert all(d.flipped and d.rotation != 0 for d in draws)
    assert all((d.center != [200, 180]).all() for d in draws)


def test_mirrored_sample_is_shifted_after_the_mirror_as_mmpose() -> None:
    """mmpose mirrors the box centre (x <- W - 1 - x) and then adds the shift; our draw is in the
    unmirrored image, so mirroring its centre must give exactly that."""
    box = BoxAugmentation(flip_prob=1.0, shift_prob=1.0, scale_prob=0.0, rotate_prob=0.0)
    center, size, width = np.array([120.0, 90.0]), np.array([80.0, 160.0]), 400
    for seed in range(20):
        draw = box.draw(
            np.random.default_rng(seed),
            joints=JOINTS,
            visible=np.zeros(17),
            center=center,
            size=size,
            upper_ids=UPPER,
            lower_ids=LOWER,
        )
        rng = np.random.default_rng(seed)
        assert rng.random() < 1.0  # the flip draw
        t = truncated_normal(rng, 4)
        mmpose = np.array([width - 1 - center[0], center[1]]) + t[:2] * np.float32(0.16) * size
        ours = np.array([width - 1 - draw.center[0], draw.center[1]])
        np.testing.assert_allclose(ours, mmpose, rtol=0, atol=1e-4)


def test_half_body_choice_and_box() -> None:
    box = BoxAugmentation(half_body_prob=1.0)
    rng = np.random.default_rng(0)
    all_visible = np.ones(17)
    chosen = [box.half_body(rng, JOINTS, all_visible, UPPER, LOWER) for _ in range(3000)]
    upper_center, upper_size = JOINTS[list(UPPER)].mean(0), np.ptp(JOINTS[list(UPPER)], 0) * 1.5
    lower_center, lower_size = JOINTS[list(LOWER)].mean(0), np.ptp(JOINTS[list(LOWER)], 0) * 1.5
    is_upper = [np.allclose(c, upper_center) for c, _ in chosen]
    assert abs(np.mean(is_upper) - 0.7) < 4 * np.sqrt(0.21 / 3000)  # upper_prioritized_prob
    for (c, s), up in zip(chosen[:50], is_upper):
        np.testing.assert_allclose(s, upper_size if up else lower_size, rtol=1e-6)
        if not up:
            np.testing.assert_allclose(c, lower_center, rtol=1e-6)
    # probability 0.3 with mmpose's defaults
    default = BoxAugmentation()
    applied = [default.half_body(rng, JOINTS, all_visible, UPPER, LOWER) is not None for _ in range(3000)]
    assert abs(np.mean(applied) - 0.3) < 4 * np.sqrt(0.21 / 3000)
    # fewer than 9 visible keypoints: never
    eight = np.zeros(17)
    eight[:8] = 1
    assert all(box.half_body(rng, JOINTS, eight, UPPER, LOWER) is None for _ in range(100))
    # only 2 visible lower keypoints (< 3): always the upper half; only 1 upper (< 2): always the lower half
    vis = np.ones(17)
    vis[list(LOWER)[2:]] = 0
    assert all(np.allclose(box.half_body(rng, JOINTS, vis, UPPER, LOWER)[0], upper_center) for _ in range(100))
    vis = np.ones(17)
    vis[list(UPPER)[1:]] = 0  # 1 upper + 6 lower = 7 < 9: nothing
    assert box.half_body(rng, JOINTS, vis, UPPER, LOWER) is None
    relaxed = BoxAugmentation(half_body_prob=1.0, min_total_keypoints=5)
    lows = [relaxed.half_body(rng, JOINTS, vis, UPPER, LOWER)[0] for _ in range(100)]
    assert all(np.allclose(c, lower_center) for c in lows)
    # both halves short: nothing; the visible keypoints only make the box
    vis = np.zeros(17)
    vis[[0, 11, 12]] = 1
    assert BoxAugmentation(half_body_prob=1.0, min_total_keypoints=3).half_body(rng, JOINTS, vis, UPPER, LOWER) is None
    vis = np.zeros(17)
    vis[[0, 1, 5, 11, 12, 13]] = 1
    c, s = BoxAugmentation(half_body_prob=1.0, min_total_keypoints=6, upper_prioritized_prob=1.0).half_body(
        rng, JOINTS, vis, UPPER, LOWER
    )
    np.testing.assert_allclose(c, JOINTS[[0, 1, 5]].mean(0), rtol=1e-6)
    np.testing.assert_allclose(s, np.ptp(JOINTS[[0, 1, 5]], 0) * 1.5, rtol=1e-6)


def test_aspect_ratio_fix_is_topdown_affines() -> None:
    np.testing.assert_allclose(fix_aspect_ratio(np.array([60.0, 200.0]), 0.75), [150.0, 200.0])
    np.testing.assert_allclose(fix_aspect_ratio(np.array([300.0, 200.0]), 0.75), [300.0, 400.0])
    np.testing.assert_allclose(fix_aspect_ratio(np.array([150.0, 200.0]), 0.75), [150.0, 200.0])


def test_config_is_checked_with_clear_messages() -> None:
    assert BoxAugmentation.from_config(None, where="x") == BoxAugmentation()
    with pytest.raises(ValueError, match=r"TopDownDataset: mmpose: unknown keys \['rotation_factor'\]"):
        person_dataset(geometric="mmpose", mmpose={"rotation_factor": 40})
    with pytest.raises(ValueError, match="mmpose: scale_factor needs 0 < low <= high"):
        person_dataset(geometric="mmpose", mmpose={"scale_factor": [1.4, 0.6]})
    with pytest.raises(ValueError, match="mmpose: shift_prob is a probability"):
        person_dataset(geometric="mmpose", mmpose={"shift_prob": 1.3})
    with pytest.raises(ValueError, match=r"geometric must be one of \['hrnet', 'mmpose'\]"):
        person_dataset(geometric="mmdet")
    with pytest.raises(ValueError, match=r"crop_photometric: unknown keys \['max_holes'\]"):
        person_dataset(crop_photometric={"max_holes": 1})
    with pytest.raises(ValueError, match="crop_photometric: dropout_height / dropout_width are fractions"):
        person_dataset(crop_photometric={"dropout_height": [0.2, 1.0]})
    with pytest.raises(ValueError, match=r"unknown stage2 keys \['photometric'\]"):
        person_dataset(stage2={"photometric": None})
    with pytest.raises(ValueError, match=r"stage2.rotation_prob is a probability"):
        person_dataset(stage2={"rotation_prob": 2.0})
    with pytest.raises(ValueError, match=r"stage2.mmpose: scale_factor is a \(low, high\) pair"):
        person_dataset(stage2={"mmpose": {"scale_factor": 0.5}})


# --------------------------------------------------------------------------- the crops
def test_mmpose_crops_keep_keypoints_on_their_pixels() -> None:
    """Strong mmpose augmentation (flip, half body, shift, scale, rotation all frequent): every
    keypoint target inside the crop sits on its joint's colour (the mirrored joint when flipped)."""
    ds = person_dataset(
        geometric="mmpose",
        mmpose=dict(half_body_prob=0.5, shift_prob=1.0, scale_factor=[0.6, 1.4], rotate_prob=1.0, rotate_factor=80),
    )
    flip_index = np.asarray(COCO17.flip_index)
    checked, flips, scales = 0, 0, set()
    for epoch in range(40):
        item = ds[(0, epoch)]
        crop = item["image"].permute(1, 2, 0).numpy()
        flipped = not np.allclose(item["joints"][:, :2].numpy(), JOINTS)
        flips += flipped
        scales.add(round(float(item["scale"][0]), 4))
        for k, (x, y) in enumerate(item["points"].numpy()):
            col, row = int(round(x)), int(round(y))
            if not (0 <= col < 96 and 0 <= row < 128):
                continue
            nearest = np.abs(COLOURS.astype(int) - crop[row, col].astype(int)).sum(1).argmin()
            assert nearest == (flip_index[k] if flipped else k), (epoch, k)
            checked += 1
    assert checked > 300 and 8 < flips < 32 and len(scales) > 30


def test_shift_is_a_fraction_of_the_box_before_the_aspect_fix_when_records_have_it() -> None:
    """mmpose shifts by a fraction of the padded box (1.25 w, 1.25 h); the aspect fix comes later."""
    only_shift = dict(
        geometric="mmpose", mmpose=dict(flip_prob=0, half_body_prob=0, shift_prob=1.0, scale_prob=0, rotate_prob=0)
    )
    for bbox, expected_w in ((True, 1.25 * 100.0), (False, 1.25 * 150.0)):  # aspect-fixed: 100 x 200 -> 150 x 200
        ds = person_dataset([person_record(bbox=bbox)], **only_shift)
        dx = np.array([float(ds[(0, e)]["center"][0]) for e in range(300)]) - (150 + 50)
        assert np.abs(dx).max() <= 0.16 * expected_w + 1e-3 and np.abs(dx).max() > 0.9 * 0.16 * expected_w
        np.testing.assert_allclose(ds[(0, 0)]["scale"].numpy(), person_record()["scale"], rtol=1e-6)


def test_default_is_hrnet_and_the_config_keys_change_nothing() -> None:
    """The data configs' augmentation blocks (with the new keys at their defaults) give the same
    items, bit for bit, as the HRNet keys alone."""
    rec = person_record(visible=np.r_[np.ones(14), np.zeros(3)].astype(np.float32))
    codec = MSRAHeatmap(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0, refine="none")
    old = ("scale_factor", "rotation_factor", "rotation_prob", "flip", "half_body_prob", "half_body_min_joints")
    for name in ("coco", "mpii"):
        block = OmegaConf.load(ROOT / "conf" / "data" / f"{name}.yaml").augmentation
        TopDownDataset.check_augmentation(block)
        assert block.geometric == "hrnet" and block.crop_photometric is None and block.stage2 is None
        assert BoxAugmentation.from_config(block.mmpose, where=name) == BoxAugmentation()  # mmpose's defaults
        full = {k: v for k, v in block.items() if k != "photometric"}
        common = dict(codec=codec, keypoint_info=COCO17, training=True, seed=11, images={"person.png": person_image()})
        a = TopDownDataset([rec, rec], **common, **full)
        b = TopDownDataset([rec, rec], **common, **{k: block[k] for k in old})
        assert a.geometric == "hrnet" and not a.has_stage2
        for key in [(0, 0), (1, 0), (0, 5), (1, 9), 0, 1]:
            x, y = a[key], b[key]
            for field in x:
                assert torch.equal(x[field], y[field]), (name, key, field)


# --------------------------------------------------------------------------- the photometric stage
def test_hsv_gains_are_drawn_and_truncated_as_mmdet() -> None:
    rng = np.random.default_rng(0)
    gains = np.array([draw_hsv_gains(rng, (5, 30, 30)) for _ in range(20000)])
    assert gains.dtype == np.int16
    assert np.abs(gains).max(0).tolist() == [4, 29, 29]  # |U(-1, 1) * delta| < delta, truncated toward 0
    # zero: switched off (1/2) or |u delta| < 1 (1/delta of the rest)
    np.testing.assert_allclose((gains == 0).mean(0), [0.5 + 0.5 / 5, 0.5 + 0.5 / 30, 0.5 + 0.5 / 30], atol=0.012)


def test_hsv_shift_in_opencv_ranges() -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255  # BGR pure red: H 0, S 255, V 255
    out = shift_hsv(red, np.array([-5, 0, 0], np.int16))  # hue wraps to 175 (350 degrees)
    assert (out[..., 2] == 255).all() and (out[..., 1] == 0).all() and set(np.unique(out[..., 0])) <= {42, 43}
    assert cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[0, 0, 0] == 175
    gray = np.full((4, 4, 3), 100, np.uint8)
    np.testing.assert_array_equal(shift_hsv(gray, np.array([3, -30, 0], np.int16)), gray)  # S = 0 clips at 0
    white = np.full((4, 4, 3), 250, np.uint8)
    assert (shift_hsv(white, np.array([0, 0, 29], np.int16)) == 255).all()  # V clips at 255
    np.testing.assert_array_equal(shift_hsv(white, np.array([0, 0, -50], np.int16)), np.full((4, 4, 3), 200, np.uint8))


def test_dropout_blur_and_median_blur() -> None:
    image = np.full((128, 96, 3), 200, np.uint8)
    dropout = CropPhotometric(hue_delta=0, saturation_delta=0, value_delta=0, blur_prob=0, median_blur_prob=0)
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(100):
        out = dropout(image, rng)
        rows, cols = np.nonzero((out == 0).all(2))
        assert ((out == 0).all(2) | (out == 200).all(2)).all()  # one hole of zeros, the rest untouched
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h * w == len(rows)  # a rectangle
        assert int(0.2 * 128) <= h <= int(0.4 * 128) and int(0.2 * 96) <= w <= int(0.4 * 96)
        sizes.append((h, w))
    assert len(set(sizes)) > 20
    half = CropPhotometric(
        hue_delta=0, saturation_delta=0, value_delta=0, blur_prob=0, median_blur_prob=0, dropout_prob=0.5
    )
    holes = np.mean([(half(image, rng) == 0).any() for _ in range(400)])
    assert abs(holes - 0.5) < 0.1
    checker = (np.indices((128, 96)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    blur = CropPhotometric(
        hue_delta=0, saturation_delta=0, value_delta=0, blur_prob=1.0, median_blur_prob=0, dropout_prob=0
    )
    assert np.abs(blur(checker, rng).astype(int) - 127).max() < 70  # a box filter of 3, 5 or 7 averages it out
    salt = image.copy()
    salt[::7, ::5] = 0
    median = CropPhotometric(
        hue_delta=0, saturation_delta=0, value_delta=0, blur_prob=0, median_blur_prob=1.0, dropout_prob=0
    )
    np.testing.assert_array_equal(median(salt, rng), image)  # isolated specks removed
    same = CropPhotometric()
    np.testing.assert_array_equal(same(checker, np.random.default_rng(5)), same(checker, np.random.default_rng(5)))


def test_photometric_stage_changes_pixels_never_keypoints() -> None:
    geometry = dict(geometric="mmpose", mmpose=dict(rotate_prob=1.0))
    plain = person_dataset(**geometry)
    coloured = person_dataset(**geometry, crop_photometric=dict(hue_delta=5, saturation_delta=30, value_delta=30))
    changed = 0
    for epoch in range(10):
        a, b = plain[(0, epoch)], coloured[(0, epoch)]
        for key in ("points", "target_weight", "center", "scale", "joints"):
            assert torch.equal(a[key], b[key]), key
        changed += not torch.equal(a["image"], b["image"])
    assert changed >= 8


# --------------------------------------------------------------------------- stages
def test_stage2_merges_into_stage1_and_applies_by_epoch() -> None:
    ds = person_dataset(
        geometric="mmpose",
        mmpose=dict(scale_factor=[0.6, 1.4], rotate_factor=80),
        crop_photometric=dict(dropout_prob=1.0),
        stage2=dict(
            mmpose=dict(shift_factor=0.0, scale_factor=[0.75, 1.25], rotate_factor=60),
            crop_photometric=dict(dropout_prob=0.5),
        ),
    )
    one, two = ds.augmentation_stage(1), ds.augmentation_stage(2)
    assert one.mmpose == STAGE1 and two.mmpose == STAGE2
    assert one.crop_photometric.dropout_prob == 1.0 and two.crop_photometric.dropout_prob == 0.5
    assert two.crop_photometric.deltas == (5.0, 30.0, 30.0) and two.crop_photometric.blur_prob == 0.1
    assert ds.stage == 1 and ds.stage_of(100) == 1 and ds.stage_of(None) == 1
    ds.set_stage2_epoch(3)
    assert [ds.stage_of(e) for e in range(5)] == [1, 1, 1, 2, 2] and ds.stage_of(None) == 1
    ds.stage = 2
    assert ds.stage_of(None) == 2 and ds.stage_of(0) == 1
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        ds.set_stage2_epoch(-1)
    # stage 2 acts on the items of its epochs only: no shift, scale within 0.75..1.25
    ds = person_dataset(
        geometric="mmpose",
        mmpose=dict(flip_prob=0.0, half_body_prob=0.0, scale_factor=[0.6, 1.4], rotate_factor=80),
        stage2=dict(mmpose=dict(shift_factor=0.0, scale_factor=[0.75, 1.25], rotate_factor=60)),
    )
    ds.set_stage2_epoch(20)
    record = person_record()
    items = [ds[(0, e)] for e in range(40)]
    ratio = np.array([float(item["scale"][0]) / record["scale"][0] for item in items])
    moved = np.array([not np.allclose(item["center"].numpy(), record["center"]) for item in items])
    assert ((ratio[:20] < 0.75) | (ratio[:20] > 1.25)).any() and moved[:20].any()  # stage 1
    assert ((ratio[20:] >= 0.75 - 1e-5) & (ratio[20:] <= 1.25 + 1e-5)).all() and not moved[20:].any()  # stage 2
    # any key may change, the geometric choice too
    other = person_dataset(geometric="mmpose", stage2=dict(geometric="hrnet"))
    assert other.augmentation_stage(2).geometric == "hrnet" and other.augmentation_stage(1).geometric == "mmpose"
    single = person_dataset()
    assert not single.has_stage2
    with pytest.raises(ValueError, match="no stage-2 augmentation to switch to; set data.augmentation.stage2"):
        single.set_stage2_epoch(3)
    with pytest.raises(ValueError, match="there is no augmentation stage 2"):
        single.stage = 2
