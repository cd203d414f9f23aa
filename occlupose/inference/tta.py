"""Test-time augmentation on network outputs: flip back, and bring every map to one size.

All functions work on torch tensors of one image's outputs (batch dimension
kept), on whatever device the network ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from occlupose.decode import flip_back, flip_back_limb_fields
from occlupose.models import PoseOutputs
from occlupose.structures import KeypointSet

__all__ = ["MapsAtOneSize", "NetworkPass", "flip_back_outputs", "merge_outputs"]


def flip_back_outputs(outputs: PoseOutputs, keypoint_set: KeypointSet) -> PoseOutputs:
    """Outputs of the horizontally flipped image, mapped back onto the original image."""
    index = keypoint_set.flip_index

    tags = outputs.tags
    if tags is not None:
        # A shared tag map (one channel) has no joints to permute.
        tags = flip_back(tags, index) if tags.shape[1] == len(index) else tags.flip(3)
    return PoseOutputs(
        heatmaps=[flip_back(h, index) for h in outputs.heatmaps],
        tags=tags,
        limbs=None if outputs.limbs is None else flip_back_limb_fields(outputs.limbs, keypoint_set),
        completed=None
        if outputs.completed is None
        else [flip_back(h, index) for h in outputs.completed],
        features=outputs.features.flip(3),
    )


class MapsAtOneSize:
    """Decoder inputs of one image, all at one map size (B = 1 dropped).

    Attributes:
        heatmaps: (J, H, W), averaged over resolutions, flips and scales.
        tags: (J, H, W, D) with one embedding per flip and scale, or None.
        limbs: (2L, H, W) averaged, or None.
        stride: input pixels per map pixel at scale 1.
    """

    def __init__(self, heatmaps: Tensor, tags: Tensor | None, limbs: Tensor | None, stride: float):
        self.heatmaps, self.tags, self.limbs, self.stride = heatmaps, tags, limbs, stride


@dataclass
class NetworkPass:
    """One run of the network on one (possibly mirrored, rescaled) view of an image.

    Attributes:
        outputs: flipped back already, batch size 1.
        input_height: height of the network input (canvas) in pixels.
        zoom: how much larger this view is than the merged grid's view
            (``scale / base_scale``); views are padded at the right and bottom only,
            so their top-left corners coincide.
    """

    outputs: PoseOutputs
    input_height: int
    zoom: float = 1.0


def _align(m: Tensor, factor: float, size: Sequence[int]) -> Tensor:
    """Resize ``m`` by ``factor``, then crop or zero-pad it to ``size`` at the bottom/right."""
    if factor != 1.0:
        new = (max(1, round(m.shape[-2] * factor)), max(1, round(m.shape[-1] * factor)))
        m = F.interpolate(m, size=new, mode="bilinear", align_corners=False)
    m = m[..., : size[0], : size[1]]
    pad_h, pad_w = size[0] - m.shape[-2], size[1] - m.shape[-1]
    return F.pad(m, (0, pad_w, 0, pad_h)) if pad_h or pad_w else m


def merge_outputs(
    passes: Sequence[NetworkPass], size: Sequence[int], stride: float
) -> MapsAtOneSize:
    """Average the outputs of several passes (flips, scales) on one map grid.

    Every map of every pass is brought to the merged grid (map size ``size``,
    ``stride`` input pixels per map pixel at the base scale) and heatmaps are
    averaged over resolutions and passes (HigherHRNet's aggregation: the 1/4
    heatmaps upsampled and averaged with the 1/2 ones); completed heatmaps are used
    when the model has a generator. Tags are stacked as extra embedding
    dimensions (one per pass), limb fields averaged.
    """

    def factor(p: NetworkPass, m: Tensor) -> float:
        map_stride = p.input_height / m.shape[-2]
        return map_stride / stride / p.zoom

    heatmaps = torch.stack(
        [_align(h, factor(p, h), size) for p in passes for h in p.outputs.final_heatmaps]
    ).mean(dim=0)[0]
    tags = None
    if passes[0].outputs.tags is not None:
        num_joints = heatmaps.shape[0]
        # A shared tag map (one channel) serves every joint.
        tags = torch.stack(
            [
                _align(p.outputs.tags, factor(p, p.outputs.tags), size)[0].expand(
                    num_joints, -1, -1
                )
                for p in passes
            ],
            dim=-1,
        )
    limbs = None
    if passes[0].outputs.limbs is not None:
        limbs = torch.stack(
            [_align(p.outputs.limbs, factor(p, p.outputs.limbs), size)[0] for p in passes]
        ).mean(dim=0)
    return MapsAtOneSize(heatmaps, tags, limbs, stride)
