"""Heads on the 1/4-resolution features: multi-scale fusion, prediction layers, deconvolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occlupose.models.blocks import BN_MOMENTUM, BasicBlock, make_blocks

__all__ = ["MultiScaleFeatureFusion", "make_deconv_stage", "make_prediction_layer", "LimbFieldHead"]


class MultiScaleFeatureFusion(nn.Module):
    """Fuses the features of every resolution into the 1/4-resolution map.

    Each lower-resolution branch is first projected to the first branch's width
    at its own resolution (cheap there), then upsampled bilinearly; all branches
    are concatenated and mixed by a 1x1 then a 3x3 convolution (HRNetV2-style
    fusion of the full multi-resolution representation, at a fraction of the cost
    of upsampling every channel). The result is added to the first branch; the
    last batch norm starts with zero scale, so the module starts as the identity
    and a HigherHRNet checkpoint keeps its function until training moves it.

    Args:
        in_channels: channels of each branch, highest resolution first.
    """

    def __init__(self, in_channels: Sequence[int]) -> None:
        super().__init__()
        c = in_channels[0]
        self.projections = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c, 1, bias=False),
                nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            )
            for c_in in in_channels[1:]
        )
        self.mix = nn.Sequential(
            nn.Conv2d(c * len(in_channels), c, 1, bias=False),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
        )
        nn.init.zeros_(self.mix[-1].weight)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        high = features[0]
        size = high.shape[-2:]
        fused = [high] + [
            F.interpolate(project(f), size=size, mode="bilinear", align_corners=False)
            for project, f in zip(self.projections, features[1:], strict=True)
        ]
        return high + self.mix(torch.cat(fused, dim=1))


def make_prediction_layer(in_channels: int, out_channels: int, kernel: int = 1) -> nn.Conv2d:
    """The final convolution that turns features into heatmaps (and tags)."""
    if kernel not in (1, 3):
        raise ValueError(f"final_conv_kernel must be 1 or 3, got {kernel}")
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
    _init_prediction(conv)
    return conv


def _init_prediction(conv: nn.Conv2d) -> None:
    """Small weights and zero bias (HigherHRNet's init): predictions start near 0, close
    to what the targets are almost everywhere, so the first steps are not spent
    unlearning random outputs."""
    nn.init.normal_(conv.weight, std=0.001)
    nn.init.zeros_(conv.bias)


def make_deconv_stage(
    in_channels: int, out_channels: int, kernel: int = 4, num_basic_blocks: int = 4
) -> nn.Sequential:
    """A 2x transposed convolution (+BN+ReLU) followed by BasicBlocks.

    Laid out as HigherHRNet's ``deconv_layers[i]``: index 0 is the upsampling,
    indices 1.. each hold one BasicBlock.
    """
    padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}.get(kernel, (None, None))
    if padding is None:
        raise ValueError(f"deconv_kernel must be 2, 3 or 4, got {kernel}")
    layers: list[nn.Module] = [
        nn.Sequential(
            nn.ConvTranspose2d(
                in_channels,
                out_channels,
                kernel,
                stride=2,
                padding=padding,
                output_padding=output_padding,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
    ]
    layers += [
        make_blocks(BasicBlock, out_channels, out_channels, 1) for _ in range(num_basic_blocks)
    ]
    return nn.Sequential(*layers)


class LimbFieldHead(nn.Module):
    """Predicts part-affinity-style limb fields: an (x, y) vector field per limb.

    Output channels are ``[x_0, y_0, x_1, y_1, ...]`` for limbs ``a -> b`` of the
    keypoint set; along a limb the field is the unit vector from ``a`` to ``b``.
    A separate branch (not extra channels of the heatmap layer) so that the
    heatmap/tag layer keeps HigherHRNet's checkpoint layout.
    """

    def __init__(
        self, in_channels: int, num_limbs: int, hidden_channels: int | None = None
    ) -> None:
        super().__init__()
        hidden = hidden_channels or in_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.predict = nn.Conv2d(hidden, 2 * num_limbs, 1)
        _init_prediction(self.predict)

    def forward(self, x: Tensor) -> Tensor:
        return self.predict(self.conv(x))
