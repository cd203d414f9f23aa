"""Training logs: TensorBoard is an optional extra; without it, runs log to CSV."""

from __future__ import annotations

import sys

import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.engine.build import build_trainer, tensorboard_installed
from occlupose.engine.config import ConfigError, TrainerConfig, config_to_dict

runner = CliRunner()


@pytest.fixture
def without_tensorboard(monkeypatch):
    """``import tensorboard`` fails, as where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert not tensorboard_installed()


def test_auto_logs_to_csv_without_tensorboard(without_tensorboard, tmp_path):
    settings = TrainerConfig(accelerator="cpu", logger="auto", progress_bar=False)
    trainer = build_trainer(settings, tmp_path, find_unused_parameters=False)
    assert isinstance(trainer.logger, CSVLogger)
    assert trainer.logger.log_dir.rstrip("/") == str(tmp_path / "csv")


def test_asking_for_tensorboard_without_it_names_the_extra(without_tensorboard, tmp_path):
    settings = TrainerConfig(accelerator="cpu", logger="tensorboard", progress_bar=False)
    with pytest.raises(ConfigError, match=r"trainer.logger: tensorboard is not installed; pip"):
        build_trainer(settings, tmp_path, find_unused_parameters=False)


def test_a_run_without_tensorboard_writes_csv_logs(
    without_tensorboard, tiny_config, synthetic_data, tmp_path
):
    recipe = tmp_path / "tiny.yaml"
    config = tiny_config(synthetic_data, "trainer.max_epochs=1", "trainer.logger=auto")
    recipe.write_text(yaml.safe_dump(config_to_dict(config)))
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "csv"]
    header, *rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert header.startswith("epoch,step,") and "train/loss_step" in header.split(",")
    # The 3 steps of the epoch, logged every step, then the epoch means.
    assert [row.split(",")[:2] for row in rows] == [["0", "0"], ["0", "1"], ["0", "2"], ["0", "2"]]
