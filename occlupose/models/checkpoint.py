"""Loading official and occlupose checkpoints into the models, with clear errors."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from occlupose.utils.errors import UserError

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "LoadReport",
    "load_checkpoint_file",
    "load_weights",
    "read_checkpoint",
    "read_state_dict",
]

# Keys that only ImageNet classification HRNet checkpoints have.
_CLASSIFICATION_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
# Parameters of the backbone (what an ImageNet checkpoint can initialise).
_BACKBONE_PREFIXES = ("conv1.", "bn1.", "conv2.", "bn2.", "layer1.", "transition", "stage")
_MAX_LISTED = 5


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file cannot be read, or does not fit the model."""


@dataclass
class LoadReport:
    """What :func:`load_weights` did.

    Attributes:
        path: the checkpoint file.
        kind: ``"model"`` (a full pose model) or ``"imagenet"`` (a classification
            HRNet, loaded into the backbone only).
        loaded: model keys set from the file.
        initialised: model keys the file does not cover and that keep their
            initialisation (the HRGR-Net modules, or the heads for ImageNet files).
        skipped: keys of the file that the model does not use (a classification head).
    """

    path: Path
    kind: str
    loaded: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.path}: loaded {len(self.loaded)} tensors ({self.kind} checkpoint)"
        if self.initialised:
            text += f", {len(self.initialised)} keep their initialisation"
        if self.skipped:
            text += f", skipped {len(self.skipped)} unused (e.g. {', '.join(self.skipped[:3])})"
        return text


def _listing(keys: list[str]) -> str:
    more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


@dataclass
class Checkpoint:
    """A checkpoint file read once: the network's state dict and occlupose's metadata.

    Attributes:
        path: the file.
        state: the network's tensors (wrappers and prefixes removed, see
            :func:`read_checkpoint`).
        metadata: the file's ``occlupose`` block (preset, keypoint set, model arguments,
            input size); empty for official HRNet/HigherHRNet files.
    """

    path: Path
    state: dict[str, Tensor]
    metadata: dict


def _looks_like(path: Path) -> str:
    """What the first bytes of a file say it is: zip, pickle or unknown."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"  # torch's legacy format, or a plain pickle
    return "unknown"


def load_checkpoint_file(path: str | os.PathLike, *, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors that say what is wrong.

    Args:
        path: the file.
        mmap: map the tensors' storage instead of reading it (zip-format files only;
            cheap for checking a large checkpoint's structure).

    Raises:
        CheckpointError: the file is missing, is not a PyTorch checkpoint, is truncated
            or corrupt, or would need to run pickled code to load.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint file not found: {path} {reason}")
    try:
        kind = _looks_like(path)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err})") from None
    if kind == "unknown":
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (neither the zip format of torch.save nor a "
            f"pickle; {size:,} bytes)"
            if size
            else f"{path}: not a PyTorch checkpoint (empty file)"
        )
    if kind == "zip" and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: truncated or corrupt PyTorch checkpoint (its zip directory is missing: "
            "an interrupted download or copy?)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and kind == "zip")
    except pickle.UnpicklingError as err:
        # torch names the global the file wants to import ("Unsupported global: GLOBAL
        # module.name"); any other unpickling failure is damaged data.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found is None:
            raise CheckpointError(
                f"{path}: corrupt PyTorch checkpoint (it cannot be unpickled: {_last_line(err)})"
            ) from None
        raise CheckpointError(
            f"{path}: refusing to load, the file needs to run pickled code ({found.group(1)}; "
            "torch.load(weights_only=True) failed). Only load files you trust: re-save "
            "them with torch.save(model.state_dict(), path) in a trusted environment."
        ) from None
    except Exception as err:  # corrupt data inside a well-formed archive
        raise CheckpointError(
            f"{path}: corrupt PyTorch checkpoint ({_first_sentence(err)})"
        ) from None


def _first_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    end = text.find(". ")
    return text[: end + 1] if 0 < end < 200 else text[:200]


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # torch ends its message with a pointer to the documentation; the cause is before it.
    lines = [line for line in lines if not line.startswith("Check the documentation")]
    return (lines[-1] if lines else type(error).__name__)[:200]


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint file without running pickled code.

    Accepts bare state dicts, ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers
    keys prefixed with ``module.`` (DataParallel), and Lightning checkpoints of the
    training module (the network's keys are under ``model.``; others, such as the
    discriminator's, are dropped).
    """
    path = Path(path)
    obj = load_checkpoint_file(path)
    metadata = obj.get("occlupose") if isinstance(obj, Mapping) else None
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: no state dict found (got {type(obj).__name__})")
    state = dict(obj)
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {_listing(bad)}")
    if all(k.startswith("module.") for k in state):  # DataParallel / DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    if any(k.startswith("model.") for k in state):
        # A Lightning checkpoint of occlupose's training module: the pose network is
        # under "model."; the rest (e.g. the discriminator) is not part of it.
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return Checkpoint(path, state, metadata)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The network's state dict of a checkpoint file (see :func:`read_checkpoint`)."""
    return read_checkpoint(path).state


