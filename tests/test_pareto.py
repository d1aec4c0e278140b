"""Pareto front and hypervolume: checked against brute force and hand-computed areas."""

import itertools
import math

import numpy as np
import pytest

from rsearch.noise import all_exceed, binomial_se, exceeds, minival_noise, verdict, within_noise
from rsearch.pareto import (
    accuracy_latency_mask,
    hypervolume_2d,
    pareto_mask,
    pareto_mask_by_group,
    pareto_ranks,
    reference_point,
)


def brute_force_front(points: np.ndarray, maximize) -> np.ndarray:
    """The definition, literally: i is on the front iff valid and no valid j dominates it."""
    sign = np.where(maximize, -1.0, 1.0)
    values = points * sign
    valid = [not np.isnan(row).any() for row in values]
    front = []
    for i, a in enumerate(values):
        dominated = any(
            valid[j] and all(b <= a) and any(b < a) for j, b in enumerate(values) if j != i
        )
        front.append(valid[i] and not dominated)
    return np.array(front, dtype=bool)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("maximize", [(True, False), (False, False), (True, True, False)])
def test_front_equals_brute_force_with_ties_and_nans(seed, maximize):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # Few distinct values per column: many exact ties and duplicate rows.
    points = rng.integers(0, 6, size=(n, len(maximize))).astype(float)
    points[rng.random(points.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(
        pareto_mask(points, maximize), brute_force_front(points, maximize)
    )


def test_large_input_crosses_block_boundary():
    rng = np.random.default_rng(7)
    points = rng.random((1300, 2)).round(2)
    np.testing.assert_array_equal(
        pareto_mask(points, (True, False)), brute_force_front(points, (True, False))
    )


def test_two_objectives_sweep_equals_the_pairwise_method_at_scale():
    """Two objectives take the O(n log n) sweep; a constant third column sends the same points
    through the pairwise blocks (it changes no dominance): both must agree, ties and all."""
    rng = np.random.default_rng(11)
    points = rng.random((6000, 2)).round(2)
    points[rng.random(6000) < 0.02, 0] = np.nan
    padded = np.column_stack([points, np.zeros(len(points))])
    np.testing.assert_array_equal(
        pareto_mask(points, (True, False)), pareto_mask(padded, (True, False, False))
    )


def test_duplicates_both_stay_on_the_front_and_nan_rows_never():
    acc = [0.8, 0.8, 0.7, np.nan, 0.9]
    lat = [1.0, 1.0, 2.0, 0.1, np.nan]
    assert accuracy_latency_mask(acc, lat).tolist() == [True, True, False, False, False]


def test_nan_row_does_not_dominate():
    # (nan, 0.1) would dominate everything on latency if NaN were treated as a number.
    assert accuracy_latency_mask([0.5, np.nan], [1.0, 0.1]).tolist() == [True, False]


def test_empty_and_all_nan():
    assert pareto_mask(np.empty((0, 2)), (True, False)).tolist() == []
    assert pareto_mask([[np.nan, 1.0]], (True, False)).tolist() == [False]


def test_by_group_is_independent_per_group():
    acc = [0.9, 0.5, 0.6, 0.95]
    lat = [1.0, 1.0, 1.0, 3.0]
    groups = [10, 10, 350, 350]
    mask = pareto_mask_by_group(np.column_stack([acc, lat]), (True, False), groups)
    # Across groups, row 2 would be dominated by row 0; within its group it is not.
    assert mask.tolist() == [True, False, True, True]


def test_maximize_length_must_match():
    with pytest.raises(ValueError, match="maximize"):
        pareto_mask([[1.0, 2.0]], (True,))


def test_hypervolume_single_point_is_its_box():
    assert hypervolume_2d([0.8], [2.0], ref=(0.0, 10.0)) == pytest.approx(0.8 * 8.0)


def test_hypervolume_staircase_by_hand():
    # Front (lat, acc): (1, .5), (2, .7), (4, .9); ref (acc 0, latency 5).
    # Slabs: [1,2) x .5 + [2,4) x .7 + [4,5) x .9 = .5 + 1.4 + .9 = 2.8
    acc = [0.5, 0.7, 0.9, 0.6, np.nan]
    lat = [1.0, 2.0, 4.0, 3.0, 0.5]  # (3, .6) is dominated; the NaN point adds nothing
    assert hypervolume_2d(acc, lat, ref=(0.0, 5.0)) == pytest.approx(2.8)


def test_hypervolume_clips_at_reference():
    # acc_ref 0.6: only the parts above 0.6 count; the point beyond the latency ref adds nothing.
    acc = [0.5, 0.7, 0.9, 0.99]
    lat = [1.0, 2.0, 4.0, 6.0]
    expected = (4 - 2) * (0.7 - 0.6) + (5 - 4) * (0.9 - 0.6)
    assert hypervolume_2d(acc, lat, ref=(0.6, 5.0)) == pytest.approx(expected)


def test_hypervolume_equals_grid_count_on_random_points():
    # Independent check: count unit cells of a fine integer grid dominated by some point.
    rng = np.random.default_rng(3)
    acc = rng.integers(1, 20, size=15).astype(float)
    lat = rng.integers(0, 19, size=15).astype(float)
    covered = 0
    for a, lo in itertools.product(range(0, 20), range(0, 20)):  # cell [a,a+1] x [l,l+1]
        covered += bool(np.any((acc >= a + 1) & (lat <= lo)))
    assert hypervolume_2d(acc, lat, ref=(0.0, 20.0)) == pytest.approx(covered)


def test_hypervolume_of_front_only_equals_hypervolume_of_all():
    rng = np.random.default_rng(11)
    acc, lat = rng.random(200), rng.random(200)
    front = accuracy_latency_mask(acc, lat)
    assert hypervolume_2d(acc[front], lat[front], (0, 1.0)) == pytest.approx(
        hypervolume_2d(acc, lat, (0, 1.0))
    )


def test_reference_point_defaults():
    assert reference_point([1.0, 2.0], budget_ms=1.5) == (0.0, 1.5)
    assert reference_point([1.0, np.nan, 2.0]) == (0.0, pytest.approx(2.2))


@pytest.mark.parametrize("seed", range(10))
def test_ranks_peel_fronts_by_the_definition(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 5, size=(int(rng.integers(1, 40)), 2)).astype(float)
    points[rng.random(len(points)) < 0.1, 0] = np.nan
    ranks = pareto_ranks(points, (True, False))
    valid = ~np.isnan(points).any(axis=1)
    assert (ranks[~valid] == len(points)).all()
    # rank r = on the brute-force front of the points of rank >= r
    for r in range(ranks[valid].max() + 1 if valid.any() else 0):
        rows = np.flatnonzero(valid & (ranks >= r))
        front = brute_force_front(points[rows], (True, False))
        np.testing.assert_array_equal(ranks[rows] == r, front)


def test_ranks_by_hand():
    # (accuracy max, latency min): A(0.9, 5) B(0.5, 1) front; C(0.4, 2) behind B; D(0.3, 6) behind
    # all
    assert pareto_ranks([[0.9, 5], [0.5, 1], [0.4, 2], [0.3, 6]], (True, False)).tolist() == [
        0,
        0,
        1,
        2,
    ]


# --- rsearch.noise: the shared standard-error maths (numpy only, like this module) ---


def test_binomial_se_and_its_unknowns():
    assert binomial_se(0.9, 2500) == pytest.approx(math.sqrt(0.9 * 0.1 / 2500))
    se = binomial_se([0.5, 0.5, np.nan, 0.5, 1.2], [100, 0, 100, np.nan, 100])
    assert (
        se[0] == pytest.approx(0.05) and np.isnan(se[1:]).all()
    )  # empty split, missing values, no proportion
    assert minival_noise(25_600) == binomial_se(0.5, 25_600)  # the worst case of the same formula
    # Imported here: the scheduler imports Ray, which the rest of this file never needs.
    from rsearch.tune.pareto_asha import minival_noise as scheduler_noise

    assert scheduler_noise is minival_noise  # the scheduler keeps its name, from one place


def test_within_noise_exceeds_and_their_combination():
    np.testing.assert_array_equal(
        within_noise(
            [0.50, 0.50, 0.50], [0.01, 0.01, np.nan], [0.52, 0.60, 0.50], [0.01, 0.01, 0.01]
        ),
        [1.0, 0.0, np.nan],
    )
    assert (
        exceeds(0.03, 0.01) is True and exceeds(0.01, 0.01) is False and exceeds(0.03, None) is None
    )
    assert all_exceed([True, True]) is True and all_exceed([True, None]) is None
    assert all_exceed([None, False]) is False and all_exceed([]) is None
    assert [verdict(v) for v in (True, False, None)] == [
        "exceeds noise",
        "within noise",
        "noise unknown",
    ]


def brute_force_ranks(points: np.ndarray, maximize) -> np.ndarray:
    """Non-dominated sorting by peeling brute-force fronts; NaN rows get len(points)."""
    ranks = np.full(len(points), len(points))
    left = [i for i in range(len(points)) if not np.isnan(points[i]).any()]
    rank = 0
    while left:
        front = brute_force_front(points[left], maximize)
        ranks[[i for i, f in zip(left, front, strict=True) if f]] = rank
        left, rank = [i for i, f in zip(left, front, strict=True) if not f], rank + 1
    return ranks


@pytest.mark.parametrize("seed", range(40))
def test_two_objective_ranks_by_bisection_equal_peeled_fronts(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 80))
    points = rng.integers(0, 6, size=(n, 2)).astype(float)  # ties and duplicates
    points[rng.random(points.shape) < 0.05] = np.nan
    maximize = (bool(seed % 2), bool(seed % 3))
    np.testing.assert_array_equal(
        pareto_ranks(points, maximize), brute_force_ranks(points, maximize)
    )
