"""Losses against values computed by hand and against a literal loop implementation."""

import math

import pytest
import torch

from occlupose.engine.losses import (
    associative_embedding_loss,
    discriminator_loss,
    generator_adversarial_loss,
    heatmap_loss,
    limb_field_loss,
)


def test_heatmap_loss_masks_pixels_and_weights_joints():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 2.0]]]])  # (1, 2, 2, 2)
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])  # the pixel with 4 and 2 is ignored
    # joint 0: (1 + 4 + 9 + 0) / 4 = 3.5; joint 1: 0; mean over joints 1.75
    assert heatmap_loss(pred, target, mask).item() == pytest.approx(1.75)
    weights = torch.tensor([[2.0, 1.0]])
    assert heatmap_loss(pred, target, mask, weights).item() == pytest.approx(3.5)
    assert heatmap_loss(pred, target, mask, torch.tensor([2.0, 1.0])).item() == pytest.approx(3.5)


def test_heatmap_loss_foreground_weight_by_hand():
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])  # (1, 1, 2, 2)
    pred = torch.full_like(target, 0.5)
    mask = torch.ones(1, 2, 2)
    # squared errors 0.25, 0, 0.25, 0.25; weights 1 + 9 * target = 10, 5.5, 1, 1
    assert heatmap_loss(pred, target, mask, foreground_weight=10.0).item() == pytest.approx(
        (2.5 + 0.0 + 0.25 + 0.25) / 4
    )
    assert heatmap_loss(pred, target, mask, foreground_weight=1.0).item() == pytest.approx(0.75 / 4)


def test_heatmap_loss_averages_images():
    pred = torch.stack([torch.ones(1, 2, 2), torch.zeros(1, 2, 2)])  # (2, 1, 2, 2)
    loss = heatmap_loss(pred, torch.zeros_like(pred), torch.ones(2, 2, 2))
    assert loss.item() == pytest.approx(0.5)


def test_limb_field_loss():
    pred = torch.zeros(1, 2, 1, 2)
    pred[0, 0, 0, 0] = 3.0  # masked out
    pred[0, 1, 0, 1] = 2.0  # counts: 4 over 4 elements
    mask = torch.tensor([[[0.0, 1.0]]])
    assert limb_field_loss(pred, torch.zeros_like(pred), mask).item() == pytest.approx(1.0)


def test_limb_field_loss_foreground_weight_by_hand():
    # One limb on a 1 x 2 map: a unit vector (0.6, 0.8) at x=0, nothing at x=1.
    target = torch.tensor([[[[0.6, 0.0]], [[0.8, 0.0]]]])  # (1, 2, 1, 2)
    pred = torch.zeros_like(target)
    pred[0, 0, 0, 1] = 1.0
    mask = torch.ones(1, 1, 2)
    # errors 0.36 and 0.64 at x=0 (weight 1 + 4 * 1 = 5), 1 at x=1 (weight 1); 4 elements
    loss = limb_field_loss(pred, target, mask, foreground_weight=5.0)
    assert loss.item() == pytest.approx((5 * (0.36 + 0.64) + 1.0) / 4)
    assert limb_field_loss(pred, target, mask).item() == pytest.approx(2.0 / 4)


def _joints(rows):
    """(B, P, J, 2) int64 from nested lists of (flat index, valid)."""
    return torch.tensor(rows, dtype=torch.int64)


def test_associative_embedding_by_hand():
    # J = 2 tag maps of 1 x 3 pixels.
    tags = torch.tensor([[[[1.0, 0.0, 5.0]], [[0.0, 3.0, 0.0]]]])  # (1, 2, 1, 3)
    joints = _joints(
        [
            [
                [[0, 1], [1, 1]],  # person A: joint 0 at x=0 (tag 1), joint 1 at x=1 (tag 3)
                [[2, 1], [0, 0]],  # person B: joint 0 at x=2 (tag 5), joint 1 missing
                [[0, 0], [0, 0]],  # padding row
            ]
        ]
    )
    push, pull = associative_embedding_loss(tags, joints)
    # A: mean 2, pull ((1-2)^2 + (3-2)^2) / 2 = 1; B: mean 5, pull 0 -> (1 + 0) / 2
    assert pull.tolist() == pytest.approx([0.5])
    # two ordered pairs with d = 3: 2 exp(-9) / (2 * 1) * 0.5
    assert push.tolist() == pytest.approx([0.5 * math.exp(-9.0)])


