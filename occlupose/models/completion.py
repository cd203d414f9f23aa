"""Generation-recovery module: complete occluded joints' heatmaps, judge poses.

The generator refines the network's first heatmaps into "complete" heatmaps in
which occluded or missing joints are filled in from body context; the
discriminator, used only in training, scores whether a set of joint heatmaps
looks like a real (complete) human pose. Only the generator runs at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from occlupose.models.blocks import BN_MOMENTUM

__all__ = ["HeatmapCompletionGenerator", "PoseDiscriminator"]


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


class HeatmapCompletionGenerator(nn.Module):
    """Residual refinement of heatmaps that recovers occluded joints.

    A small encoder-decoder over the fused 1/4-resolution features and the first
    heatmaps. It goes down to 1/16 of the input and uses dilated convolutions
    there, because an occluded joint has to be inferred from the rest of the body,
    which can be far away. It predicts a heatmap correction ``delta`` at 1/4
    resolution; the completed heatmaps are ``heatmaps + delta`` at 1/4 and
    ``heatmaps_1/2 + upsample(delta)`` at 1/2. The last layer starts at zero, so
    the module starts as the identity.

    Args:
        feature_channels: channels of the 1/4-resolution features.
        num_joints: number of heatmaps.
        hidden_channels: width of the encoder-decoder.
    """

    def __init__(self, feature_channels: int, num_joints: int, hidden_channels: int = 64) -> None:
        super().__init__()
        c = hidden_channels
        self.stem = _conv_bn_relu(feature_channels + num_joints, c)
        self.down1 = _conv_bn_relu(c, c, stride=2)
        self.down2 = _conv_bn_relu(c, c, stride=2)
        self.context = nn.Sequential(
            _conv_bn_relu(c, c, dilation=2), _conv_bn_relu(c, c, dilation=4)
        )
        self.up1 = _conv_bn_relu(c, c)
        self.up2 = _conv_bn_relu(c, c)
        self.predict = nn.Conv2d(c, num_joints, 1)
        nn.init.zeros_(self.predict.weight)
        nn.init.zeros_(self.predict.bias)

    def forward(self, features: Tensor, heatmaps: Sequence[Tensor]) -> list[Tensor]:
        """Complete the heatmaps.

        Args:
            features: (B, C, H/4, W/4) fused features.
            heatmaps: heatmaps per output resolution, the first at 1/4 (B, J, H/4, W/4),
                later ones at integer multiples of it.

        Returns:
            Completed heatmaps with the shapes of ``heatmaps``.
        """
        x0 = self.stem(torch.cat([features, heatmaps[0]], dim=1))
        x1 = self.down1(x0)
        x2 = self.context(self.down2(x1))
        y1 = self.up1(x1 + F.interpolate(x2, size=x1.shape[-2:], mode="nearest"))
        y0 = self.up2(x0 + F.interpolate(y1, size=x0.shape[-2:], mode="nearest"))
        delta = self.predict(y0)
        completed = [heatmaps[0] + delta]
        for h in heatmaps[1:]:
            completed.append(
                h + F.interpolate(delta, size=h.shape[-2:], mode="bilinear", align_corners=False)
            )
        return completed


class PoseDiscriminator(nn.Module):
    """Scores whether joint heatmaps form a plausible human pose (training only).

    A stack of spectrally normalised stride-2 convolutions with LeakyReLU (the
    usual recipe for a stable GAN critic) down to 1/16 of the heatmap size,
    averaged into one logit per image. Optionally conditioned on image features,
    concatenated with the heatmaps.

    Args:
        num_joints: heatmap channels.
        feature_channels: channels of optional conditioning features (0: none).
        hidden_channels: width of the first layer (doubles once per level, capped at 4x).
        num_levels: number of stride-2 levels.
    """

    def __init__(
        self,
        num_joints: int,
        feature_channels: int = 0,
        hidden_channels: int = 64,
        num_levels: int = 4,
    ) -> None:
        super().__init__()
        self.feature_channels = feature_channels
        layers: list[nn.Module] = []
        c_in = num_joints + feature_channels
        for level in range(num_levels):
            c_out = hidden_channels * min(2**level, 4)
            layers += [
                spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Conv2d(c_in, 1, 3, padding=1))

    def forward(self, heatmaps: Tensor, features: Tensor | None = None) -> Tensor:
        """Return one real/generated logit per image, shape (B,)."""
        if (features is None) != (self.feature_channels == 0):
            raise ValueError(
                "PoseDiscriminator was built with feature_channels="
                f"{self.feature_channels}; pass features exactly when it is > 0"
            )
        x = heatmaps if features is None else torch.cat([heatmaps, features], dim=1)
        return self.score(self.body(x)).mean(dim=(1, 2, 3))
