"""COCO-WholeBody and AP-10K: the readers (133 joints from five keys, species as categories), their
messages, check_data, the networks' sizes for their layouts, and the oracle on the real samples of
../shared (those tests skip when the samples are absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.check_data import check
from src.eval import evaluate
from src.layouts import get_keypoint_info
from src.models import PoseHighResolutionNet
from src.readers.ap10k import AP10KReader
from src.readers.coco_wholebody import WHOLEBODY_FIELDS, COCOWholeBodyReader
from src.readers.errors import AnnotationError, DatasetNotFoundError
from tests.helpers import CONF_DIR, compose_run
from tests.models.reference import build_meta, load_reference
from tests.wholebody_files import PARTS, WB, person, write_wholebody

REAL = CONF_DIR.parent.parent / "shared" / "data" / "real_samples"
AP10K = get_keypoint_info("ap10k")


def wholebody_root(root: Path, ann_file: Path, images: list[Path]) -> Path:
    """A COCO-WholeBody root whose train and val files are ``ann_file`` (symlinks)."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (root / "annotations" / f"coco_wholebody_{split}_v1.0.json").symlink_to(ann_file)
        (root / "images" / f"{split}2017").mkdir(parents=True)
        for image in images:
            (root / "images" / f"{split}2017" / image.name).symlink_to(image)
    return root


def test_the_wholebody_reader_assembles_133_joints_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    box = (10.0, 10.0, 200.0, 300.0)
    full = person(rng, box, {})
    no_body = person(rng, box, {"body": False})  # face and hands, but num_keypoints (the body's) is 0
    ann_file = write_wholebody(tmp_path / "wb.json", [(1, full, box, 40000.0), (1, no_body, box, 40000.0)])
    reader = COCOWholeBodyReader(root=tmp_path, val_ann=str(ann_file), val_images=".")
    (record,) = reader.load_records("val", keypoint_info=WB, aspect_ratio=0.75, training=False)
    np.testing.assert_allclose(record["keypoints"], full[:, :2], rtol=1e-6)
    assert record["visible"].sum() == 133
    (image,) = reader.load_images("val", keypoint_info=WB, training=False)  # bottom-up: the same joints
    np.testing.assert_allclose(image["joints"][0], full, rtol=1e-6)
    assert reader.metric_inputs()["keypoint_fields"] == WHOLEBODY_FIELDS


def test_a_wrong_part_names_the_file_the_annotation_and_the_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    box = (10.0, 10.0, 200.0, 300.0)
    ann_file = write_wholebody(tmp_path / "wb.json", [(1, person(rng, box, {}), box, 40000.0)])
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["face_kpts"] = data["annotations"][0]["face_kpts"][:-3]
    ann_file.write_text(json.dumps(data))
    reader = COCOWholeBodyReader(root=tmp_path, val_ann=str(ann_file), val_images=".")
    with pytest.raises(AnnotationError, match=r"wb\.json: annotation 1 has 'face_kpts' with 201 values, expected 204"):
        reader.load_records("val", keypoint_info=WB, aspect_ratio=0.75, training=False)
    del data["annotations"][0]["foot_kpts"]
    ann_file.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="annotation 1 is missing the key 'foot_kpts'"):
        reader.load_images("val", keypoint_info=WB, training=False)


def test_missing_data_says_what_goes_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"(?s)coco_wholebody_val_v1\.0\.json.*jin-s13/COCO-WholeBody"):
        COCOWholeBodyReader(root=tmp_path / "coco").prepare(("val",))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)ap10k-val-split2\.json.*ROOT/data/.*AP-10K"):
        AP10KReader(root=tmp_path / "ap10k", split=2).prepare(("val",))
    with pytest.raises(ValueError, match="splits 1, 2 and 3"):
        AP10KReader(root=tmp_path, split=4)


@pytest.mark.parametrize(
    ("layout", "width", "reference", "extra"),
    [
        # COCO-WholeBody HRNet: the COCO network with a 133-channel final 1x1 conv: (133 - 17) (C + 1) more
        ("coco_wholebody", 32, "pose_hrnet_w32_256x192", 116 * 33),
        ("coco_wholebody", 48, "pose_hrnet_w48_256x192", 116 * 49),
        ("ap10k", 32, "pose_hrnet_w32_256x192", 0),  # 17 joints, as COCO's
    ],
)
def test_network_sizes_follow_the_layout(layout: str, width: int, reference: str, extra: int) -> None:
    k = get_keypoint_info(layout).num_keypoints
    net = build_meta(lambda: PoseHighResolutionNet(num_joints=k, width=width))
    assert sum(p.numel() for p in net.parameters()) == load_reference(reference)["params"] + extra
    assert tuple(net.final_layer.weight.shape) == (k, width, 1, 1)