def test_associative_embedding_shared_tag_map_and_empty_images():
    tags = torch.tensor([[[[1.0, 3.0]]], [[[7.0, 7.0]]], [[[0.0, 0.0]]]])  # (3, 1, 1, 2)
    joints = _joints(
        [
            [[[0, 1], [1, 1]], [[0, 0], [0, 0]]],  # one person, tags 1 and 3 of the shared map
            [[[0, 1], [1, 1]], [[0, 0], [0, 0]]],  # one person, equal tags
            [[[0, 0], [0, 0]], [[0, 0], [0, 0]]],  # nobody
        ]
    )
    push, pull = associative_embedding_loss(tags, joints)
    assert pull.tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert push.tolist() == [0.0, 0.0, 0.0]  # fewer than two people: no push


def _reference_ae(tags: torch.Tensor, joints: torch.Tensor) -> tuple[list[float], list[float]]:
    """HigherHRNet's per-image loop (exp push), written out literally."""
    pushes, pulls = [], []
    b, t = tags.shape[:2]
    for i in range(b):
        flat = tags[i].reshape(-1)
        hw = tags.shape[2] * tags.shape[3]
        means, pull = [], 0.0
        for person in joints[i]:
            values = [
                flat[(j * hw if t > 1 else 0) + int(idx)]
                for j, (idx, valid) in enumerate(person)
                if valid > 0
            ]
            if not values:
                continue
            values = torch.stack(values)
            means.append(values.mean())
            pull += ((values - means[-1]) ** 2).mean().item()
        n = len(means)
        if n == 0:
            pushes.append(0.0)
            pulls.append(0.0)
            continue
        pulls.append(pull / n)
        if n < 2:
            pushes.append(0.0)
            continue
        m = torch.stack(means)
        diff = m[None, :] - m[:, None]
        push = torch.exp(-(diff**2)).sum().item() - n
        pushes.append(push / ((n - 1) * n) * 0.5)
    return pushes, pulls


def test_associative_embedding_matches_reference_loop():
    g = torch.Generator().manual_seed(0)
    b, j, h, w, p = 3, 4, 5, 6, 5
    tags = torch.randn(b, j, h, w, generator=g)
    index = torch.randint(0, h * w, (b, p, j), generator=g)
    valid = (torch.rand(b, p, j, generator=g) > 0.4).long()
    valid[2] = 0  # an image without people
    valid[1, 1:] = 0  # an image with one person
    joints = torch.stack([index, valid], dim=-1)
    push, pull = associative_embedding_loss(tags, joints)
    ref_push, ref_pull = _reference_ae(tags, joints)
    assert push.tolist() == pytest.approx(ref_push, abs=1e-6)
    assert pull.tolist() == pytest.approx(ref_pull, abs=1e-6)


def test_associative_embedding_is_differentiable():
    tags = torch.zeros(1, 2, 1, 3, requires_grad=True)
    joints = _joints([[[[0, 1], [1, 1]], [[2, 1], [0, 0]]]])
    push, pull = associative_embedding_loss(tags, joints)
    (push + pull).sum().backward()
    # identical tags: the push gradient is zero by symmetry, pull has no error
    assert tags.grad is not None and torch.all(tags.grad == 0)


def test_gan_losses():
    zero = torch.zeros(4)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_adversarial_loss(zero).item() == pytest.approx(math.log(2))
    # A confident, correct discriminator has almost no loss; the generator then has a lot.
    real, fake = torch.full((2,), 20.0), torch.full((2,), -20.0)
    assert discriminator_loss(real, fake).item() < 1e-8
    assert generator_adversarial_loss(fake).item() == pytest.approx(20.0, abs=1e-6)
    # softplus(-x) with x = log 3: log(1 + 1/3)
    x = torch.tensor([math.log(3.0)])
    assert generator_adversarial_loss(x).item() == pytest.approx(math.log(4 / 3))
