"""Training losses of HigherHRNet and HRGR-Net, as plain functions on tensors.

Shapes: B images, J joints, L limbs, P people rows, maps of H x W output pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "associative_embedding_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "heatmap_loss",
    "limb_field_loss",
]


def heatmap_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    joint_weights: Tensor | None = None,
    foreground_weight: float = 1.0,
) -> Tensor:
    """Masked mean squared error of heatmaps (HigherHRNet's heatmap loss).

    Args:
        pred, target: (B, J, H, W).
        mask: (B, H, W), 1 where the loss counts, 0 on ignored regions (crowds,
            people without labelled keypoints).
        joint_weights: (B, J) or (J,) per-joint weights, or None.
        foreground_weight: pixels weigh ``1 + (foreground_weight - 1) * target``, so a
            Gaussian's peak counts ``foreground_weight`` times as much as background.
            1 is the published loss; larger values make short trainings find joints
            sooner, because the few peak pixels no longer drown in the background.

    Returns:
        Scalar: the squared error averaged over pixels, joints and images.
    """
    error = (pred - target).square() * mask[:, None]
    if foreground_weight != 1.0:
        error = error * (1.0 + (foreground_weight - 1.0) * target)
    per_joint = error.mean(dim=(2, 3))  # (B, J)
    if joint_weights is not None:
        per_joint = per_joint * joint_weights
    return per_joint.mean()


def limb_field_loss(
    pred: Tensor, target: Tensor, mask: Tensor, foreground_weight: float = 1.0
) -> Tensor:
    """Masked mean squared error of limb fields (B, 2L, H, W) with mask (B, H, W).

    ``foreground_weight``: pixels weigh ``1 + (foreground_weight - 1) * |v|`` per limb,
    where ``|v|`` is the length of the target vector there (1 on the limb, 0 off it),
    for the same reason as in :func:`heatmap_loss`.
    """
    error = (pred - target).square() * mask[:, None]
    if foreground_weight != 1.0:
        b, c, h, w = target.shape
        length = target.reshape(b, c // 2, 2, h, w).norm(dim=2)  # (B, L, H, W)
        weight = 1.0 + (foreground_weight - 1.0) * length
        error = error * weight.repeat_interleave(2, dim=1)
    return error.mean()


def associative_embedding_loss(tags: Tensor, joints: Tensor) -> tuple[Tensor, Tensor]:
    """Push and pull losses of associative embedding (Newell et al.), vectorised.

    Each person's reference tag is the mean of its joints' tags. *Pull* is the
    mean squared distance of the joints' tags to their person's reference;
    *push* is ``exp(-d^2)`` between the references of every pair of people in
    an image, averaged over ordered pairs and halved, as HigherHRNet computes it.

    Args:
        tags: (B, T, H, W) tag maps with T = J (per joint) or 1 (shared), or
            (B, J * H * W) already flattened.
        joints: (B, P, J, 2) int64 ``[flat index y * W + x, valid]`` per person and
            joint, as made by :func:`occlupose.data.targets.joint_index_array`.

    Returns:
        ``(push, pull)``: (B,) losses per image (0 for images with < 2 or 0 people).
    """
    b, p, j, _ = joints.shape
    if tags.ndim == 4:
        t, h, w = tags.shape[1:]
        flat = tags.reshape(b, -1)
        # A tag map per joint: joint k's index lives in channel k.
        offsets = (torch.arange(j, device=tags.device) * h * w) if t == j else 0
    else:
        flat, offsets = tags, 0
    index = joints[..., 0] + offsets  # (B, P, J)
    valid = joints[..., 1].float() > 0  # (B, P, J)
    index = torch.where(valid, index, torch.zeros_like(index))
    values = torch.gather(flat, 1, index.reshape(b, -1)).reshape(b, p, j)

    count = valid.sum(dim=2)  # (B, P)
    present = count > 0
    mean = (values * valid).sum(dim=2) / count.clamp(min=1)  # (B, P)
    pull_per_person = ((values - mean[..., None]).square() * valid).sum(dim=2) / count.clamp(min=1)
    num_people = present.sum(dim=1)  # (B,)
    pull = (pull_per_person * present).sum(dim=1) / num_people.clamp(min=1)

    diff = mean[:, :, None] - mean[:, None, :]  # (B, P, P)
    pair = present[:, :, None] & present[:, None, :]
    pair = pair & ~torch.eye(p, dtype=torch.bool, device=tags.device)
    n = num_people.float()
    push = (torch.exp(-diff.square()) * pair).sum(dim=(1, 2)) / (n * (n - 1)).clamp(min=1) * 0.5
    push = torch.where(num_people >= 2, push, torch.zeros_like(push))
    return push, pull


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN loss of the critic: real poses -> 1, generated -> 0."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN loss of the generator: make generated poses look real."""
    return F.softplus(-fake_logits).mean()
