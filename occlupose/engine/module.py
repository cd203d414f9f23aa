"""The Lightning module that trains HRGR-Net and the HigherHRNet baseline.

Thin glue: the maths lives in :mod:`occlupose.engine.losses`, decoding and scoring
in :mod:`occlupose.engine.validation`. Optimisation is manual, with one block per
optimiser as in Lightning's GAN example, because the adversarial term needs two
optimisers (pose network, discriminator) stepping on different losses.

Per batch (B images, targets from :class:`~occlupose.data.bottom_up.BottomUpPoseDataset`):

* heatmap loss at every output resolution, masked by the ignore masks. HRGR-Net
  (with a completion generator): the first-stage heatmaps learn the *visible* joints
  and the completed heatmaps (completion loss) every labelled joint. HigherHRNet
  (no generator): the heatmaps learn every labelled joint, as published.
* associative-embedding push/pull on the 1/4 tags and/or the limb-field loss,
  for the heads the model has.
* after the warm-up, the adversarial loss: the discriminator learns to tell the
  complete target heatmaps from the generated ones and the pose network learns to
  fool it. Before the warm-up ends (or with weight 0) the discriminator is not run
  and receives no gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.optim import Adam, Optimizer
from torch.optim.lr_scheduler import MultiStepLR

from occlupose.decode.prior import PosePrior
from occlupose.engine.config import AdversarialSettings, LossWeights, OptimizerSettings
from occlupose.engine.losses import (
    associative_embedding_loss,
    discriminator_loss,
    generator_adversarial_loss,
    heatmap_loss,
    limb_field_loss,
)
from occlupose.engine.validation import PoseValidator, decode_batch, metrics_for_logging
from occlupose.models.completion import PoseDiscriminator
from occlupose.models.hrgr import HRGRNet
from occlupose.structures import PoseOutputs
from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.person import Person

__all__ = ["AdversarialSettings", "LossWeights", "OptimizerSettings", "PoseTrainingModule"]


class PoseTrainingModule(L.LightningModule):
    """Trains a :class:`~occlupose.models.HRGRNet` (HigherHRNet included).

    Args:
        model: the pose network.
        keypoint_set: its keypoints (validation decoding).
        losses: loss weights.
        optimizer: pose-network optimiser and schedule.
        discriminator: the pose discriminator, needed when ``adversarial.weight > 0``.
        adversarial: adversarial term settings.
        validator: scores validation batches (None: validation only runs the network).
        pose_prior: reference poses that complete the people found in validation; saved
            in checkpoints so that the Predictor completes people the same way.
        channels_last: keep the networks and images in channels-last memory layout
            (faster convolutions with oneDNN on CPUs and with tensor cores on GPUs;
            the numbers computed are the same).
        hparams: plain data saved in checkpoints to rebuild the run (e.g. the config).
    """

    def __init__(
        self,
        model: HRGRNet,
        *,
        keypoint_set: KeypointSet,
        losses: LossWeights = LossWeights(),
        optimizer: OptimizerSettings = OptimizerSettings(),
        discriminator: PoseDiscriminator | None = None,
        adversarial: AdversarialSettings = AdversarialSettings(),
        validator: PoseValidator | None = None,
        pose_prior: PosePrior | None = None,
        channels_last: bool = False,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if adversarial.weight > 0 and discriminator is None:
            raise ValueError("adversarial.weight > 0 needs a discriminator")
        if len(losses.heatmap) != len(model.output_strides):
            raise ValueError(
                f"{len(losses.heatmap)} heatmap loss weights for a model with "
                f"{len(model.output_strides)} output resolutions {model.output_strides}"
            )
        self.automatic_optimization = False
        self.model = model
        # Without the adversarial term the discriminator is not kept: no optimiser, no state.
        self.discriminator = discriminator if adversarial.weight > 0 else None
        self.keypoint_set = keypoint_set
        self.losses = losses
        self.optim = optimizer
        self.adversarial = adversarial
        self.validator = validator
        self.pose_prior = pose_prior
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=self.memory_format)
            if self.discriminator is not None:
                self.discriminator.to(memory_format=self.memory_format)
        self.pose_steps = 0  # optimiser steps of the pose network (global_step counts both)
        self._val_people: dict[int, list[Person]] = {}
        self.save_hyperparameters(
            {
                "losses": asdict(losses),
                "optimizer": asdict(optimizer),
                "adversarial": asdict(adversarial),
                "keypoint_set": keypoint_set.name,
                **(hparams or {}),
            }
        )

    # ------------------------------------------------------------------ losses
    def adversarial_active(self) -> bool:
        """Whether the adversarial term is on for the current batch."""
        if self.discriminator is None:
            return False
        return (
            self.current_epoch >= self.adversarial.warmup_epochs
            and self.pose_steps >= self.adversarial.warmup_steps
        )

    def pose_losses(self, outputs: PoseOutputs, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The weighted loss terms of the pose network (without the adversarial one)."""
        masks, weights = batch["masks"], batch["joint_weights"]
        complete = batch["complete_heatmaps"]
        has_generator = outputs.completed is not None
        first = self.losses.first_stage_targets
        use_visible = first == "visible" or (first == "auto" and has_generator)
        first_targets = batch["heatmaps"] if use_visible else complete

        def per_resolution(preds: list[Tensor], targets: list[Tensor]) -> Tensor:
            return sum(
                w * heatmap_loss(p.float(), t, m, weights, self.losses.heatmap_foreground)
                for w, p, t, m in zip(self.losses.heatmap, preds, targets, masks, strict=True)
            )

        terms = {"heatmap": per_resolution(outputs.heatmaps, first_targets)}
        if has_generator and self.losses.completion > 0:
            terms["completion"] = self.losses.completion * per_resolution(
                outputs.completed, complete
            )
        if outputs.tags is not None and (self.losses.push > 0 or self.losses.pull > 0):
            if "joints" not in batch:
                raise KeyError(
                    "the model has a tag head but the batch has no 'joints'; build the "
                    "dataset with with_tags=True (or set loss.push and loss.pull to 0)"
                )
            push, pull = associative_embedding_loss(outputs.tags.float(), batch["joints"])
            terms["push"] = self.losses.push * push.mean()
            terms["pull"] = self.losses.pull * pull.mean()
        if outputs.limbs is not None and self.losses.limb > 0:
            if "limb_fields" not in batch:
                raise KeyError(
                    "the model has a limb head but the batch has no 'limb_fields'; build the "
                    "dataset with with_limbs=True (or set loss.limb to 0)"
                )
            terms["limb"] = self.losses.limb * limb_field_loss(
                outputs.limbs.float(),
                batch["limb_fields"],
                masks[0],
                self.losses.limb_foreground,
            )
        return terms

    def _images(self, batch: dict[str, Any]) -> Tensor:
        return batch["image"].contiguous(memory_format=self.memory_format)

    def _judge(self, heatmaps: Tensor, features: Tensor) -> Tensor:
        assert self.discriminator is not None
        if self.discriminator.feature_channels > 0:
            return self.discriminator(heatmaps.float(), features.float())
        return self.discriminator(heatmaps.float())

    @staticmethod
    def _generated(outputs: PoseOutputs) -> Tensor:
        return outputs.final_heatmaps[0]  # the discriminator judges the 1/4 maps

    # ---------------------------------------------------------------- training
    def _optimizers(self) -> tuple[Any, Any | None]:
        optimizers = self.optimizers()
        if isinstance(optimizers, list):
            return optimizers[0], optimizers[1]
        return optimizers, None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        opt_pose, opt_disc = self._optimizers()
        accumulate = self.optim.accumulate_grad_batches
        step_now = (batch_idx + 1) % accumulate == 0 or self.trainer.is_last_batch
        adversarial = self.adversarial_active()

        # Pose network. Toggling freezes the discriminator, so the generator's
        # adversarial loss leaves no gradients on it.
        if opt_disc is not None:
            self.toggle_optimizer(opt_pose)
        outputs = self.model(self._images(batch))
        terms = self.pose_losses(outputs, batch)
        if adversarial:
            fake_logits = self._judge(self._generated(outputs), outputs.features)
            terms["adversarial"] = self.adversarial.weight * generator_adversarial_loss(fake_logits)
        loss = torch.stack(list(terms.values())).sum()
        self.manual_backward(loss / accumulate)
        if step_now:
            opt_pose.step()
            opt_pose.zero_grad(set_to_none=True)
        if opt_disc is not None:
            self.untoggle_optimizer(opt_pose)

        # Discriminator: complete target heatmaps are real, generated ones fake.
        if adversarial:
            self.toggle_optimizer(opt_disc)
            features = outputs.features.detach()
            real_logits = self._judge(batch["complete_heatmaps"][0], features)
            fake_logits = self._judge(self._generated(outputs).detach(), features)
            disc_loss = discriminator_loss(real_logits, fake_logits)
            self.manual_backward(disc_loss / accumulate)
            if step_now:
                opt_disc.step()
                opt_disc.zero_grad(set_to_none=True)
            self.untoggle_optimizer(opt_disc)
            terms["discriminator"] = disc_loss

        if step_now:
            self.pose_steps += 1
        batch_size = batch["image"].shape[0]
        logged = {f"train/{name}": value.detach() for name, value in terms.items()}
        logged["train/loss"] = loss.detach()
        # Under DDP the epoch means are averaged over processes (a few scalars per step).
        sync = self.trainer.world_size > 1
        self.log_dict(logged, on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=sync)
        self.log("train/lr", opt_pose.param_groups[0]["lr"], on_step=True, batch_size=batch_size)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=batch_size)
        return loss.detach()

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # Runs after AMP has unscaled the gradients, so the threshold is in true units.
        if self.optim.gradient_clip_val > 0:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.optim.gradient_clip_val,
                gradient_clip_algorithm="norm",
            )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Manual optimisation: Lightning does not step schedulers. Stepping them up to the
        # current epoch before every batch (rather than once per epoch end) is idempotent,
        # so a run resumed from any checkpoint (Lightning skips on_train_epoch_start when it
        # restarts inside an epoch) has the learning rate of an uninterrupted one.
        for scheduler in self._schedulers():
            while scheduler.last_epoch < self.current_epoch:
                with warnings.catch_warnings():
                    # After a resume the first scheduler step precedes this process's first
                    # optimiser step; torch warns about that order, which is intended here.
                    warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                    scheduler.step()

    def _schedulers(self) -> Iterator[MultiStepLR]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return iter(())
        return iter(schedulers if isinstance(schedulers, list) else [schedulers])

    def configure_optimizers(self) -> Any:
        o = self.optim
        pose = Adam(self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        optimizers: list[Optimizer] = [pose]
        if self.discriminator is not None:
            optimizers.append(
                Adam(
                    self.discriminator.parameters(),
                    lr=self.adversarial.lr,
                    betas=self.adversarial.betas,
                )
            )
        schedulers = [MultiStepLR(opt, list(o.milestones), gamma=o.gamma) for opt in optimizers]
        return optimizers, schedulers

    # -------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_people = {}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.validator is None:
            return
        outputs = self.model(self._images(batch))
        people = decode_batch(
            outputs,
            batch["matrix"],
            batch["image_id"],
            self.keypoint_set,
            input_size=batch["image"].shape[-1],
            settings=self.validator.settings,
            pose_prior=self.pose_prior,
        )
        self._val_people.update(people)

    def on_validation_epoch_end(self) -> None:
        if self.validator is None or self.trainer.sanity_checking:
            return
        people = self._val_people
        if self.trainer.world_size > 1:
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, people)
            people = {k: v for part in gathered for k, v in part.items()}
        metrics: dict[str, float] = {}
        if self.trainer.is_global_zero:
            tag = f"epoch{self.current_epoch:04d}_step{self.pose_steps:07d}"
            metrics = metrics_for_logging(self.validator.evaluate(people, tag=tag))
        metrics = self.trainer.strategy.broadcast(metrics, src=0)
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name == "val/AP")
        self._val_people = {}

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The "occlupose" block also makes the checkpoint self-describing for
        # ``Predictor.from_pretrained`` (preset, keypoint set, overrides, input size).
        meta: dict[str, Any] = {
            "pose_steps": self.pose_steps,
            "keypoint_set": self.keypoint_set.name,
        }
        config = self.hparams.get("config")
        if config:
            meta.update(
                preset=config["model"]["preset"],
                model_kwargs=dict(config["model"].get("overrides") or {}),
                input_size=int(config["data"]["input_size"]),
                # How the targets were made decides how the Predictor decodes.
                heatmap_centres=config["data"].get("heatmap_centres", "subpixel"),
            )
        if self.pose_prior is not None:
            meta.update(self.pose_prior.metadata())
        checkpoint["occlupose"] = meta

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.pose_steps = int(checkpoint.get("occlupose", {}).get("pose_steps", 0))
