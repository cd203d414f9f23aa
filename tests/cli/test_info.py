"""``occlupose info`` lists presets and summarises one."""

from __future__ import annotations

from typer.testing import CliRunner

from occlupose.cli import app

runner = CliRunner()


def test_info_lists_every_preset_with_parameter_counts():
    result = runner.invoke(app, ["info"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("higherhrnet_w32_512", "higherhrnet_w48_640", "hrgr_w32_512", "hrgr_small"):
        assert name in result.output
    assert "28,645,331" in result.output  # HigherHRNet-W32, as published
    assert "63,827,139" in result.output


def test_info_for_crowdpose_keypoints():
    result = runner.invoke(app, ["info", "--keypoints", "crowdpose"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "28,641,962" in result.output


def test_info_preset_summary_and_unknown_preset():
    result = runner.invoke(app, ["info", "--preset", "hrgr_small"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "(1, 17, 64, 64)" in result.output and "limb fields" in result.output
    result = runner.invoke(app, ["info", "--preset", "nope"])
    assert result.exit_code != 0 and "unknown preset" in result.output
