"""The one place where a :class:`~occlupose.engine.config.TrainConfig` becomes objects.

``prepare_training(config, out_dir)`` reads the data, builds the model (optionally
from official HRNet / HigherHRNet weights), the training module, the data module and
the Lightning trainer. The CLI (``occlupose train``) and the benchmarks call it;
everything below it takes explicit arguments.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from occlupose.data.augment import ColorJitter, OfficialAffine, RandomAffine
from occlupose.data.datasets import KeypointDataset, from_layout, load_coco_keypoints
from occlupose.data.occluders import SyntheticOccluders
from occlupose.decode import PosePrior, pixel_convention_for
from occlupose.engine.checkpoint import AtomicCheckpointIO, RunCheckpoints
from occlupose.engine.config import (
    ConfigError,
    DataConfig,
    TrainConfig,
    TrainerConfig,
    check_init_weights,
    config_to_dict,
)
from occlupose.engine.datamodule import PoseDataModule
from occlupose.engine.module import PoseTrainingModule
from occlupose.engine.trace import TrainingTrace
from occlupose.engine.validation import PoseValidator
from occlupose.models import PRESETS, HRGRNet, PoseDiscriminator, create_model, load_weights
from occlupose.structures.keypoint_set import KeypointSet

__all__ = [
    "TrainingRun",
    "build_datasets",
    "build_model",
    "build_pose_prior",
    "build_trainer",
    "check_init_weights",
    "load_split",
    "prepare_training",
    "tensorboard_installed",
]

logger = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """Everything ``trainer.fit(module, datamodule=datamodule, ckpt_path=...)`` needs."""

    config: TrainConfig
    out_dir: Path
    module: PoseTrainingModule
    datamodule: PoseDataModule
    trainer: L.Trainer
    keypoint_set: KeypointSet


# ------------------------------------------------------------------------------ data
def _require(path: str | None, key: str, what: str) -> Path:
    if not path:
        raise ConfigError(f"data.{key} is not set; it must point to {what}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"data.{key}: {resolved} does not exist; expected {what}")
    return resolved


def load_split(data: DataConfig, split: str, *, for_training: bool) -> KeypointDataset:
    """Read the ``train`` or ``val`` split described by ``data``.

    For training, images are kept as ``data.keep_train_images`` says (``annotated``:
    any person annotation, as HigherHRNet; ``labelled``: a labelled, non-crowd person);
    for validation every image is kept.

    Raises:
        ConfigError: a required path is not set.
        FileNotFoundError: a path does not exist (the message names it and what was
            expected there).
    """
    if data.layout == "files":
        annotations = _require(
            getattr(data, f"{split}_annotations"),
            f"{split}_annotations",
            "a COCO-format person-keypoints JSON file",
        )
        images = _require(
            getattr(data, f"{split}_images"),
            f"{split}_images",
            "the folder the JSON's image file_name entries are relative to",
        )
        return load_coco_keypoints(annotations, images, **_kept_images(data, for_training))
    root = _require(
        data.root, "root", f"the {data.layout} dataset folder (see occlupose.data.LAYOUTS)"
    )
    name = data.train_split if split == "train" else data.val_split
    try:
        return from_layout(data.layout, root, name, **_kept_images(data, for_training))
    except KeyError as error:
        raise ConfigError(f"data.layout: {error.args[0]}; or use layout: files") from None


def _kept_images(data: DataConfig, for_training: bool) -> dict[str, bool]:
    return {
        "drop_images_without_people": for_training and data.keep_train_images == "labelled",
        "drop_images_without_annotations": for_training and data.keep_train_images == "annotated",
    }


def build_datasets(
    data: DataConfig,
    model: HRGRNet,
    keypoint_set: KeypointSet,
    train_records: KeypointDataset,
    val_records: KeypointDataset | None,
    *,
    with_tags: bool,
    with_limbs: bool,
    seed: int,
    compact: bool = True,
):
    """Training (augmented, seeded) and validation (fitted, no randomness) datasets.

    ``compact`` samples (uint8 images, float16 targets, uint8 masks) cross the
    worker-to-trainer queue and the host-to-GPU copy at a third of the float32 size;
    :meth:`PoseDataModule.on_after_batch_transfer` restores float32 on the device.
    """
    from occlupose.data.bottom_up import BottomUpPoseDataset

    strides = model.output_strides
    sigmas = (data.sigma,) * len(strides)
    low, high = data.crop_scale_range
    augment: RandomAffine | OfficialAffine
    if data.geometry == "official":
        augment = OfficialAffine(
            scale_range=(low, high),
            max_rotation=data.max_rotation,
            max_translation=data.max_translation_px,
            flip_probability=data.flip_probability,
        )
    else:
        augment = RandomAffine(
            scale_range=(1.0 / high, 1.0 / low),
            max_rotation=data.max_rotation,
            max_translation=data.max_translation_px / data.input_size,
            flip_probability=data.flip_probability,
        )
    occluders = (
        SyntheticOccluders(probability=data.occluder_probability, max_occluders=data.max_occluders)
        if data.occluder_probability > 0
        else None
    )
    train = BottomUpPoseDataset(
        train_records,
        keypoint_set,
        input_size=data.input_size,
        output_strides=strides,
        sigmas=sigmas,
        augment=augment,
        color_jitter=ColorJitter() if data.color_jitter else None,
        occluders=occluders,
        limb_width=data.limb_width,
        max_people=data.max_people,
        with_limbs=with_limbs,
        with_tags=with_tags,
        v1_is_hidden=data.v1_is_hidden,
        heatmap_centres=data.heatmap_centres,
        seed=seed,
        compact=compact,
    )
    val = None
    if val_records is not None:
        val = BottomUpPoseDataset(
            val_records,
            keypoint_set,
            input_size=data.input_size,
            output_strides=strides,
            sigmas=sigmas,
            max_people=data.max_people,
            with_limbs=False,
            with_tags=False,
            compact=compact,
        )
    return train, val


# ----------------------------------------------------------------------------- model
def build_pose_prior(records: KeypointDataset, *, seed: int = 0) -> PosePrior:
    """A :class:`PosePrior` of the people in ``records`` with every keypoint labelled
    (hidden ones included: where they are is what the prior should supply)."""
    poses = [
        keypoints[:, :2]
        for record in records.records
        for keypoints, crowd in zip(record.keypoints, record.iscrowd, strict=True)
        if not crowd and (keypoints[:, 2] > 0).all()
    ]
    if not poses:
        raise ConfigError(
            f"validation.pose_prior: no person in {records.name} has all "
            f"{records.keypoint_set.num_keypoints} keypoints labelled"
        )
    prior = PosePrior(np.stack(poses), seed=seed)
    logger.info("pose prior: %d of %d fully labelled training people", len(prior.poses), len(poses))
    return prior


def build_model(config: TrainConfig, keypoint_set: KeypointSet) -> HRGRNet:
    """The preset for ``keypoint_set``, initialised from ``model.init_weights`` if set
    (``none``: random initialisation, with a warning when the recipe expects weights)."""
    if config.model.preset not in PRESETS:
        raise ConfigError(
            f"model.preset: unknown preset {config.model.preset!r}; presets: {', '.join(PRESETS)}"
        )
    try:
        model = create_model(
            config.model.preset, keypoint_set=keypoint_set, **config.model.overrides
        )
    except TypeError as error:
        raise ConfigError(f"model.overrides: {error}") from None
    check_init_weights(config)
    weights = config.model.init_weights
    if weights is None or weights.strip().lower() == "none":
        if config.model.requires_init_weights:
            logger.warning(
                "model.init_weights=none: training %s from random initialisation; the "
                "recipe %r starts from %s",
                config.model.preset,
                config.name,
                config.model.requires_init_weights,
            )
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"model.init_weights: {path} does not exist; expected an ImageNet HRNet or a "
                "HigherHRNet/occlupose checkpoint (.pth/.ckpt)"
            )
        report = load_weights(model, path)
        logger.info(report.summary())
    return model


# --------------------------------------------------------------------------- trainer
def tensorboard_installed() -> bool:
    """Whether the ``tensorboard`` package (the ``occlupose[tensorboard]`` extra) imports."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _make_logger(trainer: TrainerConfig, out_dir: Path) -> Logger | bool:
    choice = trainer.logger
    if choice == "none":
        return False
    if choice == "auto":
        choice = "tensorboard" if tensorboard_installed() else "csv"
    elif choice == "tensorboard" and not tensorboard_installed():
        raise ConfigError(
            "trainer.logger: tensorboard is not installed; pip install 'occlupose[tensorboard]', "
            "or use trainer.logger=csv (auto picks CSV without it)"
        )
    # Fixed folders (no version_N): a resumed run appends to the logs of the run it continues.
    if choice == "tensorboard":
        return TensorBoardLogger(save_dir=out_dir, name="tensorboard", version="")
    return CSVLogger(save_dir=out_dir, name="csv", version="")


