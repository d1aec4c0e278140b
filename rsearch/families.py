"""Two model families on one front: how much faster is one than the other at equal accuracy?

The paper's headline comparison (ResNet-RS 1.7-3.3x faster than EfficientNet at similar
accuracy) read off each family's own Pareto front. Each front is a curve: the latency a
family needs to reach an accuracy, interpolated between its members (linearly in
log-latency, since latency spans orders of magnitude and a constant speed ratio is then a
constant offset). The ratio is only defined where both curves exist, the accuracy range the
two fronts share; outside it, one family has no model to compare with, and the answer says
so instead of extrapolating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rsearch import metrics as m
from rsearch.frames import floats
from rsearch.pareto import accuracy_latency_mask
from rsearch.results import competing

SAMPLES = 21  # accuracies, evenly spaced over the shared range, at which the ratio is read

# How the views name a family (any other family: its stored name).
LABELS = {m.DEFAULT_FAMILY: "ResNet-RS", "efficientnet": "EfficientNet"}


def label(family: str) -> str:
    """A family's name for a reader: "ResNet-RS", "EfficientNet"."""
    return LABELS.get(family, family)


def family_of(results: pd.DataFrame) -> pd.Series:
    """Each row's model family (object dtype); a row without one, or a table from before the
    column existed, is ResNet-RS."""
    if m.FAMILY not in results.columns:
        return pd.Series(m.DEFAULT_FAMILY, index=results.index, dtype=object)
    family = results[m.FAMILY].astype(object)
    return family.where(family.notna(), m.DEFAULT_FAMILY)


def model_families(results: pd.DataFrame) -> list[str]:
    """The model families a results table holds, any status: ResNet-RS first, then the others
    by name (["resnetrs"] for every table from before the second family)."""
    names = set(family_of(results)) if len(results) else {m.DEFAULT_FAMILY}
    return sorted(names, key=lambda name: (name != m.DEFAULT_FAMILY, name))


@dataclass(frozen=True)
class Front:
    """One family's non-dominated models, by ascending accuracy (and so ascending latency)."""

    accuracy: np.ndarray
    latency_ms: np.ndarray

    @classmethod
    def of(cls, accuracy, latency_ms) -> Front:
        """The front of any set of (accuracy, latency) points; NaN points are never on it."""
        accuracy, latency = np.asarray(accuracy, float), np.asarray(latency_ms, float)
        on_front = accuracy_latency_mask(accuracy, latency)
        order = np.argsort(accuracy[on_front], kind="stable")
        return cls(accuracy[on_front][order], latency[on_front][order])

    def latency_at(self, accuracy: np.ndarray) -> np.ndarray:
        """The latency this family needs for each accuracy within its range."""
        return np.exp(np.interp(accuracy, self.accuracy, np.log(self.latency_ms)))


@dataclass(frozen=True)
class SpeedComparison:
    """`slower`'s latency over `faster`'s at equal accuracy, over the range the fronts share."""

    faster: str | None
    slower: str | None
    accuracy_range: tuple[float, float] | None  # where both fronts exist; None: they do not meet
    median_ratio: float | None
    min_ratio: float | None
    max_ratio: float | None
    reason: str | None = None  # why there is no ratio, in words

    def to_dict(self) -> dict:
        return {
            "faster": self.faster,
            "slower": self.slower,
            "accuracy_range": None if self.accuracy_range is None else list(self.accuracy_range),
            "median_ratio": self.median_ratio,
            "min_ratio": self.min_ratio,
            "max_ratio": self.max_ratio,
            "reason": self.reason,
        }


def compare(fronts: dict[str, Front]) -> SpeedComparison:
    """The speed ratio at equal accuracy of the two families in `fronts`."""
    if len(fronts) != 2:
        return _none(f"expected two families with trained models, got {len(fronts)}")
    (name_a, a), (name_b, b) = fronts.items()
    for name, front in ((name_a, a), (name_b, b)):
        if len(front.accuracy) == 0:
            return _none(f"{name} has no trained model on its front")
    low, high = max(a.accuracy[0], b.accuracy[0]), min(a.accuracy[-1], b.accuracy[-1])
    if low > high:
        return _none(
            f"the fronts do not overlap in accuracy: {name_a} spans {_span(a)}, "
            f"{name_b} spans {_span(b)}"
        )
    accuracy = np.linspace(low, high, SAMPLES)
    ratios = b.latency_at(accuracy) / a.latency_at(accuracy)  # > 1: a is faster
    median = float(np.median(ratios))
    faster, slower = (name_a, name_b) if median >= 1 else (name_b, name_a)
    if median < 1:
        ratios = 1 / ratios
    return SpeedComparison(
        faster=faster,
        slower=slower,
        accuracy_range=(float(low), float(high)),
        median_ratio=float(np.median(ratios)),
        min_ratio=float(ratios.min()),
        max_ratio=float(ratios.max()),
    )


def regime_fronts(results: pd.DataFrame, regime: int) -> dict[str, Front]:
    """Each family's front in one epoch regime, from the rows that compete for the front
    (trained originals, rsearch.results.competing); a row without a family is ResNet-RS."""
    rows = results[competing(results) & (floats(results[m.EPOCHS]) == regime)]
    return {
        name: Front.of(floats(group[m.MINIVAL_TOP1]), floats(group[m.LATENCY_MS]))
        for name, group in rows.groupby(family_of(rows), sort=True)
    }


def regime_speed(results: pd.DataFrame, regime: int) -> SpeedComparison:
    """compare() of one regime's family fronts, with the reason in this regime's words when
    fewer than two families have trained models in it."""
    fronts = {
        name: front for name, front in regime_fronts(results, regime).items() if len(front.accuracy)
    }
    if len(fronts) == 1:
        (name,) = fronts
        return _none(f"only {name} has trained models at {regime} epochs")
    if not fronts:
        return _none(f"no family has trained models at {regime} epochs")
    return compare(fronts)


def _span(front: Front) -> str:
    return f"[{front.accuracy[0]:.4g}, {front.accuracy[-1]:.4g}]"


def _none(reason: str) -> SpeedComparison:
    return SpeedComparison(None, None, None, None, None, None, reason)
