"""IntegralL1Loss (3DMPPE PoseNet) on a hand-computed case."""

from __future__ import annotations

import pytest
import torch

from src.losses import IntegralL1Loss


def test_hand_computed_loss_and_gradients() -> None:
    target = torch.zeros(2, 2, 3)
    pred = torch.tensor(
        [
            [[1.0, 2.0, 3.0], [3.0, 3.0, 3.0]],  # w 1 -> (1 + 2 + 3) / 3 = 2; w 0 -> 0
            [[1.0, -1.0, 6.0], [0.5, -1.5, 9.0]],  # 2D sample: (1 + 1) / 3; w 0.5: (0.25 + 0.75) / 3
        ],
        requires_grad=True,
    )
    weight = torch.tensor([[1.0, 0.0], [1.0, 0.5]])
    have_depth = torch.tensor([1.0, 0.0])
    loss = IntegralL1Loss()(pred, target, weight, have_depth)
    assert loss.ndim == 0
    torch.testing.assert_close(loss, torch.tensor((2 + 0 + 2 / 3 + 1 / 3) / 4))
    loss.backward()
    expected_grad = torch.tensor(
        [
            [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
            [[1.0, -1.0, 0.0], [0.5, -0.5, 0.0]],
        ]
    ) / (3 * 4)
    torch.testing.assert_close(pred.grad, expected_grad)


def test_half_precision_predictions_give_a_float32_loss() -> None:
    pred = torch.full((1, 3, 3), 2.0, dtype=torch.bfloat16)
    loss = IntegralL1Loss()(pred, torch.zeros(1, 3, 3), torch.ones(1, 3, 1), torch.ones(1))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, torch.tensor(2.0))


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, K, 3\)"):
        IntegralL1Loss()(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3), torch.ones(1, 2), torch.ones(1))
