"""Compose run configs the way the entry points do, into temporary folders."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))

# A tiny synthetic dataset shared by the end-to-end tests (generated once per session).
TINY_SYNTHETIC = ["data.synthetic.num_train=12", "data.synthetic.num_val=6", "data.synthetic.seed=3"]


def compose_run(config_name: str, overrides: list[str], run_dir: Path, data_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``; outputs go to ``run_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
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
