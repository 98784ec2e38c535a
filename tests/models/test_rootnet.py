"""RootNet: the official layout and parameter count, the official outputs on a fixed input with
deterministically filled weights, and the k-value of the official examples
(``../shared/reference/3dmppe``; skipped when absent)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from src.camera import k_value
from src.geometry import process_bbox
from src.models.rootnet import RootNet
from tests.models.reference import build_meta, load_reference, shapes

torch.set_num_threads(2)


def official_layout() -> dict:
    ref = load_reference("3dmppe/rootnet_resnet50")
    prefix = ref["state_dict_prefix"]
    return ref, {k[len(prefix) :]: v for k, v in ref["state_dict"].items()}


def test_layout_and_parameter_count_match_the_official_network() -> None:
    ref, layout = official_layout()
    net = build_meta(RootNet)
    assert shapes(net) == layout
    assert list(shapes(net)) == list(layout)
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"]
    assert sum(p.numel() for p in net.backbone.parameters()) == ref["num_params_backbone"]
    assert sum(p.numel() for p in net.root.parameters()) == ref["num_params_rootnet_head"]


def fill_as_the_reference(net: RootNet) -> None:
    """The reference's deterministic weights: each tensor, in sorted key order, from one generator."""
    state = net.state_dict()
    g = torch.Generator().manual_seed(0)
    for name in sorted(state):
        shape = state[name].shape
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_mean"):
            state[name] = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("running_var"):
            state[name] = 1 + 0.1 * torch.rand(shape, generator=g)
        elif len(shape) == 4:
            state[name] = torch.randn(shape, generator=g) * math.sqrt(1 / (shape[1] * shape[2] * shape[3]))
        elif name.endswith("weight"):
            state[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[name] = 0.1 * torch.randn(shape, generator=g)
    state["root.xy_layer.weight"] = state["root.xy_layer.weight"] * 30
    net.load_state_dict(state)


def test_outputs_on_the_fixed_input_match_the_official_network() -> None:
    vectors = load_reference("3dmppe/rootnet_vectors")["network_forward"]
    torch.manual_seed(0)
    net = RootNet().eval()
    fill_as_the_reference(net)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 256, 256)
    np.testing.assert_allclose(x[0, 0, 0, :5].numpy(), vectors["input_check_x[0,0,0,:5]"], atol=1e-5)
    with torch.no_grad():
        out = net(torch.cat([x, x]), torch.tensor(vectors["k_value_input"]))
    np.testing.assert_allclose(out.numpy(), vectors["outputs_float32_rounded5"], rtol=1e-5, atol=1e-3)
    # depth is gamma k: the two rows share gamma
    assert out[1, 2] / out[0, 2] == pytest.approx(vectors["k_value_input"][1] / vectors["k_value_input"][0], rel=1e-6)


def test_official_init_predicts_the_grid_centre() -> None:
    vectors = load_reference("3dmppe/rootnet_vectors")["network_forward"]["official_training_init_output"]
    torch.manual_seed(0)
    net = RootNet().eval()
    net.init_weights()
    torch.manual_seed(0)
    with torch.no_grad():
        out = net(torch.randn(1, 3, 256, 256), torch.tensor([3669.46728515625]))
    np.testing.assert_allclose(out[0, :2].numpy(), vectors["coord"][:2], atol=1e-4)
    assert abs(float(out[0, 2])) < 1e-3


def test_k_values_of_the_official_examples() -> None:
    for case in load_reference("3dmppe/rootnet_vectors")["k_value"]["examples"]:
        width, height = case["img_wh"]
        boxes, keep = process_bbox(np.array([case["input_bbox_xywh"]]), width, height, 1.0)
        assert keep[0]
        np.testing.assert_allclose(boxes[0], case["bbox_after_process_bbox"])
        k = k_value(boxes[0], case["f"])
        assert k.dtype == np.float32 and float(k) == case["k_value_float32"], case["case"]


def test_tiny_rootnet_trains() -> None:
    net = RootNet(base_width=8, layers=(1, 1, 1, 1), deconv_channels=16)
    net.init_weights()
    out = net(torch.randn(2, 3, 64, 64), torch.tensor([3000.0, 4000.0]))
    assert out.shape == (2, 3)
    out.abs().sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("case", ["example_case_A", "example_case_B"])
def test_the_posenet_coordinate_loss_is_rootnets_with_one_joint(case: str) -> None:
    from src.losses import IntegralL1Loss

    ref = load_reference("3dmppe/rootnet_vectors")
    example = ref["loss"][case]
    pred = torch.tensor(ref["network_forward"]["outputs_float32_rounded5"])[:, None]  # (N, 1, 3)
    loss = IntegralL1Loss()(
        pred,
        torch.tensor(example["target_coord"])[:, None],
        torch.tensor(example["vis"]),
        torch.tensor(example["have_depth"]).reshape(-1),
    )
    # official: per-sample (|dx| v + |dy| v + |dz| v h) / 3, then the mean over the batch
    assert float(loss) == pytest.approx(float(np.mean(example["loss_per_sample"])), rel=1e-5)
