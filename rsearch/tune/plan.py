"""What a search will run, computed from the space alone (no Ray, nothing written): the
architectures to cost, and the trials per regime.  `rsearch tune --dry-run` prints it."""
from __future__ import annotations

from dataclasses import dataclass


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
    return dim.low  # a continuous range: its lower bound is a valid value


def make_plan(space) -> Plan:
    archs = space.architectures()  # the space already knows its grid; typed here for arch keys
    if archs is not None:
        archs = [(int(d), float(w), int(r)) for d, w, r in archs]
    return Plan(architectures=archs, trials_per_regime=space.trial_count(space.epochs[0]),
                regimes=list(space.epochs))


def describe_plan(space, plan: Plan, costs: dict | None = None, budget_ms: float | None = None) -> str:
    """Human-readable plan; `costs` (from the latency cache, where known) marks excluded configs."""
    lines = [f"experiment {space.name}: {space.search['algorithm']} search, scheduler "
             f"{_describe_scheduler(space.search['scheduler'], plan.regimes)}, regimes {plan.regimes} epochs",
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


def _describe_scheduler(sched: dict, regimes: list[int]) -> str:
    if sched["kind"] != "pareto_asha":
        return sched["kind"]
    from rsearch.tune.pareto_asha import rung_epochs

    rungs = "; ".join(f"{r}: {rung_epochs(r, sched['grace_fraction'], sched['reduction_factor']) or 'none'}"
                      for r in regimes)
    return f"pareto_asha (rung epochs per regime {rungs})"
