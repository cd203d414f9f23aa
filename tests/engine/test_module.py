"""The training module on a tiny model: loss decreases, resume is exact, GAN gradients."""

from __future__ import annotations

import logging
import math

import lightning as L
import pytest
import torch

from occlupose.data.augment import OfficialAffine
from occlupose.engine.build import prepare_training

NO_AUGMENTATION = {
    "max_rotation": 0.0,
    "crop_scale_range": [1.0, 1.0],
    "max_translation_px": 0.0,
    "flip_probability": 0.0,
}


class _Record(L.Callback):
    """Per training batch: loss, image ids, pose-network step after the batch."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, list[int]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
        self.rows.append((pl_module.pose_steps, loss, batch["image_id"].tolist()))


class _Interrupt(Exception):
    pass


class _KillAfter(L.Callback):
    """Stops the process' training abruptly after a given pose-network step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.pose_steps == self.step:
            raise _Interrupt


def _fit(config, out_dir, callbacks, ckpt_path=None):
    run = prepare_training(config, out_dir, extra_callbacks=callbacks)
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path)
    return run


def test_loss_goes_down_on_a_fixed_batch(tiny_config, synthetic_data, tmp_path):
    # 4 images, no augmentation: every step sees the same batch.
    config = tiny_config(
        synthetic_data,
        data={**NO_AUGMENTATION, "batch_size": 12},
        trainer={"max_epochs": 8, "checkpoint_every_n_steps": 0},
    )
    record = _Record()
    _fit(config, tmp_path, [record])
    losses = [loss for _, loss, _ in record.rows]
    assert len(losses) == 8
    assert all(math.isfinite(x) for x in losses)
    # The prediction layers start near zero (HigherHRNet's init), so the first loss is
    # the targets' own energy, not random outputs; 8 steps still cut it clearly.
    assert losses[-1] < 0.7 * losses[0]
    assert min(losses[4:]) < min(losses[:4])


class _KillAtEpochEnd(L.Callback):
    """Stops training after the checkpoint written at the end of a given epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise _Interrupt


def _resume_config(tiny_config, synthetic_data, checkpoint_every_n_steps):
    # Adversarial term on from step 2, two learning-rate decays, augmentation on: every
    # piece of state (both optimisers, both schedulers, data order) must come back.
    return tiny_config(
        synthetic_data,
        "adversarial.weight=0.1",
        "adversarial.warmup_steps=2",
        "optimizer.milestones=[1, 2]",
        trainer={"max_epochs": 3, "checkpoint_every_n_steps": checkpoint_every_n_steps},
    )


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, synthetic_data, tmp_path_factory):
    record = _Record()
    _fit(_resume_config(tiny_config, synthetic_data, 0), tmp_path_factory.mktemp("full"), [record])
    assert [step for step, _, _ in record.rows] == list(range(1, 10))  # 3 epochs x 3 steps
    return record.rows


@pytest.mark.parametrize(
    ("killer", "done", "every_n_steps"),
    [
        (_KillAfter(4), 4, 1),  # in the middle of the second epoch
        (_KillAfter(3), 3, 1),  # after the last batch of the first epoch
        (_KillAtEpochEnd(1), 6, 0),  # after the end-of-epoch checkpoint
    ],
    ids=["mid-epoch", "last-batch", "epoch-end"],
)
def test_resumed_run_continues_exactly(
    tiny_config, synthetic_data, tmp_path, uninterrupted, killer, done, every_n_steps
):
    config = _resume_config(tiny_config, synthetic_data, every_n_steps)
    first = _Record()
    with pytest.raises(_Interrupt):
        _fit(config, tmp_path, [first, killer])
    assert first.rows == uninterrupted[:done]

    resumed = _Record()
    run = _fit(config, tmp_path, [resumed], ckpt_path=tmp_path / "checkpoints" / "last.ckpt")
    # The same steps on the same images with the same losses, from step k + 1 to the end.
    assert [r[0] for r in resumed.rows] == [r[0] for r in uninterrupted[done:]]
    assert [r[2] for r in resumed.rows] == [r[2] for r in uninterrupted[done:]]
    for (_, got, _), (_, want, _) in zip(resumed.rows, uninterrupted[done:], strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)  # bitwise on this machine
    assert run.module.pose_steps == 9
    assert run.trainer.current_epoch == 3


class _GradientProbe(L.Callback):
    """At every optimiser step: which optimiser, and which modules hold gradients."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        def grad_norm(module):
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            return None if not grads else float(sum(g.abs().sum() for g in grads))

        disc = pl_module.discriminator
        self.steps.append(
            {
                "optimizer": trainer.optimizers.index(optimizer),
                "pose_steps": pl_module.pose_steps,
                "generator": grad_norm(pl_module.model.generator.predict),
                "discriminator": None if disc is None else grad_norm(disc),
            }
        )


def test_adversarial_gradients_reach_both_players_only_after_warmup(
    tiny_config, synthetic_data, tmp_path
):
    # Completion loss off: the generator's only gradient is the adversarial one.
    config = tiny_config(
        synthetic_data,
        "adversarial.weight=1.0",
        "adversarial.warmup_steps=2",
        "loss.completion=0.0",
        trainer={"max_epochs": 2, "checkpoint_every_n_steps": 0},
    )
    probe = _GradientProbe()
    _fit(config, tmp_path, [probe])
    warmup = [s for s in probe.steps if s["pose_steps"] < 2]
    after = [s for s in probe.steps if s["pose_steps"] >= 2]
    # Warm-up: only the pose optimiser steps; the discriminator has no gradient at all,
    # and nor has the generator (nothing but the adversarial term uses its output).
    assert [s["optimizer"] for s in warmup] == [0, 0]
    assert all(s["discriminator"] is None and not s["generator"] for s in warmup)
    # Afterwards: pose step then discriminator step per batch (4 batches).
    assert [s["optimizer"] for s in after] == [0, 1] * 4
    for pose_step, disc_step in zip(after[::2], after[1::2], strict=True):
        assert pose_step["generator"] > 0
        assert pose_step["discriminator"] is None  # frozen during the generator update
        assert disc_step["discriminator"] > 0


