"""min_cost_assignment: optimal like scipy, with the reference solver's choice among ties."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from occlupose.decode import min_cost_assignment


@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 7), (7, 3), (12, 12)])
def test_total_cost_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        # Grouping-like costs: rounded distances x 100 minus a per-row score, full of ties.
        cost = np.round(rng.random(shape) * 3) * 100 - rng.integers(1, 6, (shape[0], 1)) / 8
        rows, cols = min_cost_assignment(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert len(rows) == min(shape) and len(set(cols.tolist())) == len(cols)
        np.testing.assert_array_equal(rows, np.sort(rows))
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum())


def test_tie_breaking_of_the_reference_solver():
    # Six candidates (rows) for five people plus one padding column, as tag grouping
    # builds it: 100 x rounded tag distance minus the candidate's score. Row 5 ties
    # between people 2 and 4; the solver the reference grouping uses gives it person 2
    # (scipy's picks person 4: equally cheap, different people).
    distances = np.array(
        [[1, 0, 2, 3, 2], [0, 1, 1, 2, 1], [2, 3, 1, 0, 1], [2, 3, 1, 0, 1], [2, 3, 1, 0, 1],
         [1, 2, 0, 1, 0]]
    )  # fmt: skip
    scores = np.array([0.875, 0.75, 0.5, 0.375, 0.25, 0.125])
    cost = np.concatenate([distances * 100.0 - scores[:, None], np.full((6, 1), 1e10)], axis=1)
    rows, cols = min_cost_assignment(cost)
    np.testing.assert_array_equal(cols, [1, 0, 3, 4, 5, 2])
    assert cost[rows, cols].sum() == pytest.approx(cost[linear_sum_assignment(cost)].sum())


def test_ties_are_broken_as_the_reference_grouping_breaks_them():
    # HigherHRNet's grouping calls munkres.Munkres().compute on padded cost matrices full
    # of ties; every pair must be the one it returns.
    from munkres import Munkres

    rng = np.random.default_rng(7)
    for _ in range(300):
        rows, cols = rng.integers(1, 31, 2)
        cost = np.round(rng.random((rows, cols)) * 3) * 100 - rng.integers(1, 6, (rows, 1)) / 8
        if rows > cols:
            cost = np.concatenate([cost, np.full((rows, rows - cols), 1e10)], axis=1)
        expected = np.array(Munkres().compute(cost.tolist()))
        np.testing.assert_array_equal(np.c_[min_cost_assignment(cost)], expected)


def test_warm_start_takes_the_first_cheapest_free_column():
    cost = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(min_cost_assignment(cost)[1], [0, 1])


def test_empty_and_bad_input():
    rows, cols = min_cost_assignment(np.zeros((0, 3)))
    assert rows.shape == cols.shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        min_cost_assignment(np.array([[np.inf]]))
    with pytest.raises(ValueError, match="2-D"):
        min_cost_assignment(np.zeros(3))
