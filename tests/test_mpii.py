"""MPII end to end: every MPII recipe trains a step on synthetic MPII data, evaluation reports
PCKh under the official keys, the oracle reaches the codec ceiling, and a model of another
keypoint layout is refused."""

from __future__ import annotations

import json

import pytest
import torch

from src.eval import evaluate
from src.train import train
from tests.helpers import REAL_MPII, compose_run, layout_real_mpii

TINY_MPII = ["data.reader.synthetic.num_train=6", "data.reader.synthetic.num_val=4", "data.reader.synthetic.seed=5"]
SMALL = ["model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]", "model.pretrained=null"]
# Tiny widths per network family (the real sizes are checked against the official state_dicts).
TINY_NETS = {
    "hrnet": [
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
    ],
    "simplebaseline": ["model.net.base_width=8", "model.net.deconv_channels=16", "model.net.layers=[1,1,1,1]"],
    "hourglass": ["model.net.num_stacks=2", "model.net.depth=2"],
    "rtmpose": [
        "model.net.size=null",
        "++model.net.deepen_factor=0.167",
        "++model.net.widen_factor=0.125",
        "++model.net.hidden_dims=32",
        "++model.net.s=16",
        "model.scheduler.cosine_begin_epoch=null",  # 105 of 210 epochs: outside a one-step run
        "callbacks.pipeline_switch.stage2_num_epochs=1",  # the last 30 of 210 epochs: the one epoch here
    ],
}
RECIPES = {
    "hrnet_w32_256x256_mpii": "hrnet",
    "simplebaseline_r50_256x256_mpii": "simplebaseline",
    "simplebaseline_r101_256x256_mpii": "simplebaseline",
    "simplebaseline_r152_256x256_mpii": "simplebaseline",
    "hourglass_hg8_256x256_mpii": "hourglass",
    "hourglass_hg2_256x256_mpii": "hourglass",
    "quickstart_mpii": "hrnet",
    "rtmpose_m_256x256_mpii": "rtmpose",
}
PCKH_KEYS = [
    "val/PCKh",
    "val/PCKh@0.1",
    *(f"val/PCKh/{g}" for g in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_fast_dev_run_of_every_mpii_recipe(recipe, tmp_path, data_dir):
    overrides = [
        f"experiment={recipe}",
        "data=synthetic_mpii",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *(SMALL if RECIPES[recipe] != "rtmpose" else [o for o in SMALL if "heatmap_size" not in o]),
        *TINY_NETS[RECIPES[recipe]],
        *TINY_MPII,
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    assert cfg.model.net.num_joints == 16 and cfg.data.layout == "mpii16"
    assert cfg.callbacks.model_checkpoint.monitor == "val/PCKh" and cfg.callbacks.model_checkpoint.mode == "max"
    assert cfg.optimized_metric == "val/PCKh"
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert set(PCKH_KEYS) <= set(metrics) and "val/AP" not in metrics


def test_every_mpii_recipe_is_tested():
    from tests.helpers import CONF_DIR

    assert {p.stem for p in (CONF_DIR / "experiment").glob("*mpii*.yaml")} == set(RECIPES)


def test_recipes_keep_the_published_settings():
    """The values the published numbers were obtained with."""
    hrnet = compose_run("train", ["experiment=hrnet_w32_256x256_mpii"], *_dirs())
    assert list(hrnet.model.codec.input_size) == [256, 256] and list(hrnet.model.codec.heatmap_size) == [64, 64]
    assert hrnet.model.optimizer.lr == 1e-3 and list(hrnet.model.scheduler.milestones) == [170, 200]
    assert hrnet.trainer.max_epochs == 210 and hrnet.data.sigma == 2 and hrnet.data.color_rgb
    assert hrnet.data.augmentation.rotation_factor == 30 and hrnet.data.augmentation.scale_factor == 0.25
    assert hrnet.data.augmentation.half_body_prob == 0
    sb = compose_run("train", ["experiment=simplebaseline_r152_256x256_mpii"], *_dirs())
    assert sb.trainer.max_epochs == 140 and list(sb.model.scheduler.milestones) == [90, 120]
    assert not sb.data.color_rgb and sb.model.net.depth == 152
    hg = compose_run("train", ["experiment=hourglass_hg8_256x256_mpii"], *_dirs())
    assert hg.model.optimizer._target_ == "torch.optim.RMSprop" and hg.model.optimizer.lr == 2.5e-4
    assert hg.data.sigma == 1 and hg.model.net.num_stacks == 8 and list(hg.model.scheduler.milestones) == [60, 90]


def _dirs():
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    return root / "run", root / "data"


def test_checkpoint_evaluates_with_pckh_and_refuses_another_layout(tmp_path, data_dir):
    overrides = [
        "experiment=quickstart_mpii",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "data.batch_size=2",
        "data.val_batch_size=2",
        "num_visualized=0",
        *SMALL,
        *TINY_NETS["hrnet"],
        *TINY_MPII,
        "model.codec.refine=quarter",
        "model.codec.unbiased=false",
    ]
    train(compose_run("train", overrides, tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["task_class"] == "src.tasks.topdown.TopDownPoseModule"

    eval_dir = tmp_path / "eval"
    ecfg = compose_run(
        "eval", [f"ckpt_path={ckpt}", "data=synthetic_mpii", "refine=dark", *TINY_MPII], eval_dir, data_dir
    )
    results = evaluate(ecfg)
    written = json.loads((eval_dir / "metrics.json").read_text())
    for key in PCKH_KEYS:
        assert written[key] == pytest.approx(results[key]) and 0 <= written[key] <= 100
    assert written["flip_test"] is True

    bad = compose_run(
        "eval",
        [f"ckpt_path={ckpt}", "data=synthetic", "data.reader.synthetic.num_train=2", "data.reader.synthetic.num_val=2"],
        tmp_path / "bad",
        data_dir,
    )
    with pytest.raises(ValueError, match=r"'mpii16' layout \(16 keypoints\).*'coco17' \(17 keypoints\)"):
        evaluate(bad)
    with pytest.raises(ValueError, match="test_scales"):
        evaluate(
            compose_run(
                "eval",
                [f"ckpt_path={ckpt}", "data=synthetic_mpii", "test_scales=[1.0]", *TINY_MPII],
                tmp_path / "bad2",
                data_dir,
            )
        )


def test_oracle_pckh_on_synthetic_mpii(tmp_path, data_dir):
    """The ground truth through the quickstart's codec: PCKh@0.5 of the codec ceiling."""
    cfg = compose_run(
        "eval", ["experiment=quickstart_mpii", "oracle=true", "num_visualized=2", *TINY_MPII], tmp_path, data_dir
    )
    metrics = evaluate(cfg)
    assert metrics["oracle/PCKh"] >= 99.5, metrics
    assert (tmp_path / "predictions.jpg").is_file()


@pytest.mark.skipif(not REAL_MPII.is_dir(), reason="real MPII samples (../shared) not available")
@pytest.mark.parametrize("thorax", ["thor", "thrx"])
def test_oracle_pckh_on_real_samples(tmp_path, thorax):
    """The real MPII samples through the official HRNet MPII codec (256x256, heatmap 64, sigma 2),
    with the gt_valid.mat joint names of the HRNet files ("thor") and of the MPII tools ("thrx")."""
    from dataclasses import replace

    from src.readers.mpii_ground_truth import read_mpii_ground_truth, write_mpii_ground_truth

    root = layout_real_mpii(tmp_path / "mpii")
    gt_file = root / "annot" / "gt_valid.mat"
    gt = read_mpii_ground_truth(gt_file)
    names = tuple(thorax if name == "thor" else name for name in gt.joint_names)
    write_mpii_ground_truth(gt_file, replace(gt, joint_names=names))
    cfg = compose_run(
        "eval",
        ["experiment=hrnet_w32_256x256_mpii", "oracle=true", f"data.root={root}"],
        tmp_path / "run",
        tmp_path / "data",
    )
    metrics = evaluate(cfg)
    assert metrics["oracle/PCKh"] >= 99.5, metrics
