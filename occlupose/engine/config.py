"""Training recipes: typed dataclasses read from YAML, with ``key.sub=value`` overrides.

A recipe (``configs/*.yaml``) has the sections of :class:`TrainConfig`. Sections
``loss``, ``adversarial``, ``optimizer`` and ``validation`` are the settings
dataclasses the training module takes; ``model``, ``data``, ``discriminator`` and
``trainer`` describe what :mod:`occlupose.engine.build` constructs. Every key is
checked: an unknown key or a value of the wrong type is a :class:`ConfigError` that
names the file and the key, and so is a value out of range
(``data.batch_size: must be >= 1, got 0``).

This module imports neither Lightning nor torch: reading and checking a recipe is
fast, and ``occlupose train`` reports a bad recipe before the slow imports.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from occlupose.utils.errors import UserError
from occlupose.utils.io import atomic_write

if TYPE_CHECKING:
    from occlupose.decode import DecodeSettings

__all__ = [
    "AdversarialSettings",
    "ConfigError",
    "DataConfig",
    "DiscriminatorConfig",
    "InvalidValue",
    "LossWeights",
    "ModelConfig",
    "OptimizerSettings",
    "TrainConfig",
    "TrainerConfig",
    "ValidationConfig",
    "apply_overrides",
    "check_init_weights",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
]


class ConfigError(UserError, ValueError):
    """A training recipe is unusable; the message names the file or key and the problem."""

    exit_code = 2


class InvalidValue(ValueError):
    """A settings field holds a value out of its range.

    Raised by the settings dataclasses; a recipe reports it as ``section.key: problem``.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def _at_least(settings: Any, key: str, minimum: float, *, optional: bool = False) -> None:
    value = getattr(settings, key)
    if optional and value is None:
        return
    if not value >= minimum:  # NaN too
        raise InvalidValue(key, f"must be >= {minimum:g}, got {value!r}")


def _positive(settings: Any, key: str) -> None:
    value = getattr(settings, key)
    if not value > 0:
        raise InvalidValue(key, f"must be > 0, got {value!r}")


def _within(settings: Any, key: str, low: float, high: float) -> None:
    value = getattr(settings, key)
    if not low <= value <= high:
        raise InvalidValue(key, f"must be between {low:g} and {high:g}, got {value!r}")


