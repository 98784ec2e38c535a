"""Multi-process DDP (two CPU processes, gloo) through the real entry points, and Hydra sweeps.

The multi-process runs start `python -m src.train` / `src.eval` as a user would, and Lightning
starts their DDP processes; the one-process runs they are compared with run in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.eval import evaluate
from src.train import train
from tests.helpers import TINY_SYNTHETIC, compose_run
from tests.test_train import TINY_HRNET

ROOT = Path(__file__).resolve().parents[1]
CPU_DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]  # gloo on CPUs
QUIET = [
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.prediction_pictures=null",
    "fast_path=false",  # the reference arithmetic, the same on every machine
]


def run_cli(module: str, args: list[str], tmp_path: Path, *, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSE_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory) -> Path:
    """A POSE_ROOT whose data/ is shared by the tests of this module (the synthetic set is made once)."""
    return tmp_path_factory.mktemp("pose_root")


@pytest.mark.slow
def test_ddp_training_and_evaluation_equal_single_process(shared_root: Path) -> None:
    common = ["model=hrnet", *TINY_HRNET, *TINY_SYNTHETIC, "data.num_workers=0", "data.val_batch_size=4", *QUIET]
    # 2 processes x 2 batches of 4 per epoch; validation pads the 6 images' people to an even count
    run_cli(
        "src.train",
        [
            *common,
            *CPU_DDP,
            "run_name=ddp",
            "trainer.max_epochs=1",
            "data.batch_size=4",
            "trainer.limit_train_batches=2",
            "evaluate_best=false",
            "num_visualized=0",
        ],
        shared_root,
    )
    run = shared_root / "logs" / "train" / "ddp"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    trained = json.loads((run / "metrics.json").read_text())

    one_dir = shared_root / "logs" / "eval" / "one"  # one process: in this one (a fresh process costs seconds)
    evaluate(compose_run("eval", [f"ckpt_path={ckpt}", *TINY_SYNTHETIC], one_dir, shared_root / "data"))
    run_cli(
        "src.eval",
        [f"ckpt_path={ckpt}", *TINY_SYNTHETIC, "data.num_workers=0", "data.val_batch_size=4", "run_name=two", *CPU_DDP],
        shared_root,
    )
    one = json.loads((one_dir / "metrics.json").read_text())
    two = json.loads((shared_root / "logs" / "eval" / "two" / "metrics.json").read_text())
    stats = [k for k in one if k.startswith("val/") and not k.endswith(("loss", "acc"))]
    assert stats and {k: one[k] for k in stats} == pytest.approx({k: two[k] for k in stats}, abs=1e-9)
    assert trained["val/AP"] == pytest.approx(one["val/AP"], abs=1e-9)


TINY_SWEEP_EXPERIMENT = """# @package _global_
data:
  batch_size: 2
  val_batch_size: 2
  num_workers: 0
  reader:
    synthetic: {num_train: 12, num_val: 6, seed: 3}
model:
  codec: {input_size: [64, 64], heatmap_size: [16, 16]}
callbacks: {progress_bar: null, model_summary: null, prediction_pictures: null}
trainer:
  fast_dev_run: true
