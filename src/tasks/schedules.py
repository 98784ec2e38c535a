"""Learning-rate schedules stepped every optimiser step (a task passes ``total_steps`` and
``steps_per_epoch`` to schedules that declare them; see `PoseModule.configure_optimizers`)."""

from __future__ import annotations

import math

import torch


def cosine_with_warmup(*, total_steps: int, warmup_steps: int, min_ratio: float):
    """LR factor per optimiser step: linear warm-up from ~0 to 1, then a half cosine down to min_ratio."""
    if total_steps <= 0:
        raise ValueError(f"a cosine schedule needs a positive number of steps, got {total_steps}")
    warmup_steps = min(max(0, warmup_steps), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def linear_warmup(*, warmup_steps: int, start_factor: float):
    """LR factor per optimiser step of a linear warm-up over steps [0, warmup_steps): ``start_factor``
    at step 0, 1 at step ``warmup_steps - 1`` and after (mmengine's LinearLR with end=warmup_steps,
    whose factor reaches 1 one step before the end). ``warmup_steps=0``: no warm-up."""
    if warmup_steps == 1 or warmup_steps < 0:
        raise ValueError(f"a linear warm-up needs warmup_steps 0 (none) or >= 2, got {warmup_steps}")
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"warm-up start factor must be in (0, 1], got {start_factor}")
    span = max(1, warmup_steps - 1)

    def factor(step: int) -> float:
        if warmup_steps == 0 or step >= span:
            return 1.0
        return start_factor + (1.0 - start_factor) * step / span

    return factor


class StepScheduleLR(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR stepped once per optimiser step; each group's LR is its own initial LR times the
    factor, so per-group LRs (layer decay, `src.tasks.param_groups`) keep their ratios."""

    #: `PoseModule.configure_optimizers` refuses another ``model.scheduler.interval``.
    interval = "step"


class WarmupCosineLR(StepScheduleLR):
    """Linear warm-up over ``warmup_epochs`` then a cosine decay to ``min_lr_ratio`` x the base LR,
    stepped every optimiser step (``interval: step``)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        steps_per_epoch: int,
        warmup_epochs: float = 0.0,
        min_lr_ratio: float = 0.0,
    ) -> None:
        factor = cosine_with_warmup(
            total_steps=total_steps,
            warmup_steps=int(round(float(warmup_epochs) * steps_per_epoch)),
            min_ratio=float(min_lr_ratio),
        )
        super().__init__(optimizer, factor)


class FlatCosineLR(StepScheduleLR):
    """RTMPose's schedule: a linear warm-up over ``warmup_steps`` optimiser steps from
    ``warmup_start_factor``, the base LR until epoch ``cosine_begin_epoch``, then a half cosine down
    to ``min_lr_ratio`` x the base LR at the end of the run, updated every step (mmengine's LinearLR
    followed by CosineAnnealingLR with convert_to_iter_based). At step s of the cosine part (of
    T = run end - start steps) the factor is ``min + (1 - min) (1 + cos(pi s / T)) / 2``; where warm-up
    and cosine overlap, the factors multiply.

    Args:
        total_steps, steps_per_epoch: the run's length (given by the task).
        cosine_begin_epoch: the epoch the cosine starts; None: half of the run (RTMPose:
            210 of 420 epochs).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        steps_per_epoch: int,
        warmup_steps: int = 1000,
        warmup_start_factor: float = 1.0e-5,
        cosine_begin_epoch: int | None = None,
        min_lr_ratio: float = 0.05,
    ) -> None:
        if total_steps <= 0 or steps_per_epoch <= 0:
            raise ValueError(f"a flat-cosine schedule needs a run length, got {total_steps} steps")
        epochs = max(1, total_steps // steps_per_epoch)
        begin_epoch = epochs // 2 if cosine_begin_epoch is None else int(cosine_begin_epoch)
        begin = begin_epoch * steps_per_epoch
        if not 0 <= begin < total_steps:
            raise ValueError(
                f"model.scheduler.cosine_begin_epoch={begin_epoch} is outside the run ({epochs} epochs of "
                f"{steps_per_epoch} steps)"
            )
        length = total_steps - begin
        warmup = linear_warmup(warmup_steps=int(warmup_steps), start_factor=float(warmup_start_factor))
        floor = float(min_lr_ratio)

        def factor(step: int) -> float:
            cosine = 1.0
            if step >= begin:  # past the end the last step's value stays, as with mmengine
                progress = min(step - begin, length - 1) / length
                cosine = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
            return warmup(step) * cosine

        super().__init__(optimizer, factor)


class WarmupMultiStepLR(StepScheduleLR):
    """ViTPose's schedule: a linear warm-up over ``warmup_steps`` optimiser steps from
    ``warmup_start_factor``, times ``gamma`` for each milestone epoch passed, stepped every step
    (mmengine's LinearLR by iteration with MultiStepLR by epoch; the factors multiply).

    Args:
        steps_per_epoch: the epoch length in optimiser steps (given by the task).
        milestones: epochs (0-based) from which the LR is multiplied by ``gamma`` once more.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        steps_per_epoch: int,
        milestones: list[int],
        gamma: float = 0.1,
        warmup_steps: int = 500,
        warmup_start_factor: float = 1.0e-3,
    ) -> None:
        if steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
        marks = sorted(int(m) for m in milestones)
        warmup = linear_warmup(warmup_steps=int(warmup_steps), start_factor=float(warmup_start_factor))

        def factor(step: int) -> float:
            epoch = step // steps_per_epoch
            return warmup(step) * float(gamma) ** sum(1 for m in marks if epoch >= m)

        super().__init__(optimizer, factor)
