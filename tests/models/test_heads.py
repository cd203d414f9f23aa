"""Multi-scale feature fusion, the deconvolution stage and the limb-field head."""

from __future__ import annotations

import pytest
import torch

from occlupose.models import LimbFieldHead, MultiScaleFeatureFusion
from occlupose.models.heads import make_deconv_stage


def _branches(batch=2, size=16):
    return [
        torch.randn(batch, c, size // 2**i, size // 2**i) for i, c in enumerate((8, 16, 32, 64))
    ]


def test_fusion_starts_as_identity_on_the_high_resolution_branch():
    fusion = MultiScaleFeatureFusion([8, 16, 32, 64])
    branches = _branches()
    torch.testing.assert_close(fusion(branches), branches[0], rtol=0, atol=0)


def test_fusion_uses_every_resolution_once_trained():
    torch.manual_seed(0)
    fusion = MultiScaleFeatureFusion([8, 16, 32, 64]).eval()
    with torch.no_grad():
        fusion.mix[-1].weight.fill_(1.0)
    branches = _branches(batch=1)
    base = fusion(branches)
    assert base.shape == branches[0].shape
    for i in range(1, 4):
        changed = [b.clone() for b in branches]
        changed[i] += 1.0
        assert not torch.allclose(fusion(changed), base), f"branch {i} is ignored"


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_deconv_stage_doubles_resolution(kernel):
    stage = make_deconv_stage(10, 6, kernel=kernel, num_basic_blocks=2)
    y = stage(torch.randn(1, 10, 7, 9))
    assert y.shape == (1, 6, 14, 18)


def test_deconv_stage_rejects_unsupported_kernel():
    with pytest.raises(ValueError, match="deconv_kernel"):
        make_deconv_stage(4, 4, kernel=5)


def test_limb_head_outputs_two_channels_per_limb():
    head = LimbFieldHead(8, num_limbs=14)
    assert head(torch.randn(1, 8, 6, 6)).shape == (1, 28, 6, 6)
