"""HigherHRNet losses: official vectors, a per-person loop restated from the official code,
edge cases (0 / 1 persons), gradients and the multi-stage combination."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from src.losses import AELoss, BottomUpLoss, HeatmapLoss

torch.set_num_threads(1)

VECTORS_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "algorithm_vectors.json"

# algorithm_vectors.json["ae_loss"]: the HigherHRNet repo's own example.
AE_PUSH_EXP = 0.28489141236546156
AE_PULL = 0.95125
AE_PUSH_MAX = 0.125
# algorithm_vectors.json["heatmap_loss"]: pred 0, gt 1, mask with the first of 4 rows 0.
HEATMAP_LOSS = 0.75


def repo_example() -> tuple[torch.Tensor, torch.Tensor]:
    """tags arange(32) * 0.1 as (1, K=2, 4, 4); person 0 at flat 3 and 22, person 1 at 10 and 30."""
    tags = (torch.arange(32, dtype=torch.float64) * 0.1).reshape(1, 2, 4, 4)
    joints = torch.zeros(1, 2, 2, 2, dtype=torch.long)  # (N, M, K, 2)
    joints[0, 0, 0] = torch.tensor([3, 1])
    joints[0, 0, 1] = torch.tensor([22, 1])
    joints[0, 1, 0] = torch.tensor([10, 1])
    joints[0, 1, 1] = torch.tensor([30, 1])
    return tags, joints


def loop_ae_loss(tags: torch.Tensor, joints: torch.Tensor, loss_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The official per-image, per-person loop (restated from the facts)."""
    pushes, pulls = [], []
    for pred, image_joints in zip(tags.reshape(tags.shape[0], -1), joints, strict=True):
        means, pull = [], pred.new_zeros(())
        for person in image_joints:
            sampled = [pred[j[0]] for j in person if j[1] > 0]
            if not sampled:
                continue
            values = torch.stack(sampled)
            means.append(values.mean())
            pull = pull + ((values - means[-1]) ** 2).mean()
        n = len(means)
        if n == 0:
            pushes.append(pred.new_zeros(()))
            pulls.append(pred.new_zeros(()))
            continue
        pulls.append(pull / n)
        if n == 1:
            pushes.append(pred.new_zeros(()))
            continue
        stacked = torch.stack(means)
        diff = stacked[None, :] - stacked[:, None]
        if loss_type == "exp":
            push = torch.exp(-(diff**2)).sum() - n
        else:
            push = torch.clamp(1 - diff.abs(), min=0).sum() - n
        pushes.append(push / ((n - 1) * n) * 0.5)
    return torch.stack(pushes), torch.stack(pulls)


def random_batch(gen: torch.Generator, k: int = 3, size: int = 6, people: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """4 images with 0, 1, 2 and `people` persons; ragged labels packed to the front as JointsGenerator does."""
    batch = 4
    tags = torch.randn(batch, k, size, size, generator=gen, dtype=torch.float64)
    joints = torch.zeros(batch, people, k, 2, dtype=torch.long)
    for i, n in enumerate((0, 1, 2, people)):
        for m in range(n):
            count = k if i == 1 else int(torch.randint(1, k + 1, (1,), generator=gen))  # image 1: all joints
            labelled = torch.randperm(k, generator=gen)[:count]
            for slot, j in enumerate(sorted(labelled.tolist())):
                pixel = int(torch.randint(size * size, (1,), generator=gen))
                joints[i, m, slot] = torch.tensor([j * size * size + pixel, 1])
    joints[2, 1, :, 1] = 0  # image 2: a person row with no flagged joint counts as absent
    joints[3, 0, -1] = torch.tensor([0, 0])
    return tags, joints


# --------------------------------------------------------------------------- official vectors


@pytest.mark.parametrize(("loss_type", "push"), [("exp", AE_PUSH_EXP), ("max", AE_PUSH_MAX)])
def test_ae_repo_example(loss_type: str, push: float) -> None:
    tags, joints = repo_example()
    got_push, got_pull = AELoss(loss_type=loss_type)(tags, joints)
    assert got_push.shape == (1,) and got_pull.shape == (1,)
    assert got_push.item() == pytest.approx(push, abs=1e-12)
    assert got_pull.item() == pytest.approx(AE_PULL, abs=1e-12)
    # hand check: means 1.25 and 2.0 -> 0.5 / 2 * 2 exp(-0.75^2)
    assert push == pytest.approx(0.5 * math.exp(-(0.75**2)) if loss_type == "exp" else 0.125)


def test_heatmap_loss_vector() -> None:
    pred = torch.zeros(2, 17, 4, 5)
    gt = torch.ones(2, 17, 4, 5)
    mask = torch.ones(2, 4, 5)
    mask[:, 0] = 0
    loss = HeatmapLoss()(pred, gt, mask)
    assert loss.shape == (2,)
    torch.testing.assert_close(loss, torch.full((2,), HEATMAP_LOSS))


def test_vectors_match_reference_json() -> None:
    if not VECTORS_FILE.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS_FILE}")
    vectors = json.loads(VECTORS_FILE.read_text())
    ae = vectors["ae_loss"]["result_unweighted"]
    assert ae["exp"]["push"] == AE_PUSH_EXP and ae["exp"]["pull"] == AE_PULL
    assert ae["max"]["push"] == AE_PUSH_MAX and ae["max"]["pull"] == AE_PULL
    assert vectors["heatmap_loss"]["pred0_gt1_mask_first_row0"] == HEATMAP_LOSS


