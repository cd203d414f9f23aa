"""Peak detection on heatmaps: max-pool NMS, top-k candidates, quarter-pixel refinement.

Conventions shared by the decoders:

* ``heatmaps`` is a float array ``(J, H, W)``: one map per joint type, values are
  detection confidences (the network's unnormalised Gaussian responses).
* A *peak* or *candidate* sits on an integer pixel ``(x, y)`` = ``(column, row)``.
* :func:`quarter_offsets` gives the HigherHRNet sub-pixel shift: a quarter pixel
  towards the higher of the two neighbours, along x and along y separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Candidates", "find_candidates", "nms_heatmaps", "quarter_offsets"]


def _check_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (J, H, W), got {heatmaps.shape}")
    return np.ascontiguousarray(heatmaps, dtype=np.float32)


def _max_filter(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Maximum over the ``kernel x kernel`` window of every pixel, windows clipped at borders.

    Separable and in place (``kernel - 1`` passes per axis): several times faster than
    ``torch.nn.functional.max_pool2d`` or ``scipy.ndimage.maximum_filter`` on CPU.
    """
    r = (kernel - 1) // 2
    rows = heatmaps.copy()
    for s in range(1, r + 1):
        np.maximum(rows[..., :-s], heatmaps[..., s:], out=rows[..., :-s])
        np.maximum(rows[..., s:], heatmaps[..., :-s], out=rows[..., s:])
    out = rows.copy()
    for s in range(1, r + 1):
        np.maximum(out[..., :-s, :], rows[..., s:, :], out=out[..., :-s, :])
        np.maximum(out[..., s:, :], rows[..., :-s, :], out=out[..., s:, :])
    return out


def _is_local_max(
    heatmaps: np.ndarray, joint: np.ndarray, flat: np.ndarray, radius: int
) -> np.ndarray:
    """Whether each given pixel is >= every pixel of its (2r+1)^2 window (clipped at borders).

    The same test as NMS (pooled == value), done on the given pixels only: first against
    the 4 nearest neighbours, which few pixels survive, then the whole window.
    """
    height, width = heatmaps.shape[1:]
    values = heatmaps.reshape(-1)
    index = joint * (height * width) + flat
    y, x = np.divmod(flat, width)
    keep = np.ones(flat.shape[0], dtype=bool)
    cross = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    window = [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy, dx) != (0, 0) and (dy, dx) not in cross
    ]
    for stage in (cross if radius else [], window):
        idx = np.flatnonzero(keep)
        base, yy, xx = index[idx], y[idx], x[idx]
        value = values[base]
        ok = np.ones(idx.shape[0], dtype=bool)
        for dy, dx in stage:
            # Offsets leaving the map are cut back to the border: a pixel of the
            # clipped window, so the test stays that of the clipped window.
            step_y = np.clip(yy + dy, 0, height - 1) - yy if dy else 0
            step_x = np.clip(xx + dx, 0, width - 1) - xx if dx else 0
            ok &= values[base + step_y * width + step_x] <= value
        keep[idx] = ok
    return keep


def _check_kernel(kernel: int) -> None:
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"nms kernel must be a positive odd integer, got {kernel}")


