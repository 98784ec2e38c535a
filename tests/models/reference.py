"""The official networks' reference files (``../shared/reference``: parameter counts and state_dict
shapes) and building networks on the meta device to compare with them, shared by the model tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def load_reference(name: str) -> dict:
    """``<REFERENCE_DIR>/<name>.json`` (name may hold a subfolder, e.g. "modern/rtmpose-m_coco-256x192");
    the test is skipped when the file is absent."""
    path = REFERENCE_DIR / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    return json.loads(path.read_text())


def build_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """The network ``factory`` builds, on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        return factory()


def shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}
