"""Parameter groups: mmengine's paramwise rules and mmpose's ViT layer decay, checked against the
groups mmengine builds for RTMPose-m and ViTPose-B (optim_facts.json)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from torch import nn

from src.tasks.param_groups import describe_groups, layer_decay_groups, paramwise_groups
from tests.helpers import TINY_MODELS, compose_run

MODERN = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "modern"
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _reference(name: str) -> dict:
    path = MODERN / name
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    return json.loads(path.read_text())


def _stand_in(state_dict: dict[str, list[int]]) -> nn.Module:
    """A task-like module (the network under ``net``) on the meta device whose parameters have
    the names and shapes of a reference state_dict; the layer types the rules look at are real:
    BatchNorm where the reference has running statistics, LayerNorm for ``ln*`` / ``norm*``
    layers, depth-wise Conv2d for (C, 1, k, k) weights; other layers hold bare parameters."""
    layers: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for key, shape in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        layers[prefix][leaf] = shape
    task = nn.Module()
    task.net = nn.Module()
    with torch.device("meta"):
        for prefix, leaves in layers.items():
            params = {k: v for k, v in leaves.items() if k not in BN_BUFFERS}
            weight = params.get("weight")
            if "running_mean" in leaves:
                layer: nn.Module = nn.BatchNorm2d(weight[0])
            elif re.fullmatch(r"(ln|norm)\d*", prefix.rsplit(".", 1)[-1]) and len(weight or []) == 1:
                layer = nn.LayerNorm(weight[0])
            elif weight is not None and len(weight) == 4 and weight[1] == 1 and weight[0] > 1:
                layer = nn.Conv2d(weight[0], weight[0], weight[2:], groups=weight[0], bias="bias" in params)
            else:
                layer = nn.Module()
                for leaf, shape in params.items():
                    layer.register_parameter(leaf, nn.Parameter(torch.empty(shape)))
            assert {k: list(v.shape) for k, v in layer.named_parameters()} == params, prefix
            parent = task.net
            *path, last = prefix.split(".")
            for part in path:
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Module())
                parent = getattr(parent, part)
            parent.add_module(last, layer)
    return task


def test_rtmpose_m_groups_equal_mmengine_paramwise_groups():
    facts = _reference("optim_facts.json")["rtmpose_m_param_groups"]
    reference = _reference("rtmpose-m_coco-256x192.json")
    task = _stand_in(reference["state_dict"])
    groups = paramwise_groups(
        task, lr=4e-3, weight_decay=0.05, norm_decay_mult=0.0, bias_decay_mult=0.0, strip_prefix="net."
    )
    by_lr_wd: dict[tuple[float, float], int] = defaultdict(int)
    tensors = 0
    for group in describe_groups(groups, task, "net."):
        by_lr_wd[(group["lr"], group["weight_decay"])] += group["n_params"]
        tensors += group["n_tensors"]
    expected = {}
    for key, count in facts["params_by_lr_wd"].items():  # "lr=0.004 wd=0.05"
        lr, wd = (float(part.split("=")[1]) for part in key.split())
        expected[(lr, wd)] = count
    assert dict(by_lr_wd) == expected
    assert tensors == facts["n_groups"]  # mmengine: one group per parameter tensor
    expected_params = sum(
        torch.Size(s).numel() for k, s in reference["state_dict"].items() if not k.endswith(BN_BUFFERS)
    )
    assert sum(by_lr_wd.values()) == expected_params


def test_vitpose_b_groups_equal_mmpose_layer_decay_groups():
    facts = _reference("optim_facts.json")["vitpose_b_param_groups"]
    task = _stand_in(_reference("vitpose-b_coco-256x192.json")["state_dict"])
    defaults = facts["defaults"]
    groups = layer_decay_groups(
        task,
        lr=defaults["lr"],
        weight_decay=defaults["weight_decay"],
        num_layers=12,
        layer_decay_rate=0.75,
        strip_prefix="net.",
    )
    ours = {g["name"]: g for g in describe_groups(groups, task, "net.")}
    assert len(ours) == len(facts["groups"]) == 28
    for expected in facts["groups"]:
        got = ours[expected["group"]]
        assert got["lr"] == pytest.approx(expected["lr"], rel=1e-12), expected["group"]
        assert got["weight_decay"] == expected["weight_decay"], expected["group"]
        assert (got["n_tensors"], got["n_params"]) == (expected["n_tensors"], expected["n_params"]), expected["group"]
        shown = [n for n in expected["example_names"] if n != "..."]
        assert got["param_names"][: len(shown)] == shown, expected["group"]


class _Small(nn.Module):
    """A conv + BN + depth-wise conv + LayerNorm + linear, and a weight shared by two layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, groups=4)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)
        self.tied = nn.Linear(4, 2, bias=False)
        self.tied.weight = self.fc.weight
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def _options(groups: list[dict], module: nn.Module) -> dict[str, tuple[float, float]]:
    return {n: (g["lr"], g["weight_decay"]) for g in describe_groups(groups, module) for n in g["param_names"]}


