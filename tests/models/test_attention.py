"""FusionAttention: identity at initialisation, and a gate that really gates."""

from __future__ import annotations

import torch

from occlupose.models import FusionAttention


def test_identity_at_initialisation():
    torch.manual_seed(0)
    attention = FusionAttention(16)
    x = torch.randn(2, 16, 9, 7)
    torch.testing.assert_close(attention(x), x, rtol=0, atol=0)


def test_gate_is_fused_channel_and_spatial_attention():
    torch.manual_seed(0)
    attention = FusionAttention(8).eval()
    x = torch.randn(1, 8, 6, 5)
    gate = attention.attention_map(x)
    assert gate.shape == x.shape
    assert torch.all((gate > 0) & (gate < 1))
    # The gate factorises as sigmoid(channel logit + spatial logit): its logit is
    # a sum of a per-channel and a per-position term, so all second differences vanish.
    logit = torch.logit(gate[0])
    second = logit[1:, 1:] - logit[1:, :1] - logit[:1, 1:] + logit[:1, :1]
    torch.testing.assert_close(second, torch.zeros_like(second), atol=1e-5, rtol=0)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    torch.testing.assert_close(attention(x), x * 2 * gate)


def test_can_suppress_a_background_channel():
    attention = FusionAttention(4)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
        for p in attention.parameters():
            if p is not attention.gamma:
                p.zero_()
        attention.channel_mlp[2].bias[0] = -30.0  # channel 0: clutter
        attention.channel_mlp[2].bias[1] = 30.0  # channel 1: useful
    x = torch.rand(1, 4, 5, 5) + 0.5
    y = attention(x)
    assert y[0, 0].abs().max() < 1e-6
    torch.testing.assert_close(y[0, 1], 2 * x[0, 1])
    torch.testing.assert_close(y[0, 2], x[0, 2])  # logit 0: gate 1/2, factor 1


def test_gradient_reaches_gamma_at_initialisation():
    attention = FusionAttention(8)
    x = torch.randn(2, 8, 5, 5)
    attention(x).square().sum().backward()
    assert attention.gamma.grad is not None and attention.gamma.grad.abs().sum() > 0
