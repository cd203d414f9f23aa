"""Inference-time folding of batch normalisation into the convolution before it.

In eval mode a ``BatchNorm2d`` is an affine map per channel, so it can be merged into
the weights and bias of the convolution that feeds it: one layer instead of two, the
same function up to float rounding. HRNet has one after almost every convolution.
"""

from __future__ import annotations

import copy
from itertools import pairwise

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batch_norms"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _fold(conv: nn.Module, bn: nn.Module) -> nn.Module:
    return fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every batch norm folded into its convolution.

    Pairs are found where the layout states them: a convolution directly followed by a
    ``BatchNorm2d`` in an ``nn.Sequential``, and a block's ``conv<i>`` / ``bn<i>``
    attributes (HRNet's stem, BasicBlock and Bottleneck), whose forward applies ``bn<i>``
    to ``conv<i>``'s output alone. Folded norms become ``nn.Identity``. The model passed
    in is not changed.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (name, child), (next_name, following) in pairwise(children):
                if isinstance(child, _CONVS) and isinstance(following, nn.BatchNorm2d):
                    setattr(module, name, _fold(child, following))
                    setattr(module, next_name, nn.Identity())
            continue
        for name, child in list(module.named_children()):
            if not (name.startswith("bn") and isinstance(child, nn.BatchNorm2d)):
                continue
            conv = getattr(module, "conv" + name[2:], None)
            if isinstance(conv, _CONVS):
                setattr(module, "conv" + name[2:], _fold(conv, child))
                setattr(module, name, nn.Identity())
    return fused
