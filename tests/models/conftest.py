"""Fixtures for the model tests: the tiny HigherHRNet reference and tiny configurations."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from occlupose.models import HRGRNet


@pytest.fixture
def tiny_reference(data_dir):
    """Tiny HigherHRNet config, official-layout state dict, input and reference outputs.

    The reference outputs were computed in float32 with two intra-op threads; the last
    bits depend on the convolution kernels' summation order. With one thread, or on a
    CPU without AVX-512 (other oneDNN kernels), outputs of magnitude up to 21 differ by
    up to 2.1e-5, as much as a float64 computation differs from the reference itself,
    so comparisons use :func:`reference_tolerance` (an error in the architecture or
    the weight mapping moves outputs by far more).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield torch.load(data_dir / "reference" / "higherhrnet_tiny_reference.pt", weights_only=True)
    torch.set_num_threads(threads)


@pytest.fixture
def reference_tolerance() -> dict[str, float]:
    """``assert_close`` tolerances against the reference outputs: float32 rounding only."""
    return {"rtol": 0.0, "atol": 5e-5}


@pytest.fixture(scope="session")
def official_state_dicts(data_dir) -> dict:
    with gzip.open(data_dir / "reference" / "higherhrnet_state_dicts.json.gz", "rt") as f:
        return json.load(f)


@pytest.fixture
def tiny_hrgr(tiny_widths) -> HRGRNet:
    """An HRGR-Net of tiny widths with every module switched on."""
    torch.manual_seed(0)
    return HRGRNet(
        17, num_limbs=19, attention="all", multi_scale_fusion=True, completion=True, **tiny_widths
    )
