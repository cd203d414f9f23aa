"""HRNet: the high-resolution backbone, laid out exactly like the published checkpoints.

Module and parameter names (``conv1``, ``layer1``, ``transition1``, ``stage2.0.branches``,
``stage2.0.fuse_layers`` ...) follow the official HRNet / HigherHRNet code so that
official state dicts load without renaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from occlupose.models.attention import FusionAttention
from occlupose.models.blocks import BN_MOMENTUM, BasicBlock, Bottleneck, make_blocks

__all__ = ["HighResolutionModule", "HighResolutionNet", "AttentionPlacement"]

AttentionPlacement = Literal["none", "high", "all"]
"""Where :class:`FusionAttention` follows a module's fusion: nowhere, on the
highest-resolution branch only, or on every branch."""

#: Total downsampling of the lowest-resolution branch; inputs must be a multiple.
INPUT_STRIDE = 32


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    ]


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks followed by multi-resolution fusion.

    Branch ``i`` runs at 1/2**i of the first branch's resolution. After the blocks,
    every output branch ``i`` receives the sum of all branches brought to its
    resolution: higher-to-lower by chains of stride-2 3x3 convolutions,
    lower-to-higher by a 1x1 convolution and nearest-neighbour upsampling.

    Args:
        in_channels: channels entering each branch.
        channels: channels of each branch's blocks.
        num_blocks: number of blocks per branch.
        multi_scale_output: output every branch (True) or only the first.
        attention: where to apply :class:`FusionAttention` after the fusion.
        block: residual block type of the branches.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: Sequence[int],
        num_blocks: Sequence[int],
        multi_scale_output: bool = True,
        attention: AttentionPlacement = "none",
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock,
    ) -> None:
        super().__init__()
        if not (len(in_channels) == len(channels) == len(num_blocks)):
            raise ValueError(
                "in_channels, channels and num_blocks need one entry per branch, got "
                f"{len(in_channels)}, {len(channels)} and {len(num_blocks)}"
            )
        self.num_branches = len(channels)
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            make_blocks(block, c_in, c, n)
            for c_in, c, n in zip(in_channels, channels, num_blocks, strict=True)
        )
        self.out_channels = [c * block.expansion for c in channels]
        num_outputs = self.num_branches if multi_scale_output else 1
        self.fuse_layers = (
            nn.ModuleList(
                nn.ModuleList(self._make_fuse_layer(j, i) for j in range(self.num_branches))
                for i in range(num_outputs)
            )
            if self.num_branches > 1
            else None
        )
        self.relu = nn.ReLU(inplace=False)
        if attention == "none":
            self.attention = None
        else:
            attended = range(num_outputs) if attention == "all" else range(1)
            self.attention = nn.ModuleList(FusionAttention(self.out_channels[i]) for i in attended)

    def _make_fuse_layer(self, source: int, target: int) -> nn.Module | None:
        c_src, c_dst = self.out_channels[source], self.out_channels[target]
        if source == target:
            return None
        if source > target:  # lower to higher resolution
            return nn.Sequential(
                *_conv_bn(c_src, c_dst, 1),
                nn.Upsample(scale_factor=2 ** (source - target), mode="nearest"),
            )
        steps = []  # higher to lower: (target - source) stride-2 convolutions
        for k in range(target - source):
            last = k == target - source - 1
            layers = _conv_bn(c_src, c_dst if last else c_src, 3, stride=2)
            if not last:
                layers.append(nn.ReLU(inplace=False))
            steps.append(nn.Sequential(*layers))
        return nn.Sequential(*steps)

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        x = [branch(xi) for branch, xi in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            fused = x
        else:
            fused = []
            for i, layers in enumerate(self.fuse_layers):
                y = x[0] if i == 0 else layers[0](x[0])
                for j in range(1, self.num_branches):
                    y = y + (x[j] if i == j else layers[j](x[j]))
                fused.append(self.relu(y))
        if self.attention is not None:
            attended = [attend(f) for attend, f in zip(self.attention, fused, strict=False)]
            fused = attended + fused[len(attended) :]
        return fused


class HighResolutionNet(nn.Module):
    """The HRNet backbone: stem, bottleneck stage, and three multi-branch stages.

    Args:
        stem_inplanes: channels of the two stride-2 stem convolutions; the first
            stage is four Bottlenecks of this width (output 4x).
        stage_channels: branch widths of stages 2, 3 and 4, e.g.
            ``[[32, 64], [32, 64, 128], [32, 64, 128, 256]]`` for W32. Each stage
            has one more branch than the previous one.
        stage_blocks: BasicBlocks per branch for each stage.
        stage_modules: number of :class:`HighResolutionModule` per stage.
        attention: :class:`FusionAttention` placement after each module's fusion.
        multi_scale_output: whether the last module outputs every branch (needed
            for multi-scale feature fusion) or only the highest resolution (as
            the published HigherHRNet, whose checkpoints have no other fuse layers).
        num_stem_blocks: Bottlenecks in the first stage.
    """

    def __init__(
        self,
        stem_inplanes: int = 64,
        stage_channels: Sequence[Sequence[int]] = ((32, 64), (32, 64, 128), (32, 64, 128, 256)),
        stage_blocks: Sequence[Sequence[int]] = ((4, 4), (4, 4, 4), (4, 4, 4, 4)),
        stage_modules: Sequence[int] = (1, 4, 3),
        attention: AttentionPlacement = "none",
        multi_scale_output: bool = False,
        num_stem_blocks: int = 4,
    ) -> None:
        super().__init__()
        if not (len(stage_channels) == len(stage_blocks) == len(stage_modules) == 3):
            raise ValueError("stage_channels, stage_blocks and stage_modules describe stages 2-4")
        for s, (channels, blocks) in enumerate(zip(stage_channels, stage_blocks, strict=True)):
            if len(channels) != s + 2 or len(blocks) != s + 2:
                raise ValueError(
                    f"stage {s + 2} needs {s + 2} branches, got channels {list(channels)} "
                    f"and blocks {list(blocks)}"
                )
        if attention not in ("none", "high", "all"):
            raise ValueError(f"attention must be 'none', 'high' or 'all', got {attention!r}")

        self.conv1 = nn.Conv2d(3, stem_inplanes, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_inplanes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem_inplanes, stem_inplanes, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_inplanes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, stem_inplanes, stem_inplanes, num_stem_blocks)

        previous = [stem_inplanes * Bottleneck.expansion]
        for s in range(3):
            channels = list(stage_channels[s])
            setattr(self, f"transition{s + 1}", self._make_transition(previous, channels))
            modules = []
            in_channels = channels
            for m in range(stage_modules[s]):
                last_of_network = s == 2 and m == stage_modules[s] - 1
                module = HighResolutionModule(
                    in_channels,
                    channels,
                    stage_blocks[s],
                    multi_scale_output=multi_scale_output or not last_of_network,
                    attention=attention,
                )
                in_channels = module.out_channels
                modules.append(module)
            setattr(self, f"stage{s + 2}", nn.Sequential(*modules))
            previous = in_channels

        # He initialisation for the convolutions (they are all followed by batch norm),
        # unit scale and zero shift for batch norm, as torchvision's ResNets.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        #: Channels and strides of :meth:`forward_features`' outputs (as timm's ``feature_info``).
        num_out = len(previous) if multi_scale_output else 1
        self.feature_info = [
            {"num_chs": previous[i], "reduction": 4 * 2**i} for i in range(num_out)
        ]

    @staticmethod
    def _make_transition(previous: list[int], channels: list[int]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(channels):
            if i < len(previous):
                # Existing branch: a 3x3 conv only where its width changes.
                layers.append(
                    nn.Sequential(*_conv_bn(previous[i], c, 3), nn.ReLU(inplace=True))
                    if previous[i] != c
                    else None
                )
            else:
                # New branch: stride-2 convs from the lowest existing branch.
                steps = []
                for k in range(i + 1 - len(previous)):
                    c_in = previous[-1]
                    c_out = c if k == i - len(previous) else c_in
                    steps.append(nn.Sequential(*_conv_bn(c_in, c_out, 3, 2), nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    @staticmethod
    def check_input(x: Tensor) -> None:
        """Raise a clear error for inputs the network would silently mishandle."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        if not isinstance(x, Tensor):
            raise TypeError(f"expected a torch.Tensor image batch, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"expected an image batch of shape (B, 3, H, W), got {tuple(x.shape)}; "
                "grayscale or RGBA images must be converted to RGB first"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"expected a floating-point image tensor (normalised RGB), got {x.dtype}; "
                "convert uint8 images with occlupose's preprocessing first"
            )
        h, w = x.shape[-2:]
        if h % INPUT_STRIDE or w % INPUT_STRIDE:
            raise ValueError(
                f"input height and width must be multiples of {INPUT_STRIDE}, got {h}x{w}; "
                "pad the image (the Predictor pads automatically)"
            )

    def forward_stem(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.layer1(x)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Features of every output branch, highest resolution (1/4) first."""
        self.check_input(x)
        features = [self.forward_stem(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            inputs = []
            for i, layer in enumerate(transition):
                source = features[i] if i < len(features) else features[-1]
                inputs.append(source if layer is None else layer(source))
            features = stage(inputs)
        return features

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_features(x)
