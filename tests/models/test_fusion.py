"""Folding batch norms: the same function, no batch norm left, the model left alone."""

from __future__ import annotations

import torch
from torch import nn

from occlupose.models import HigherHRNet
from occlupose.models.fusion import fold_batch_norms


def _randomise_batch_norms(model: nn.Module) -> None:
    """Statistics and affine parameters far from the identity, as after training."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator))
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(c, generator=generator))
            module.bias.data.copy_(torch.randn(c, generator=generator))


def test_folded_hrgr_computes_the_same_outputs(tiny_hrgr):
    _randomise_batch_norms(tiny_hrgr)
    model = tiny_hrgr.eval()
    fused = fold_batch_norms(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # untouched
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, folded = model(x), fused(x)
    for a, b in zip(
        [*expected.heatmaps, expected.tags, expected.limbs, *expected.completed],
        [*folded.heatmaps, folded.tags, folded.limbs, *folded.completed],
        strict=True,
    ):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_folded_higherhrnet_reference_and_channels_last(tiny_reference, reference_tolerance):
    model = HigherHRNet(**tiny_reference["config"]).eval()
    model.load_state_dict(tiny_reference["state_dict"])
    fused = fold_batch_norms(model).to(memory_format=torch.channels_last)
    x = tiny_reference["input"].contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        outputs = fused(x).as_higherhrnet()
    for ours, theirs in zip(outputs, tiny_reference["outputs"], strict=True):
        # The official outputs (magnitudes up to 21) to float32 rounding of another sum.
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-3)
