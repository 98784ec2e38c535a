"""Network tests: official state_dict layouts and parameter counts (full size, built on the
meta device so nothing is allocated), plus forward / backward / init checks on tiny variants."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from src.models import DeconvHead, HourglassNet, HRNetBackbone, PoseHighResolutionNet, PoseResNet, ResNetBackbone
from tests.models.reference import build_meta, load_reference, shapes

torch.set_num_threads(1)


FULL_SIZE: dict[str, Callable[[], nn.Module]] = {
    "pose_hrnet_w32_256x192": lambda: PoseHighResolutionNet(num_joints=17, width=32),
    "pose_hrnet_w32_384x288": lambda: PoseHighResolutionNet(num_joints=17, width=32),
    "pose_hrnet_w48_256x192": lambda: PoseHighResolutionNet(num_joints=17, width=48),
    "pose_hrnet_w32_256x256_mpii": lambda: PoseHighResolutionNet(num_joints=16, width=32),
    "pose_resnet_50_256x192": lambda: PoseResNet(depth=50),
    "pose_resnet_50_384x288": lambda: PoseResNet(depth=50),
    "pose_resnet_101_256x192": lambda: PoseResNet(depth=101),
    "pose_resnet_152_384x288": lambda: PoseResNet(depth=152),
    "hourglass_hg2_mpii": lambda: HourglassNet(num_stacks=2, num_blocks=1, num_joints=16),
    "hourglass_hg8_mpii": lambda: HourglassNet(num_stacks=8, num_blocks=1, num_joints=16),
}


def tiny_hrnet(num_joints: int = 17) -> PoseHighResolutionNet:
    return PoseHighResolutionNet(
        num_joints=num_joints, width=8, stage_num_modules=(1, 1, 1), num_blocks=1, stem_channels=16
    )


def tiny_resnet(num_joints: int = 17) -> PoseResNet:
    return PoseResNet(depth=50, num_joints=num_joints, base_width=8, layers=(1, 1, 1, 1), deconv_channels=32)


def tiny_hourglass(num_joints: int = 16) -> HourglassNet:
    return HourglassNet(num_stacks=2, num_blocks=1, num_joints=num_joints, num_feats=16)


# name -> (factory, input (N, 3, H, W), expected output shapes)
TINY: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], list[tuple[int, ...]]]] = {
    "hrnet": (tiny_hrnet, (2, 3, 64, 48), [(2, 17, 16, 12)]),
    "resnet": (tiny_resnet, (2, 3, 96, 64), [(2, 17, 24, 16)]),  # H, W multiples of 32
    "hourglass": (tiny_hourglass, (2, 3, 64, 64), [(2, 16, 16, 16)] * 2),
}


def as_list(out: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return out if isinstance(out, list) else [out]


# --------------------------------------------------------------------------- official layouts


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_state_dict_matches_official(name: str) -> None:
    ref = load_reference(name)
    model = build_meta(FULL_SIZE[name])
    got = shapes(model)
    assert list(got) == list(ref["state_dict"]), "key names / order differ from the official model"
    assert got == ref["state_dict"]
    assert len(got) == ref["num_state_dict_keys"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    fresh = build_meta(FULL_SIZE[name])
    fresh.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize("name", ["pose_hrnet_w32_256x256_mpii", "pose_resnet_50_384x288", "hourglass_hg2_mpii"])
def test_full_size_output_shapes(name: str) -> None:
    ref = load_reference(name)
    model = build_meta(FULL_SIZE[name])
    with torch.device("meta"):
        out = as_list(model(torch.empty(1, *ref["input"])))
    assert [list(o.shape[1:]) for o in out] == ref["output_shapes"]


def test_hourglass_coco_differs_only_in_score_layers() -> None:
    mpii = shapes(build_meta(lambda: HourglassNet(num_stacks=2, num_joints=16)))
    coco = shapes(build_meta(lambda: HourglassNet(num_stacks=2, num_joints=17)))
    assert list(mpii) == list(coco)
    differing = {k for k in mpii if mpii[k] != coco[k]}
    assert differing == {"score.0.weight", "score.0.bias", "score.1.weight", "score.1.bias", "score_.0.weight"}
    assert coco["score.1.weight"] == [17, 256, 1, 1] and coco["score_.0.weight"] == [256, 17, 1, 1]


def test_backbones_share_official_keys() -> None:
    """HRNetBackbone = PoseHighResolutionNet minus final_layer; PoseResNet = backbone + head."""
    hrnet = shapes(build_meta(tiny_hrnet))
    backbone = shapes(
        build_meta(lambda: HRNetBackbone(width=8, stage_num_modules=(1, 1, 1), num_blocks=1, stem_channels=16))
    )
    assert backbone == {k: v for k, v in hrnet.items() if not k.startswith("final_layer.")}
    pose = shapes(build_meta(tiny_resnet))
    resnet = build_meta(lambda: ResNetBackbone(depth=50, base_width=8, layers=(1, 1, 1, 1)))
    head = build_meta(lambda: DeconvHead(in_channels=resnet.out_channels, out_channels=17, deconv_channels=32))
    assert {**shapes(resnet), **shapes(head)} == pose


# --------------------------------------------------------------------------- tiny forward / backward


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_forward_backward(name: str) -> None:
    factory, input_shape, expected = TINY[name]
    torch.manual_seed(0)
    model = factory()
    model.init_weights()
    x = torch.randn(input_shape)
    out = as_list(model(x))
    assert [tuple(o.shape) for o in out] == expected
    sum(o.square().mean() for o in out).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has non-finite gradients"


def test_forward_features_shapes() -> None:
    x = torch.randn(1, 3, 64, 48)
    assert tiny_hrnet().forward_features(x).shape == (1, 8, 16, 12)
    resnet = tiny_resnet()
    assert resnet.out_channels == 8 * 8 * 4
    assert resnet.forward_features(torch.randn(1, 3, 96, 64)).shape == (1, 256, 3, 2)
    assert tiny_hourglass().forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 32, 16, 16)


@pytest.mark.parametrize("name", sorted(TINY))
def test_channels_last_and_bf16_autocast(name: str) -> None:
    factory, input_shape, expected = TINY[name]
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(input_shape)
    with torch.no_grad():
        reference = as_list(model(x))
        last = as_list(model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = as_list(model(x.to(memory_format=torch.channels_last)))
    for ref, cl, bf in zip(reference, last, low, strict=True):
        torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)
        assert tuple(bf.shape) == tuple(ref.shape) and torch.isfinite(bf.float()).all()


@pytest.mark.parametrize("name", sorted(TINY))
def test_state_dict_round_trip_preserves_outputs(name: str) -> None:
    factory, input_shape, _ = TINY[name]
    torch.manual_seed(0)
    source = factory().eval()
    torch.manual_seed(1)
    target = factory().eval()
    target.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(input_shape)
    with torch.no_grad():
        for a, b in zip(as_list(source(x)), as_list(target(x)), strict=True):
            torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- init_weights


def test_hrnet_official_init() -> None:
    model = tiny_hrnet()
    model.init_weights()
    assert abs(model.conv1.weight.std().item() - 0.001) < 3e-4
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.final_layer.bias == 0)


def test_hrnet_pretrained_loads_backbone_prefixes_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    donor = tiny_hrnet().state_dict()
    subset = {k: v for k, v in donor.items() if k.startswith(("conv1.", "layer1.", "final_layer."))}
    subset["incre_modules.0.weight"] = torch.ones(3)  # ImageNet-only module: ignored
    subset["bn1.weight"] = torch.ones(5)  # wrong shape: ignored
    path = tmp_path / "hrnet_imagenet.pth"
    torch.save(subset, path)

    model = tiny_hrnet()
    with caplog.at_level(logging.INFO, logger="src.models.weights"):
        model.init_weights(pretrained=str(path))
    num_expected = sum(k.startswith(("conv1.", "layer1.")) for k in donor)
    assert f"loaded {num_expected} / {len(donor)} tensors" in caplog.text
    loaded = model.state_dict()
    for k in donor:
        if k.startswith(("conv1.", "layer1.")):
            torch.testing.assert_close(loaded[k], donor[k])
    assert not torch.equal(model.final_layer.weight, donor["final_layer.weight"])  # head stays random
    assert torch.all(model.bn1.weight == 1)


def test_resnet_pretrained_from_torchvision_style_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    donor = ResNetBackbone(depth=50, base_width=8, layers=(1, 1, 1, 1)).state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save({**donor, "fc.weight": torch.zeros(1000, 256), "fc.bias": torch.zeros(1000)}, path)
    model = tiny_resnet()
    model.init_weights(pretrained=str(path))
    for k, v in donor.items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert torch.all(model.final_layer.bias == 0)
    assert abs(model.deconv_layers[0].weight.std().item() - 0.001) < 3e-4


def test_hourglass_pretrained_wrapped_checkpoint(tmp_path: Path) -> None:
    """A pytorch-pose style checkpoint ({'state_dict': {'module.' + key}}) of a 16-joint model
    fills a 17-joint model except for the score layers."""
    torch.manual_seed(0)
    donor = tiny_hourglass(num_joints=16).state_dict()
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in donor.items()}}, path)
    model = tiny_hourglass(num_joints=17)
    model.init_weights(pretrained=str(path))
    state = model.state_dict()
    for k, v in donor.items():
        if k.startswith(("score.", "score_.")) and k != "score_.0.bias":
            assert state[k].shape != v.shape
        else:
            torch.testing.assert_close(state[k], v)


@pytest.mark.parametrize(
    ("factory", "expected_name"),
    [
        (tiny_hrnet, "HRNet"),
        (lambda: PoseHighResolutionNet(width=32, stage_num_modules=(1, 1, 1), num_blocks=1), "hrnet_w32_imagenet"),
        (tiny_resnet, "ImageNet resnet50"),
        (tiny_hourglass, "pytorch-pose"),
    ],
)
def test_missing_pretrained_file_is_a_clear_error(
    tmp_path: Path, factory: Callable[[], nn.Module], expected_name: str
) -> None:
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(FileNotFoundError) as info:
        factory().init_weights(pretrained=str(missing))
    assert str(missing) in str(info.value)
    assert expected_name in str(info.value)


@pytest.mark.parametrize("factory", [tiny_hrnet, tiny_resnet, tiny_hourglass])
def test_checkpoint_without_matching_keys_is_an_error(tmp_path: Path, factory: Callable[[], nn.Module]) -> None:
    path = tmp_path / "unrelated.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="none of its 1 tensors"):
        factory().init_weights(pretrained=str(path))


# --------------------------------------------------------------------------- init="kaiming"


def test_kaiming_init_for_training_from_scratch(tmp_path: Path) -> None:
    """Convolutions Kaiming-normal (fan_out), BN 1 / 0, prediction layers N(0, 0.001), with
    zero_init_residual the last BN of each residual block 0; it refuses a pretrained file like
    init='pytorch'."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[2] / "conf"
    overrides = [
        "model=higherhrnet",
        "model.init=kaiming",
        "model.net.width=8",
        "model.net.stage_num_modules=[1,1,1]",
        "model.net.num_blocks=1",
        "model.net.stem_channels=16",
        "model.net.num_deconv_basic_blocks=1",
    ]
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    net = instantiate(cfg.model, _recursive_=False).net
    conv = net.stage4[0].branches[3][0].conv1  # 64 -> 64, 3x3: std sqrt(2 / (64 * 9))
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    for head in net.final_layers:
        assert head.weight.std().item() < 0.002
    for head in net.final_layers:
        assert head.bias.eq(0).all()
    bn = net.stage4[0].branches[3][0].bn2
    assert bn.weight.eq(1).all() and bn.bias.eq(0).all()
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        zero = compose("train", overrides=[*overrides, "model.zero_init_residual=true"])
    net = instantiate(zero.model, _recursive_=False).net
    assert net.stage4[0].branches[3][0].bn2.weight.eq(0).all() and net.layer1[0].bn3.weight.eq(0).all()
    assert net.stage4[0].branches[3][0].bn1.weight.eq(1).all() and net.deconv_layers[0][0][1].weight.eq(1).all()
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        bad = compose("train", overrides=[*overrides, f"model.pretrained={tmp_path / 'w.pth'}"])
    with pytest.raises(InstantiationException, match="from scratch"):
        instantiate(bad.model, _recursive_=False)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: PoseHighResolutionNet(width=8, stage_num_modules=(1, 1, 1), num_blocks=1, stem_channels=16),
        lambda: PoseResNet(depth=50, num_deconv_layers=1, deconv_channels=16),
        lambda: HourglassNet(num_stacks=2, num_blocks=1),
        lambda: DeconvHead(in_channels=32, out_channels=17, num_deconv_layers=1, deconv_channels=16),
    ],
)
def test_kaiming_init_keeps_every_network_heads_near_zero(factory: Callable[[], nn.Module]) -> None:
    """Each network names its prediction layers (`prediction_layers`); `kaiming_init_` finds them."""
    from src.models.weights import kaiming_init_

    torch.manual_seed(0)
    model = factory()
    kaiming_init_(model)
    heads = [model.get_submodule(name) for name in model.prediction_layers]
    for conv in (m for head in heads for m in head.modules() if isinstance(m, nn.Conv2d)):
        assert conv.weight.std().item() < 0.002 and conv.bias.eq(0).all()
    in_heads = {id(m) for head in heads for m in head.modules()}
    others = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and id(m) not in in_heads]
    assert others and all(m.weight.std().item() > 0.005 for m in others)  # Kaiming: sqrt(2 / fan_out) >= 0.0078 here
