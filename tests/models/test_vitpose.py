"""ViTPose: mmpose's keys, shapes and parameter counts; forward and backward; drop path; strict loading of
mmpose-style checkpoints (cls position included); MAE backbone files (timm names, 224 grid) as initialisation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.models.drop_path import DropPath, drop_path
from src.models.vit import MultiheadAttention, VisionTransformer, resize_pos_embed, timm_to_mmpretrain
from src.models.vitpose import ViTPose
from src.models.weights import load_official_weights
from tests.models.reference import load_reference

TINY = {"arch": None, "embed_dims": 32, "num_layers": 2, "num_heads": 4, "feedforward_channels": 48}


def _tiny(**overrides) -> ViTPose:
    return ViTPose(**{**TINY, "num_joints": 5, "deconv_channels": 16, **overrides})


@pytest.mark.parametrize("arch", ["s", "b", "l", "h"])
@pytest.mark.parametrize("head", ["classic", "simple"])
def test_keys_shapes_and_params_equal_mmpose(arch: str, head: str) -> None:
    reference = load_reference(f"modern/vitpose-{arch}{'-simple' if head == 'simple' else ''}_coco-256x192")
    with torch.device("meta"):
        net = ViTPose(arch=arch, head=head, num_joints=17)
    shapes = {key: list(value.shape) for key, value in net.state_dict().items()}
    assert shapes == reference["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == reference["num_params"]
    out = net(torch.empty(1, 3, 256, 192, device="meta"))
    assert list(out.shape) == reference["notes"]["forward_output_shapes"][0]


@pytest.mark.parametrize("head", ["classic", "simple"])
def test_forward_shapes_and_backward(head: str) -> None:
    torch.manual_seed(0)
    net = _tiny(head=head, drop_path_rate=0.0)  # every branch kept, so every parameter gets a gradient
    net.init_weights()
    assert net.backbone.patch_resolution == (16, 12)
    features = net.backbone(torch.randn(2, 3, 256, 192))
    assert features.shape == (2, 32, 16, 12)
    out = net(torch.randn(2, 3, 256, 192))
    assert out.shape == (2, 5, 64, 48)
    (out**2).mean().backward()
    no_grad = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    # another input size: the position grid is resized on the fly (16x12 -> 8x8)
    net.eval()
    assert net(torch.randn(1, 3, 128, 128)).shape == (1, 5, 32, 32)


def test_attention_splits_heads_as_mmpretrain() -> None:
    """qkv rows are [q; k; v], each cut into heads in order; softmax(q k^T / sqrt(d)) v per head."""
    torch.manual_seed(0)
    attn = MultiheadAttention(embed_dims=8, num_heads=2)
    x = torch.randn(1, 5, 8)
    w, b = attn.qkv.weight, attn.qkv.bias
    heads = []
    for h in range(2):
        rows = [slice(part * 8 + h * 4, part * 8 + h * 4 + 4) for part in range(3)]
        q, k, v = (x[0] @ w[r].T + b[r] for r in rows)
        heads.append(torch.softmax(q @ k.T / 2.0, dim=-1) @ v)
    expected = attn.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(attn(x)[0], expected)


def test_drop_path_identity_in_eval_and_stochastic_in_training() -> None:
    torch.manual_seed(0)
    layer = DropPath(0.25)
    x = torch.ones(4000, 3, 2)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    out = layer(x)
    per_sample = out.flatten(1)
    # each sample is all-dropped or all-kept (scaled by 1 / 0.75)
    assert torch.all((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / 0.75)).all(1))
    dropped = (per_sample == 0).all(1).float().mean().item()
    assert abs(dropped - 0.25) < 0.03
    assert abs(out.mean().item() - 1.0) < 0.05
    assert not torch.equal(layer(x), out)  # a new draw each call
    assert torch.equal(drop_path(x, 0.0, training=True), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)


def test_drop_path_rates_rise_linearly_per_layer() -> None:
    with torch.device("meta"):
        net = ViTPose(arch="b")
    rates = [layer.drop_path.p for layer in net.backbone.layers]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3)
    assert rates == pytest.approx([0.3 * i / 11 for i in range(12)])
    with torch.device("meta"):
        assert ViTPose(arch="s").backbone.layers[-1].drop_path.p == pytest.approx(0.1)
        assert ViTPose(arch="h").backbone.layers[-1].drop_path.p == pytest.approx(0.55)


def test_init_weights_follows_mmpose_and_mmpretrain() -> None:
    torch.manual_seed(0)
    net = ViTPose(**{**TINY, "embed_dims": 64, "feedforward_channels": 256}, num_joints=17)
    net.init_weights()
    head = net.head
    assert head.final_layer.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert head.final_layer.bias.abs().max().item() == 0.0
    assert head.deconv_layers[0].weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.all(head.deconv_layers[1].weight == 1) and torch.all(head.deconv_layers[1].bias == 0)
    backbone = net.backbone
    assert backbone.pos_embed.std().item() == pytest.approx(0.02, rel=0.1)
    fc1 = backbone.layers[0].ffn.layers[0][0]
    bound = math.sqrt(6 / (64 + 256))  # Xavier uniform
    assert fc1.weight.abs().max().item() <= bound and fc1.weight.abs().max().item() > 0.9 * bound
    assert fc1.bias.std().item() < 1e-5
    conv = backbone.patch_embed.projection
    bound = 1 / math.sqrt(3 * 16 * 16)  # PyTorch's Conv2d default: U(-bound, bound) for weight and bias
    assert 0.9 * bound < conv.weight.abs().max().item() <= bound and 0 < conv.bias.abs().max().item() <= bound


def _with_cls_position(state: dict[str, torch.Tensor], cls: torch.Tensor) -> dict[str, torch.Tensor]:
    state = dict(state)
    state["backbone.pos_embed"] = torch.cat([cls, state["backbone.pos_embed"]], dim=1)
    return state


@pytest.mark.parametrize("cls_position", ["drop", "add"])
def test_mmpose_checkpoint_loads_strictly_with_a_cls_position(tmp_path: Path, cls_position: str) -> None:
    torch.manual_seed(0)
    source = _tiny()
    source.init_weights()
    with torch.no_grad():  # non-trivial BN statistics
        source.head.deconv_layers[1].running_mean.uniform_(-1, 1)
    cls = torch.randn(1, 1, 32)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / "td-hm_ViTPose-tiny.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": _with_cls_position(state, cls)}, path)
    target = _tiny(cls_position=cls_position)
    load_official_weights(target, path)
    loaded = target.state_dict()
    for key, value in state.items():
        if key != "backbone.pos_embed":
            assert torch.equal(loaded[key], value), key
    expected = state["backbone.pos_embed"] + (cls if cls_position == "add" else 0)
    torch.testing.assert_close(loaded["backbone.pos_embed"], expected)
    if cls_position == "drop":
        source.eval()
        target.eval()
        images = torch.randn(1, 3, 256, 192)
        torch.testing.assert_close(target(images), source(images))
    # a file without the cls position (what mmpose saves) loads as is, a cls_token is not needed
    torch.save({"state_dict": state | {"backbone.cls_token": torch.zeros(1, 1, 32)}}, path)
    load_official_weights(target, path)
    assert torch.equal(target.state_dict()["backbone.pos_embed"], state["backbone.pos_embed"])


def test_vitpose_b_file_into_s_is_refused_with_keys_and_shapes(tmp_path: Path) -> None:
    with torch.device("meta"):
        base, small = ViTPose(arch="b"), ViTPose(arch="s")
    # zero-stride tensors of ViTPose-B's shapes: the file holds one number per tensor
    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in base.state_dict().items()}
    state["backbone.pos_embed"] = torch.zeros(()).expand(1, 193, 768)  # a cls position, as published files may hold
    path = tmp_path / "td-hm_ViTPose-base.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError) as err:
        load_official_weights(small, path)
    message = str(err.value)
    assert "backbone.pos_embed: file (1, 192, 768) vs model (1, 192, 384)" in message
    assert "backbone.patch_embed.projection.weight: file (768, 3, 16, 16) vs model (384, 3, 16, 16)" in message
    assert str(path) in message and "ViTPose" in message


def _mae_file(grid: int = 14, *, embed_dims: int = 32, layers: int = 2, ffn: int = 48) -> dict[str, torch.Tensor]:
    """A MAE ``mae_pretrain_vit_*.pth``-style encoder in timm names at 224 x 224 (a cls token and position)."""
    state = {
        "cls_token": torch.randn(1, 1, embed_dims),
        "pos_embed": torch.randn(1, 1 + grid * grid, embed_dims),
        "patch_embed.proj.weight": torch.randn(embed_dims, 3, 16, 16),
        "patch_embed.proj.bias": torch.randn(embed_dims),
        "norm.weight": torch.randn(embed_dims),
        "norm.bias": torch.randn(embed_dims),
    }
    for i in range(layers):
        for name, shape in (
            ("norm1", (embed_dims,)),
            ("attn.qkv", (3 * embed_dims, embed_dims)),
            ("attn.proj", (embed_dims, embed_dims)),
            ("norm2", (embed_dims,)),
            ("mlp.fc1", (ffn, embed_dims)),
            ("mlp.fc2", (embed_dims, ffn)),
        ):
            state[f"blocks.{i}.{name}.weight"] = torch.randn(shape)
            state[f"blocks.{i}.{name}.bias"] = torch.randn(shape[0])
    return state


def test_timm_names_map_to_mmpretrain() -> None:
    assert timm_to_mmpretrain("blocks.11.mlp.fc1.bias") == "layers.11.ffn.layers.0.0.bias"
    assert timm_to_mmpretrain("blocks.3.mlp.fc2.weight") == "layers.3.ffn.layers.1.weight"
    assert timm_to_mmpretrain("blocks.0.norm1.weight") == "layers.0.ln1.weight"
    assert timm_to_mmpretrain("blocks.0.attn.qkv.weight") == "layers.0.attn.qkv.weight"
    assert timm_to_mmpretrain("patch_embed.proj.weight") == "patch_embed.projection.weight"
    assert timm_to_mmpretrain("norm.bias") == "ln1.bias"
    assert timm_to_mmpretrain("last_norm.weight") == "ln1.weight"
    assert timm_to_mmpretrain("fc_norm.weight") == "fc_norm.weight"
    assert timm_to_mmpretrain("layers.2.ln2.weight") == "layers.2.ln2.weight"


@pytest.mark.parametrize("cls_position", ["drop", "add"])
def test_mae_file_initialises_the_backbone_with_the_grid_resized(tmp_path: Path, cls_position: str) -> None:
    torch.manual_seed(0)
    mae = _mae_file()
    # rows of the 14x14 grid carry their row index in channel 0: a transposed resize would show
    mae["pos_embed"][0, 1:, 0] = torch.arange(14.0).repeat_interleave(14)
    path = tmp_path / "mae_pretrain_vit_tiny.pth"
    torch.save({"model": mae}, path)
    net = _tiny(cls_position=cls_position)
    report = net.init_weights(str(path))
    assert report is not None and report.complete and report.unused == ["cls_token"]
    own = net.backbone.state_dict()
    assert torch.equal(own["layers.1.ffn.layers.0.0.weight"], mae["blocks.1.mlp.fc1.weight"])
    assert torch.equal(own["layers.0.attn.qkv.bias"], mae["blocks.0.attn.qkv.bias"])
    assert torch.equal(own["patch_embed.projection.weight"], mae["patch_embed.proj.weight"])
    assert torch.equal(own["ln1.weight"], mae["norm.weight"])
    grid = mae["pos_embed"][:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(16, 12), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)
    if cls_position == "add":
        expected = expected + mae["pos_embed"][:, :1]
    torch.testing.assert_close(own["pos_embed"], expected)
    rows = own["pos_embed"][0, :, 0].reshape(16, 12) - (mae["pos_embed"][0, 0, 0] if cls_position == "add" else 0)
    torch.testing.assert_close(rows, rows[:, :1].expand(16, 12))  # constant along each row
    assert torch.all(rows[1:, 0] > rows[:-1, 0])  # increasing down the rows


def test_mmpretrain_named_backbone_file_loads(tmp_path: Path) -> None:
    """An mmpretrain MAE checkpoint: ``backbone.`` names with a cls position, a decoder under ``neck.``."""
    torch.manual_seed(0)
    source = _tiny()
    state = {f"backbone.{k}": v for k, v in source.backbone.state_dict().items()}
    state["backbone.pos_embed"] = torch.cat([torch.randn(1, 1, 32), state["backbone.pos_embed"]], dim=1)
    state["backbone.cls_token"] = torch.randn(1, 1, 32)
    state["neck.decoder_pos_embed"] = torch.randn(1, 197, 16)
    path = tmp_path / "mae_vit-tiny.pth"
    torch.save({"state_dict": state}, path)
    net = _tiny()
    report = net.init_weights(str(path))
    assert report.complete and report.unused == ["cls_token"]
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[key], value), key


def test_partial_mae_file_refused_unless_partial(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mae = {k: v for k, v in _mae_file().items() if not k.startswith("blocks.1.")}
    path = tmp_path / "mae_half.pth"
    torch.save({"model": mae}, path)
    with pytest.raises(ValueError, match=r"initialises only part of VisionTransformer.*layers\.1\.ln1\.weight"):
        _tiny().init_weights(str(path))
    net = _tiny()
    report = net.init_weights(str(path), partial=True)
    assert "layers.1.attn.qkv.weight" in report.missing and "layers.0.attn.qkv.weight" in report.loaded
    assert torch.equal(net.backbone.layers[0].ffn.layers[1].weight, mae["blocks.0.mlp.fc2.weight"])
    # the uncovered layer keeps its init (mmpretrain's: FFN biases ~ N(0, 1e-6))
    assert net.backbone.layers[1].ffn.layers[1].bias.abs().max().item() < 1e-4


def test_fit_pos_embed_cases() -> None:
    vit = VisionTransformer(**TINY, img_size=(256, 192))
    same = torch.randn(1, 192, 32)
    assert vit.fit_pos_embed(same) is same
    square = torch.randn(1, 196, 32)  # a 14x14 grid without a cls position
    torch.testing.assert_close(vit.fit_pos_embed(square), resize_pos_embed(square, (14, 14), (16, 12)))
    odd = torch.randn(1, 150, 32)  # neither a grid nor a grid + 1: left for the shape check
    assert vit.fit_pos_embed(odd) is odd
    with pytest.raises(ValueError, match="cls_position"):
        vit.fit_pos_embed(same, cls_position="keep")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown ViT arch 'small'"):
        ViTPose(arch="small")
    with pytest.raises(ValueError, match="head must be one of"):
        _tiny(head="fancy")
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        _tiny(num_heads=5)
    with pytest.raises(ValueError, match="needs positive embed_dims"):
        ViTPose(arch=None, embed_dims=32)