def build_trainer(
    trainer: TrainerConfig,
    out_dir: Path,
    *,
    find_unused_parameters: bool,
    extra_callbacks: list[Callback] | None = None,
) -> L.Trainer:
    """A Lightning trainer with atomic checkpoints, resumable data and our callbacks."""
    if trainer.sync_batchnorm and (trainer.accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError("trainer.sync_batchnorm needs GPUs (torch's SyncBatchNorm is CUDA-only)")
    strategy = trainer.strategy
    if strategy == "auto" and (trainer.devices != 1 or trainer.num_nodes > 1):
        strategy = "ddp_find_unused_parameters_true" if find_unused_parameters else "ddp"
    trace = TrainingTrace.from_environment()
    # The trace first: a batch is recorded before the checkpoint written after it.
    callbacks: list[Callback] = [] if trace is None else [trace]
    callbacks.append(
        RunCheckpoints(
            out_dir / "checkpoints",
            every_n_steps=trainer.checkpoint_every_n_steps,
            monitor="val/AP" if trainer.check_val_every_n_epoch > 0 else None,
        )
    )
    if trainer.progress_bar:
        callbacks.append(RichProgressBar())
    callbacks += extra_callbacks or []
    validate = trainer.check_val_every_n_epoch > 0
    return L.Trainer(
        default_root_dir=out_dir,
        max_epochs=trainer.max_epochs,
        max_time=trainer.max_time,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        num_nodes=trainer.num_nodes,
        strategy=strategy,
        precision=trainer.precision,
        sync_batchnorm=trainer.sync_batchnorm,
        check_val_every_n_epoch=trainer.check_val_every_n_epoch if validate else 1,
        limit_val_batches=None if validate else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=trainer.log_every_n_steps,
        logger=_make_logger(trainer, out_dir),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO(trace=trace)],
        enable_checkpointing=False,  # RunCheckpoints writes the checkpoints
        enable_progress_bar=trainer.progress_bar,
        enable_model_summary=trainer.progress_bar,
        use_distributed_sampler=False,  # PoseDataModule shards the data itself
        deterministic=trainer.deterministic,
    )


