"""What a search will run, computed from the space alone (no Ray cluster, nothing written): the
architectures to cost, and the trials per regime.  `rsearch tune --dry-run` prints it."""

from __future__ import annotations

from dataclasses import dataclass

from rsearch import metrics as M
from rsearch.architecture import RESNETRS, Architecture
from rsearch.tune.pareto_asha import rung_epochs

OVER_BUDGET = "over_budget"  # the cost row's decision: why it is infeasible, or None


@dataclass(frozen=True)
class Plan:
    architectures: list[Architecture] | None  # every one a trial can get, when finite
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
    return Plan(
        architectures=space.architectures(),
        trials_per_regime=space.trial_count(space.epochs[0]),
        regimes=list(space.epochs),
    )


def describe_plan(
    space,
    plan: Plan,
    costs: dict | None = None,
    survey: dict | None = None,
    latency_measured: bool = True,
) -> str:
    """Human-readable plan; `costs` (arch key -> cost row with the latency decision) adds the
    feasible set with each figure, its noise and its margin to the budget. Costs counted without
    measured latencies (`latency_measured` False) add only the counted budgets' verdict."""
    scheduler = _describe_scheduler(space.search.scheduler, plan.regimes)
    lines = [
        f"experiment {space.name}: {space.search.algorithm} search, scheduler {scheduler}, "
        f"regimes {plan.regimes} epochs",
        f"data: {space.data.get('source')}, resources per trial: {space.resources.to_dict()}",
    ]
    if plan.architectures is not None:
        families = space.scaling.families
        per_family = ", ".join(
            f"{sum(a.family == f for a in plan.architectures)} {f}" for f in families
        )
        shape = "depth x width x resolution" if space.scaling.single == RESNETRS else per_family
        lines.append(f"architectures: {len(plan.architectures)} ({shape})")
        if costs and latency_measured:
            lines += _feasible_table(space, plan, costs, survey)
        elif costs:
            lines.append(_counted_summary(space, plan, costs))
    lines.append(
        f"trials per regime: {plan.trials_per_regime} (configs over a budget are recorded, never "
        f"trained), total {plan.total_trials}"
    )
    confirm = space.search.confirm
    if confirm:
        lines.append(
            f"confirmation: after each regime, the {confirm.top} most accurate front members "
            f"re-trained with seeds {list(confirm.seeds)}"
        )
    return "\n".join(lines)


def _feasible_table(space, plan: Plan, costs: dict, survey: dict | None) -> list[str]:
    budget = space.latency.budget() if space.latency else None
    rows = [costs[a.key] for a in plan.architectures]
    feasible = [r for r in rows if r.get(OVER_BUDGET) is None]
    limits = [budget.describe()] if budget else []
    limits += [f"max_params {space.max_params:,.0f}"] if space.max_params else []
    limits += [f"max_flops {space.max_flops:,.0f}"] if space.max_flops else []
    lines = [
        f"budget {', '.join(limits) or 'none'}: {len(feasible)} of {len(rows)} architectures "
        "feasible"
    ]
    if survey and survey.get("table"):
        table = survey["table"]
        lines.append(
            f"latency: from the table {table['path']}, measured on {table['device_name']} "
            f"({table['software']}, {table['measured_at']}); nothing measured here"
        )
    elif survey:
        disagreed = survey["disagreed"]
        lines.append(
            f"latency: cache {survey['cache']}, {survey['measured']} measured, "
            f"{len(survey['validated'])} re-measured to validate the cache"
            f"{' (disagreed: ' + ', '.join(disagreed) + ')' if disagreed else ''}, "
            f"{len(survey['remeasured'])} borderline re-measured"
        )
    lines.append(
        f"  {'depth':>5} {'width':>5} {'res':>4} {'params':>11} {'latency ms':>10} {'noise':>6} "
        f"{'ratio':>6} {'margin':>7}  decision"
        + ("" if space.scaling.single == RESNETRS else "  (model)")
    )
    named = space.scaling.single != RESNETRS
    relative = bool(budget and budget.relative)
    lines += [_feasible_row(r, relative, named) for r in rows]
    return lines


def _counted_summary(space, plan: Plan, costs: dict) -> str:
    """The feasible set as far as counting decides it: max_params and max_flops."""
    rows = [costs[a.key] for a in plan.architectures]
    within = sum(1 for r in rows if r.get(OVER_BUDGET) is None)
    flops = [r[M.FLOPS] for r in rows]
    line = (
        f"FLOPs per image {min(flops) / 1e9:,.3g}-{max(flops) / 1e9:,.4g} G; "
        f"{within} of {len(rows)} architectures within max_params / max_flops"
    )
    if space.latency is not None:
        line += (
            f"; latency budget {space.latency.budget().describe()} not checked "
            "(--measure-latency measures every architecture here)"
        )
    return line


def _feasible_row(r: dict, relative: bool, named: bool = False) -> str:
    """One architecture's line of the feasible table."""
    ratio = r.get(M.LATENCY_RATIO)
    ratio = f"{ratio:6.3f}" if ratio is not None else f"{'-':>6}"
    noise = r.get(M.LATENCY_RATIO_NOISE if relative else M.LATENCY_NOISE) or 0.0
    latency = r.get(M.LATENCY_MS)
    latency = f"{latency:10.3f}" if latency is not None else f"{'-':>10}"
    why = r.get(OVER_BUDGET)
    decision = "feasible" if why is None else f"over budget: {why}"
    if r.get(M.LATENCY_BORDERLINE):  # a table's figure is not measured again
        decision += " (borderline, re-measured)" if r.get(M.LATENCY_REMEASURED) else " (borderline)"
    elif r.get(M.LATENCY_REMEASURED):
        decision += " (re-measured)"
    return (
        f"  {r[M.DEPTH]:>5g} {r[M.WIDTH]:>5g} {r[M.RESOLUTION]:>4} {r[M.PARAMS]:>11,} {latency} "
        f"{noise:>6.1%} {ratio} {r.get(M.LATENCY_MARGIN, 0):>+7.1%}  {decision}"
        + (f"  ({r[M.MODEL]})" if named else "")
    )


def _describe_scheduler(sched, regimes: list[int]) -> str:
    if sched.kind != "pareto_asha":
        return sched.kind
    rungs = "; ".join(
        f"{r}: {rung_epochs(r, sched.grace_fraction, sched.reduction_factor) or 'none'}"
        for r in regimes
    )
    return f"pareto_asha (rung epochs per regime {rungs})"
