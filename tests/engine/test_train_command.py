"""``occlupose train``: a tiny run, its resume, and clear errors for bad input."""

from __future__ import annotations

import torch
import yaml
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.engine.config import config_to_dict
from occlupose.inference import Predictor

runner = CliRunner()
ENV = {"COLUMNS": "200"}


def _write_recipe(path, config) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(config)))


def test_train_writes_checkpoints_and_resumes(tiny_config, synthetic_data, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    _write_recipe(recipe, tiny_config(synthetic_data, "trainer.max_epochs=1"))
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(recipe), "--out", str(out), "--workers", "0"], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert (out / "config.yaml").is_file()
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["occlupose"]["pose_steps"] == 3 and last["epoch"] == 0
    assert last["hyper_parameters"]["config"]["name"] == "tiny"

    # One more epoch from where it stopped (an override raises the epoch limit).
    result = runner.invoke(
        app, ["train", str(recipe), "--out", str(out), "--resume", "trainer.max_epochs=2"], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["occlupose"]["pose_steps"] == 6 and last["epoch"] == 1

    # The checkpoint describes itself: the Predictor rebuilds the trained network from it.
    predictor = Predictor.from_pretrained(out / "checkpoints" / "last.ckpt")
    state = {k[len("model.") :]: v for k, v in last["state_dict"].items() if k.startswith("model.")}
    torch.testing.assert_close(predictor.model.state_dict(), state)


def test_missing_data_is_a_clear_error(tiny_config, synthetic_data, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    _write_recipe(recipe, tiny_config(synthetic_data, "data.train_images=/nowhere/images"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "r")], env=ENV)
    assert result.exit_code == 2
    assert "data.train_images" in result.output and "/nowhere/images" in result.output
    assert "Traceback" not in result.output

    recipe.write_text("name: coco\ndata:\n  layout: coco\n  root: " + str(tmp_path) + "\n")
    result = runner.invoke(app, ["train", str(recipe)], env=ENV)
    assert result.exit_code == 2
    assert "person_keypoints_train2017.json" in result.output  # the expected layout


def test_bad_override_and_missing_resume_checkpoint(tiny_config, synthetic_data, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    _write_recipe(recipe, tiny_config(synthetic_data))
    result = runner.invoke(app, ["train", str(recipe), "optimizer.lr"], env=ENV)
    assert result.exit_code == 2 and "section.key=value" in result.output
    result = runner.invoke(app, ["train", str(recipe), "--resume-from", "nope.ckpt"], env=ENV)
    assert result.exit_code == 2 and "nope.ckpt" in result.output
