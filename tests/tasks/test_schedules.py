"""LR schedules of the RTMPose and ViTPose recipes against mmengine's traces (optim_facts.json:
100 iterations an epoch), per parameter group, from the task's config and through a resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from src.tasks.schedules import FlatCosineLR, WarmupMultiStepLR, linear_warmup

MODERN = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "modern"
#: Largest relative difference allowed from mmengine's values: it multiplies the LR step by step,
#: these schedules compute each step's factor directly (both in float64).
REL = 1e-12


def _trace(key: str) -> tuple[dict[int, float], dict]:
    path = MODERN / "optim_facts.json"
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    facts = json.loads(path.read_text())[key]
    return {int(re.search(r"iter(\d+)", k).group(1)): v for k, v in facts["lr"].items()}, facts


def _optimizer(*lrs: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs])


def _lrs_at(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: set[int], last: int) -> dict[int, list[float]]:
    """The LR of every group during each optimiser step in ``steps`` (stepped as Lightning does)."""
    seen = {}
    for step in range(last + 1):
        if step in steps:
            seen[step] = [g["lr"] for g in scheduler.optimizer.param_groups]
        scheduler.optimizer.step()
        scheduler.step()
    return seen


def test_flat_cosine_reproduces_rtmpose_trace_in_every_group():
    trace, facts = _trace("rtmpose_lr_trace")
    assert facts["begin_iter_of_cosine"] == 21000 and facts["T_max_iters"] == 21000
    scale = 0.75**5  # a second group with its own LR keeps the ratio
    scheduler = FlatCosineLR(
        _optimizer(4e-3, 4e-3 * scale),
        total_steps=42000,
        steps_per_epoch=100,
        warmup_steps=1000,
        warmup_start_factor=1e-5,
        cosine_begin_epoch=210,
        min_lr_ratio=0.05,
    )
    got = _lrs_at(scheduler, set(trace), max(trace))
    for step, expected in trace.items():
        assert got[step][0] == pytest.approx(expected, rel=REL, abs=0), step
        assert got[step][1] == pytest.approx(expected * scale, rel=REL, abs=0), step
    # the default start of the cosine is half of the run (RTMPose: epoch 210 of 420)
    half = FlatCosineLR(_optimizer(4e-3), total_steps=42000, steps_per_epoch=100)
    assert _lrs_at(half, {31500}, 31500)[31500][0] == pytest.approx(trace[31500], rel=REL)


def test_warmup_multistep_reproduces_vitpose_trace_in_every_group():
    trace, _ = _trace("vitpose_b_lr_trace_base_group")
    scale = 0.75**13  # the patch embedding's layer-decay scale
    scheduler = WarmupMultiStepLR(
        _optimizer(5e-4, 5e-4 * scale),
        steps_per_epoch=100,
        milestones=[170, 200],
        gamma=0.1,
        warmup_steps=500,
        warmup_start_factor=1e-3,
    )
    got = _lrs_at(scheduler, set(trace), max(trace))
    for step, expected in trace.items():
        assert got[step][0] == pytest.approx(expected, rel=REL, abs=0), step
        assert got[step][1] == pytest.approx(expected * scale, rel=REL, abs=0), step


def test_warmup_and_milestone_multiply_where_they_overlap():
    warm = linear_warmup(warmup_steps=5, start_factor=0.2)
    assert [warm(s) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    scheduler = WarmupMultiStepLR(
        _optimizer(1.0), steps_per_epoch=2, milestones=[1], warmup_steps=5, warmup_start_factor=0.2
    )
    got = _lrs_at(scheduler, set(range(6)), 5)
    assert [v[0] for v in got.values()] == pytest.approx([0.2, 0.4, 0.06, 0.08, 0.1, 0.1])


def test_bad_schedule_settings_are_refused():
    with pytest.raises(ValueError, match="warmup_steps 0 \\(none\\) or >= 2"):
        WarmupMultiStepLR(_optimizer(1.0), steps_per_epoch=10, milestones=[1], warmup_steps=1)
    with pytest.raises(ValueError, match="cosine_begin_epoch=9 is outside the run \\(4 epochs"):
        FlatCosineLR(_optimizer(1.0), total_steps=40, steps_per_epoch=10, cosine_begin_epoch=9)


def _topdown(**overrides):
    from hydra.utils import instantiate

    from tests.helpers import TINY_MODELS, compose_run

    cfg = compose_run("train", TINY_MODELS["topdown"], Path("/nonexistent/run"), Path("/nonexistent/data"))
    return instantiate(cfg.model, _recursive_=False, **overrides)


def test_schedule_from_task_config_keeps_layer_decay_and_resumes(tmp_path):
    net_groups = {
        "_target_": "src.tasks.param_groups.paramwise_groups",
        "custom_keys": {"final_layer": {"lr_mult": 0.5}},
    }
    scheduler_cfg = {
        "_target_": "src.tasks.schedules.FlatCosineLR",
        "interval": "step",
        "warmup_steps": 3,
        "warmup_start_factor": 0.1,
        "cosine_begin_epoch": 2,
        "min_lr_ratio": 0.05,
        "milestones": None,
        "gamma": None,
    }
    run = type("Trainer", (), {"estimated_stepping_batches": 40, "max_epochs": 4})()

    def build():
        task = _topdown(param_groups=net_groups, scheduler=scheduler_cfg)
        task.trainer = run
        config = task.configure_optimizers()
        return config["optimizer"], config["lr_scheduler"]["scheduler"]

    optimizer, scheduler = build()
    assert {g["name"]: g["initial_lr"] for g in optimizer.param_groups} == {"lr1_decay1": 1e-3, "lr0.5_decay1": 5e-4}
    lrs = [[g["lr"] for g in optimizer.param_groups]]
    for step in range(1, 40):
        optimizer.step()
        scheduler.step()
        lrs.append([g["lr"] for g in optimizer.param_groups])
        if step == 25:  # what a checkpoint holds; a rebuilt task continues from it
            saved = (optimizer.state_dict(), scheduler.state_dict())
    assert lrs[0] == pytest.approx([1e-4, 5e-5]) and lrs[2] == pytest.approx([1e-3, 5e-4])
    assert lrs[20] == pytest.approx([1e-3, 5e-4]) and lrs[39][0] == pytest.approx(
        1e-3 * (0.05 + 0.95 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 19 / 20)).item()))
    )
    assert all(a[1] == pytest.approx(a[0] / 2) for a in lrs)

    optimizer, scheduler = build()
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    resumed = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(26, 40):
        optimizer.step()
        scheduler.step()
        resumed.append([g["lr"] for g in optimizer.param_groups])
    assert resumed == lrs[25:]

    with pytest.raises(ValueError, match="stepped every step: set model.scheduler.interval=step"):
        task = _topdown(scheduler={**scheduler_cfg, "interval": "epoch"})
        task.trainer = run
        task.configure_optimizers()