def test_without_adversarial_term_there_is_no_discriminator(tiny_config, synthetic_data, tmp_path):
    config = tiny_config(synthetic_data, trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0})
    probe = _GradientProbe()
    run = _fit(config, tmp_path, [probe])
    assert run.module.discriminator is None
    assert len(run.trainer.optimizers) == 1
    assert [s["optimizer"] for s in probe.steps] == [0, 0, 0]


def test_gradient_accumulation_steps_every_n_batches(tiny_config, synthetic_data, tmp_path):
    config = tiny_config(
        synthetic_data,
        "optimizer.accumulate_grad_batches=2",
        trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0},
    )
    probe = _GradientProbe()
    run = _fit(config, tmp_path, [probe])
    # 3 batches: steps after batch 2 and after the last batch of the epoch.
    assert run.module.pose_steps == 2 and len(probe.steps) == 2


def test_gradient_clipping_bounds_the_norm(tiny_config, synthetic_data, tmp_path):
    config = tiny_config(
        synthetic_data,
        "optimizer.gradient_clip_val=0.01",
        trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0},
    )
    run = prepare_training(config, tmp_path)
    norms: list[float] = []
    original = run.module.on_before_optimizer_step

    def clip_and_measure(optimizer):
        original(optimizer)  # the module clips here
        grads = [p.grad for p in run.module.model.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    run.module.on_before_optimizer_step = clip_and_measure
    run.trainer.fit(run.module, datamodule=run.datamodule)
    assert len(norms) == 3 and max(norms) <= 0.01 * (1 + 1e-4)


def test_channels_last_trains_the_same_network(tiny_config, synthetic_data, tmp_path):
    # Same seed, same data: the memory layout changes how convolutions run, not what
    # they compute, so the loss curves agree to float rounding.
    curves = []
    for channels_last in (False, True):
        config = tiny_config(
            synthetic_data,
            f"trainer.channels_last={str(channels_last).lower()}",
            trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0},
        )
        record = _Record()
        run = _fit(config, tmp_path / str(channels_last), [record])
        conv = next(m for m in run.module.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        curves.append([loss for _, loss, _ in record.rows])
    assert len(curves[0]) == 3
    assert curves[1] == pytest.approx(curves[0], rel=1e-3)


def test_foreground_weight_raises_the_heatmap_loss(tiny_config, synthetic_data, tmp_path):
    # The prediction layers start near zero, so every peak pixel is an error: weighting
    # the peaks 10x must raise the first heatmap loss, and by less than 10x.
    first = []
    for weight in (1.0, 10.0):
        config = tiny_config(
            synthetic_data,
            f"loss.heatmap_foreground={weight}",
            trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0},
        )
        record = _Record()
        _fit(config, tmp_path / str(weight), [record])
        first.append(record.rows[0][1])
    assert first[0] < first[1] < 10 * first[0]


class _BatchTypes(L.Callback):
    def __init__(self) -> None:
        self.types: list[tuple] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.types.append(
            (batch["image"].dtype, batch["heatmaps"][0].dtype, batch["masks"][0].dtype)
        )


def test_compact_samples_reach_the_network_as_float32(tiny_config, synthetic_data, tmp_path):
    config = tiny_config(synthetic_data, trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0})
    run = prepare_training(config, tmp_path)
    # The datasets hand out uint8 images and float16 targets ...
    assert run.datamodule.train_dataset.compact and run.datamodule.val_dataset is None
    probe = _BatchTypes()
    run.trainer.callbacks.append(probe)
    run.trainer.fit(run.module, datamodule=run.datamodule)
    # ... and the module gets float32 on its device.
    assert probe.types == [(torch.float32, torch.float32, torch.float32)] * 3


def test_a_generator_without_completion_targets_is_warned_about(
    tiny_config, synthetic_data, tmp_path, caplog
):
    with caplog.at_level(logging.WARNING, logger="occlupose.engine.build"):
        prepare_training(tiny_config(synthetic_data), tmp_path / "ok")
    assert not caplog.records
    cases = {
        "loss.completion is 0": ["loss.completion=0.0"],
        "generator has nothing to complete": [
            "data.v1_is_hidden=false",
            "data.occluder_probability=0.0",
        ],
    }
    for i, (message, overrides) in enumerate(cases.items()):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="occlupose.engine.build"):
            prepare_training(tiny_config(synthetic_data, *overrides), tmp_path / str(i))
        assert [message in r.getMessage() for r in caplog.records] == [True]


def test_the_official_geometry_trains(tiny_config, synthetic_data, tmp_path):
    config = tiny_config(
        synthetic_data,
        "data.geometry=official",
        "data.heatmap_centres=integer",
        "data.keep_train_images=annotated",
        trainer={"max_epochs": 1, "checkpoint_every_n_steps": 0},
    )
    record = _Record()
    run = _fit(config, tmp_path, [record])
    dataset = run.datamodule.train_dataset
    assert dataset.augment == OfficialAffine(
        scale_range=(0.75, 1.5), max_rotation=30.0, max_translation=40.0, flip_probability=0.5
    )
    assert dataset.heatmap_centres == "integer"
    assert len(record.rows) == 3 and all(math.isfinite(loss) for _, loss, _ in record.rows)