"""


TINY_HIGHERHRNET = [
    "model=higherhrnet",
    "model.net.width=8",
    "model.net.stage_num_modules=[1,1,1]",
    "model.net.num_blocks=1",
    "model.net.stem_channels=16",
    "model.net.num_deconv_basic_blocks=1",
    "model.codec.input_size=64",
    "model.codec.output_sizes=[16,32]",
]


@pytest.mark.slow
def test_bottomup_ddp_evaluation_equals_single_process(shared_root: Path) -> None:
    """HigherHRNet: whole images of different sizes, grouped people, padding duplicates dropped.
    The checkpoint and the one-process evaluation are made in this process; the two-process
    evaluation runs as a command."""
    train_dir, one_dir, data_dir = shared_root / "bu_train", shared_root / "bu_one", shared_root / "data"
    train_overrides = [*TINY_HIGHERHRNET, *TINY_SYNTHETIC, "data.batch_size=2", *QUIET, "trainer.max_epochs=1"]
    train_overrides += ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    train(compose_run("train", [*train_overrides, "evaluate_best=false", "num_visualized=0"], train_dir, data_dir))
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    common = [f"ckpt_path={ckpt}", *TINY_SYNTHETIC, "data.val_batch_size=2"]
    evaluate(compose_run("eval", common, one_dir, data_dir))
    run_cli("src.eval", [*common, "data.num_workers=0", "run_name=bu_two", *CPU_DDP], shared_root)
    one = json.loads((one_dir / "metrics.json").read_text())
    two = json.loads((shared_root / "logs" / "eval" / "bu_two" / "metrics.json").read_text())
    stats = [k for k in one if k.startswith("val/")]
    assert stats and {k: one[k] for k in stats} == pytest.approx({k: two[k] for k in stats}, abs=1e-9)


def test_slurm_launcher_config_composes() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.tasks_per_node == 1 and launcher.gpus_per_node == 1 and launcher.timeout_min == 4320


@pytest.mark.slow
def test_multirun_sweep_runs_each_combination_in_its_own_folder(shared_root: Path, tmp_path: Path) -> None:
    # the fixed settings live in an experiment file of the user's own config folder, so the job
    # folders are named by the swept values alone
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "tiny_sweep.yaml").write_text(TINY_SWEEP_EXPERIMENT)
    sweep = shared_root / "sweep"
    args = [
        "-m",
        f"--config-dir={tmp_path / 'conf'}",
        "experiment=tiny_sweep",
        "model=hrnet,simplebaseline",
        "data.sigma=2,3",
        f"hydra.sweep.dir={sweep}",
    ]
    run_cli("src.train", args, shared_root)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == [
        "0_data.sigma=2,model=hrnet",
        "1_data.sigma=3,model=hrnet",
        "2_data.sigma=2,model=simplebaseline",
        "3_data.sigma=3,model=simplebaseline",
    ]
    for job in jobs:
        info = json.loads((job / "run_info.json").read_text())
        assert info["config"]["data"]["sigma"] == int(job.name.split("data.sigma=")[1][0])
        assert "val/AP" in json.loads((job / "metrics.json").read_text())


def test_long_override_lists_make_valid_folder_names() -> None:
    from src.utils.resolvers import safe_dirname

    long = ",".join(f"data.root=/very/long/path/{i}" for i in range(20))
    name = safe_dirname(long)
    assert len(name) <= 120 and "/" not in name
    assert safe_dirname(long) == name and safe_dirname(long + "x") != name
    assert safe_dirname("data.sigma=2,model=hrnet") == "data.sigma=2,model=hrnet"


@pytest.mark.slow
def test_local_ddp_inside_a_multirun_is_refused(shared_root: Path) -> None:
    proc = run_cli(
        "src.train",
        ["-m", "data.sigma=2,3", *CPU_DDP, *TINY_SYNTHETIC, f"hydra.sweep.dir={shared_root / 'refused'}"],
        shared_root,
        check=False,
    )
    assert proc.returncode != 0
    assert "hydra/launcher=slurm" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_optuna_search_returns_the_metric_to_the_sweeper(shared_root: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = shared_root / "optuna"
    args = [
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "model=hrnet",
        *[o for o in TINY_HRNET if not o.startswith("data.sigma")],
        *TINY_SYNTHETIC,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "data.batch_size=4",
        "data.num_workers=0",
        "num_visualized=0",
        "evaluate_best=false",
        *QUIET,
        f"hydra.sweep.dir={sweep}",
    ]
    run_cli("src.train", args, shared_root)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert 0.0 <= float(results["best_value"]) <= 1.0
    assert set(results["best_params"]) == {
        "model.optimizer.lr",
        "data.sigma",
        "data.augmentation.rotation_factor",
        "data.augmentation.scale_factor",
    }


# 3 epochs of 3 steps per process (batches of 2), last.ckpt also every 2 steps (2, 4, 6, 8)
DDP_STEPPED = [
    "model=hrnet",
    *TINY_HRNET,
    *TINY_SYNTHETIC,
    *CPU_DDP,
    *QUIET,
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "data.batch_size=2",
    "data.num_workers=0",
    "trainer.limit_train_batches=3",
    "trainer.log_every_n_steps=1",
    "num_visualized=0",
    "evaluate_best=false",
    "model.scheduler.milestones=[1]",
    "seed=5",
    "data.augmentation.half_body_prob=0.5",
    "callbacks.checkpoint_every_n_steps=2",
    "~callbacks.model_checkpoint",
]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("RUN_DDP_TESTS") != "1",
    reason="three 2-process runs, a kill and a resume (over a minute on 2 cores); set RUN_DDP_TESTS=1",
)
def test_a_ddp_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(shared_root: Path) -> None:
    """Two processes (gloo) SIGKILLed at step 5, after the mid-epoch checkpoint of step 4, then
    resumed: each process goes on with its own share of the epoch's samples and their augmentation,
    so the final weights equal those of an uninterrupted two-process run bit for bit."""
    import torch

    run_cli("src.train", [*DDP_STEPPED, "run_name=ddp_whole"], shared_root)
    kill = ["+callbacks.kill._target_=tests.test_faults.KillAt", "+callbacks.kill.step=5"]
    killed = run_cli("src.train", [*DDP_STEPPED, *kill, "run_name=ddp_killed"], shared_root, check=False)
    assert killed.returncode == -9, killed.stderr[-3000:]
    run = shared_root / "logs" / "train" / "ddp_killed"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 4 and checkpoint["epoch"] == 1
    assert checkpoint["PoseDataModule"] == {"epoch": 1, "batches_done": 1, "epoch_batches": 3}

    run_cli("src.train", [*DDP_STEPPED, "run_name=ddp_killed", "resume=true"], shared_root)
    a = torch.load(shared_root / "logs" / "train" / "ddp_whole" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 9)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