def _shape_mismatches(state: Mapping[str, Tensor], model_state: Mapping[str, Tensor]) -> list[str]:
    return [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(model_state[k].shape)}"
        for k, v in state.items()
        if k in model_state and v.shape != model_state[k].shape
    ]


def _joint_hint(state: Mapping[str, Tensor], model_state: Mapping[str, Tensor]) -> str:
    key = "final_layers.1.weight"
    if key in state and key in model_state and state[key].shape[0] != model_state[key].shape[0]:
        return (
            f" The checkpoint predicts {state[key].shape[0]} joints and the model "
            f"{model_state[key].shape[0]}: build the preset for the matching keypoint set "
            "(e.g. keypoint_set='crowdpose' for 14 joints)."
        )
    return ""


def load_weights(model: nn.Module, source: str | os.PathLike | Checkpoint) -> LoadReport:
    """Load a checkpoint into ``model``, checking that it really fits.

    * A pose-model checkpoint (HigherHRNet official files, occlupose files) must
      match the model key for key and shape for shape. Into an HRGR-Net, a
      HigherHRNet checkpoint may leave exactly the modules HRGR-Net adds
      uninitialised (see ``HRGRNet.added_module_prefixes``).
    * An ImageNet classification HRNet checkpoint initialises the backbone only;
      its classification head is reported in ``skipped``.

    ``source`` is a file, or a :class:`Checkpoint` already read from one.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not fit, naming
            the first mismatched keys and shapes.
    """
    checkpoint = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    path, state = checkpoint.path, checkpoint.state
    model_state = model.state_dict()
    added = tuple(getattr(model, "added_module_prefixes", lambda: ())())

    def is_added(key: str) -> bool:
        return any(key == p or key.startswith(p + ".") for p in added)

    mismatched = _shape_mismatches(state, model_state)
    if mismatched:
        raise CheckpointError(
            f"{path} does not fit this model: {len(mismatched)} tensors differ in shape, "
            f"first: {_listing(mismatched)}.{_joint_hint(state, model_state)}"
        )

    imagenet = any(k.startswith(_CLASSIFICATION_PREFIXES) for k in state)
    if imagenet:
        kind = "imagenet"
        used = {
            k: v for k, v in state.items() if k in model_state and k.startswith(_BACKBONE_PREFIXES)
        }
        required = [k for k in model_state if k.startswith(_BACKBONE_PREFIXES) and not is_added(k)]
    else:
        kind = "model"
        unexpected = sorted(k for k in state if k not in model_state)
        if unexpected:
            raise CheckpointError(
                f"{path} does not fit this model: {len(unexpected)} keys the model does not "
                f"have, first: {_listing(unexpected)}. Is it a checkpoint of another preset?"
            )
        used = state
        required = [k for k in model_state if not is_added(k)]

    # Checkpoints saved by old PyTorch versions lack the batch-norm step counters.
    absent = [k for k in required if k not in used and not k.endswith("num_batches_tracked")]
    if absent:
        raise CheckpointError(
            f"{path} does not fit this model: {len(absent)} model tensors are missing from "
            f"the file, first: {_listing(absent)}. Is it a checkpoint of another preset?"
        )
    model.load_state_dict(used, strict=False)
    return LoadReport(
        path=path,
        kind=kind,
        loaded=sorted(used),
        initialised=sorted(k for k in model_state if k not in used),
        skipped=sorted(k for k in state if k not in used),
    )
