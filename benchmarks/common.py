"""What every benchmark shares: the machine, the training-step harness, tables and results files.

* **machine**: `machine_info` (`src.runner.machine_info` with what results files add: flags by name,
  torch's CPU capability, versions, load), `automatic_path` (the runner's rule for ``auto`` here)
  and `network_path` (what ``auto`` resolves to for one network: on CPUs the memory format is
  measured, `src.runner.fast_path_for`), `machine_slug` (results file names);
* **harness**: `TrainingPath` (one network in one arithmetic variant: its own copy, Adam, a fixed
  random batch) and `alternate` (calls run round-robin, the starting one rotated every round, so
  machine noise hits them alike), `summarize` (medians, images/s and ratios to a baseline from the
  timings of one run: compare ratios within a run, never figures across runs);
* **output**: `format_table` / `print_table`, `write_json` (standard JSON: non-finite numbers as
  null) and `results_stem` (``<machine>-<date>``).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from src import runner
from src.utils.hardware import cpu_info

#: A training step is counted as 3x the forward FLOPs (forward + backward w.r.t. inputs and weights).
TRAIN_FLOP_FACTOR = 3.0
#: torch.autocast dtype of each Lightning precision (absent: no autocast).
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


# ----------------------------------------------------------------------------- machine
def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_info(threads: int) -> dict[str, Any]:
    """This machine as the results files record it (``threads``: torch threads the run uses):
    the runner's record (CPU, physical cores, GPU) with every flag of `CPU_FLAGS` by name
    (true / false), the logical CPUs, torch's CPU capability, versions and the load average."""
    machine, cpu = runner.machine_info(), cpu_info()
    return {
        "cpu": machine["cpu"],
        "cores": machine["cores"],
        "threads": threads,
        "logical_cpus": cpu["logical_cpus"],
        "flags": cpu["flags"],
        "torch_cpu_capability": cpu["torch_cpu_capability"],
        "gpu": machine["gpu"],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_before": load_average(),
    }


def automatic_path() -> dict[str, Any]:
    """The runner's rule for ``auto`` on this machine: precision, the rule's memory format, why."""
    fast = runner.choose_fast_path("auto")
    return {"precision": fast.precision, "channels_last": fast.channels_last, "reason": fast.reason}


def network_path(net: torch.nn.Module, hw: tuple[int, int], batch: int, *, quick: bool = False) -> dict[str, Any]:
    """What ``auto`` resolves to for ``net`` on (3, H, W) inputs in batches of ``batch``, as a
    training run's: {"precision", "channels_last", "reason", "memory_format": how it was chosen,
    with both timings where it was measured}. The measured choice is cached per machine and network.
    ``quick``: the memory formats timed in one step each (tiny networks that only check a script)."""
    from src.utils.hardware import time_memory_formats

    measure = functools.partial(time_memory_formats, budget_s=0.1, max_steps=1) if quick else None
    return runner.fast_path_for(net, input_shape=(3, *hw), batch_size=batch, measure=measure)


def machine_slug(machine: Mapping[str, Any]) -> str:
    """File-name form of the GPU's name, else the CPU's: 'AMD EPYC' -> 'amd-epyc'."""
    return re.sub(r"[^A-Za-z0-9]+", "-", machine.get("gpu") or machine["cpu"]).strip("-").lower() or "machine"


def results_stem(out: Path, machine: Mapping[str, Any], date: str | None = None) -> Path:
    """``out / <machine>-<YYYY-MM-DD>``: add ``.json`` or ``.png``."""
    return Path(out) / f"{machine_slug(machine)}-{date or dt.date.today().isoformat()}"


def bf16_hardware_note(flags: Mapping[str, bool]) -> str:
    """Whether this CPU computes bf16 in hardware, and what that means for the bf16 variants."""
    if flags.get("amx_bf16") or flags.get("avx512_bf16"):
        have = [n for n in ("avx512_bf16", "amx_bf16") if flags.get(n)]
        return f"CPU has native bf16 ({', '.join(have)}): oneDNN runs bf16 convolutions in hardware."
    base = "AVX-512" if flags.get("avx512f") else ("AVX2" if flags.get("avx2") else "plain SIMD")
    return (
        "CPU lacks avx512_bf16 and amx_bf16: oneDNN emulates bf16 dot products with "
        f"{base} fp32 instructions plus conversions, so bf16 saves memory traffic but no arithmetic."
    )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with ``threads`` torch threads (0: all logical CPUs); yields the number used."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    used = threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(used)
    try:
        yield used
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def one_worker() -> Iterator[None]:
    """What a DataLoader worker runs with: one torch thread and no OpenCV thread pool
    (as `src.datasets.datamodule`'s worker start-up sets them)."""
    import cv2

    previous_cv2 = cv2.getNumThreads()
    with torch_threads(1):
        cv2.setNumThreads(0)
        try:
            yield
        finally:
            cv2.setNumThreads(previous_cv2)


