"""The PoseTrack18 reader (official layout: one annotation file per video): labelled frames only,
ignore regions as crowd regions, frame sizes from the image files, detections, training and the
oracle of both paradigms, and the message of every bad input. The real samples of ../shared are
used where present (skipped otherwise); the rest runs on files the tests write."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.eval import evaluate
from src.layouts import get_keypoint_info
from src.readers.coco_images import decode_ignore_mask
from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.readers.posetrack18 import PoseTrack18Reader
from src.readers.posetrack18_json import polygon_area, read_video
from src.train import train
from tests.helpers import CONF_DIR, TINY_MODELS, compose_run
from tests.readers.posetrack18_files import HEIGHT, IGNORE_X, IGNORE_Y, WIDTH, write_posetrack18

REAL = CONF_DIR.parent.parent / "shared" / "data" / "real_samples" / "posetrack18"
INFO = get_keypoint_info("posetrack18")
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="the real PoseTrack18 samples of ../shared are absent")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_posetrack18(tmp_path_factory.mktemp("data") / "posetrack18")


def _records(reader: PoseTrack18Reader, split: str = "val", training: bool = False) -> list[dict]:
    return reader.load_records(split, keypoint_info=INFO, aspect_ratio=0.75, training=training)


def test_the_layout_is_mmposes_posetrack18():
    assert INFO.keypoint_names[:5] == ("nose", "head_bottom", "head_top", "left_ear", "right_ear")
    assert INFO.flip_pairs == ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
    assert len(INFO.skeleton) == 16 and (0, 1) in INFO.skeleton and (1, 5) in INFO.skeleton
    assert INFO.sigmas[:3] == (0.026, 0.025, 0.025) and INFO.sigmas[-1] == 0.089
    assert INFO.upper_body_ids == tuple(range(11)) and INFO.lower_body_ids == tuple(range(11, 17))


def test_only_labelled_frames_are_samples(root):
    reader = PoseTrack18Reader(root=root)
    reader.prepare()
    records = _records(reader)
    # two videos, frames 0 and 2 labelled, two people each; frame 1 (not labelled) gives none
    assert len(records) == 8 and [r["sample_id"] for r in records] == list(range(8))
    assert all(str(r["image_id"]).endswith(("0000", "0002")) for r in records)
    assert all(Path(r["image_file"]).is_file() for r in records)
    assert all(r["visible"][3] == 0 and r["visible"][4] == 0 and r["visible"].sum() == 15 for r in records)
    assert len(_records(reader, "train", training=True)) == 8
    assert [image_id for image_id, _ in reader.image_files("val")] == [
        1_000_005_0000,
        1_000_005_0002,
        1_000_006_0000,
        1_000_006_0002,
    ]


def test_frames_without_a_size_get_their_image_files_size(root):
    second = sorted((root / "annotations" / "val").glob("*.json"))[1]
    assert "width" not in json.loads(second.read_text())["images"][0]
    video = read_video(second, image_root=root)
    assert [(i["width"], i["height"]) for i in video.content["images"]] == [(WIDTH, HEIGHT)] * 2
    assert len(video.frames) == 3 and [labelled for _, labelled in video.frames.values()] == [True, False, True]


def test_ignore_regions_become_crowd_regions_and_the_bottom_up_mask(root):
    first = sorted((root / "annotations" / "val").glob("*.json"))[0]
    crowds = [a for a in read_video(first, image_root=root).content["annotations"] if a.get("iscrowd")]
    assert len(crowds) == 2 and all(a["id"] < 0 and a["num_keypoints"] == 0 for a in crowds)
    assert crowds[0]["bbox"] == [70.0, 2.0, 24.0, 38.0]
    assert crowds[0]["area"] == pytest.approx(polygon_area(np.stack([IGNORE_X, IGNORE_Y], 1).astype(float)))

    records = PoseTrack18Reader(root=root).load_images("val", keypoint_info=INFO, training=False)
    assert [r["joints"].shape for r in records] == [(2, 17, 3)] * 4
    masks = [decode_ignore_mask(r["ignore_rle"], r["height"], r["width"]) for r in records]
    assert records[2]["ignore_rle"] is None and records[3]["ignore_rle"] is None  # the video without regions
    assert masks[0][10, 90] == 1 and masks[0][30, 75] == 0 and masks[0][10, 20] == 0
    assert masks[0].sum() == pytest.approx(0.5 * 24 * 38, rel=0.15)


def test_a_top_down_and_a_bottom_up_model_train_and_evaluate(root, tmp_path):
    for paradigm in ("topdown", "bottomup"):
        overrides = [
            *TINY_MODELS[paradigm],
            "data=posetrack18",
            f"data.root={root}",
            "debug=fast_dev_run",
            "data.batch_size=2",
            "data.val_batch_size=2",
            "model.pretrained=null",
        ]
        metrics = train(compose_run("train", overrides, tmp_path / paradigm, tmp_path))
        assert torch.isfinite(torch.tensor(metrics["train/loss"]))
        assert {"val/AP", "val/mAP", "val/mAP_head", "val/mAP_ankle"} <= set(metrics)


def test_the_oracle_scores_one_on_written_files(root, tmp_path):
    out = evaluate(
        compose_run("eval", ["model=hrnet", "data=posetrack18", f"data.root={root}", "oracle=true"], tmp_path, tmp_path)
    )
    assert out["oracle/AP"] == pytest.approx(1.0) and out["oracle/mAP"] == pytest.approx(1.0)


@needs_real
def test_the_real_samples(tmp_path):
    reader = PoseTrack18Reader(root=REAL)
    reader.prepare(("val",))
    records = _records(reader)
    assert len(records) == 14 and {r["image_id"] for r in records} == {10034180000, 10094730000, 10128340000}
    assert all(r["visible"][3:5].sum() == 0 for r in records)  # PoseTrack18 annotates no ears
    detected = PoseTrack18Reader(
        root=REAL,
        val_boxes="detections",
        det_file="annotations/test_posetrack18_human_detections.json",
        det_score_thr=0.3,
    )
    assert len(_records(detected)) == 119  # the README's count of detections with score >= 0.3

    # the ignore mask agrees with the mask images mmpose renders from the same regions (bright: ignored)
    for record in reader.load_images("val", keypoint_info=INFO, training=False):
        mask = decode_ignore_mask(record["ignore_rle"], record["height"], record["width"])
        rendered = cv2.imread(record["image_file"].replace("/images/", "/mask/"), cv2.IMREAD_GRAYSCALE) >= 128
        assert mask.any() and (mask == rendered).mean() > 0.99


@needs_real
@pytest.mark.parametrize(("model", "at_least"), [("hrnet", 1.0), ("higherhrnet", 0.98)])
def test_the_oracle_on_the_real_samples(model, at_least, tmp_path):
    """Ground truth through the codec and the metric: 1.0 for crops; the whole-image heatmaps of
    a bottom-up model (1920 x 1080 frames at 512 px, people 50 px tall) lose a little."""
    cfg = compose_run(
        "eval", [f"model={model}", "data=posetrack18", f"data.root={REAL}", "oracle=true"], tmp_path, tmp_path
    )
    out = evaluate(cfg)
    assert out["oracle/AP"] >= at_least - 1e-9
    if model == "hrnet":
        assert out["oracle/mAP"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ bad input


def _edit(root: Path, tmp_path: Path, change) -> tuple[PoseTrack18Reader, Path]:
    """A copy of the written dataset's val annotations with ``change(content)`` applied to the first video."""
    copy = tmp_path / "copy"
    (copy / "annotations" / "val").mkdir(parents=True)
    (copy / "images").symlink_to(root / "images")
    files = sorted((root / "annotations" / "val").glob("*.json"))
    for f in files:
        (copy / "annotations" / "val" / f.name).write_text(f.read_text())
    target = copy / "annotations" / "val" / files[0].name
    content = json.loads(target.read_text())
    change(content)
    target.write_text(json.dumps(content))
    return PoseTrack18Reader(root=copy), target


