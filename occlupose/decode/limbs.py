"""Grouping by limb fields (part affinity fields) with optimal matching per limb.

Pipeline:

1. Candidates per joint: max-pool NMS (one pixel per flat-topped peak), top
   ``max_people`` peaks above ``detection_threshold``, quarter-pixel refinement
   (:mod:`occlupose.decode.peaks`).
2. Every candidate pair of every limb ``(a, b)`` is scored by sampling the limb's field
   at ``num_samples`` points of the segment ``a -> b`` and projecting on the segment's
   direction (a discrete line integral, all pairs of a limb at once). A pair is valid
   when at least ``min_fraction`` of the samples exceed ``field_threshold`` and the
   mean, minus a penalty for limbs longer than half the map height, is positive.
3. Optimal one-to-one matching per limb (``scipy.optimize.linear_sum_assignment``,
   maximising the total pair score over valid pairs).
4. Assembly: limbs are visited tree edges first (breadth-first from ``root``), then the
   remaining (cycle) edges; a matched pair extends the person holding one end, starts a
   person when neither end is taken, and merges two people holding its two ends when
   they share no joint type. Candidates matched by no limb become one-joint people.
5. Person score: sum of its joint scores / J (mean joint score x fraction present).

Coordinates follow :func:`~occlupose.decode.group_by_tags`: with ``adjust`` the
quarter-pixel shift and +0.5 (pixel ``(c, r)`` spans ``[c, c+1) x [r, r+1)``).
A person whose visible joints are not connected through visible limbs (e.g. a lone
wrist whose elbow is hidden) comes out as several people: limb fields alone cannot
join them. The decoder joins them with a completer afterwards
(:func:`~occlupose.decode.join_fragments`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from occlupose.decode.peaks import find_candidates, quarter_offsets
from occlupose.structures.keypoint_set import KeypointSet

__all__ = ["group_by_limbs", "limb_visit_order", "score_limb_pairs"]


def _graph_center(num_joints: int, limbs: Sequence[tuple[int, int]]) -> int:
    """The joint with the smallest eccentricity (ties: lowest index) of the limb graph."""
    neighbours = [[] for _ in range(num_joints)]
    for a, b in limbs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    best, best_ecc = 0, None
    for start in range(num_joints):
        depth = {start: 0}
        queue = deque([start])
        while queue:
            j = queue.popleft()
            for k in neighbours[j]:
                if k not in depth:
                    depth[k] = depth[j] + 1
                    queue.append(k)
        ecc = (-len(depth), max(depth.values()))  # prefer the largest component
        if best_ecc is None or ecc < best_ecc:
            best, best_ecc = start, ecc
    return best


def limb_visit_order(
    num_joints: int, limbs: Sequence[tuple[int, int]], root: int | None = None
) -> list[int]:
    """Limb indices in assembly order: breadth-first tree edges from ``root``, then the rest.

    ``root`` defaults to the centre of the limb graph (for COCO, a shoulder), so tree
    paths are short. Joints outside ``root``'s component are reached from their own
    smallest joint index.
    """
    if root is None:
        root = _graph_center(num_joints, limbs)
    incident = [[] for _ in range(num_joints)]
    for i, (a, b) in enumerate(limbs):
        incident[a].append(i)
        incident[b].append(i)
    seen = [False] * num_joints
    tree: list[int] = []
    for start in [root, *range(num_joints)]:
        if seen[start]:
            continue
        seen[start] = True
        queue = deque([start])
        while queue:
            j = queue.popleft()
            for i in incident[j]:
                other = limbs[i][0] + limbs[i][1] - j
                if not seen[other]:
                    seen[other] = True
                    tree.append(i)
                    queue.append(other)
    in_tree = set(tree)
    return tree + [i for i in range(len(limbs)) if i not in in_tree]


def score_limb_pairs(
    field_x: np.ndarray,
    field_y: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    num_samples: int = 10,
    field_threshold: float = 0.05,
    min_fraction: float = 0.8,
    max_length: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score every (start, end) candidate pair of one limb against its field.

    Args:
        field_x, field_y: (H, W) the limb's field components.
        start: (A, 2) candidate positions ``x, y`` of the limb's first joint, in
            pixel-centre coordinates (pixel ``(c, r)`` at ``(c, r)``).
        end: (B, 2) likewise for the second joint.
        num_samples: points sampled on each segment, ends included.
        field_threshold: a sample supports the pair when its projection exceeds this.
        min_fraction: fraction of supporting samples needed for a valid pair.
        max_length: segments longer than this are penalised by ``max_length / length - 1``
            (OpenPose's prior); None disables it.

    Returns:
        ``(score, valid)``: (A, B) float mean projection (with the length penalty) and
        (A, B) bool.
    """
    height, width = field_x.shape
    start = np.asarray(start, dtype=np.float32).reshape(-1, 2)
    end = np.asarray(end, dtype=np.float32).reshape(-1, 2)
    delta = end[None, :, :] - start[:, None, :]  # (A, B, 2)
    length = np.hypot(delta[..., 0], delta[..., 1])
    unit = delta / np.maximum(length, 1e-6)[..., None]
    t = np.linspace(0.0, 1.0, num_samples, dtype=np.float32)[:, None]  # (S, 1)
    # Nearest pixel of every sample point, as flat indices into the field.
    cols = np.floor(start[:, None, None, 0] + t * delta[:, None, :, 0] + 0.5).astype(np.int64)
    rows = np.floor(start[:, None, None, 1] + t * delta[:, None, :, 1] + 0.5).astype(np.int64)
    flat = np.clip(rows, 0, height - 1) * width + np.clip(cols, 0, width - 1)  # (A, S, B)
    projection = (
        field_x.reshape(-1)[flat] * unit[:, None, :, 0]
        + field_y.reshape(-1)[flat] * unit[:, None, :, 1]
    )  # (A, S, B)
    score = projection.mean(axis=1)
    if max_length is not None:
        score = score + np.minimum(max_length / np.maximum(length, 1e-6) - 1.0, 0.0)
    fraction = (projection > field_threshold).mean(axis=1)
    valid = (fraction >= min_fraction) & (score > 0) & (length > 1e-6)
    return score, valid


