"""3DMPPE PoseNet: official state_dict layouts (full size, on the meta device), a tiny forward /
backward pass, and the init paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from src.models.posenet import PoseNet
from src.models.resnet import ResNetBackbone
from src.models.weights import kaiming_init_
from tests.models.reference import load_reference

torch.set_num_threads(1)

TINY = {"depth": 18, "num_joints": 3, "depth_dim": 4, "base_width": 8, "layers": (1, 1, 1, 1), "deconv_channels": 16}


@pytest.mark.parametrize(
    ("name", "num_joints"), [("posenet_resnet50_18j_human36m", 18), ("posenet_resnet50_21j_muco", 21)]
)
def test_state_dict_matches_official(name: str, num_joints: int) -> None:
    ref = load_reference(name)
    assert ref["joint_num"] == num_joints and ref["depth_dim"] == 64
    with torch.device("meta"):
        model = PoseNet(depth=50, num_joints=num_joints)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(ref["state_dict"]), "key names / order differ from the official model"
    assert got == ref["state_dict"]
    assert len(got) == ref["num_state_dict_keys"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    assert model.num_joints == num_joints and model.depth_dim == 64
    assert list(model.head.final_layer.weight.shape[:1]) == [ref["head_heatmap_shape"][0]]


def test_tiny_forward_backward_shape() -> None:
    torch.manual_seed(0)
    model = PoseNet(**TINY)
    model.init_weights()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 3 * 4, 16, 16)  # (N, K * D, H/4, W/4)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_official_init_without_pretrained() -> None:
    torch.manual_seed(0)
    model = PoseNet(**TINY)
    model.init_weights()
    assert abs(model.backbone.layer1[0].conv1.weight.std().item() - 0.001) < 3e-4
    assert abs(model.head.deconv_layers[0].weight.std().item() - 0.001) < 3e-4
    assert model.head.final_layer.bias.eq(0).all()
    assert model.head.deconv_layers[1].weight.eq(1).all() and model.backbone.bn1.bias.eq(0).all()


def test_init_loads_torchvision_style_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    donor = ResNetBackbone(depth=18, base_width=8, layers=(1, 1, 1, 1)).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save({**donor, "fc.weight": torch.zeros(1000, 64), "fc.bias": torch.zeros(1000)}, path)
    model = PoseNet(**TINY)
    model.init_weights(pretrained=str(path))
    state = model.state_dict()
    for k, v in donor.items():
        torch.testing.assert_close(state[f"backbone.{k}"], v)
    assert model.head.final_layer.bias.eq(0).all()
    assert abs(model.head.final_layer.weight.std().item() - 0.001) < 5e-4
    with pytest.raises(FileNotFoundError, match="ImageNet resnet18"):
        PoseNet(**TINY).init_weights(pretrained=str(tmp_path / "missing.pth"))


def test_kaiming_init_keeps_the_head_output_near_zero() -> None:
    torch.manual_seed(0)
    model = PoseNet(**TINY)
    kaiming_init_(model)
    head = model.get_submodule(PoseNet.prediction_layers[0])
    assert head is model.head.final_layer
    assert head.weight.std().item() < 0.002 and head.bias.eq(0).all()
    others = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not head]
    assert others and all(m.weight.std().item() > 0.005 for m in others)