def nms_heatmaps(heatmaps: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Keep only the local maxima of each heatmap.

    A pixel survives when it equals the maximum of the ``kernel x kernel`` window
    centred on it (the window clipped at the borders, as ``torch.nn.MaxPool2d`` with
    padding ``(kernel - 1) // 2`` does); every other pixel is set to 0. Plateaus keep
    all their pixels, exactly like the HigherHRNet parser.

    Args:
        heatmaps: (J, H, W) float array.
        kernel: odd window size (HigherHRNet uses 5).

    Returns:
        (J, H, W) float32 array, the heatmaps with non-maxima zeroed.
    """
    heatmaps = _check_heatmaps(heatmaps)
    _check_kernel(kernel)
    pooled = _max_filter(heatmaps, kernel)
    return np.where(pooled == heatmaps, heatmaps, np.float32(0))


@dataclass
class Candidates:
    """Peak candidates of all joint types, sorted by joint, then score (descending).

    Attributes:
        joint: (K,) int64 joint type of each candidate.
        x: (K,) int64 column of the peak pixel.
        y: (K,) int64 row of the peak pixel.
        score: (K,) float32 heatmap value at the peak.
    """

    joint: np.ndarray
    x: np.ndarray
    y: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.joint.shape[0])

    def of_joint(self, j: int) -> np.ndarray:
        """Indices (into these arrays) of the candidates of joint type ``j``."""
        lo, hi = np.searchsorted(self.joint, [j, j + 1])
        return np.arange(lo, hi)


def find_candidates(
    heatmaps: np.ndarray,
    *,
    threshold: float = 0.1,
    max_candidates: int = 30,
    nms_kernel: int = 5,
    merge_plateaus: bool = False,
) -> Candidates:
    """Peaks of each heatmap above ``threshold``, at most ``max_candidates`` per joint.

    This is HigherHRNet's ``top_k`` followed by its detection threshold: NMS, then
    per joint the ``max_candidates`` highest peaks (``torch.topk``, whose order among
    equal scores the reference grouping inherits), keeping those strictly above
    ``threshold``.

    Args:
        heatmaps: (J, H, W) float array.
        threshold: minimum heatmap value (exclusive).
        max_candidates: maximum number of peaks per joint type.
        nms_kernel: odd max-pool window of :func:`nms_heatmaps`.
        merge_plateaus: keep one pixel (the first in flat order) of a flat-topped peak.
            NMS keeps every pixel of a plateau (a peak exactly between pixels gives 2
            or 4 equal ones); the tag grouping does too, for fidelity to HigherHRNet.

    Returns:
        :class:`Candidates` with integer pixel positions.
    """
    heatmaps = _check_heatmaps(heatmaps)
    num_joints, _, width = heatmaps.shape
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
    _check_kernel(nms_kernel)
    hw = heatmaps.shape[1] * heatmaps.shape[2]
    index = np.flatnonzero(heatmaps > threshold)
    joint, flat = np.divmod(index, hw)
    keep = _is_local_max(heatmaps, joint, flat, (nms_kernel - 1) // 2)
    joint, flat = joint[keep], flat[keep]
    score = heatmaps.reshape(-1)[index[keep]]
    if merge_plateaus:
        keep = _plateau_representatives(joint, flat, score, width, (nms_kernel - 1) // 2)
        joint, flat, score = joint[keep], flat[keep], score[keep]
    order = np.lexsort((flat, -score, joint))
    joint, flat, score = joint[order], flat[order], score[order]
    rank = np.arange(joint.shape[0]) - np.searchsorted(joint, joint)
    # Equal scores within a joint: only then does the order among them (and, at the
    # k-th place, the choice) depend on the top-k routine. Ask torch.topk for those
    # joints so the result is the reference implementation's, bit for bit.
    tied = np.unique(joint[1:][(joint[1:] == joint[:-1]) & (score[1:] == score[:-1])])
    if merge_plateaus:
        tied = tied[:0]  # not the reference's candidates anyway
    keep = rank < max_candidates
    joint, flat, score = joint[keep], flat[keep], score[keep]
    if tied.size:
        untied = ~np.isin(joint, tied)
        k = min(max_candidates, hw)
        peaks = nms_heatmaps(heatmaps[tied], nms_kernel).reshape(tied.shape[0], -1)
        # Row by row: a batched topk hands the rows to a thread pool, whose start-up costs
        # milliseconds on a busy CPU; each row's result is the same.
        rows = [torch.from_numpy(row).topk(k) for row in peaks]
        values = np.stack([r.values.numpy() for r in rows])
        index = np.stack([r.indices.numpy() for r in rows])
        above = values > threshold
        joint = np.concatenate([joint[untied], np.broadcast_to(tied[:, None], above.shape)[above]])
        flat = np.concatenate([flat[untied], index[above]])
        score = np.concatenate([score[untied], values[above]])
        order = np.argsort(joint, kind="stable")
        joint, flat, score = joint[order], flat[order], score[order]
    return Candidates(
        joint=joint.astype(np.int64),
        x=(flat % width).astype(np.int64),
        y=(flat // width).astype(np.int64),
        score=score.astype(np.float32),
    )


def _plateau_representatives(
    joint: np.ndarray, flat: np.ndarray, score: np.ndarray, width: int, radius: int
) -> np.ndarray:
    """Mask dropping every peak that equals an earlier (flat order) one of its joint nearby."""
    keep = np.ones(joint.shape[0], dtype=bool)
    order = np.lexsort((flat, score, joint))
    same = (joint[order][1:] == joint[order][:-1]) & (score[order][1:] == score[order][:-1])
    if not same.any():
        return keep
    # Groups of equal (joint, score) are tiny; compare their members pairwise.
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    for lo, hi in zip(starts, [*starts[1:], order.shape[0]], strict=True):
        members = order[lo:hi]
        for i, a in enumerate(members):
            if not keep[a]:
                continue
            for b in members[i + 1 :]:
                ya, xa = divmod(int(flat[a]), width)
                yb, xb = divmod(int(flat[b]), width)
                if max(abs(ya - yb), abs(xa - xb)) <= radius:
                    keep[b] = False
    return keep


def quarter_offsets(
    heatmaps: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """HigherHRNet's sub-pixel shift of integer peaks.

    For each peak, ``dx = +0.25`` when the right neighbour is strictly higher than
    the left one and ``-0.25`` otherwise; ``dy`` likewise with the lower and upper
    neighbours. Neighbours outside the map are clamped to the border pixel.

    Args:
        heatmaps: (J, H, W) float array the peaks come from.
        joint, x, y: (K,) integer arrays, joint type and pixel of each peak.

    Returns:
        ``(dx, dy)``, two (K,) float64 arrays with values ``+-0.25``.
    """
    _, height, width = heatmaps.shape
    joint, x, y = (np.asarray(a, dtype=np.int64) for a in (joint, x, y))
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    below = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    above = heatmaps[joint, np.maximum(y - 1, 0), x]
    dx = np.where(right > left, 0.25, -0.25)
    dy = np.where(below > above, 0.25, -0.25)
    return dx, dy
