"""The latency of a search's architectures and their feasibility: cache, rounds, decisions.

    cached figures --validated?--> kept, or all re-measured
    missing figures (+ the reference) --> measured in interleaved rounds (rounds.py), cached
    every figure --> LatencyBudget.decide --> borderline ones re-measured with more rounds

The cache must not freeze a bad figure (one measured under a burst of load, or on a
machine that has since changed). So before a search uses cached figures it re-measures,
in interleaved rounds, the reference and every cached architecture (up to VALIDATE_ALL;
beyond that a fresh random sample of that many, a different one each run); if any of them
disagrees with its cached figure by more than the noise of the two (VALIDATE_Z
uncertainties, at least VALIDATE_FLOOR), the cache is stale and every architecture is
measured again. Under a relative budget the figures compared are the ratios to the
reference, which a load shared by both does not move; under an absolute budget, the ms.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from rsearch import metrics as M
from rsearch.cost.budget import REMEASURE_FACTOR, LatencyBudget
from rsearch.cost.rounds import measure_interleaved, ratio_to

VALIDATE_ALL = (
    16  # cached architectures re-measured (besides the reference) before the cache is used
)
VALIDATE_Z = 3.0
VALIDATE_FLOOR = (
    0.08  # a cached figure within 8% of a fresh one always agrees (runs differ by a few %)
)


@dataclass
class Survey:
    figures: dict[str, dict]  # key -> latency result + ratio (relative budgets) + decision
    cache: str = "off"  # off | empty | valid | stale
    validated: list[str] = field(default_factory=list)  # keys re-measured to validate the cache
    disagreed: list[str] = field(default_factory=list)  # ... of those, the ones that disagreed
    measured: list[str] = field(default_factory=list)  # keys measured in this survey
    remeasured: list[str] = field(default_factory=list)  # borderline keys measured again

    def describe(self) -> dict:
        return {
            "cache": self.cache,
            "validated": self.validated,
            "disagreed": self.disagreed,
            "measured": len(self.measured),
            "remeasured": self.remeasured,
        }


def survey(
    items: dict,
    method,
    budget: LatencyBudget | None,
    cache=None,
    *,
    reference: str | None = None,
    seed: int = 0,
    progress: bool = False,
    measure=measure_interleaved,
    store: bool = True,
) -> Survey:
    """Latency and feasibility of items {key: (ResNetConfig, resolution)}.

    `reference` is the key of the budget's reference architecture (in `items`) for a
    relative budget. `measure` is measure_interleaved (a fake in tests). With store=False the
    cache is read (and validated) but never written."""
    ref = reference if budget is not None and budget.relative else None
    result = Survey(figures={})
    writable = cache if store else None
    hits = _cached(items, method, cache, ref, result)
    if hits:
        hits = _validate(items, method, hits, ref, seed, progress, measure, result)
    missing = [k for k in items if k not in hits]
    fresh = {}
    if missing:
        todo = missing + ([ref] if ref is not None and ref not in missing else [])
        fresh = measure(
            {k: items[k] for k in todo}, method, reference=ref, seed=seed, progress=progress
        )
        result.measured = missing
        _store(writable, items, method, {k: fresh[k] for k in missing})
    for key in items:
        result.figures[key] = (
            {**fresh[key], M.LATENCY_CACHED: False}
            if key in fresh and key in missing
            else {**hits[key], M.LATENCY_CACHED: True}
        )
    if ref is not None:
        _ratios_from_cache(result.figures, ref)
    if budget is not None:
        _decide(items, method, budget, writable, ref, seed, progress, measure, result)
    return result


def _cached(items, method, cache, ref, result: Survey) -> dict:
    if cache is None:
        return {}
    hits = {
        k: hit
        for k, (cfg, res) in items.items()
        if (hit := cache.get(cfg, res, method)) is not None
    }
    if ref is not None and ref not in hits:
        hits = {}  # ratios need the reference measured like the architectures it divides
    result.cache = "empty" if not hits else "valid"
    return hits


def _validate(
    items, method, hits: dict, ref, seed: int, progress: bool, measure, result: Survey
) -> dict:
    """The hits if a fresh measurement of them agrees, else {} (the cache is stale)."""
    others = sorted(k for k in hits if k != ref)
    if len(others) > VALIDATE_ALL:  # a different sample each run: no row escapes every check
        others = random.SystemRandom().sample(others, VALIDATE_ALL)
    sample = ([ref] if ref is not None else []) + others
    fresh = measure(
        {k: items[k] for k in sample}, method, reference=ref, seed=seed + 1, progress=progress
    )
    result.validated = sample
    if ref is not None:  # compare ratios: a load on the machine moves both figures alike
        cached = {k: {**hits[k], **ratio_to(hits[k], hits[ref], same=k == ref)} for k in sample}
        result.disagreed = [
            k for k in sample if k != ref and not agrees(cached[k], fresh[k], M.LATENCY_RATIO)
        ]
    else:
        result.disagreed = [k for k in sample if not agrees(hits[k], fresh[k])]
    if result.disagreed:
        result.cache = "stale"
        return {}
    return hits


def agrees(cached: dict, fresh: dict, key: str = M.LATENCY_MS) -> bool:
    """Whether two figures (ms, or ratios) of one architecture agree within their noise."""
    uncertainty = math.hypot(_median_uncertainty(cached), _median_uncertainty(fresh))
    return abs(fresh[key] / cached[key] - 1) <= max(VALIDATE_FLOOR, VALIDATE_Z * uncertainty)


def _median_uncertainty(figure: dict) -> float:
    """Relative uncertainty of a figure's median: its relative IQR over sqrt(rounds)."""
    return figure.get(M.LATENCY_NOISE, 0.0) / math.sqrt(max(1, figure.get(M.LATENCY_ROUNDS, 1)))