def test_a_person_with_a_joint_missing_is_refused_naming_the_file(root, tmp_path):
    reader, target = _edit(
        root, tmp_path, lambda c: c["annotations"][1].update(keypoints=c["annotations"][1]["keypoints"][:-3])
    )
    with pytest.raises(
        AnnotationError, match=rf"{target.name}: annotation \d+ has 'keypoints' with 48 values, expected 51"
    ):
        _records(reader)


def test_a_category_with_other_joints_is_refused_naming_the_file(root, tmp_path):
    reader, target = _edit(
        root, tmp_path, lambda c: c["categories"][0].update(keypoints=c["categories"][0]["keypoints"][:15])
    )
    with pytest.raises(
        AnnotationError,
        match=rf"{target.name}: category 1 declares 15 keypoints but the keypoint layout 'posetrack18' has 17",
    ):
        reader.load_images("val", keypoint_info=INFO, training=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["images"][0].pop("is_labeled"), r"image \d+ is missing the key 'is_labeled'"),
        (lambda c: c["images"][0].update(is_labeled="yes"), r"'is_labeled' 'yes', expected true or false"),
        (
            lambda c: c["images"][0].update(ignore_regions_y=[]),
            r"'ignore_regions_x' and 'ignore_regions_y' are not two lists",
        ),
        (
            lambda c: c["images"][0].update(ignore_regions_x=[[1, 2, "a"]]),
            r"ignore region 0 holds a value that is not a number",
        ),
        (lambda c: c["annotations"][0].update(image_id=7), r"refers to image_id 7, which is not in 'images'"),
        (lambda c: c["images"][1].update(id=c["images"][0]["id"]), r"image id \d+ is listed twice"),
    ],
)
def test_malformed_frames_are_refused_naming_the_file(root, tmp_path, change, message):
    reader, target = _edit(root, tmp_path, change)
    with pytest.raises(AnnotationError, match=rf"{target.name}: .*{message}"):
        _records(reader)


