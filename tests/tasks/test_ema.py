"""EMA of the weights: mmengine's ExpMomentumEMA update, evaluation with the average, checkpoints
that always hold the average in ``state_dict`` and the raw weights in the callback state (whichever
hook writes them), and a resumed run equal to an uninterrupted one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from src.tasks.ema import EMA, ema_momentum
from src.tasks.loading import load_task
from src.train import train
from tests.helpers import TINY_SYNTHETIC, compose_run
from tests.test_train import TINY_HRNET

MOMENTUM, GAMMA = 0.1, 2.0  # an average clearly apart from the raw weights within a few steps


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _replay(raws: dict[int, dict[str, torch.Tensor]], last: int) -> dict[int, dict[str, torch.Tensor]]:
    """The average after each optimiser step, from the raw weights after each step (mmdet's
    ExpMomentumEMA written out: copy at the first update, then ema*(1-m) + raw*m on floats)."""
    out = {0: raws[0]}
    ema = {k: v.clone() for k, v in raws[1].items()}
    out[1] = _state_of(ema)
    for step in range(2, last + 1):
        m = (1 - MOMENTUM) * math.exp(-(1 + (step - 1)) / GAMMA) + MOMENTUM
        for key, value in ema.items():
            if value.is_floating_point():
                value.mul_(1 - m).add_(raws[step][key], alpha=m)
        out[step] = _state_of(ema)
    return out


def _state_of(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tensors.items()}


def _assert_equal(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    assert set(got) == set(expected), what
    for key in expected:
        assert torch.equal(got[key], expected[key]), f"{what}: {key}"


def test_momentum_and_one_update_follow_exp_momentum_ema():
    assert ema_momentum(0, momentum=0.0002, gamma=2000) == pytest.approx(0.9998 * math.exp(-1 / 2000) + 0.0002)
    assert ema_momentum(10**6, momentum=0.0002, gamma=2000) == pytest.approx(0.0002)
    assert ema_momentum(5, momentum=0.3, gamma=None) == 0.3
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    net.train()
    net(torch.randn(4, 2))
    ema = EMA(momentum=MOMENTUM, gamma=GAMMA)
    ema.update(net)  # first update: a copy
    first = _state(net)
    _assert_equal(ema.ema, first, "first update")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(4, 2))
    ema.update(net)
    m = (1 - MOMENTUM) * math.exp(-2 / GAMMA) + MOMENTUM
    now = _state(net)
    for key in ("0.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.allclose(ema.ema[key], (1 - m) * first[key] + m * now[key], rtol=0, atol=1e-6), key
    assert int(now["1.num_batches_tracked"]) == 2 and int(ema.ema["1.num_batches_tracked"]) == 1  # as mmengine
    follower = EMA(momentum=MOMENTUM, gamma=GAMMA, update_buffers=False)
    follower.update(net), follower.update(net)
    assert torch.equal(follower.ema["1.running_mean"], now["1.running_mean"])


class _Tiny(LightningModule):
    """Conv + BN + linear on random tensors; records the weights it validates with."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(4, 1)
        self.validated_with: list[tuple[int, dict[str, torch.Tensor]]] = []
        generator = torch.Generator().manual_seed(0)
        self.data = TensorDataset(
            torch.randn(16, 2, 6, 6, generator=generator), torch.randn(16, 1, generator=generator)
        )

    def forward(self, x):
        return self.head(self.net(x))

    def training_step(self, batch, batch_idx):
        return F.mse_loss(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.validated_with.append((self.trainer.global_step, _state(self)))
        self.log("val_loss", F.mse_loss(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=2)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=4)


class _RecordRaw(Callback):
    """The raw weights at the start and after each optimiser step."""

    def __init__(self) -> None:
        self.raw: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.raw.setdefault(trainer.global_step, _state(pl_module))

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.raw.setdefault(trainer.global_step, _state(pl_module))


class _SaveAt(Callback):
    """Writes a checkpoint from a hook where no ModelCheckpoint writes: at the end of a training
    batch before the EMA callback has run, and inside validation (the average swapped in)."""

    def __init__(self, folder, hook: str, every: int = 1) -> None:
        self.folder, self.every = folder, every
        setattr(self, hook, self._save)

    def _save(self, trainer, pl_module, *args) -> None:
        if trainer.global_step % self.every == 0 and not trainer.sanity_checking:
            trainer.save_checkpoint(self.folder / f"{self._hook_name()}-step{trainer.global_step}.ckpt")

    def _hook_name(self) -> str:
        return "batch-end" if "on_train_batch_end" in vars(self) else "in-validation"


def _fit(tmp_path, *, accumulate: int = 1, epochs: int = 2, ema: EMA | None = None):
    torch.manual_seed(0)
    module = _Tiny()
    ema = ema or EMA(momentum=MOMENTUM, gamma=GAMMA)
    recorder = _RecordRaw()
    checkpoints = [
        ModelCheckpoint(dirpath=tmp_path, filename="val-end-{step}", monitor="val_loss", save_top_k=-1),
        ModelCheckpoint(
            dirpath=tmp_path,
            filename="train-epoch-end-{step}",
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            save_top_k=-1,
        ),
        ModelCheckpoint(dirpath=tmp_path, filename="every3-{step}", every_n_train_steps=3, save_top_k=-1),
    ]
    trainer = Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        val_check_interval=0.5,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        accumulate_grad_batches=accumulate,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        callbacks=[
            recorder,
            *checkpoints,
            _SaveAt(tmp_path, "on_train_batch_end", every=5),
            ema,
            _SaveAt(tmp_path, "on_validation_epoch_end"),
        ],
    )
    trainer.fit(module)
    return trainer, module, ema, recorder


