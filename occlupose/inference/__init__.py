"""Inference: the Predictor (images -> people), test-time augmentation, pretrained weights."""

from occlupose.inference.predictor import Predictor, PredictorOptions, as_rgb_image
from occlupose.inference.pretrained import (
    BUNDLED_WEIGHTS,
    DEFAULT_WEIGHTS,
    resolve_weights,
    save_pretrained,
)
from occlupose.inference.tta import MapsAtOneSize, NetworkPass, flip_back_outputs, merge_outputs

__all__ = [
    "BUNDLED_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "MapsAtOneSize",
    "NetworkPass",
    "Predictor",
    "PredictorOptions",
    "as_rgb_image",
    "flip_back_outputs",
    "merge_outputs",
    "resolve_weights",
    "save_pretrained",
]