def test_an_image_id_in_two_videos_is_refused_naming_both(root, tmp_path):
    def clash(content):
        content["images"][1]["id"] = 1_000_006_0001

    reader, target = _edit(root, tmp_path, clash)
    with pytest.raises(AnnotationError, match=r"image id 10000060001 is also used in .*000005_mpii_test.json"):
        _records(reader)


def test_missing_folders_say_what_goes_where(root, tmp_path):
    empty = tmp_path / "posetrack18"
    with pytest.raises(DatasetNotFoundError) as err:
        PoseTrack18Reader(root=empty).prepare(("val",))
    text = str(err.value)
    assert f"annotation folder {empty}/annotations/val/" in text and f"image folder {empty}/images/val/" in text
    assert "ROOT/annotations/val/<video>.json" in text and "posetrack.net" in text and "data.root=" in text

    no_images = tmp_path / "no_images"
    (no_images / "annotations").mkdir(parents=True)
    (no_images / "annotations" / "val").symlink_to(root / "annotations" / "val")
    with pytest.raises(DatasetNotFoundError, match=rf"Missing: image folder {no_images}/images/val/\."):
        PoseTrack18Reader(root=no_images).prepare(("val",))

    no_annotations = tmp_path / "no_annotations"
    no_annotations.mkdir()
    (no_annotations / "images").symlink_to(root / "images")
    (no_annotations / "annotations" / "val").mkdir(parents=True)
    with pytest.raises(
        DatasetNotFoundError, match=r"Missing: video annotation files \(\*\.json\) in .*annotations/val/"
    ):
        PoseTrack18Reader(root=no_annotations).prepare(("val",))


def test_a_frame_without_size_or_image_names_both(root, tmp_path):
    def drop(content):
        content["images"][0].pop("width")
        content["images"][0]["file_name"] = "images/val/gone/000000.jpg"

    reader, target = _edit(root, tmp_path, drop)
    with pytest.raises(DatasetNotFoundError, match=rf"{target.name}: image file not found: .*gone/000000.jpg"):
        _records(reader)


def test_options_that_do_not_apply_are_refused(root):
    with pytest.raises(ValueError, match="PoseTrack18 files hold every joint in 'keypoints'"):
        PoseTrack18Reader(root=root, keypoint_fields={"keypoints": 17})
    with pytest.raises(ValueError, match="needs det_file"):
        PoseTrack18Reader(root=root, val_boxes="detections")