# ----------------------------------------------------------------------------- networks
def build_task(overrides: Sequence[str]) -> Any:
    """The LightningModule of the ``train`` config with ``overrides`` (random weights), in eval mode,
    its network in NCHW: benchmarks copy the network into each variant's memory format, and the
    format ``auto`` takes for it is measured by `network_path` with the benchmark's batch."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=["model.channels_last=false", *overrides])
    return instantiate(cfg.model, _recursive_=False).eval()


def output_tensors(out: Any) -> list[torch.Tensor]:
    """Every tensor of a network output (a tensor, or nested lists / tuples / dicts of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in output_tensors(o)]


def forward_gflops(net: torch.nn.Module, hw: tuple[int, int]) -> float:
    """Forward GFLOPs of one (3, H, W) image, counted on the meta device (no memory, no arithmetic)."""
    meta = copy.deepcopy(net).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, *hw, device="meta"))
    return counter.get_total_flops() / 1e9


# ----------------------------------------------------------------------------- harness
@dataclass(frozen=True)
class Variant:
    """One arithmetic variant of a training step."""

    precision: str  # a Lightning precision: 32-true, bf16-mixed, 16-mixed
    channels_last: bool
    label: str
    compile: bool = False  # torch.compile of the network (its first step holds the compile time)


#: The variants the detailed benchmarks compare; "fp32" is the reference (the official arithmetic).
VARIANTS: dict[str, Variant] = {
    "fp32": Variant("32-true", False, "fp32, contiguous (reference)"),
    "fp32_cl": Variant("32-true", True, "fp32 + channels_last"),
    "bf16": Variant("bf16-mixed", False, "bf16-mixed, contiguous"),
    "bf16_cl": Variant("bf16-mixed", True, "bf16-mixed + channels_last"),
    "bf16_cl_compile": Variant("bf16-mixed", True, "bf16-mixed + channels_last + torch.compile", compile=True),
}
REFERENCE_VARIANT = "fp32"


def variant_of(precision: str, channels_last: bool) -> str | None:
    """The name of the (uncompiled) variant with this precision and memory format, None if none has."""
    for name, v in VARIANTS.items():
        if (v.precision, v.channels_last, v.compile) == (precision, channels_last, False):
            return name
    return None


def parse_variants(text: str) -> list[str]:
    """Comma-separated variant names, checked against `VARIANTS` (for argparse ``type=``)."""
    import argparse

    names = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    return names


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TrainingPath:
    """One network in one arithmetic variant: its own copy and Adam optimiser, a fixed batch.

    ``loss(outputs, targets)`` gets the network's output (under no autocast) and ``targets`` moved
    to the device, and returns a scalar; a non-finite loss raises.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        images: torch.Tensor,
        targets: Any,
        loss: Callable[[Any, Any], torch.Tensor],
        *,
        precision: str = "32-true",
        channels_last: bool = False,
        compile: bool = False,
        lr: float = 1e-4,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or default_device()
        self.precision, self.channels_last = precision, channels_last
        self.dtype = AUTOCAST_DTYPES.get(precision)
        if self.dtype is None and precision != "32-true":
            raise ValueError(f"unknown precision {precision!r}; choose from 32-true, {', '.join(AUTOCAST_DTYPES)}")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net = copy.deepcopy(net).to(self.device, memory_format=fmt)
        self.forward = torch.compile(self.net) if compile else self.net
        self.images = images.to(self.device).contiguous(memory_format=fmt)
        self.targets = _to_device(targets, self.device)
        self.loss = loss
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.losses: list[float] = []

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(self) -> None:
        """Forward, loss, backward and an Adam step (finished on the device when it returns)."""
        self.net.train()
        with self._autocast():
            outputs = self.forward(self.images)
        loss = self.loss(outputs, self.targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._sync()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"non-finite loss {value} on the {self.precision} path")
        self.losses.append(value)

    def infer_step(self, flip: bool = False) -> None:
        """One forward in eval mode; with ``flip`` a second one on the mirrored batch (flip test)."""
        self.net.eval()
        with torch.inference_mode(), self._autocast():
            self.forward(self.images)
            if flip:
                self.forward(self.images.flip(3))
        self._sync()


def _to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(_to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to_device(v, device) for k, v in x.items()}
    return x


def mse_to_targets(outputs: Any, targets: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the network's outputs of the fp32 MSE to fixed targets: the network's arithmetic,
    not a family's own loss."""
    tensors = output_tensors(outputs)
    if len(tensors) != len(targets):
        raise ValueError(f"the network gave {len(tensors)} outputs, the targets are {len(targets)}")
    return sum(torch.nn.functional.mse_loss(o.float(), t) for o, t in zip(tensors, targets))