def test_paramwise_rules_in_mmengine_order():
    module = _Small()
    groups = paramwise_groups(
        module,
        lr=1.0,
        weight_decay=0.1,
        norm_decay_mult=0.0,
        bias_decay_mult=0.5,
        bias_lr_mult=2.0,
        dwconv_decay_mult=0.3,
        custom_keys={"fc.weight": {"lr_mult": 0.1}},
    )
    got = _options(groups, module)
    assert got == {
        "conv.weight": (1.0, 0.1),
        "conv.bias": (2.0, pytest.approx(0.05)),
        "bn.weight": (1.0, 0.0),
        "bn.bias": (1.0, 0.0),  # a norm layer's bias: norm rule, no bias LR multiplier
        "dw.weight": (1.0, pytest.approx(0.03)),
        "dw.bias": (2.0, pytest.approx(0.03)),  # depth-wise rule before the bias rule (mmengine's order)
        "norm.weight": (1.0, 0.0),
        "norm.bias": (1.0, 0.0),
        "fc.weight": (pytest.approx(0.1), pytest.approx(0.1)),  # custom key: no other rule
        "fc.bias": (2.0, pytest.approx(0.05)),
        "frozen.weight": (1.0, 0.1),  # frozen: base options
        "frozen.bias": (1.0, 0.1),
    }
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))  # the tied weight once


def test_layer_decay_needs_vit_names_and_enough_layers():
    with pytest.raises(ValueError, match="no parameter named backbone.layers"):
        layer_decay_groups(_Small(), lr=1.0, weight_decay=0.1, num_layers=2, layer_decay_rate=0.5)
    vit = nn.Module()
    vit.backbone = nn.Module()
    vit.backbone.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    with pytest.raises(ValueError, match="block 2, but param_groups.num_layers=2"):
        layer_decay_groups(vit, lr=1.0, weight_decay=0.1, num_layers=2, layer_decay_rate=0.5)
    groups = layer_decay_groups(vit, lr=1.0, weight_decay=0.1, num_layers=3, layer_decay_rate=0.5)
    got = _options(groups, vit)
    assert got["backbone.layers.0.weight"] == (0.5**3, 0.1) and got["backbone.layers.2.bias"] == (0.5, 0.0)


def test_task_builds_optimizer_from_param_groups_config(tmp_path):
    cfg = compose_run("train", TINY_MODELS["topdown"], tmp_path / "run", tmp_path / "data")
    from hydra.utils import instantiate

    task = instantiate(
        cfg.model,
        optimizer={"_target_": "torch.optim.AdamW", "lr": 2e-3, "weight_decay": 0.05},
        param_groups={"_target_": "src.tasks.param_groups.paramwise_groups", "norm_decay_mult": 0.0, "bias": None},
        scheduler=None,
        _recursive_=False,
    )
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert {g["lr"] for g in optimizer.param_groups} == {2e-3}
    for module in task.net.modules():
        for p in module.parameters(recurse=False):
            assert decay[id(p)] == (0.0 if isinstance(module, nn.BatchNorm2d) else 0.05)
    assert len(decay) == len(list(task.parameters()))

    task.hparams.param_groups = {"norm_decay_mult": 0.0}
    with pytest.raises(ValueError, match="model.param_groups needs a _target_"):
        task.configure_optimizers()
    task.hparams.param_groups = None
    assert len(task.configure_optimizers().param_groups) == 1  # today's behaviour
