"""CSPNeXt + HeatmapHead (mmpose's pretrain_cspnext_udp network): mmpose's key layout and head
shapes at full size (meta device), output size and init on small widths, and its checkpoints
initialising RTMPose's backbone (the two stages of the RTMPose quickstart)."""

from __future__ import annotations

import pytest
import torch

from src.models.cspnext import CSPNEXT_SIZES, CSPNeXt
from src.models.cspnext_heatmap import CSPNeXtHeatmap
from src.models.meta import meta_outputs
from src.models.rtmpose import RTMPose
from src.models.weights import kaiming_init_

torch.set_num_threads(1)


def tiny(**kwargs: object) -> CSPNeXtHeatmap:
    config: dict = {"size": None, "deepen_factor": 0.167, "widen_factor": 0.125, "num_joints": 5}
    return CSPNeXtHeatmap(**(config | {"deconv_channels": 16} | kwargs))


@pytest.mark.parametrize("size", sorted(CSPNEXT_SIZES))
def test_layout_is_mmpose_heatmap_head_on_cspnext(size):
    with torch.device("meta"):
        net = CSPNeXtHeatmap(size=size)
        backbone = CSPNeXt(deepen_factor=CSPNEXT_SIZES[size][0], widen_factor=CSPNEXT_SIZES[size][1])
    state = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert [k for k in state if k.startswith("backbone.")] == [f"backbone.{k}" for k in backbone.state_dict()]
    c = backbone.out_channels
    head = {k: v for k, v in state.items() if k.startswith("head.")}
    # mmpose HeatmapHead: deconv_layers.{0,3,6} ConvTranspose2d (no bias), {1,4,7} BatchNorm2d, final 1x1 conv
    assert head["head.deconv_layers.0.weight"] == (c, 256, 4, 4)
    assert head["head.deconv_layers.3.weight"] == head["head.deconv_layers.6.weight"] == (256, 256, 4, 4)
    assert head["head.deconv_layers.7.running_var"] == (256,) and "head.deconv_layers.0.bias" not in head
    assert head["head.final_layer.weight"] == (17, 256, 1, 1) and head["head.final_layer.bias"] == (17,)
    head_params = sum(p.numel() for n, p in net.named_parameters() if n.startswith("head."))
    assert head_params == c * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 2 * 256 + 256 * 17 + 17
    # stride 4: 256 x 192 crops give 64 x 48 heatmaps
    assert meta_outputs(net, (1, 3, 256, 192)).shape == (1, 17, 64, 48)


def test_tiny_forward_and_init():
    net = tiny()
    net.init_weights()
    heatmaps = net.eval()(torch.randn(2, 3, 96, 64))
    assert heatmaps.shape == (2, 5, 24, 16)
    assert abs(net.head.final_layer.weight.std().item() / 0.001 - 1) < 0.2
    assert not net.head.final_layer.bias.any()
    kaiming_init_(net)  # init=kaiming keeps the prediction layer near zero
    assert net.head.final_layer.weight.abs().max() < 0.01


def test_bad_sizes_refused():
    with pytest.raises(ValueError, match="unknown CSPNeXt size 'xl'"):
        CSPNeXtHeatmap(size="xl")
    with pytest.raises(ValueError, match="both deepen_factor and widen_factor"):
        CSPNeXtHeatmap(size=None, deepen_factor=0.33)


def test_its_checkpoint_initialises_rtmpose(tmp_path):
    """A training checkpoint of this network (``net.backbone.*``, ``net.head.*``) gives RTMPose of the
    same factors its whole backbone; the heatmap head's tensors are left out."""
    source = tiny()
    source.init_weights()
    for m in source.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}}, path)
    target = RTMPose(size=None, deepen_factor=0.167, widen_factor=0.125, num_joints=5, input_size=(64, 96))
    report = target.init_weights(path)
    assert report is not None and report.complete
    assert report.loaded == list(target.backbone.state_dict())
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[key], value), key