def test_every_checkpoint_holds_the_average_and_the_raw_weights(tmp_path):
    trainer, module, ema, recorder = _fit(tmp_path)
    last = trainer.global_step
    assert last == 16 and ema.steps == 16
    expected = _replay(recorder.raw, last)
    written = sorted(tmp_path.glob("*.ckpt"))
    kinds = {path.name.split("-step")[0] for path in written}
    assert kinds == {"val-end", "train-epoch-end", "every3", "batch-end", "in-validation"}, kinds
    for path in written:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        step = ckpt["global_step"]
        state = ckpt["callbacks"]["EMA"]
        assert (state["steps"], state["updated_at"]) == (step, step), path.name
        _assert_equal(ckpt["state_dict"], expected[step], f"{path.name} state_dict (average)")
        _assert_equal(state["raw_state_dict"], recorder.raw[step], f"{path.name} raw weights")
        assert not torch.equal(ckpt["state_dict"]["head.weight"], state["raw_state_dict"]["head.weight"])
    # validation ran with the average (the sanity check before any update: the initial weights)
    assert [step for step, _ in module.validated_with] == [0, 4, 8, 12, 16]
    for step, weights in module.validated_with:
        _assert_equal(weights, expected[step], f"validated at step {step}")
    _assert_equal(_state(module), recorder.raw[last], "the module after training (raw)")

    # test and a validation from a checkpoint use its average; the module keeps its raw weights
    trainer.validate(module, ckpt_path=str(tmp_path / "every3-step=9.ckpt"), verbose=False)
    _assert_equal(module.validated_with[-1][1], expected[9], "validated from a checkpoint")
    _assert_equal(_state(module), recorder.raw[9], "the module after validating a checkpoint")


def test_one_update_per_optimizer_step_with_gradient_accumulation(tmp_path):
    trainer, _module, ema, recorder = _fit(tmp_path, accumulate=2, epochs=1)
    assert trainer.global_step == ema.steps == 4
    _assert_equal(ema.ema, _replay(recorder.raw, 4)[4], "average with accumulation")


def test_disabled_callback_does_nothing_and_refuses_an_ema_checkpoint(tmp_path):
    trainer, module, _ema, recorder = _fit(tmp_path / "off", epochs=1, ema=EMA(enabled=False))
    ckpt = torch.load(tmp_path / "off" / "every3-step=3.ckpt", weights_only=True)
    assert "EMA" not in ckpt["callbacks"]
    _assert_equal(ckpt["state_dict"], recorder.raw[3], "raw weights without EMA")
    assert [s for s, _ in module.validated_with] == [0, 4, 8]
    _assert_equal(module.validated_with[-1][1], recorder.raw[8], "validated with raw weights")

    _fit(tmp_path / "on", epochs=1)
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        callbacks=[EMA(enabled=False)],
    )
    with pytest.raises(ValueError, match="callbacks.ema.enabled=true"):
        trainer.fit(_Tiny(), ckpt_path=str(tmp_path / "on" / "every3-step=6.ckpt"))


class CrashMidEpoch(Callback):
    """Simulates a pre-emption in the middle of the second epoch, after the step checkpoint of step 4."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 2:
            raise RuntimeError("simulated crash")


RUN = [
    "model=hrnet",
    *TINY_HRNET,
    *TINY_SYNTHETIC,
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "data.batch_size=4",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "num_visualized=0",
    "evaluate_best=false",
    "model.scheduler.milestones=[1]",
    "seed=5",
    "callbacks.ema.enabled=true",
    f"callbacks.ema.momentum={MOMENTUM}",
    f"callbacks.ema.gamma={GAMMA}",
    "callbacks.checkpoint_every_n_steps=2",
]


def test_resumed_run_has_the_average_and_raw_weights_of_an_uninterrupted_run(tmp_path):
    data = tmp_path / "data"
    whole = tmp_path / "whole"
    train(compose_run("train", RUN, whole, data))

    run = tmp_path / "interrupted"
    crash = ["+callbacks.crash._target_=tests.tasks.test_ema.CrashMidEpoch"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_run("train", [*RUN, *crash], run, data))
    stopped = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (stopped["epoch"], stopped["global_step"], stopped["callbacks"]["EMA"]["steps"]) == (1, 4, 4)
    train(compose_run("train", [*RUN, "resume=true"], run, data))

    a = torch.load(whole / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6 and a["callbacks"]["EMA"]["steps"] == 6
    raw_a, raw_b = a["callbacks"]["EMA"]["raw_state_dict"], b["callbacks"]["EMA"]["raw_state_dict"]
    _assert_equal(b["state_dict"], a["state_dict"], "average after resuming")
    _assert_equal(raw_b, raw_a, "raw weights after resuming")
    assert set(raw_a) == set(a["state_dict"])
    # evaluation, export and prediction load the checkpoint's state_dict: the average
    _assert_equal(load_task(run / "checkpoints" / "last.ckpt").state_dict(), b["state_dict"], "loaded task")
    differ = [k for k in raw_a if raw_a[k].is_floating_point() and not torch.equal(raw_a[k], a["state_dict"][k])]
    assert len(differ) > len(raw_a) // 2  # the average is not the raw weights
