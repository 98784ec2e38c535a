"""BottomUpDataset: masks, heatmap / tag targets, affine, flip, determinism, workers, validation items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from src.codecs.associative_embedding import AssociativeEmbedding
from src.datasets.bottomup import BottomUpDataset, bottomup_affine, collate_bottomup_val
from src.datasets.transforms import normalize_image
from src.geometry import get_affine_transform
from src.layouts import COCO17
from src.readers.coco_images import load_coco_images
from src.readers.images import read_image
from tests.data.tiny_coco_bottomup import ALL_IDS, SIZES, expected_ignore, expected_joints, make_bottomup_coco

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real_samples" / "coco"
NO_AUG = dict(min_scale=1.0, max_scale=1.0, max_rotation=0.0, max_translate=0.0, flip=0.0)
FLIP_INDEX = np.asarray(COCO17.flip_index)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_bottomup_coco(tmp_path_factory.mktemp("bottomup")).parent.parent


def _records(root: Path, training: bool) -> list[dict]:
    return load_coco_images(
        root / "annotations" / "person_keypoints.json", root / "images", keypoint_info=COCO17, training=training
    )


@pytest.fixture(scope="module")
def records(root) -> dict[int, dict]:
    return {r["image_id"]: r for r in _records(root, training=True)}


CODEC_KEYS = ("input_size", "output_sizes", "sigma", "max_num_people", "tag_per_joint", "scale_aware_sigma")


def _dataset(recs: list[dict], **kw) -> BottomUpDataset:
    kw.setdefault("training", True)
    kw.setdefault("input_size", 128)
    kw.setdefault("output_sizes", (64, 128))
    codec = AssociativeEmbedding(**{k: kw.pop(k) for k in CODEC_KEYS if k in kw})
    return BottomUpDataset(recs, codec=codec, keypoint_info=COCO17, **kw)


def _expected(joints: np.ndarray, mat: np.ndarray, res: int, flipped: bool) -> list[tuple[int, int, int, int]]:
    """(person, channel, x, y) of every joint that must be drawn: v > 0 and int() position inside."""
    out = []
    for m, person in enumerate(joints):
        for k, (x, y, v) in enumerate(person):
            xo, yo = mat @ np.array([x, y, 1.0])
            ch = k
            if flipped:
                xo, ch = res - 1 - xo, int(FLIP_INDEX[k])
            xi, yi = int(xo), int(yo)
            if v > 0 and 0 <= xi < res and 0 <= yi < res:
                out.append((m, ch, xi, yi))
    return out


def _check_targets(
    item: dict, joints: np.ndarray, mats: list[np.ndarray], sizes: tuple[int, ...], flipped: bool
) -> None:
    for i, (res, mat) in enumerate(zip(sizes, mats)):
        heatmaps = item[f"heatmaps_{i}"].numpy()
        tags = item[f"joints_{i}"].numpy()
        expected = _expected(joints, mat, res, flipped)
        assert expected, "the test needs joints inside the crop"
        for _, ch, x, y in expected:
            assert heatmaps[ch, y, x] == 1.0, (i, ch, x, y)  # kernel centre on the truncated position
        drawn = {ch for _, ch, _, _ in expected}
        for ch in set(range(17)) - drawn:
            assert heatmaps[ch].max() == 0.0, (i, ch)
        for m in range(len(joints)):
            want = sorted(ch * res * res + y * res + x for mm, ch, x, y in expected if mm == m)
            got = sorted(int(idx) for idx, flag in tags[m] if flag == 1)
            assert got == want, (i, m)
        assert (tags[len(joints) :] == 0).all()


def test_bottomup_affine_matches_the_crop_geometry() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.uniform(0, 600, 2)
        s = float(rng.uniform(1.0, 5.0))
        rot = float(rng.uniform(-30, 30))
        res = int(rng.choice([128, 256, 512]))
        np.testing.assert_allclose(
            bottomup_affine(c, s, rot, res), get_affine_transform(c, (s, s), rot, (res, res)), rtol=0, atol=1e-9
        )
    # no rotation: x_out = res / (200 s) (x - c) + res / 2
    np.testing.assert_allclose(bottomup_affine((100, 50), 0.5, 0.0, 64), [[0.64, 0, -32], [0, 0.64, 0]], atol=1e-12)


def test_train_item_layout_and_default_collate(records) -> None:
    ds = _dataset(list(records.values()), seed=0)
    assert len(ds) == 4
    item = ds[0]
    expected = {
        "image": ((3, 128, 128), torch.float32),
        "heatmaps_0": ((17, 64, 64), torch.float32),
        "heatmaps_1": ((17, 128, 128), torch.float32),
        "masks_0": ((64, 64), torch.float32),
        "masks_1": ((128, 128), torch.float32),
        "joints_0": ((30, 17, 2), torch.int64),
        "joints_1": ((30, 17, 2), torch.int64),
        "image_id": ((), torch.int64),
    }
    assert set(item) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(item[key].shape) == shape and item[key].dtype == dtype, key
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["heatmaps_1"].shape == (4, 17, 128, 128) and batch["masks_0"].shape == (4, 64, 64)
    assert batch["image_id"].tolist() == [1, 2, 3, 5]
    for key in ("masks_0", "masks_1"):
        assert set(torch.unique(batch[key]).tolist()) <= {0.0, 1.0}


def test_masks_and_crop_exact_without_augmentation(records, root) -> None:
    # image 1 is 192 x 128: the crop is the centre square x in [32, 160), scale 1 at 128, 1/2 at 64
    item = _dataset([records[1]], **NO_AUG)[0]
    keep = 1.0 - expected_ignore(1).astype(np.float32)
    np.testing.assert_array_equal(item["masks_1"].numpy(), keep[:, 32:160])
    np.testing.assert_array_equal(item["masks_0"].numpy(), keep[::2, 32:160:2])
    assert item["masks_1"].numpy().sum() == 128 * 128 - 20 * 30 - 20 * 40  # both regions fully inside
    image = read_image(root / "images" / "img1.jpg", color_rgb=True)
    expected = normalize_image(np.ascontiguousarray(image[:, 32:160])).numpy()
    np.testing.assert_array_equal(item["image"].numpy(), expected)
    # image 3 (160 x 160, RGBA) at output 160 is the identity
    item = _dataset([records[3]], output_sizes=(80, 160), **NO_AUG)[0]
    np.testing.assert_array_equal(item["masks_1"].numpy(), 1.0 - expected_ignore(3))
    # image 5 holds only a crowd region: all-zero targets, mask zero on the (scaled) region
    item = _dataset([records[5]], output_sizes=(48, 96), **NO_AUG)[0]  # 96 x 128: crop y in [16, 112)
    np.testing.assert_array_equal(item["masks_1"].numpy(), 1.0 - expected_ignore(5)[16:112])
    assert item["heatmaps_0"].abs().sum() == 0 and item["joints_1"].abs().sum() == 0


def test_mask_is_zero_outside_the_image(records) -> None:
    # image 2 is 120 x 160 (grayscale); with the long side the 160-px box overhangs 20 px left and right
    item = _dataset([records[2]], output_sizes=(80, 160), scale_type="long", **NO_AUG)[0]
    mask = item["masks_1"].numpy()
    assert (mask[:, :20] == 0).all() and (mask[:, 140:] == 0).all() and (mask[:, 20:140] == 1).all()
    # input 128: x_out = 0.8 (x + 20), so columns 0..15 lie left of the image and are black
    black = normalize_image(np.zeros((1, 1, 3), np.uint8)).numpy()
    image = item["image"].numpy()
    assert (image[:, :, :16] == black).all() and (image[:, :, 17:111] != black).any(axis=0).mean() > 0.99


def test_heatmap_peaks_and_tags_without_augmentation(records) -> None:
    item = _dataset([records[1]], **NO_AUG)[0]
    mats = [bottomup_affine((96, 64), 0.64, 0.0, res) for res in (64, 128)]
    np.testing.assert_allclose(mats[1], [[1, 0, -32], [0, 1, 0]], atol=1e-12)
    _check_targets(item, expected_joints(1), mats, (64, 128), flipped=False)
    assert item["heatmaps_1"][16].max() == 0  # right ankle of person 12 at x = 170 -> 138: outside, not drawn


def test_heatmap_peaks_with_rotation_scale_and_translation(records, monkeypatch) -> None:
    ds = _dataset([records[1]], sigma=1.0)
    center, scale, rot = np.array([101.0, 57.0]), 0.71, 23.5
    monkeypatch.setattr(ds, "_draw_affine", lambda w, h: (center.copy(), scale, 1.1, rot, False))
    item = ds[0]
    mats = [bottomup_affine(center, scale, rot, res) for res in (64, 128)]
    _check_targets(item, expected_joints(1), mats, (64, 128), flipped=False)
    monkeypatch.setattr(ds, "_draw_affine", lambda w, h: (center.copy(), scale, 1.1, rot, True))
    _check_targets(ds[0], expected_joints(1), mats, (64, 128), flipped=True)


def test_flip_mirrors_crop_masks_and_swaps_left_right(records) -> None:
    plain = _dataset([records[1]], **NO_AUG)[0]
    flipped = _dataset([records[1]], **{**NO_AUG, "flip": 1.0})[0]
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    for key in ("masks_0", "masks_1"):
        assert torch.equal(flipped[key], plain[key].flip(-1))
    mats = [bottomup_affine((96, 64), 0.64, 0.0, res) for res in (64, 128)]
    _check_targets(flipped, expected_joints(1), mats, (64, 128), flipped=True)
    # person 11's left wrist (k = 9) at x = 50.6 -> 18.6 in the crop lands in the right-wrist channel at 127 - 18.6
    assert flipped["heatmaps_1"][10, 78, 108] == 1.0 and plain["heatmaps_1"][9, 78, 18] == 1.0


def test_random_parameters_follow_the_official_ranges(records) -> None:
    ds = _dataset([records[1]], seed=0)  # 192 x 128: base scale 128 / 200
    draws = [ds._draw_affine(192, 128) for _ in range(2000)]
    aug = np.array([d[2] for d in draws])
    scale = np.array([d[1] for d in draws])
    rot = np.array([d[3] for d in draws])
    shift = np.array([d[0] - (96.0, 64.0) for d in draws])
    flips = np.array([d[4] for d in draws])
    assert 0.75 <= aug.min() and aug.max() <= 1.5 and aug.max() - aug.min() > 0.7
    np.testing.assert_allclose(scale, 0.64 * aug)
    assert -30 <= rot.min() < -25 and 25 < rot.max() <= 30
    bound = np.trunc(40 * scale)
    assert (shift == np.round(shift)).all()
    assert (shift >= -bound[:, None]).all() and (shift < bound[:, None]).all()  # randint: high exclusive
    assert 0.45 < flips.mean() < 0.55


def test_seed_determinism_and_randomness(records) -> None:
    recs = list(records.values())
    a, b, c = (_dataset(recs, seed=s) for s in (7, 7, 8))
    for i in range(len(recs)):
        ia, ib = a[i], b[i]
        for key in ia:
            assert torch.equal(ia[key], ib[key]), key
    assert any(not torch.equal(a[0]["image"], c[0]["image"]) for _ in range(3))
    assert not torch.equal(a[0]["image"], a[0]["image"])  # a new draw each call


def test_workers_draw_different_augmentations(records) -> None:
    ds = _dataset([records[1]] * 4, seed=0)
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    torch.manual_seed(0)
    first = [b["image"] for b in loader]
    torch.manual_seed(0)
    again = [b["image"] for b in loader]
    assert not torch.equal(first[0], first[1])  # worker 0 and worker 1 differ
    assert all(torch.equal(x, y) for x, y in zip(first, again))  # repeatable under the same torch seed


def test_scale_aware_sigma_and_photometric(records, monkeypatch) -> None:
    plain = _dataset([records[2]], **NO_AUG)[0]
    ds = _dataset([records[2]], scale_aware_sigma=True, **NO_AUG)
    sas = ds[0]
    # person 21: box size 138 -> sigma 138 / 256 * 2 = 1.08 < 2: narrower Gaussians
    assert 0 < sas["heatmaps_1"].sum() < plain["heatmaps_1"].sum()
    seen = []
    generators = list(ds.codec._heatmap_generators)
    ds.codec._heatmap_generators = [lambda j, g=g: seen.append(j) or g(j) for g in generators]
    monkeypatch.setattr(ds, "_draw_affine", lambda w, h: (np.array([60.0, 80.0]), 0.6 * 1.25, 1.25, 0.0, False))
    ds[0]
    size = float(records[2]["box_sizes"][0])
    assert size == 138.0 and len(seen) == 2
    for joints in seen:
        assert joints.shape == (1, 17, 4)
        np.testing.assert_allclose(joints[..., 3], size / 256 * 2 / 1.25)  # official: / scale jitter only
    calls = []

    def black(img: np.ndarray) -> np.ndarray:
        calls.append(img.shape)
        return np.zeros_like(img)

    item = _dataset([records[2]], photometric=black, **NO_AUG)[0]
    assert calls == [(128, 128, 3)]
    assert torch.equal(item["image"], normalize_image(np.zeros((128, 128, 3), np.uint8)))


def test_image_size_mismatch_is_reported(records) -> None:
    bad = dict(records[1], width=200)
    with pytest.raises(ValueError, match="img1.jpg: the image is 192x128 but the annotation says 200x128"):
        _dataset([bad])[0]
    with pytest.raises(ValueError, match=r"expected \(M, 16, 3\)"):
        from src.layouts import MPII16

        BottomUpDataset([records[1]], codec=AssociativeEmbedding(num_joints=16), keypoint_info=MPII16, training=True)


def test_validation_items_and_collate(root) -> None:
    recs = _records(root, training=False)
    ds = BottomUpDataset(recs, codec=AssociativeEmbedding(), keypoint_info=COCO17, training=False)
    assert len(ds) == len(ALL_IDS)
    for i, image_id in enumerate(ALL_IDS):
        item = ds[i]
        w, h = SIZES[image_id]
        assert item["image"].shape == (h, w, 3) and item["image"].dtype == np.uint8
        assert (item["image_id"], item["width"], item["height"]) == (image_id, w, h)
        np.testing.assert_array_equal(item["image"], read_image(item["image_file"], color_rgb=True))
        np.testing.assert_allclose(item["joints"], expected_joints(image_id), atol=1e-5)
    gray = ds[1]["image"]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    batches = list(DataLoader(ds, batch_size=3, collate_fn=collate_bottomup_val))
    assert [len(b["image"]) for b in batches] == [3, 2]
    assert set(batches[0]) == {"image", "image_id", "image_file", "width", "height", "joints"}
    assert batches[1]["image_id"] == [4, 5] and batches[1]["joints"][0].shape == (0, 17, 3)
    assert collate_bottomup_val([]) == {}


@pytest.mark.skipif(not (REAL / "test_coco.json").is_file(), reason="real COCO samples not available")
def test_real_coco_samples_at_512() -> None:
    recs = load_coco_images(REAL / "test_coco.json", REAL, keypoint_info=COCO17, training=True)
    ds = BottomUpDataset(recs, codec=AssociativeEmbedding(), keypoint_info=COCO17, training=True, seed=0)
    by_id = {r["image_id"]: i for i, r in enumerate(recs)}
    item = ds[by_id[196141]]  # 4 people + one without keypoints (ignored region)
    assert item["image"].shape == (3, 512, 512)
    assert item["heatmaps_0"].shape == (17, 128, 128) and item["heatmaps_1"].shape == (17, 256, 256)
    assert item["heatmaps_1"].max() == 1.0 and (item["joints_0"][..., 1] == 1).sum() > 10
    plain = BottomUpDataset(recs, codec=AssociativeEmbedding(), keypoint_info=COCO17, training=True, **NO_AUG)[
        by_id[196141]
    ]
    assert 0 < (plain["masks_1"] == 0).sum() < 256 * 256 // 4


def test_image_files_draw_whole_image_predictions(root, tmp_path) -> None:
    """The run's predictions.jpg for a bottom-up model: predictions are keyed by image id, one
    (P, K, 3) array of grouped people per image."""
    from src.visualization.predictions import save_prediction_picture

    recs = _records(root, training=False)
    dataset = _dataset(recs, training=False)
    files = dataset.image_files()
    assert files == {r["image_id"]: str(r["image_file"]) for r in recs}
    people = np.zeros((2, COCO17.num_keypoints, 3), np.float32)
    people[:, :, :2] = 20.0
    people[:, :, 2] = 0.9
    picture = save_prediction_picture(
        tmp_path / "predictions.jpg", files, {recs[0]["image_id"]: people}, keypoint_info=COCO17
    )
    assert read_image(picture, color_rgb=True).shape[2] == 3


def test_shared_tag_map_indices(records) -> None:
    """tag_per_joint=False: the tag indices point into one (S, S) map, at the same pixels."""
    per_joint = _dataset([records[1]], **NO_AUG)[0]
    shared = _dataset([records[1]], tag_per_joint=False, **NO_AUG)[0]
    for i, res in enumerate((64, 128)):
        a, b = per_joint[f"joints_{i}"].numpy(), shared[f"joints_{i}"].numpy()
        np.testing.assert_array_equal(a[..., 1], b[..., 1])
        assert a[..., 1].sum() > 0
        np.testing.assert_array_equal(a[..., 0] % (res * res), b[..., 0])
        assert b[..., 0].max() < res * res


def test_images_in_memory_give_the_items_of_the_files(root, records) -> None:
    """Like the other paradigms, whole images can come from memory (``images``), keyed by image_file."""
    recs = list(records.values())
    images = {str(r["image_file"]): read_image(r["image_file"], color_rgb=False) for r in recs}
    from_files, from_memory = _dataset(recs, seed=3), _dataset(recs, seed=3, images=images)
    for i in range(len(recs)):
        a, b = from_files[(i, 1)], from_memory[(i, 1)]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    val = _records(root, training=False)
    blank = {str(r["image_file"]): np.zeros((r["height"], r["width"], 3), np.uint8) for r in val}
    item = _dataset(val, training=False, images=blank)[0]
    assert item["image"].shape == (val[0]["height"], val[0]["width"], 3) and not item["image"].any()