# --------------------------------------------------------------------------- against the loop


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_ae_matches_loop_including_gradients(loss_type: str) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        tags, joints = random_batch(gen)
        ours_tags = tags.clone().requires_grad_()
        loop_tags = tags.clone().requires_grad_()
        push, pull = AELoss(loss_type=loss_type)(ours_tags, joints)
        ref_push, ref_pull = loop_ae_loss(loop_tags, joints, loss_type)
        torch.testing.assert_close(push, ref_push)
        torch.testing.assert_close(pull, ref_pull)
        assert push[:2].eq(0).all() and pull[0] == 0 and pull[1] > 0  # 0 persons; 1 person: pull only
        (push.sum() + 2 * pull.sum()).backward()
        (ref_push.sum() + 2 * ref_pull.sum()).backward()
        torch.testing.assert_close(ours_tags.grad, loop_tags.grad)
        assert ours_tags.grad[0].eq(0).all() and ours_tags.grad[3].ne(0).any()


def test_ae_flat_and_low_precision_inputs() -> None:
    tags, joints = repo_example()
    push, pull = AELoss()(tags.reshape(1, -1).float(), joints)
    assert push.dtype == torch.float32
    assert push.item() == pytest.approx(AE_PUSH_EXP, rel=1e-6) and pull.item() == pytest.approx(AE_PULL, rel=1e-6)
    push_bf16, _ = AELoss()(tags.bfloat16(), joints)
    assert push_bf16.dtype == torch.float32
    with pytest.raises(ValueError, match="loss_type"):
        AELoss(loss_type="l2")


def test_heatmap_loss_matches_formula_and_grad() -> None:
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 4, 6, 5, generator=gen, requires_grad=True)
    gt = torch.rand(3, 4, 6, 5, generator=gen)
    mask = (torch.rand(3, 6, 5, generator=gen) > 0.3).float()
    loss = HeatmapLoss()(pred, gt, mask)
    expected = torch.stack([((pred[i] - gt[i]) ** 2 * mask[i]).sum() / (4 * 6 * 5) for i in range(3)])
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()
    assert pred.grad[mask[:, None].expand_as(pred) == 0].eq(0).all()


# --------------------------------------------------------------------------- BottomUpLoss


def test_bottom_up_loss_combines_stages() -> None:
    gen = torch.Generator().manual_seed(2)
    k, n = 3, 4
    tags, joints = random_batch(gen, k=k, size=6)
    out0 = torch.cat([torch.rand(n, k, 6, 6, generator=gen, dtype=torch.float64), tags], dim=1).requires_grad_()
    out1 = torch.rand(n, k, 12, 12, generator=gen, dtype=torch.float64, requires_grad=True)
    heatmaps = [torch.rand(n, k, 6, 6, generator=gen), torch.rand(n, k, 12, 12, generator=gen)]
    masks = [torch.ones(n, 6, 6), (torch.rand(n, 12, 12, generator=gen) > 0.2).float()]
    loss_fn = BottomUpLoss(num_joints=k)
    total, parts = loss_fn([out0, out1], heatmaps, masks, [joints, torch.zeros(n, 5, k, 2, dtype=torch.long)])
    assert set(parts) == {"heatmap_loss_0", "heatmap_loss_1", "push_loss", "pull_loss"}
    push, pull = loop_ae_loss(tags, joints, "exp")
    expected = {
        "heatmap_loss_0": HeatmapLoss()(out0[:, :k], heatmaps[0], masks[0]).mean(),
        "heatmap_loss_1": HeatmapLoss()(out1, heatmaps[1], masks[1]).mean(),
        "push_loss": 0.001 * push.mean(),
        "pull_loss": 0.001 * pull.mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value.detach().to(parts[name].dtype))
    torch.testing.assert_close(total, sum(expected.values()).detach())
    assert total.ndim == 0
    total.backward()
    assert out0.grad[:, k:].ne(0).any() and out0.grad[:, :k].ne(0).any() and out1.grad.ne(0).any()


def test_bottom_up_loss_options() -> None:
    k, n = 2, 2
    outs = [torch.zeros(n, 2 * k, 4, 4), torch.zeros(n, k, 8, 8)]
    heatmaps = [torch.ones(n, k, 4, 4), torch.ones(n, k, 8, 8)]
    masks = [torch.ones(n, 4, 4), torch.ones(n, 8, 8)]
    joints = [torch.zeros(n, 3, k, 2, dtype=torch.long)] * 2
    total, parts = BottomUpLoss(num_joints=k, with_ae_loss=(False, False), heatmaps_loss_factor=(1.0, 0.5))(
        outs, heatmaps, masks, joints
    )
    assert set(parts) == {"heatmap_loss_0", "heatmap_loss_1"}
    assert total.item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="with_ae_loss"):
        BottomUpLoss(num_joints=k, with_ae_loss=(True,))
