"""What a pose network predicts: the container every stage after the network reads.

It lives here, beside :class:`~occlupose.structures.Person`, so that decoding,
inference and training import it without reaching into the model code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["PoseOutputs"]


class PoseOutputs(NamedTuple):
    """What a pose network predicts for a batch of B images of size H x W.

    Attributes:
        heatmaps: joint heatmaps per output resolution, highest stride first:
            ``[(B, J, H/4, W/4), (B, J, H/2, W/2)]`` for one deconvolution.
        tags: associative-embedding tags (B, J, H/4, W/4) (one channel when
            tags are not per joint), or None without a tag head.
        limbs: limb fields (B, 2L, H/4, W/4) as ``[x_0, y_0, x_1, y_1, ...]``, or None.
        completed: heatmaps completed by the generation-recovery module, same
            shapes as ``heatmaps``, or None without it.
        features: the (fused) 1/4-resolution features (B, C, H/4, W/4), which
            condition the discriminator in training.
    """

    heatmaps: list[Tensor]
    tags: Tensor | None
    limbs: Tensor | None
    completed: list[Tensor] | None
    features: Tensor

    @property
    def final_heatmaps(self) -> list[Tensor]:
        """The heatmaps to decode: completed ones when the model has a generator."""
        return self.completed if self.completed is not None else self.heatmaps

    def subset(self, index: slice) -> PoseOutputs:
        """The outputs of the images ``index`` of the batch (e.g. ``slice(i, i + 1)``)."""
        return PoseOutputs(
            heatmaps=[h[index] for h in self.heatmaps],
            tags=None if self.tags is None else self.tags[index],
            limbs=None if self.limbs is None else self.limbs[index],
            completed=None if self.completed is None else [h[index] for h in self.completed],
            features=self.features[index],
        )

    def as_higherhrnet(self) -> list[Tensor]:
        """The published HigherHRNet format: ``[cat(heatmaps, tags), heatmaps_1/2, ...]``."""
        first = (
            self.heatmaps[0] if self.tags is None else torch.cat([self.heatmaps[0], self.tags], 1)
        )
        return [first, *self.heatmaps[1:]]
