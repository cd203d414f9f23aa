"""Associative-embedding grouping: HigherHRNet's published tag grouping, vectorised.

The algorithm (Newell et al. 2017, as released with HigherHRNet) is reproduced
decision for decision so that official checkpoints reach their published accuracy:

1. Candidates: max-pool NMS, the ``max_people`` best peaks per joint type, those
   above ``detection_threshold`` (:func:`~occlupose.decode.peaks.find_candidates`).
2. Joint types are visited in ``joint_order``. The candidates of the first type each
   start a person. The candidates of every later type are matched to the first
   ``max_people`` people found so far (a person's tag is the mean tag of its joints)
   by an optimal assignment on ``round(tag distance) * 100 - candidate score``; a
   match counts only if the tag distance is below ``tag_threshold``. Any other
   candidate starts a new person.
3. ``adjust``: each joint moves a quarter pixel towards its higher neighbour along x
   and y, then by +0.5 (HigherHRNet's pixel-corner convention).
4. Person score: mean of all J joint scores (0 for missing), after adjust.
5. ``refine``: every missing joint is placed at the argmax of
   ``heatmap - round(||tag map - person's mean tag||)`` (with the same quarter shift
   and +0.5) when the heatmap value there is above 0.

One quirk is kept on purpose: the reference keys people by the *first tag
component* of the candidate that created them, so a new person whose tag equals
an existing person's key exactly is written into that person (replacing the joint
and restarting its tag list). Real network tags practically never collide; when they
do, a sequential path reproduces the reference exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occlupose.decode.assignment import min_cost_assignment
from occlupose.decode.peaks import Candidates, find_candidates, quarter_offsets
from occlupose.structures.keypoint_set import COCO_KEYPOINTS, KeypointSet

__all__ = ["group_by_tags", "resolve_joint_order"]

# Cost of a non-match in the reference implementation's padded assignment.
_NO_MATCH_COST = 1e10


def resolve_joint_order(
    num_joints: int,
    joint_order: Sequence[int] | None = None,
    keypoint_set: KeypointSet | None = None,
) -> list[int]:
    """The order in which tag grouping visits joint types.

    Priority: an explicit ``joint_order``; else ``keypoint_set.grouping_order``; else
    COCO's order (head, shoulders, hips, elbows, wrists, knees, ankles) when
    ``num_joints == 17``; else ``0..J-1``.
    """
    if joint_order is not None:
        order = [int(j) for j in joint_order]
    elif keypoint_set is not None:
        if keypoint_set.num_keypoints != num_joints:
            raise ValueError(
                f"keypoint set {keypoint_set.name!r} has {keypoint_set.num_keypoints} "
                f"keypoints but the heatmaps have {num_joints} channels"
            )
        order = list(keypoint_set.grouping_order)
    elif num_joints == COCO_KEYPOINTS.num_keypoints:
        order = list(COCO_KEYPOINTS.grouping_order)
    else:
        order = list(range(num_joints))
    if sorted(order) != list(range(num_joints)):
        raise ValueError(f"joint_order must be a permutation of 0..{num_joints - 1}, got {order}")
    return order


class _PeopleTable:
    """Growing arrays of the people found so far (creation order = row order)."""

    def __init__(self, capacity: int, num_joints: int, tag_dim: int) -> None:
        self.x = np.zeros((capacity, num_joints), dtype=np.int64)
        self.y = np.zeros((capacity, num_joints), dtype=np.int64)
        self.score = np.zeros((capacity, num_joints), dtype=np.float64)
        # float32 like the reference, whose person tag is np.mean of float32 tags. The
        # running sum can round the last bit differently from np.mean's pairwise sum
        # for people with more than 8 joints: only a distance within one float32 step
        # of a rounding boundary or of tag_threshold could decide differently.
        self.tag_sum = np.zeros((capacity, tag_dim), dtype=np.float32)
        self.tag_count = np.zeros(capacity, dtype=np.int64)
        self.key_to_row: dict[float, int] = {}
        self.size = 0

    def mean_tags(self, count: int) -> np.ndarray:
        return self.tag_sum[:count] / self.tag_count[:count, None].astype(np.float32)

    def set_joint(self, rows, joint, x, y, score) -> None:
        self.x[rows, joint] = x
        self.y[rows, joint] = y
        self.score[rows, joint] = score

    def append_tags(self, rows: np.ndarray, tags: np.ndarray) -> None:
        self.tag_sum[rows] += tags
        self.tag_count[rows] += 1

    def new_people(self, joint, x, y, score, tags) -> None:
        """Start one person per candidate; keys are unique and unused (fast path)."""
        n = x.shape[0]
        rows = np.arange(self.size, self.size + n)
        self.set_joint(rows, joint, x, y, score)
        self.tag_sum[rows] = tags
        self.tag_count[rows] = 1
        self.key_to_row.update(zip(tags[:, 0].tolist(), rows.tolist(), strict=True))
        self.size += n

    def new_person_by_key(self, joint, x, y, score, tag) -> None:
        """The reference's ``dict.setdefault(tag[0])`` semantics for one candidate."""
        key = float(tag[0])
        row = self.key_to_row.get(key)
        if row is None:
            row = self.size
            self.key_to_row[key] = row
            self.size += 1
        self.set_joint(row, joint, x, y, score)
        self.tag_sum[row] = tag
        self.tag_count[row] = 1


