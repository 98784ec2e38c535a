"""Compose run configs the way the entry points do, into temporary folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
DOCS_RESULTS_HOOK = CONF_DIR.parent / "docs" / "hooks" / "results.py"
MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))

# A tiny PoseNet (the real sizes are checked against the official state_dicts) and a tiny synthetic
# Human3.6M root (subjects 1 and 9, one action), shared by the 3D tests.
TINY_POSENET = [
    "model.net.depth=18",
    "model.net.base_width=8",
    "model.net.layers=[1,1,1,1]",
    "model.net.deconv_channels=16",
    "model.codec.input_size=[64,64]",
    "model.codec.output_size=[16,16]",
    "model.codec.depth_dim=16",
]
TINY_H36M_ROOT = [
    "data=synthetic_h36m",
    "++data.reader.synthetic={subjects:[1,9],actions:[2],subactions:1,frames:2,num_cameras:2,image_size:[96,96]}",
    "data.train_subjects=[1]",
    "data.val_subjects=[9]",
]

# One tiny network per paradigm (prediction and export tests build them with random weights).
TINY_MODELS = {
    "topdown": [
        "model=hrnet",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.codec.input_size=[48,64]",
        "model.codec.heatmap_size=[12,16]",
    ],
    "bottomup": [
        "model=higherhrnet",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.net.num_deconv_basic_blocks=1",
        "model.codec.input_size=64",
        "model.codec.output_sizes=[16,32]",
    ],
    "pose3d": ["model=posenet", "data=synthetic_h36m", *TINY_POSENET],
    "root3d": [
        "model=rootnet",
        "data=synthetic_h36m",
        *(o for o in TINY_POSENET if "depth_dim" not in o),
    ],
}


def random_checkpoint(
    paradigm: str, path: Path, work_dir: Path, *, seed: int = 0, std: float = 0.05, overrides: tuple[str, ...] = ()
) -> Path:
    """A checkpoint of a tiny model of ``paradigm`` (a `TINY_MODELS` key) whose weights are drawn from N(0, std) (away
    from the near-zero init, so that outputs differ from image to image), as src.convert writes it."""
    import torch
    from hydra.utils import instantiate

    from src.tasks.conversion import converted_checkpoint

    cfg = compose_run("train", [*TINY_MODELS[paradigm], *overrides], work_dir / f"run_{paradigm}", work_dir / "data")
    task = instantiate(cfg.model, _recursive_=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in task.net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    torch.save(converted_checkpoint(task), path)
    return path


# A tiny synthetic dataset shared by the end-to-end tests (generated once per session).
TINY_SYNTHETIC = [
    "data.reader.synthetic.num_train=12",
    "data.reader.synthetic.num_val=6",
    "data.reader.synthetic.seed=3",
]


def compose_run(config_name: str, overrides: list[str], run_dir: Path, data_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``; outputs go to ``run_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if "fast_path" in cfg and not any(o.lstrip("+~").startswith("fast_path") for o in overrides):
            # the reference arithmetic (fp32), the same on every machine, unless a test asks otherwise
            cfg.fast_path = False
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.log_dir = str(run_dir / "logs")
        if "data" in cfg:
            cfg.data.num_workers = 0
            cfg.data.persistent_workers = False
            cfg.data.pin_memory = False
        if "trainer" in cfg:
            cfg.trainer.accelerator = "cpu"
            cfg.trainer.enable_progress_bar = False
        if cfg.get("callbacks"):
            cfg.callbacks.pop("progress_bar", None)
    return cfg


REAL_COCO = CONF_DIR.parent.parent / "shared" / "data" / "real_samples" / "coco"


def layout_real_coco(root: Path) -> Path:
    """Lay the real COCO samples of ../shared out as a COCO root (symlinks; nothing is copied)."""
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "val2017").mkdir(parents=True)
    (root / "images" / "train2017").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"person_keypoints_{split}.json").symlink_to(REAL_COCO / "test_coco.json")
        for image in REAL_COCO.glob("*.jpg"):
            (root / "images" / split / image.name).symlink_to(image)
    return root


REAL_MPII = CONF_DIR.parent.parent / "shared" / "data" / "real_samples" / "mpii"


def layout_real_mpii(root: Path) -> Path:
    """Lay the real MPII samples of ../shared out as an MPII root: symlinked images, their JSON as
    train.json and valid.json, and a gt_valid.mat built from their joints (the samples carry no
    head boxes: each is a square centred between head top and upper neck, side = their distance)."""
    import json

    import numpy as np

    from src.readers.mpii_ground_truth import MPIIGroundTruth, write_mpii_ground_truth

    (root / "annot").mkdir(parents=True)
    (root / "images").mkdir()
    for image in REAL_MPII.glob("*.jpg"):
        (root / "images" / image.name).symlink_to(image.resolve())
    for name in ("train.json", "valid.json"):
        (root / "annot" / name).symlink_to((REAL_MPII / "test_mpii.json").resolve())
    entries = json.loads((REAL_MPII / "test_mpii.json").read_text())
    joints = np.array([e["joints"] for e in entries], dtype=np.float64)  # (N, 16, 2), 1-based
    middle = 0.5 * (joints[:, 9] + joints[:, 8])
    half = 0.5 * np.linalg.norm(joints[:, 9] - joints[:, 8], axis=-1, keepdims=True)
    write_mpii_ground_truth(
        root / "annot" / "gt_valid.mat",
        MPIIGroundTruth(
            positions=joints,
            missing=np.array([e["joints_vis"] for e in entries]) == 0,
            headboxes=np.stack([middle - half, middle + half], axis=1),
        ),
    )
    return root


def docs_results_hook() -> ModuleType:
    """The docs' results renderer (docs/hooks/results.py, not a package module), freshly loaded."""
    spec = importlib.util.spec_from_file_location("docs_results_hook", DOCS_RESULTS_HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
