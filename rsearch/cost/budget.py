"""A latency budget and the feasibility decision it makes on a measured figure.

Absolute budgets (`max_ms`) compare an architecture's latency figure (its fastest block,
latency.summarize) with a time: right on a known deployment device, wrong on a machine of
unknown speed. Relative budgets (`max_ratio` of a `reference` architecture) compare the
ratio of its figure to the reference's, both from the same interleaved rounds (rounds.py):
the feasible set then does not depend on how fast, or how loaded, the machine is.

Noise: a figure's spread is the interquartile range of its rounds; its uncertainty is about
IQR / sqrt(rounds), and never less than BORDERLINE_FLOOR: consecutive runs on this
project's machine differed by up to 2.6% where the rounds' own spread said 0.1-0.5%. A
decision is *borderline* when the figure lies within BORDERLINE_Z of those of the budget.
A borderline architecture is measured again with more rounds (survey.py); if it is still
borderline, the re-measured median decides, like any other (so the decision does not
depend on how noisy the machine was), and the row records that it was borderline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rsearch import metrics as M

BORDERLINE_Z = 2.0  # uncertainties within which a decision is borderline
BORDERLINE_FLOOR = (
    0.015  # relative uncertainty of any figure, whatever its rounds say (run-to-run drift)
)
REMEASURE_FACTOR = 3  # a borderline architecture is re-measured with this many times the rounds


@dataclass(frozen=True)
class LatencyBudget:
    max_ms: float | None = None  # absolute budget
    max_ratio: float | None = None  # relative budget ...
    reference: tuple[int, float, int] | None = None  # ... to this (depth, width, resolution)

    @property
    def relative(self) -> bool:
        return self.max_ratio is not None

    @property
    def limit(self) -> float:
        return self.max_ratio if self.relative else self.max_ms

    def value(self, figure: dict) -> tuple[float, float]:
        """(the figure compared with the limit, its relative spread) of a measured result."""
        if self.relative:
            return figure[M.LATENCY_RATIO], figure.get(M.LATENCY_RATIO_NOISE, 0.0)
        return figure[M.LATENCY_MS], figure.get(M.LATENCY_NOISE, 0.0)

    def decide(self, figure: dict) -> dict:
        """latency_feasible, latency_margin (value / limit - 1) and latency_borderline."""
        value, noise = self.value(figure)
        relative = max(BORDERLINE_FLOOR, noise / math.sqrt(max(1, figure.get(M.LATENCY_ROUNDS, 1))))
        uncertainty = value * relative
        return {
            M.LATENCY_FEASIBLE: bool(value <= self.limit),
            M.LATENCY_MARGIN: value / self.limit - 1,
            M.LATENCY_BORDERLINE: bool(abs(value - self.limit) <= BORDERLINE_Z * uncertainty),
        }

    def describe(self) -> str:
        if self.relative:
            d, w, r = self.reference
            return f"{self.max_ratio:g}x the latency of depth {d} width {w:g} resolution {r}"
        return f"{self.max_ms:g} ms"

    def why_over(self, figure: dict) -> str:
        """The failure text of an architecture over the budget."""
        latency = f"latency {figure[M.LATENCY_MS]:.3g} ms"
        if self.relative:
            ratio = figure[M.LATENCY_RATIO]
            return f"{latency} = {ratio:.3g}x the reference > budget {self.max_ratio:g}x"
        return f"{latency} > budget {self.max_ms:g} ms"
