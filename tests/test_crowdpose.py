"""CrowdPose: the reader in the HigherHRNet layout, the synthetic CrowdPose-format split, the
recipe, and the oracle on the real samples (skipped when ../shared is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from src.eval import evaluate
from src.layouts import CROWDPOSE14
from src.readers.crowdpose import CrowdPoseReader
from src.readers.errors import DatasetNotFoundError
from src.synthetic.crowdpose_writer import crowd_index
from src.train import train
from tests.helpers import CONF_DIR, TINY_MODELS, compose_run

REAL = CONF_DIR.parent.parent / "shared" / "data" / "real_samples" / "crowdpose"
TINY_DATA = [
    "data=synthetic_crowdpose",
    "data.reader.synthetic.num_train=8",
    "data.reader.synthetic.num_val=6",
    "data.reader.synthetic.seed=5",
]
KEYS = ["val/AP", "val/AP50", "val/AP75", "val/AR", "val/AR50", "val/AR75", "val/AP_easy", "val/AP_medium"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_crowd_index_is_the_share_of_other_peoples_joints_in_each_box():
    def person(points, box):
        kpts = np.zeros((14, 3))
        kpts[: len(points), :2] = np.asarray(points, float).reshape(-1, 2)
        kpts[: len(points), 2] = 2
        return kpts, box

    a = person([[10, 10], [20, 20]], [0, 0, 30, 30])  # holds one of b's two joints: 1 / 2
    b = person([[25, 25], [100, 100]], [20, 20, 90, 90])  # holds (20, 20) of a but not (10, 10): 1 / 2
    c = person([], [0, 0, 200, 200])  # no labelled joints: not counted
    assert crowd_index([a, b, c]) == pytest.approx(0.5)
    assert crowd_index([a]) == 0.0 and crowd_index([]) == 0.0


def test_synthetic_split_and_a_bottom_up_recipe_train_and_evaluate(tmp_path, data_dir):
    overrides = [
        "experiment=higherhrnet_w32_512_crowdpose",
        "model.pretrained=null",
        "model.init=pytorch",
        "debug=fast_dev_run",
        "data.batch_size=2",
        "data.val_batch_size=2",
        "data.num_workers=0",
        *TINY_MODELS["bottomup"][1:],
        *TINY_DATA,
    ]
    cfg = compose_run("train", overrides, tmp_path / "train", data_dir)
    assert cfg.model.net.num_joints == 14 and cfg.data.layout == "crowdpose14"
    assert cfg.optimized_metric == "val/AP"
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and set(KEYS) <= set(metrics)

    root = data_dir / "synthetic_crowdpose"
    data = json.loads((root / "json" / "crowdpose_test.json").read_text())
    assert (root / "json" / "crowdpose_trainval.json").is_file()
    assert all("crowdIndex" in image for image in data["images"])
    assert all(len(a["keypoints"]) == 42 and "area" not in a and "segmentation" not in a for a in data["annotations"])
    assert data["categories"][0]["keypoints"] == list(CROWDPOSE14.keypoint_names)
    for image in data["images"]:
        assert (root / "images" / image["file_name"]).is_file()

    # the codec oracle through the CrowdPose metric, top-down and bottom-up
    for model in ("hrnet", "higherhrnet"):
        out = evaluate(compose_run("eval", [f"model={model}", "oracle=true", *TINY_DATA], tmp_path / model, data_dir))
        assert out["oracle/AP"] == pytest.approx(1.0, abs=1e-3) and out["oracle/AP_easy"] == pytest.approx(1.0)


def test_a_missing_crowdpose_root_says_what_goes_where(tmp_path):
    reader = CrowdPoseReader(root=tmp_path / "crowdpose")
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)crowdpose_trainval.json.*ROOT/images/\*\.jpg.*synthetic_crowdpose"
    ):
        reader.prepare()
    with pytest.raises(ValueError, match="CrowdPose splits are"):
        CrowdPoseReader(root=tmp_path, val_split="valid")


@pytest.mark.skipif(not REAL.is_dir(), reason="the real CrowdPose samples of ../shared are absent")
@pytest.mark.parametrize("model", ["hrnet", "higherhrnet"])
def test_oracle_on_the_real_samples(model, tmp_path):
    root = tmp_path / "crowdpose"
    (root / "json").mkdir(parents=True)
    (root / "images").mkdir()
    for split in ("trainval", "test"):
        (root / "json" / f"crowdpose_{split}.json").symlink_to(REAL / "test_crowdpose.json")
    for image in REAL.glob("*.jpg"):
        (root / "images" / image.name).symlink_to(image)
    out = evaluate(
        compose_run(
            "eval", [f"model={model}", "data=crowdpose", f"data.root={root}", "oracle=true"], tmp_path, tmp_path
        )
    )
    assert out["oracle/AP"] == pytest.approx(1.0) and out["oracle/AP_medium"] == pytest.approx(1.0)
    assert out["oracle/AP_easy"] == -1.0  # both sample images are of medium crowding
