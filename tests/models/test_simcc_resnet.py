"""SimCC-ResNet (ResNet + SimCCHead): mmpose's SimCC-R50 layout, parameter count and FLOPs (meta
device), small-width forward / backward, init, checkpoints of this and of other families."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from src.models.meta import meta_outputs
from src.models.resnet import PoseResNet
from src.models.simcc_head import SimCCHead, SimCCResNet
from src.models.weights import keep_prediction_layers_fp32_, load_official_weights
from tests.models.reference import build_meta, load_reference, shapes
from tests.models.test_rtmpose import mmengine_flops, randomize_buffers, save_checkpoint

torch.set_num_threads(1)


def tiny(**kwargs: object) -> SimCCResNet:
    """ResNet-50 blocks at 1/8 width, one per layer, 16-channel deconvs; input 64 x 96 (w x h)."""
    config: dict = {"depth": 50, "base_width": 8, "layers": (1, 1, 1, 1), "deconv_channels": 16}
    config |= {"num_joints": 5, "input_size": (64, 96)}
    return SimCCResNet(**(config | kwargs))


def test_layout_matches_mmpose():
    ref = load_reference("modern/simcc_res50_coco-256x192")
    net = build_meta(lambda: SimCCResNet(depth=50))
    assert shapes(net) == ref["state_dict"]
    assert list(net.state_dict()) == list(ref["state_dict"])
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"]
    outputs = meta_outputs(net, tuple(ref["notes"]["forward_input"]))
    assert [list(o.shape) for o in outputs] == ref["notes"]["forward_output_shapes"]
    assert net.head.mlp_head_x.in_features == 48 * 64  # 6 x 8 map, three 2x deconvs


def test_flops_match_mmengine():
    ref = load_reference("modern/simcc_res50_coco-256x192")
    expected = ref["notes"]["flops_mmengine_get_model_complexity_info"]
    macs, as_mmengine = mmengine_flops(build_meta(lambda: SimCCResNet(depth=50)), (1, 3, 256, 192))
    assert as_mmengine == expected
    assert 0.99 * expected < macs < expected


def test_tiny_forward_backward():
    net = tiny()
    net.init_weights()
    x, y = net(torch.randn(2, 3, 96, 64))
    assert x.shape == (2, 5, 128) and y.shape == (2, 5, 192)
    (x.square().mean() + y.square().mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_head_without_deconvolutions():
    """No deconvs: mmpose's ``head.final_layer`` (1x1 conv) on the stride-32 map, flattened."""
    head = SimCCHead(in_channels=32, num_joints=5, input_size=(64, 96), in_featuremap_size=(2, 3), num_deconv_layers=0)
    assert list(shapes(head)) == ["final_layer.weight", "final_layer.bias"] + [
        f"mlp_head_{a}.{p}" for a in "xy" for p in ("weight", "bias")
    ]
    assert head.mlp_head_x.in_features == 6
    x, y = head(torch.randn(2, 32, 3, 2))
    assert x.shape == (2, 5, 128) and y.shape == (2, 5, 192)


def test_wrong_image_size_refused():
    with pytest.raises(ValueError, match=r"SimCCHead was built for 2x3 \(w x h\) feature maps"):
        tiny()(torch.randn(1, 3, 96, 96))


def test_init_as_mmpose_without_a_file():
    torch.manual_seed(0)
    net = tiny(deconv_channels=64)
    assert net.init_weights() is None
    head = net.head
    for layer in (head.mlp_head_x, head.mlp_head_y):
        assert abs(layer.weight.std().item() / 0.01 - 1) < 0.05 and torch.equal(
            layer.bias, torch.zeros_like(layer.bias)
        )
    deconv = head.deconv_head.deconv_layers[3].weight  # 64 x 64 x 4 x 4
    assert abs(deconv.std().item() / 0.001 - 1) < 0.05
    assert torch.equal(head.deconv_head.final_layer.bias, torch.zeros(5))
    # backbone: Kaiming normal (fan_out, ReLU gain) and zero-initialised residual branches
    conv1 = net.backbone.conv1.weight  # 8 x 3 x 7 x 7, fan_out 8 * 49
    assert abs(conv1.std().item() / math.sqrt(2.0 / (8 * 49)) - 1) < 0.1
    assert all(torch.equal(b[0].bn3.weight, torch.zeros_like(b[0].bn3.weight)) for b in _layers(net))
    assert torch.equal(net.backbone.bn1.weight, torch.ones(8))


def _layers(net: SimCCResNet) -> list[nn.Sequential]:
    return [getattr(net.backbone, f"layer{i}") for i in range(1, 5)]


def test_logits_stay_fp32_under_autocast():
    net = tiny()
    net.init_weights()
    assert keep_prediction_layers_fp32_(net) == 3  # mlp_head_x, mlp_head_y and the deconv head's final conv
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x, y = net.eval()(torch.randn(1, 3, 96, 64))
    assert x.dtype == y.dtype == torch.float32


# --------------------------------------------------------------------------- checkpoints


def test_mmpose_checkpoint_loads_strictly(tmp_path):
    source = tiny()
    source.init_weights()
    randomize_buffers(source)
    path = save_checkpoint(tmp_path / "simcc_res50.pth", source.state_dict())
    target = tiny()
    load_official_weights(target, path)
    images = torch.randn(2, 3, 96, 64)
    for a, b in zip(source.eval()(images), target.eval()(images)):
        assert torch.equal(a, b)


def test_heatmap_model_checkpoint_refused(tmp_path):
    """An mmpose heatmap model of the same backbone (``head.deconv_layers`` / ``head.final_layer``)
    into SimCC-ResNet: the keys on each side are named."""
    heatmap = PoseResNet(depth=50, num_joints=5, base_width=8, layers=(1, 1, 1, 1), deconv_channels=16)
    state = {
        (f"head.{k}" if k.startswith(("deconv_layers", "final_layer")) else f"backbone.{k}"): v
        for k, v in heatmap.state_dict().items()
    }
    path = save_checkpoint(tmp_path / "td-hm_res50.pth", state)
    with pytest.raises(ValueError) as error:
        load_official_weights(tiny(), path)
    message = str(error.value)
    # 3 x (deconv + 5 BN tensors) + final conv (2), and the two linear layers (4)
    assert "24 missing from the file: head.deconv_head.deconv_layers.0.weight" in message
    assert "20 not in the model: head.deconv_layers.0.weight" in message


def test_torchvision_file_initialises_the_backbone(tmp_path):
    """A torchvision-style ResNet state_dict: the backbone loads entirely, ``fc`` is listed as unused."""
    source = tiny()
    randomize_buffers(source)
    state = dict(source.backbone.state_dict()) | {"fc.weight": torch.zeros(10, 256), "fc.bias": torch.zeros(10)}
    path = save_checkpoint(tmp_path / "resnet50-tiny.pth", state)
    target = tiny()
    report = target.init_weights(path)
    assert report is not None and report.complete and report.unused == ["fc.weight", "fc.bias"]
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[key], value), key


def test_partial_backbone_file_needs_partial(tmp_path):
    source = tiny()
    state = {f"backbone.{k}": v for k, v in source.backbone.state_dict().items() if not k.startswith("layer4.")}
    path = save_checkpoint(tmp_path / "partial.pth", state)
    with pytest.raises(ValueError, match=r"initialises only part of ResNetBackbone: .* layer4\.0\.conv1\.weight"):
        tiny().init_weights(path)
    report = tiny().init_weights(path, partial=True)
    assert report is not None and report.missing and all(k.startswith("layer4.") for k in report.missing)