def _gather_tags(tags: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tag vectors (K, D) at the given pixels; ``tags`` is (J, H, W, D)."""
    return tags[joint, y, x].astype(np.float64)


def _match_joint(
    table: _PeopleTable,
    joint: int,
    x: np.ndarray,
    y: np.ndarray,
    score: np.ndarray,
    tags: np.ndarray,
    *,
    tag_threshold: float,
    max_people: int,
    first: bool,
) -> None:
    """Add the candidates of one joint type to the people table (step 2)."""
    n = x.shape[0]
    if first or table.size == 0:
        matched_rows = np.full(n, -1, dtype=np.int64)
    else:
        grouped = min(table.size, max_people)
        distance = np.linalg.norm(tags[:, None, :] - table.mean_tags(grouped)[None], axis=2)
        cost = np.round(distance) * 100 - score[:, None]
        if n > grouped:
            # The reference pads to a square matrix; the padding steers which of the
            # equally cheap assignments the solver returns, so it is kept.
            cost = np.concatenate([cost, np.full((n, n - grouped), _NO_MATCH_COST)], axis=1)
        rows, cols = min_cost_assignment(cost)
        keep = cols < grouped
        rows, cols = rows[keep], cols[keep]
        accepted = distance[rows, cols] < tag_threshold
        matched_rows = np.full(n, -1, dtype=np.int64)
        matched_rows[rows[accepted]] = cols[accepted]

    new = matched_rows < 0
    new_keys = tags[new, 0]
    collision = len(np.unique(new_keys)) < len(new_keys) or any(
        k in table.key_to_row for k in new_keys.tolist()
    )
    if not collision:
        old = ~new
        table.set_joint(matched_rows[old], joint, x[old], y[old], score[old])
        table.append_tags(matched_rows[old], tags[old])
        table.new_people(joint, x[new], y[new], score[new], tags[new])
        return
    # Rare: equal first tag components. Replay the reference's row-by-row updates.
    for i in range(n):
        row = matched_rows[i]
        if row >= 0:
            table.set_joint(row, joint, x[i], y[i], score[i])
            table.tag_sum[row] += tags[i]
            table.tag_count[row] += 1
        else:
            table.new_person_by_key(joint, x[i], y[i], score[i], tags[i])


# Refinement needs, per person and missing joint, the first argmax over the whole map of
# ``heat - round(||tag - person tag||)``. The rounded distance is never negative, so no
# pixel scores above its heat: once some pixel is known to score ``L``, only pixels whose
# heat reaches ``L`` can win. The joint's peaks give every person such a score, and
# usually only a handful of pixels reach it.
_FULL_MAP_SHARE = 0.25  # above this share of the map, bound runs of pixels instead


# When many pixels could still win (noise-like maps, a person whose tag fits no peak),
# maps are cut into runs of pixels (flat order) at two sizes; a run's heat maximum and
# tag range bound every score inside it, so only runs that can reach a score already
# found elsewhere are looked at more closely: coarse runs first, then the fine runs
# inside the coarse ones that pass, then pixels.
_FINE = 8
_COARSE = 64  # a multiple of _FINE
_SEED_RUNS = 4


def _group_reduce(ufunc: np.ufunc, values: np.ndarray, group: int) -> np.ndarray:
    """``ufunc`` (maximum or minimum) over consecutive groups of ``group`` rows of ``values``.

    ``group`` is a power of two dividing ``len(values)``. Sliding windows of doubling
    width over contiguous memory, then every ``group``-th window: several times faster
    than ``reduceat`` or a reduction over a short trailing axis.
    """
    out = values
    width = 1
    while width < group:
        out = ufunc(out[:-width], out[width:])
        width *= 2
    return np.ascontiguousarray(out[::group])


class _RunBounds:
    """Heat maxima and tag ranges over coarse and fine runs of K flat maps.

    Args:
        heat: (K, P) maps, tag: (K, P, D) tag maps, P a multiple of _COARSE.
    """

    def __init__(self, heat: np.ndarray, tag: np.ndarray) -> None:
        k, size, dim = tag.shape
        ratio = _COARSE // _FINE
        self.fine_max = _group_reduce(np.maximum, heat.reshape(-1), _FINE)
        self.coarse_max = _group_reduce(np.maximum, self.fine_max, ratio).reshape(k, -1)
        self.fine_max = self.fine_max.reshape(k, -1)
        # Tag statistics per dimension, on 1-D arrays (fast contiguous passes).
        planes = [tag[..., d].reshape(-1) for d in range(dim)]
        fine_lo = [_group_reduce(np.minimum, p, _FINE) for p in planes]
        fine_hi = [_group_reduce(np.maximum, p, _FINE) for p in planes]
        self.coarse_lo = np.stack([_group_reduce(np.minimum, p, ratio) for p in fine_lo], -1)
        self.coarse_hi = np.stack([_group_reduce(np.maximum, p, ratio) for p in fine_hi], -1)
        self.coarse_lo = self.coarse_lo.reshape(k, -1, dim)
        self.coarse_hi = self.coarse_hi.reshape(k, -1, dim)
        self.fine_lo = np.stack(fine_lo, -1).reshape(k, -1, dim)
        self.fine_hi = np.stack(fine_hi, -1).reshape(k, -1, dim)


def _least_rounded_distance(lo: np.ndarray, hi: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Lower bound of ``round(||tag - mean||)`` for tags in the box ``[lo, hi]`` (last axis D).

    ``round(d) >= ceil(d - 0.5)``; the relative margin covers float32 rounding of the
    distances computed pixel by pixel.
    """
    gap = np.maximum(lo - mean, 0) + np.maximum(mean - hi, 0)
    distance = np.sqrt((gap * gap).sum(axis=-1))
    return np.ceil(distance - 0.5 - 1e-4 * (1 + distance + np.abs(mean).sum(axis=-1))).clip(min=0)


def _pixel_scores(heat, tag, pixels, mean_tag):
    """``heat - round(||tag - mean_tag||)`` at flat ``pixels``, float32 like the reference."""
    diff = tag[pixels] - mean_tag
    return heat[pixels] - np.round(np.sqrt((diff * diff).sum(axis=-1)))


def _bounded_argmax(heat, tag, bounds: _RunBounds, k: int, seeds, mean_tags) -> np.ndarray:
    """First flat argmax of the refine score of one joint, for M people at once.

    Args:
        heat: (P,) heatmap, tag: (P, D) tag map, flat and padded to whole runs.
        bounds, k: run statistics of the joint's maps (map ``k`` of ``bounds``).
        seeds: flat pixels likely to score well (peaks); they give a score to beat.
        mean_tags: (M, D) the people's tags.

    Returns:
        (M,) flat pixel indices, the same as ``np.argmax`` over the full score map.
    """
    m = mean_tags.shape[0]
    ratio = _COARSE // _FINE
    upper = bounds.coarse_max[k][None] - _least_rounded_distance(
        bounds.coarse_lo[k][None], bounds.coarse_hi[k][None], mean_tags[:, None]
    )  # (M, coarse runs)
    # A score to beat: the seeds and every pixel of each person's most promising runs.
    promising = np.argpartition(-upper, min(_SEED_RUNS, upper.shape[1]) - 1, axis=1)
    pixels = (promising[:, :_SEED_RUNS, None] * _COARSE + np.arange(_COARSE)).reshape(m, -1)
    pixels = np.concatenate([pixels, np.broadcast_to(seeds, (m, seeds.shape[0]))], axis=1)
    lower = _pixel_scores(heat, tag, pixels, mean_tags[:, None, :]).max(axis=1)
    # Every pixel reaching the maximum lies in runs (coarse, then fine) whose bound
    # reaches it too. np.nonzero keeps people sorted and runs in flat order.
    who, coarse = np.nonzero(upper >= lower[:, None])
    fine = coarse[:, None] * ratio + np.arange(ratio)  # (pairs, ratio)
    fine_upper = bounds.fine_max[k][fine] - _least_rounded_distance(
        bounds.fine_lo[k][fine], bounds.fine_hi[k][fine], mean_tags[who][:, None]
    )
    pair, sub = np.nonzero(fine_upper >= lower[who][:, None])
    pixels = ((fine[pair, sub] * _FINE)[:, None] + np.arange(_FINE)).reshape(-1)
    owner = np.repeat(who[pair], _FINE)
    scores = _pixel_scores(heat, tag, pixels, mean_tags[owner])
    # Per person: the largest score, and among equal ones the first pixel (np.argmax).
    starts = np.searchsorted(owner, np.arange(m))
    best = np.maximum.reduceat(scores, starts)
    hits = np.flatnonzero(scores == best[owner])
    return pixels[hits[np.searchsorted(owner[hits], np.arange(m))]]


def _refine_scores(heat: np.ndarray, tag: np.ndarray, mean_tags: np.ndarray) -> np.ndarray:
    """``heat - round(||tag - mean_tag||)`` in float32, as the reference computes it.

    Args:
        heat: (P,) heat of P pixels; tag: (P, D) their tags; mean_tags: (M, D).

    Returns:
        (M, P) scores.
    """
    diff = tag[None] - mean_tags[:, None, :]
    return heat[None] - np.round(np.sqrt((diff * diff).sum(axis=-1)))


def _argmax_among_likely(
    heat: np.ndarray, tag: np.ndarray, seeds: np.ndarray, mean_tags: np.ndarray
) -> np.ndarray | None:
    """First flat argmax of the refine score of one joint's map for M people, when few
    pixels can win; None when too many can (then the run bounds decide).

    Args:
        heat: (P,) the joint's heatmap, flat; tag: (P, D) its tag map, flat.
        seeds: flat pixels likely to score well (the joint's peaks), may be empty.
        mean_tags: (M, D) the people's tags.

    Returns:
        (M,) flat pixel indices, the same as ``np.argmax`` over each full score map.
    """
    if not seeds.size:
        return None
    known = _refine_scores(heat[seeds], tag[seeds], mean_tags).max(axis=1)
    # Pixels that can still win for the person with the lowest known score, in flat
    # order: np.argmax over them picks the same pixel as over the whole map.
    pixels = np.flatnonzero(heat >= known.min())
    if pixels.size > _FULL_MAP_SHARE * heat.size:
        return None
    return pixels[_refine_scores(heat[pixels], tag[pixels], mean_tags).argmax(axis=1)]


def _refine_missing(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    people: np.ndarray,
    xi: np.ndarray,
    yi: np.ndarray,
    cand: Candidates,
) -> None:
    """Step 5, in place on ``people`` (N, J, 3); ``xi, yi`` (N, J) are integer pixels."""
    num_people, num_joints, _ = people.shape
    height, width = heatmaps.shape[1:]
    present = people[:, :, 2] > 0
    missing = ~present & present.any(axis=1, keepdims=True)
    if not missing.any():
        return
    # Each person's mean tag over its detected joints, read back from the tag maps and
    # averaged with np.mean on float32 exactly as the reference does.
    mean_tags = np.zeros((num_people, tags.shape[3]), dtype=np.float32)
    for n in np.flatnonzero(missing.any(axis=1)):
        found = np.flatnonzero(present[n])
        mean_tags[n] = np.mean(tags[found, yi[n, found], xi[n, found]], axis=0)

    size = height * width
    flat_heat = heatmaps.reshape(num_joints, size)
    flat_tags = tags.reshape(num_joints, size, -1)
    found_at: dict[int, np.ndarray] = {}
    hard: list[int] = []
    for j in np.flatnonzero(missing.any(axis=0)).tolist():
        peaks = cand.of_joint(j)
        seeds = cand.y[peaks] * width + cand.x[peaks]
        flat = _argmax_among_likely(flat_heat[j], flat_tags[j], seeds, mean_tags[missing[:, j]])
        if flat is None:
            hard.append(j)
        else:
            found_at[j] = flat
    if hard:
        # The joints where many pixels could win: branch and bound on runs, all at once.
        pad = (-size) % _COARSE
        heat, tag = flat_heat[hard], flat_tags[hard]
        if pad:  # padding never wins: -inf heat, tags that do not widen a run's range
            heat = np.concatenate([heat, np.full((len(hard), pad), -np.inf, np.float32)], 1)
            tag = np.concatenate([tag, np.repeat(tag[:, -1:], pad, axis=1)], 1)
        bounds = _RunBounds(heat, tag)
        for k, j in enumerate(hard):
            peaks = cand.of_joint(j)
            seeds = cand.y[peaks] * width + cand.x[peaks]
            found_at[j] = _bounded_argmax(
                heat[k], tag[k], bounds, k, seeds, mean_tags[missing[:, j]]
            )

    for j, flat in found_at.items():
        who = np.flatnonzero(missing[:, j])
        y, x = np.divmod(flat, width)
        value = heatmaps[j, y, x]
        ok = value > 0
        dx, dy = quarter_offsets(heatmaps, np.full(ok.sum(), j), x[ok], y[ok])
        people[who[ok], j, 0] = x[ok] + 0.5 + dx
        people[who[ok], j, 1] = y[ok] + 0.5 + dy
        people[who[ok], j, 2] = value[ok]


def group_by_tags(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 5,
    adjust: bool = True,
    refine: bool = True,
    joint_order: Sequence[int] | None = None,
    keypoint_set: KeypointSet | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group heatmap peaks into people by their associative-embedding tags.

    Args:
        heatmaps: (J, H, W) joint heatmaps (aggregated over resolutions, flips and
            scales as the caller sees fit). Any float dtype; computed in float32.
        tags: (J, H, W) or (J, H, W, D) tag maps at the same resolution; the last
            axis holds several embeddings (e.g. one per flip/scale) compared jointly.
        detection_threshold: minimum peak value for a candidate (exclusive).
        tag_threshold: maximum tag distance (exclusive) to join an existing person.
        max_people: peaks kept per joint type, and people a candidate may join.
        nms_kernel: odd max-pool window for peak detection.
        adjust: apply the quarter-pixel shift and +0.5 to grouped joints.
        refine: fill missing joints from the heatmaps and the person's mean tag.
        joint_order: order of joint types for grouping; see :func:`resolve_joint_order`.
        keypoint_set: where to take ``grouping_order`` from when ``joint_order`` is None.

    Returns:
        ``(people, scores)``: ``people`` (N, J, 3) float32 of ``x, y, score`` in heatmap
        pixels, in creation order. With ``adjust`` (and for refined joints always) the
        coordinates follow HigherHRNet's convention: pixel ``(c, r)`` spans
        ``[c, c+1) x [r, r+1)``, so subtract 0.5 for pixel-centre coordinates. Missing
        joints are ``(0, 0, 0)``. ``scores`` (N,) float32. No people gives shapes
        (0, J, 3) and (0,).
    """
    heatmaps = np.asarray(heatmaps)
    tags = np.asarray(tags)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (J, H, W), got {heatmaps.shape}")
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(
            f"tags must have shape (J, H, W) or (J, H, W, D) matching heatmaps "
            f"{heatmaps.shape}, got {tags.shape}"
        )
    tags = np.asarray(tags, dtype=np.float32)
    num_joints = heatmaps.shape[0]
    order = resolve_joint_order(num_joints, joint_order, keypoint_set)

    cand: Candidates = find_candidates(
        heatmaps, threshold=detection_threshold, max_candidates=max_people, nms_kernel=nms_kernel
    )
    cand_tags = _gather_tags(tags, cand.joint, cand.x, cand.y)
    table = _PeopleTable(max(len(cand), 1), num_joints, tags.shape[3])
    first = True
    for j in order:
        idx = cand.of_joint(j)
        if idx.shape[0] == 0:
            continue
        _match_joint(
            table,
            j,
            cand.x[idx],
            cand.y[idx],
            cand.score[idx].astype(np.float64),
            cand_tags[idx],
            tag_threshold=tag_threshold,
            max_people=max_people,
            first=first,
        )
        first = False

    n = table.size
    xi, yi = table.x[:n], table.y[:n]
    people = np.zeros((n, num_joints, 3), dtype=np.float32)
    people[:, :, 0] = xi
    people[:, :, 1] = yi
    people[:, :, 2] = table.score[:n]
    if adjust and n:
        present = people[:, :, 2] > 0
        who, joint = np.nonzero(present)
        dx, dy = quarter_offsets(heatmaps, joint, xi[who, joint], yi[who, joint])
        people[who, joint, 0] += dx + 0.5
        people[who, joint, 1] += dy + 0.5
    scores = people[:, :, 2].mean(axis=1) if n else np.zeros(0, dtype=np.float32)
    if refine and n:
        _refine_missing(heatmaps, tags, people, xi, yi, cand)
    return people, scores.astype(np.float32)
