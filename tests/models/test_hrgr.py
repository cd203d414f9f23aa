"""HRGR-Net: switchable modules, identity initialisation from HigherHRNet, clear input errors."""

from __future__ import annotations

import pytest
import torch

from occlupose.models import HigherHRNet, HRGRNet, load_weights


def test_hrgr_from_higherhrnet_checkpoint_computes_higherhrnet(
    tiny_reference, reference_tolerance, tmp_path
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