# ------------------------------------------------------------------------------- all
def prepare_training(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    extra_callbacks: list[Callback] | None = None,
) -> TrainingRun:
    """Build data, model, module and trainer for ``config``; outputs go to ``out_dir``."""
    out_dir = Path(out_dir)
    check_init_weights(config)  # before the (slow) data loading
    L.seed_everything(config.seed, workers=True, verbose=False)
    train_records = load_split(config.data, "train", for_training=True)
    validate = config.trainer.check_val_every_n_epoch > 0
    val_records = load_split(config.data, "val", for_training=False) if validate else None
    keypoint_set = train_records.keypoint_set
    if val_records is not None and val_records.keypoint_set.num_keypoints != (
        keypoint_set.num_keypoints
    ):
        raise ConfigError(
            f"validation data has {val_records.keypoint_set.num_keypoints} keypoints, "
            f"training data {keypoint_set.num_keypoints}"
        )
    if val_records is not None and config.data.val_max_images is not None:
        val_records = KeypointDataset(
            name=val_records.name,
            keypoint_set=val_records.keypoint_set,
            records=list(val_records.records[: config.data.val_max_images]),
            annotation_file=val_records.annotation_file,
            image_dir=val_records.image_dir,
        )

    model = build_model(config, keypoint_set)
    losses = config.loss
    with_tags = model.tag_channels > 0 and (losses.push > 0 or losses.pull > 0)
    with_limbs = model.limb_head is not None and losses.limb > 0
    if model.generator is not None and losses.completion <= 0:
        # Legal (e.g. a purely adversarial generator), but inference decodes the
        # generator's output, so this is almost always a forgotten override.
        logger.warning(
            "the model has a completion generator but loss.completion is %g: the completed "
            "heatmaps, which inference decodes, learn only from the adversarial term",
            losses.completion,
        )
    if (
        model.generator is not None
        and not config.data.v1_is_hidden
        and config.data.occluder_probability <= 0
    ):
        logger.warning(
            "data.v1_is_hidden is false and data.occluder_probability is 0: no joint is "
            "hidden in the visible heatmaps, so the generator has nothing to complete"
        )
    train_set, val_set = build_datasets(
        config.data,
        model,
        keypoint_set,
        train_records,
        val_records,
        with_tags=with_tags,
        with_limbs=with_limbs,
        seed=config.seed,
    )

    discriminator = None
    if config.adversarial.weight > 0:
        d = config.discriminator
        discriminator = PoseDiscriminator(
            keypoint_set.num_keypoints,
            feature_channels=model.feature_info[0]["num_chs"] if d.condition_on_features else 0,
            hidden_channels=d.hidden_channels,
            num_levels=d.num_levels,
        )
    pose_prior = None
    if config.validation.pose_prior:
        pose_prior = build_pose_prior(train_records, seed=config.seed)
    validator = None
    if val_records is not None:
        validator = PoseValidator(
            val_records.annotation_file,
            keypoint_set,
            image_ids=[r.image_id for r in val_records.records],
            settings=config.validation.decode_settings(
                pixel_convention_for(config.data.heatmap_centres)
            ),
            report_dir=out_dir / "validation",
        )
    module = PoseTrainingModule(
        model,
        keypoint_set=keypoint_set,
        losses=losses,
        optimizer=config.optimizer,
        discriminator=discriminator,
        adversarial=config.adversarial,
        validator=validator,
        pose_prior=pose_prior,
        channels_last=config.trainer.channels_last,
        hparams={"config": config_to_dict(config)},
    )
    datamodule = PoseDataModule(
        train_set,
        val_set,
        batch_size=config.data.batch_size,
        val_batch_size=config.data.val_batch_size,
        num_workers=config.data.num_workers,
        seed=config.seed,
        pin_memory=torch.cuda.is_available() and config.trainer.accelerator != "cpu",
    )
    # DDP must look for unused parameters when some never get a gradient in a step:
    # the discriminator (warm-up, generator step) or a head whose loss is switched off.
    unused_heads = (
        (model.tag_channels > 0 and not with_tags)
        or (model.limb_head is not None and not with_limbs)
        or (model.generator is not None and losses.completion <= 0 and discriminator is None)
    )
    trainer = build_trainer(
        config.trainer,
        out_dir,
        find_unused_parameters=discriminator is not None or unused_heads,
        extra_callbacks=extra_callbacks,
    )
    return TrainingRun(config, out_dir, module, datamodule, trainer, keypoint_set)
