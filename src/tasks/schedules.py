"""Learning-rate schedules that need the run's length (a task passes ``total_steps`` and
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


class WarmupCosineLR(torch.optim.lr_scheduler.LambdaLR):
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
