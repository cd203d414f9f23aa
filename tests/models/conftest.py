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

    The reference outputs were computed in float32 with two intra-op threads. The
    summation order of the convolutions depends on the thread count and moves the last
    bits: with one thread the outputs differ by up to 2e-5, as much as a float64
    computation differs from the reference. With two threads they agree exactly, so
    the comparison runs with two threads and the 1e-5 tolerance can hold.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield torch.load(data_dir / "reference" / "higherhrnet_tiny_reference.pt", weights_only=True)
    torch.set_num_threads(threads)


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
