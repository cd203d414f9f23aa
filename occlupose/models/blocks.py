"""Residual blocks of HRNet, with the parameter names of the published checkpoints."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["BasicBlock", "Bottleneck", "conv3x3"]

# The published HRNet / HigherHRNet models use PyTorch's default batch-norm
# momentum and epsilon; spelled out because checkpoints depend on them.
BN_MOMENTUM = 0.1


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """The projection shortcut of a residual block (``downsample`` in checkpoints)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet's basic block)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.downsample = (
            conv1x1_bn(in_channels, out_channels, stride)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 residual block with 4x channel expansion (HRNet's first stage)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            conv1x1_bn(in_channels, out_channels, stride)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_blocks(
    block: type[BasicBlock] | type[Bottleneck], in_channels: int, channels: int, num_blocks: int
) -> nn.Sequential:
    """``num_blocks`` blocks in a row; the first adapts the channel count."""
    layers = [block(in_channels, channels)]
    layers += [block(channels * block.expansion, channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)