# --------------------------------------------------------------------------- the real samples


def real_wholebody(tmp_path: Path) -> Path:
    source = REAL / "coco_wholebody"
    return wholebody_root(tmp_path / "coco", source / "test_coco_wholebody.json", sorted(source.glob("*.jpg")))


def real_ap10k(tmp_path: Path) -> Path:
    source, root = REAL / "ap10k", tmp_path / "ap10k"
    (root / "annotations").mkdir(parents=True)
    (root / "data").mkdir()
    for subset in ("train", "val", "test"):
        (root / "annotations" / f"ap10k-{subset}-split1.json").symlink_to(source / "test_ap10k.json")
    for image in source.glob("*.jpg"):
        (root / "data" / image.name).symlink_to(image)
    return root


needs_wholebody = pytest.mark.skipif(not (REAL / "coco_wholebody").is_dir(), reason="no real COCO-WholeBody samples")
needs_ap10k = pytest.mark.skipif(not (REAL / "ap10k").is_dir(), reason="no real AP-10K samples")


@needs_wholebody
def test_the_real_wholebody_samples(tmp_path: Path) -> None:
    root = real_wholebody(tmp_path)
    records = COCOWholeBodyReader(root=root).load_records("val", keypoint_info=WB, aspect_ratio=0.75, training=False)
    assert len(records) == 12  # 14 people, two without body joints (and nothing else)
    visible = np.stack([r["visible"] for r in records])
    assert (visible[:, PARTS["face"]].sum(1) == 68).sum() == 4  # the four annotated faces
    assert (visible[:, PARTS["lefthand"]].sum(1) == 21).sum() == 5
    assert (
        check(
            compose_run("check_data", ["model=hrnet", "data=coco_wholebody", f"data.root={root}"], tmp_path, tmp_path)
        )
        == 0
    )


@needs_wholebody
def test_the_oracle_reaches_one_on_every_part_of_the_real_samples(tmp_path: Path) -> None:
    root = real_wholebody(tmp_path)
    options = ["model=hrnet", "model/codec=udp", "data=coco_wholebody", f"data.root={root}", "oracle=true"]
    out = evaluate(compose_run("eval", options, tmp_path, tmp_path))
    for part in ("", "body/", "foot/", "face/", "lefthand/", "righthand/", "hand/"):
        assert out[f"oracle/{part}AP"] == pytest.approx(1.0), part
        assert out[f"oracle/{part}AR"] == pytest.approx(1.0), part


@needs_ap10k
def test_the_real_ap10k_samples(tmp_path: Path) -> None:
    root = real_ap10k(tmp_path)
    records = AP10KReader(root=root).load_records("val", keypoint_info=AP10K, aspect_ratio=1.0, training=False)
    assert sorted(r["category_id"] for r in records) == [1, 26]  # an antelope and a jaguar
    options = ["model=hrnet", "data=ap10k", f"data.root={root}", "oracle=true", "data.metric.per_category=true"]
    out = evaluate(compose_run("eval", options, tmp_path / "eval", tmp_path))
    assert out["oracle/AP"] == pytest.approx(1.0)
    assert out["oracle/AP/antelope"] == pytest.approx(1.0) and out["oracle/AP/jaguar"] == pytest.approx(1.0)
    assert (
        check(compose_run("check_data", ["model=hrnet", "data=ap10k", f"data.root={root}"], tmp_path / "c", tmp_path))
        == 0
    )


@pytest.mark.parametrize(
    ("recipe", "num_keypoints"),
    [
        ("hrnet_w32_256x192_coco_wholebody", 133),
        ("hrnet_w32_384x288_coco_wholebody", 133),
        ("hrnet_w48_256x192_coco_wholebody", 133),
        ("hrnet_w48_384x288_coco_wholebody", 133),
        ("higherhrnet_w32_512_coco_wholebody", 133),
        ("hrnet_w32_256x256_ap10k", 17),
    ],
)
def test_the_recipes_build_their_networks(recipe: str, num_keypoints: int, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = compose_run("train", [f"experiment={recipe}"], tmp_path, tmp_path)
    assert cfg.data.num_keypoints == num_keypoints
    assert cfg.model.scheduler.warmup_steps == 500
    net = build_meta(lambda: instantiate(cfg.model.net))
    assert net.num_joints == num_keypoints
