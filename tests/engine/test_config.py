"""Recipes: the shipped YAML files, overrides and error messages."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from occlupose.engine.build import load_split
from occlupose.engine.config import (
    ConfigError,
    DataConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_every_shipped_recipe_loads():
    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    expected = [
        f"{kind}_{size}_{data}"
        for kind in ("higherhrnet", "hrgr")
        for size in ("w32_512", "w48_640")
        for data in ("coco", "crowdpose")
    ] + ["higherhrnet_small_synthetic", "hrgr_small_synthetic"]
    assert names == sorted(expected)
    for name in names:
        config = load_config(CONFIGS / f"{name}.yaml")
        assert config.name == name


def test_higherhrnet_recipe_is_the_published_one():
    c = load_config(CONFIGS / "higherhrnet_w32_512_coco.yaml")
    assert c.model.preset == "higherhrnet_w32_512"
    assert (c.optimizer.lr, c.optimizer.milestones, c.optimizer.gamma) == (1e-3, (200, 260), 0.1)
    assert c.trainer.max_epochs == 300
    assert (c.data.input_size, c.data.sigma, c.data.batch_size) == (512, 2.0, 12)
    assert (c.data.max_rotation, c.data.crop_scale_range, c.data.max_translation_px) == (
        30.0,
        (0.75, 1.5),
        40.0,
    )
    assert (c.loss.push, c.loss.pull, c.loss.heatmap) == (1e-3, 1e-3, (1.0, 1.0))
    assert c.loss.heatmap_foreground == 1.0  # the published, unweighted MSE
    assert c.adversarial.weight == 0.0 and c.data.occluder_probability == 0.0
    assert not c.data.v1_is_hidden  # HigherHRNet's targets: every labelled joint
    # Its geometry, targets and images, and its ImageNet initialisation.
    assert (c.data.geometry, c.data.heatmap_centres, c.data.keep_train_images) == (
        "official",
        "integer",
        "annotated",
    )
    assert "hrnet_w32-36af842e.pth" in c.model.requires_init_weights
    assert c.model.init_weights is None  # the user's file: required at training time


PUBLISHED = [
    f"{kind}_{size}_{data}"
    for kind in ("higherhrnet", "hrgr")
    for size in ("w32_512", "w48_640")
    for data in ("coco", "crowdpose")
]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_recipes_train_as_higherhrnet_does(name):
    c = load_config(CONFIGS / f"{name}.yaml")
    assert (c.data.geometry, c.data.heatmap_centres, c.data.keep_train_images) == (
        "official",
        "integer",
        "annotated",
    )
    width = "w48" if "w48" in name else "w32"
    assert f"ImageNet HRNet-{width.upper()}" in c.model.requires_init_weights
    assert (c.data.crop_scale_range, c.data.max_translation_px) == ((0.75, 1.5), 40.0)


@pytest.mark.parametrize("name", ["hrgr_small_synthetic", "higherhrnet_small_synthetic"])
def test_synthetic_recipes_keep_occlupose_conventions(name):
    # The bundled model was trained with them.
    c = load_config(CONFIGS / f"{name}.yaml")
    assert (c.data.geometry, c.data.heatmap_centres, c.data.keep_train_images) == (
        "occlupose",
        "subpixel",
        "labelled",
    )
    assert c.model.requires_init_weights is None


def test_geometry_settings_are_checked():
    for key, value in (
        ("geometry", "higherhrnet"),
        ("heatmap_centres", "round"),
        ("keep_train_images", "all"),
    ):
        with pytest.raises(ConfigError, match=f"data.{key}: must be"):
            config_from_dict({"data": {key: value}})


def test_synthetic_baseline_is_hrgr_small_without_its_modules_and_same_budget():
    hrgr = config_to_dict(load_config(CONFIGS / "hrgr_small_synthetic.yaml"))
    base = config_to_dict(load_config(CONFIGS / "higherhrnet_small_synthetic.yaml"))
    assert base["model"] == {
        "preset": "hrgr_small",
        "overrides": {
            "attention": "none",
            "multi_scale_fusion": False,
            "completion": False,
            "num_limbs": 0,
        },
        "init_weights": None,
        "requires_init_weights": None,
    }
    for section in ("optimizer", "trainer"):
        assert hrgr[section] == base[section]
    assert hrgr["seed"] == base["seed"]
    assert hrgr["loss"]["heatmap_foreground"] == base["loss"]["heatmap_foreground"]
    same_data = {k: v for k, v in hrgr["data"].items() if k != "v1_is_hidden"}
    assert same_data == {k: v for k, v in base["data"].items() if k != "v1_is_hidden"}


def test_overrides_parse_yaml_and_accept_exponent_floats(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\noptimizer:\n  lr: 1e-3\n")  # PyYAML reads 1e-3 as a string
    config = load_config(
        path, ["optimizer.milestones=[5, 8]", "trainer.devices=4", "model.overrides.attention=all"]
    )
    assert config.optimizer.lr == 1e-3
    assert config.optimizer.milestones == (5, 8)
    assert config.trainer.devices == 4
    assert config.model.overrides == {"attention": "all"}
    assert config.data == TrainConfig().data  # untouched sections keep their defaults


def test_unknown_keys_and_bad_values_name_the_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optimizer:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*optimizer.*learning_rate.*valid keys.*lr"):
        load_config(path)
    with pytest.raises(ConfigError, match="trainer.devices: expected an integer"):
        config_from_dict({"trainer": {"devices": "two"}})
    with pytest.raises(ConfigError, match="loss.*first_stage_targets"):
        config_from_dict({"loss": {"first_stage_targets": "sometimes"}})
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides({}, ["optimizer.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_saved_config_loads_back_identically(tmp_path):
    config = load_config(CONFIGS / "hrgr_w32_512_coco.yaml", ["data.root=/datasets/coco"])
    path = save_config(config, tmp_path / "run" / "config.yaml")
    assert load_config(path) == config


def test_training_images_kept_as_the_recipe_says(tmp_path):
    # Real COCO entries (tests/data/coco_images_kept): 6 images, 5 with a person
    # annotation, 3 with a labelled non-crowd person. Only file names are checked.
    source = Path(__file__).resolve().parents[1] / "data" / "coco_images_kept"
    annotations = source / "person_keypoints_images_kept.json"
    for image in json.loads(annotations.read_text())["images"]:
        (tmp_path / image["file_name"]).touch()
    kept = {}
    for choice in ("annotated", "labelled"):
        data = DataConfig(
            layout="files",
            train_annotations=str(annotations),
            train_images=str(tmp_path),
            val_annotations=str(annotations),
            val_images=str(tmp_path),
            keep_train_images=choice,
        )
        kept[choice] = [r.image_id for r in load_split(data, "train", for_training=True)]
        assert len(load_split(data, "val", for_training=False)) == 6  # evaluation: all
    assert kept == {
        "annotated": [785, 40083, 79841, 147961, 204805],
        "labelled": [785, 40083, 204805],
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size: must be >= 1, got 0"),
        ("data.val_batch_size=0", "data.val_batch_size: must be >= 1, got 0"),
        ("data.num_workers=-1", "data.num_workers: must be >= 0, got -1"),
        ("data.input_size=0", "data.input_size: must be >= 1, got 0"),
        ("data.sigma=0", "data.sigma: must be > 0, got 0.0"),
        ("data.flip_probability=1.5", "data.flip_probability: must be between 0 and 1, got 1.5"),
        ("data.crop_scale_range=[1.5,0.75]", "data.crop_scale_range: must be [low, high]"),
        ("trainer.max_epochs=-3", "trainer.max_epochs: must be >= 1, got -3"),
        ("trainer.max_epochs=0", "trainer.max_epochs: must be >= 1, got 0"),
        ("trainer.devices=0", "trainer.devices: must be >= 1, or -1 for all GPUs, got 0"),
        ("trainer.num_nodes=0", "trainer.num_nodes: must be >= 1, got 0"),
        ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps: must be >= 1, got 0"),
        ("trainer.checkpoint_every_n_steps=-1", "trainer.checkpoint_every_n_steps: must be >= 0"),
        ("trainer.max_time=1h", "trainer.max_time: must be DD:HH:MM:SS, got '1h'"),
        ("trainer.precision=fp16", "trainer.precision: must be 32-true, 16-mixed"),
        ("trainer.logger=wandb", "trainer.logger: must be auto, tensorboard, csv or none"),
        ("optimizer.lr=0", "optimizer.lr: must be > 0, got 0.0"),
        ("optimizer.accumulate_grad_batches=0", "optimizer.accumulate_grad_batches: must be >= 1"),
        ("adversarial.weight=-1", "adversarial.weight: must be >= 0, got -1.0"),
        ("optimizer.weight_decay=.nan", "optimizer.weight_decay: must be >= 0, got nan"),
        ("loss.heatmap=[1,-1]", "loss.heatmap: weights must be >= 0, got [1.0, -1.0]"),
        ("discriminator.num_levels=0", "discriminator.num_levels: must be >= 1, got 0"),
        ("validation.nms_kernel=4", "validation.nms_kernel: must be a positive odd integer, got 4"),
    ],
)
def test_values_out_of_range_name_the_option(override, message):
    recipe = CONFIGS / "hrgr_small_synthetic.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(recipe, [override])
    assert str(caught.value).startswith(f"{recipe}: {message}"), str(caught.value)


def test_validation_defaults_are_the_decoders():
    from occlupose.decode import DecodeSettings
    from occlupose.engine.config import ValidationConfig

    decoder = DecodeSettings()
    for field in dataclasses.fields(ValidationConfig):
        if field.name != "pose_prior":
            assert field.default == getattr(decoder, field.name), field.name


def test_reading_a_recipe_imports_neither_lightning_nor_torch():
    code = (
        "import sys\n"
        "from occlupose.engine.config import load_config\n"
        f"load_config({str(CONFIGS / 'hrgr_w32_512_coco.yaml')!r}, ['data.batch_size=4'])\n"
        "print(sorted(m for m in ('lightning', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
