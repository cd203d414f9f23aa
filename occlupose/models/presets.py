"""Model presets: the published HigherHRNet models and the HRGR-Net variants.

Each preset is a one-line factory over :class:`HRGRNet` / :class:`HigherHRNet`
with a stage description as data, for any keypoint set (COCO, CrowdPose or a
registered custom set). ``create_model(name, **overrides)`` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from occlupose.models.hrgr import HigherHRNet, HRGRNet
from occlupose.structures import KeypointSet, get_keypoint_set

__all__ = [
    "PRESETS",
    "PresetInfo",
    "create_model",
    "higherhrnet_w32_512",
    "higherhrnet_w48_640",
    "hrgr_small",
    "hrgr_w32_512",
    "hrgr_w48_640",
    "list_presets",
]


def _widths(c: int) -> tuple[tuple[int, ...], ...]:
    """Branch widths of stages 2-4 for HRNet-W``c`` (each branch doubles)."""
    return ((c, 2 * c), (c, 2 * c, 4 * c), (c, 2 * c, 4 * c, 8 * c))


# Stage layouts as data. The W32/W48 ones are the published HRNet layouts, initialised as
# published (the small one keeps He initialisation: the bundled model was trained so).
_HRNET = {
    "w32": dict(
        stem_inplanes=64,
        stage_channels=_widths(32),
        stage_blocks=((4, 4), (4, 4, 4), (4, 4, 4, 4)),
        stage_modules=(1, 4, 3),
        deconv_channels=32,
        init="published",
    ),
    "w48": dict(
        stem_inplanes=64,
        stage_channels=_widths(48),
        stage_blocks=((4, 4), (4, 4, 4), (4, 4, 4, 4)),
        stage_modules=(1, 4, 3),
        deconv_channels=48,
        init="published",
    ),
    # CPU-friendly: width 16, two blocks per branch, fewer modules, lighter head.
    "small": dict(
        stem_inplanes=32,
        stage_channels=_widths(16),
        stage_blocks=((2, 2), (2, 2, 2), (2, 2, 2, 2)),
        stage_modules=(1, 2, 2),
        deconv_channels=16,
        deconv_basic_blocks=2,
    ),
}

# The HRGR-Net modules switched on by the HRGR presets (each can be overridden
# to False / "none" for ablations).
_HRGR_MODULES = dict(attention="high", multi_scale_fusion=True, completion=True)


def _hrgr(width: str, keypoint_set: str | KeypointSet, **overrides: Any) -> HRGRNet:
    kps = get_keypoint_set(keypoint_set)
    kwargs: dict[str, Any] = dict(_HRNET[width], **_HRGR_MODULES, num_limbs=kps.num_limbs)
    # The generator is as wide as the features it reads (the small model: twice, to
    # give its encoder-decoder some room).
    channels = kwargs["stage_channels"][0][0]
    kwargs["completion_channels"] = 2 * channels if width == "small" else channels
    kwargs.update(overrides)
    return HRGRNet(kps.num_keypoints, **kwargs)


def _higherhrnet(width: str, keypoint_set: str | KeypointSet, **overrides: Any) -> HigherHRNet:
    kps = get_keypoint_set(keypoint_set)
    return HigherHRNet(kps.num_keypoints, **dict(_HRNET[width], **overrides))


def higherhrnet_w32_512(keypoint_set: str | KeypointSet = "coco", **overrides: Any) -> HigherHRNet:
    """HigherHRNet-W32 at 512 input (COCO: 28.6 M parameters, 67.1 AP on val2017)."""
    return _higherhrnet("w32", keypoint_set, **overrides)


def higherhrnet_w48_640(keypoint_set: str | KeypointSet = "coco", **overrides: Any) -> HigherHRNet:
    """HigherHRNet-W48 at 640 input (COCO: 63.8 M parameters, 69.9 AP on val2017)."""
    return _higherhrnet("w48", keypoint_set, **overrides)


def hrgr_w32_512(keypoint_set: str | KeypointSet = "coco", **overrides: Any) -> HRGRNet:
    """HRGR-Net on HRNet-W32 at 512 input; loads HigherHRNet-W32 checkpoints."""
    return _hrgr("w32", keypoint_set, **overrides)


def hrgr_w48_640(keypoint_set: str | KeypointSet = "coco", **overrides: Any) -> HRGRNet:
    """HRGR-Net on HRNet-W48 at 640 input; loads HigherHRNet-W48 checkpoints."""
    return _hrgr("w48", keypoint_set, **overrides)


def hrgr_small(keypoint_set: str | KeypointSet = "coco", **overrides: Any) -> HRGRNet:
    """A CPU-friendly HRGR-Net (width 16, 256 input) for the synthetic benchmark."""
    return _hrgr("small", keypoint_set, **overrides)


@dataclass(frozen=True)
class PresetInfo:
    """A registered preset: its factory, input size and one-line description."""

    name: str
    factory: Callable[..., HRGRNet]
    input_size: int
    description: str


PRESETS: dict[str, PresetInfo] = {
    info.name: info
    for info in (
        PresetInfo("higherhrnet_w32_512", higherhrnet_w32_512, 512, "HigherHRNet-W32 (published)"),
        PresetInfo("higherhrnet_w48_640", higherhrnet_w48_640, 640, "HigherHRNet-W48 (published)"),
        PresetInfo("hrgr_w32_512", hrgr_w32_512, 512, "HRGR-Net on HRNet-W32"),
        PresetInfo("hrgr_w48_640", hrgr_w48_640, 640, "HRGR-Net on HRNet-W48"),
        PresetInfo("hrgr_small", hrgr_small, 256, "HRGR-Net, width 16, CPU-friendly"),
    )
}


def list_presets() -> list[PresetInfo]:
    return list(PRESETS.values())


def create_model(name: str, **overrides: Any) -> HRGRNet:
    """Build a preset by name; ``overrides`` go to its factory (``keypoint_set=...``,
    or any :class:`HRGRNet` argument, e.g. ``attention="none"`` for an ablation)."""
    try:
        info = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}") from None
    return info.factory(**overrides)
