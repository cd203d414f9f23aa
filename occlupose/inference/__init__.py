"""Inference: the Predictor (images -> people), test canvases, pretrained weights, export."""

from occlupose.inference.canvas import (
    OfficialCanvases,
    official_canvases,
    official_warp,
    warp_canvas,
)
from occlupose.inference.predictor import (
    Predictor,
    PredictorOptions,
    as_rgb_image,
    default_decoding,
)
from occlupose.inference.pretrained import (
    BUNDLED_WEIGHTS,
    DEFAULT_WEIGHTS,
    resolve_weights,
    save_pretrained,
)

__all__ = [
    "BUNDLED_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "OfficialCanvases",
    "Predictor",
    "PredictorOptions",
    "as_rgb_image",
    "default_decoding",
    "official_canvases",
    "official_warp",
    "resolve_weights",
    "save_pretrained",
    "warp_canvas",
]
