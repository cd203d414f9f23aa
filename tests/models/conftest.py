"""Fixtures for the model tests: the tiny HigherHRNet reference and tiny configurations."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from occlupose.models import HRGRNet


@pytest.fixture(scope="session")
def tiny_reference(data_dir) -> dict:
    """Tiny HigherHRNet config, official-layout state dict, input and reference outputs."""
    return torch.load(data_dir / "reference" / "higherhrnet_tiny_reference.pt", weights_only=True)


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
