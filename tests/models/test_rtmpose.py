"""RTMPose (CSPNeXt + RTMCCHead): mmpose's state_dict layout, parameter counts and FLOPs at full size
(meta device), the head's parts and init on small widths, checkpoint loading and backbone files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from src.models.cspnext import CSPNeXt
from src.models.meta import meta_outputs
from src.models.rtmcc_head import RTMCCBlock, RTMCCHead, ScaleNorm, rope
from src.models.rtmpose import RTMPose
from src.models.weights import keep_prediction_layers_fp32_, load_official_weights
from tests.models.reference import build_meta, load_reference, shapes

torch.set_num_threads(1)

SIZES = ("t", "s", "m", "l")


def mmengine_flops(net: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-adds of convolutions, deconvolutions and matrix products, the same counted as
    mmengine's get_model_complexity_info does) on the meta device. mmengine adds 2 per BatchNorm
    output element and 1 per adaptive-average-pool input element; it counts no bias, activation or
    max pool."""
    extra = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal extra
        if isinstance(module, nn.BatchNorm2d):
            extra += 2 * output.numel()
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            extra += inputs[0].numel()

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    net.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.empty(input_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    macs = counter.get_total_flops() // 2  # FlopCounterMode counts 2 per multiply-add
    return macs, macs + extra


def save_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """An mmpose-style checkpoint file."""
    torch.save({"meta": {"epoch": 3}, "state_dict": state}, path)
    return path


def tiny(**kwargs: object) -> RTMPose:
    """RTMPose with 1/8 of the widths, one block per stage and a 32-wide GAU; input 64 x 96 (w x h)."""
    config: dict = {"size": None, "deepen_factor": 0.167, "widen_factor": 0.125, "num_joints": 5}
    config |= {"input_size": (64, 96), "hidden_dims": 32, "s": 16}
    return RTMPose(**(config | kwargs))


def randomize_buffers(net: nn.Module) -> None:
    """Running statistics other than the init values, so that a load that skipped them shows."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


# --------------------------------------------------------------------------- mmpose layouts


@pytest.mark.parametrize("size", SIZES)
def test_layout_matches_mmpose(size):
    ref = load_reference(f"modern/rtmpose-{size}_coco-256x192")
    net = build_meta(lambda: RTMPose(size=size))
    assert shapes(net) == ref["state_dict"]
    assert list(net.state_dict()) == list(ref["state_dict"])  # same order too
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"]
    outputs = meta_outputs(net, tuple(ref["notes"]["forward_input"]))
    assert [list(o.shape) for o in outputs] == ref["notes"]["forward_output_shapes"]


@pytest.mark.parametrize("size", SIZES)
def test_flops_match_mmengine(size):
    """mmengine's figure is reproduced exactly; the multiply-adds alone are about 1% below it."""
    ref = load_reference(f"modern/rtmpose-{size}_coco-256x192")
    expected = ref["notes"]["flops_mmengine_get_model_complexity_info"]
    macs, as_mmengine = mmengine_flops(build_meta(lambda: RTMPose(size=size)), (1, 3, 256, 192))
    assert as_mmengine == expected
    assert 0.98 * expected < macs < expected


def test_published_block_counts_and_batchnorm():
    """Blocks per stage: max(round(n * deepen), 1) of (3, 6, 6, 3); BN as RTMPose's SyncBN (1e-5, 0.1)."""
    counts = {size: build_meta(lambda size=size: RTMPose(size=size)).backbone.num_blocks for size in SIZES}
    assert counts == {"t": [1, 1, 1, 1], "s": [1, 2, 2, 1], "m": [2, 4, 4, 2], "l": [3, 6, 6, 3]}
    norms = [m for m in build_meta(lambda: RTMPose(size="t")).modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-5 and m.momentum == 0.1 for m in norms)
    mmdet_default = build_meta(lambda: CSPNeXt(bn_eps=1e-3, bn_momentum=0.03))
    assert all(m.eps == 1e-3 and m.momentum == 0.03 for m in mmdet_default.modules() if isinstance(m, nn.BatchNorm2d))


# --------------------------------------------------------------------------- forward / backward


def test_tiny_forward_backward():
    net = tiny()
    net.init_weights()
    images = torch.randn(2, 3, 96, 64)
    x, y = net(images)
    assert x.shape == (2, 5, 128) and y.shape == (2, 5, 192)
    (x.square().mean() + y.square().mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.head.gau.gamma.grad.abs().sum() > 0


def test_frozen_stages_keep_their_weights_and_statistics():
    net = tiny(frozen_stages=1)  # mmdet's CSPNeXt option: the stem and stage 1
    net.init_weights()
    randomize_buffers(net)
    net.train()
    frozen = [net.backbone.stem, net.backbone.stage1]
    assert all(not m.training for m in frozen) and net.backbone.stage2.training
    before = {k: v.clone() for k, v in net.backbone.state_dict().items() if k.startswith(("stem.", "stage1."))}
    x, y = net(torch.randn(2, 3, 96, 64))
    (x.square().mean() + y.square().mean()).backward()
    after = net.backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # running statistics too
    for name, p in net.backbone.named_parameters():
        assert (p.grad is None) == name.startswith(("stem.", "stage1.")), name
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in tiny().parameters())
    with pytest.raises(ValueError, match="frozen_stages"):
        tiny(frozen_stages=5)


def test_input_size_not_multiple_of_32():
    """Each stride-2 conv rounds up: 70 x 90 -> 3 x 3 maps."""
    net = tiny(input_size=(70, 90))
    assert net.head.in_featuremap_size == (3, 3)
    x, y = net.eval()(torch.randn(1, 3, 90, 70))
    assert x.shape == (1, 5, 140) and y.shape == (1, 5, 180)


def test_wrong_image_size_refused():
    with pytest.raises(ValueError, match=r"built for 2x3 \(w x h\) feature maps \(input 64x96\), got 2x2"):
        tiny()(torch.randn(1, 3, 64, 64))


def test_bad_configs_refused():
    with pytest.raises(ValueError, match="unknown CSPNeXt size 'xl'"):
        RTMPose(size="xl")
    with pytest.raises(ValueError, match="both deepen_factor and widen_factor"):
        RTMPose(size=None, widen_factor=0.5)
    with pytest.raises(ValueError, match="input_size must be two positive sizes"):
        tiny(input_size=(192,))
    with pytest.raises(ValueError, match="act_fn must be one of"):
        tiny(act_fn="GELU")


def test_explicit_factors_override_the_size():
    net = build_meta(lambda: RTMPose(size="s", widen_factor=0.75))
    assert (net.deepen_factor, net.widen_factor) == (0.33, 0.75)
    assert net.backbone.num_blocks == [1, 2, 2, 1] and net.backbone.out_channels == 768


def test_logits_stay_fp32_under_autocast():
    net = tiny()
    net.init_weights()
    assert keep_prediction_layers_fp32_(net) == 2  # cls_x, cls_y
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x, y = net.eval()(torch.randn(1, 3, 96, 64))
    assert x.dtype == y.dtype == torch.float32


# --------------------------------------------------------------------------- head parts and init


def test_scale_norm():
    norm = ScaleNorm(4)
    x = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = norm(x)
    torch.testing.assert_close(out[0], x[0] / (5.0 / 2.0))  # ||x|| / sqrt(4)
    assert torch.equal(out[1], torch.zeros(4))  # clamped, no NaN
    assert norm.g.shape == (1,)


def test_gau_matches_its_formula():
    """The block written out with einsum from its parameters."""
    torch.manual_seed(0)
    block = RTMCCBlock(num_tokens=5, in_dims=8, out_dims=8, expansion_factor=2, s=4)
    nn.init.normal_(block.uv.weight, std=0.3)
    nn.init.normal_(block.o.weight, std=0.3)
    nn.init.uniform_(block.res_scale.scale, 0.5, 1.5)
    x = torch.randn(3, 5, 8)
    normed = x / (x.norm(dim=-1, keepdim=True) / math.sqrt(8)) * block.ln.g
    uv = torch.nn.functional.silu(normed @ block.uv.weight.T)
    u, v, base = uv[..., :16], uv[..., 16:32], uv[..., 32:]
    q = base * block.gamma[0] + block.beta[0]
    k = base * block.gamma[1] + block.beta[1]
    attention = torch.relu(torch.einsum("nis,njs->nij", q, k) / 2.0) ** 2
    expected = x * block.res_scale.scale + (u * torch.einsum("nij,nje->nie", attention, v)) @ block.o.weight.T
    torch.testing.assert_close(block(x), expected)


def test_gau_token_order():
    """Without position terms the block is equivariant to the order of the keypoint tokens; the
    relative bias and the rotary embedding break that."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    for options, equivariant in (({}, True), ({"use_rel_bias": True}, False), ({"pos_enc": True}, False)):
        block = RTMCCBlock(num_tokens=6, in_dims=16, out_dims=16, s=8, **options)
        nn.init.normal_(block.uv.weight, std=0.5)
        with torch.no_grad():
            assert torch.allclose(block(x)[:, order], block(x[:, order]), atol=1e-5) == equivariant, options


def test_gau_drop_path_and_dropout_only_in_training():
    """Stochastic depth drops the whole attention branch of a sample (leaving res_scale * x)."""
    torch.manual_seed(0)
    block = RTMCCBlock(num_tokens=4, in_dims=8, out_dims=8, s=4, drop_path=0.5, dropout_rate=0.5)
    nn.init.normal_(block.uv.weight, std=0.5)
    nn.init.normal_(block.o.weight, std=0.5)
    x = torch.randn(64, 4, 8)
    out = block.train()(x)
    dropped = (out == x).flatten(1).all(1)
    assert 10 < dropped.sum() < 54
    block.eval()
    torch.testing.assert_close(block(x), x + block.attention(x))
    assert torch.equal(block(x), block(x))


def test_relative_bias_is_toeplitz_in_the_token_offset():
    block = RTMCCBlock(num_tokens=4, in_dims=8, out_dims=8, s=4, use_rel_bias=True)
    assert block.w.shape == (7,)
    with torch.no_grad():
        block.w.copy_(torch.arange(7.0))
    expected = torch.tensor([[3, 4, 5, 6], [2, 3, 4, 5], [1, 2, 3, 4], [0, 1, 2, 3]], dtype=torch.float32)
    assert torch.equal(block.relative_bias(4), expected)
    assert torch.equal(block.relative_bias(3), expected[:3, :3] - 1)  # fewer tokens: w[j - i + 2]


@pytest.mark.parametrize("frequencies", ["mmpose", "roformer"])
def test_rope_depends_on_the_offset_only(frequencies):
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8).expand(1, 6, 1, 8), torch.randn(1, 1, 1, 8).expand(1, 6, 1, 8)
    dots = (rope(q, frequencies=frequencies) * rope(k, frequencies=frequencies)).sum(-1)[0, :, 0]
    rq, rk = rope(q, frequencies=frequencies)[0, :, 0], rope(k, frequencies=frequencies)[0, :, 0]
    torch.testing.assert_close(rq[2] @ rk[0], rq[5] @ rk[3], rtol=1e-3, atol=1e-3)  # offset 2 both
    torch.testing.assert_close(dots[0], q[0, 0, 0] @ k[0, 0, 0])  # position 0 is not rotated
    # pair i turns by position * 10000^(+-i/4): pair 0 by the position itself
    x = torch.zeros(1, 3, 1, 8)
    x[..., 0] = 1.0
    torch.testing.assert_close(rope(x, frequencies=frequencies)[0, :, 0, 4], torch.sin(torch.arange(3.0)))


def test_head_init_as_mmpose():
    torch.manual_seed(0)
    head = RTMCCHead(in_channels=16, num_joints=17, input_size=(192, 256), in_featuremap_size=(6, 8))
    xavier_std = math.sqrt(2.0 / (256 + 1152))  # constructor, before init_weights
    assert abs(head.gau.uv.weight.std().item() / xavier_std - 1) < 0.03
    head.init_weights()
    assert abs(head.final_layer.weight.std().item() / 0.001 - 1) < 0.05
    assert torch.equal(head.final_layer.bias, torch.zeros(17))
    for layer in (head.mlp[1], head.gau.uv, head.gau.o, head.cls_x, head.cls_y):
        assert layer.bias is None
        assert abs(layer.weight.std().item() / 0.01 - 1) < 0.05
    for gate in (head.gau.gamma, head.gau.beta):
        assert gate.shape == (2, 128) and gate.min() >= 0 and gate.max() < 1 and gate.std() > 0.2
    assert head.mlp[0].g.item() == head.gau.ln.g.item() == 1.0
    assert torch.equal(head.gau.res_scale.scale, torch.ones(256))


# --------------------------------------------------------------------------- checkpoints


def test_mmpose_checkpoint_loads_strictly(tmp_path):
    source = tiny()
    source.init_weights()
    randomize_buffers(source)
    path = save_checkpoint(tmp_path / "rtmpose-tiny.pth", source.state_dict())
    target = tiny()
    load_official_weights(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    images = torch.randn(2, 3, 96, 64)
    for a, b in zip(source.eval()(images), target.eval()(images)):
        assert torch.equal(a, b)


def test_checkpoint_of_another_size_refused(tmp_path):
    """An RTMPose-s file into RTMPose-m: the differing shapes and the missing blocks are named. The
    file holds stride-0 views, so full-size shapes cost a few bytes."""
    small = build_meta(lambda: RTMPose(size="s"))
    state = {k: torch.zeros(()).expand(v.shape) for k, v in small.state_dict().items()}
    path = save_checkpoint(tmp_path / "rtmpose-s.pth", state)
    medium = build_meta(lambda: RTMPose(size="m"))
    with pytest.raises(ValueError) as error:
        load_official_weights(medium, path)
    message = str(error.value)
    assert "backbone.stem.0.conv.weight: file (16, 3, 3, 3) vs model (24, 3, 3, 3)" in message
    assert "missing from the file: backbone.stage1.1.blocks.1.conv1.conv.weight" in message


def test_backbone_file_initialises_the_backbone(tmp_path):
    """A pose checkpoint (``backbone.*`` plus a heatmap head, as the cspnext-*_udp-aic-coco files) or a
    bare CSPNeXt state_dict: every backbone tensor loaded and listed, the head keeps mmpose's init."""
    source = tiny()
    source.init_weights()
    randomize_buffers(source)
    backbone = source.backbone.state_dict()
    pose_file = {f"backbone.{k}": v for k, v in backbone.items()} | {"head.final_layer.weight": torch.ones(17, 8)}
    # a checkpoint of src.train (also a "state_dict" container): the task holds the network as ``net``
    own_checkpoint = {f"net.{k}": v for k, v in pose_file.items()}
    for name, state in (("udp-aic-coco.pth", pose_file), ("cspnext.pth", backbone), ("last.ckpt", own_checkpoint)):
        target = tiny()
        report = target.init_weights(save_checkpoint(tmp_path / name, state))
        assert report is not None and report.complete
        assert report.loaded == list(target.backbone.state_dict()) and not report.unused
        for key, value in backbone.items():
            assert torch.equal(target.backbone.state_dict()[key], value), key
        assert abs(target.head.cls_x.weight.std().item() / 0.01 - 1) < 0.06


def test_partial_backbone_file_needs_partial(tmp_path):
    source = tiny()
    state = {f"backbone.{k}": v for k, v in source.backbone.state_dict().items() if not k.startswith("stage4.")}
    path = save_checkpoint(tmp_path / "partial.pth", state)
    with pytest.raises(ValueError, match=r"initialises only part of CSPNeXt: .* missing from the file: stage4\.0\."):
        tiny().init_weights(path)
    target = tiny()
    report = target.init_weights(path, partial=True)
    dropped = [k for k in source.backbone.state_dict() if k.startswith("stage4.")]
    assert report is not None and report.missing == dropped and len(report.loaded) == len(state)
    assert torch.equal(target.backbone.stem[0].conv.weight, source.backbone.stem[0].conv.weight)


def test_missing_backbone_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        tiny().init_weights(tmp_path / "absent.pth")
