"""Fast data loading: reduced JPEG decoding (JPEG headers, the reduced reader, crops aligned with the joints)
and uint8 training images normalised on the device (bit-identical)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from src.codecs.integral_3d import Integral3D
from src.codecs.msra_heatmap import MSRAHeatmap
from src.datasets.pose3d import Pose3DDataset
from src.datasets.topdown import TopDownDataset
from src.geometry import get_affine_transform, warp_from_reduced
from src.layouts import COCO17, H36M18
from src.readers.coco_records import load_coco_records
from src.readers.images import ImageDecodeError, jpeg_size, read_image, read_image_for_crop, reduction_for
from tests.data.test_pose3d_dataset import _record
from tests.data.tiny_coco import make_tiny_coco


def _smooth_image(h: int, w: int, disc: tuple[float, float], radius: float) -> np.ndarray:
    """A smooth colour gradient with one bright disc (sub-pixel centre) to locate in crops."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([40 + 60 * xx / w, 50 + 50 * yy / h, 90 + 30 * np.sin(xx / 37.0 + yy / 53.0)], -1)
    inside = np.clip(radius + 0.5 - np.hypot(xx - disc[0], yy - disc[1]), 0, 1)  # anti-aliased edge
    image = image * (1 - inside[..., None]) + 250 * inside[..., None]
    return np.round(image).astype(np.uint8)