def random_targets(net: torch.nn.Module, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """U(0, 1) targets shaped like each of the network's outputs for ``images`` (N, 3, H, W)."""
    with torch.no_grad():
        shapes = [o.shape[1:] for o in output_tensors(copy.deepcopy(net).eval()(images[:1]))]
    return [torch.rand(len(images), *s, generator=generator) for s in shapes]


def alternate(
    calls: Mapping[str, Callable[[], object]],
    *,
    warmup: int,
    iters: int,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.process_time,
    on_round: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Call each of ``calls`` once per round for ``warmup + iters`` rounds, round r starting at the
    (r mod n)-th call, and time every call.

    Returns ``{name: {"times_s": [...], "cpu_s": [...], "warmup_s": [...]}}``: wall and process CPU
    seconds of the ``iters`` timed calls, and the wall seconds of the warm-up calls. ``on_round(r,
    {name: seconds})`` is called after each round (progress lines).
    """
    if warmup < 0 or iters < 1:
        raise ValueError(f"need warmup >= 0 and iters >= 1, got {warmup} and {iters}")
    names = list(calls)
    out: dict[str, dict[str, list[float]]] = {n: {"times_s": [], "cpu_s": [], "warmup_s": []} for n in names}
    for r in range(warmup + iters):
        shift = r % len(names)
        seconds: dict[str, float] = {}
        for name in names[shift:] + names[:shift]:
            c0, t0 = cpu_clock(), clock()
            calls[name]()
            seconds[name], cpu = clock() - t0, cpu_clock() - c0
            if r < warmup:
                out[name]["warmup_s"].append(seconds[name])
            else:
                out[name]["times_s"].append(seconds[name])
                out[name]["cpu_s"].append(cpu)
        if on_round is not None:
            on_round(r, seconds)
    return out


def summarize(
    timings: Mapping[str, Mapping[str, list[float]]],
    *,
    batch: int,
    baseline: str | None = None,
    threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per call: median and fastest step, ``images_per_s`` = batch / median, and with ``baseline``
    ``ratio`` = images/s over the baseline's (above 1: faster), ``ratio_from_min`` the same from the
    fastest steps; with ``threads``, ``cpu_utilisation`` = CPU time / (wall time x threads)."""
    out: dict[str, dict[str, Any]] = {}
    for name, t in timings.items():
        median = statistics.median(t["times_s"])
        out[name] = {
            "times_s": list(t["times_s"]),
            "median_step_s": median,
            "min_step_s": min(t["times_s"]),
            "images_per_s": batch / median,
        }
        if threads and t.get("cpu_s"):
            out[name]["cpu_utilisation"] = sum(t["cpu_s"]) / (sum(t["times_s"]) * threads)
    if baseline is not None:
        if baseline not in out:
            raise KeyError(f"baseline {baseline!r} is not among the timed calls {list(out)}")
        for v in out.values():
            v["ratio"] = v["images_per_s"] / out[baseline]["images_per_s"]
            v["ratio_from_min"] = out[baseline]["min_step_s"] / v["min_step_s"]
    return out


def time_call(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Wall seconds of one call."""
    t0 = clock()
    fn()
    return clock() - t0


# ----------------------------------------------------------------------------- output
def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Text lines of a table: the first column left-aligned, the others right-aligned."""
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"table row {i} has {len(row)} cells, the header {len(headers)}: {row}")
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[Any]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    head = line(headers)
    return [head, "-" * len(head), *(line(r) for r in rows)]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], log: Callable[[str], Any] = print) -> None:
    for text in format_table(headers, rows):
        log(text)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_json(path: Path, result: Mapping[str, Any]) -> Path:
    """Write ``result`` as indented standard JSON (NaN and infinities as null); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(dict(result)), indent=2, allow_nan=False) + "\n")
    return path


def log_line(msg: str = "") -> None:
    """Print a progress or result line at once (benchmarks run for minutes)."""
    print(msg, flush=True)


def write_video(frames: Sequence[np.ndarray], fps: float, path: Path) -> Path:
    """RGB frames (H, W, 3) uint8 as an MP4 (mp4v) at ``fps``; returns ``path``."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {path} (OpenCV has no mp4v encoder here)")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
