"""Peak detection: NMS, top-k candidates, quarter-pixel offsets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from occlupose.decode import find_candidates, nms_heatmaps, quarter_offsets


def test_nms_equals_torch_max_pool():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 23, 31)).astype(np.float32)
    maps[0, 5:8, 5:8] = 2.0  # a plateau keeps all its pixels
    for kernel in (1, 3, 5, 7):
        pooled = F.max_pool2d(torch.from_numpy(maps), kernel, 1, (kernel - 1) // 2).numpy()
        expected = np.where(pooled == maps, maps, 0)
        np.testing.assert_array_equal(nms_heatmaps(maps, kernel), expected)
    assert (nms_heatmaps(maps, 5)[0, 5:8, 5:8] == 2.0).all()


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_candidates_are_the_nms_peaks_above_threshold(kernel):
    rng = np.random.default_rng(kernel)
    maps = rng.random((4, 19, 26)).astype(np.float32)
    maps[1] = np.round(maps[1] * 4) / 4  # many plateaus
    cand = find_candidates(maps, threshold=0.3, max_candidates=10**6, nms_kernel=kernel)
    peaks = nms_heatmaps(maps, kernel)
    expected = set(zip(*np.nonzero(peaks > 0.3), strict=True))
    assert set(zip(cand.joint, cand.y, cand.x, strict=True)) == expected
    np.testing.assert_array_equal(cand.score, maps[cand.joint, cand.y, cand.x])


def test_nms_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        nms_heatmaps(np.zeros((1, 4, 4)), 4)


def test_candidates_are_sorted_thresholded_and_capped():
    maps = np.zeros((2, 20, 30), np.float32)
    maps[0, 3, 4] = 0.5
    maps[0, 10, 20] = 0.9
    maps[0, 15, 5] = 0.05  # below threshold
    maps[0, 3, 6] = 0.4  # within 2 px of a higher peak: suppressed
    maps[1, 19, 29] = 0.3  # corner
    cand = find_candidates(maps, threshold=0.1)
    np.testing.assert_array_equal(cand.joint, [0, 0, 1])
    np.testing.assert_array_equal(cand.x, [20, 4, 29])
    np.testing.assert_array_equal(cand.y, [10, 3, 19])
    np.testing.assert_allclose(cand.score, [0.9, 0.5, 0.3])
    np.testing.assert_array_equal(cand.of_joint(0), [0, 1])
    capped = find_candidates(maps, threshold=0.1, max_candidates=1)
    np.testing.assert_array_equal(capped.x, [20, 29])


def test_equal_scores_follow_torch_topk_order():
    maps = np.zeros((1, 16, 16), np.float32)
    for x in (2, 8, 14):
        for y in (2, 8, 14):
            maps[0, y, x] = 0.5
    cand = find_candidates(maps, max_candidates=4)
    values, index = torch.from_numpy(nms_heatmaps(maps).reshape(1, -1)).topk(4)
    np.testing.assert_array_equal(cand.y * 16 + cand.x, index[0].numpy())


def test_plateaus_can_be_merged():
    maps = np.zeros((1, 10, 10), np.float32)
    maps[0, 4:6, 4:6] = 1.0  # a peak exactly between four pixels
    assert len(find_candidates(maps)) == 4
    merged = find_candidates(maps, merge_plateaus=True)
    assert (merged.x.tolist(), merged.y.tolist()) == ([4], [4])


def test_quarter_offsets_point_to_the_higher_neighbour():
    maps = np.zeros((1, 5, 5), np.float32)
    maps[0, 2, 2] = 1.0
    maps[0, 2, 3] = 0.5  # right higher than left
    maps[0, 1, 2] = 0.5  # up higher than down
    dx, dy = quarter_offsets(maps, np.array([0]), np.array([2]), np.array([2]))
    assert (dx[0], dy[0]) == (0.25, -0.25)
    # Equal neighbours and the clamped border both give -0.25.
    dx, dy = quarter_offsets(maps, np.array([0, 0]), np.array([0, 4]), np.array([0, 4]))
    np.testing.assert_array_equal(dx, [-0.25, -0.25])
