"""The one runner every entry point goes through (``train``, ``eval``, ``predict``, ``export``,
``convert``, ``check_data``); benchmarks and notebooks call its public functions.

`task` wraps an entry point's function of the composed config: it registers the configs'
resolvers, resolves every ``auto`` of the config once (`resolve_fast_path`: the fast path, or
the reference path with ``fast_path=false``), writes ``run_info.json`` (resolved config, git,
packages, machine, fast-path record) in the run folder, and finishes the experiment loggers
(W&B) whatever happens. `main` turns it into a Hydra command line whose known errors (missing
data or files, bad annotations, unreadable checkpoints, wrong settings) end as one
``error: ...`` line on stderr and exit status 1.

Public API (stable; benchmarks rely on it):
    machine_info() -> {"cpu", "cores", "threads", "flags", "gpu"}
    choose_fast_path(accelerator) -> FastPath(precision, channels_last, reason): the rule
    fast_path_for(net, input_shape=, batch_size=, accelerator=, enabled=) -> record: the path
        ``auto`` takes for one network (precision, and the memory format measured on CPUs)
    resolve_fast_path(cfg) -> record: every ``auto`` of a composed config, in place
    resolve_task(task, enabled=, ...) -> record: the memory format of a loaded task
    current_run() -> Run | None: the run in progress (config, folder, fast-path record)
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from src.readers.errors import AnnotationError, DatasetNotFoundError
from src.tasks.base import NonFiniteLossError
from src.utils import hardware, resolvers
from src.utils.hardware import (
    check_auto,
    choose_fast_path,
    decide,
    decide_channels_last,
    input_shape_of,
    machine_info,
    reference_path,
)
from src.utils.loggers import finish_loggers
from src.utils.run_io import resolved_config, run_info, write_json_atomic

__all__ = [
    "USER_ERRORS",
    "Run",
    "choose_fast_path",
    "current_run",
    "fast_path_for",
    "machine_info",
    "main",
    "resolve_fast_path",
    "resolve_task",
    "task",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: The configs of every entry point (an absolute path: it holds however the command is started).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: Set to 1 for the full traceback of a user-caused error instead of its one line.
TRACEBACK_ENV = "POSEKIT_TRACEBACK"
#: Errors that a user's input or machine causes (data or files not there, bad annotations, a file
#: that is not a checkpoint, a wrong setting, a missing optional package, a file that cannot be
#: written, a loss that became NaN): `main` prints them as one ``error:`` line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    DatasetNotFoundError,
    AnnotationError,
    OSError,
    ValueError,
    ImportError,
    OmegaConfBaseException,
    NonFiniteLossError,
)


@dataclass
class Run:
    """The run in progress: its config, folder, fast-path record and start time."""

    cfg: DictConfig
    output_dir: Path
    fast_path: dict[str, Any]
    started: float = field(default_factory=time.time)
    info: dict[str, Any] = field(default_factory=dict)

    def record(self, **fast_path: Any) -> None:
        """Add to the fast-path record (e.g. a loaded task's memory format) and rewrite run_info.json."""
        self.fast_path.update(fast_path)
        self.info["fast_path"] = self.fast_path
        _write_info(self.output_dir, self.info)


_CURRENT: contextvars.ContextVar[Run | None] = contextvars.ContextVar("posekit_run", default=None)


def current_run() -> Run | None:
    """The run `task` is executing in this context, or None outside one (e.g. a notebook)."""
    return _CURRENT.get()


# ---------------------------------------------------------------------------- the fast path


def _accelerator(cfg: DictConfig) -> str:
    trainer = cfg.get("trainer") if "trainer" in cfg else None
    if trainer is not None and "accelerator" in trainer:
        return str(trainer.accelerator)
    device = str(cfg.get("device", "auto")) if "device" in cfg else "auto"
    return "cpu" if device == "cpu" else "auto"


def _memory_format(
    net_factory: Callable[[], Any],
    *,
    enabled: bool,
    input_shape: tuple[int, int, int],
    batch_size: int,
    precision: str,
    accelerator: str,
    measure: Callable[..., dict[str, Any]] | None,
) -> dict[str, Any]:
    if not enabled:
        return {"channels_last": False, "how": "reference"}
    return decide_channels_last(
        net_factory(),
        input_shape=input_shape,
        batch_size=batch_size,
        precision=precision,
        accelerator=accelerator,
        measure=measure or hardware.time_memory_formats,  # looked up here: tests replace it
    )


def fast_path_for(
    net: Any,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    accelerator: str = "auto",
    enabled: bool = True,
    measure: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The path that ``auto`` takes for ``net`` on (C, H, W) inputs in batches of ``batch_size``:
    {"fast_path", "precision", "channels_last", "reason", "memory_format": how the format was
    chosen, with both timings on CPUs}. ``enabled=False``: the reference path."""
    rule = choose_fast_path(accelerator) if enabled else reference_path()
    chosen = _memory_format(
        lambda: net,
        enabled=enabled,
        input_shape=input_shape,
        batch_size=batch_size,
        precision=rule.precision,
        accelerator=accelerator,
        measure=measure,
    )
    return {
        "fast_path": enabled,
        "precision": rule.precision,
        "channels_last": bool(chosen["channels_last"]),
        "reason": _reason(rule.reason, chosen),
        "memory_format": chosen,
    }


def _reason(rule: str, chosen: dict[str, Any]) -> str:
    if chosen.get("how") in ("measured", "cached"):
        faster = "channels_last" if chosen["channels_last"] else "NCHW"
        return (
            f"{rule}; {faster} measured faster for this network "
            f"(NCHW {chosen['nchw_ms']:.1f} ms, channels_last {chosen['channels_last_ms']:.1f} ms a step)"
        )
    if chosen.get("how") == "rule":
        return f"{rule}; channels_last"
    return rule


def resolve_fast_path(cfg: DictConfig, *, measure: Callable[..., dict[str, Any]] | None = None) -> dict:
    """Replace every ``auto`` of ``cfg`` (``trainer.precision``, ``model.channels_last``,
    ``data.reduced_decode``, ``data.normalize_on_device``) with the fast path's value on the run's
    accelerator, or with the reference value (fp32, NCHW, shortcuts off) when ``cfg.fast_path`` is
    false. On CPUs the memory format is measured on the configured network (`decide_channels_last`).
    Returns the record: ``fast_path``, the run's value of each of those keys present in ``cfg``,
    ``reason``, and ``memory_format`` when the format was decided here."""
    enabled = bool(cfg.get("fast_path", True))
    accelerator = _accelerator(cfg)
    rule = choose_fast_path(accelerator) if enabled else reference_path()
    record: dict[str, Any] = {"fast_path": enabled}
    chosen: dict[str, Any] = {}
    with open_dict(cfg):
        trainer = cfg.get("trainer") if "trainer" in cfg else None
        if trainer is not None and "precision" in trainer:
            if str(trainer.precision) == "auto":
                trainer.precision = decide("trainer.precision", enabled=enabled, accelerator=accelerator)
            record["precision"] = str(trainer.precision)
        data = cfg.get("data") if "data" in cfg else None
        for key in ("reduced_decode", "normalize_on_device"):
            if data is not None and key in data:
                if check_auto(f"data.{key}", data[key]) == "auto":
                    data[key] = decide(f"data.{key}", enabled=enabled)
                record[key] = bool(data[key])
        model = cfg.get("model") if "model" in cfg else None
        if model is not None and "channels_last" in model:
            if check_auto("model.channels_last", model.channels_last) == "auto":
                from hydra.utils import instantiate

                batch = int(data.get("batch_size", 1)) if data is not None else 1
                chosen = _memory_format(
                    lambda: instantiate(model.net),
                    enabled=enabled,
                    input_shape=input_shape_of(model.codec),
                    batch_size=batch,
                    precision=record.get("precision", rule.precision),
                    accelerator=accelerator,
                    measure=measure,
                )
                model.channels_last = bool(chosen["channels_last"])
            record["channels_last"] = bool(model.channels_last)
    record["reason"] = _reason(rule.reason, chosen)
    if chosen:
        record["memory_format"] = chosen
    return record


def resolve_task(
    task: Any,
    *,
    enabled: bool,
    batch_size: int = hardware.UNKNOWN_BATCH,
    precision: str = "32-true",
    accelerator: str = "auto",
    measure: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Set the memory format of a task loaded from a checkpoint (which records the format of the
    run that wrote it) to this run's: the fast path's choice for its network, or NCHW with
    ``enabled=False``. Returns {"channels_last", "memory_format"}."""
    chosen = _memory_format(
        lambda: task.net,
        enabled=enabled,
        input_shape=input_shape_of(task.codec),
        batch_size=batch_size,
        precision=precision,
        accelerator=accelerator,
        measure=measure,
    )
    task.set_channels_last(bool(chosen["channels_last"]))
    return {"channels_last": bool(chosen["channels_last"]), "memory_format": chosen}


# ---------------------------------------------------------------------------- the wrapper


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _write_info(output_dir: Path, info: dict[str, Any]) -> None:
    if _is_rank_zero():
        write_json_atomic(output_dir / "run_info.json", info)


def start(cfg: DictConfig, *, measure: Callable[..., dict[str, Any]] | None = None) -> Run:
    """Resolve the fast path of ``cfg`` and write ``run_info.json``: the first step of `task`."""
    resolvers.register()
    output_dir = Path(cfg.paths.output_dir)
    record = resolve_fast_path(cfg, measure=measure)
    log.info(
        "arithmetic: %s (%s)",
        ", ".join(f"{k}={v}" for k, v in record.items() if k not in ("reason", "memory_format")),
        record["reason"],
    )
    info = run_info(resolved_config(cfg))
    info["machine"] = machine_info()
    info["fast_path"] = record
    run = Run(cfg=cfg, output_dir=output_dir, fast_path=record, info=info)
    _write_info(output_dir, info)
    return run


def task(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function(cfg, ...)`` as a posekit run: resolvers registered, fast path resolved once,
    ``run_info.json`` written, `current_run` set, W&B finished at the end (even on errors)."""

    @functools.wraps(function)
    def wrapper(cfg: DictConfig, *args: Any, **kwargs: Any) -> T:
        outer = current_run()
        if outer is not None and outer.cfg is cfg:  # a runner calling another on its own config
            return function(cfg, *args, **kwargs)
        run = start(cfg)
        token = _CURRENT.set(run)
        try:
            return function(cfg, *args, **kwargs)
        finally:
            _CURRENT.reset(token)
            finish_loggers()

    wrapper.__posekit_task__ = True  # type: ignore[attr-defined]
    return wrapper


def user_error(err: BaseException) -> BaseException | None:
    """The user-caused error behind ``err`` (Hydra's instantiation errors wrap the real one), or None."""
    from hydra.errors import InstantiationException

    seen = 0
    while isinstance(err, InstantiationException) and err.__cause__ is not None and seen < 8:
        err, seen = err.__cause__, seen + 1
    return err if isinstance(err, USER_ERRORS) else None


def report_error(err: BaseException) -> None:
    """One ``error: ...`` line on stderr (and the log) for a user-caused error."""
    message = str(err).strip() or type(err).__name__
    if isinstance(err, OmegaConfBaseException):
        message = message.splitlines()[0]
    log.error("%s", message)
    print(f"error: {message}", file=sys.stderr, flush=True)


def main(config_name: str, *, status: Callable[[BaseException], int] | None = None) -> Callable:
    """A Hydra command line over ``conf/<config_name>.yaml`` calling the decorated function; a
    user-caused error (`USER_ERRORS`) ends as one ``error:`` line and exit status 1 (or
    ``status(err)``; ``POSEKIT_TRACEBACK=1``: the traceback instead). The function's return value
    goes to Hydra (sweepers read it)."""
    import hydra

    def decorate(function: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        @functools.wraps(function)
        def command(cfg: DictConfig) -> Any:
            try:
                return function(cfg)
            except Exception as err:  # noqa: BLE001 (user errors are told apart below)
                known = user_error(err)
                if known is None or os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
                    raise
                report_error(known)
                sys.exit(status(known) if status else 1)

        command.__posekit_main__ = config_name  # type: ignore[attr-defined]
        return command

    return decorate
