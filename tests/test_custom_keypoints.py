"""A dataset of your own keypoints by YAML alone (the custom-keypoints tutorial): five joints taken
from the synthetic data (`src.keypoint_subset`), a layout file, and top-down and bottom-up models
that train, evaluate (oracle included), check the data and predict on a video, with the layout
travelling inside the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from src.check_data import check
from src.eval import evaluate
from src.keypoint_subset import main as subset_main
from src.predict import predict
from src.synthetic.generate import ensure_synthetic_coco
from src.train import train
from tests.helpers import TINY_MODELS, compose_run

KEEP = ["nose=head", "left_wrist=left_hand", "right_wrist=right_hand", "left_ankle=left_foot", "right_ankle=right_foot"]
LAYOUT = """\
name: five_joints
keypoints: [head, left_hand, right_hand, left_foot, right_foot]
flip_pairs: auto
skeleton: [[head, left_hand], [head, right_hand], [head, left_foot], [head, right_foot]]
upper_body: [head, left_hand, right_hand]
lower_body: [left_foot, right_foot]
joint_weights: {left_hand: 1.5, right_hand: 1.5, left_foot: 1.5, right_foot: 1.5}
sigmas: [0.026, 0.062, 0.062, 0.089, 0.089]
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("custom")


@pytest.fixture(scope="module")
def dataset(work) -> tuple[Path, Path]:
    """(dataset root, layout file) of the tutorial, written by the tools the tutorial uses."""
    source = ensure_synthetic_coco(work / "synthetic", num_train=12, num_val=6, seed=3, workers=1)
    root = work / "five"
    subset_main(["--source", str(source), "--out", str(root), "--keep", *KEEP])
    layout = work / "five_joints.yaml"
    layout.write_text(LAYOUT)
    return root, layout


def data_options(dataset) -> list[str]:
    root, layout = dataset
    return ["data=custom", f"data.root={root}", f"data.layout={layout}", "data.batch_size=2", "data.val_batch_size=2"]


def test_the_subset_dataset(dataset):
    root, _ = dataset
    val = json.loads((root / "annotations" / "val.json").read_text())
    (category,) = val["categories"]
    assert category["keypoints"] == ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    assert all(len(a["keypoints"]) == 15 for a in val["annotations"])
    assert all(a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3]) for a in val["annotations"])
    assert all((root / "images" / "val" / image["file_name"]).is_file() for image in val["images"])


@pytest.mark.parametrize("paradigm", ["topdown", "bottomup"])
def test_train_evaluate_and_predict_by_yaml_alone(paradigm, work, dataset, tmp_path):
    overrides = [
        *TINY_MODELS[paradigm],
        *data_options(dataset),
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
    ]
    cfg = compose_run("train", overrides, tmp_path / "train", work / "data")
    assert cfg.data.num_keypoints == 5 and cfg.model.net.num_joints == 5
    metrics = train(cfg)
    assert "val/AP" in metrics and torch.isfinite(torch.tensor(metrics["train/loss"]))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]["keypoint_info"]
    assert stored["keypoints"] == ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    assert stored["flip_pairs"] == [[1, 2], [3, 4]]

    results = evaluate(
        compose_run("eval", [f"ckpt_path={ckpt}", *data_options(dataset)], tmp_path / "eval", work / "data")
    )
    assert 0.0 <= results["val/AP"] <= 1.0

    # prediction needs no layout file: the checkpoint carries the layout
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 128))
    for image in sorted((dataset[0] / "images" / "val").glob("*.jpg"))[:4]:
        writer.write(cv2.resize(cv2.imread(str(image)), (160, 128)))
    writer.release()
    options = [f"ckpt_path={ckpt}", f"input={video}", "progress=false", "device=cpu"]
    if paradigm == "topdown":  # a crop model gets its people from boxes: one box per frame
        boxes = tmp_path / "boxes.json"
        boxes.write_text(json.dumps([{"frame": i, "bbox": [10, 10, 100, 110], "score": 1.0} for i in range(4)]))
        options.append(f"boxes={boxes}")
    out = predict(compose_run("predict", options, tmp_path / "predict", work / "data"))
    people = json.loads((out / "results.json").read_text())
    assert all(len(p["keypoints"]) == 5 * 3 for p in people)
    if paradigm == "topdown":
        assert len(people) == 4


@pytest.mark.parametrize("paradigm", ["topdown", "bottomup"])
def test_oracle_reaches_one(paradigm, work, dataset, tmp_path):
    # the codecs at their real sizes (no network is built): targets encoded, then decoded
    options = [f"model={'hrnet' if paradigm == 'topdown' else 'higherhrnet'}", *data_options(dataset), "oracle=true"]
    results = evaluate(compose_run("eval", options, tmp_path, work / "data"))
    assert results["oracle/AP"] > 0.95


def test_check_data_passes_and_finds_a_wrong_layout(work, dataset, tmp_path):
    cfg = compose_run("check_data", [*TINY_MODELS["topdown"], *data_options(dataset)], tmp_path / "ok", work / "data")
    assert check(cfg) == 0
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(
        LAYOUT.replace(
            "[head, left_hand, right_hand, left_foot, right_foot]",
            "[head, left_foot, right_foot, left_hand, right_hand]",
        )
    )
    bad = [*TINY_MODELS["topdown"], *data_options(dataset)[:2], f"data.layout={swapped}"]
    cfg = compose_run("check_data", bad, tmp_path / "bad", work / "data")
    assert check(cfg) == 1
    findings = json.loads((tmp_path / "bad" / "check_data.json").read_text())
    (mismatch,) = [f for f in findings if f["kind"] == "layout mismatch" and "train.json" in f["where"]]
    assert "1: 'left_hand' vs 'left_foot'" in mismatch["detail"]


def test_missing_custom_data_says_what_is_expected(tmp_path):
    from src.readers.custom import CustomCOCOReader
    from src.readers.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError) as err:
        CustomCOCOReader(root=tmp_path / "mine").prepare()
    message = str(err.value)
    assert message.startswith("custom dataset, train split: missing dataset root")
    assert f"annotation file {tmp_path / 'mine' / 'annotations' / 'train.json'}" in message
    assert "ROOT/images/train/" in message and "data.layout=" in message
