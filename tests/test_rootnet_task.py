"""RootNet as a mode of the 3D paradigm: the RootDepth codec against the official post-processing,
the oracle on Human3.6M files with the real intrinsics of the reference facts, the root metrics,
the k-value baseline, training and evaluation end to end, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from src.codecs.crop_3d import CropSample
from src.codecs.root_depth import RootDepth
from src.datasets.pose3d import Pose3DDataset
from src.eval import evaluate
from src.layouts import H36M18, MUPOTS17
from src.metrics.root_error import ap_root
from src.metrics.root_metric import MuPoTSRootMetric, RootMetric
from src.readers.h36m_naming import ACTIONS
from src.tasks.pose3d import Pose3DModule
from src.train import train
from tests.data.test_h36m_reader import edit, make_tiny_h36m, reader
from tests.helpers import TINY_POSENET, compose_run

#: The official RootNet post-processing on one output (rootnet_vectors.json "postprocess_example",
#: computed with the 3DMPPE RootNet code): grid x, y and depth, the processed box, Human3.6M
#: intrinsics -> image point and camera root.
OFFICIAL_OUTPUT = [32.0, 16.0, 5000.0]
OFFICIAL_BBOX = [187.625, 187.625, 623.75, 623.75]
H36M_F = [1145.04940459, 1143.78109572]
H36M_C = [512.54150496, 515.45148698]
OFFICIAL_IMAGE = [499.5, 343.5625]
OFFICIAL_ROOT_CAM = [-56.947346, -751.406837, 5000.0]
#: Its k-value example: that box with those focal lengths (float32).
OFFICIAL_K = 3669.46728515625

TINY_ROOTNET = [
    "model=rootnet",
    "model.net.depth=18",
    "model.net.base_width=8",
    "model.net.layers=[1,1,1,1]",
    "model.net.deconv_channels=16",
    "model.codec.input_size=[64,64]",
    "model.codec.output_size=[16,16]",
    "model.pretrained=null",
]
TINY_DATA = [
    "data=synthetic_h36m",
    "++data.reader.synthetic={subjects:[1,9],actions:[2,3],subactions:1,frames:2,num_cameras:2,image_size:[96,96]}",
    "data.train_subjects=[1]",
    "data.val_subjects=[9]",
    "data.val_frame_step=1",
    "data.batch_size=2",
    "data.val_batch_size=4",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_decoding_is_the_official_post_processing():
    codec = RootDepth()
    coords = torch.tensor([[OFFICIAL_OUTPUT]], dtype=torch.float64)
    bbox = np.array([OFFICIAL_BBOX])
    assert codec.to_image(coords, bbox)[0, 0] == pytest.approx(OFFICIAL_IMAGE, abs=1e-6)
    camera = codec.to_camera(coords, bbox, np.zeros(1), np.array([H36M_F]), np.array([H36M_C]))
    assert camera[0, 0] == pytest.approx(OFFICIAL_ROOT_CAM, abs=1e-5)
    # the network's (N, 3) output is the coordinate of one point per crop
    assert codec.decode(torch.tensor([OFFICIAL_OUTPUT])).shape == (1, 1, 3)


def test_targets_root_on_the_grid_absolute_depth_and_the_official_k():
    codec = RootDepth()
    joints = np.zeros((18, 2))
    joints[0] = [128.0, 64.0]  # the pelvis, in crop pixels of the 256 x 256 input
    sample = CropSample(
        joints_crop=joints,
        depth_relative=np.zeros(18),
        root_depth=4321.0,
        visible=np.ones(18),
        have_depth=True,
        bbox=np.array(OFFICIAL_BBOX),
        focal=np.array(H36M_F),
        root=0,
    )
    targets = codec.encode_crop(sample)
    assert set(targets) == set(codec.target_keys)
    assert targets["coords"].tolist() == [[32.0, 16.0, 4321.0]] and targets["coord_weight"].tolist() == [1.0]
    assert float(targets["k_value"]) == OFFICIAL_K
    outside = codec.encode_crop(CropSample(**{**sample.__dict__, "joints_crop": joints - 200}))
    assert outside["coord_weight"].tolist() == [0.0]  # official: the root must lie inside the crop
    flat = codec.encode_crop(CropSample(**{**sample.__dict__, "have_depth": False}))
    assert flat["coords"][0, 2] == 0.0 and float(flat["have_depth"]) == 0.0
    # the flip-back mirrors x on the grid and keeps the depth
    assert codec.flip_back(torch.tensor([[[10.0, 5.0, 3000.0]]]), []).tolist() == [[[53.0, 5.0, 3000.0]]]


def test_oracle_on_human36m_files_with_the_real_intrinsics(tmp_path):
    """The oracle MRPE through the reader, crops and camera, with the Human3.6M intrinsics of the facts."""
    root = make_tiny_h36m(tmp_path / "h36m", subjects=(9,))

    def real_intrinsics(cameras):
        for cam in cameras.values():
            cam["f"], cam["c"] = H36M_F, H36M_C

    edit(root, 9, "camera", real_intrinsics)
    codec = RootDepth()  # the official 256 x 256 input and 64 x 64 grid
    records = reader(root).load_records("val", keypoint_info=H36M18, aspect_ratio=1.0, training=False)
    dataset = Pose3DDataset(records, codec=codec, keypoint_info=H36M18, training=False)
    metric = RootMetric(keypoint_info=H36M18, actions=ACTIONS)
    for predictions, batch, _ in Pose3DModule.oracle(codec, DataLoader(dataset, batch_size=4)):
        metric.update(predictions, batch)
    result = metric.compute()
    assert len(records) > 0 and result["MRPE"] < 1.0 and result["MRPE_z"] < 1e-3


def test_mrpe_per_axis_per_action_and_crops_without_truth():
    metric = RootMetric(keypoint_info=H36M18, actions=ACTIONS)
    gt = torch.zeros(4, 18, 3)
    gt[:3, 0] = torch.tensor([[0.0, 0.0, 4000.0], [100.0, 0.0, 5000.0], [0.0, 50.0, 3000.0]])  # the 4th: no truth
    pred = gt[:, 0] + torch.tensor([[30.0, 40.0, 0.0], [0.0, 0.0, -100.0], [0.0, 0.0, 20.0], [9.0, 9.0, 9.0]])
    batch = {
        "sample_id": torch.arange(4),
        "image_id": torch.arange(4),
        "joints_cam": gt,
        "action": torch.tensor([0, 0, 1, 1]),
    }
    metric.update({"root_cam": pred}, batch)
    metric.update({"root_cam": pred[:1]}, {k: v[:1] for k, v in batch.items()})  # a DDP padding repeat
    result = metric.compute()
    assert result["MRPE"] == pytest.approx((50 + 100 + 20) / 3)
    assert result["MRPE_x"] == pytest.approx(10.0) and result["MRPE_y"] == pytest.approx(40 / 3)
    assert result["MRPE_z"] == pytest.approx(40.0)
    assert result[f"MRPE/{ACTIONS[0]}"] == pytest.approx(75.0) and result[f"MRPE/{ACTIONS[1]}"] == pytest.approx(20.0)


def test_ap_root_over_every_annotated_person_in_percent():
    truth = {
        0: np.array([[0.0, 0.0, 3000.0], [1000.0, 0.0, 5000.0]]),
        1: np.array([[0.0, 0.0, 4000.0]]),
        2: np.zeros((0, 3)),
    }
    metric = MuPoTSRootMetric(keypoint_info=MUPOTS17, ground_truth_roots=truth)
    pred = torch.tensor([[10.0, 0.0, 3100.0], [0.0, 0.0, 4600.0], [0.0, 0.0, 3000.0]])
    gt = torch.zeros(3, 17, 3)
    gt[:2, 14] = torch.tensor([[0.0, 0.0, 3000.0], [0.0, 0.0, 4000.0]])
    batch = {
        "sample_id": torch.arange(3),
        "image_id": torch.tensor([0, 1, 2]),
        "joints_cam": gt,
        "score": torch.tensor([0.9, 0.8, 0.7]),
    }
    metric.update({"root_cam": pred}, batch)
    result = metric.compute()
    expected = ap_root(
        [pred[:1].numpy(), pred[1:2].numpy(), pred[2:].numpy()], [[0.9], [0.8], [0.7]], list(truth.values())
    )
    assert result["AP_root25"] == pytest.approx(100 * expected) and MuPoTSRootMetric.monitor == "AP_root25"
    assert result["MRPE"] == pytest.approx((np.hypot(10, 100) + 600) / 2)
    stray = MuPoTSRootMetric(keypoint_info=MUPOTS17, ground_truth_roots={5: np.ones((1, 3))})
    stray.update({"root_cam": pred[:1]}, {k: v[:1] for k, v in batch.items()})
    with pytest.raises(ValueError, match="not in the ground truth"):
        stray.compute()


def test_rootnet_trains_evaluates_and_beats_nothing_by_chance(tmp_path, data_dir):
    cfg = compose_run("train", [*TINY_ROOTNET, *TINY_DATA, "trainer.max_epochs=1"], tmp_path / "run", data_dir)
    assert cfg.callbacks.model_checkpoint.monitor == "val/MRPE" and cfg.callbacks.model_checkpoint.mode == "min"
    metrics = train(cfg)
    assert {"val/MRPE", "val/MRPE_x", "val/MRPE_y", "val/MRPE_z"} <= set(metrics) and "val/MPJPE" not in metrics
    ckpt = next((tmp_path / "run" / "checkpoints").glob("last.ckpt"))
    results = evaluate(compose_run("eval", [f"ckpt_path={ckpt}", *TINY_DATA], tmp_path / "eval", data_dir))
    assert results["val/MRPE"] == pytest.approx(metrics["val/MRPE"], rel=1e-4)
    written = evaluate(
        compose_run("eval", [f"ckpt_path={ckpt}", *TINY_DATA, "write_bbox_root=true"], tmp_path / "w", data_dir)
    )
    entries = json.loads(Path(written["bbox_root_file"]).read_text())
    assert Path(written["bbox_root_file"]).name == "bbox_root_synthetic_h36m_output.json"
    assert len(entries) > 0 and set(entries[0]) == {"image_id", "bbox", "root_cam", "score"}
    # the official two-stage evaluation: PoseNet reads RootNet's boxes and root depths
    two_stage = [
        *TINY_POSENET,
        "model=posenet",
        "model.pretrained=null",
        "oracle=true",
        "data.reader.use_gt_info=false",
    ]
    posenet = evaluate(
        compose_run(
            "eval",
            [*two_stage, *TINY_DATA, f"data.reader.bbox_root_file={written['bbox_root_file']}"],
            tmp_path / "p",
            data_dir,
        )
    )
    assert np.isfinite(posenet["oracle/MPJPE"])
    oracle = evaluate(compose_run("eval", [*TINY_ROOTNET, *TINY_DATA, "oracle=true"], tmp_path / "oracle", data_dir))
    assert oracle["oracle/MRPE"] < 1.0
    baseline = evaluate(compose_run("eval", [*TINY_ROOTNET, *TINY_DATA, "baseline=true"], tmp_path / "base", data_dir))
    # the k-value alone: the box-size prior is off by a body's depth variation, far from the oracle
    assert baseline["baseline/MRPE"] > 50 * max(oracle["oracle/MRPE"], 1.0)
    written = json.loads((tmp_path / "base" / "metrics.json").read_text())
    assert written["baseline/MRPE_z"] == pytest.approx(baseline["baseline/MRPE_z"])


def test_data_without_a_root_metric_and_export_are_refused(tmp_path, data_dir):
    with pytest.raises(Exception, match="data=coco has no root_metric"):
        compose_run("train", [*TINY_ROOTNET, "data=coco"], tmp_path, data_dir).data.metric  # noqa: B018
    cfg = compose_run("train", [*TINY_ROOTNET, *TINY_DATA], tmp_path / "x", data_dir)
    from hydra.utils import instantiate

    from src.export import export

    task = instantiate(cfg.model, _recursive_=False)
    with pytest.raises(ValueError, match="reads more than the image"):
        export(task, tmp_path / "rootnet.onnx")


def test_absolute_prediction_takes_rootnet_depths_and_refuses_swapped_checkpoints(tmp_path):
    from src.inference.outputs import annotate
    from src.inference.predictor import Predictor
    from src.layouts import H36M18
    from tests.helpers import random_checkpoint

    posenet = random_checkpoint("pose3d", tmp_path / "posenet.ckpt", tmp_path)
    rootnet = random_checkpoint("root3d", tmp_path / "rootnet.ckpt", tmp_path, std=0.02)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(2)]
    boxes = [np.array([[10, 10, 40, 90, 0.9], [80, 20, 50, 80, 0.8], [200, 200, 10, 10, 0.5]], np.float32)] * 2
    absolute = Predictor.load(posenet, root_ckpt=rootnet, batch_size=4)
    roots = absolute.root.infer(images, boxes)
    people = absolute(images, boxes)
    for found, root in zip(people, roots):
        assert len(found) == 2 and root["box_index"].tolist() == [0, 1]  # the box outside the image is dropped
        assert found.root_depth == pytest.approx(root["root_depth"])  # PoseNet placed at RootNet's depths
        pelvis = H36M18.keypoint_names.index("pelvis")
        relative = found.joints_cam[..., 2] - found.root_depth[:, None]  # the depth bins span +-1 m
        assert np.abs(relative).max() <= 1000.0 and np.abs(relative).max() > 0
        assert np.allclose(found.joints_3d, found.joints_cam - found.joints_cam[:, pelvis : pelvis + 1], atol=1e-3)
    picture = annotate(cv2.cvtColor(images[0], cv2.COLOR_RGB2BGR), people[0], H36M18, score_thr=0.0)
    assert picture.shape == (120, 160, 3)
    fallback = Predictor.load(posenet, batch_size=4)(images[0], boxes[0])  # no RootNet: the k-value
    assert not np.allclose(fallback.root_depth, people[0].root_depth)
    with pytest.raises(ValueError, match="is a RootNet model.*root_ckpt"):
        Predictor.load(rootnet)
    with pytest.raises(ValueError, match="predicts poses, not roots"):
        Predictor.load(posenet, root_ckpt=posenet)


def test_an_official_rootnet_snapshot_converts_and_the_wrong_family_is_refused(tmp_path, data_dir):
    """A RootNet snapshot as the official code writes it (DataParallel's module. prefix, under
    "network"; here without BatchNorm step counters, as files of older PyTorch) converts strictly and
    evaluates with MRPE; a PoseNet snapshot given for RootNet lists the tensors that differ."""
    from hydra.utils import instantiate

    from src.convert import convert

    tiny = [o for o in TINY_ROOTNET if o != "model.pretrained=null"]
    net = instantiate(compose_run("train", [*tiny, *TINY_DATA], tmp_path / "a", data_dir).model.net)
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    official = tmp_path / "snapshot_18.pth.tar"
    torch.save({"epoch": 18, "network": state, "optimizer": {}}, official)
    out = convert(compose_run("convert", [*tiny, *TINY_DATA, f"official={official}"], tmp_path / "c", data_dir))
    converted = torch.load(out, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in state.items():
        assert torch.equal(converted[f"net.{key[len('module.') :]}"], value)
    metrics = evaluate(compose_run("eval", [f"ckpt_path={out}", *TINY_DATA], tmp_path / "e", data_dir))
    assert metrics["val/MRPE"] > 0
    posenet = instantiate(
        compose_run("train", [*TINY_POSENET, "model=posenet", *TINY_DATA], tmp_path / "p", data_dir).model.net
    )
    wrong = tmp_path / "posenet_snapshot.pth.tar"
    torch.save({"network": {f"module.{k}": v for k, v in posenet.state_dict().items()}}, wrong)
    with pytest.raises(ValueError, match="does not match RootNet"):
        convert(compose_run("convert", [*tiny, *TINY_DATA, f"official={wrong}"], tmp_path / "w", data_dir))
