"""What the machine can do fast, and the training path chosen for it.

`choose_fast_path` picks, for the accelerator a run will use, the fastest arithmetic that keeps
accuracy: bf16-mixed with channels_last on GPUs with native bf16 (compute capability 8.0 or
newer) and on CPUs with bf16 instructions (AVX512_BF16 or AMX); fp16-mixed with loss scaling on
older GPUs; fp32 with channels_last (oneDNN's blocked convolutions) on other x86 CPUs with AVX2 or
AVX-512, where emulated bf16 is slower than fp32; plain fp32 elsewhere. `apply_fast_path` puts
the choice into a run config wherever it says ``auto``.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from typing import Any

import torch

CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
#: The reference path: the official arithmetic (fp32, NCHW tensors).
REFERENCE = ("32-true", False)


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """CPU model, the /proc/cpuinfo flags that matter for convolutions, and torch's CPU capability."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", "x86_64"):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "logical_cpus": os.cpu_count(),
        "flags": {name: name in flags for name in CPU_FLAGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


@dataclass(frozen=True)
class FastPath:
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
            f"CPU {info['model']} has no bf16 instructions (emulated bf16 is slower than fp32): fp32 with "
            "channels_last",
        )
    return FastPath("32-true", False, f"CPU {info['model']}: neither bf16 instructions nor AVX2; plain fp32")


def resolve_channels_last(value: Any) -> bool:
    """A model's ``channels_last`` setting: true, false, or ``auto`` (the fast path's choice)."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"channels_last must be true, false or auto, got {value!r}")
        return choose_fast_path().channels_last
    return bool(value)


def apply_fast_path(cfg: Any) -> dict[str, Any]:
    """Replace ``auto`` in ``cfg.trainer.precision``, ``cfg.model.channels_last``,
    ``cfg.data.reduced_decode`` and ``cfg.data.normalize_on_device`` with the fast path of the
    run's accelerator (the reference path when ``cfg.fast_path`` is false: fp32, NCHW, full-size
    decoding, normalisation in the workers).
    Returns what was chosen and why ({} when nothing was ``auto``)."""
    from omegaconf import open_dict

    if cfg.get("fast_path", True):
        chosen = choose_fast_path(str(cfg.trainer.get("accelerator", "auto")) if "trainer" in cfg else "auto")
    else:
        chosen = FastPath(*REFERENCE, "fast_path=false: the reference path (fp32, NCHW), the official arithmetic")
    record: dict[str, Any] = {}
    with open_dict(cfg):
        if "trainer" in cfg and str(cfg.trainer.get("precision")) == "auto":
            cfg.trainer.precision = chosen.precision
            record["precision"] = chosen.precision
        if "model" in cfg and str(cfg.model.get("channels_last")) == "auto":
            cfg.model.channels_last = chosen.channels_last
            record["channels_last"] = chosen.channels_last
        for key in ("reduced_decode", "normalize_on_device"):  # data shortcuts: on with any fast path
            if "data" in cfg and str(cfg.data.get(key)) == "auto":
                cfg.data[key] = bool(cfg.get("fast_path", True))
                record[key] = cfg.data[key]
    if record:
        record["reason"] = chosen.reason
    return record