def _ratios_from_cache(figures: dict, ref: str) -> None:
    """Ratios of cached figures: cached figure over cached reference (both validated)."""
    for key, fig in figures.items():
        if fig[M.LATENCY_CACHED] or M.LATENCY_RATIO not in fig:
            fig.update(ratio_to(fig, figures[ref], same=key == ref))


def _decide(
    items, method, budget: LatencyBudget, cache, ref, seed, progress, measure, result: Survey
) -> None:
    for fig in result.figures.values():
        fig.update({**budget.decide(fig), M.LATENCY_REMEASURED: False})
    borderline = [k for k, fig in result.figures.items() if fig[M.LATENCY_BORDERLINE] and k != ref]
    if not borderline:
        return
    todo = borderline + ([ref] if ref is not None else [])
    again = measure(
        {k: items[k] for k in todo},
        method,
        reference=ref,
        seed=seed + 2,
        progress=progress,
        rounds=REMEASURE_FACTOR * method.repeats,
    )
    for key in borderline:
        result.figures[key] = {
            **again[key],
            M.LATENCY_CACHED: False,
            **budget.decide(again[key]),
            M.LATENCY_REMEASURED: True,
        }
    result.remeasured = borderline
    _store(cache, items, method, {k: again[k] for k in borderline})


def _store(cache, items, method, figures: dict) -> None:
    if cache is not None and figures:
        cache.put_many(
            [(items[k][0], items[k][1], method, storable(fig)) for k, fig in figures.items()]
        )


def storable(figure: dict) -> dict:
    """A figure as the cache keeps it: no ratio (it depends on the reference), no decision.
    Keys are dropped by prefix: latency_ratio also drops latency_ratio_spread and _noise."""
    return {
        k: v
        for k, v in figure.items()
        if not k.startswith(
            (
                M.LATENCY_RATIO,
                M.LATENCY_FEASIBLE,
                M.LATENCY_MARGIN,
                M.LATENCY_BORDERLINE,
                M.LATENCY_REMEASURED,
                M.LATENCY_CACHED,
            )
        )
    }
