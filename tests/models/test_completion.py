"""Generation-recovery module: the generator refines residually; the critic learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from occlupose.models import HeatmapCompletionGenerator, PoseDiscriminator


def test_generator_is_identity_at_initialisation():
    generator = HeatmapCompletionGenerator(8, 5, hidden_channels=8)
    features = torch.randn(2, 8, 16, 12)
    heatmaps = [torch.rand(2, 5, 16, 12), torch.rand(2, 5, 32, 24)]
    completed = generator(features, heatmaps)
    for c, h in zip(completed, heatmaps, strict=True):
        torch.testing.assert_close(c, h, rtol=0, atol=0)


def test_generator_correction_is_shared_across_resolutions():
    torch.manual_seed(0)
    generator = HeatmapCompletionGenerator(8, 5, hidden_channels=8).eval()
    torch.nn.init.normal_(generator.predict.weight)
    features = torch.randn(1, 8, 16, 12)
    heatmaps = [torch.rand(1, 5, 16, 12), torch.rand(1, 5, 32, 24)]
    completed = generator(features, heatmaps)
    delta_quarter = completed[0] - heatmaps[0]
    delta_half = completed[1] - heatmaps[1]
    assert delta_quarter.abs().max() > 0
    expected = F.interpolate(delta_quarter, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(delta_half, expected, rtol=1e-5, atol=1e-5)


def test_generator_can_learn_to_fill_a_missing_joint():
    """Joint 1 is always 4 px right of joint 0; the generator learns to draw it."""
    torch.manual_seed(0)
    generator = HeatmapCompletionGenerator(1, 2, hidden_channels=16)
    optimiser = torch.optim.Adam(generator.parameters(), lr=3e-3)
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")

    def batch(n=8):
        cx = torch.randint(2, 10, (n,)).float()
        cy = torch.randint(2, 14, (n,)).float()
        g = lambda x0: torch.exp(  # noqa: E731
            -((xs - x0[:, None, None]) ** 2 + (ys - cy[:, None, None]) ** 2) / 2
        )
        complete = torch.stack([g(cx), g(cx + 4)], 1)
        observed = complete.clone()
        observed[:, 1] = 0  # joint 1 occluded
        return observed, complete

    features = torch.zeros(8, 1, 16, 16)
    losses = []
    for _ in range(150):
        observed, complete = batch()
        loss = F.mse_loss(generator(features, [observed])[0], complete)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10


def test_discriminator_is_spectrally_normalised_and_scores_each_image():
    critic = PoseDiscriminator(17, hidden_channels=8)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    assert critic(torch.rand(3, 17, 64, 48)).shape == (3,)


def test_discriminator_feature_conditioning_is_checked():
    critic = PoseDiscriminator(5, feature_channels=4, hidden_channels=8)
    assert critic(torch.rand(2, 5, 32, 32), torch.rand(2, 4, 32, 32)).shape == (2,)
    with pytest.raises(ValueError, match="feature_channels"):
        critic(torch.rand(2, 5, 32, 32))


def test_discriminator_learns_to_tell_poses_from_noise():
    torch.manual_seed(0)
    critic = PoseDiscriminator(3, hidden_channels=8, num_levels=3)
    optimiser = torch.optim.Adam(critic.parameters(), lr=2e-3)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")

    def real(n=8):
        c = torch.randint(6, 26, (n, 3, 2)).float()
        return torch.exp(
            -((xs - c[..., 0, None, None]) ** 2 + (ys - c[..., 1, None, None]) ** 2) / 4
        )

    def fake(n=8):
        return torch.rand(n, 3, 32, 32) * 0.5

    for _ in range(60):
        loss = F.softplus(-critic(real())).mean() + F.softplus(critic(fake())).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        assert (critic(real(32)) > critic(fake(32)).max()).float().mean() > 0.9
