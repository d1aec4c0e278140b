"""What a search will run, computed from the space alone (no Ray, nothing written): the
architectures to cost, and the trials per regime.  `rsearch tune --dry-run` prints it."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from rsearch import metrics as M


@dataclass(frozen=True)
class Plan:
    architectures: list[tuple[int, float, int]] | None  # every (depth, width, resolution), when finite
    trials_per_regime: int  # Tune trials per regime (grid: feasible archs not yet excluded)
    regimes: list[int]

    @property
    def total_trials(self) -> int:
        return self.trials_per_regime * len(self.regimes)


def first_value(dim):
    values = dim.values()
    if values:
        return values[0]
    return getattr(dim, "low")


def grid_size(dims) -> int:
    """Product of the grid dimensions' sizes (sampled dimensions add no grid points)."""
    return math.prod(len(d.values()) for d in dims if getattr(d, "is_grid", False))


def architectures(space) -> list[tuple[int, float, int]] | None:
    values = [space.scaling[k].values() for k in (M.DEPTH, M.WIDTH, M.RESOLUTION)]
    if any(v is None for v in values):
        return None
    return [(int(d), float(w), int(r)) for d, w, r in itertools.product(*values)]


def make_plan(space) -> Plan:
    archs = architectures(space)
    samples = int(space.search["num_samples"])
    others = list(space.regularization.values()) + list(space.recipe.values())
    if space.search["algorithm"] == "grid":
        trials = len(archs or [None]) * grid_size(others) * samples
    else:
        trials = samples
    return Plan(architectures=archs, trials_per_regime=trials, regimes=list(space.epochs))


def describe_plan(space, plan: Plan, costs: dict | None = None, budget_ms: float | None = None) -> str:
    """Human-readable plan; `costs` (from the latency cache, where known) marks excluded configs."""
    lines = [f"experiment {space.name}: {space.search['algorithm']} search, scheduler "
             f"{space.search['scheduler']['kind']}, regimes {plan.regimes} epochs",
             f"data: {space.data.get('source')}, resources per trial: {space.resources}"]
    if plan.architectures is not None:
        lines.append(f"architectures: {len(plan.architectures)} (depth x width x resolution)")
        if costs is not None and budget_ms is not None:
            known = [a for a in plan.architectures if costs.get(a) is not None]
            over = [a for a in known if costs[a] > budget_ms]
            lines.append(f"latency budget {budget_ms:g} ms: {len(over)} of {len(known)} measured architectures "
                         f"excluded, {len(plan.architectures) - len(known)} not measured yet")
            for a in over:
                lines.append(f"  excluded: depth {a[0]} width {a[1]:g} resolution {a[2]} ({costs[a]:.3g} ms)")
    lines.append(f"trials per regime: {plan.trials_per_regime} (at most; grid minus excluded), "
                 f"total {plan.total_trials}")
    return "\n".join(lines)
