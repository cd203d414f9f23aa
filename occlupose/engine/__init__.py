"""Training: losses, the Lightning module, resumable data loading, checkpoints, recipes.

Quick use::

    from occlupose.engine import load_config, prepare_training

    run = prepare_training(load_config("configs/hrgr_small_synthetic.yaml"), "runs/demo")
    run.trainer.fit(run.module, datamodule=run.datamodule)

or ``occlupose train configs/hrgr_small_synthetic.yaml`` (see ``docs/training.md``).
Every name is imported on first use: reading a recipe (``occlupose.engine.config``)
imports neither torch nor Lightning, and the losses do not import Lightning.
"""

_LOSSES = (
    "associative_embedding_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "heatmap_loss",
    "limb_field_loss",
)


def __getattr__(name: str):
    if name in _LOSSES:
        from occlupose.engine import losses

        return getattr(losses, name)
    if name in ("load_config", "TrainConfig", "ConfigError"):
        from occlupose.engine import config

        return getattr(config, name)
    if name in ("prepare_training", "TrainingRun"):
        from occlupose.engine import build

        return getattr(build, name)
    if name in ("LossWeights", "OptimizerSettings", "AdversarialSettings"):
        from occlupose.engine import config

        return getattr(config, name)
    if name == "PoseTrainingModule":
        from occlupose.engine import module

        return module.PoseTrainingModule
    raise AttributeError(f"module 'occlupose.engine' has no attribute {name!r}")


__all__ = [
    "AdversarialSettings",
    "ConfigError",
    "LossWeights",
    "OptimizerSettings",
    "PoseTrainingModule",
    "TrainConfig",
    "TrainingRun",
    "associative_embedding_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "heatmap_loss",
    "limb_field_loss",
    "load_config",
    "prepare_training",
]
