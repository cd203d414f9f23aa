"""HRGR-Net: switchable modules, identity initialisation from HigherHRNet, clear input errors."""

from __future__ import annotations

import pytest
import torch

from occlupose.models import HigherHRNet, HRGRNet, create_model, load_weights


@pytest.mark.parametrize("init", ["he", "published"])
def test_hrgr_from_higherhrnet_checkpoint_computes_higherhrnet(
    tiny_reference, reference_tolerance, tmp_path, init
):
    """With every module on, a HigherHRNet checkpoint gives exactly HigherHRNet's outputs."""
    path = tmp_path / "higherhrnet_tiny.pth"
    torch.save(tiny_reference["state_dict"], path)
    torch.manual_seed(0)
    model = HRGRNet(
        **tiny_reference["config"],
        num_limbs=19,
        attention="all",
        multi_scale_fusion=True,
        completion=True,
        completion_channels=8,
        init=init,
    )
    report = load_weights(model, path)
    assert set(report.loaded) == set(tiny_reference["state_dict"])
    assert report.initialised and all(
        k.startswith(model.added_module_prefixes()) for k in report.initialised
    )
    model.eval()
    with torch.no_grad():
        out = model(tiny_reference["input"])
    ref_first, ref_half = tiny_reference["outputs"]
    torch.testing.assert_close(out.as_higherhrnet()[0], ref_first, **reference_tolerance)
    torch.testing.assert_close(out.heatmaps[1], ref_half, **reference_tolerance)
    for completed, heatmaps in zip(out.completed, out.heatmaps, strict=True):
        torch.testing.assert_close(completed, heatmaps, rtol=0, atol=0)
    assert out.limbs.shape == (2, 38, 32, 24)


def test_every_parameter_gets_a_gradient(tiny_hrgr):
    model = tiny_hrgr.train()
    # Move the identity-initialised parts off zero so every path carries gradient.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma") or name.startswith("generator.predict"):
                p.fill_(0.1)
        model.multi_scale_fusion.mix[-1].weight.fill_(0.1)
    out = model(torch.randn(2, 3, 64, 64))
    loss = sum(h.square().mean() for h in out.heatmaps + out.completed)
    loss = loss + out.tags.square().mean() + out.limbs.square().mean()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []


@pytest.mark.parametrize(
    ("switch", "off_value", "field"),
    [
        ("attention", "none", None),
        ("multi_scale_fusion", False, None),
        ("num_limbs", 0, "limbs"),
        ("completion", False, "completed"),
        ("with_tags", False, "tags"),
    ],
)
def test_each_module_switches_off_alone(tiny_widths, switch, off_value, field):
    full = dict(num_limbs=19, attention="all", multi_scale_fusion=True, completion=True)
    on = HRGRNet(17, **full, **tiny_widths)
    off = HRGRNet(17, **{**full, switch: off_value}, **tiny_widths)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(off) < count(on)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out_on, out_off = on.eval()(x), off.eval()(x)
    if field is not None:
        assert getattr(out_on, field) is not None and getattr(out_off, field) is None
    assert [h.shape for h in out_off.heatmaps] == [(1, 17, 16, 16), (1, 17, 32, 32)]


def test_all_modules_off_is_higherhrnet(tiny_reference):
    plain = HRGRNet(**tiny_reference["config"])
    plain.load_state_dict(tiny_reference["state_dict"], strict=True)
    assert plain.added_module_prefixes() == ()
    assert isinstance(HigherHRNet(**tiny_reference["config"]), HRGRNet)


def test_batch_items_are_independent_in_eval_mode(tiny_hrgr):
    model = tiny_hrgr.eval()
    x = torch.randn(3, 3, 64, 96)
    with torch.no_grad():
        batched = model(x)
        single = model(x[1:2])
    for a, b in zip(batched.final_heatmaps, single.final_heatmaps, strict=True):
        torch.testing.assert_close(a[1:2], b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.zeros(1, 1, 64, 64), ValueError, r"\(B, 3, H, W\)"),
        (torch.zeros(3, 64, 64), ValueError, r"\(B, 3, H, W\)"),
        (torch.zeros(1, 3, 64, 80), ValueError, "multiples of 32"),
    ],
)
def test_bad_input_gets_a_clear_error(tiny_hrgr, x, error, message):
    with pytest.raises(error, match=message):
        tiny_hrgr(x)


def test_inconsistent_stage_description_is_rejected():
    with pytest.raises(ValueError, match="stage 3 needs 3 branches"):
        HRGRNet(stage_channels=((8, 16), (8, 16), (8, 16, 32, 64)))
    with pytest.raises(ValueError, match="attention"):
        HRGRNet(attention="everywhere")


def _convolutions(model: torch.nn.Module, skip: tuple[str, ...] = ()):
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d) and not any(
            name == p or name.startswith(p + ".") for p in skip
        ):
            yield name, module


@torch.no_grad()
def test_published_init_is_higherhrnets(tiny_widths):
    # HigherHRNet's init_weights: every convolution and the transposed convolution
    # N(0, 0.001) with zero bias, batch norm 1 and 0.
    torch.manual_seed(0)
    model = HigherHRNet(17, **{k: v for k, v in tiny_widths.items() if k != "completion_channels"})
    deconv = model.deconv_layers[0][0][0]
    assert isinstance(deconv, torch.nn.ConvTranspose2d)
    weights = torch.cat([m.weight.detach().flatten() for _, m in _convolutions(model)])
    assert weights.numel() > 10_000
    assert 0.00095 < float(weights.std()) < 0.00105 and abs(float(weights.mean())) < 1e-4
    assert 0.0008 < float(deconv.weight.std()) < 0.0012
    for _, module in _convolutions(model):
        assert module.bias is None or not module.bias.any()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert bool((module.weight == 1).all()) and not module.bias.any()
    # occlupose's own initialisation differs: He-normal backbone, PyTorch's deconvolution.
    he = HRGRNet(17, **{k: v for k, v in tiny_widths.items() if k != "completion_channels"})
    assert float(he.deconv_layers[0][0][0].weight.std()) > 0.01
    assert float(he.conv1.weight.std()) > 0.05


@torch.no_grad()
def test_published_init_leaves_the_hrgr_modules_as_they_start(tiny_widths):
    full = dict(num_limbs=19, attention="all", multi_scale_fusion=True, completion=True)
    torch.manual_seed(0)
    he = HRGRNet(17, **full, **tiny_widths)
    torch.manual_seed(0)
    published = HRGRNet(17, **full, init="published", **tiny_widths)
    added = published.added_module_prefixes()
    # Same seed, same construction: the added modules' tensors are the very same ...
    theirs = he.state_dict()
    for key, value in published.state_dict().items():
        if any(key.startswith(p + ".") for p in added):
            assert torch.equal(value, theirs[key]), key
    assert not published.multi_scale_fusion.mix[-1].weight.any()  # the identity start
    # ... and everything HigherHRNet has is initialised as published.
    for name, module in _convolutions(published, skip=added):
        assert float(module.weight.abs().max()) < 0.01, name


def test_published_presets_use_the_published_init():
    with torch.device("meta"):
        for name in ("higherhrnet_w32_512", "higherhrnet_w48_640", "hrgr_w32_512", "hrgr_w48_640"):
            assert create_model(name).init == "published"
        assert create_model("hrgr_small").init == "he"  # the bundled model was trained so