def _one_of(settings: Any, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(settings, key)
    if value not in choices:
        raise InvalidValue(
            key, f"must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}"
        )


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms.

    Attributes:
        heatmap: one weight per output resolution (1/4, 1/2, ...).
        push, pull: associative-embedding weights (HigherHRNet: 1e-3 each, 1/4 output).
        heatmap_foreground: per-pixel weight of a heatmap's peak relative to its
            background (see :func:`~occlupose.engine.losses.heatmap_loss`; 1: published).
        limb: limb-field loss weight.
        limb_foreground: per-pixel weight of a limb relative to the background of its
            field (see :func:`~occlupose.engine.losses.limb_field_loss`; 1: plain MSE).
        completion: weight of the completed heatmaps' loss (per resolution, times ``heatmap``).
        first_stage_targets: what the first-stage heatmaps learn: ``"visible"`` joints,
            ``"complete"`` (every labelled joint), or ``"auto"`` (visible when the model
            has a completion generator, complete otherwise).
    """

    heatmap: tuple[float, ...] = (1.0, 1.0)
    heatmap_foreground: float = 1.0
    push: float = 1e-3
    pull: float = 1e-3
    limb: float = 1.0
    limb_foreground: float = 1.0
    completion: float = 1.0
    first_stage_targets: str = "auto"

    def __post_init__(self) -> None:
        if any(weight < 0 for weight in self.heatmap):
            raise InvalidValue("heatmap", f"weights must be >= 0, got {list(self.heatmap)}")
        for key in ("heatmap_foreground", "limb_foreground"):
            _positive(self, key)
        for key in ("push", "pull", "limb", "completion"):
            _at_least(self, key, 0)
        _one_of(self, "first_stage_targets", ("auto", "visible", "complete"))


@dataclass(frozen=True)
class AdversarialSettings:
    """The adversarial term of heatmap completion.

    Attributes:
        weight: weight of the generator's adversarial loss (0: off, no discriminator step).
        warmup_epochs, warmup_steps: the term starts once both this many epochs and this
            many pose-network optimiser steps are done.
        lr, betas: Adam settings of the discriminator.
    """

    weight: float = 0.0
    warmup_epochs: int = 0
    warmup_steps: int = 0
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        for key in ("weight", "warmup_epochs", "warmup_steps"):
            _at_least(self, key, 0)
        _positive(self, "lr")
        _check_betas(self)


@dataclass(frozen=True)
class OptimizerSettings:
    """Adam + MultiStepLR for the pose network (HigherHRNet: lr 1e-3, steps 200, 260).

    Attributes:
        lr, betas, weight_decay: Adam settings.
        milestones: epochs at which the learning rates are multiplied by ``gamma``
            (the discriminator's too).
        gamma: decay factor.
        accumulate_grad_batches: batches per optimiser step.
        gradient_clip_val: clip the gradient norm of each optimiser to this (0: off).
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = (200, 260)
    gamma: float = 0.1
    accumulate_grad_batches: int = 1
    gradient_clip_val: float = 0.0

    def __post_init__(self) -> None:
        _positive(self, "lr")
        _check_betas(self)
        for key in ("weight_decay", "gradient_clip_val"):
            _at_least(self, key, 0)
        _positive(self, "gamma")
        _at_least(self, "accumulate_grad_batches", 1)
        if any(epoch < 0 for epoch in self.milestones):
            raise InvalidValue("milestones", f"epochs must be >= 0, got {list(self.milestones)}")


def _check_betas(settings: Any) -> None:
    if not all(0 <= beta < 1 for beta in settings.betas):
        raise InvalidValue("betas", f"each must be in [0, 1), got {list(settings.betas)}")


@dataclass
class ModelConfig:
    """The network.

    Attributes:
        preset: a name of :data:`occlupose.models.PRESETS`.
        overrides: keyword arguments for the preset (e.g. ``attention: none``).
        init_weights: an ImageNet HRNet or HigherHRNet/occlupose checkpoint to start
            from (:func:`occlupose.models.load_weights`); None or ``none``: random
            initialisation.
        requires_init_weights: what the recipe starts from (the published recipes: an
            ImageNet HRNet). When set, ``init_weights`` must be given: a file, or ``none``
            to train from random initialisation on purpose (with a warning).
    """

    preset: str = "hrgr_w32_512"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    requires_init_weights: str | None = None


@dataclass
class DataConfig:
    """Where the data is and how samples are made.

    ``layout`` is ``coco``, ``crowdpose`` or ``ochuman`` (standard folder layout under
    ``root``, see :func:`occlupose.data.from_layout`) or ``files`` (explicit
    ``*_annotations`` COCO-format files and ``*_images`` folders).

    Augmentation follows HigherHRNet's parameters, in one of two geometries
    (``geometry``):

    * ``official``: HigherHRNet's exactly. ``crop_scale_range`` is the side of a square
      crop relative to the image's *short* side (the long side is cut), as the test
      resizes the short side; ``max_translation_px`` is its ``MAX_TRANSLATE``: the crop
      centre moves by integer image pixels within ``+-max_translation_px * scale``
      (``scale`` = crop side / 200; 40 gives up to 102 input pixels at 512); padding is
      ignored in the loss; one matrix per output size.
    * ``occlupose``: the crop is relative to the image fitted by its *long* side, so at
      the same zoom people are ``short / long`` times as large (0.70 on average on
      the COCO sample, down to 0.33); ``max_translation_px`` is in input pixels;
      padding counts in the loss (target 0); output maps by the pixel-centre stride
      convention.

    ``heatmap_centres``: ``integer`` (HigherHRNet: each Gaussian on the joint's pixel
    ``int(x), int(y)``) or ``subpixel`` (at the exact position: no quantisation).
    ``keep_train_images``: ``annotated`` (HigherHRNet: every image with any person
    annotation, crowd regions and people without keypoints included) or ``labelled``
    (only images with a labelled, non-crowd person).
    """

    layout: str = "coco"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    train_annotations: str | None = None
    train_images: str | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    input_size: int = 512
    sigma: float = 2.0
    max_rotation: float = 30.0
    crop_scale_range: tuple[float, float] = (0.75, 1.5)
    max_translation_px: float = 40.0
    flip_probability: float = 0.5
    geometry: str = "occlupose"
    heatmap_centres: str = "subpixel"
    keep_train_images: str = "labelled"
    color_jitter: bool = False
    occluder_probability: float = 0.0
    max_occluders: int = 3
    v1_is_hidden: bool = False
    limb_width: float = 1.0
    max_people: int = 30
    batch_size: int = 12
    val_batch_size: int | None = None
    num_workers: int = 4
    val_max_images: int | None = None

    def __post_init__(self) -> None:
        _one_of(self, "geometry", ("official", "occlupose"))
        _one_of(self, "heatmap_centres", ("integer", "subpixel"))
        _one_of(self, "keep_train_images", ("annotated", "labelled"))
        for key in ("input_size", "max_people", "batch_size"):
            _at_least(self, key, 1)
        for key in ("val_batch_size", "val_max_images"):
            _at_least(self, key, 1, optional=True)
        for key in ("max_rotation", "max_translation_px", "max_occluders", "num_workers"):
            _at_least(self, key, 0)
        for key in ("sigma", "limb_width"):
            _positive(self, key)
        for key in ("flip_probability", "occluder_probability"):
            _within(self, key, 0, 1)
        low, high = self.crop_scale_range
        if not 0 < low <= high:
            raise InvalidValue(
                "crop_scale_range", f"must be [low, high] with 0 < low <= high, got {[low, high]}"
            )


@dataclass
class DiscriminatorConfig:
    """The pose discriminator (built only when ``adversarial.weight > 0``)."""

    hidden_channels: int = 64
    num_levels: int = 4
    condition_on_features: bool = False

    def __post_init__(self) -> None:
        for key in ("hidden_channels", "num_levels"):
            _at_least(self, key, 1)


#: ``trainer.accelerator`` values (Lightning's names).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
#: ``trainer.precision`` values (Lightning's, with its older short spellings).
PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "32",
    "16",
    "bf16",
    "64",
)
_MAX_TIME = re.compile(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}")


@dataclass
class TrainerConfig:
    """Lightning trainer settings.

    Attributes:
        max_epochs: training length.
        max_time: wall-clock limit ``"DD:HH:MM:SS"``, or None.
        accelerator: ``auto``, ``gpu``, ``cpu``.
        devices: processes per node (``-1``: all GPUs).
        num_nodes: nodes.
        strategy: ``auto`` (DDP when there are several processes, with unused-parameter
            detection when the discriminator or an unused head needs it) or a Lightning
            strategy name.
        precision: ``32-true``, ``16-mixed``, ``bf16-mixed`` (on CPUs, bf16 is fast only
            where the CPU has bfloat16 instructions: AVX512-BF16 or AMX).
        channels_last: channels-last memory layout for the networks and images (faster
            convolutions on recent CPUs and on GPUs with mixed precision).
        sync_batchnorm: synchronise BatchNorm statistics across processes.
        check_val_every_n_epoch: validation period (0: never).
        checkpoint_every_n_steps: write ``last.ckpt`` every this many optimiser steps
            (0: only at epoch ends).
        log_every_n_steps: logging period.
        logger: ``tensorboard``, ``csv``, ``none`` or ``auto`` (TensorBoard when the
            ``occlupose[tensorboard]`` extra is installed, else CSV).
        progress_bar: show rich progress bars.
        deterministic: ask torch for deterministic kernels (slower on GPU).
    """

    max_epochs: int = 300
    max_time: str | None = None
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    channels_last: bool = False
    sync_batchnorm: bool = False
    check_val_every_n_epoch: int = 10
    checkpoint_every_n_steps: int = 1000
    log_every_n_steps: int = 50
    logger: str = "auto"
    progress_bar: bool = True
    deterministic: bool = False

    def __post_init__(self) -> None:
        _at_least(self, "max_epochs", 1)
        if self.max_time is not None and not _MAX_TIME.fullmatch(self.max_time):
            raise InvalidValue("max_time", f"must be DD:HH:MM:SS, got {self.max_time!r}")
        _one_of(self, "accelerator", ACCELERATORS)
        if self.devices < 1 and self.devices != -1:
            raise InvalidValue("devices", f"must be >= 1, or -1 for all GPUs, got {self.devices}")
        _at_least(self, "num_nodes", 1)
        _one_of(self, "precision", PRECISIONS)
        for key in ("check_val_every_n_epoch", "checkpoint_every_n_steps"):
            _at_least(self, key, 0)
        _at_least(self, "log_every_n_steps", 1)
        _one_of(self, "logger", ("auto", "tensorboard", "csv", "none"))


@dataclass
class ValidationConfig:
    """Validation during training: how people are decoded, and the pose prior.

    The decoding keys are those of :class:`occlupose.decode.DecodeSettings`, with its
    defaults (a test keeps them equal; importing the decoder here would import torch);
    validation keeps the ``max_people`` best people of each image.

    Attributes:
        pose_prior: build a :class:`occlupose.decode.PosePrior` from the fully labelled
            training people, complete the validation people with it, and save it with the
            weights (the Predictor then uses it).
    """

    grouping: str = "auto"
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    nms_kernel: int = 5
    refine: bool = True
    pose_prior: bool = False

    def __post_init__(self) -> None:
        _one_of(self, "grouping", ("auto", "tags", "limbs"))
        _at_least(self, "max_people", 1)
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise InvalidValue(
                "nms_kernel", f"must be a positive odd integer, got {self.nms_kernel}"
            )

    def decode_settings(self, pixel_convention: str = "centres") -> DecodeSettings:
        """The :class:`DecodeSettings` validation decodes with."""
        from occlupose.decode import DecodeSettings

        return DecodeSettings(
            grouping=self.grouping,
            detection_threshold=self.detection_threshold,
            tag_threshold=self.tag_threshold,
            max_people=self.max_people,
            nms_kernel=self.nms_kernel,
            refine=self.refine,
            max_results=self.max_people,
            pixel_convention=pixel_convention,
        )


@dataclass
class TrainConfig:
    """A complete training recipe."""

    name: str = "run"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    adversarial: AdversarialSettings = field(default_factory=AdversarialSettings)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)


