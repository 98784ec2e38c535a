"""The protocols that let a dataset, metric, schedule or paradigm plug in without edits elsewhere:
the paradigm registry, codec ``encode``, metric declarations, schedules from config, test-time
options through the task, and checkpoints that name their task class."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from src.codecs.associative_embedding import AssociativeEmbedding
from src.codecs.msra_heatmap import MSRAHeatmap
from src.metrics.coco_metric import COCOKeypointMetric
from src.metrics.pckh_metric import PCKhMetric
from src.paradigms import PARADIGMS, get_paradigm
from src.tasks.loading import load_task
from src.tasks.topdown import TopDownPoseModule
from src.utils import resolvers

TINY_NET = {
    "_target_": "src.models.hrnet.PoseHighResolutionNet",
    "num_joints": 16,
    "width": 8,
    "stage_num_modules": [1, 1, 1],
    "num_blocks": 1,
    "stem_channels": 16,
}


def _topdown(**kw) -> TopDownPoseModule:
    args = dict(
        name="tiny",
        net=TINY_NET,
        keypoint_info="mpii16",
        codec={
            "_target_": "src.codecs.msra_heatmap.MSRAHeatmap",
            "input_size": [64, 64],
            "heatmap_size": [16, 16],
            "sigma": 2,
        },
        loss={"_target_": "src.losses.JointsMSELoss"},
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3},
    )
    args.update(kw)
    return TopDownPoseModule(**args)


def test_registry_names_a_task_and_a_dataset_per_paradigm():
    for paradigm in PARADIGMS.values():
        task = get_class(paradigm.task)
        dataset = get_class(paradigm.dataset)
        assert get_paradigm(task.paradigm) is paradigm  # the task names its own registry entry
        assert callable(dataset.from_reader) and callable(dataset.collate_fn)
        dataset.check_augmentation({})
    with pytest.raises(ValueError, match="unknown paradigm 'three_d'; known"):
        get_paradigm("three_d")


def test_codecs_encode_the_dict_a_sample_carries():
    codec = MSRAHeatmap(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)
    targets = codec.encode(np.array([[20.0, 30.0], [-50.0, 10.0]]), np.array([1.0, 1.0]))
    assert set(targets) == {"heatmaps", "target_weight"}
    heatmaps, weight = codec.encode_heatmaps(np.array([[20.0, 30.0], [-50.0, 10.0]]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(targets["heatmaps"], heatmaps)
    np.testing.assert_array_equal(targets["target_weight"], [1.0, 0.0])

    ae = AssociativeEmbedding(num_joints=2, input_size=64, output_sizes=(16, 32), max_num_people=3)
    people = [np.array([[[3.0, 4.0, 1.0], [5.0, 6.0, 2.0]]]), np.array([[[6.0, 8.0, 1.0], [10.0, 12.0, 2.0]]])]
    out = ae.encode(people)
    assert set(out) == {"heatmaps_0", "joints_0", "heatmaps_1", "joints_1"}
    assert out["heatmaps_0"].shape == (2, 16, 16) and out["joints_1"].shape == (3, 2, 2)
    assert out["heatmaps_1"][0, 8, 6] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="joints for 1 resolutions, the codec has 2"):
        ae.encode(people[:1])


def test_metrics_declare_monitor_mode_and_options_and_configs_follow():
    assert (COCOKeypointMetric.monitor, COCOKeypointMetric.mode) == ("AP", "max")
    assert (PCKhMetric.monitor, PCKhMetric.mode, PCKhMetric.submission_options) == ("PCKh", "max", ())
    target = "src.metrics.pckh_metric.PCKhMetric"
    cfg = OmegaConf.create(
        {
            "data": {"metric": {"_target_": target}},
            "monitor": "${metric_monitor:${data.metric._target_}}",
            "mode": "${metric_mode:${data.metric._target_}}",
            "direction": "${metric_direction:${data.metric._target_}}",
        }
    )
    resolvers.register()
    assert (cfg.monitor, cfg.mode, cfg.direction) == ("val/PCKh", "max", "maximize")


def test_schedule_from_config_with_run_length_and_nulled_keys():
    module = _topdown(
        scheduler={
            "_target_": "src.tasks.schedules.WarmupCosineLR",
            "interval": "step",
            "warmup_epochs": 1.0,
            "min_lr_ratio": 0.1,
            "milestones": None,
            "gamma": None,
        }
    )
    module.trainer = type("T", (), {"estimated_stepping_batches": 20, "max_epochs": 4})()
    config = module.configure_optimizers()
    scheduler = config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(20):
        lrs.append(scheduler.get_last_lr()[0])
        config["optimizer"].step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3 / 6)  # warm-up over 5 steps (1 epoch of 20 / 4)
    assert max(lrs) == pytest.approx(1e-3) and lrs[-1] == pytest.approx(
        1e-4 + 0.9e-3 * (1 + math.cos(math.pi * 14 / 15)) / 2
    )

    multistep = _topdown(
        scheduler={
            "_target_": "torch.optim.lr_scheduler.MultiStepLR",
            "_partial_": True,
            "milestones": [2],
            "gamma": 0.1,
        }
    ).configure_optimizers()
    assert multistep["lr_scheduler"]["interval"] == "epoch"
    assert isinstance(multistep["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.MultiStepLR)
    with pytest.raises(ValueError, match="needs a _target_"):
        _topdown(scheduler={"milestones": [2], "gamma": 0.1}).configure_optimizers()
    assert isinstance(_topdown(scheduler=None).configure_optimizers(), torch.optim.Adam)


def test_test_time_options_go_through_the_task():
    module = _topdown()
    module.set_test_options(flip_test=False, shift_heatmap=None, refine="dark")
    assert module.hparams.evaluation["flip_test"] is False and module.hparams.evaluation["shift_heatmap"] is True
    assert module.codec.refine == "dark"
    assert module.current_test_options() == {"flip_test": False, "shift_heatmap": True}
    with pytest.raises(ValueError, match=r"no test-time option \['test_scales'\]"):
        module.set_test_options(test_scales=[1.0])
    with pytest.raises(ValueError, match="refine for MSRAHeatmap must be"):
        module.set_test_options(refine="sideways")


def test_checkpoints_name_their_task_and_old_ones_their_paradigm(tmp_path):
    module = _topdown()
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": "2.6.0",
    }
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["task_class"] == "src.tasks.topdown.TopDownPoseModule"
    torch.save(checkpoint, tmp_path / "new.ckpt")
    assert type(load_task(tmp_path / "new.ckpt")) is TopDownPoseModule

    old = {k: v for k, v in checkpoint.items() if k != "task_class"}
    old["hyper_parameters"] = {**old["hyper_parameters"], "paradigm": "topdown"}
    torch.save(old, tmp_path / "old.ckpt")
    loaded = load_task(tmp_path / "old.ckpt")
    assert type(loaded) is TopDownPoseModule
    torch.testing.assert_close(loaded.state_dict(), module.state_dict())

    with pytest.raises(ValueError, match="trains topdown models"):
        _topdown(paradigm="bottomup")
    torch.save({"hyper_parameters": {"name": "x"}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="neither its task class nor its paradigm"):
        load_task(tmp_path / "bad.ckpt")
