"""End to end: every model config trains a step (fast_dev_run); a tiny model overfits; eval reads checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from src.eval import evaluate, model_overrides
from src.train import train
from tests.helpers import MODEL_CONFIGS, REAL_COCO, TINY_H36M_ROOT, TINY_SYNTHETIC, compose_run, layout_real_coco

# Full-size networks at a small input: 64x64 is a multiple of 32 (ResNet) and 64 (Hourglass, HigherHRNet).
# Per paradigm, the data each model trains on in these tests (synthetic COCO for 2D, a tiny synthetic
# Human3.6M root for 3D) and the sizes.
SMALL_INPUT = {
    "topdown": ["model.codec.input_size=[64,64]", "model.codec.heatmap_size=[16,16]", *TINY_SYNTHETIC],
    "bottomup": ["model.codec.input_size=64", "model.codec.output_sizes=[16,32]", *TINY_SYNTHETIC],
    "pose3d": [*TINY_H36M_ROOT, "model.codec.input_size=[64,64]", "model.codec.output_size=[16,16]"],
}
# Families whose real widths are too slow for a training step in tests, at tiny widths (their real
# sizes are compared with mmpose's state_dicts on the meta device in tests/models).
TINY_NETS = {
    "RTMPose": [
        "++model.net.size=null",
        "++model.net.deepen_factor=0.167",
        "++model.net.widen_factor=0.125",
        "++model.net.hidden_dims=32",
        "++model.net.s=16",
        "model.scheduler.cosine_begin_epoch=null",  # 210 of 420 epochs: outside a one-step run
    ],
    "CSPNeXtHeatmap": [
        "++model.net.size=null",
        "++model.net.deepen_factor=0.167",
        "++model.net.widen_factor=0.125",
        "++model.net.deconv_channels=16",
        "model.scheduler.cosine_begin_epoch=null",
    ],
    "SimCCResNet": ["++model.net.depth=18", "++model.net.deconv_channels=16"],
    "RootNet": ["++model.net.depth=18", "++model.net.base_width=8", "++model.net.layers=[1,1,1,1]"],
    "ViTPose": [
        "++model.net.embed_dims=32",
        "++model.net.num_layers=2",
        "++model.net.num_heads=2",
        "++model.net.feedforward_channels=64",
        "++model.net.img_size=[64,64]",
        "++model.param_groups.num_layers=2",
    ],
}


def paradigm_of(model: str) -> str:
    """The paradigm of conf/model/<model>.yaml: the one its task class declares."""
    from hydra.utils import get_class

    cfg = compose_run("train", [f"model={model}"], *_scratch())
    return get_class(cfg.model._target_).paradigm


def small_run(model: str) -> list[str]:
    """Overrides that make conf/model/<model>.yaml train in seconds: a small input (no heatmap size
    for codecs without heatmaps) and, for the large families, a tiny width."""
    from hydra.utils import get_class

    cfg = compose_run("train", [f"model={model}"], *_scratch())
    paradigm = get_class(cfg.model._target_).paradigm
    overrides = list(SMALL_INPUT[paradigm])
    if paradigm == "topdown" and "heatmap_size" not in cfg.model.codec:
        overrides.remove("model.codec.heatmap_size=[16,16]")
    return overrides + TINY_NETS.get(cfg.model.net._target_.rsplit(".", 1)[-1], [])


def _scratch():
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    return root / "run", root / "data"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_every_model_config_is_tested():
    assert {
        "hrnet",
        "hrnet_w48",
        "simplebaseline",
        "simplebaseline_r101",
        "simplebaseline_r152",
        "hourglass",
        "hourglass_s2",
        "higherhrnet",
        "higherhrnet_w48",
    } <= set(MODEL_CONFIGS)


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_fast_dev_run(model, tmp_path, data_dir):
    overrides = [
        f"model={model}",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *small_run(model),
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert cfg.optimized_metric in metrics  # the data's headline: val/AP, val/MPJPE
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "run_info.json").is_file()


def test_fast_dev_run_shared_tag_map(tmp_path, data_dir):
    """HigherHRNet with one tag map (tag_per_joint=false on the network; the codec follows)."""
    overrides = [
        "model=higherhrnet",
        "model.net.tag_per_joint=false",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *SMALL_INPUT["bottomup"],
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    assert cfg.model.codec.tag_per_joint is False
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and "val/AP" in metrics
    bad = compose_run("train", [*overrides, "model.codec.tag_per_joint=true"], tmp_path, data_dir)
    with pytest.raises(InstantiationException, match="tag_per_joint"):  # the module's ValueError, via Hydra
        train(bad)


def test_fast_dev_run_bottomup_quickstart(tmp_path, data_dir):
    """The bottom-up quickstart experiment as configured (Kaiming init, shared tag map, cosine
    schedule), at a small input on a tiny multi-person dataset."""
    overrides = [
        "experiment=quickstart_bottomup",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *SMALL_INPUT["bottomup"],
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    assert cfg.model.init == "kaiming" and cfg.model.codec.tag_per_joint is False
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and "val/AP" in metrics


def test_tags_at_both_outputs(tmp_path, data_dir):
    """with_ae_loss on both outputs (an official option): the loss follows the network, training
    runs, and inference groups with the tags of both outputs (L = 2 outputs x flip = 4)."""
    overrides = [
        "model=higherhrnet",
        "model.net.with_ae_loss=[true,true]",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        *SMALL_INPUT["bottomup"],
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    assert list(cfg.model.loss.with_ae_loss) == [True, True]
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and metrics["train/push_loss"] >= 0

    module = instantiate(cfg.model, _recursive_=False).eval()
    seen = []
    parse = module.codec.parser.parse
    module.codec.parser.parse = lambda heatmaps, tags: seen.append(tags.shape) or parse(heatmaps, tags)
    module.predict_people([np.zeros((48, 80, 3), dtype=np.uint8)])
    assert seen and seen[0][-1] == 4

    bad = compose_run("train", [*overrides, "model.loss.with_ae_loss=[true,false]"], tmp_path, data_dir)
    with pytest.raises(InstantiationException, match="with_ae_loss"):
        train(bad)


#: One config per network class for the mixed-precision run (the size variants, e.g. hrnet_w48 or
#: simplebaseline_r152, build the same layers wider or deeper; each still trains in fp32 above).
MIXED_PRECISION_MODELS = [
    "hrnet",
    "simplebaseline",
    "hourglass_s2",
    "higherhrnet",
    "posenet",
    "rootnet",
    "rtmpose_t",
    "cspnext_udp",
    "simcc_r50",
    "vitpose_s",
]


def test_mixed_precision_covers_every_network_class():
    net_class = {m: compose_run("train", [f"model={m}"], *_scratch()).model.net._target_ for m in MODEL_CONFIGS}
    assert {net_class[m] for m in MIXED_PRECISION_MODELS} == set(net_class.values())


@pytest.mark.parametrize("model", MIXED_PRECISION_MODELS)
def test_fast_dev_run_mixed_precision(model, tmp_path, data_dir):
    """bf16-mixed for every network class (on a CPU, Lightning runs 16-mixed as bf16; fp16 with
    dynamic loss scaling needs a GPU): losses stay finite and the metric is computed."""
    overrides = [
        f"model={model}",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        "trainer.precision=bf16-mixed",
        *small_run(model),
    ]
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert cfg.optimized_metric in metrics


TINY_HRNET = [
    "model.net.width=8",
    "model.net.stage_num_modules=[1,1,1]",
    "model.net.num_blocks=1",
    "model.net.stem_channels=16",
    "model.codec.input_size=[48,64]",
    "model.codec.heatmap_size=[12,16]",
    "data.sigma=1",
]


def test_tiny_model_overfits_and_checkpoint_evaluates(tmp_path, data_dir):
    """Loss on a few fixed crops (no augmentation) must fall far below its start; the saved
    checkpoint then loads with weights_only=True and evaluates through src.eval."""
    no_aug = [
        "data.augmentation.scale_factor=0",
        "data.augmentation.rotation_prob=0",
        "data.augmentation.flip=false",
        "data.augmentation.half_body_prob=0",
    ]
    overrides = [
        "model=hrnet",
        *TINY_HRNET,
        *no_aug,
        *TINY_SYNTHETIC,
        "debug=overfit",
        "trainer.overfit_batches=1",
        "trainer.log_every_n_steps=1",
        "trainer.max_epochs=150",
        "trainer.check_val_every_n_epoch=150",
        "data.batch_size=4",
        "model.optimizer.lr=5e-3",
        "model.scheduler=null",
        "num_visualized=2",
    ]
    cfg = compose_run("train", overrides, tmp_path / "train", data_dir)
    metrics = train(cfg)
    history = (tmp_path / "train" / "csv" / "metrics.csv").read_text().splitlines()
    header = history[0].split(",")
    col = header.index("train/loss")
    losses = [float(row.split(",")[col]) for row in history[1:] if row.split(",")[col]]
    assert losses[-1] < 0.3 * losses[0], losses
    assert (tmp_path / "train" / "predictions.jpg").is_file()

    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    torch.load(ckpt, map_location="cpu", weights_only=True)  # plain hyperparameters only

    for flip in ("true", "false"):
        eval_dir = tmp_path / f"eval_{flip}"
        ecfg = compose_run("eval", [f"ckpt_path={ckpt}", f"flip_test={flip}", *TINY_SYNTHETIC], eval_dir, data_dir)
        results = evaluate(ecfg)
        saved = json.loads((eval_dir / "metrics.json").read_text())
        assert saved["val/AP"] == pytest.approx(results["val/AP"])
        assert saved["flip_test"] is (flip == "true")
    assert metrics["val/AP"] >= 0.0

    # src.predict on the validation images, with person boxes as a top-down model needs them
    import json as _json

    from src.predict import predict

    images = sorted((data_dir / "synthetic" / "images" / "val2017").glob("*.jpg"))[:2]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(_json.dumps([{"file_name": p.name, "bbox": [10, 10, 80, 120], "score": 0.9} for p in images]))
    pcfg = compose_run(
        "predict", [f"ckpt_path={ckpt}", f"input={images[0].parent}", f"boxes={boxes}"], tmp_path / "predict", data_dir
    )
    out = predict(pcfg)
    results = _json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in results} == {p.name for p in images}
    assert all(len(r["keypoints"]) == 17 * 3 for r in results)
    assert len(list((out / "pictures").glob("*.jpg"))) == len(list(images[0].parent.glob("*.jpg")))
    pcfg = compose_run("predict", [f"ckpt_path={ckpt}", f"input={images[0].parent}"], tmp_path / "p2", data_dir)
    with pytest.raises(ValueError, match="person boxes"):
        predict(pcfg)


def test_bottomup_checkpoint_evaluates_with_test_scales(tmp_path, data_dir):
    """A bottom-up checkpoint evaluates at the scales given by the top-level `test_scales` option
    (recorded in metrics.json); `model.*` overrides are reported as having no effect."""
    tiny = [
        "model=higherhrnet",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.net.num_deconv_basic_blocks=1",
        *SMALL_INPUT["bottomup"],
    ]
    overrides = [
        *tiny,
        *TINY_SYNTHETIC,
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "evaluate_best=false",
        "num_visualized=0",
    ]
    train(compose_run("train", overrides, tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    for scales, expected in (([], [1.0]), (["test_scales=[1.0,2.0]"], [1.0, 2.0])):
        eval_dir = tmp_path / f"eval_{len(expected)}"
        evaluate(compose_run("eval", [f"ckpt_path={ckpt}", *scales, *TINY_SYNTHETIC], eval_dir, data_dir))
        assert json.loads((eval_dir / "metrics.json").read_text())["test_scales"] == expected
    assert model_overrides(["test_scales=[2.0]", "model.evaluation.test_scales=[2.0]", "+model.x=1", "data=coco"]) == [
        "model.evaluation.test_scales=[2.0]",
        "+model.x=1",
    ]


@pytest.mark.parametrize(("model", "floor"), [("hrnet", 0.99), ("higherhrnet", 0.95)])
def test_oracle_on_synthetic_is_near_perfect(model, floor, tmp_path, data_dir):
    cfg = compose_run("eval", ["oracle=true", f"model={model}", *TINY_SYNTHETIC], tmp_path, data_dir)
    metrics = evaluate(cfg)
    assert metrics["oracle/AP"] >= floor


def test_eval_without_checkpoint_is_a_clear_error(tmp_path, data_dir):
    cfg = compose_run("eval", [*TINY_SYNTHETIC], tmp_path, data_dir)
    with pytest.raises(ValueError, match="ckpt_path"):
        evaluate(cfg)
    cfg = compose_run("eval", [f"ckpt_path={tmp_path / 'missing.ckpt'}", *TINY_SYNTHETIC], tmp_path, data_dir)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        evaluate(cfg)


def test_unknown_model_config_names_the_option(tmp_path, data_dir):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="nosuchnet"):
        compose_run("train", ["model=nosuchnet"], tmp_path, data_dir)


def test_coco_missing_is_a_clear_error(tmp_path, data_dir):
    from src.readers.errors import DatasetNotFoundError

    cfg = compose_run("train", ["data=coco", "debug=fast_dev_run"], tmp_path, tmp_path / "nodata")
    with pytest.raises(DatasetNotFoundError) as err:
        train(cfg)
    message = str(err.value)
    assert "person_keypoints_train2017.json" in message and "data=synthetic" in message


@pytest.mark.skipif(not REAL_COCO.is_dir(), reason="../shared/data/real_samples is not present")
@pytest.mark.parametrize(
    "overrides",
    [["model=hrnet"], ["model=hrnet", "model.codec.refine=dark", "model.codec.unbiased=true"], ["model=higherhrnet"]],
)
def test_oracle_on_real_coco_samples(tmp_path, overrides):
    """Real COCO images and annotations laid out as a COCO root: the codec round trip is near perfect."""
    layout_real_coco(tmp_path / "data" / "coco")
    overrides = ["oracle=true", "data=coco", *overrides]
    cfg = compose_run("eval", overrides, tmp_path / "run", tmp_path / "data")
    metrics = evaluate(cfg)
    assert metrics["oracle/AP"] >= 0.99
    assert (tmp_path / "run" / "predictions.jpg").is_file()
