"""Fusion attention: channel and spatial attention fused into one gate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FusionAttention"]


class FusionAttention(nn.Module):
    """Re-weights a feature map by fused channel and spatial attention.

    Channel attention passes the average- and max-pooled channel descriptors
    through one shared MLP (as CBAM, with SiLU as its hidden activation); spatial
    attention convolves the channel-wise mean and max maps. The two are fused by
    adding their logits before one sigmoid, so every position of every channel gets its own gate
    ``a = sigmoid(channel_logit[c] + spatial_logit[y, x])`` (as BAM fuses them).

    The gate is applied residually with a learnable per-channel strength
    ``gamma`` that starts at zero::

        out = x * (1 + gamma * (2 * a - 1))

    so the module is the identity at initialisation (a model initialised from a
    HigherHRNet checkpoint computes exactly the HigherHRNet function), and with
    ``gamma = 1`` it can scale a feature anywhere between fully suppressed
    (background clutter) and doubled (useful channels).

    Args:
        channels: number of input (and output) channels.
        reduction: hidden width of the channel MLP is ``channels // reduction``
            (at least 4).
        spatial_kernel: kernel size of the spatial-attention convolution.
    """

    def __init__(self, channels: int, reduction: int = 8, spatial_kernel: int = 7) -> None:
        super().__init__()
        if spatial_kernel % 2 != 1:
            raise ValueError(f"spatial_kernel must be odd, got {spatial_kernel}")
        hidden = max(channels // reduction, 4)
        self.channel_mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            # Smooth: the MLP is narrow, and a ReLU there can die for every unit.
            nn.SiLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def attention_map(self, x: Tensor) -> Tensor:
        """The fused gate ``a`` in (0, 1), shape (B, C, H, W)."""
        avg = x.mean(dim=(2, 3), keepdim=True)
        peak = x.amax(dim=(2, 3), keepdim=True)
        channel_logit = self.channel_mlp(avg) + self.channel_mlp(peak)  # (B, C, 1, 1)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        spatial_logit = self.spatial_conv(pooled)  # (B, 1, H, W)
        return torch.sigmoid(channel_logit + spatial_logit)

    def forward(self, x: Tensor) -> Tensor:
        # x * (1 + gamma * (2a - 1)) written as x * ((1 - gamma) + 2 gamma a): two
        # full-size operations instead of five (this runs at the highest resolution).
        gate = torch.addcmul(1.0 - self.gamma, self.attention_map(x), 2.0 * self.gamma)
        return x * gate
