"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from occlupose.inference import save_pretrained
from occlupose.models import create_model

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


# Backbone and head widths small enough for fast CPU tests.
TINY = dict(
    stem_inplanes=16,
    stage_channels=((8, 16), (8, 16, 32), (8, 16, 32, 64)),
    stage_blocks=((1, 1), (1, 1, 1), (1, 1, 1, 1)),
    stage_modules=(1, 1, 1),
    deconv_channels=8,
    deconv_basic_blocks=1,
    completion_channels=8,
)


@pytest.fixture
def tiny_widths() -> dict:
    """Keyword arguments that shrink any HRGR-Net preset to test size."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(path, model): a tiny HRGR-Net saved with its preset, overrides and input size."""
    torch.manual_seed(0)
    model = create_model("hrgr_small", keypoint_set="coco", **TINY).eval()
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_pretrained(
        model, path, preset="hrgr_small", keypoint_set="coco", model_kwargs=TINY, input_size=64
    )
    return path, model