# ---------------------------------------------------------------------------- parsing
def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation, converting YAML's spellings."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        # PyYAML reads "1e-3" (no dot) as a string; accept it.
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. precision: 16
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {annotation!r}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}"
        )
    kwargs = {
        name: _coerce(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in values.items()
    }
    try:
        return cls(**kwargs)
    except InvalidValue as error:
        key = f"{where}.{error.key}" if where else error.key
        raise ConfigError(f"{key}: {error.problem}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where or 'config'}: {error}") from None


def config_from_dict(values: dict[str, Any], where: str = "") -> TrainConfig:
    """Build a :class:`TrainConfig` from nested plain data (missing keys keep defaults)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: top level must be a mapping")
    return _build(TrainConfig, values, where)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as nested plain data (tuples become lists), e.g. to write YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to nested data."""
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        parts = key.strip().split(".")
        node = values
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
            else:
                child = node[part] = dict(child)
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({error})") from None
    return values


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML recipe and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    try:
        return config_from_dict(apply_overrides(values, overrides or []))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def check_init_weights(config: TrainConfig) -> None:
    """Stop a recipe that needs initial weights (``model.requires_init_weights``) when
    ``model.init_weights`` is not given; ``none`` is accepted as a deliberate choice.

    Raises:
        ConfigError: one line naming the option.
    """
    model = config.model
    if model.requires_init_weights and model.init_weights is None:
        raise ConfigError(
            f"model.init_weights is not set, and recipe {config.name!r} starts from "
            f"{model.requires_init_weights}: give model.init_weights=PATH, or "
            "model.init_weights=none to train from random initialisation on purpose"
        )


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
