"""Shapes without computation: a network run on the meta device (no memory, no arithmetic)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

log = logging.getLogger(__name__)


def meta_outputs(net: nn.Module, input_shape: tuple[int, ...]) -> Any:
    """The outputs of ``net`` (eval mode) on a zero input of ``input_shape``, as meta tensors
    (shapes and dtypes only); the network's own weights are neither touched nor copied.

    Returns None (with a debug line) when an operation of the network has no meta kernel.
    """
    state = {name: torch.empty_like(t, device="meta") for name, t in (*net.named_parameters(), *net.named_buffers())}
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return functional_call(net, state, (torch.empty(input_shape, device="meta"),), strict=False)
    except (NotImplementedError, RuntimeError) as err:
        log.debug("no meta run of %s: %s", type(net).__name__, err)
        return None
    finally:
        net.train(was_training)