def _centroid(crop: np.ndarray) -> np.ndarray:
    weight = np.clip(crop[..., 0].astype(np.float64) - 160, 0, None)
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_size_reads_the_frame_header(tmp_path, progressive):
    image = np.random.default_rng(0).integers(0, 255, size=(251, 333, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    ok, data = cv2.imencode(".jpg", image, params)
    assert ok
    data = data.tobytes()
    assert jpeg_size(data) == (251, 333)
    # an EXIF segment before the frame header is skipped
    exif = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x00"
    with_exif = data[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + data[2:]
    assert jpeg_size(with_exif) == (251, 333)
    ok, png = cv2.imencode(".png", image)
    assert jpeg_size(png.tobytes()) is None
    assert jpeg_size(b"") is None and jpeg_size(data[:20]) is None and jpeg_size(b"\xff\xd8\x00\x00junk") is None


def test_reduction_keeps_a_pixel_per_crop_pixel():
    assert [reduction_for(s) for s in (0.5, 1.0, 1.99, 2.0, 3.9, 4.0, 7.5, 8.0, 30.0)] == [1, 1, 1, 2, 2, 4, 4, 8, 8]


def test_reader_reduces_jpegs_and_reads_other_formats_in_full(tmp_path):
    image = _smooth_image(251, 333, (100.0, 100.0), 20.0)
    jpg, png = tmp_path / "a.jpg", tmp_path / "a.png"
    cv2.imwrite(str(jpg), image)
    cv2.imwrite(str(png), image)
    reduced, r, size = read_image_for_crop(jpg, shrink=2.7)
    assert (r, size, reduced.shape) == (2, (251, 333), (126, 167, 3))
    reduced, r, size = read_image_for_crop(jpg, shrink=5.0)
    assert (r, size, reduced.shape) == (4, (251, 333), (63, 84, 3))
    full, r, size = read_image_for_crop(jpg, shrink=1.5)
    assert r == 1 and size == (251, 333) and np.array_equal(full, read_image(jpg, color_rgb=False))
    full, r, size = read_image_for_crop(png, shrink=5.0)
    assert r == 1 and np.array_equal(full, image)
    (tmp_path / "cut.jpg").write_bytes(jpg.read_bytes()[:300])
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        read_image_for_crop(tmp_path / "cut.jpg", shrink=3.0)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image_for_crop(tmp_path / "missing.jpg", shrink=3.0)


@pytest.mark.parametrize("rotation", [0.0, 30.0])
@pytest.mark.parametrize("scale", [1.1, 2.2])  # 2.3x and 4.6x shrink: decoded at 1/2 and 1/4
def test_crop_from_the_reduced_image_is_aligned(tmp_path, rotation, scale):
    disc = (301.3, 201.7)
    image = _smooth_image(480, 640, disc, 40.0)
    path = tmp_path / "smooth.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    full = read_image(path, color_rgb=False)
    center, output = np.array([310.0, 195.0]), (96, 128)
    warp = get_affine_transform(center, np.array([scale, scale * 4 / 3]), rotation, output)
    shrink = scale * 200 / output[0]
    reduced, r, _ = read_image_for_crop(path, shrink=shrink)
    assert r == reduction_for(shrink) > 1
    official = cv2.warpAffine(full, warp, output, flags=cv2.INTER_LINEAR)
    fast = cv2.warpAffine(reduced, warp_from_reduced(warp, r), output, flags=cv2.INTER_LINEAR)
    expected = warp[:, :2] @ np.array(disc) + warp[:, 2]
    np.testing.assert_allclose(_centroid(official), expected, atol=0.1)
    np.testing.assert_allclose(_centroid(fast), expected, atol=0.1)
    diff = np.abs(official.astype(np.int16) - fast.astype(np.int16))
    assert diff.mean() < 2.0, diff.mean()


def _count_reductions(dataset) -> list[int]:
    used: list[int] = []
    original = dataset.read_bgr_for_crop

    def spy(image_file, shrink):
        result = original(image_file, shrink)
        used.append(result[1])
        return result

    dataset.read_bgr_for_crop = spy
    return used


def test_topdown_training_targets_do_not_change(tmp_path):
    root = make_tiny_coco(tmp_path)
    records = load_coco_records(
        root / "annotations" / "person_keypoints_train2017.json",
        root / "images" / "train2017",
        keypoint_info=COCO17,
        aspect_ratio=0.75,
        training=True,
    )
    codec = MSRAHeatmap(input_size=(24, 32), heatmap_size=(6, 8), sigma=1.0)
    kwargs = dict(codec=codec, keypoint_info=COCO17, training=True, seed=5)
    plain, fast = TopDownDataset(records, **kwargs), TopDownDataset(records, **kwargs)
    fast.reduced_decode = True
    used = _count_reductions(fast)
    for epoch in range(6):
        for i in range(len(records)):
            a, b = plain[(i, epoch)], fast[(i, epoch)]
            for key in a:
                if key != "image":
                    assert torch.equal(a[key], b[key]), key
            assert (a["image"] - b["image"]).abs().mean() < 0.6  # normalised units: same picture, smoother
    assert max(used) >= 2  # reduced decoding ran (the odd-width flip is in the 3D test)


def test_pose3d_training_targets_do_not_change(tmp_path):
    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), _smooth_image(120, 161, (80.0, 60.0), 15.0))
    codec = Integral3D(input_size=(32, 32), output_size=(8, 8), depth_dim=8, bbox_3d_depth=2000.0)
    records = [_record(str(path), i) for i in range(3)]
    kwargs = dict(codec=codec, keypoint_info=H36M18, training=True, occlusion_prob=0.5, seed=2)
    plain, fast = Pose3DDataset(records, **kwargs), Pose3DDataset(records, **kwargs)
    fast.reduced_decode = True
    used = _count_reductions(fast)
    for epoch in range(4):
        for i in range(len(fast)):
            a, b = plain[(i, epoch)], fast[(i, epoch)]
            for key in a:
                if key != "image":
                    assert torch.equal(a[key], b[key]), key
    assert 2 in used


def test_only_training_datasets_reduce(tmp_path):
    root = make_tiny_coco(tmp_path)

    class Reader:
        def load_records(self, split, **kw):
            sub = "train2017" if split == "train" else "val2017"
            return load_coco_records(root / "annotations" / f"person_keypoints_{sub}.json", root / "images" / sub, **kw)

    codec = MSRAHeatmap(input_size=(24, 32), heatmap_size=(6, 8), sigma=1.0)
    common = dict(codec=codec, keypoint_info=COCO17, augmentation={}, color_rgb=True, seed=0, reduced_decode=True)
    assert TopDownDataset.from_reader(Reader(), training=True, **common).reduced_decode is True
    assert TopDownDataset.from_reader(Reader(), training=False, **common).reduced_decode is False


def test_on_device_normalisation_is_bit_identical():
    from src.datasets.transforms import image_tensor, normalize_image, normalize_images

    levels = np.arange(256, dtype=np.uint8)
    image = np.stack(np.meshgrid(levels, levels[::-1], indexing="ij"), -1)[..., [0, 1, 0]].copy()  # (256, 256, 3)
    image[..., 2] = np.roll(levels, 7)[None, :]
    raw = image_tensor(image, on_device=True)
    assert raw.dtype == torch.uint8 and raw.shape == (3, 256, 256)
    assert torch.equal(raw.permute(1, 2, 0), torch.from_numpy(image))
    assert torch.equal(normalize_images(raw[None])[0], normalize_image(image))
    assert torch.equal(image_tensor(image, on_device=False), normalize_image(image))
    with pytest.raises(ValueError, match="uint8"):
        normalize_images(raw[None].float())
    from src.visualization.pictures import denormalize

    assert np.array_equal(denormalize(raw), image)  # pictures read either form
    assert np.abs(denormalize(normalize_image(image)).astype(int) - image).max() <= 1


@pytest.mark.parametrize("paradigm", ["topdown", "bottomup", "pose3d"])
def test_tasks_normalise_uint8_batches_as_the_workers_would(tmp_path, paradigm):
    """The same training batch, normalised in the workers or on the device: the same loss."""
    from hydra.utils import instantiate

    from tests.helpers import TINY_H36M_ROOT, TINY_MODELS, TINY_SYNTHETIC, compose_run

    data = TINY_H36M_ROOT if paradigm == "pose3d" else TINY_SYNTHETIC
    cfg = compose_run("train", [*TINY_MODELS[paradigm], *data], tmp_path / "run", tmp_path / "data")
    task = instantiate(cfg.model, _recursive_=False)
    from src.utils.builders import build_datamodule

    losses = []
    for on_device in (False, True):
        cfg.data.normalize_on_device = on_device
        dm = build_datamodule(cfg.data, codec=task.codec, paradigm=paradigm)
        dm.prepare_data()
        dm.setup("fit")
        dataset = dm.train_dataset
        assert dataset.normalize_on_device is on_device and dm.val_dataset.normalize_on_device is False
        batch = next(iter(dm._loader(dataset, batch_size=2, shuffle=True, drop_last=True)))
        assert batch["image"].dtype == (torch.uint8 if on_device else torch.float32)
        torch.manual_seed(0)
        task.train()
        losses.append(task.training_loss(batch).detach())
    assert torch.equal(losses[0], losses[1])