def _disjoint(first: list[int], second: list[int]) -> bool:
    """Whether two people share no joint type."""
    return all(x < 0 or y < 0 for x, y in zip(first, second, strict=True))


def _limb_list(limbs: KeypointSet | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if isinstance(limbs, KeypointSet):
        return [tuple(limb) for limb in limbs.limbs]
    return [(int(a), int(b)) for a, b in limbs]


def group_by_limbs(
    heatmaps: np.ndarray,
    limb_fields: np.ndarray,
    limbs: KeypointSet | Sequence[tuple[int, int]],
    *,
    detection_threshold: float = 0.1,
    max_people: int = 30,
    nms_kernel: int = 5,
    num_samples: int = 10,
    field_threshold: float = 0.05,
    min_fraction: float = 0.8,
    length_prior: bool = True,
    min_joints: int = 1,
    root: int | None = None,
    adjust: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Group heatmap peaks into people with limb fields and per-limb optimal matching.

    Args:
        heatmaps: (J, H, W) joint heatmaps.
        limb_fields: (2L, H, W) fields, channels ``[x_0, y_0, x_1, y_1, ...]`` in the
            order of ``limbs`` (as rendered by
            :func:`occlupose.data.targets.render_limb_fields`).
        limbs: a :class:`KeypointSet` (its ``limbs``) or L joint pairs ``(a, b)``; the
            field of limb ``(a, b)`` points from ``a`` to ``b``.
        detection_threshold: minimum peak value for a candidate (exclusive).
        max_people: peaks kept per joint type (the most people that can be found).
        nms_kernel: odd max-pool window for peak detection.
        num_samples, field_threshold, min_fraction: pair scoring, see
            :func:`score_limb_pairs`.
        length_prior: penalise limbs longer than half the map height (OpenPose).
        min_joints: people with fewer joints are dropped.
        root: joint the assembly tree starts from (default: the graph centre).
        adjust: quarter-pixel shift and +0.5 on the output coordinates.

    Returns:
        ``(people, scores)``: (N, J, 3) float32 ``x, y, score`` in heatmap pixels
        (missing joints ``(0, 0, 0)``), sorted by decreasing score; (N,) float32.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    limb_fields = np.asarray(limb_fields, dtype=np.float32)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (J, H, W), got {heatmaps.shape}")
    limb_list = _limb_list(limbs)
    num_joints, height, width = heatmaps.shape
    if limb_fields.shape != (2 * len(limb_list), height, width):
        raise ValueError(
            f"limb_fields must have shape (2L, H, W) = {(2 * len(limb_list), height, width)} "
            f"for {len(limb_list)} limbs, got {limb_fields.shape}"
        )
    for a, b in limb_list:
        if not (0 <= a < num_joints and 0 <= b < num_joints):
            raise ValueError(f"limb ({a}, {b}) refers to a joint outside 0..{num_joints - 1}")

    cand = find_candidates(
        heatmaps,
        threshold=detection_threshold,
        max_candidates=max_people,
        nms_kernel=nms_kernel,
        merge_plateaus=True,
    )
    dx, dy = quarter_offsets(heatmaps, cand.joint, cand.x, cand.y)
    position = np.stack([cand.x + dx, cand.y + dy], axis=1)  # pixel-centre coordinates
    num_cand = len(cand)

    # Assembly state (plain lists: this loop runs once per matched pair): each person
    # slot holds a candidate index per joint type (-1: none); owner maps a candidate
    # to its slot.
    slots: list[list[int] | None] = []
    owner = [-1] * num_cand
    max_length = height / 2 if length_prior else None
    for limb in limb_visit_order(num_joints, limb_list, root):
        a, b = limb_list[limb]
        ia, ib = cand.of_joint(a), cand.of_joint(b)
        if ia.size == 0 or ib.size == 0:
            continue
        score, valid = score_limb_pairs(
            limb_fields[2 * limb],
            limb_fields[2 * limb + 1],
            position[ia],
            position[ib],
            num_samples=num_samples,
            field_threshold=field_threshold,
            min_fraction=min_fraction,
            max_length=max_length,
        )
        if not valid.any():
            continue
        rows, cols = linear_sum_assignment(np.where(valid, score, -1.0), maximize=True)
        ok = valid[rows, cols]
        for ca, cb in zip(ia[rows[ok]].tolist(), ib[cols[ok]].tolist(), strict=True):
            pa, pb = owner[ca], owner[cb]
            if pa < 0 and pb < 0:
                person = [-1] * num_joints
                person[a], person[b] = ca, cb
                owner[ca] = owner[cb] = len(slots)
                slots.append(person)
            elif pb < 0:
                if slots[pa][b] < 0:
                    slots[pa][b] = cb
                    owner[cb] = pa
            elif pa < 0:
                if slots[pb][a] < 0:
                    slots[pb][a] = ca
                    owner[ca] = pb
            elif pa != pb and _disjoint(slots[pa], slots[pb]):
                # Two fragments of one person, joined by this limb.
                for j, c in enumerate(slots[pb]):
                    if c >= 0:
                        slots[pa][j] = c
                        owner[c] = pa
                slots[pb] = None

    # Candidates no limb claimed are people of one joint.
    members = np.full((len(slots) + num_cand, num_joints), -1, dtype=np.int64)
    alive = [n for n, person in enumerate(slots) if person is not None]
    if alive:
        members[: len(alive)] = [slots[n] for n in alive]
    lone = np.flatnonzero(np.asarray(owner, dtype=np.int64) < 0)
    members[len(alive) + np.arange(lone.size), cand.joint[lone]] = lone
    members = members[: len(alive) + lone.size]
    members = members[(members >= 0).sum(axis=1) >= min_joints]
    people = np.zeros((members.shape[0], num_joints, 3), dtype=np.float32)
    present = members >= 0
    who, joint = np.nonzero(present)
    c = members[who, joint]
    offset = 0.5 if adjust else 0.0
    people[who, joint, 0] = (position[c, 0] if adjust else cand.x[c]) + offset
    people[who, joint, 1] = (position[c, 1] if adjust else cand.y[c]) + offset
    people[who, joint, 2] = cand.score[c]
    scores = people[:, :, 2].sum(axis=1) / max(num_joints, 1)
    order = np.argsort(-scores, kind="stable")
    return people[order], scores[order].astype(np.float32)
