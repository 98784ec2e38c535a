"""JointsMSELoss: official formula, target weights, OHKM and multi-output summing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.losses import JointsMSELoss


def official_loop(output, target, target_weight, use_target_weight=True):
    """(1/K) sum_k 0.5 * MSE(w_k P_k, w_k G_k), the official per-joint loop."""
    n, k = output.shape[:2]
    pred = output.reshape(n, k, -1)
    gt = target.reshape(n, k, -1)
    mse = nn.MSELoss()
    loss = 0.0
    for j in range(k):
        w = target_weight[:, j, None] if use_target_weight else torch.ones(n, 1)
        loss = loss + 0.5 * mse(pred[:, j] * w, gt[:, j] * w)
    return loss / k


def test_hand_computed_value():
    output = torch.ones(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 1.0  # joint 0: three pixels off by 1 -> 0.5 * 3/4
    weight = torch.tensor([[1.0, 1.0]])  # joint 1: four pixels off by 1 -> 0.5 * 1
    loss = JointsMSELoss()(output, target, weight)
    assert loss.item() == pytest.approx((0.375 + 0.5) / 2)


def test_matches_official_loop():
    gen = torch.Generator().manual_seed(0)
    output = torch.rand(3, 5, 8, 6, generator=gen)
    target = torch.rand(3, 5, 8, 6, generator=gen)
    weight = (torch.rand(3, 5, generator=gen) > 0.3).float()
    for use_w in (True, False):
        ours = JointsMSELoss(use_target_weight=use_w)(output, target, weight)
        torch.testing.assert_close(ours, official_loop(output, target, weight, use_w))


def test_zero_target_weight_ignores_joint():
    gen = torch.Generator().manual_seed(1)
    output = torch.rand(2, 3, 4, 4, generator=gen, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, generator=gen)
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    loss_fn = JointsMSELoss()
    loss = loss_fn(output, target, weight)
    loss.backward()
    assert output.grad[0, 1].abs().sum() == 0 and output.grad[1, 2].abs().sum() == 0
    assert output.grad[0, 0].abs().sum() > 0
    perturbed = output.detach().clone()
    perturbed[0, 1] += 10.0
    torch.testing.assert_close(loss_fn(perturbed, target, weight), loss.detach())
    # (N, K, 1) weights, as the official dataset returns them, give the same value.
    torch.testing.assert_close(loss_fn(output.detach(), target, weight[..., None]), loss.detach())


def test_without_target_weight_counts_every_joint():
    output, target = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    weight = torch.zeros(1, 2)
    assert JointsMSELoss(use_target_weight=True)(output, target, weight).item() == 0.0
    assert JointsMSELoss(use_target_weight=False)(output, target, weight).item() == pytest.approx(0.5)


def test_ohkm_averages_the_hardest_joints_per_sample():
    # Per-joint error e -> loss 0.5 e^2 (constant maps). Sample 0: joints 1, 3 hardest; sample 1: 0, 2.
    errors = torch.tensor([[0.1, 2.0, 0.3, 1.0], [3.0, 0.2, 1.5, 0.1]])
    output = errors[:, :, None, None].expand(2, 4, 3, 3).clone()
    target = torch.zeros(2, 4, 3, 3)
    weight = torch.ones(2, 4)
    loss = JointsMSELoss(ohkm=True, ohkm_topk=2)(output, target, weight)
    expected = ((0.5 * 4.0 + 0.5 * 1.0) / 2 + (0.5 * 9.0 + 0.5 * 2.25) / 2) / 2
    assert loss.item() == pytest.approx(expected)
    # topk >= K is the plain mean.
    full = JointsMSELoss(ohkm=True, ohkm_topk=99)(output, target, weight)
    torch.testing.assert_close(full, JointsMSELoss()(output, target, weight))


def test_list_outputs_are_summed():
    gen = torch.Generator().manual_seed(2)
    outputs = [torch.rand(2, 3, 4, 4, generator=gen) for _ in range(3)]
    target = torch.rand(2, 3, 4, 4, generator=gen)
    weight = torch.ones(2, 3)
    loss_fn = JointsMSELoss()
    expected = sum(loss_fn(o, target, weight) for o in outputs)
    torch.testing.assert_close(loss_fn(outputs, target, weight), expected)
    torch.testing.assert_close(loss_fn(tuple(outputs), target, weight), expected)


def test_rejects_bad_topk():
    with pytest.raises(ValueError):
        JointsMSELoss(ohkm=True, ohkm_topk=0)


def test_joints_mse_of_bf16_heatmaps_is_computed_in_fp32():
    """Under bf16 autocast the network's heatmaps are bf16; the loss must not round the targets and
    the squared errors to bf16 as well (that cost the top-down quickstart about 0.05 AP)."""
    from src.losses import JointsMSELoss

    g = torch.Generator().manual_seed(0)
    output = torch.rand(2, 3, 16, 12, generator=g).to(torch.bfloat16)
    target = torch.rand(2, 3, 16, 12, generator=g)
    weight = torch.ones(2, 3, 1)
    loss = JointsMSELoss()(output, target, weight)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, JointsMSELoss()(output.float(), target, weight))
