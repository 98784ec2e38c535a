"""PoseDataModule end to end on tiny datasets (hand-made COCO, synthetic, real samples)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.codecs.msra_heatmap import MSRAHeatmap
from src.datasets.datamodule import PoseDataModule
from src.datasets.topdown import TopDownDataset
from src.metrics.coco_metric import COCOKeypointMetric
from src.readers.coco import COCOReader
from src.readers.errors import DatasetNotFoundError
from src.synthetic.readers import SyntheticCOCOReader
from tests.data.tiny_coco import make_tiny_coco, write_detections
from tests.helpers import layout_real_coco

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real_samples" / "coco"

PATHS = dict(
    train_ann="annotations/person_keypoints_train2017.json",
    val_ann="annotations/person_keypoints_val2017.json",
    train_images="images/train2017",
    val_images="images/val2017",
)


def _codec() -> MSRAHeatmap:
    return MSRAHeatmap(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)


READER_KEYS = (*PATHS, "val_boxes", "det_file", "det_score_thr")


def _module(root: Path, *, synthetic: dict | None = None, **kw) -> PoseDataModule:
    paths = {**PATHS, **{k: kw.pop(k) for k in READER_KEYS if k in kw}}
    reader = (
        COCOReader(root=str(root), **paths)
        if synthetic is None
        else SyntheticCOCOReader(root=str(root), synthetic=synthetic, **paths)
    )
    args = dict(
        name="coco",
        reader=reader,
        metric=COCOKeypointMetric,
        dataset=TopDownDataset,
        codec=_codec(),
        batch_size=2,
        val_batch_size=2,
        num_workers=0,
        pin_memory=False,
        persistent_workers=False,
        augmentation=dict(
            scale_factor=0.35,
            rotation_factor=45.0,
            rotation_prob=0.6,
            flip=True,
            half_body_prob=0.3,
            half_body_min_joints=8,
            photometric=None,
        ),
    )
    args.update(kw)
    return PoseDataModule(**args)


def _check_batch(batch: dict, n: int) -> None:
    assert batch["image"].shape == (n, 3, 64, 48) and batch["image"].dtype == torch.float32
    assert batch["heatmaps"].shape == (n, 17, 16, 12)
    assert batch["target_weight"].shape == (n, 17)
    assert batch["sample_id"].dtype == torch.int64 and batch["image_id"].dtype == torch.int64
    assert batch["center"].shape == (n, 2) and batch["scale"].shape == (n, 2)
    assert batch["area"].shape == (n,) and batch["box_score"].shape == (n,)
    assert batch["joints"].shape == (n, 17, 3)


def test_coco_end_to_end(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    dm = _module(root)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_dataset) == 3 and len(dm.val_dataset) == 3
    assert dm.train_dataset.training and not dm.val_dataset.training
    ann_file = dm.reader.metric_inputs()["ann_file"]
    assert ann_file.is_absolute() and ann_file.name == "person_keypoints_val2017.json"
    metric = dm.build_metric({"rescore": False, "use_nms": False, "unrelated": 1})
    assert metric.ann_file == str(ann_file) and not metric.rescore and metric.sigmas == dm.keypoint_info.sigmas
    assert dm.keypoint_info.num_keypoints == 17
    train = list(dm.train_dataloader())
    assert len(train) == 1  # 3 samples, batch 2, drop_last
    _check_batch(train[0], 2)
    val = list(dm.val_dataloader())
    assert [len(b["sample_id"]) for b in val] == [2, 1]
    assert torch.cat([b["sample_id"] for b in val]).tolist() == [0, 1, 2]  # no shuffling
    _check_batch(val[0], 2)
    assert torch.equal(val[0]["image"], next(iter(dm.val_dataloader()))["image"])


def test_validate_stage_builds_only_val(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    dm = _module(root, train_ann="annotations/missing.json")  # the train file is not needed
    dm.setup("validate")
    assert len(dm.val_dataset) == 3
    with pytest.raises(RuntimeError, match="setup"):
        _ = dm.train_dataset
    assert len(list(dm.test_dataloader())) == 2 and len(list(dm.predict_dataloader())) == 2


def test_detection_boxes_for_validation(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    write_detections(root / "dets.json")
    dm = _module(root, val_boxes="detections", det_file="dets.json", det_score_thr=0.3)
    dm.setup("validate")
    assert len(dm.val_dataset) == 2
    batch = next(iter(dm.val_dataloader()))
    assert batch["box_score"].tolist() == pytest.approx([0.9, 0.5])
    assert batch["target_weight"].sum() == 0
    with pytest.raises(ValueError, match="det_file"):
        _module(root, val_boxes="detections")


def test_workers_and_photometric(tmp_path: Path) -> None:
    root = make_tiny_coco(tmp_path / "coco")
    aug = dict(
        scale_factor=0.3,
        rotation_factor=40.0,
        rotation_prob=0.6,
        flip=True,
        half_body_prob=0.0,
        half_body_min_joints=8,
        photometric=dict(color_jitter_prob=0.8, noise_prob=0.3),
    )
    dm = _module(root, num_workers=2, persistent_workers=True, augmentation=aug, color_rgb=False)
    dm.setup("fit")
    assert dm.train_dataset.photometric is not None and dm.val_dataset.photometric is None
    loader = dm.train_dataloader()
    assert loader.persistent_workers and loader.num_workers == 2
    _check_batch(next(iter(loader)), 2)


def test_missing_dataset_message(tmp_path: Path) -> None:
    root = tmp_path / "nowhere" / "coco"
    dm = _module(root)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    msg = str(info.value)
    for expected in (
        str(root / "annotations" / "person_keypoints_train2017.json"),
        "ROOT/images/val2017/",
        "python -m src.readers.coco_download --root",
        "data.root=",
        "data=synthetic",
    ):
        assert expected in msg, expected
    with pytest.raises(DatasetNotFoundError, match="data=synthetic"):
        dm.setup("fit")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        _module(tmp_path, augmentation=dict(rotate=10))
    with pytest.raises(KeyError, match="unknown keypoint layout"):
        _module(tmp_path, layout="coco133")


def test_synthetic_end_to_end(tmp_path: Path) -> None:
    dm = _module(
        tmp_path / "synthetic",
        name="synthetic",
        synthetic=dict(seed=0, num_train=4, num_val=2, image_size=(160, 120), workers=1),
    )
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_dataset) >= 2 and len(dm.val_dataset) >= 1
    _check_batch(next(iter(dm.train_dataloader())), 2)
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape[1:] == (3, 64, 48)
    assert dm.reader.metric_inputs()["ann_file"].is_file()


@pytest.mark.skipif(not REAL.is_dir(), reason="real COCO samples (/work/shared) not available")
def test_real_samples_as_coco_root(tmp_path: Path) -> None:
    root = layout_real_coco(tmp_path / "coco")
    dm = _module(root, train_ann=PATHS["val_ann"], train_images=PATHS["val_images"], batch_size=4)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_dataset) == 12 and len(dm.val_dataset) == 12
    _check_batch(next(iter(dm.train_dataloader())), 4)
    det = _module(root, val_boxes="detections", det_file=str(REAL / "test_coco_det_AP_H_56.json"), val_batch_size=8)
    det.setup("validate")
    assert len(det.val_dataset) == 118
    _check_batch(next(iter(det.val_dataloader())), 8)


def test_data_sigma_must_agree_with_heatmap_codecs_only(tmp_path):
    """data.sigma is a heatmap sigma: checked against heatmap codecs (top-down and bottom-up), not
    against SimCC, whose sigma counts bins."""
    from src.codecs.associative_embedding import AssociativeEmbedding
    from src.codecs.simcc_label import SimCCLabel
    from src.codecs.udp_heatmap import UDPHeatmap

    udp = UDPHeatmap(input_size=(48, 64), heatmap_size=(12, 16), sigma=2.0)
    bottomup = AssociativeEmbedding(num_joints=17, input_size=64, output_sizes=(16, 32), sigma=2.0)
    for codec in (_codec(), udp, bottomup):
        with pytest.raises(ValueError, match=r"codec's sigma .* differs from data.sigma=3"):
            _module(tmp_path, codec=codec, sigma=3)
    simcc = SimCCLabel(input_size=(48, 64), sigma=(4.9, 5.66))
    assert _module(tmp_path, codec=simcc, sigma=2).codec is simcc
