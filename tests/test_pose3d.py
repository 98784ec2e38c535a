"""3D PoseNet end to end on a tiny synthetic Human3.6M root: every recipe trains a step, the
oracle recovers the ground truth through crop, depth bins and camera, a checkpoint evaluates with
MPJPE / PA-MPJPE per action, 2D and 3D checkpoints are refused by the other's data, synthetic MPII
mixes in, and prediction writes root-relative joints and pictures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from src.eval import evaluate
from src.train import train
from tests.helpers import CONF_DIR, TINY_POSENET, compose_run

TINY_H36M = [
    "++data.reader.synthetic={subjects:[1,9],actions:[2,3],subactions:1,frames:2,num_cameras:2,image_size:[96,96]}",
    "data.train_subjects=[1]",
    "data.val_subjects=[9]",
    "data.val_frame_step=1",
]
TINY_MPII = [
    "data.reader.extra_2d.synthetic.num_train=4",
    "data.reader.extra_2d.synthetic.num_val=2",
    "data.reader.extra_2d.synthetic.seed=5",
]
TINY_NET = [*TINY_POSENET, "model.pretrained=null"]
RECIPES = ("posenet_r50_h36m_p1", "posenet_r50_h36m_p2", "quickstart_3d")
KEYS = ["val/MPJPE", "val/PA-MPJPE", "val/MPJPE/Directions", "val/PA-MPJPE/Discussion"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _synthetic(recipe: str) -> list[str]:
    return [f"experiment={recipe}", "data=synthetic_h36m", *TINY_H36M]


@pytest.mark.parametrize("recipe", RECIPES)
def test_fast_dev_run_of_every_3d_recipe(recipe, tmp_path, data_dir):
    overrides = [*_synthetic(recipe), "debug=fast_dev_run", "data.batch_size=2", "data.val_batch_size=2", *TINY_NET]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    headline = "val/PA-MPJPE" if recipe.endswith("p1") else "val/MPJPE"
    assert cfg.callbacks.model_checkpoint.monitor == headline and cfg.callbacks.model_checkpoint.mode == "min"
    assert cfg.optimized_metric == headline
    assert cfg.model.net.num_joints == 18 and cfg.data.layout == "h36m18"
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert {"val/MPJPE", "val/PA-MPJPE"} <= set(metrics) and "val/AP" not in metrics
    assert any(k.startswith("val/MPJPE/") for k in metrics)  # the actions of the one validation batch


def test_every_3d_recipe_is_tested():
    # the MuCo recipes are tested with the synthetic MuCo data (tests/test_absolute_3d.py)
    posenet = {p.stem for p in (CONF_DIR / "experiment").glob("*posenet*.yaml") if "muco" not in p.stem}
    assert posenet | {"quickstart_3d"} == set(RECIPES)


def test_recipes_keep_the_published_settings(tmp_path):
    p1 = compose_run("train", ["experiment=posenet_r50_h36m_p1"], tmp_path / "a", tmp_path / "d")
    p2 = compose_run("train", ["experiment=posenet_r50_h36m_p2"], tmp_path / "b", tmp_path / "d")
    assert list(p1.data.train_subjects) == [1, 5, 6, 7, 8, 9] and list(p1.data.val_subjects) == [11]
    assert list(p2.data.train_subjects) == [1, 5, 6, 7, 8] and list(p2.data.val_subjects) == [9, 11]
    for cfg in (p1, p2):
        assert cfg.data.train_frame_step == 5 and cfg.data.val_frame_step == 64 and cfg.data.mix_2d
        assert list(cfg.model.codec.input_size) == [256, 256] and list(cfg.model.codec.output_size) == [64, 64]
        assert cfg.model.codec.depth_dim == 64 and cfg.model.codec.bbox_3d_depth == 2000
        assert cfg.model.net.depth == 50 and cfg.model.optimizer.lr == 1e-3
        assert list(cfg.model.scheduler.milestones) == [17, 21] and cfg.trainer.max_epochs == 25
        assert cfg.data.batch_size == 32 and cfg.model.evaluation.flip_test
        assert cfg.data.metric.alignment == "rigid" and cfg.data.reader.use_gt_info
        aug = cfg.data.augmentation_3d
        assert (aug.scale_factor, aug.rotation_factor, aug.color_factor, aug.occlusion_prob) == (0.25, 30, 0.2, 0.5)


def test_oracle_recovers_the_camera_joints(tmp_path, data_dir):
    """Ground truth through crop, coordinate targets, depth bins and back-projection: about zero."""
    cfg = compose_run("eval", ["model=posenet", "data=synthetic_h36m", "oracle=true", *TINY_H36M], tmp_path, data_dir)
    metrics = evaluate(cfg)
    assert metrics["oracle/MPJPE"] < 0.5 and metrics["oracle/PA-MPJPE"] < 0.5, metrics


def test_mean_pose_baseline(tmp_path, data_dir):
    """The mean root-relative training pose for every validation sample: a clearly worse figure."""
    cfg = compose_run("eval", ["model=posenet", "data=synthetic_h36m", "baseline=true", *TINY_H36M], tmp_path, data_dir)
    metrics = evaluate(cfg)
    assert 30 < metrics["baseline/MPJPE"] < 500 and 30 < metrics["baseline/PA-MPJPE"] < 500
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)


def test_mpii_mixes_into_training(tmp_path, data_dir):
    from src.codecs.integral_3d import Integral3D
    from src.utils.builders import build_datamodule

    cfg = compose_run(
        "train", [*_synthetic("quickstart_3d"), "data.mix_2d=true", *TINY_MPII, *TINY_NET], tmp_path, data_dir
    )
    codec = Integral3D(input_size=(64, 64), output_size=(16, 16), depth_dim=16)
    datamodule = build_datamodule(cfg.data, codec=codec, paradigm="pose3d")
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.train_dataset
    have_depth = dataset._have_depth
    n3d, n2d = int((have_depth > 0).sum()), int((have_depth == 0).sum())
    assert n3d == 8 and n2d >= 4  # 1 subject x 2 actions x 2 frames x 2 cameras; the synthetic MPII people
    assert len(dataset) == 2 * max(n3d, n2d)
    assert len(datamodule.val_dataset) == 8  # validation reads Human3.6M only
    kinds = [float(dataset[(i, 0)]["have_depth"]) for i in (0, len(dataset) - 1)]
    assert kinds == [1.0, 0.0]


def test_checkpoint_evaluates_and_predicts_and_paradigms_are_kept_apart(tmp_path, data_dir):
    overrides = [
        *_synthetic("quickstart_3d"),
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *TINY_NET,
    ]
    train(compose_run("train", overrides, tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["task_class"] == "src.tasks.pose3d.Pose3DModule"

    eval_dir = tmp_path / "eval"
    results = evaluate(
        compose_run("eval", [f"ckpt_path={ckpt}", "data=synthetic_h36m", *TINY_H36M], eval_dir, data_dir)
    )
    written = json.loads((eval_dir / "metrics.json").read_text())
    for key in KEYS:
        assert written[key] == pytest.approx(results[key]) and written[key] > 0
    assert written["flip_test"] is True

    with pytest.raises(ValueError, match=r"data=synthetic_mpii provides pipelines for \['topdown'\].*'pose3d'"):
        evaluate(compose_run("eval", [f"ckpt_path={ckpt}", "data=synthetic_mpii"], tmp_path / "bad", data_dir))

    # prediction on an image with a person box: root-relative joints in mm and a picture
    from src.predict import predict

    image_dir = tmp_path / "images"
    image_dir.mkdir()
    cv2.imwrite(str(image_dir / "a.jpg"), np.full((96, 128, 3), 90, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"file_name": "a.jpg", "bbox": [30, 10, 40, 70], "score": 0.9}]))
    out = predict(
        compose_run("predict", [f"ckpt_path={ckpt}", f"input={image_dir}", f"boxes={boxes}"], tmp_path / "p", data_dir)
    )
    (person,) = json.loads((out / "results.json").read_text())
    joints = np.array(person["joints_3d"])
    assert joints.shape == (18, 3) and np.allclose(joints[0], 0.0)
    assert person["focal"] == 128 and person["root_depth"] > 0 and len(person["keypoints"]) == 18 * 3
    picture = cv2.imread(str(out / "pictures" / "a.jpg"))
    assert picture.shape == (96, 128, 3)  # the 3D view is an inset: pictures keep the image size


def test_2d_models_are_refused_by_3d_data(tmp_path, data_dir):
    """What `src.eval` does with a top-down checkpoint and data=h36m: the data names its paradigms."""
    from src.codecs.msra_heatmap import MSRAHeatmap
    from src.utils.builders import build_datamodule

    cfg = compose_run("eval", ["data=synthetic_h36m", *TINY_H36M], tmp_path, data_dir)
    codec = MSRAHeatmap(input_size=(64, 64), heatmap_size=(16, 16), sigma=2)
    with pytest.raises(ValueError, match=r"data=synthetic_h36m provides pipelines for \['pose3d'\].*'topdown'"):
        build_datamodule(cfg.data, codec=codec, paradigm="topdown")
