"""load_weights: official layouts and wrappers load; what does not fit is refused clearly."""

from __future__ import annotations

import argparse
import collections
import gzip
import json

import pytest
import torch

from occlupose.models import (
    CheckpointError,
    HigherHRNet,
    HighResolutionNet,
    HRGRNet,
    create_model,
    load_weights,
    read_checkpoint,
)


@pytest.fixture
def reference_model(tiny_reference) -> HigherHRNet:
    return HigherHRNet(**tiny_reference["config"])


def _outputs_match(model, tiny_reference, tolerance):
    model.eval()
    with torch.no_grad():
        out = model(tiny_reference["input"]).as_higherhrnet()
    for ours, theirs in zip(out, tiny_reference["outputs"], strict=True):
        torch.testing.assert_close(ours, theirs, **tolerance)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"module." + k: v for k, v in sd.items()},
        lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}},
        lambda sd: {"state_dict": {"model." + k: v for k, v in sd.items()}},
        lambda sd: {
            "state_dict": {
                **{"model." + k: v for k, v in sd.items()},
                "discriminator.score.bias": torch.zeros(1),
            },
            "optimizer_states": [],
        },
        lambda sd: collections.OrderedDict(sd),
    ],
    ids=[
        "bare",
        "wrapped",
        "dataparallel",
        "wrapped-dataparallel",
        "lightning",
        "lightning-with-discriminator",
        "ordered",
    ],
)
def test_official_checkpoint_formats_load(
    tiny_reference, reference_tolerance, reference_model, tmp_path, wrap
):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(tiny_reference["state_dict"]), path)
    report = load_weights(reference_model, path)
    assert report.kind == "model"
    assert len(report.loaded) == len(tiny_reference["state_dict"])
    assert report.initialised == [] and report.skipped == []
    _outputs_match(reference_model, tiny_reference, reference_tolerance)


