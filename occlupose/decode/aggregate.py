"""Aggregation of network outputs before grouping: resize, flip back, merge passes.

Everything between the network and the grouping lives here, for every caller
(the Predictor, validation during training, evaluation): the map helpers take a
``torch.Tensor`` or a ``numpy.ndarray`` with maps in the last two axes
(``(..., C, H, W)``) and return the same type; :func:`merge_passes` and
:func:`merge_passes_official` turn the outputs of one or more network runs on one
image into the :class:`MergedMaps` that :func:`occlupose.decode.decode_people` groups.

* Multi-resolution: heatmaps from the 1/4 and 1/2 outputs are resized to a common size
  and averaged (:func:`aggregate_heatmaps`).
* Flip test: the output for the mirrored image is mirrored back and its channels
  permuted (:func:`flip_back`; limb fields also flip the sign of one component,
  :func:`flip_back_limb_fields`); heatmaps of both passes are then averaged and tags
  concatenated (:func:`concat_tags`), as HigherHRNet does.
* Multi-scale: outputs at several input scales are resized to one size and averaged
  (heatmaps) or concatenated (tags) by the same two functions.

Two ways of merging the passes of one image:

* :func:`merge_passes` (occlupose's): every map of every pass is brought to the finest
  output map of the base view (1/2 of the input for HigherHRNet), heatmaps averaged,
  tags of every pass stacked, limb fields averaged.
* :func:`merge_passes_official`: HigherHRNet's published ``valid.py`` path step by
  step (maps projected to input resolution, tags of scale 1 only), in the same order
  of float operations, so that it reproduces the official maps bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from occlupose.structures.keypoint_set import KeypointSet
from occlupose.structures.pose_outputs import PoseOutputs

__all__ = [
    "MergedMaps",
    "NetworkPass",
    "aggregate_heatmaps",
    "concat_tags",
    "flip_back",
    "flip_back_limb_fields",
    "flip_back_outputs",
    "limb_flip_permutation",
    "merge_passes",
    "merge_passes_official",
    "resize_maps",
]

Maps = torch.Tensor | np.ndarray


def _as_tensor(maps: Maps) -> tuple[torch.Tensor, bool]:
    if isinstance(maps, torch.Tensor):
        return maps, False
    if isinstance(maps, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(maps)), True
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(maps).__name__}")


def _like(result: torch.Tensor, was_numpy: bool) -> Maps:
    return result.numpy() if was_numpy else result


def resize_maps(maps: Maps, size: tuple[int, int]) -> Maps:
    """Bilinear resize of the last two axes to ``size = (H, W)`` (``align_corners=False``).

    Same interpolation as HigherHRNet's test code (``torch.nn.functional.interpolate``);
    numpy arrays go through OpenCV, which computes the same values several times
    faster on CPU. Maps already at ``size`` are returned unchanged.
    """
    size = (int(size[0]), int(size[1]))
    if isinstance(maps, np.ndarray) and maps.ndim >= 2:
        if maps.shape[-2:] == size:
            return maps
        planes = maps.reshape(-1, *maps.shape[-2:])
        dtype = maps.dtype if maps.dtype in (np.float32, np.float64) else np.float32
        out = np.empty((planes.shape[0], *size), dtype=dtype)
        for i, plane in enumerate(planes):
            out[i] = cv2.resize(
                plane.astype(dtype, copy=False), (size[1], size[0]), interpolation=cv2.INTER_LINEAR
            )
        return out.reshape(*maps.shape[:-2], *size)
    tensor, was_numpy = _as_tensor(maps)
    if tensor.ndim < 2:
        raise ValueError(f"maps must have at least 2 axes (H, W), got shape {tuple(tensor.shape)}")
    if tuple(tensor.shape[-2:]) == size:
        return maps
    lead = tensor.shape[:-2]
    flat = tensor.reshape(1, -1, *tensor.shape[-2:])
    dtype = flat.dtype if tensor.is_floating_point() else torch.float32
    # Interpolate in float32 at least (half-precision bilinear is missing on some CPUs).
    compute = torch.promote_types(dtype, torch.float32)
    out = F.interpolate(flat.to(compute), size=size, mode="bilinear", align_corners=False)
    out = out.to(dtype)
    return _like(out.reshape(*lead, *size), was_numpy)


def aggregate_heatmaps(maps: Sequence[Maps], size: tuple[int, int] | None = None) -> Maps:
    """Average heatmaps from several resolutions, flips or scales after resizing to ``size``.

    Args:
        maps: sequence of ``(..., J, h_i, w_i)`` maps with the same leading shape.
        size: ``(H, W)`` of the result; default the size of the largest map.

    Returns:
        ``(..., J, H, W)`` the mean of the resized maps.
    """
    if len(maps) == 0:
        raise ValueError("aggregate_heatmaps needs at least one map")
    if size is None:
        size = max((tuple(m.shape[-2:]) for m in maps), key=lambda s: s[0] * s[1])
    if all(isinstance(m, np.ndarray) for m in maps):
        total = np.array(resize_maps(maps[0], size), dtype=np.float32)  # a fresh copy
        for m in maps[1:]:
            total += resize_maps(m, size)
        return total / np.float32(len(maps))
    tensors = [_as_tensor(resize_maps(m, size))[0] for m in maps]
    return torch.stack(tensors).mean(dim=0)


def concat_tags(tags: Sequence[Maps], size: tuple[int, int] | None = None) -> Maps:
    """Stack scalar tag maps from flips or scales into one embedding per pixel.

    Args:
        tags: sequence of D tag maps ``(..., J, h_i, w_i)`` with the same leading shape;
            each is resized to ``size`` (default: the largest).

    Returns:
        ``(..., J, H, W, D)``, the layout :func:`~occlupose.decode.group_by_tags` takes.
    """
    if len(tags) == 0:
        raise ValueError("concat_tags needs at least one tag map")
    if size is None:
        size = max((tuple(t.shape[-2:]) for t in tags), key=lambda s: s[0] * s[1])
    resized = [resize_maps(t, size) for t in tags]
    if len({tuple(t.shape) for t in resized}) != 1:
        raise ValueError(
            f"tag maps must share their leading shape, got {[tuple(t.shape) for t in resized]}"
        )
    if all(isinstance(t, np.ndarray) for t in resized):
        return np.stack(resized, axis=-1)
    return torch.stack([_as_tensor(t)[0] for t in resized], dim=-1)


def flip_back(maps: Maps, flip_index: Sequence[int]) -> Maps:
    """Undo a horizontal flip of the input on per-joint maps (heatmaps or tags).

    Channel ``j`` of the result is channel ``flip_index[j]`` of ``maps``, mirrored along
    the width. ``flip_index`` is :attr:`KeypointSet.flip_index`.

    Args:
        maps: ``(..., J, H, W)``.
    """
    tensor, was_numpy = _as_tensor(maps)
    index = torch.as_tensor(list(flip_index), dtype=torch.long, device=tensor.device)
    if tensor.ndim < 3 or tensor.shape[-3] != index.numel():
        raise ValueError(
            f"maps must have shape (..., J, H, W) with J = {index.numel()}, "
            f"got {tuple(tensor.shape)}"
        )
    return _like(tensor.index_select(-3, index).flip(-1), was_numpy)


def limb_flip_permutation(keypoint_set: KeypointSet) -> tuple[list[int], list[int]]:
    """How limb fields change under a horizontal flip.

    Returns:
        ``(index, sign)``: limb ``l`` of the unflipped image is limb ``index[l]`` of the
        flipped one, traversed in the same (``sign = 1``) or opposite (``-1``) direction.
    """
    flip = keypoint_set.flip_index
    lookup = {limb: i for i, limb in enumerate(keypoint_set.limbs)}
    index, sign = [], []
    for a, b in keypoint_set.limbs:
        mirror = (flip[a], flip[b])
        if mirror in lookup:
            index.append(lookup[mirror])
            sign.append(1)
        elif mirror[::-1] in lookup:
            index.append(lookup[mirror[::-1]])
            sign.append(-1)
        else:
            raise ValueError(
                f"keypoint set {keypoint_set.name!r}: limb ({a}, {b}) has no mirror limb"
            )
    return index, sign


def flip_back_limb_fields(fields: Maps, keypoint_set: KeypointSet) -> Maps:
    """Undo a horizontal flip of the input on limb fields ``(..., 2L, H, W)``.

    The field of limb ``(a, b)`` comes from the flipped output's limb between the mirror
    joints, mirrored along the width; mirroring negates the x component, and a mirror
    limb stored in the opposite direction negates the whole vector.
    """
    tensor, was_numpy = _as_tensor(fields)
    index, sign = limb_flip_permutation(keypoint_set)
    num_limbs = len(index)
    if tensor.ndim < 3 or tensor.shape[-3] != 2 * num_limbs:
        raise ValueError(
            f"limb fields must have shape (..., 2L, H, W) with L = {num_limbs}, "
            f"got {tuple(tensor.shape)}"
        )
    channels = torch.as_tensor([2 * i + c for i in index for c in (0, 1)], dtype=torch.long)
    factors = torch.as_tensor(
        [f * s for s in sign for f in (-1.0, 1.0)], dtype=tensor.dtype, device=tensor.device
    )
    out = tensor.index_select(-3, channels.to(tensor.device)).flip(-1)
    out = out * factors.reshape(-1, 1, 1)
    return _like(out, was_numpy)


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


@dataclass
class MergedMaps:
    """One image's decoder input: every map at one size (batch dimension dropped).

    Attributes:
        heatmaps: (J, H, W), averaged over resolutions, flips and scales.
        tags: (J, H, W, D), one embedding component per merged pass, or None.
        limbs: (2L, H, W) averaged, or None.
        stride: input pixels per map pixel (of the base view's canvas): 2 for maps at
            1/2 resolution, 1 for maps projected to the input.
    """

    heatmaps: Tensor
    tags: Tensor | None
    limbs: Tensor | None
    stride: float


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


def merge_passes(passes: Sequence[NetworkPass], size: Sequence[int], stride: float) -> MergedMaps:
    """occlupose's merge: every pass (flips, scales) on one map grid.

    Every map of every pass is brought to the merged grid (map size ``size = (H, W)``,
    ``stride`` input pixels per map pixel at the base scale) and heatmaps are averaged
    over resolutions and passes (HigherHRNet's aggregation: the 1/4 heatmaps upsampled
    and averaged with the 1/2 ones); completed heatmaps are used when the model has a
    generator. Tags are stacked as extra embedding dimensions (one per pass), limb
    fields averaged. One pass of an image fitted into the input (validation) is the
    simplest case.
    """

    def factor(p: NetworkPass, m: Tensor) -> float:
        map_stride = p.input_height / m.shape[-2]
        return map_stride / stride / p.zoom

    heatmaps = torch.stack(
        [_align(h.float(), factor(p, h), size) for p in passes for h in p.outputs.final_heatmaps]
    ).mean(dim=0)[0]
    tags = None
    if passes[0].outputs.tags is not None:
        num_joints = heatmaps.shape[0]
        # A shared tag map (one channel) serves every joint.
        tags = torch.stack(
            [
                _align(p.outputs.tags.float(), factor(p, p.outputs.tags), size)[0].expand(
                    num_joints, -1, -1
                )
                for p in passes
            ],
            dim=-1,
        )
    limbs = None
    if passes[0].outputs.limbs is not None:
        limbs = torch.stack(
            [_align(p.outputs.limbs.float(), factor(p, p.outputs.limbs), size)[0] for p in passes]
        ).mean(dim=0)
    return MergedMaps(heatmaps, tags, limbs, stride)


def _official_pass_maps(
    outputs: PoseOutputs, mirrored: bool, flip_index: Sequence[int], size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Heatmaps and tags of one pass, HigherHRNet's way, projected to ``size = (H, W)``.

    The 1/4 output is upsampled to the 1/2 output's size; a mirrored pass is flipped
    back (after the upsampling, as the official code does: the order of float
    operations decides the last bits) and its joints permuted; heatmaps are the mean
    of the two resolutions, tags the upsampled 1/4 ones; both are then resized to
    ``size``.
    """
    final = outputs.final_heatmaps
    finest = final[-1].shape[-2:]
    heatmaps: Tensor | int = 0
    for h in final:
        h = h.float()
        if h.shape[-2:] != finest:
            h = F.interpolate(h, size=finest, mode="bilinear", align_corners=False)
        if mirrored:
            h = h.flip(3)[:, list(flip_index)]
        heatmaps = heatmaps + h
    heatmaps = heatmaps / len(final)
    tags = F.interpolate(outputs.tags.float(), size=finest, mode="bilinear", align_corners=False)
    if mirrored:
        tags = tags.flip(3)[:, list(flip_index)]
    project = {"size": tuple(size), "mode": "bilinear", "align_corners": False}
    return F.interpolate(heatmaps, **project), F.interpolate(tags, **project)


def merge_passes_official(
    views: Sequence[tuple[float, PoseOutputs, PoseOutputs | None]],
    flip_index: Sequence[int],
    size: tuple[int, int],
) -> MergedMaps:
    """HigherHRNet's published merge (``valid.py`` with ``PROJECT2IMAGE``), exactly.

    Args:
        views: per test scale, in the order the scales were run (the official code
            runs them largest first): ``(scale, outputs, mirrored_outputs)``, the
            outputs of the canvas and of the mirrored canvas (not flipped back; None
            without the flip test), batch size 1. The model must predict one tag map
            per joint.
        flip_index: the keypoint set's flip index.
        size: ``(H, W)`` of the base canvas (the canvas at scale 1): every map is
            projected to it.

    Returns:
        :class:`MergedMaps` at input resolution (stride 1): heatmaps averaged over
        passes (plain and mirrored averaged per scale, then over scales), tags of the
        scale-1 run only (or of the only scale), one component per pass.
    """
    if len(views) > 1 and not any(scale == 1.0 for scale, _, _ in views):
        raise ValueError("the official multi-scale test takes its tags from scale 1: include it")
    total: Tensor | None = None
    tags: list[Tensor] = []
    for scale, outputs, mirrored in views:
        if outputs.tags is None or outputs.tags.shape[1] != len(flip_index):
            raise ValueError("the official test needs one tag map per joint")
        heat, tag = _official_pass_maps(outputs, False, flip_index, size)
        view_tags = [tag]
        if mirrored is not None:
            heat_m, tag_m = _official_pass_maps(mirrored, True, flip_index, size)
            heat = (heat + heat_m) / 2.0
            view_tags.append(tag_m)
        if scale == 1.0 or len(views) == 1:
            tags.extend(view_tags)
        total = heat if total is None else total + heat
    heatmaps = total / float(len(views))
    return MergedMaps(heatmaps[0], torch.stack([t[0] for t in tags], dim=-1), None, 1.0)
