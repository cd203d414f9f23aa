"""Weights shipped inside the package, and resolving a name or a path to a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from occlupose.decode.prior import PosePrior
from occlupose.structures import KeypointSet, get_keypoint_set
from occlupose.utils.io import atomic_torch_save

__all__ = ["BUNDLED_WEIGHTS", "DEFAULT_WEIGHTS", "resolve_weights", "save_pretrained"]

_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: Names of weights that ship with occlupose -> file inside ``occlupose/weights``
#: (each described in ``occlupose/weights/MODEL_CARD.md``).
BUNDLED_WEIGHTS: dict[str, str] = {
    "hrgr_small_synthetic": "hrgr_small_synthetic.pt",
    "hrgr_small": "hrgr_small_synthetic.pt",  # a preset's name gives its bundled weights
}


DEFAULT_WEIGHTS = "hrgr_small_synthetic"


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """The checkpoint file for a path, the name of bundled weights, or None (the default).

    Raises:
        FileNotFoundError: neither an existing file nor a bundled name, with the
            list of bundled names.
    """
    name = DEFAULT_WEIGHTS if weights is None else str(weights)
    if name in BUNDLED_WEIGHTS:
        path = _WEIGHTS_DIR / BUNDLED_WEIGHTS[name]
        if not path.is_file():
            raise FileNotFoundError(
                f"bundled weights {name!r} are missing from the installation ({path}); "
                "reinstall occlupose"
            )
        return path
    bundled = ", ".join(sorted(BUNDLED_WEIGHTS)) or "none"
    if weights is None:
        raise FileNotFoundError(f"no default model is bundled (bundled: {bundled}); pass weights")
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"no checkpoint file at {path} and no bundled weights of that name (bundled: {bundled}). "
        "occlupose never downloads weights: give the path of a local checkpoint, e.g. an "
        "official HigherHRNet file with preset='higherhrnet_w32_512'."
    )


def save_pretrained(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    preset: str,
    keypoint_set: KeypointSet | str,
    model_kwargs: dict[str, Any] | None = None,
    input_size: int | None = None,
    half: bool = False,
    pose_prior: PosePrior | None = None,
    **extra: Any,
) -> Path:
    """Write a self-describing checkpoint that ``Predictor.from_pretrained`` loads alone.

    The file holds ``state_dict`` and an ``occlupose`` block: the preset, the keypoint
    set's name, the preset overrides (``model_kwargs``), the input size and any extra
    JSON-like metadata (e.g. training data and metrics for a model card). With
    ``half`` floating-point tensors are stored in float16 (half the size; they are
    cast back to float32 when loaded). A ``pose_prior`` is stored with the weights and
    completes the people the Predictor finds.
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    meta = {
        "preset": preset,
        "keypoint_set": get_keypoint_set(keypoint_set).name,
        "model_kwargs": dict(model_kwargs or {}),
        **({"input_size": int(input_size)} if input_size else {}),
        **(pose_prior.metadata() if pose_prior is not None else {}),
        **extra,
    }
    return atomic_torch_save(path, {"state_dict": state, "occlupose": meta})
