"""Pose-level generation-recovery: complete a person from its known joints, judge poses.

The generator works on joint coordinates, not heatmaps: a person's known joints, in a
frame normalised by them (see :func:`occlupose.decode.completer.normalise_known`), and
the known mask go in; every joint comes out, in the same frame. The discriminator
(training only) scores whether a full pose, centred and scaled to unit spread, looks
like a real person. Both are small MLPs: a pose is a few dozen numbers, and at CPU scale
the heatmap-level generator of :mod:`occlupose.models.completion` did not learn to
recover joints, while this one trains on real poses in about a minute.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PoseCompletionGenerator", "PoseCoordinateDiscriminator", "unit_spread"]


class PoseCompletionGenerator(nn.Module):
    """Completes normalised poses: known joints and mask in, every joint out.

    Args:
        num_joints: J.
        hidden: width of the hidden layers.
        depth: number of hidden layers.
        template: optional (J, 2) pose in the normalised frame that the output is a
            residual over (the mean pose); zeros if None.

    Shapes: ``forward(points (B, J, 2), known (B, J) bool) -> (B, J, 2)``; the known
    joints of the output are the input's, unchanged.
    """

    def __init__(
        self,
        num_joints: int,
        hidden: int = 512,
        depth: int = 3,
        template: Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_joints < 2 or hidden < 1 or depth < 1:
            raise ValueError("num_joints must be at least 2, hidden and depth at least 1")
        self.num_joints = num_joints
        layers: list[nn.Module] = []
        width = num_joints * 3
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, num_joints * 2))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.body = nn.Sequential(*layers)
        if template is None:
            template = torch.zeros(num_joints, 2)
        if template.shape != (num_joints, 2):
            raise ValueError(f"template must have shape ({num_joints}, 2), got {template.shape}")
        self.register_buffer("template", template.detach().float().clone())

    def forward(self, points: Tensor, known: Tensor) -> Tensor:
        known = known.bool()
        mask = known.unsqueeze(-1).to(points.dtype)
        inputs = torch.cat([(points * mask).flatten(1), known.to(points.dtype)], dim=1)
        out = self.template + self.body(inputs).view(-1, self.num_joints, 2)
        return torch.where(known.unsqueeze(-1), points, out)


def unit_spread(poses: Tensor) -> Tensor:
    """(B, J, 2) poses centred on their mean joint and scaled to unit RMS spread."""
    centred = poses - poses.mean(dim=1, keepdim=True)
    spread = centred.pow(2).sum(dim=2).mean(dim=1).clamp_min(1e-12).sqrt()
    return centred / spread[:, None, None]


class PoseCoordinateDiscriminator(nn.Module):
    """Scores whether full poses look real: one logit per pose (training only).

    Poses are put in :func:`unit_spread` form first, so the critic judges the shape
    alone, not position or size. Spectrally normalised linear layers with LeakyReLU.

    Args:
        num_joints: J.
        hidden: width of the hidden layers.
        depth: number of hidden layers.
    """

    def __init__(self, num_joints: int, hidden: int = 256, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = num_joints * 2
        for _ in range(depth):
            layers += [spectral_norm(nn.Linear(width, hidden)), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(spectral_norm(nn.Linear(width, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, poses: Tensor) -> Tensor:
        return self.body(unit_spread(poses).flatten(1)).squeeze(1)
