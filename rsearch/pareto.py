"""Pareto fronts and 2-D hypervolume, in numpy only.

Shared by the results store (the `pareto` column), the search benchmark (hypervolume
of the grid vs the adaptive search) and the dashboards. No pandas, no plotting here,
as in Optuna's `_pareto_front.py`: the maths stays small and testable on its own.

Conventions:
- A point dominates another when it is at least as good in every objective and
  strictly better in one. Exact duplicates therefore do not dominate each other:
  both stay on the front (a repeated configuration is reported, not hidden).
- A row with a NaN in any objective is never on the front and dominates nothing
  (a failed or unfinished trial must not push a real result off the front).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Rows compared at once in pareto_mask (three or more objectives; two take _front_2d's sweep):
# bounds the (block x n x k) temporary.
_BLOCK = 512


def _as_minimisation(objectives, maximize: Sequence[bool]) -> np.ndarray:
    """Return a float (n, k) copy where smaller is better in every column."""
    values = np.array(objectives, dtype=float, copy=True)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"objectives: expected a (n, k) array, got shape {values.shape}")
    flags = np.asarray(maximize, dtype=bool)
    if flags.shape != (values.shape[1],):
        raise ValueError(
            f"maximize: expected {values.shape[1]} flags, got {flags.shape[0] if flags.ndim else 1}"
        )
    values[:, flags] *= -1.0
    return values


def pareto_mask(objectives, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `objectives` (n points x k objectives).

    `maximize[j]` says whether objective j is maximised (else minimised).
    """
    values = _as_minimisation(objectives, maximize)
    valid = ~np.isnan(values).any(axis=1)
    mask = np.zeros(len(values), dtype=bool)
    candidates = values[valid]
    if len(candidates) == 0:
        return mask
    if candidates.shape[1] == 2:
        mask[np.flatnonzero(valid)] = _front_2d(candidates)
        return mask
    dominated = np.zeros(len(candidates), dtype=bool)
    for start in range(0, len(candidates), _BLOCK):
        block = candidates[start : start + _BLOCK]  # the points that might be dominated
        # others[j] <= block[i] everywhere and < somewhere  =>  block[i] is dominated.
        no_worse = (candidates[None, :, :] <= block[:, None, :]).all(axis=2)
        better = (candidates[None, :, :] < block[:, None, :]).any(axis=2)
        dominated[start : start + _BLOCK] = (no_worse & better).any(axis=1)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def pareto_ranks(objectives, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting: 0 for the front, 1 for the front once 0 is removed, ...

    Rows with a NaN get len(objectives) (behind every front)."""
    values = np.asarray(objectives, dtype=float)
    ranks = np.full(len(values), len(values), dtype=int)
    if len(values) == 0:
        return ranks
    left = np.flatnonzero(~np.isnan(values.reshape(len(values), -1)).any(axis=1))
    if values.ndim == 2 and values.shape[1] == 2:
        ranks[left] = _ranks_2d(_as_minimisation(values[left], maximize))
        return ranks
    rank = 0
    while len(left):
        front = pareto_mask(values[left], maximize)
        ranks[left[front]] = rank
        left, rank = left[~front], rank + 1
    return ranks


def pareto_mask_by_group(objectives, maximize: Sequence[bool], groups) -> np.ndarray:
    """pareto_mask computed separately within each group (e.g. each epoch regime)."""
    values = np.asarray(objectives, dtype=float)
    keys = np.asarray(groups)
    if len(keys) != len(values):
        raise ValueError(f"groups: expected {len(values)} labels, got {len(keys)}")
    mask = np.zeros(len(values), dtype=bool)
    for key in _unique(keys):
        rows = np.flatnonzero(keys == key)
        mask[rows] = pareto_mask(values[rows], maximize)
    return mask


def _front_2d(values: np.ndarray) -> np.ndarray:
    """The non-dominated rows of n x 2 values (both minimised, no NaN) in O(n log n): sort by
    the first objective, then the second, and sweep (as Optuna's _is_pareto_front_2d). A row
    is dominated when an earlier row in that order has a smaller second value, or the same
    second value at a smaller first one; an exact duplicate of a front row stays on it."""
    order = np.lexsort((values[:, 1], values[:, 0]))
    first, second = values[order, 0], values[order, 1]
    best = np.minimum.accumulate(second)
    earlier_best = np.concatenate(([np.inf], best[:-1]))  # the smallest second value before
    # The first value of the row that first reached each running minimum (the smallest first
    # value among the rows holding it, by the sort).
    reached = np.flatnonzero(np.concatenate(([True], best[1:] < best[:-1])))
    holder_first = first[reached][np.searchsorted(reached, np.arange(len(order)), "right") - 1]
    holder_before = np.concatenate(([np.inf], holder_first[:-1]))
    dominated = (earlier_best < second) | ((earlier_best == second) & (holder_before < first))
    on_front = np.empty(len(order), dtype=bool)
    on_front[order] = ~dominated
    return on_front


def _ranks_2d(values: np.ndarray) -> np.ndarray:
    """Non-dominated sorting of n x 2 values (both minimised, no NaN) in O(n log n): in the
    order of _front_2d, a row joins the first front none of whose rows so far dominates it.
    Fronts are summarised by their smallest second value and the first value of the row that
    reached it (what decides domination in that order), and "front k dominates the row"
    holds for every front before a front that does (domination is transitive), so the front
    is found by bisection, as in Jensen's "Reducing the run-time complexity of multiobjective
    EAs" (2003)."""
    order = np.lexsort((values[:, 1], values[:, 0]))
    smallest: list[float] = []  # per front, its smallest second value
    holder: list[float] = []  # the first value of the row that reached it first
    ranks = np.empty(len(values), dtype=int)
    for i, x, y in zip(order.tolist(), values[order, 0].tolist(), values[order, 1].tolist()):
        lo, hi = 0, len(smallest)
        while lo < hi:
            mid = (lo + hi) // 2
            if smallest[mid] < y or (smallest[mid] == y and holder[mid] < x):
                lo = mid + 1  # front mid dominates the row
            else:
                hi = mid
        if lo == len(smallest):
            smallest.append(y)
            holder.append(x)
        elif y < smallest[lo]:
            smallest[lo], holder[lo] = y, x
        ranks[i] = lo
    return ranks


def _unique(keys: np.ndarray) -> list:
    # np.unique sorts, which fails on mixed or None labels; order does not matter here.
    return list(dict.fromkeys(keys.tolist()))


def accuracy_latency_mask(accuracy, latency) -> np.ndarray:
    """The front for the search's two objectives: maximise accuracy, minimise latency."""
    return pareto_mask(
        np.column_stack([np.asarray(accuracy, float), np.asarray(latency, float)]),
        maximize=(True, False),
    )


def hypervolume_2d(accuracy, latency, ref: tuple[float, float]) -> float:
    """Area dominated by the points (maximise accuracy, minimise latency) up to `ref`.

    `ref = (acc_ref, latency_ref)`: the worst corner counted. A point only adds
    the part of its box [acc_ref, acc] x [latency, latency_ref] that no other
    point covers; points at or beyond the reference, or with NaN, add nothing.
    Compare two searches only with the same `ref` (e.g. acc_ref=0 and the
    latency budget, or the largest latency either search measured).
    """
    acc_ref, latency_ref = float(ref[0]), float(ref[1])
    acc = np.asarray(accuracy, dtype=float).ravel()
    lat = np.asarray(latency, dtype=float).ravel()
    if acc.shape != lat.shape:
        raise ValueError(
            f"accuracy and latency: expected equal lengths, got {acc.size} and {lat.size}"
        )
    keep = ~(np.isnan(acc) | np.isnan(lat)) & (acc > acc_ref) & (lat < latency_ref)
    acc, lat = acc[keep], lat[keep]
    if acc.size == 0:
        return 0.0
    order = np.argsort(lat, kind="stable")
    acc, lat = acc[order], lat[order]
    # Sweep latency upwards: between lat[i] and lat[i+1] the best reachable
    # accuracy is the running maximum of the points seen so far.
    best_so_far = np.maximum.accumulate(acc)
    widths = np.diff(np.append(lat, latency_ref))
    return float(np.sum(widths * (best_so_far - acc_ref)))


def reference_point(
    latency, budget_ms: float | None = None, acc_ref: float = 0.0
) -> tuple[float, float]:
    """A default hypervolume reference: accuracy 0 and the latency budget.

    Without a budget, 10% beyond the slowest measured point so that point still counts.
    """
    if budget_ms is not None:
        return (acc_ref, float(budget_ms))
    lat = np.asarray(latency, dtype=float)
    lat = lat[~np.isnan(lat)]
    if lat.size == 0:
        return (acc_ref, 1.0)
    return (acc_ref, float(lat.max()) * 1.1)
