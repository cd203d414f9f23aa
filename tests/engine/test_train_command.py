"""``occlupose train``: a tiny run, its resume, and clear errors for bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import yaml
from typer.testing import CliRunner

from occlupose.cli import app
from occlupose.engine.config import config_to_dict
from occlupose.inference import Predictor

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ENV = {"COLUMNS": "200"}


def _write_recipe(path, config) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(config)))


def test_train_writes_checkpoints_and_resumes(tiny_config, synthetic_data, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    # Trained on HigherHRNet's int()-rounded heatmap centres: decoded with their convention.
    _write_recipe(
        recipe, tiny_config(synthetic_data, "trainer.max_epochs=1", "data.heatmap_centres=integer")
    )
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
    assert last["occlupose"]["heatmap_centres"] == "integer"
    assert predictor.settings.pixel_convention == "official"
    assert predictor.options.decoding == "occlupose"  # a limb-field model
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


def test_a_published_recipe_needs_its_imagenet_weights(tmp_path):
    # As a user runs it: data in place or not, it stops first on the missing weights.
    recipe = CONFIGS / "higherhrnet_w32_512_coco.yaml"
    result = runner.invoke(
        app,
        ["train", str(recipe), f"data.root={tmp_path}", "--out", str(tmp_path / "run")],
        env={"COLUMNS": "1000"},
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.init_weights is not set")
    assert "hrnet_w32-36af842e.pth" in lines[0]
    assert "model.init_weights=PATH" in lines[0] and "model.init_weights=none" in lines[0]
    assert not (tmp_path / "run").exists()


def test_init_weights_none_trains_from_random_init_with_a_warning(
    tiny_config, synthetic_data, tmp_path, caplog
):
    recipe = tmp_path / "tiny.yaml"
    _write_recipe(
        recipe,
        tiny_config(
            synthetic_data,
            "model.requires_init_weights=ImageNet HRNet-W32 (hrnet_w32-36af842e.pth)",
            "trainer.max_epochs=1",
        ),
    )
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "a")], env=ENV)
    assert result.exit_code == 2 and "model.init_weights=none" in result.output
    with caplog.at_level(logging.WARNING, logger="occlupose.engine.build"):
        result = runner.invoke(
            app,
            ["train", str(recipe), "--out", str(tmp_path / "b"), "model.init_weights=none"],
            env=ENV,
        )
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if "random initialisation" in r.getMessage()]
    assert len(warnings) == 1 and "hrnet_w32-36af842e.pth" in warnings[0]
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()
