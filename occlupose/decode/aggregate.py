"""Test-time aggregation of network outputs before grouping: resize, flip back, average.

These are the steps HigherHRNet's test code performs between the network and the
grouping, as plain functions. All take a ``torch.Tensor`` or a ``numpy.ndarray`` with
maps in the last two axes (``(..., C, H, W)``, e.g. ``(N, C, H, W)`` or ``(C, H, W)``)
and return the same type.

* Multi-resolution: heatmaps from the 1/4 and 1/2 outputs are resized to a common size
  and averaged (:func:`aggregate_heatmaps`).
* Flip test: the output for the mirrored image is mirrored back and its channels
  permuted (:func:`flip_back`; limb fields also flip the sign of one component,
  :func:`flip_back_limb_fields`); heatmaps of both passes are then averaged and tags
  concatenated (:func:`concat_tags`), as HigherHRNet does.
* Multi-scale: outputs at several input scales are resized to one size and averaged
  (heatmaps) or concatenated (tags) by the same two functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from occlupose.structures.keypoint_set import KeypointSet

__all__ = [
    "aggregate_heatmaps",
    "concat_tags",
    "flip_back",
    "flip_back_limb_fields",
    "limb_flip_permutation",
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
