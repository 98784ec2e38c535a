"""The synthetic generators' parameters: one object per dataset kind, checked once with the bad key
named, the same cache keys as before, config values and command-line flags turned into it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.synthetic import cache, crowdpose_writer, generate, h36m_writer, mpii_writer
from src.synthetic.params import ALL_ACTIONS, COCOParams, H36MParams, MPIIParams, SceneParams

ROOT = Path(__file__).resolve().parents[2]

#: Manifest hashes of datasets generated before the parameters object existed (the keyword
#: functions of generator versions COCO 4, MPII 1, CrowdPose 1, Human3.6M 2): equal parameters
#: must keep them, so generated data is reused. A deliberate change of a writer's output bumps its
#: version, and these are then rewritten.
KNOWN_HASHES = {
    "coco": "474bd10648a61b3f24cdbb7528adc61493928a3a0f955eefdba6f00555518441",
    "coco_small": "6580486e4296830c1c81e7b13a1e09b905dbc0878c81152fb228918aab83ca7e",
    "crowdpose": "9eac5af61c422a0aeab5e1a94a816fca2087d7d83cf0fdc4a99f38411c622d6f",
    "mpii": "7f493bd3168802ac168093638d3897202703dc9a0ca0a3fda788dbd7a4f865ae",
    "h36m": "598549a712dfd7b9505afeea64a4a39740eedb7f2579ae1d0bec13f56f13f873",
    "h36m_tests": "3a7d9db514e9a15b3738fe0c551c7a72464f0b38521c79ae272e9cd6a26ff8f5",
}


def test_cache_keys_of_unchanged_parameters_stay_the_same() -> None:
    hashes = {
        "coco": generate.generation_params(COCOParams()),
        "coco_small": generate.generation_params(COCOParams(seed=3, num_train=12, num_val=6)),
        "crowdpose": {"coco": generate.generation_params(COCOParams())},
        "mpii": mpii_writer.mpii_generation_params(MPIIParams()),
        "h36m": h36m_writer.h36m_generation_params(H36MParams()),
        "h36m_tests": h36m_writer.h36m_generation_params(
            H36MParams.from_options(
                {"subjects": [1, 9], "actions": [2], "subactions": 1, "frames": 2, "num_cameras": 2},
                image_size=[96, 96],
            )
        ),
    }
    assert {name: cache.params_hash(key) for name, key in hashes.items()} == KNOWN_HASHES


def test_unknown_and_bad_keys_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown synthetic COCO parameters \['num_people'\]; known: \['seed', "):
        COCOParams.from_options({"num_people": 3})
    with pytest.raises(ValueError, match=r"unknown synthetic MPII parameters \['min_area'\]"):
        MPIIParams.from_options(min_area=10)  # MPII annotates by joints, not by area
    with pytest.raises(ValueError, match="synthetic COCO parameter crowd_prob must be in \\[0, 1\\], got 1.5"):
        COCOParams(crowd_prob=1.5)
    with pytest.raises(ValueError, match="synthetic COCO parameter min_people must be in \\[1, 4\\], got 5"):
        COCOParams(min_people=5)
    with pytest.raises(ValueError, match="synthetic COCO parameter image_size must be a list of 2 integers, got 'big'"):
        COCOParams(image_size="big")
    with pytest.raises(ValueError, match="synthetic MPII parameter num_train must be an integer, got 2.5"):
        MPIIParams(num_train=2.5)
    with pytest.raises(ValueError, match="synthetic COCO parameter image_size must be at least 32 x 32"):
        COCOParams(image_size=(16, 64))
    with pytest.raises(ValueError, match="synthetic Human3.6M parameter subjects must be distinct"):
        H36MParams(subjects=(5, 1, 5))
    with pytest.raises(ValueError, match="synthetic Human3.6M parameter actions must be distinct action_idx in 2..16"):
        H36MParams(actions=(17,))
    with pytest.raises(TypeError, match="synthetic COCO takes COCOParams, got MPIIParams"):
        generate.ensure_synthetic_coco("/nonexistent/coco", MPIIParams())
    # the writers check the same way, before anything is written
    with pytest.raises(ValueError, match=r"unknown synthetic COCO parameters \['colour'\]"):
        crowdpose_writer.ensure_synthetic_crowdpose("/nonexistent/crowdpose", colour=1)
    with pytest.raises(ValueError, match="synthetic Human3.6M parameter frames must be in"):
        h36m_writer.ensure_synthetic_h36m("/nonexistent/h36m", frames=0)


def test_config_values_and_defaults() -> None:
    config = OmegaConf.create({"seed": 2, "image_size": [96, 80], "min_height": 20, "keypoint_min_area": 1024.0})
    params = COCOParams.from_options(config, num_val=3)
    assert params.image_size == (96, 80) and params.min_height == 20.0 and isinstance(params.min_height, float)
    assert params.keypoint_min_area == 1024 and isinstance(params.keypoint_min_area, int)
    assert (params.seed, params.num_val, params.num_train) == (2, 3, 1000)
    assert COCOParams.from_options(params, seed=5) == params.replace(seed=5) != params
    assert params.scene_config().image_size == (96, 80)
    # one scene vocabulary, each writer's own defaults and additions
    assert set(SceneParams.names()) < set(COCOParams.names()) and set(SceneParams.names()) < set(MPIIParams.names())
    assert (COCOParams().empty_prob, MPIIParams().empty_prob) == (0.03, 0.0)
    h36m = H36MParams(subjects=[9, 1], actions=None)
    assert h36m.subjects == (1, 9) and h36m.actions == ALL_ACTIONS
    assert h36m.cache_key()["actions"] == list(ALL_ACTIONS)
    with pytest.raises(AttributeError):
        params.seed = 1  # frozen


def test_every_config_key_of_the_recipes_is_a_parameter() -> None:
    """conf/data/synthetic*.yaml and the experiments' data.reader.synthetic blocks build their
    parameters objects as they stand."""
    kinds = {
        "synthetic.yaml": COCOParams,
        "synthetic_crowdpose.yaml": COCOParams,
        "synthetic_mpii.yaml": MPIIParams,
        "synthetic_h36m.yaml": H36MParams,
    }
    for name, kind in kinds.items():
        reader = OmegaConf.load(ROOT / "conf" / "data" / name).reader
        kind.from_options(reader.synthetic)
        if "extra_2d" in reader:
            MPIIParams.from_options(reader.extra_2d.synthetic)
    experiments = {"quickstart_bottomup.yaml": COCOParams, "quickstart_3d.yaml": H36MParams}
    for name, kind in experiments.items():
        kind.from_options(OmegaConf.load(ROOT / "conf" / "experiment" / name).data.reader.synthetic)


def test_command_line_flags_come_from_the_fields() -> None:
    parser = cache.cli_parser("test", default_root="data/x", params=H36MParams)
    flags = {action.dest for action in parser._actions}
    assert set(H36MParams.names()) <= flags
    args = parser.parse_args(["--subjects", "9", "1", "--image-size", "64", "48", "--clutter", "0.2", "--workers", "1"])
    params = H36MParams.from_namespace(args)
    assert params == H36MParams(subjects=(1, 9), image_size=(64, 48), clutter=0.2)
    assert params.frames == H36MParams().frames  # left out: the default
    args = cache.cli_parser("test", default_root="data/x", params=MPIIParams).parse_args(["--min-joints", "12"])
    assert MPIIParams.from_namespace(args) == MPIIParams(min_joints=12)
    with pytest.raises(SystemExit):
        cache.cli_parser("test", default_root="data/x", params=COCOParams).parse_args(["--image-size", "64"])


def test_writers_take_the_object_or_keywords(tmp_path: Path) -> None:
    small = COCOParams(num_train=2, num_val=1, image_size=(64, 64), seed=4)
    root = generate.ensure_synthetic_coco(tmp_path / "coco", small, workers=1)
    stamp = (root / generate.MANIFEST).stat().st_mtime_ns
    assert generate.ensure_synthetic_coco(root, num_train=2, num_val=1, image_size=[64, 64], seed=4) == root
    assert generate.ensure_synthetic_coco(root, COCOParams(seed=4, image_size=(64, 64)), num_train=2, num_val=1)
    assert (root / generate.MANIFEST).stat().st_mtime_ns == stamp  # the same parameters: a cache hit
    manifest = json.loads((root / generate.MANIFEST).read_text())
    assert manifest["params"] == generate.generation_params(small)


def test_cli_generates_with_its_flags(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "src.synthetic.mpii_writer", "--root", str(tmp_path / "mpii")]
    flags = ["--num-train", "2", "--num-val", "1", "--image-size", "96", "80", "--workers", "1", "--min-joints", "8"]
    done = subprocess.run(command + flags, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "synthetic MPII dataset ready at" in done.stdout
    manifest = json.loads((tmp_path / "mpii" / mpii_writer.MANIFEST).read_text())
    expected = MPIIParams(num_train=2, num_val=1, image_size=(96, 80), min_joints=8)
    assert manifest["params"] == mpii_writer.mpii_generation_params(expected)
    bad = subprocess.run(command + ["--crowd-prob", "2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "crowd_prob must be in [0, 1]" in bad.stderr


def test_parameters_module_is_light() -> None:
    """The readers and --help import it: no image libraries."""
    code = "import sys, src.synthetic.params; print(sorted(m for m in ('cv2', 'torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
