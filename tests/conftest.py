"""Shared test fixtures: tiny models, a tiny synthetic data set and tiny training recipes."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from occlupose.data.synthetic.generate import generate_dataset
from occlupose.engine.config import TrainConfig, apply_overrides, config_from_dict
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


# TINY for recipes, which are written as YAML: lists instead of tuples.
TINY_MODEL: dict[str, Any] = {
    key: [list(v) if isinstance(v, tuple) else v for v in value]
    if isinstance(value, tuple)
    else value
    for key, value in TINY.items()
}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """12 training and 4 validation images of 64 x 64 pixels (``occlupose synth``)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root / "train", 12, seed=0, size=64, progress=False)
    generate_dataset(root / "val", 4, seed=1, size=64, progress=False)
    return root


def make_tiny_config(data_root: Path, *overrides: str, **sections: dict[str, Any]) -> TrainConfig:
    """A CPU recipe of the tiny HRGR-Net on the tiny data; sections and overrides update it."""
    values: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "model": {"preset": "hrgr_small", "overrides": dict(TINY_MODEL)},
        "data": {
            "layout": "files",
            "train_annotations": str(data_root / "train" / "annotations.json"),
            "train_images": str(data_root / "train" / "images"),
            "val_annotations": str(data_root / "val" / "annotations.json"),
            "val_images": str(data_root / "val" / "images"),
            "input_size": 64,
            "batch_size": 4,
            "num_workers": 0,
            "v1_is_hidden": True,
        },
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 2,
            "check_val_every_n_epoch": 0,
            "checkpoint_every_n_steps": 1,
            "log_every_n_steps": 1,
            "logger": "none",
            "progress_bar": False,
        },
    }
    for name, changes in sections.items():
        values.setdefault(name, {}).update(changes)
    return config_from_dict(apply_overrides(values, list(overrides)))


@pytest.fixture(scope="session")
def tiny_config():
    """:func:`make_tiny_config`: ``tiny_config(data_root, "key=value", ..., section={...})``."""
    return make_tiny_config


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """An empty folder that files may not be created in.

    Root ignores permission bits (CI runs as root), so for root the write that the
    commands try first is refused as the kernel refuses it to everyone else; without
    root the folder's mode alone refuses it (the tests were run both ways).
    """
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == folder.resolve():
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    yield folder
    folder.chmod(0o755)
