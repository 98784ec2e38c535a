"""Keypoint layouts from YAML: every key, names from a COCO-format category, the mapping a checkpoint
stores, and a clear error for each kind of bad file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from src.layout_files import LayoutError, derive_flip_pairs, layout_from_mapping, layout_to_mapping
from src.layouts import COCO17, DEFAULT_OKS_SIGMA, get_keypoint_info, layout_spec

FIVE = {
    "name": "five",
    "keypoints": ["head", "left_hand", "right_hand", "left_foot", "right_foot"],
    "flip_pairs": "auto",
    "skeleton": [["head", "left_hand"], ["head", "right_hand"], [0, 3], [0, 4]],
    "upper_body": ["head", "left_hand", "right_hand"],
    "lower_body": ["left_foot", "right_foot"],
    "joint_weights": {"left_foot": 1.5, "right_foot": 1.5},
    "sigmas": [0.026, 0.062, 0.062, 0.089, 0.089],
    "colors": {"head": [255, 0, 0]},
    "parts": {"hands": ["left_hand", "right_hand"], "feet": [3, 4]},
}


def write(tmp_path: Path, data: dict, name: str = "layout.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_key(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="src.layout_files"):
        info = get_keypoint_info(str(write(tmp_path, FIVE)))
    assert info.name == "five" and info.num_keypoints == 5
    assert info.flip_pairs == ((1, 2), (3, 4)) and info.flip_index == (0, 2, 1, 4, 3)
    assert "left_hand<->right_hand, left_foot<->right_foot" in caplog.text  # derived pairs are shown
    assert info.skeleton == ((0, 1), (0, 2), (0, 3), (0, 4))
    assert info.upper_body_ids == (0, 1, 2) and info.lower_body_ids == (3, 4)
    assert info.joint_weights == (1.0, 1.0, 1.0, 1.5, 1.5) and info.sigmas == (0.026, 0.062, 0.062, 0.089, 0.089)
    assert info.colors[0] == (255, 0, 0) and info.colors[1] == (255, 255, 255)
    assert info.parts == (("hands", (1, 2)), ("feet", (3, 4)))
    # what a checkpoint stores gives the same layout back, with no file
    stored = layout_spec(info)
    assert isinstance(stored, dict) and json.loads(json.dumps(stored)) == stored
    assert get_keypoint_info(stored) == info and layout_to_mapping(get_keypoint_info(stored)) == stored
    # built-in layouts are stored by name
    assert layout_spec("coco17") == "coco17" and get_keypoint_info(layout_spec(COCO17)) is COCO17


def test_minimal_layout_and_the_file_name(tmp_path):
    info = get_keypoint_info(str(write(tmp_path, {"keypoints": ["a", "b"]}, "two_points.yaml")))
    assert info.name == "two_points" and info.flip_pairs == () and info.sigmas is None
    assert info.joint_weights == (1.0, 1.0) and info.colors is None and info.parts == ()


def test_flip_rule_suffixes():
    names = ("wrist_l", "wrist_r", "nose", "ankle_l", "ankle_r")
    assert derive_flip_pairs(names, left="_l", right="_r") == ((0, 1), (3, 4))
    info = layout_from_mapping(
        {"keypoints": list(names), "flip_pairs": "auto", "flip_rule": {"left": "_l", "right": "_r"}}
    )
    assert info.flip_index == (1, 0, 2, 4, 3)
    assert derive_flip_pairs(COCO17.keypoint_names) == COCO17.flip_pairs


def test_names_and_skeleton_from_a_coco_category(tmp_path):
    ann = {
        "images": [],
        "annotations": [],
        "categories": [
            {"id": 3, "name": "cat", "keypoints": ["nose", "left_paw", "right_paw"], "skeleton": [[1, 2], [1, 3]]},
            {"id": 4, "name": "dog", "keypoints": ["nose", "left_paw", "right_paw"], "skeleton": [[1, 2], [1, 3]]},
        ],
    }
    (tmp_path / "train.json").write_text(json.dumps(ann))
    info = get_keypoint_info(
        str(write(tmp_path, {"from_json": "train.json", "flip_pairs": "auto", "sigmas": [0.03] * 3}))
    )
    assert info.keypoint_names == ("nose", "left_paw", "right_paw")
    assert info.skeleton == ((0, 1), (0, 2)) and info.flip_pairs == ((1, 2),) and info.sigmas == (0.03,) * 3
    ann["categories"][1]["keypoints"] = ["nose", "left_paw", "tail"]
    (tmp_path / "train.json").write_text(json.dumps(ann))
    with pytest.raises(LayoutError, match=r"categories of .*train.json \(\[3, 4\]\) declare different keypoints"):
        get_keypoint_info(str(write(tmp_path, {"from_json": "train.json"})))
    info = get_keypoint_info(str(write(tmp_path, {"from_json": "train.json", "category_id": 4})))
    assert info.keypoint_names[-1] == "tail"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flip_pairs": [[1, 7]]}, r"flip_pairs: index 7 is out of range for 5 keypoints"),
        ({"flip_pairs": [["left_hand", "left_hand"]]}, r"flip_pairs: 'left_hand' is paired with itself"),
        ({"flip_pairs": [[1, 2], [2, 3]]}, r"flip_pairs: 'right_hand' appears in more than one pair"),
        ({"flip_pairs": [["left_hand", "tail"]]}, r"flip_pairs: unknown joint 'tail'"),
        ({"sigmas": [0.1, 0.1]}, r"sigmas: 2 entries for 5 keypoints"),
        ({"sigmas": [0.1, 0.1, 0.0, 0.1, 0.1]}, r"sigmas: must be > 0, not for \['right_hand'\]"),
        ({"sigmas": {"head": 0.1}}, r"sigmas: no value for \['left_hand'"),
        ({"keypoints": ["head", "head", "a", "b", "c"]}, r"keypoints: duplicate name 'head' at 0 and 1"),
        ({"skeleton": [[0, 1, 2]]}, r"skeleton: entry \[0, 1, 2\] is not a pair"),
        ({"colors": {"head": [300, 0, 0]}}, r"colors: 'head': \[300, 0, 0\] is not \[r, g, b\]"),
        ({"joint_weights": {"head": "heavy"}}, r"joint_weights: 'head': 'heavy' is not a number"),
        ({"flip_pairs": [[1, 2]], "flip_rule": {"left": "l_"}}, r"flip_rule: only used with flip_pairs: auto"),
        ({"tail": 1}, r"unknown key\(s\) \['tail'\]"),
    ],
)
def test_bad_layouts_name_the_file_key_and_entry(tmp_path, change, message):
    path = write(tmp_path, {**FIVE, **change})
    with pytest.raises(LayoutError, match=message) as err:
        get_keypoint_info(str(path))
    assert str(err.value).startswith(str(path))


def test_unknown_layout_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match=r"unknown keypoint layout 'coco133'.*coco17.*path to a layout \.yaml file"):
        get_keypoint_info("coco133")
    with pytest.raises(LayoutError, match="no such layout file"):
        get_keypoint_info(str(tmp_path / "absent.yaml"))


def test_metric_without_sigmas_warns_and_uses_the_default(tmp_path):
    from src.metrics.coco_metric import COCOKeypointMetric

    info = layout_from_mapping({"keypoints": ["a", "b", "c"]})
    with pytest.warns(UserWarning, match=r"declares no OKS sigmas: AP uses 0.067 for every joint"):
        metric = COCOKeypointMetric(ann_file=str(tmp_path / "gt.json"), keypoint_info=info)
    assert tuple(metric.sigmas) == (DEFAULT_OKS_SIGMA,) * 3


def test_coco_wholebody_layout():
    """conf/layouts/coco_wholebody.yaml against mmpose's dataset meta: 133 joints in five parts, COCO's
    body first (same names and sigmas), 61 flip pairs giving mmpose's flip indices, 65 limbs."""
    info = get_keypoint_info("coco_wholebody")
    assert info.num_keypoints == 133 and len(info.flip_pairs) == 61 and len(info.skeleton) == 65
    assert [(name, ids[0], len(ids)) for name, ids in info.parts] == [
        ("body", 0, 17), ("foot", 17, 6), ("face", 23, 68), ("lefthand", 91, 21), ("righthand", 112, 21)
    ]  # fmt: skip
    assert info.keypoint_names[:17] == COCO17.keypoint_names and info.sigmas[:17] == COCO17.sigmas
    face = [39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40]
    face += [50, 51, 52, 53, 58, 57, 56, 55, 54, 68, 67, 66, 65, 70, 69, 62, 61, 60, 59, 64, 63, 77, 76, 75, 74]
    face += [73, 72, 71, 82, 81, 80, 79, 78, 87, 86, 85, 84, 83, 90, 89, 88]
    expected = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 20, 21, 22, 17, 18, 19, *face]
    expected += [*range(112, 133), *range(91, 112)]
    assert list(info.flip_index) == expected
    assert info.sigmas[91:112] == info.sigmas[112:133] and min(info.sigmas) == 0.007 and max(info.sigmas) == 0.107
    assert info.sigmas[17:23] == (0.068, 0.066, 0.066, 0.092, 0.094, 0.094) and len(set(info.sigmas[23:91])) > 10


def test_a_layout_file_is_read_once_per_version(tmp_path):
    path = write(tmp_path, FIVE)
    first = get_keypoint_info(str(path))
    assert get_keypoint_info(str(path)) is first  # the config, the datamodule and the model share one read
    path.write_text(yaml.safe_dump({**FIVE, "name": "five_v2"}, sort_keys=False))
    assert get_keypoint_info(str(path)).name == "five_v2"  # an edited file is read again
