"""Exponential moving average of the weights (RTMPose's EMA), as a Lightning callback.

After every optimiser step the average moves towards the trained ("raw") weights:
``ema = (1 - m) ema + m raw`` with ``m = (1 - momentum) exp(-(1 + steps) / gamma) + momentum``
(mmengine's EMAHook with ExpMomentumEMA; ``steps`` counts the updates before this one, the first
update copies the weights). With ``update_buffers`` the BN running statistics are averaged too;
integer buffers (``num_batches_tracked``) keep the value of the first update, as there.

- Validation, test and prediction run with the averaged weights (swapped in for the loop, swapped
  back after it).
- Checkpoints hold the averaged weights in ``state_dict``, so evaluation, export and prediction
  from a checkpoint use them with no change; the callback's state (``checkpoint["callbacks"]["EMA"]``)
  holds the raw weights (``raw_state_dict``) and the update count. Resuming puts the raw weights
  back into the module and the average into the callback, so training continues exactly.
- Whatever the order of callbacks, a checkpoint is consistent: the average is brought up to date
  with the last optimiser step before it is written, and the raw weights are taken from where they
  are at that moment (the module, or the copy kept while the average is swapped in).

Configured as ``callbacks.ema`` (``enabled: false`` by default; recipes set ``callbacks.ema.enabled=true``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

log = logging.getLogger(__name__)


def ema_momentum(steps: int, *, momentum: float, gamma: float | None) -> float:
    """The weight of the raw weights in the update after ``steps`` earlier updates: ExpMomentumEMA's
    ``(1 - momentum) exp(-(1 + steps) / gamma) + momentum``; ``gamma=None``: ``momentum`` (plain EMA)."""
    if gamma is None:
        return momentum
    return (1.0 - momentum) * math.exp(-float(1 + steps) / gamma) + momentum


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state (parameters and persistent buffers) as live, detached tensors."""
    return {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


class EMA(Callback):
    """Keep an exponential moving average of a task's weights; evaluate and checkpoint it.

    Args:
        enabled: false makes the callback do nothing (the default config lists it disabled).
        momentum: the weight of the raw weights in each update once the warm-up has faded
            (mmengine's convention: small, 0.0002 for RTMPose).
        gamma: the number of updates over which the larger early momentum decays (2000);
            None: a constant ``momentum``.
        update_buffers: also average the floating-point buffers (BN running statistics); false:
            the buffers follow the raw model's.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        momentum: float = 0.0002,
        gamma: float | None = 2000.0,
        update_buffers: bool = True,
    ) -> None:
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"callbacks.ema.momentum must be in (0, 1), got {momentum}")
        if gamma is not None and gamma <= 0:
            raise ValueError(f"callbacks.ema.gamma must be positive (or null), got {gamma}")
        self.enabled = bool(enabled)
        self.momentum = float(momentum)
        self.gamma = None if gamma is None else float(gamma)
        self.update_buffers = bool(update_buffers)
        self.steps = 0  # updates made
        self.updated_at = 0  # the trainer's global step of the last update
        self.ema: dict[str, torch.Tensor] | None = None
        self._raw: dict[str, torch.Tensor] | None = None  # the raw weights while the average is swapped in
        self._module: LightningModule | None = None
        self._trainer: Trainer | None = None

    # ------------------------------------------------------------------ averaging
    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        """One update of the average towards ``module``'s current (raw) weights."""
        live = _tensors(module)
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in live.items()}
        self._match_device(live)
        params = {name for name, _ in module.named_parameters()}
        averaged, sources, followed = [], [], []
        for key, avg in self.ema.items():
            src = live[key]
            if self.steps == 0:
                avg.copy_(src)
            elif key in params or self.update_buffers:
                if avg.is_floating_point():
                    averaged.append(avg)
                    sources.append(src)
            else:
                followed.append((avg, src))
        for avg, src in followed:
            avg.copy_(src)
        if averaged:
            m = ema_momentum(self.steps, momentum=self.momentum, gamma=self.gamma)
            torch._foreach_mul_(averaged, 1.0 - m)
            torch._foreach_add_(averaged, sources, alpha=m)
        self.steps += 1

    def _match_device(self, live: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(live) - set(self.ema))
        if missing:
            raise RuntimeError(f"EMA: the model has entries the average does not: {missing[:5]}")
        for key, avg in self.ema.items():
            if avg.device != live[key].device:
                self.ema[key] = avg.to(live[key].device)

    def _catch_up(self, trainer: Trainer, module: torch.nn.Module) -> None:
        """Update once if an optimiser step happened since the last update (per optimiser step,
        so gradient accumulation counts one update per step)."""
        if trainer.state.fn == TrainerFn.FITTING and trainer.global_step > self.updated_at:
            if self._raw is not None:
                raise RuntimeError("EMA: an optimiser step happened while the averaged weights were swapped in")
            self.update(module)
            self.updated_at = trainer.global_step

    # ------------------------------------------------------------------ swapping
    @torch.no_grad()
    def _swap_in(self, module: torch.nn.Module) -> None:
        if not self.enabled or self.ema is None or self._raw is not None or module is not self._module:
            return
        live = _tensors(module)
        self._match_device(live)
        self._raw = {k: v.detach().clone() for k, v in live.items()}
        for key, avg in self.ema.items():
            live[key].copy_(avg)

    @torch.no_grad()
    def _swap_out(self, module: torch.nn.Module) -> None:
        if self._raw is None:
            return
        live = _tensors(module)
        for key, raw in self._raw.items():
            live[key].copy_(raw)
        self._raw = None

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer, self._module = trainer, pl_module
        if not self.enabled:
            return
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.save_weights_only:
                raise ValueError(
                    "callbacks.ema needs full checkpoints (the raw weights travel in the callback state): "
                    "a ModelCheckpoint has save_weights_only=true"
                )

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if self.enabled:
            self._catch_up(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_in(pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_out(pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_in(pl_module)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_out(pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_in(pl_module)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._swap_out(pl_module)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._swap_out(pl_module)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The raw weights and the update count (the average goes into the checkpoint's state_dict,
        `on_save_checkpoint`)."""
        if not self.enabled or self._module is None:
            return {}
        self._catch_up(self._trainer, self._module)
        if self.ema is None:  # nothing averaged yet: the average is the weights themselves
            self.ema = {k: v.detach().clone() for k, v in _tensors(self._module).items()}
        raw = self._raw if self._raw is not None else _tensors(self._module)
        return {"steps": self.steps, "updated_at": self.updated_at, "raw_state_dict": dict(raw)}

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if not self.enabled or self.ema is None:
            return
        state = checkpoint["state_dict"]
        missing = sorted(set(state) - set(self.ema))
        if missing:
            raise RuntimeError(f"EMA: the checkpoint has entries the average does not: {missing[:5]}")
        checkpoint["state_dict"] = {k: self.ema[k] for k in state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume: the module was just loaded from the checkpoint's state_dict (the average), which
        becomes this callback's average; the raw weights go back into the module."""
        fitting = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        if not self.enabled:
            if fitting:
                raise ValueError(
                    "the checkpoint was trained with an EMA of the weights (its state_dict holds the average, "
                    "the raw weights are in the EMA callback state): continue it with callbacks.ema.enabled=true"
                )
            return
        module = self._module
        raw = state_dict["raw_state_dict"]
        self.ema = {k: v.detach().clone() for k, v in _tensors(module).items()}
        module.load_state_dict(raw, strict=True)
        self.steps = int(state_dict["steps"])
        self.updated_at = int(state_dict["updated_at"])
        self._raw = None
        log.info("EMA: restored the average after %d updates and the raw weights", self.steps)
