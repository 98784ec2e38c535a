"""What the machine can do fast, and the one decider of ``auto``.

`choose_fast_path` picks, for the accelerator a run will use, the fastest arithmetic that keeps
accuracy: bf16-mixed on GPUs with native bf16 (compute capability 8.0 or newer) and on CPUs with
bf16 instructions (AVX512_BF16 or AMX); fp16-mixed with loss scaling on older GPUs; fp32
elsewhere (emulated bf16 is slower than fp32). The memory format is a rule on GPUs
(channels_last); on CPUs no rule knows it per network (oneDNN's blocked convolutions win for
some networks and lose for others), so `decide_channels_last` times a few training steps of
both formats on the run's network, input and batch, and keeps the faster, cached once per
machine and network (`memory_format_cache`). `src.runner` applies these decisions to a run's
config wherever it says ``auto``; with ``fast_path=false`` every key takes its `REFERENCE` value.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch import nn

CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
#: The reference path: the official arithmetic (fp32, NCHW tensors).
REFERENCE = ("32-true", False)
REFERENCE_REASON = "fast_path=false: the reference path (fp32, NCHW), the official arithmetic"
#: The keys that may say ``auto`` and their reference values (fast_path=false).
AUTO_KEYS = {
    "trainer.precision": "32-true",
    "model.channels_last": False,
    "data.reduced_decode": False,
    "data.normalize_on_device": False,
}
#: The batch timed when a run's batch is unknown (a task built by hand, an export).
UNKNOWN_BATCH = 2
#: Where measured decisions are cached (one JSON per kind); default ~/.cache/posekit.
CACHE_ENV = "POSEKIT_CACHE"


#: oneDNN's ISA levels in order; ``ONEDNN_MAX_CPU_ISA`` caps the kernels at one of them, and a
#: flag whose first level lies above the cap is treated as absent (how an AVX2 CPU is emulated).
ONEDNN_ISA_LEVELS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "ALL",
)
#: The first oneDNN level that uses each flag of `CPU_FLAGS`.
FLAG_ISA_LEVEL = {
    "avx2": "AVX2",
    "avx512f": "AVX512_CORE",
    "avx512bw": "AVX512_CORE",
    "avx512_vnni": "AVX512_CORE_VNNI",
    "avx512_bf16": "AVX512_CORE_BF16",
    "amx_tile": "AVX512_CORE_AMX",
    "amx_bf16": "AVX512_CORE_AMX",
}


def isa_cap(value: str | None = None) -> str | None:
    """The oneDNN ISA cap in force (``ONEDNN_MAX_CPU_ISA``, upper-cased), None when there is none;
    a value oneDNN does not know is refused with the known ones."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") if value is None else value
    if not value:
        return None
    cap = value.strip().upper()
    if cap not in ONEDNN_ISA_LEVELS:
        raise ValueError(f"ONEDNN_MAX_CPU_ISA={value!r} is not a oneDNN ISA level; known: {list(ONEDNN_ISA_LEVELS)}")
    return cap


