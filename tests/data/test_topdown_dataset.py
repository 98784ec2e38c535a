"""TopDownDataset: item layout, target round trip, flip, determinism, workers, image reading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from src.codecs.msra_heatmap import MSRAHeatmap
from src.datasets.topdown import TopDownDataset
from src.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, PhotometricAugment, normalize_image
from src.geometry import affine_transform_points, flip_joints, get_affine_transform, heatmap_to_image_coords
from src.layouts import COCO17
from src.readers.coco_records import load_coco_records
from src.readers.images import ImageDecodeError, read_image
from tests.data.tiny_coco import make_tiny_coco

NO_AUG = dict(scale_factor=0.0, rotation_prob=0.0, half_body_prob=0.0)


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    root = make_tiny_coco(tmp_path_factory.mktemp("coco"))
    return load_coco_records(
        root / "annotations" / "person_keypoints_train2017.json",
        root / "images" / "train2017",
        keypoint_info=COCO17,
        aspect_ratio=0.75,
        training=True,
    )


@pytest.fixture(scope="module")
def codec() -> MSRAHeatmap:
    return MSRAHeatmap(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0, refine="none")


def _dataset(records, codec, **kw) -> TopDownDataset:
    kw.setdefault("training", False)
    return TopDownDataset(records, codec=codec, keypoint_info=COCO17, **kw)


def _decode_to_image(codec: MSRAHeatmap, item: dict) -> np.ndarray:
    coords, _ = codec.decode_heatmaps(item["heatmaps"][None])
    return heatmap_to_image_coords(
        coords.numpy(), item["center"][None].numpy(), item["scale"][None].numpy(), codec.heatmap_size
    )[0]


def test_item_shapes_and_dtypes(records, codec) -> None:
    item = _dataset(records, codec)[0]
    expected = {
        "image": ((3, 64, 48), torch.float32),
        "heatmaps": ((17, 16, 12), torch.float32),
        "target_weight": ((17,), torch.float32),
        "sample_id": ((), torch.int64),
        "image_id": ((), torch.int64),
        "center": ((2,), torch.float32),
        "scale": ((2,), torch.float32),
        "area": ((), torch.float32),
        "box_score": ((), torch.float32),
        "joints": ((17, 3), torch.float32),
        "category_id": ((), torch.int64),  # the category of the box (COCO-format records)
    }
    assert set(item) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(item[key].shape) == shape, key
        assert item[key].dtype == dtype, key
    assert item["image"].is_contiguous()
    assert item["sample_id"] == 0 and item["image_id"] == 1 and item["category_id"] == records[0]["category_id"]
    np.testing.assert_allclose(item["joints"][:, :2].numpy(), records[0]["keypoints"])
    np.testing.assert_array_equal(item["target_weight"].numpy(), records[0]["visible"])
    assert item["heatmaps"][records[0]["visible"] == 0].abs().sum() == 0
    assert len(_dataset(records, codec)) == len(records)


def test_batches_collate(records, codec) -> None:
    batch = next(iter(DataLoader(_dataset(records, codec), batch_size=3)))
    assert batch["image"].shape == (3, 3, 64, 48)
    assert batch["sample_id"].tolist() == [0, 1, 2] and batch["sample_id"].dtype == torch.int64
    assert batch["center"].shape == (3, 2) and batch["joints"].shape == (3, 17, 3)


def test_crop_equals_official_warp_and_normalisation(records, codec) -> None:
    item = _dataset(records, codec, color_rgb=True)[0]
    rec = records[0]
    image = cv2.cvtColor(cv2.imread(rec["image_file"], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    trans = get_affine_transform(rec["center"], rec["scale"], 0.0, (48, 64))
    crop = cv2.warpAffine(image, trans, (48, 64), flags=cv2.INTER_LINEAR)
    ref = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0 - torch.tensor(IMAGENET_MEAN)[:, None, None]
    ref = ref / torch.tensor(IMAGENET_STD)[:, None, None]
    torch.testing.assert_close(item["image"], ref, rtol=0, atol=0)
    bgr = _dataset(records, codec, color_rgb=False)[0]["image"]
    torch.testing.assert_close(bgr, normalize_image(np.ascontiguousarray(crop[:, :, ::-1])))


def test_targets_decode_back_to_joints(records, codec) -> None:
    """Without augmentation the target peak maps back to the annotated joint within half a heatmap pixel."""
    ds = _dataset(records, codec)
    for index, rec in enumerate(records):
        item = ds[index]
        decoded = _decode_to_image(codec, item)
        heatmap_px_in_image = 200.0 * float(rec["scale"][0]) / codec.heatmap_size[0]
        trans = get_affine_transform(rec["center"], rec["scale"], 0.0, codec.heatmap_size)
        peak = np.trunc(affine_transform_points(rec["keypoints"], trans) + 0.5)  # official integer peak
        inside = (peak >= 0).all(1) & (peak < np.array(codec.heatmap_size)).all(1)
        check = (item["target_weight"].numpy() > 0) & inside  # a peak outside the map is not decodable
        assert check.sum() >= 10
        err = np.abs(decoded - rec["keypoints"])[check]
        assert err.max() <= 0.5 * heatmap_px_in_image + 1e-3, (index, err.max())
    # joints outside the image keep a target as long as the window touches the heatmap
    assert ds[1]["target_weight"].sum() >= 15


def test_flip_swaps_left_and_right(records, codec) -> None:
    """A flipped sample: the left wrist appears in the right-wrist channel at the mirrored place,
    and the crop is the mirror image of the unflipped crop (up to the known one-pixel shift)."""
    rec = records[2]  # image 2, 120 px wide, all joints visible
    width = 120
    plain = _dataset(records, codec)[2]
    ds = _dataset(records, codec, training=True, flip=True, **NO_AUG, seed=0)
    flipped = [item for item in (ds[2] for _ in range(12)) if item["center"][0] != plain["center"][0]]
    assert 0 < len(flipped) < 12
    item = flipped[0]
    assert item["center"][0].item() == pytest.approx(width - 1 - plain["center"][0].item())
    decoded = _decode_to_image(codec, item)  # image coordinates in the mirrored frame
    tol = 0.5 * 200.0 * float(rec["scale"][0]) / codec.heatmap_size[0] + 1e-3
    left_wrist, right_wrist = COCO17.keypoint_names.index("left_wrist"), COCO17.keypoint_names.index("right_wrist")
    expected = np.array([width - 1 - rec["keypoints"][left_wrist, 0], rec["keypoints"][left_wrist, 1]])
    assert np.abs(decoded[right_wrist] - expected).max() <= tol
    np.testing.assert_allclose(item["joints"][right_wrist, :2].numpy(), expected, atol=1e-4)
    # crop pixels: flipped[:, u] == plain[:, 48 - u] for u >= 1 (flip about the pixel grid)
    diff = (item["image"][:, :, 1:] - plain["image"].flip(-1)[:, :, :-1]).abs()
    assert diff.max() < 0.05


def test_flip_in_matrix_matches_official_mirrored_image(records) -> None:
    """Folding the mirror into the warp matrix gives the official result (flip image, then warp)."""
    rec = records[0]
    image = cv2.imread(rec["image_file"], cv2.IMREAD_COLOR)
    width = image.shape[1]
    joints, visible = flip_joints(rec["keypoints"], rec["visible"], width, COCO17.flip_index)
    center = np.array([width - 1 - rec["center"][0], rec["center"][1]])
    trans = get_affine_transform(center, rec["scale"] * 1.1, 17.0, (96, 128))
    official = cv2.warpAffine(np.ascontiguousarray(image[:, ::-1]), trans, (96, 128), flags=cv2.INTER_LINEAR)
    folded = trans.copy()
    folded[:, 2] += trans[:, 0] * (width - 1)
    folded[:, 0] = -trans[:, 0]
    ours = cv2.warpAffine(image, folded, (96, 128), flags=cv2.INTER_LINEAR)
    assert np.abs(official.astype(int) - ours.astype(int)).max() <= 1
    assert np.abs(official.astype(int) - ours.astype(int)).mean() < 0.05
    # and the joints: mirror-then-transform equals transform-with-the-folded-matrix of the originals
    np.testing.assert_allclose(
        affine_transform_points(joints, trans)[visible > 0],
        affine_transform_points(rec["keypoints"][list(COCO17.flip_index)], folded)[visible > 0],
        atol=1e-6,
    )


def test_determinism_with_seed(records, codec) -> None:
    def run(seed):
        ds = _dataset(records, codec, training=True, seed=seed, half_body_prob=1.0, half_body_min_joints=2)
        return [ds[i % 3] for i in range(6)]

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(a, b):
        for key in x:
            torch.testing.assert_close(x[key], y[key], rtol=0, atol=0)
    assert any(not torch.equal(x["image"], z["image"]) for x, z in zip(a, c))
    # augmentation really happens: the crop parameters vary
    assert len({tuple(item["scale"].tolist()) for item in a}) > 1


def test_workers_get_different_random_streams(records, codec) -> None:
    ds = _dataset([records[0]] * 4, codec, training=True, seed=0)

    def images() -> list[torch.Tensor]:
        return [img for batch in DataLoader(ds, batch_size=2, num_workers=2) for img in batch["image"]]

    torch.manual_seed(123)
    first = images()  # worker 0 makes items 0, 1; worker 1 makes items 2, 3
    assert len(first) == 4
    # identical streams would give item 0 == item 2 and item 1 == item 3
    assert not torch.equal(first[0], first[2]) or not torch.equal(first[1], first[3])
    torch.manual_seed(123)
    again = images()
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # reproducible under a torch seed


def test_half_body_and_rotation_keep_targets_consistent(records, codec) -> None:
    """With every augmentation on, visible targets still sit where the transformed joints are."""
    ds = _dataset(records, codec, training=True, seed=3, half_body_prob=1.0, half_body_min_joints=2, rotation_prob=1.0)
    for _ in range(10):
        item = ds[2]
        assert torch.isfinite(item["image"]).all()
        assert item["heatmaps"].max() <= 1.0 and item["heatmaps"].min() >= 0.0
        assert (item["heatmaps"].amax(dim=(1, 2))[item["target_weight"] == 0] == 0).all()


def test_photometric_changes_only_pixels(records, codec) -> None:
    photometric = PhotometricAugment(color_jitter_prob=1.0, brightness=0.5, noise_prob=1.0, occlusion_prob=1.0)
    plain = _dataset(records, codec, training=True, seed=1, flip=False, **NO_AUG)[0]
    augmented = _dataset(records, codec, training=True, seed=1, flip=False, photometric=photometric, **NO_AUG)[0]
    assert not torch.equal(plain["image"], augmented["image"])
    torch.testing.assert_close(plain["heatmaps"], augmented["heatmaps"])
    crop = np.full((32, 24, 3), 128, np.uint8)
    photometric.reseed(7)
    first = photometric(crop)
    photometric.reseed(7)
    np.testing.assert_array_equal(first, photometric(crop))
    assert first.shape == crop.shape and first.dtype == np.uint8


def test_missing_and_corrupt_images(records, codec, tmp_path: Path) -> None:
    missing = dict(records[0], image_file=str(tmp_path / "gone.jpg"))
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        _dataset([missing], codec)[0]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(ImageDecodeError, match="corrupt.jpg"):
        _dataset([dict(records[0], image_file=str(corrupt))], codec)[0]


def test_read_image_grayscale_rgba_and_channel_order(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    out = read_image(tmp_path / "gray.png", color_rgb=True)
    assert out.shape == (8, 25, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], gray)
    bgra = np.zeros((6, 5, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[..., 3] = 40  # alpha is dropped
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    rgb = read_image(tmp_path / "rgba.png", color_rgb=True)
    assert rgb.shape == (6, 5, 3)
    assert (rgb[..., 0] == 255).all() and (rgb[..., 1:] == 0).all()
    bgr = read_image(tmp_path / "rgba.png", color_rgb=False)
    assert (bgr[..., 2] == 255).all() and (bgr[..., :2] == 0).all()
    cv2.imwrite(str(tmp_path / "gray.jpg"), gray)
    assert read_image(tmp_path / "gray.jpg", color_rgb=False).shape == (8, 25, 3)


def test_empty_dataset(codec) -> None:
    assert len(_dataset([], codec)) == 0


# --------------------------------------------------------------------------- the shared base (PoseDataset)
def test_augmentation_keys_are_the_constructors_own_arguments() -> None:
    from src.datasets.bottomup import BottomUpDataset
    from src.datasets.pose3d import Pose3DDataset

    assert TopDownDataset.AUGMENTATION_KEYS == (
        "scale_factor",
        "rotation_factor",
        "rotation_prob",
        "flip",
        "half_body_prob",
        "half_body_min_joints",
        "geometric",
        "mmpose",
        "crop_photometric",
        "stage2",
        "photometric",
    )
    assert BottomUpDataset.AUGMENTATION_KEYS == (
        "max_rotation",
        "min_scale",
        "max_scale",
        "scale_type",
        "max_translate",
        "flip",
        "photometric",
    )
    assert Pose3DDataset.AUGMENTATION_KEYS == (
        "scale_factor",
        "rotation_factor",
        "rotation_prob",
        "flip",
        "color_factor",
        "occlusion_prob",
        "photometric",
    )
    with pytest.raises(ValueError, match=r"unknown augmentation keys \['color_factor'\]"):
        TopDownDataset.check_augmentation({"rotation_prob": 0.5, "color_factor": 0.2})


def test_common_arguments_are_checked_once_for_every_paradigm(records, codec) -> None:
    from src.codecs.associative_embedding import AssociativeEmbedding
    from src.datasets.bottomup import BottomUpDataset
    from src.layouts import MPII16

    with pytest.raises(ValueError, match="TopDownDataset: rotation_prob is a probability in"):
        _dataset(records, codec, rotation_prob=1.5)
    with pytest.raises(ValueError, match=r"TopDownDataset: scale_factor must be in \[0, 1\)"):
        _dataset(records, codec, scale_factor=1.0)
    with pytest.raises(TypeError, match="TopDownDataset: photometric must be None or a callable"):
        _dataset(records, codec, photometric={"color_jitter_prob": 0.5})
    with pytest.raises(TypeError, match="TopDownDataset: seed must be an integer"):
        _dataset(records, codec, seed="0")
    with pytest.raises(TypeError, match="TopDownDataset: codec must have input_size and encode"):
        TopDownDataset(records, codec=object(), keypoint_info=COCO17, training=False)
    with pytest.raises(ValueError, match="BottomUpDataset: the codec encodes 16 joints, layout 'coco17' has 17"):
        BottomUpDataset([], codec=AssociativeEmbedding(num_joints=16), keypoint_info=COCO17, training=False)
    with pytest.raises(ValueError, match="BottomUpDataset: flip is a probability in"):
        BottomUpDataset([], codec=AssociativeEmbedding(), keypoint_info=COCO17, training=True, flip=2)
    # a layout by name, and the data shortcuts apply to training datasets only
    by_name = TopDownDataset(records, codec=codec, keypoint_info="coco17", training=False, reduced_decode=True)
    assert by_name.keypoint_info is COCO17 and by_name.reduced_decode is False
    fast = _dataset(records, codec, training=True, reduced_decode=True, normalize_on_device=True)
    assert fast.reduced_decode is True and fast.normalize_on_device is True
    assert fast[(0, 0)]["image"].dtype == torch.uint8
    with pytest.raises(ValueError, match=r"expected \(16, 2\)"):
        TopDownDataset(records, codec=codec, keypoint_info=MPII16, training=False)
