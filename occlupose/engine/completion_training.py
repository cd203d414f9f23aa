"""Training the pose-level generation-recovery module (reconstruction + adversarial).

Plain functions; the maths is in :mod:`occlupose.models.pose_completion` and
:mod:`occlupose.decode.completer`. Each step hides joints of a batch of annotated people
(half the time one of the :func:`~occlupose.evaluation.completion.hide_patterns`, half
the time k random joints, k uniform in 1 .. J - 2), normalises the known joints
(:func:`~occlupose.decode.completer.normalise_known`) and trains the generator with an
L1 loss on the hidden labelled joints (each joint's error divided by its OKS ``2 sigma``,
as the metric weighs it), plus, with ``adversarial > 0``, the non-saturating GAN loss of
a :class:`~occlupose.models.PoseCoordinateDiscriminator` that sees real fully labelled
poses against completed ones (the thesis' generation-recovery GAN, on coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from occlupose.decode.completer import PoseCompleter, normalise_known
from occlupose.evaluation.completion import hide_patterns
from occlupose.models.pose_completion import (
    PoseCompletionGenerator,
    PoseCoordinateDiscriminator,
    unit_spread,
)
from occlupose.structures.keypoint_set import KeypointSet

__all__ = ["CompletionRecipe", "train_pose_completer"]


@dataclass(frozen=True)
class CompletionRecipe:
    """Hyper-parameters of :func:`train_pose_completer`."""

    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden: int = 512
    depth: int = 3
    adversarial: float = 0.0  # weight of the generator's GAN loss; 0: reconstruction only
    discriminator_lr: float = 2e-4
    flip: bool = True


def _pattern_masks(keypoint_set: KeypointSet) -> np.ndarray:
    rows = [alt for alts in hide_patterns(keypoint_set).values() for alt in alts]
    masks = np.zeros((len(rows), keypoint_set.num_keypoints), dtype=bool)
    for i, joints in enumerate(rows):
        masks[i, list(joints)] = True
    return masks


def _sample_hidden(rng: np.random.Generator, patterns: np.ndarray, n: int, j: int) -> np.ndarray:
    by_pattern = patterns[rng.integers(len(patterns), size=n)]
    k = rng.integers(1, j - 1, size=n)
    ranks = rng.random((n, j)).argsort(axis=1).argsort(axis=1)
    random_k = ranks < k[:, None]
    return np.where(rng.random(n)[:, None] < 0.5, by_pattern, random_k)


def train_pose_completer(
    poses: np.ndarray,
    labelled: np.ndarray,
    keypoint_set: KeypointSet,
    recipe: CompletionRecipe = CompletionRecipe(),
    *,
    seed: int = 0,
    log_every: int = 0,
) -> PoseCompleter:
    """Train a :class:`PoseCompleter` on annotated people.

    Args:
        poses: (N, J, 2) pixels (unlabelled entries may hold anything finite).
        labelled: (N, J) bool; at least one person must be fully labelled (the template
            and the discriminator's real poses come from those).
        keypoint_set: the joints.
        recipe: hyper-parameters.
        seed: seeds the weights, the masks and the batches.
        log_every: print the losses every this many steps (0: never).
    """
    poses = np.asarray(poses, dtype=np.float32)
    labelled = np.asarray(labelled, dtype=bool)
    n, j = labelled.shape
    if poses.shape != (n, j, 2) or j != keypoint_set.num_keypoints:
        raise ValueError("poses (N, J, 2) and labelled (N, J) must match the keypoint set")
    full = labelled.all(axis=1)
    if not full.any():
        raise ValueError("no fully labelled person: no template and no real poses")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    template = unit_spread(torch.from_numpy(poses[full])).mean(dim=0)
    generator = PoseCompletionGenerator(j, recipe.hidden, recipe.depth, template=template)
    critic = PoseCoordinateDiscriminator(j) if recipe.adversarial > 0 else None
    opt_g = torch.optim.AdamW(generator.parameters(), recipe.lr, weight_decay=recipe.weight_decay)
    opt_d = (
        torch.optim.Adam(critic.parameters(), recipe.discriminator_lr, betas=(0.5, 0.999))
        if critic is not None
        else None
    )
    weight = 1.0 / (2.0 * torch.tensor(keypoint_set.sigmas, dtype=torch.float32))
    weight = weight / weight.mean()
    flip_index = np.asarray(keypoint_set.flip_index)
    patterns = _pattern_masks(keypoint_set)
    full_idx = np.flatnonzero(full)
    for step in range(recipe.steps):
        lr = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / recipe.steps))
        for group in opt_g.param_groups:
            group["lr"] = lr
        idx = rng.integers(n, size=recipe.batch_size)
        batch, lab = poses[idx].copy(), labelled[idx].copy()
        if recipe.flip:
            flip = rng.random(len(idx)) < 0.5
            batch[flip] = batch[flip][:, flip_index] * np.array([-1.0, 1.0], dtype=np.float32)
            lab[flip] = lab[flip][:, flip_index]
        hidden = _sample_hidden(rng, patterns, len(idx), j)
        known = lab & ~hidden
        target = lab & hidden
        keep = (known.sum(axis=1) >= 2) & target.any(axis=1)
        if not keep.any():
            continue
        x = torch.from_numpy(batch[keep])
        known_t, target_t = torch.from_numpy(known[keep]), torch.from_numpy(target[keep])
        normalised_true, *_, ok = normalise_known(x, known_t, generator.template)
        known_t, target_t = known_t & ok[:, None], target_t & ok[:, None]
        pred = generator(normalised_true, known_t)
        err = (pred - normalised_true).abs().sum(dim=2) * weight
        loss_rec = (err * target_t).sum() / target_t.sum().clamp_min(1)
        loss = loss_rec
        if critic is not None:
            real_idx = rng.choice(full_idx, size=len(pred))
            real = torch.from_numpy(poses[real_idx])
            # Critic step on detached completions.
            logits_real = critic(real)
            logits_fake = critic(pred.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                logits_real, torch.ones_like(logits_real)
            ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            logits = critic(pred)
            loss_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            loss = loss + recipe.adversarial * loss_adv
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if log_every and step % log_every == 0:
            print(f"step {step}: reconstruction {loss_rec.item():.4f} total {loss.item():.4f}")
    meta = {"recipe": {k: getattr(recipe, k) for k in recipe.__dataclass_fields__}, "seed": seed}
    return PoseCompleter(generator.eval(), keypoint_set, metadata=meta)
