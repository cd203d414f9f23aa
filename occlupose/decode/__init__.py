"""Decoding network outputs into people: aggregation, peaks, grouping, the decoder.

The path every caller takes: network outputs of one image -> :func:`merge_passes` or
:func:`merge_passes_official` (:class:`MergedMaps`) -> :func:`decode_people` with
:class:`DecodeSettings` -> :class:`~occlupose.structures.Person` list in image pixels.
The groupers work on one image's maps as numpy arrays (the aggregation helpers also
take torch tensors). Shapes: heatmaps ``(J, H, W)``; tags ``(J, H, W)`` or
``(J, H, W, D)``; limb fields ``(2L, H, W)``.

Coordinate convention of the groupers' output (HigherHRNet's): in heatmap pixels where
pixel ``(c, r)`` covers ``[c, c+1) x [r, r+1)``, i.e. a peak exactly on pixel
``(c, r)`` is reported near ``(c + 0.5, r + 0.5)`` (plus the quarter-pixel shift). The
target encoders in :mod:`occlupose.data.targets` put pixel centres at integer
coordinates: subtract 0.5 to compare.
"""

from occlupose.decode.aggregate import (
    MergedMaps,
    NetworkPass,
    aggregate_heatmaps,
    concat_tags,
    flip_back,
    flip_back_limb_fields,
    flip_back_outputs,
    limb_flip_permutation,
    merge_passes,
    merge_passes_official,
    resize_maps,
)
from occlupose.decode.assignment import min_cost_assignment
from occlupose.decode.completer import (
    BUNDLED_COMPLETERS,
    PoseCompleter,
    load_completer,
    normalise_known,
)
from occlupose.decode.decoder import (
    DecodeSettings,
    decode_people,
    group_people,
    pixel_convention_for,
    resolve_grouping,
)
from occlupose.decode.fragments import join_fragments
from occlupose.decode.limbs import group_by_limbs, limb_visit_order, score_limb_pairs
from occlupose.decode.peaks import Candidates, find_candidates, nms_heatmaps, quarter_offsets
from occlupose.decode.prior import PosePrior, fit_reference_pose
from occlupose.decode.tags import group_by_tags, resolve_joint_order

__all__ = [
    "BUNDLED_COMPLETERS",
    "Candidates",
    "DecodeSettings",
    "MergedMaps",
    "NetworkPass",
    "PoseCompleter",
    "PosePrior",
    "aggregate_heatmaps",
    "concat_tags",
    "decode_people",
    "find_candidates",
    "fit_reference_pose",
    "flip_back",
    "flip_back_limb_fields",
    "flip_back_outputs",
    "group_by_limbs",
    "group_by_tags",
    "group_people",
    "join_fragments",
    "limb_flip_permutation",
    "limb_visit_order",
    "load_completer",
    "merge_passes",
    "merge_passes_official",
    "min_cost_assignment",
    "nms_heatmaps",
    "normalise_known",
    "pixel_convention_for",
    "quarter_offsets",
    "resize_maps",
    "resolve_grouping",
    "resolve_joint_order",
    "score_limb_pairs",
]