def capped_flags(flags: dict[str, bool], cap: str | None) -> dict[str, bool]:
    """``flags`` with those above the ISA ``cap`` turned off (unchanged without a cap)."""
    if cap is None:
        return dict(flags)
    limit = ONEDNN_ISA_LEVELS.index(cap)
    return {name: present and ONEDNN_ISA_LEVELS.index(FLAG_ISA_LEVEL[name]) <= limit for name, present in flags.items()}


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """CPU model, the /proc/cpuinfo flags that matter for convolutions, and torch's CPU capability."""
    model, flags, cores = platform.processor() or "unknown", set(), set()
    physical = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", "x86_64"):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        pass
    cap = isa_cap()
    if cap is not None:
        model = f"{model} (ISA cap {cap})"
    return {
        "model": model,
        "logical_cpus": os.cpu_count(),
        "physical_cores": len(cores) or os.cpu_count(),
        "flags": capped_flags({name: name in flags for name in CPU_FLAGS}, cap),
        "isa_cap": cap,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def machine_info() -> dict[str, Any]:
    """The machine as run records name it: CPU model, physical cores, threads torch uses, the
    CPU flags of `CPU_FLAGS` it has, and the first GPU's name (None without one)."""
    info = cpu_info()
    return {
        "cpu": info["model"],
        "cores": int(info["physical_cores"] or 0),
        "threads": torch.get_num_threads(),
        "flags": [name for name, present in info["flags"].items() if present],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@dataclass(frozen=True)
class FastPath:
    """The path's rule: precision, the memory format where a rule knows it (GPUs; on CPUs the
    rule's value is what `decide_channels_last` measures against), and why."""

    precision: str  # a Lightning precision
    channels_last: bool
    reason: str


def choose_fast_path(accelerator: str = "auto", *, cpu: dict | None = None) -> FastPath:
    """The fast path for ``accelerator`` (cpu, gpu / cuda or auto) on this machine."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        major, minor = torch.cuda.get_device_capability(0)
        if major >= 8:
            return FastPath("bf16-mixed", True, f"GPU {name} (compute capability {major}.{minor}) has native bf16")
        return FastPath(
            "16-mixed", True, f"GPU {name} (compute capability {major}.{minor}) lacks bf16: fp16 with loss scaling"
        )
    info = cpu or cpu_info()
    flags = info["flags"]
    native = [name for name in ("avx512_bf16", "amx_bf16") if flags.get(name)]
    if native:
        return FastPath("bf16-mixed", True, f"CPU {info['model']} has bf16 instructions ({', '.join(native)})")
    if flags.get("avx2") or flags.get("avx512f"):
        return FastPath(
            "32-true",
            True,
            f"CPU {info['model']} has no bf16 instructions (emulated bf16 is slower than fp32): fp32",
        )
    return FastPath("32-true", False, f"CPU {info['model']}: neither bf16 instructions nor AVX2; plain fp32")


def decide(key: str, *, enabled: bool = True, accelerator: str = "auto") -> Any:
    """What ``auto`` means for ``key`` (one of `AUTO_KEYS`): the fast path's value, or the
    reference value when ``enabled`` is false. The memory format needs the network: see
    `decide_channels_last`."""
    if key not in AUTO_KEYS:
        raise ValueError(f"{key} takes no 'auto'; the keys that do: {sorted(AUTO_KEYS)}")
    if not enabled:
        return AUTO_KEYS[key]
    if key == "trainer.precision":
        return choose_fast_path(accelerator).precision
    if key == "model.channels_last":
        raise ValueError("model.channels_last=auto is decided per network: decide_channels_last(net, ...)")
    return True  # the data shortcuts: on with any fast path


def check_auto(key: str, value: Any) -> Any:
    """``value`` of a true / false / auto setting, refused when it is anything else."""
    if value in (True, False, "auto"):
        return value
    raise ValueError(f"{key} must be true, false or auto, got {value!r}")


def reference_path(reason: str = REFERENCE_REASON) -> FastPath:
    """The reference path: fp32 and NCHW tensors (data shortcuts off)."""
    return FastPath(*REFERENCE, reason)


def on_gpu(accelerator: str = "auto") -> bool:
    """Whether a run on ``accelerator`` computes on a CUDA GPU."""
    return str(accelerator) in ("gpu", "cuda", "auto") and torch.cuda.is_available()


# ---------------------------------------------------------------------------- memory format


def cache_dir() -> Path:
    """$POSEKIT_CACHE, or ~/.cache/posekit."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "posekit")


def memory_format_cache() -> Path:
    """The JSON of measured memory-format decisions, keyed by `memory_format_key`."""
    return cache_dir() / "memory_format.json"


def memory_format_key(net: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int, precision: str) -> str:
    """What a measured choice depends on: CPU model and flags, torch version, the network's class
    and parameter count, the input (C, H, W), the batch size and the precision."""
    info = cpu_info()
    flags = ",".join(name for name, present in sorted(info["flags"].items()) if present)
    network = f"{type(net).__module__}.{type(net).__qualname__}"
    params = sum(p.numel() for p in net.parameters())
    shape = "x".join(str(int(d)) for d in input_shape)
    return (
        f"{info['model']}|{flags}|torch {torch.__version__}|{network}|{params} params|"
        f"{shape}|batch {int(batch_size)}|{precision}"
    )


def _autocast(precision: str) -> Any:
    if precision.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast("cpu", dtype=torch.float16)
    return torch.autocast("cpu", enabled=False)


def _outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _outputs(o)]


def time_memory_formats(
    net: nn.Module,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    precision: str,
    budget_s: float = 5.0,
    max_steps: int = 5,
) -> dict[str, Any]:
    """Milliseconds of the fastest of a few training steps (forward, a loss over every output,
    backward) of a copy of ``net`` on a random (B, C, H, W) batch, in NCHW and in channels_last,
    the steps of the two formats interleaved, in about ``budget_s``. Two steps of each format at
    the smallest batch first (1 in fp32, 2 in mixed precision; the warm-up and the cost estimate;
    one when the first already exceeds the budget): the batch is ``batch_size`` when a warm-up and
    a timed step of both formats fit the budget, else the largest that does (even in mixed
    precision; returned as ``batch``); as many timed steps as fit follow
    (at least 2, at most ``max_steps``: big networks take fewer)."""
    copies = {
        "nchw": copy.deepcopy(net).train().to(memory_format=torch.contiguous_format),
        "channels_last": copy.deepcopy(net).train().to(memory_format=torch.channels_last),
    }
    inputs: dict[str, torch.Tensor] = {}
    extra: list[torch.Tensor] = []
    example_inputs = getattr(net, "example_inputs", None)  # what a network reads after the images

    def make_inputs(batch: int) -> None:
        images = torch.randn(batch, *(int(d) for d in input_shape))
        inputs.update(nchw=images, channels_last=images.contiguous(memory_format=torch.channels_last))
        extra[:] = list(example_inputs(batch)) if example_inputs is not None else []

    def step(name: str) -> float:
        model = copies[name]
        start = time.perf_counter()
        with _autocast(precision):
            outputs = _outputs(model(inputs[name], *extra))
        loss = sum(o.float().mean() for o in outputs)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) * 1000.0

    budget_ms = budget_s * 1000.0
    # Mixed precision: even batches only (bf16 autocast backward in channels_last corrupts the heap
    # for odd batch sizes with torch 2.13 on AVX512_BF16 CPUs: a PoseNet at batch 1, 3 or 5 aborts).
    even = not precision.startswith("32")
    smallest = min(2 if even else 1, int(batch_size))
    make_inputs(smallest)
    spent = sum(step(name) for name in copies)  # first calls: one-time costs
    pair_ms = spent
    if spent < budget_ms:  # else a big network: two timed steps of each follow, no more
        pair_ms = sum(step(name) for name in copies)  # the estimate
        spent += pair_ms
    fits = int(budget_ms / (2.0 * max(pair_ms, 1e-3)) * smallest)
    batch = max(smallest, min(int(batch_size), fits // 2 * 2 if even else fits))
    if batch > smallest:
        make_inputs(batch)
        pair_ms = sum(step(name) for name in copies)  # the warm-up at the measured batch
        spent += pair_ms
    steps = max(1, min(max_steps, max(2, int((budget_ms - spent) / max(pair_ms, 1e-3)))))
    times: dict[str, list[float]] = {name: [] for name in copies}
    for i in range(steps):
        for name in copies if i % 2 == 0 else reversed(list(copies)):
            times[name].append(step(name))
    return {  # the fastest step of each: other processes on the machine only ever slow a step down
        "nchw_ms": round(min(times["nchw"]), 3),
        "channels_last_ms": round(min(times["channels_last"]), 3),
        "steps": steps,
        "batch": batch,
    }


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def decide_channels_last(
    net: nn.Module,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    precision: str,
    accelerator: str = "auto",
    measure: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The fast path's memory format for ``net``: the rule on GPUs (channels_last); on CPUs the
    faster of NCHW and channels_last in a few timed training steps (`time_memory_formats`, or
    ``measure`` with the same keywords), cached under `memory_format_cache` by `memory_format_key`.
    Returns {"channels_last", "how": rule | measured | cached, and for CPUs "nchw_ms",
    "channels_last_ms", "steps", "key"}; a tie keeps NCHW, the reference."""
    if on_gpu(accelerator):
        return {"channels_last": True, "how": "rule"}
    key = memory_format_key(net, input_shape=input_shape, batch_size=batch_size, precision=precision)
    path = memory_format_cache()
    cached = _read_cache(path).get(key)
    if isinstance(cached, dict) and {"channels_last", "nchw_ms", "channels_last_ms"} <= set(cached):
        return {**cached, "how": "cached", "key": key}
    measure = measure or time_memory_formats
    timings = measure(net, input_shape=tuple(input_shape), batch_size=int(batch_size), precision=precision)
    entry = {
        "channels_last": bool(timings["channels_last_ms"] < timings["nchw_ms"]),
        "nchw_ms": float(timings["nchw_ms"]),
        "channels_last_ms": float(timings["channels_last_ms"]),
        "steps": int(timings.get("steps", 0)),
        "batch": int(timings.get("batch", batch_size)),
        "measured_on": date.today().isoformat(),
    }
    try:
        from src.utils.run_io import write_json_atomic

        write_json_atomic(path, {**_read_cache(path), key: entry})
    except OSError:  # a read-only home: the choice holds for this run only
        pass
    return {**entry, "how": "measured", "key": key}


def input_shape_of(codec: Any) -> tuple[int, int, int]:
    """The (C, H, W) network input of a codec's ``input_size`` (an int side or (w, h))."""
    size = codec.input_size if hasattr(codec, "input_size") else codec["input_size"]
    w, h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return (3, int(h), int(w))
