"""Asynchronous successive halving that promotes by Pareto rank, not by accuracy alone.

ASHA stops a trial at a rung unless its accuracy is in the top 1/reduction_factor of the
trials seen at that rung. For a search whose product is the accuracy-vs-latency front,
that throws away exactly the models the front is made of: a fast, slightly less
accurate model is stopped in favour of slow accurate ones (measured on the quickstart
grid: plain ASHA kept 77% of the grid's hypervolume). Here a trial at a rung continues
when it is on the rung's Pareto front (accuracy up, latency down) or among the top
1/reduction_factor ordered by (Pareto rank, accuracy), as in MO-ASHA (Schmucker et al.,
"Multi-objective Asynchronous Successive Halving", 2021).

Minival accuracy is a binomial estimate on a 2% split (80 images on the quickstart,
25,600 on ImageNet): a faster model only pushes a trial off the front when it is more
accurate by more than the minival's standard error, 0.5/sqrt(n) at most. Without that
margin, early rungs stop front models on noise (measured: the 3-epoch regime of the
quickstart lost its best model at the 1-epoch rung by one minival image).

Rungs sit at regime/rf, regime/rf^2, ... epochs, down to grace_fraction x regime, so a
9-epoch and a 350-epoch regime are cut at the same relative points (with the default
1/3 and rf 3: one rung, after 3 and after 117 epochs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rsearch import metrics as M
from rsearch import results
from rsearch.noise import minival_noise
from rsearch.pareto import pareto_ranks
from rsearch.tune.jobs import row_key

# minival_noise: the SE formula lives in rsearch.noise; the scheduler's callers take it from here.
__all__ = ["ParetoASHA", "minival_noise", "rung_epochs"]


def rung_epochs(regime: int, grace_fraction: float, reduction_factor: float) -> list[int]:
    """The epochs at which trials are compared: regime/rf, regime/rf^2, ... down to
    grace_fraction x regime (none for a regime too short to cut)."""
    rungs, k = set(), 1
    while reduction_factor**k * grace_fraction <= 1 + 1e-3:  # regime/rf^k >= grace x regime
        epoch = round(regime / reduction_factor**k)
        if 1 <= epoch < regime:
            rungs.add(epoch)
        k += 1
    return sorted(rungs)


# A trial that reports one of these has no accuracy to compare at a rung.
_NO_RESULT = (M.STATUS_FAILED, M.STATUS_INFEASIBLE)


class ParetoASHA(FIFOScheduler):
    """`cost_of(trial, result)` gives the second objective (latency, lower is better)."""

    def __init__(
        self,
        *,
        regime: int,
        cost_of: Callable,
        grace_fraction: float = 1 / 3,
        reduction_factor: float = 3,
        noise: float = 0.0,
        metric: str = M.OBJECTIVE,
        mode: str = M.OBJECTIVE_MODE,
        exp_dir: str | None = None,
    ):
        super().__init__()
        # A resumed search starts a new Tune run, with empty rungs. They are refilled from the
        # experiment's results store (exp_dir) before the first decision.
        self.regime, self.exp_dir, self._seeded = regime, exp_dir, exp_dir is None
        self._metric, self._mode = metric, mode
        self.cost_of = cost_of
        self.noise = noise  # accuracy differences up to this are not evidence
        self.reduction_factor = reduction_factor
        self.rungs = rung_epochs(regime, grace_fraction, reduction_factor)
        self.recorded: dict[int, Rung] = {r: Rung() for r in self.rungs}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        # The objective is set at construction; Tune passes its own, which must agree.
        return metric in (None, self._metric) and mode in (None, self._mode)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        epoch = result.get(M.EPOCH)
        if epoch not in self.recorded or result.get(M.STATUS) in _NO_RESULT:
            return TrialScheduler.CONTINUE
        if not self._seeded:
            self._seed_from_results()
        accuracy = float(result[self._metric]) * (1 if self._mode == "max" else -1)
        cost = self.cost_of(trial, result)
        # The results row's id, which a resumed trial keeps (rungs seeded from results).
        key = row_key(trial)
        self.recorded[epoch][key] = (accuracy, float("nan") if cost is None else float(cost))
        return TrialScheduler.CONTINUE if self._promotes(epoch, key) else TrialScheduler.STOP

    def _seed_from_results(self) -> None:
        """The rung results already in results.parquet / curves.parquet (a resumed search)."""
        self._seeded = True
        exp = results.read_experiment(self.exp_dir, allow_empty=True)
        frame = exp.results[exp.results[M.EPOCHS] == self.regime].set_index(M.TRIAL_ID)
        cost = frame[M.LATENCY_MS].fillna(frame[M.FLOPS].astype(float))  # as cost_of: else FLOPs
        for row in exp.curves[exp.curves[M.EPOCH].isin(self.rungs)].itertuples(index=False):
            trial_id, epoch = getattr(row, M.TRIAL_ID), int(getattr(row, M.EPOCH))
            if trial_id in cost.index:
                self.recorded[epoch][trial_id] = (
                    float(getattr(row, M.MINIVAL_TOP1)),
                    float(cost[trial_id]),
                )

    def _promotes(self, rung: int, trial_id: str) -> bool:
        seen = self.recorded[rung]
        points = seen.points()
        if np.isnan(points[:, 1]).all():
            points[:, 1] = 0.0  # no cost known: plain ASHA on accuracy
        mine = seen.index(trial_id)
        keep = max(1, math.ceil(len(points) / self.reduction_factor))
        return _on_front_within_noise(points, mine, self.noise) or _place(points, mine) < keep

    def debug_string(self) -> str:
        counts = ", ".join(f"{rung} ep: {len(seen)}" for rung, seen in self.recorded.items())
        return f"ParetoASHA: rungs {self.rungs} (trials seen: {counts or 'none'})"


class Rung(Mapping):
    """The (accuracy, cost) each trial reported at one rung, by results-row id, in the order
    they first arrived; kept as arrays, so that a decision among 10,000 trials is a few
    vectorised passes, not a Python loop over them."""

    def __init__(self):
        self._index: dict[str, int] = {}
        self._values = np.empty((16, 2))

    def __setitem__(self, trial_id: str, value: tuple[float, float]) -> None:
        i = self._index.setdefault(trial_id, len(self._index))  # a re-report keeps its place
        if i == len(self._values):
            self._values = np.concatenate([self._values, np.empty_like(self._values)])
        self._values[i] = value

    def __getitem__(self, trial_id: str) -> tuple[float, float]:
        return tuple(self._values[self._index[trial_id]].tolist())

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def index(self, trial_id: str) -> int:
        return self._index[trial_id]

    def points(self) -> np.ndarray:
        """A copy: n x (accuracy, cost), in arrival order."""
        return self._values[: len(self._index)].copy()


def _place(points: np.ndarray, i: int) -> int:
    """Row i's place when the rows are ordered by (Pareto rank, accuracy descending), ties in
    arrival order: how many rows come before it."""
    ranks = pareto_ranks(points, maximize=(True, False))
    acc, rank = points[:, 0], ranks[i]
    before = (ranks < rank) | ((ranks == rank) & (acc > acc[i]))
    tied_earlier = (ranks == rank) & (acc == acc[i]) & (np.arange(len(points)) < i)
    return int(before.sum() + tied_earlier.sum())


def _on_front_within_noise(points: np.ndarray, i: int, noise: float) -> bool:
    """No other point is as fast (or faster) and more accurate by more than `noise`
    (noise 0: plain Pareto dominance, accuracy up and latency down)."""
    acc, lat = points[:, 0], points[:, 1]
    no_worse = (lat <= lat[i]) & (acc >= acc[i] + noise)
    better = (lat < lat[i]) | (acc > acc[i] + noise)
    others = np.arange(len(points)) != i
    return not (others & no_worse & better).any()
