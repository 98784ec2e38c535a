"""HigherHRNet: official state_dict layout and parameter counts (full size on the meta device),
head structure, forward / backward on a tiny variant, official init and backbone-only pretraining."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from src.models import HigherHRNet, HRNetBackbone, PoseHighResolutionNet
from tests.models.reference import build_meta, load_reference, shapes

torch.set_num_threads(1)


# From OFFICIAL_FACTS.md section 3 (official classes, HHR repo).
PARAMS = {"higher_hrnet_w32_512": 28_645_331, "higher_hrnet_w32_640": 28_645_331, "higher_hrnet_w48_640": 63_827_139}
NUM_STATE_DICT_KEYS = 1810
WIDTH = {"higher_hrnet_w32_512": 32, "higher_hrnet_w32_640": 32, "higher_hrnet_w48_640": 48}
INPUT_AND_OUTPUTS = {  # input side -> output shapes (C, H, W)
    "higher_hrnet_w32_512": (512, [[34, 128, 128], [17, 256, 256]]),
    "higher_hrnet_w48_640": (640, [[34, 160, 160], [17, 320, 320]]),
}


def head_shapes(width: int) -> dict[str, list[int]]:
    """The official non-backbone keys and shapes, in state_dict order (after stage4)."""
    c = width
    shapes = {
        "final_layers.0.weight": [34, c, 1, 1],
        "final_layers.0.bias": [34],
        "final_layers.1.weight": [17, c, 1, 1],
        "final_layers.1.bias": [17],
        "deconv_layers.0.0.0.weight": [c + 34, c, 4, 4],
    }
    bn = {"weight": [c], "bias": [c], "running_mean": [c], "running_var": [c], "num_batches_tracked": []}
    shapes.update({f"deconv_layers.0.0.1.{k}": v for k, v in bn.items()})
    for b in range(1, 5):
        for conv, norm in (("conv1", "bn1"), ("conv2", "bn2")):
            shapes[f"deconv_layers.0.{b}.0.{conv}.weight"] = [c, c, 3, 3]
            shapes.update({f"deconv_layers.0.{b}.0.{norm}.{k}": v for k, v in bn.items()})
    return shapes


def tiny(**kwargs) -> HigherHRNet:
    return HigherHRNet(width=8, stage_num_modules=(1, 1, 1), num_blocks=1, stem_channels=16, **kwargs)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", params=sorted(PARAMS))
def full_size(request: pytest.FixtureRequest) -> tuple[str, dict[str, list[int]], int]:
    name = request.param
    model = build_meta(lambda: HigherHRNet(width=WIDTH[name]))
    return name, shapes(model), num_params(model)


# --------------------------------------------------------------------------- official layout


def test_param_count_and_head_keys(full_size: tuple[str, dict[str, list[int]], int]) -> None:
    name, got, params = full_size
    assert params == PARAMS[name]
    assert len(got) == NUM_STATE_DICT_KEYS
    head = head_shapes(WIDTH[name])
    assert list(got)[-len(head) :] == list(head)
    assert {k: got[k] for k in head} == head


def test_state_dict_matches_reference_json(full_size: tuple[str, dict[str, list[int]], int]) -> None:
    name, got, params = full_size
    ref = load_reference(name)
    assert list(got) == list(ref["state_dict"]), "key names / order differ from the official model"
    assert got == ref["state_dict"]
    assert len(got) == ref["num_state_dict_keys"] and params == ref["params"]


def test_backbone_keys_shared_with_pose_hrnet() -> None:
    for width in (32, 48):
        higher = shapes(build_meta(lambda w=width: HigherHRNet(width=w)))
        hrnet = shapes(build_meta(lambda w=width: PoseHighResolutionNet(width=w)))
        backbone = {k: v for k, v in higher.items() if not k.startswith(("final_layers.", "deconv_layers."))}
        assert backbone == {k: v for k, v in hrnet.items() if not k.startswith("final_layer.")}
        assert list(backbone) == [k for k in hrnet if not k.startswith("final_layer.")]
    tiny_backbone = shapes(HRNetBackbone(width=8, stage_num_modules=(1, 1, 1), num_blocks=1, stem_channels=16))
    assert {k: v for k, v in shapes(tiny()).items() if k in tiny_backbone} == tiny_backbone


@pytest.mark.parametrize("name", sorted(INPUT_AND_OUTPUTS))
def test_full_size_output_shapes(name: str) -> None:
    """Full-size heads on the meta device. The backbone's stride-4 output is stubbed (a meta
    forward of the whole backbone takes seconds; its shapes are tested with PoseHighResolutionNet)."""
    side, expected = INPUT_AND_OUTPUTS[name]
    width = WIDTH[name]
    model = build_meta(lambda: HigherHRNet(width=width))
    model.forward_features = lambda x: torch.empty(x.shape[0], width, x.shape[2] // 4, x.shape[3] // 4, device="meta")
    out = model(torch.empty(1, 3, side, side, device="meta"))
    assert [list(o.shape[1:]) for o in out] == expected


def test_head_structure() -> None:
    model = tiny()
    deconv = model.deconv_layers[0][0][0]
    assert isinstance(deconv, nn.ConvTranspose2d) and deconv.bias is None
    assert (deconv.kernel_size, deconv.stride, deconv.padding) == ((4, 4), (2, 2), (1, 1))
    assert deconv.output_padding == (0, 0)
    assert isinstance(model.deconv_layers[0][0][1], nn.BatchNorm2d)
    assert isinstance(model.deconv_layers[0][0][2], nn.ReLU)
    assert len(model.deconv_layers[0]) == 1 + 4
    assert model.output_channels == (34, 17)


def test_variants() -> None:
    """No concatenation, a shared tag map, tags at both outputs, two deconv stages."""
    x = torch.randn(1, 3, 64, 64)
    no_cat = tiny(cat_output=(False,))
    assert no_cat.deconv_layers[0][0][0].in_channels == 8
    single_tag = tiny(tag_per_joint=False, with_ae_loss=(True, True), num_deconv_basic_blocks=1)
    assert [tuple(o.shape) for o in single_tag(x)] == [(1, 18, 16, 16), (1, 18, 32, 32)]
    two = tiny(num_deconvs=2, deconv_channels=(8, 4), cat_output=(True, True), with_ae_loss=(True, False, False))
    assert [tuple(o.shape) for o in two(x)] == [(1, 34, 16, 16), (1, 17, 32, 32), (1, 17, 64, 64)]
    assert two.deconv_layers[1][0][0].in_channels == 8 + 17
    with pytest.raises(ValueError, match="deconv_channels"):
        tiny(deconv_channels=(8, 8))
    with pytest.raises(ValueError, match="deconv_kernel"):
        tiny(deconv_kernel=5)


# --------------------------------------------------------------------------- tiny forward / backward


@pytest.mark.parametrize("kernel", [4, 3, 2])
def test_tiny_forward_backward(kernel: int) -> None:
    torch.manual_seed(0)
    model = tiny(deconv_kernel=kernel)
    model.init_weights()
    out = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in out] == [(2, 34, 16, 16), (2, 17, 32, 32)]
    sum(o.square().mean() for o in out).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has non-finite gradients"


def test_first_output_feeds_the_deconv() -> None:
    """Changing final_layers[0] changes the stride-2 output only through the concatenation."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    for cat, changes in ((True, True), (False, False)):
        model = tiny(cat_output=(cat,)).eval()
        with torch.no_grad():
            before = model(x)[1]
            model.final_layers[0].bias.add_(1.0)
            after = model(x)[1]
        assert (not torch.allclose(before, after)) == changes


