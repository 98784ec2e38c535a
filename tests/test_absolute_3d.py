"""Absolute multi-person 3D end to end on tiny synthetic MuCo-3DHP / MuPoTS-3D: the oracles reach the
metrics' ceilings (3DPCK 100, AUC 30/31, MRPE below 1 mm, AP_root all but the skipped first
step), every RootNet and MuCo recipe trains a step (MuCo without a validation split), a MuCo
PoseNet is scored on MuPoTS-3D per sequence, and the two-stage evaluation runs on RootNet's file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.eval import evaluate
from src.train import train
from tests.helpers import CONF_DIR, TINY_POSENET, compose_run

TINY_MUCO = [
    "data=synthetic_muco",
    "++data.reader.synthetic={seed:3,num_images:6,num_val:3,image_size:[96,96],min_people:2,max_people:3}",
    "data.batch_size=2",
    "data.val_batch_size=4",
]
TINY_MUPOTS = [
    "data=synthetic_mupots",
    "++data.reader.synthetic={seed:3,num_sequences:2,frames:3,image_size:[128,96],min_people:2,max_people:3}",
    "data.val_batch_size=4",
]
TINY_ROOT = [o for o in TINY_POSENET if "depth_dim" not in o]
POSENET = ["model=posenet", *TINY_POSENET, "model.pretrained=null"]
ROOTNET = ["model=rootnet", *TINY_ROOT, "model.pretrained=null"]
RECIPES = ("rootnet_r50_h36m", "rootnet_r50_muco", "posenet_r50_muco", "quickstart_rootnet")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_oracles_reach_the_ceilings_on_synthetic_mupots(tmp_path, data_dir):
    pose = evaluate(compose_run("eval", [*POSENET, *TINY_MUPOTS, "oracle=true"], tmp_path / "pose", data_dir))
    for key in ("oracle/3DPCK_rel", "oracle/3DPCK_rel_matched", "oracle/3DPCK_abs"):
        assert pose[key] == pytest.approx(100.0)
    assert pose["oracle/AUC_rel"] == pytest.approx(100.0 * 30 / 31)
    assert {"oracle/3DPCK_rel/TS1", "oracle/3DPCK_rel/TS2", "oracle/3DPCK_abs/TS2"} <= set(pose)
    root = evaluate(compose_run("eval", [*ROOTNET, *TINY_MUPOTS, "oracle=true"], tmp_path / "root", data_dir))
    assert root["oracle/MRPE"] < 1.0
    people = sum(
        len([a for a in json.loads(Path(f).read_text())["annotations"] if a["is_valid"]])
        for f in (data_dir / "synthetic_mupots" / "data").glob("MuPoTS-3D.json")
    )
    # every root found, first: the official AP skips the first recall step
    assert root["oracle/AP_root25"] == pytest.approx(100.0 * (people - 1) / people)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_root_and_muco_recipe_trains_a_step(recipe, tmp_path, data_dir):
    data = TINY_MUCO if "muco" in recipe or recipe == "quickstart_rootnet" else []
    if not data:
        data = [
            "data=synthetic_h36m",
            "++data.reader.synthetic={subjects:[1,9],actions:[2],subactions:1,frames:2,num_cameras:2,image_size:[96,96]}",
            "data.train_subjects=[1]",
            "data.val_subjects=[9]",
            "data.batch_size=2",
        ]
    tiny = TINY_ROOT if "rootnet" in recipe else TINY_POSENET
    overrides = [f"experiment={recipe}", *data, "debug=fast_dev_run", *tiny, "model.pretrained=null"]
    if recipe in ("rootnet_r50_muco", "posenet_r50_muco"):
        overrides += ["data.reader.val_file=null", "data.mix_2d=false"]  # as the recipe: no validation split
    cfg = compose_run("train", overrides, tmp_path, data_dir)
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"])
    if recipe in ("rootnet_r50_muco", "posenet_r50_muco"):
        assert not any(k.startswith("val/") for k in metrics)  # trained without validating
    else:
        assert "val/MRPE" in metrics


def test_every_recipe_is_tested():
    stems = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert {s for s in stems if "rootnet" in s or "muco" in s} == set(RECIPES)


def test_a_muco_posenet_is_scored_on_mupots_and_reads_rootnet_roots(tmp_path, data_dir):
    cfg = compose_run("train", [*POSENET, *TINY_MUCO, "trainer.max_epochs=1"], tmp_path / "pose", data_dir)
    assert cfg.data.layout == "muco21" and cfg.model.net.num_joints == 21
    train(cfg)
    pose_ckpt = tmp_path / "pose" / "checkpoints" / "last.ckpt"
    scored = evaluate(compose_run("eval", [f"ckpt_path={pose_ckpt}", *TINY_MUPOTS], tmp_path / "e1", data_dir))
    keys = {"val/3DPCK_rel", "val/3DPCK_rel_matched", "val/3DPCK_abs", "val/AUC_rel", "val/3DPCK_rel/TS1"}
    assert keys <= set(scored)
    assert all(0.0 <= scored[k] <= 100.0 for k in scored if k.startswith("val/3DPCK"))

    cfg = compose_run("train", [*ROOTNET, *TINY_MUCO, "trainer.max_epochs=1"], tmp_path / "root", data_dir)
    train(cfg)
    root_ckpt = tmp_path / "root" / "checkpoints" / "last.ckpt"
    roots = evaluate(
        compose_run("eval", [f"ckpt_path={root_ckpt}", *TINY_MUPOTS, "write_bbox_root=true"], tmp_path / "e2", data_dir)
    )
    assert {"val/AP_root25", "val/MRPE"} <= set(roots)
    bbox_root = roots["bbox_root_file"]
    assert Path(bbox_root).name == "bbox_root_synthetic_mupots_output.json"
    two_stage = [
        f"ckpt_path={pose_ckpt}",
        *TINY_MUPOTS,
        "data.reader.use_gt_info=false",
        f"data.reader.bbox_root_file={bbox_root}",
    ]
    with_roots = evaluate(compose_run("eval", two_stage, tmp_path / "e3", data_dir))
    assert "val/3DPCK_abs" in with_roots
    # the relative pose does not use the root: the same crops give the same 3DPCK_rel
    assert with_roots["val/3DPCK_rel"] == pytest.approx(scored["val/3DPCK_rel"], abs=1e-6)
