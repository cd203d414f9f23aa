"""Minimum-cost assignment with a fixed, documented choice among equally cheap solutions.

Tag grouping scores a candidate/person pair with ``round(tag distance) * 100 - score``.
The score term depends on the candidate only, so any reshuffle of candidates between
people that keeps the sum of rounded distances is *exactly* as cheap: ties are the
rule, not the exception, and which optimum a solver returns changes who ends up in
which person. ``scipy.optimize.linear_sum_assignment`` finds an optimum too, but not
the same one as the solver the HigherHRNet reference grouping is run with (the
``munkres`` package's compiled kernel), so :func:`group_by_tags` uses this solver.

Algorithm (Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES
2016; the shortest-augmenting-path method of Jonker and Volgenant):

1. Warm start: every row gets the potential ``u_i = min_j c_ij`` and, in row order,
   takes the first still-free column where that minimum is reached.
2. Each row left unmatched grows a shortest augmenting path (Dijkstra on reduced costs
   ``c_ij - u_i - v_j``). Unvisited columns are scanned from the last index down; the
   next column is the cheapest one, a free column winning ties (the last such in scan
   order), otherwise the first one scanned. A visited column is removed by moving the
   last unvisited column into its slot.

The inner loop over columns is vectorised; the outer loops run once per augmenting
step, which is a handful per row in practice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["min_cost_assignment"]


def _augment(
    cost: np.ndarray,
    cur: int,
    u: np.ndarray,
    v: np.ndarray,
    row4col: np.ndarray,
    col4row: np.ndarray,
) -> None:
    """Grow a shortest augmenting path from free row ``cur`` and flip it (in place)."""
    m = cost.shape[1]
    remaining = np.arange(m - 1, -1, -1)
    nrem = m
    shortest = np.full(m, np.inf)
    path = np.full(m, -1, dtype=np.int64)
    visited_rows = []
    visited_cols = []
    min_val = 0.0
    i = cur
    sink = -1
    while sink < 0:
        visited_rows.append(i)
        cols = remaining[:nrem]
        # Same association order as the scalar recurrence: ((min + c) - u) - v.
        reduced = min_val + cost[i, cols] - u[i] - v[cols]
        better = reduced < shortest[cols]
        shortest[cols[better]] = reduced[better]
        path[cols[better]] = i
        values = shortest[cols]
        lowest = values.min()
        if not np.isfinite(lowest):
            raise ValueError("cost matrix has no finite complete assignment")
        at_min = np.flatnonzero(values == lowest)
        free_at_min = at_min[row4col[cols[at_min]] < 0]
        index = int(free_at_min[-1]) if free_at_min.size else int(at_min[0])
        min_val = float(lowest)
        j = int(cols[index])
        if row4col[j] < 0:
            sink = j
        else:
            i = int(row4col[j])
            visited_cols.append(j)
            nrem -= 1
            remaining[index] = remaining[nrem]

    u[cur] += min_val
    if visited_cols:
        vc = np.asarray(visited_cols)
        u[row4col[vc]] += min_val - shortest[vc]
        v[vc] -= min_val - shortest[vc]
    j = sink
    while True:
        i = int(path[j])
        row4col[j] = i
        col4row[i], j = j, int(col4row[i])
        if i == cur:
            break


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve the rectangular linear assignment problem (minimum total cost).

    Args:
        cost: (n, m) finite float array.

    Returns:
        ``(rows, cols)``: ``min(n, m)`` pairs, sorted by row, like
        ``scipy.optimize.linear_sum_assignment``. The total cost equals scipy's; among
        several optimal assignments this returns the one described in the module
        docstring.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost matrix must be 2-D, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost matrix must be finite")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()

    u = cost.min(axis=1)
    v = np.zeros(m)
    row4col = np.full(m, -1, dtype=np.int64)
    col4row = np.full(n, -1, dtype=np.int64)
    # Warm start, row by row: the first free column among each row's cheapest ones.
    tight = cost == u[:, None]
    first = tight.argmax(axis=1)
    if np.unique(first).shape[0] == n:  # no row wants another's column: all at once
        col4row[:] = first
        row4col[first] = np.arange(n)
    else:
        tight_rows, tight_cols = np.nonzero(tight)
        starts = np.searchsorted(tight_rows, np.arange(n + 1))
        for i in range(n):
            for j in tight_cols[starts[i] : starts[i + 1]].tolist():
                if row4col[j] < 0:
                    row4col[j] = i
                    col4row[i] = j
                    break
    for cur in range(n):
        if col4row[cur] < 0:
            _augment(cost, cur, u, v, row4col, col4row)

    rows = np.arange(n, dtype=np.int64)
    if transposed:
        order = np.argsort(col4row)
        return col4row[order], rows[order]
    return rows, col4row