def test_state_dict_round_trip_and_channels_last() -> None:
    torch.manual_seed(0)
    source = tiny().eval()
    torch.manual_seed(1)
    target = tiny().eval()
    target.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = source(x)
        for a, b in zip(ref, target(x), strict=True):
            torch.testing.assert_close(a, b)
        last = source.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    for a, b in zip(ref, last, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- init_weights


def test_official_init() -> None:
    torch.manual_seed(0)
    model = tiny()
    model.init_weights()
    deconv = model.deconv_layers[0][0][0]
    for weight in (model.conv1.weight, deconv.weight, model.final_layers[0].weight):
        assert abs(weight.std().item() - 0.001) < 3e-4
    for bn in (model.bn1, model.deconv_layers[0][0][1], model.deconv_layers[0][4][0].bn2):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert torch.all(model.final_layers[0].bias == 0) and torch.all(model.final_layers[1].bias == 0)


def test_pretrained_fills_backbone_only(tmp_path: Path) -> None:
    """An ImageNet-style file (backbone + classification-only modules) fills the backbone; the
    HigherHRNet head keeps its init even when the file has tensors of the same names."""
    torch.manual_seed(0)
    donor = tiny().state_dict()
    imagenet = {k: v for k, v in donor.items() if not k.startswith(("final_layers.", "deconv_layers."))}
    imagenet["incre_modules.0.0.conv1.weight"] = torch.ones(4, 8, 1, 1)  # ImageNet-only: ignored
    imagenet["final_layers.0.weight"] = donor["final_layers.0.weight"]  # not a backbone layer: ignored
    imagenet["deconv_layers.0.0.0.weight"] = donor["deconv_layers.0.0.0.weight"]
    path = tmp_path / "hrnet_w8_imagenet.pth"
    torch.save({"state_dict": imagenet}, path)
    torch.manual_seed(1)
    model = tiny()
    model.init_weights(pretrained=str(path))
    state = model.state_dict()
    for k, v in imagenet.items():
        if k in state and not k.startswith(("final_layers.", "deconv_layers.")):
            torch.testing.assert_close(state[k], v)
    assert not torch.equal(state["final_layers.0.weight"], donor["final_layers.0.weight"])
    assert not torch.equal(state["deconv_layers.0.0.0.weight"], donor["deconv_layers.0.0.0.weight"])
    assert abs(state["deconv_layers.0.0.0.weight"].std().item() - 0.001) < 3e-4


def test_missing_pretrained_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "hrnet_w32-36af842e.pth"
    with pytest.raises(FileNotFoundError, match="hrnet_w32-36af842e.pth"):
        HigherHRNet(width=32, stage_num_modules=(1, 1, 1), num_blocks=1).init_weights(pretrained=str(missing))