def test_a_checkpoint_read_once_loads_with_its_metadata(
    tiny_reference, reference_tolerance, reference_model, tmp_path
):
    path = tmp_path / "ckpt.pth"
    meta = {"preset": "higherhrnet_w32_512", "keypoint_set": "coco", "input_size": 64}
    torch.save({"state_dict": tiny_reference["state_dict"], "occlupose": meta}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.metadata == meta and checkpoint.path == path
    assert set(checkpoint.state) == set(tiny_reference["state_dict"])
    report = load_weights(reference_model, checkpoint)
    assert report.path == path and len(report.loaded) == len(tiny_reference["state_dict"])
    _outputs_match(reference_model, tiny_reference, reference_tolerance)
    # Official files carry no metadata.
    torch.save(tiny_reference["state_dict"], path)
    assert read_checkpoint(path).metadata == {}


def test_checkpoint_needing_pickled_code_is_refused(reference_model, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointError, match="pickled code"):
        load_weights(reference_model, path)


def test_missing_and_corrupt_files(reference_model, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(reference_model, tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        load_weights(reference_model, corrupt)


def test_wrong_preset_names_the_mismatched_tensors(tiny_reference, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(tiny_reference["state_dict"], path)
    wider = HigherHRNet(**{**tiny_reference["config"], "deconv_channels": 16})
    with pytest.raises(CheckpointError, match=r"deconv_layers\.0\.0\.0\.weight: checkpoint"):
        load_weights(wider, path)


def test_wrong_keypoint_set_gets_a_hint(tiny_reference, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(tiny_reference["state_dict"], path)
    crowdpose = HigherHRNet(**{**tiny_reference["config"], "num_joints": 14})
    with pytest.raises(CheckpointError, match="predicts 17 joints and the model 14"):
        load_weights(crowdpose, path)


def test_incomplete_checkpoint_is_refused(tiny_reference, reference_model, tmp_path):
    state = dict(tiny_reference["state_dict"])
    del state["stage3.0.branches.0.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing from the file.*stage3\.0\.branches"):
        load_weights(reference_model, path)


def test_hrgr_checkpoint_does_not_load_into_higherhrnet(tiny_reference, tmp_path):
    hrgr = HRGRNet(**tiny_reference["config"], attention="high", completion=True)
    path = tmp_path / "hrgr.pth"
    torch.save(hrgr.state_dict(), path)
    with pytest.raises(CheckpointError, match="keys the model does not have"):
        load_weights(HigherHRNet(**tiny_reference["config"]), path)


def test_imagenet_classification_checkpoint_initialises_the_backbone_only(tiny_reference, tmp_path):
    config = tiny_reference["config"]
    backbone_kwargs = {
        k: config[k] for k in ("stem_inplanes", "stage_channels", "stage_blocks", "stage_modules")
    }
    # An HRNet classification checkpoint: all four branches out of the last
    # module, plus the classification head.
    torch.manual_seed(1)
    classifier = HighResolutionNet(**backbone_kwargs, multi_scale_output=True)
    state = dict(classifier.state_dict())
    state["incre_modules.0.0.conv1.weight"] = torch.randn(32, 8, 1, 1)
    state["final_layer.0.weight"] = torch.randn(2048, 1024, 1, 1)
    state["classifier.weight"] = torch.randn(1000, 2048)
    state["classifier.bias"] = torch.randn(1000)
    path = tmp_path / "hrnet_imagenet.pth"
    torch.save(state, path)

    model = HigherHRNet(**config)
    head_before = model.final_layers[0].weight.clone()
    report = load_weights(model, path)
    assert report.kind == "imagenet"
    assert {"classifier.weight", "incre_modules.0.0.conv1.weight"} <= set(report.skipped)
    assert "stage4.0.fuse_layers.1.0.0.0.weight" in report.skipped  # HigherHRNet has no such layer
    torch.testing.assert_close(model.conv1.weight, classifier.conv1.weight)
    torch.testing.assert_close(
        model.stage4[0].branches[3][0].conv2.weight,
        classifier.stage4[0].branches[3][0].conv2.weight,
    )
    torch.testing.assert_close(model.final_layers[0].weight, head_before)
    assert any(k.startswith("final_layers") for k in report.initialised)

    # Into an HRGR-Net with multi-scale fusion, the extra fuse layers are used.
    hrgr = HRGRNet(**config, multi_scale_fusion=True)
    report = load_weights(hrgr, path)
    assert "stage4.0.fuse_layers.1.0.0.0.weight" in report.loaded


def test_report_summary_mentions_counts(tiny_reference, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(tiny_reference["state_dict"], path)
    model = HRGRNet(**tiny_reference["config"], completion=True)
    summary = load_weights(model, path).summary()
    assert "loaded 316 tensors" in summary and "keep their initialisation" in summary


# -------------------------------------------------- official ImageNet files, exact layout
_CLASSIFICATION_HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


@pytest.fixture(scope="module")
def imagenet_layouts(data_dir) -> dict:
    with gzip.open(data_dir / "reference" / "hrnet_imagenet_state_dicts.json.gz", "rt") as f:
        return json.load(f)


def _imagenet_file(layout: dict, path, *, batch_counters: bool = True):
    """A file with exactly the official key layout (random values), as torch.save writes it."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in layout["state_dict_shapes"].items():
        if key.endswith("num_batches_tracked"):
            if batch_counters:
                state[key] = torch.tensor(1000, dtype=torch.int64)
        else:
            state[key] = torch.randn(shape, generator=generator)
    torch.save(state, path)
    return state


def _is_backbone(key: str, added: tuple[str, ...]) -> bool:
    """A tensor of HigherHRNet's backbone (not its head, not an HRGR-Net module)."""
    return not key.startswith(("final_layers.", "deconv_layers.")) and not any(
        key == p or key.startswith(p + ".") for p in added
    )


@pytest.mark.parametrize(
    ("width", "presets"),
    [
        ("w32", ("higherhrnet_w32_512", "hrgr_w32_512")),
        ("w48", ("higherhrnet_w48_640", "hrgr_w48_640")),
    ],
)
def test_official_imagenet_files_initialise_every_backbone_tensor(
    imagenet_layouts, tmp_path, width, presets
):
    layout = imagenet_layouts[f"hrnet_{width}_imagenet"]
    assert len(layout["state_dict_shapes"]) == 1956  # HRNet-W32-C / W48-C, 41.2 M / 77.5 M
    path = tmp_path / layout["file_names"][0]  # hrnet_w32-36af842e.pth, hrnetv2_w48_...pth
    state = _imagenet_file(layout, path)
    for preset in presets:
        model = create_model(preset)
        added = model.added_module_prefixes()
        before = {k: v.clone() for k, v in model.state_dict().items() if not _is_backbone(k, added)}
        report = load_weights(model, path)
        assert report.kind == "imagenet"
        after = model.state_dict()
        backbone = [k for k in after if _is_backbone(k, added)]
        # Every backbone tensor of HigherHRNet is copied from the file, bit for bit ...
        assert set(backbone) <= set(report.loaded)
        for key in report.loaded:
            assert torch.equal(after[key], state[key]), key
        # ... the classification head is reported skipped (with, for HigherHRNet, the
        # last module's fuse layers into the lower branches) ...
        head = {k for k in state if k.startswith(_CLASSIFICATION_HEAD)}
        assert head and head <= set(report.skipped)
        assert set(report.skipped) == set(state) - set(after)
        # ... and the pose head and HRGR-Net's modules keep their initialisation.
        assert set(report.initialised) == set(after) - set(report.loaded)
        assert any(k.startswith("deconv_layers.0.0.0") for k in report.initialised)
        for key in report.initialised:
            assert torch.equal(after[key], before[key]), key
        if preset.startswith("hrgr"):  # its last module outputs all branches, as ImageNet's
            assert "stage4.2.fuse_layers.1.0.0.0.weight" in report.loaded
        else:
            assert "stage4.2.fuse_layers.1.0.0.0.weight" in report.skipped


def test_imagenet_files_without_batch_counters_load(imagenet_layouts, tmp_path):
    # Files saved by PyTorch < 0.4.1 have no num_batches_tracked entries.
    path = tmp_path / "hrnet_w32-36af842e.pth"
    state = _imagenet_file(imagenet_layouts["hrnet_w32_imagenet"], path, batch_counters=False)
    model = create_model("higherhrnet_w32_512")
    report = load_weights(model, path)
    assert report.kind == "imagenet"
    torch.testing.assert_close(
        model.stage4[2].branches[0][3].conv2.weight,
        state["stage4.2.branches.0.3.conv2.weight"],
        rtol=0,
        atol=0,
    )
