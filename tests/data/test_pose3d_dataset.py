"""Pose3DDataset: crops and targets of 3D records, 2D records mixed in, the same-length epoch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from src.camera import camera_to_pixel
from src.codecs.integral_3d import Integral3D
from src.datasets.pose3d import Pose3DDataset, records_from_2d
from src.layouts import H36M18, MPII16, joint_mapping

F, C = np.array([300.0, 300.0]), np.array([80.0, 60.0])


def _pose_cam(shift: float = 0.0) -> np.ndarray:
    """18 camera-frame joints (mm) of a standing person about 4 m away."""
    rng = np.random.default_rng(0)
    joints = rng.normal(0.0, 250.0, size=(18, 3))
    joints[:, 2] = 4000.0 + rng.normal(0.0, 150.0, size=18)
    joints[:, 0] += shift
    joints[17] = 0.5 * (joints[11] + joints[14])
    return joints


def _record(image_file: str, sample_id: int, *, shift: float = 0.0) -> dict:
    cam = _pose_cam(shift)
    uvz = camera_to_pixel(cam, F, C)
    return {
        "sample_id": sample_id,
        "image_id": sample_id,
        "image_file": image_file,
        "bbox": np.array([20.0, 0.0, 120.0, 120.0], np.float32),
        "joints_img": uvz.astype(np.float32),
        "joints_cam": cam.astype(np.float32),
        "visible": np.ones(18, np.float32),
        "root_depth": float(cam[0, 2]),
        "f": F.astype(np.float32),
        "c": C.astype(np.float32),
        "action": sample_id % 3,
        "have_depth": 1.0,
    }


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pose3d") / "frame.jpg"
    image = np.random.default_rng(1).integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return str(path)


CODEC = Integral3D(input_size=(64, 64), output_size=(16, 16), depth_dim=16, bbox_3d_depth=2000.0)


def test_validation_item_targets_back_project_to_the_camera_joints(image_file):
    dataset = Pose3DDataset([_record(image_file, 0)], codec=CODEC, keypoint_info=H36M18, training=False)
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64)
    assert item["coords"].shape == (18, 3) and item["coord_weight"].shape == (18,)
    batch = {k: v[None] for k, v in item.items()}
    cam = CODEC.to_camera(
        batch["coords"].numpy(),
        batch["bbox"].numpy(),
        batch["root_depth"].numpy(),
        batch["f"].numpy(),
        batch["c"].numpy(),
    )
    np.testing.assert_allclose(cam[0], _pose_cam(), atol=0.05)
    assert int(item["action"]) == 0 and float(item["have_depth"]) == 1.0


def test_training_items_are_reproducible_and_flip_swaps_sides(image_file):
    records = [_record(image_file, i) for i in range(4)]
    dataset = Pose3DDataset(records, codec=CODEC, keypoint_info=H36M18, training=True, seed=3)
    a, b = dataset[(2, 5)], dataset[(2, 5)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["coords"], b["coords"])
    plain = Pose3DDataset(
        records,
        codec=CODEC,
        keypoint_info=H36M18,
        training=True,
        scale_factor=0.0,
        rotation_prob=0.0,
        color_factor=0.0,
        occlusion_prob=0.0,
        seed=0,
    )
    ref = Pose3DDataset(records, codec=CODEC, keypoint_info=H36M18, training=False)[0]["coords"]
    flips = 0
    for epoch in range(12):
        coords = plain[(0, epoch)]["coords"]
        if torch.allclose(coords, ref, atol=1e-4):
            continue
        flips += 1
        # the image mirrored about x = (W - 1) / 2 and the box centre with it: the crop is the mirror
        # image of the plain crop about its centre, x -> output_w - x, with left / right swapped
        expected = ref[list(H36M18.flip_index)].clone()
        expected[:, 0] = CODEC.output_size[0] - expected[:, 0]
        np.testing.assert_allclose(coords, expected, atol=1e-4)
    assert 0 < flips < 12


def test_occlusion_paints_noise_inside_the_box(image_file):
    records = [_record(image_file, 0)]
    kwargs = dict(codec=CODEC, keypoint_info=H36M18, training=True, scale_factor=0.0, rotation_prob=0.0, flip=False)
    clean = Pose3DDataset(records, **kwargs, color_factor=0.0, occlusion_prob=0.0, seed=0)
    occluded = Pose3DDataset(records, **kwargs, color_factor=0.0, occlusion_prob=1.0, seed=0)
    changed = [(clean[(0, e)]["image"] != occluded[(0, e)]["image"]).any(dim=0).float().mean().item() for e in range(6)]
    assert max(changed) > 0.02  # some epochs draw a sizeable rectangle
    assert max(changed) < 0.75  # never more than 0.7 of the box


def test_records_from_2d_map_joints_by_name_without_depth():
    mpii = {
        "sample_id": 7,
        "image_id": 3,
        "image_file": "x.jpg",
        "center": np.array([100.0, 80.0], np.float32),
        "scale": np.array([0.5, 0.5], np.float32),
        "keypoints": np.arange(32, dtype=np.float32).reshape(16, 2),
        "visible": np.ones(16, np.float32),
    }
    (record,) = records_from_2d([mpii], MPII16, H36M18, aspect_ratio=1.0)
    index = np.array(joint_mapping(MPII16, H36M18))
    assert record["have_depth"] == 0.0
    np.testing.assert_array_equal(record["bbox"], [50.0, 30.0, 100.0, 100.0])
    np.testing.assert_array_equal(record["visible"], (index >= 0).astype(np.float32))
    head = H36M18.keypoint_names.index("head")
    np.testing.assert_array_equal(
        record["joints_img"][head, :2], mpii["keypoints"][MPII16.keypoint_names.index("head_top")]
    )
    assert record["visible"][H36M18.keypoint_names.index("nose")] == 0  # MPII has no nose


def test_mixed_epoch_has_equal_halves(image_file):
    three_d = [_record(image_file, i) for i in range(5)]
    two_d = records_from_2d(
        [
            {
                "sample_id": 100 + i,
                "image_id": 100 + i,
                "image_file": image_file,
                "center": np.array([80.0, 60.0], np.float32),
                "scale": np.array([0.5, 0.5], np.float32),
                "keypoints": np.full((16, 2), 60.0, np.float32),
                "visible": np.ones(16, np.float32),
            }
            for i in range(2)
        ],
        MPII16,
        H36M18,
        aspect_ratio=1.0,
    )
    dataset = Pose3DDataset(three_d + two_d, codec=CODEC, keypoint_info=H36M18, training=True, seed=0)
    assert len(dataset) == 10  # 2 x max(5, 2)
    first = [dataset._record_index(i) for i in range(5)]
    assert first == [0, 1, 2, 3, 4]
    second = [dataset._record_index(i) for i in range(5, 10)]
    assert second[:4] == [5, 6, 5, 6]  # modulo over the whole passes
    assert second[4] in (5, 6)  # the tail picks a random 2D record
    items = [dataset[(i, 0)] for i in (0, 7)]
    assert [float(it["have_depth"]) for it in items] == [1.0, 0.0]
    assert int(items[1]["action"]) == -1
    validation = Pose3DDataset(three_d + two_d, codec=CODEC, keypoint_info=H36M18, training=False)
    assert len(validation) == 7


def test_wrong_joint_count_is_refused(image_file):
    record = _record(image_file, 0)
    record["joints_img"] = record["joints_img"][:17]
    with pytest.raises(ValueError, match="h36m18"):
        Pose3DDataset([record], codec=CODEC, keypoint_info=H36M18, training=False)
