"""Scaling analysis: which axis (depth, width, resolution) buys the most accuracy per latency.

The paper's question, asked of the user's own results, one epoch regime at a time:

1. Configs: "ok" trials grouped by architecture (depth, width, resolution). Exact
   repeats of a trial (same architecture and regularization) are averaged; their
   spread is the run-to-run noise. Among regularization variants of one
   architecture the best is kept (the paper tunes regularization per model size).
2. Scaling curves: from a base architecture, the configs that grow one axis while
   the other two stay at the base. The base is the smallest architecture from
   which the most axes can be followed.
3. Slope: least-squares accuracy gain per doubling of measured latency along each
   axis. The axis with the largest slope wins; the effect is its lead over the
   runner-up, compared with noise as effect > 2 x its standard error.
4. Warnings where a conclusion would be extrapolated, the traps the paper names:
   regime   the winner differs between regimes, or the target regime was not measured;
   model_size the winner from the first scaling step differs from the last step,
            or the target latency lies beyond the largest model measured;
   base     the ranking rests on a single base architecture, or differs between bases.
5. The front and the model-family table: each regime's Pareto front with minival SEs and
   the members that cannot be told apart (results.front_ties), the best config per budget
   (the paper's "model family" of ResNet-RS sizes: `family_table`, RegimeAnalysis.family)
   with its lead over the runner-up, and the confirmation reruns (confirmation_summary).
6. Model families (#12; rsearch.families): when the results hold two or more families
   (ResNet-RS, EfficientNet), the scaling axes of steps 1-4 are read from the ResNet-RS rows
   only (an EfficientNet's depth and width are multipliers, not layers), and each regime gets
   `model_families`: the speed ratio at equal accuracy along the families' fronts, or why
   there is none. With one family it is None and nothing else changes.

Noise: every statement that compares measured accuracies carries a verdict, exceeds
noise / within noise / noise unknown (rsearch.noise). A config's noise is the run-to-run
sd of repeated configs when some config was repeated (never below the minival SE of one
of its runs), else the binomial minival SE of its mean; a comparison of two trials (front
ties, budget leads) uses their minival SEs.
Warnings that state what was not measured (a target regime, larger models, one base)
compare nothing and carry no verdict (`measured` False).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from rsearch import metrics as m
from rsearch.families import family_of, label, model_families, regime_speed
from rsearch.frames import floats, is_null, ok_mask, plain, records
from rsearch.noise import NOISE_Z, all_exceed, exceeds, verdict
from rsearch.results import (
    REGULARIZATION_COLUMNS,
    best_under_budget,
    competing,
    front_ties,
    minival_se,
    regimes,
)

AXES = (m.DEPTH, m.WIDTH, m.RESOLUTION)
ARCH = list(AXES)
# Significance: a lead must exceed NOISE_Z standard errors (imported: one threshold everywhere).
# Where a regime's noise came from: repeated configs, minival SEs, or repeats floored by the SEs.
NOISE_RUN_TO_RUN, NOISE_MINIVAL, NOISE_BOTH = "run-to-run", "minival", "run-to-run+minival"
# A statement names at most this many items (tied pairs, bases) one by one: a study of
# 10,000 trials has hundreds, which no reader takes in; beyond it they are counted.
LISTED = 10


@dataclass
class AxisCurve:
    axis: str
    values: list  # axis values from the base upwards
    latency_ms: list[float]
    accuracy: list[float]
    slope: float | None  # accuracy gain per doubling of latency; None with < 2 distinct latencies
    slope_se: float | None  # its SE from the configs' noise sd (see _configs); None if unknown
    first_step: float | None  # slope of the first step (smallest models)
    last_step: float | None  # slope of the last step (largest models)
    first_step_se: float | None = None  # their standard errors; None if noise unknown
    last_step_se: float | None = None


@dataclass
class RegimeAnalysis:
    epochs: int
    trials_ok: int
    base: dict | None  # depth, width, resolution, latency_ms, minival_top1 of the base
    curves: dict[str, AxisCurve]
    ranking: list[str]  # axes with a slope, best first
    winner: str | None
    effect: float | None  # winner slope minus runner-up slope
    effect_se: float | None
    largest_latency_ms: float | None  # slowest architecture measured in this regime
    noise_sd: float | None  # pooled sd of repeated configs; None = unknown
    noise_repeats: int  # configs that were run more than once
    # "run-to-run" (noise_sd), "minival" (binomial SEs), "run-to-run+minival" (noise_sd, never
    # below a config's minival SE) or None (unknown)
    noise_source: str | None
    exceeds_noise: bool | None  # None when the noise is unknown or there is no runner-up
    # The winner seen from every base that covers all ranked axes:
    # [{"base": [d, w, r], "winner": axis, "effect", "effect_se", "exceeds_noise"}]
    base_winners: list[dict]
    # The paper's "model family" table (not a model family of rsearch.families): best config
    # per latency budget, each with its lead over the best other architecture under that
    # budget: runner_up (trial id), lead, lead_se, exceeds_noise.
    family: list[dict] = field(default_factory=list)
    # The Pareto front by latency: trial, architecture, latency, minival_top1 +- minival_top1_se,
    # tied (cannot be told apart from a neighbour; None = noise unknown) and tied_with.
    front: list[dict] = field(default_factory=list)
    # Only when the results hold two or more model families (else None, and left out of
    # to_dict): {"families": every family in the results, "scaling_family": the family the
    # axes above were read from, "scaling_trials": its ok trials in this regime,
    # "comparison": rsearch.families.SpeedComparison.to_dict() (a ratio, or its reason)}.
    model_families: dict | None = None


@dataclass
class Warning_:
    kind: str  # "regime" | "model_size" | "base"
    message: str  # ends with the noise verdict in brackets when `measured`
    measured: bool = False  # compares measured accuracies (so it has a noise verdict)
    exceeds_noise: bool | None = None  # that verdict; None: noise unknown, or not `measured`


@dataclass
class Analysis:
    regimes: list[RegimeAnalysis]
    warnings: list[Warning_]
    # Confirmation reruns (see confirmation_summary), both empty without any: one entry per
    # confirmed configuration, and per regime whether the front's order held.
    confirmation: list[dict] = field(default_factory=list)
    confirmation_order: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        payload = plain(asdict(self))  # NaN -> None recursively: valid JSON
        for regime in payload["regimes"]:
            if regime["model_families"] is None:  # one family: the output of older versions
                del regime["model_families"]
        return payload


# --------------------------------------------------------------------------- configs


def _numeric(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return pd.DataFrame({c: floats(frame[c]) for c in columns}, index=frame.index)


def _runs(results: pd.DataFrame, regime: int) -> pd.DataFrame:
    """The usable "ok" runs of one regime: architecture, regularization, accuracy, latency."""
    ok = results[ok_mask(results)]
    regs = [c for c in REGULARIZATION_COLUMNS if c in ok.columns]
    runs = _numeric(ok, ARCH + [m.EPOCHS, m.MINIVAL_TOP1, m.LATENCY_MS] + regs)
    runs[m.MINIVAL_TOP1_SE] = minival_se(ok)
    if m.RECIPE in ok.columns:
        runs[m.RECIPE] = ok[m.RECIPE].astype(object).where(ok[m.RECIPE].notna(), "")
    runs = runs[
        (runs[m.EPOCHS] == regime) & runs[[m.MINIVAL_TOP1, m.LATENCY_MS] + ARCH].notna().all(axis=1)
    ]
    return runs.drop(columns=[m.EPOCHS])


def _configs(runs: pd.DataFrame) -> tuple[pd.DataFrame, float | None, int]:
    """Best mean accuracy per architecture with its noise sd ("sd"), and the pooled noise
    sd of repeated configs. "sd" is that pooled sd when known (it includes the seed, not
    only the minival sample), never below the binomial SE of one of the config's runs
    ("run_se": a pooled sd from a few repeats can fall below the sampling noise by
    chance); else the binomial SE of the config's mean accuracy."""
    measured = (m.MINIVAL_TOP1, m.LATENCY_MS, m.MINIVAL_TOP1_SE)
    keys = [c for c in runs.columns if c not in measured]
    runs = runs.assign(_se2=runs[m.MINIVAL_TOP1_SE] ** 2)
    grouped = runs.fillna({c: -1.0 for c in keys if c != m.RECIPE}).groupby(keys, dropna=False)
    stats = grouped.agg(
        acc=(m.MINIVAL_TOP1, "mean"),
        var=(m.MINIVAL_TOP1, "var"),
        n=(m.MINIVAL_TOP1, "size"),
        lat=(m.LATENCY_MS, "median"),
        se2=("_se2", "sum"),
        se_known=("_se2", "count"),
    ).reset_index()
    repeated = stats[stats["n"] >= 2]
    dof = float((repeated["n"] - 1).sum())
    noise = math.sqrt(float(((repeated["n"] - 1) * repeated["var"]).sum()) / dof) if dof else None
    # SE of a mean of n independent binomial estimates: sqrt(sum se_i^2) / n; unknown if any is.
    known = stats["se_known"] == stats["n"]
    stats["run_se"] = np.where(known, np.sqrt(stats["se2"] / stats["n"]), np.nan)  # of one run
    mean_se = np.where(known, np.sqrt(stats["se2"]) / stats["n"], np.nan)
    # fmax: where a config's SE is NaN, the pooled noise alone.
    stats["sd"] = mean_se if noise is None else np.fmax(noise, stats["run_se"])
    best = stats.sort_values("acc", ascending=False, kind="stable").drop_duplicates(ARCH)
    return best[ARCH + ["acc", "lat", "sd", "run_se"]].reset_index(drop=True), noise, len(repeated)


# --------------------------------------------------------------------------- curves


def _axis_points(configs: pd.DataFrame, base: pd.Series, axis: str) -> pd.DataFrame:
    """The configs that grow `axis` from the base, the other two axes held, by `axis`.
    In numpy, not pandas: it runs three times for every base (hundreds at 10,000 trials)."""
    others = [a for a in AXES if a != axis]
    same = np.logical_and.reduce([np.isclose(configs[a].to_numpy(float), base[a]) for a in others])
    values = configs[axis].to_numpy(float)
    index = np.flatnonzero(same & (values >= base[axis]))
    return configs.iloc[index[np.argsort(values[index], kind="stable")]]


def _slope(lat: np.ndarray, acc: np.ndarray, sd: np.ndarray) -> tuple[float | None, float | None]:
    """Least-squares slope of accuracy on log2(latency), and its standard error from the
    points' noise sd (None if any is unknown)."""
    x = np.log2(lat)
    dx = x - x.mean()
    sxx = float((dx**2).sum())
    if len(x) < 2 or sxx <= 1e-12:
        return None, None
    slope = float((dx * (acc - acc.mean())).sum() / sxx)
    # Var(slope) = sum (dx_i / sxx)^2 sd_i^2; with one sd for every point: sd / sqrt(sxx).
    se = math.sqrt(float(((dx / sxx) ** 2 * sd**2).sum()))
    return slope, None if math.isnan(se) else se


def _curve(configs: pd.DataFrame, base: pd.Series, axis: str) -> AxisCurve:
    line = _axis_points(configs, base, axis)
    lat, acc, sd = (line[c].to_numpy(dtype=float) for c in ("lat", "acc", "sd"))
    slope, slope_se = _slope(lat, acc, sd)
    first, last = _slope(lat[:2], acc[:2], sd[:2]), _slope(lat[-2:], acc[-2:], sd[-2:])
    return AxisCurve(
        axis=axis,
        values=[_py(v, axis) for v in line[axis]],
        latency_ms=lat.tolist(),
        accuracy=acc.tolist(),
        slope=slope,
        slope_se=slope_se,
        first_step=first[0],
        last_step=last[0],
        first_step_se=first[1],
        last_step_se=last[1],
    )


def _py(value, axis: str):
    """An axis value as plain Python: width a float, depth and resolution ints, except an
    EfficientNet's depth multiplier (1.2), which stays a float."""
    value = float(value)
    return value if axis == m.WIDTH or not value.is_integer() else int(value)


def _ranking(curves: dict[str, AxisCurve], attr: str = "slope") -> list[str]:
    scored = [
        (getattr(c, attr), axis) for axis, c in curves.items() if getattr(c, attr) is not None
    ]
    return [axis for _, axis in sorted(scored, key=lambda item: -item[0])]


def _coverage(configs: pd.DataFrame) -> list[tuple[pd.Series, frozenset]]:
    """Each architecture, smallest first, with the axes along which two or more configs
    grow from it (the other two axes held)."""
    ordered = configs.sort_values(ARCH, kind="stable")
    arch = ordered[ARCH].to_numpy(dtype=float)
    table = []
    for (_, row), point in zip(ordered.iterrows(), arch):
        close = np.isclose(arch, point)
        axes = frozenset(
            axis
            for i, axis in enumerate(AXES)
            if (np.delete(close, i, axis=1).all(axis=1) & (arch[:, i] >= point[i])).sum() >= 2
        )
        table.append((row, axes))
    return table


def _choose_base(coverage) -> pd.Series | None:
    """The smallest architecture from which the most axes can be followed."""
    most = max((len(axes) for _, axes in coverage), default=0)
    return next((row for row, axes in coverage if len(axes) == most), None)


def _bases_covering(coverage, axes) -> list[pd.Series]:
    """Every architecture from which all of `axes` can be followed (candidate bases)."""
    return [row for row, covered in coverage if set(axes) <= covered]


# --------------------------------------------------------------------------- regimes


def _lead(
    curves: dict[str, AxisCurve], ranking: list[str]
) -> tuple[float | None, float | None, bool | None]:
    """The winner's slope lead over the runner-up, its SE, and whether it exceeds noise."""
    if len(ranking) < 2:
        return None, None, None
    top, second = curves[ranking[0]], curves[ranking[1]]
    effect = top.slope - second.slope
    se = (
        None
        if top.slope_se is None or second.slope_se is None
        else math.hypot(top.slope_se, second.slope_se)
    )
    return effect, se, exceeds(effect, se)


# Columns of the model-family table (best config per budget) and of the front; both also
# name each row's model family (m.FAMILY) when the results hold two or more (_keep).
_FAMILY_KEEP = [
    m.TRIAL_ID,
    m.MODEL,
    *ARCH,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.LATENCY_MS,
    m.PARAMS,
    m.FLOPS,
]
_FRONT_KEEP = [
    m.TRIAL_ID,
    m.MODEL,
    *ARCH,
    m.LATENCY_MS,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.TIED,
    m.TIED_WITH,
]


def _keep(columns: list[str], results: pd.DataFrame, frame: pd.DataFrame) -> list[str]:
    """`columns` that `frame` has, with the model family after the trial id (and an
    EfficientNet's depth multiplier after the depth) when `results` hold two or more
    families (one family: the columns of older versions)."""
    if len(model_families(results)) >= 2:
        depth = columns.index(m.DEPTH) + 1
        columns = [columns[0], m.FAMILY, *columns[1:depth], m.DEPTH_MULT, *columns[depth:]]
    return [c for c in columns if c in frame.columns]


def _in_regime(frame: pd.DataFrame, regime: int) -> np.ndarray:
    return (frame[m.EPOCHS] == regime).fillna(False).to_numpy(dtype=bool)


def family_table(
    results: pd.DataFrame, regime: int, budgets=None, front: pd.DataFrame | None = None
) -> list[dict]:
    """Best config per latency budget, like the paper's ResNet-RS model table.

    Without budgets: the regime's Pareto front, fastest first (each row is the best
    config for any budget from its latency up to the next row's). Each row also says
    how far it leads the best other architecture under the same budget (see _budget_lead).
    `front`: front_ties(results), when the caller has it already.
    """
    keep = _keep(_FAMILY_KEEP + list(REGULARIZATION_COLUMNS), results, results)
    if budgets is None:
        front = front_ties(results) if front is None else front
        rows = front[_in_regime(front, regime)].sort_values(
            [m.LATENCY_MS, m.MINIVAL_TOP1], kind="stable"
        )
        rows = rows.drop_duplicates([m.LATENCY_MS, m.MINIVAL_TOP1])
        table = [dict({"budget_ms": row[m.LATENCY_MS]}, **row) for row in records(rows[keep])]
    else:
        table = []
        for budget in sorted(float(b) for b in budgets):
            best = best_under_budget(results[_in_regime(results, regime)], budget).get(regime)
            table.append(
                dict({"budget_ms": budget}, **({k: best.get(k) for k in keep} if best else {}))
            )
    pool = results[competing(results) & _in_regime(results, regime)]
    return [dict(row, **_budget_lead(pool, row)) for row in table]


def _budget_lead(pool: pd.DataFrame, row: dict) -> dict:
    """How far a budget's pick leads the most accurate other architecture under the same
    budget, in minival top-1, and whether that lead exceeds their minival SEs."""
    lead = {"runner_up": None, "lead": None, "lead_se": None, "exceeds_noise": None}
    if row.get(m.TRIAL_ID) is None:
        return lead
    acc, lat = floats(pool[m.MINIVAL_TOP1]), floats(pool[m.LATENCY_MS])
    other = np.logical_or.reduce([~np.isclose(floats(pool[a]), float(row[a])) for a in ARCH])
    # Another family is another architecture, whatever its numbers (multipliers vs layers).
    family = row.get(m.FAMILY) or m.DEFAULT_FAMILY
    other |= (family_of(pool) != family).to_numpy(dtype=bool)
    usable = other & (lat <= row["budget_ms"]) & ~np.isnan(acc)
    if not usable.any():
        return lead  # alone under its budget: nothing to be told apart from
    index = np.flatnonzero(usable)
    runner = pool.iloc[index[np.lexsort((lat[index], -acc[index]))[0]]]
    se_a, se_b = row.get(m.MINIVAL_TOP1_SE), runner.get(m.MINIVAL_TOP1_SE)
    se = None if is_null(se_a) or is_null(se_b) else math.hypot(se_a, se_b)
    diff = float(row[m.MINIVAL_TOP1]) - float(runner[m.MINIVAL_TOP1])
    return {
        "runner_up": runner[m.TRIAL_ID],
        "lead": diff,
        "lead_se": se,
        "exceeds_noise": exceeds(diff, se),
    }


def analyze_regime(
    results: pd.DataFrame,
    regime: int,
    budgets=None,
    front: pd.DataFrame | None = None,
    families: list[str] | None = None,
) -> RegimeAnalysis:
    """One regime's analysis. `front`: front_ties(results), when the caller has it already;
    `families`: model_families(results), likewise."""
    front = front_ties(results) if front is None else front
    families = model_families(results) if families is None else families
    runs = _runs(results, regime)
    trials_ok = len(runs)
    speed = None
    if len(families) >= 2:
        # The scaling axes are ResNet-RS depths and widths: never mixed with multipliers.
        resnetrs = (family_of(results) == m.DEFAULT_FAMILY).to_numpy(dtype=bool)
        runs = _runs(results[resnetrs], regime)
        speed = {
            "families": families,
            "scaling_family": m.DEFAULT_FAMILY,
            "scaling_trials": len(runs),
            "comparison": regime_speed(results, regime).to_dict(),
        }
    configs, noise, repeats = _configs(runs)
    coverage = _coverage(configs)
    base = _choose_base(coverage)
    curves = {} if base is None else {axis: _curve(configs, base, axis) for axis in AXES}
    ranking = _ranking(curves)
    effect, effect_se, exceeded = _lead(curves, ranking)
    se_known = bool(configs["run_se"].notna().any())
    source = (
        None
        if noise is None and not se_known
        else NOISE_MINIVAL
        if noise is None
        else NOISE_BOTH
        if se_known
        else NOISE_RUN_TO_RUN
    )
    members = front[_in_regime(front, regime)]
    return RegimeAnalysis(
        epochs=regime,
        trials_ok=trials_ok,
        base=None
        if base is None
        else {
            **{a: _py(base[a], a) for a in AXES},
            m.LATENCY_MS: float(base["lat"]),
            m.MINIVAL_TOP1: float(base["acc"]),
        },
        curves=curves,
        ranking=ranking,
        winner=ranking[0] if ranking else None,
        effect=effect,
        effect_se=effect_se,
        largest_latency_ms=float(configs["lat"].max()) if len(configs) else None,
        noise_sd=noise,
        noise_repeats=repeats,
        noise_source=source,
        exceeds_noise=exceeded,
        base_winners=_winners_from_bases(configs, coverage, ranking) if len(ranking) >= 2 else [],
        family=family_table(results, regime, budgets, front=front),
        front=records(members[_keep(_FRONT_KEEP, results, members)]),
        model_families=speed,
    )


def _winners_from_bases(configs: pd.DataFrame, coverage, axes) -> list[dict]:
    """The winning axis among `axes`, from every base that covers them all, with its lead."""
    winners = []
    for base in _bases_covering(coverage, axes):
        curves = {axis: _curve(configs, base, axis) for axis in axes}
        ranking = _ranking(curves)
        if ranking:
            effect, se, exceeded = _lead(curves, ranking)
            winners.append(
                {
                    "base": [_py(base[a], a) for a in AXES],
                    "winner": ranking[0],
                    "effect": effect,
                    "effect_se": se,
                    "exceeds_noise": exceeded,
                }
            )
    return winners


# --------------------------------------------------------------------------- statements


def noise_detail(regime: RegimeAnalysis) -> str:
    """Which noise the regime's axis verdict was tested against, in words."""
    if regime.noise_source is None:
        return "no repeated configs and no minival SE"
    if regime.noise_source == NOISE_MINIVAL:
        source = "minival binomial SE of each config"
    else:
        source = (
            f"run-to-run sd {regime.noise_sd:.4f} from {regime.noise_repeats} repeated config(s)"
        )
        source += ", never below a config's minival SE" if regime.noise_source == NOISE_BOTH else ""
    if regime.effect_se is None:
        return f"{source}; SE missing for some configs"
    return f"{NOISE_Z:g} x se = {NOISE_Z * regime.effect_se:.4f}; {source}"


def winner_statement(regime: RegimeAnalysis) -> str:
    """The regime's scaling verdict in one line, with its noise verdict (the CLI and the
    dashboard both print it, so they never word it differently)."""
    if regime.winner is None:
        return "no axis could be followed from a base (need two or more sizes along an axis)"
    if regime.effect is None:
        return f"only {regime.winner} could be followed from the base: no comparison"
    return (
        f"{regime.winner} gives the most top-1 per doubling of latency ({regime.effect:+.4f} over "
        f"{regime.ranking[1]}): {verdict(regime.exceeds_noise)} ({noise_detail(regime)})"
    )


def speed_statement(regime: RegimeAnalysis) -> str | None:
    """How much faster one model family is than the other at equal minival top-1, along their
    fronts, in one line (the CLI and the dashboard both print it); None with one family."""
    if regime.model_families is None:
        return None
    c = regime.model_families["comparison"]
    if c["median_ratio"] is None:
        return f"no speed comparison of the model families: {c['reason']}"
    low, high = c["accuracy_range"]
    return (
        f"{label(c['faster'])} is {c['median_ratio']:.3g}x faster than {label(c['slower'])} "
        f"at equal minival top-1 (median latency ratio over top-1 {low:.4f}-{high:.4f}, "
        f"where both fronts exist; min {c['min_ratio']:.3g}x, max {c['max_ratio']:.3g}x)"
    )


def ties_statement(front: list[dict]) -> str:
    """Which neighbouring members of one regime's front (RegimeAnalysis.front) cannot be told
    apart."""
    pairs = [
        f"{a[m.TRIAL_ID]} = {b[m.TRIAL_ID]}"
        for a, b in zip(front, front[1:])
        if b[m.TRIAL_ID] in a[m.TIED_WITH]
    ]
    if pairs:
        more = (
            f"; and {len(pairs) - LISTED} more pairs (the front table's tied column names each)"
            if len(pairs) > LISTED
            else ""
        )
        return f"indistinguishable within {NOISE_Z:g} SE: " + "; ".join(pairs[:LISTED]) + more
    if any(row[m.TIED] is None for row in front):
        return "whether neighbouring front members can be told apart: noise unknown (no minival SE)"
    if len(front) < 2:
        return "a single front member: nothing to tell apart"
    return f"every neighbouring pair of front members differs by more than {NOISE_Z:g} SE"


def order_statement(entry: dict) -> str:
    """Whether a regime's front order survived its confirmation reruns (a confirmation_summary
    "regimes" entry, i.e. Analysis.confirmation_order)."""
    held, order = entry["front_order_held"], " < ".join(entry["original_order"])
    if held is None:
        return "fewer than two confirmed front members: no order to check"
    if held:
        return f"front order held over the reruns ({order})"
    confirmed = " < ".join(entry["confirmed_order"])
    return f"front order NOT held: {order} on the front, {confirmed} by mean"


def _with_verdict(kind: str, message: str, exceeded: bool | None) -> Warning_:
    return Warning_(kind, f"{message} [{verdict(exceeded)}]", measured=True, exceeds_noise=exceeded)


def _differ_beyond_noise(claims: list[tuple[str, bool | None]]) -> bool | None:
    """Whether winners that differ (e.g. between regimes) differ beyond noise: True when two
    different winners each lead beyond noise; None when that could still be so, were the
    unknown verdicts known; else False."""
    sure = {winner for winner, exceeded in claims if exceeded}
    if len(sure) > 1:
        return True
    possible = sure | {winner for winner, exceeded in claims if exceeded is None}
    return None if len(possible) > 1 else False


# --------------------------------------------------------------------------- warnings


def _fmt_base(base) -> str:
    return f"depth {base[0]}, width {base[1]:g}, resolution {base[2]}"


def _regime_warnings(analyses: list[RegimeAnalysis], target_epochs: int | None) -> list[Warning_]:
    warnings = []
    decided = [a for a in analyses if a.winner]
    if len({a.winner for a in decided}) > 1:
        seen = ", ".join(f"{a.winner} at {a.epochs} epochs" for a in decided)
        warnings.append(
            _with_verdict(
                "regime",
                f"the best scaling axis depends on the training regime ({seen}): "
                "a rule measured in a shorter regime does not carry to a longer one",
                _differ_beyond_noise([(a.winner, a.exceeds_noise) for a in decided]),
            )
        )
    measured = [a.epochs for a in analyses]
    if target_epochs is not None and measured and target_epochs not in measured:
        nearest = max([e for e in measured if e < target_epochs], default=min(measured))
        direction = "shorter" if nearest < target_epochs else "longer"
        warnings.append(
            Warning_(
                "regime",
                f"the target regime ({target_epochs} epochs) was not measured: "
                f"conclusions come from a {direction} regime ({nearest} epochs); "
                "measure in the target regime",
            )
        )
    return warnings


def _step_lead(curves: dict[str, AxisCurve], winner: str, loser: str, attr: str) -> bool | None:
    """Whether `winner`'s step slope (attr first_step / last_step) beats `loser`'s beyond noise."""
    a, b = curves[winner], curves[loser]
    se_a, se_b = getattr(a, f"{attr}_se"), getattr(b, f"{attr}_se")
    se = None if se_a is None or se_b is None else math.hypot(se_a, se_b)
    return exceeds(getattr(a, attr) - getattr(b, attr), se)


def _size_warnings(analysis: RegimeAnalysis, target_latency_ms: float | None) -> list[Warning_]:
    warnings = []
    small = _ranking(analysis.curves, "first_step")
    large = _ranking(analysis.curves, "last_step")
    if small and large and small[0] != large[0] and large[0] in small and small[0] in large:
        # The reversal is real only if each axis leads the other beyond noise at its end.
        exceeded = all_exceed(
            [
                _step_lead(analysis.curves, small[0], large[0], "first_step"),
                _step_lead(analysis.curves, large[0], small[0], "last_step"),
            ]
        )
        warnings.append(
            _with_verdict(
                "model_size",
                f"at {analysis.epochs} epochs the best axis changes with model "
                f"size ({small[0]} for the smallest models, {large[0]} for the "
                "largest): a rule measured on small models does not carry "
                "to larger ones",
                exceeded,
            )
        )
    largest = analysis.largest_latency_ms
    if target_latency_ms is not None and largest is not None and target_latency_ms > largest:
        warnings.append(
            Warning_(
                "model_size",
                f"at {analysis.epochs} epochs the target latency "
                f"{target_latency_ms:g} ms is beyond the largest model measured "
                f"({largest:.3g} ms): the scaling rule would be extrapolated to "
                "larger models",
            )
        )
    return warnings


def _bases_by_winner(winners: list[dict]) -> str:
    """Which axis wins from which base: each base (up to LISTED of them), else each winner
    with its count of bases and the first of them (a large study has hundreds of bases)."""
    if len(winners) <= LISTED:
        return "; ".join(f"{w['winner']} from {_fmt_base(w['base'])}" for w in winners)
    by_winner: dict[str, list] = {}
    for w in winners:
        by_winner.setdefault(w["winner"], []).append(w["base"])
    return "; ".join(
        f"{winner} from {len(bases)} of {len(winners)} bases, e.g. {_fmt_base(bases[0])}"
        for winner, bases in by_winner.items()
    )


def _base_warnings(analysis: RegimeAnalysis) -> list[Warning_]:
    winners = analysis.base_winners
    if len(winners) == 1:
        return [
            Warning_(
                "base",
                f"at {analysis.epochs} epochs the ranking rests on one base architecture "
                f"({_fmt_base(winners[0]['base'])}): a sub-optimal base can favour any axis; "
                "scale from a second base to confirm",
            )
        ]
    if len({w["winner"] for w in winners}) > 1:
        seen = _bases_by_winner(winners)
        return [
            _with_verdict(
                "base",
                f"at {analysis.epochs} epochs the best axis depends on the base "
                f"architecture ({seen}): do not generalise from one base",
                _differ_beyond_noise([(w["winner"], w["exceeds_noise"]) for w in winners]),
            )
        ]
    return []


# --------------------------------------------------------------------------- confirmation runs


def confirmation_summary(results: pd.DataFrame, front: pd.DataFrame | None = None) -> dict:
    """Confirmation reruns (rows with `confirms` set) grouped with their originals.

    {"configurations": one per original, by regime: trial_id (the original), epochs, model,
    depth, width, resolution, on_front, seeds (original first), n (runs), original_top1,
    mean_top1 and std_top1 (sample sd; None for one run) over the original and its reruns;
    only trained runs with a minival accuracy count.
     "regimes": one per regime with reruns: epochs, front_order_held (the confirmed front
    members, ordered by mean accuracy, are in their original latency order on the front;
    None with fewer than two of them), original_order and confirmed_order (trial ids)}.
    Both lists are empty without confirmation rows. `front`: front_ties(results), when the
    caller has it already.
    """
    if m.CONFIRMS not in results.columns or results[m.CONFIRMS].isna().all():
        return {"configurations": [], "regimes": []}
    front = front_ties(results) if front is None else front
    rank = {trial_id: k for k, trial_id in enumerate(front[m.TRIAL_ID])}  # latency order
    usable = results[ok_mask(results) & ~np.isnan(floats(results[m.MINIVAL_TOP1]))]
    configs = [
        _confirmed(results, usable, original, original in rank)
        for original in dict.fromkeys(results[m.CONFIRMS].dropna())
    ]
    # Stable: by regime, then as recorded.
    configs.sort(key=lambda c: -1 if c[m.EPOCHS] is None else c[m.EPOCHS])
    orders = []
    for regime in sorted({c[m.EPOCHS] for c in configs if c[m.EPOCHS] is not None}):
        confirmed = sorted(
            (c for c in configs if c[m.EPOCHS] == regime and c["on_front"] and c["n"]),
            key=lambda c: rank[c[m.TRIAL_ID]],
        )
        original_order = [c[m.TRIAL_ID] for c in confirmed]
        by_mean = sorted(confirmed, key=lambda c: c["mean_top1"])  # stable
        confirmed_order = [c[m.TRIAL_ID] for c in by_mean]
        orders.append(
            {
                m.EPOCHS: regime,
                "front_order_held": None
                if len(confirmed) < 2
                else original_order == confirmed_order,
                "original_order": original_order,
                "confirmed_order": confirmed_order,
            }
        )
    return plain({"configurations": configs, "regimes": orders})


def _confirmed(results: pd.DataFrame, usable: pd.DataFrame, original: str, on_front: bool) -> dict:
    """One original and its reruns: seeds, and mean and sd of their minival top-1."""

    def of(frame):  # the original and its reruns, the original first
        rows = frame[
            ((frame[m.TRIAL_ID] == original) | (frame[m.CONFIRMS] == original)).to_numpy(dtype=bool)
        ]
        return rows.iloc[np.argsort(rows[m.CONFIRMS].notna().to_numpy(), kind="stable")]

    described, runs = of(results).iloc[0], of(usable)  # described: the original, if it was recorded
    accs = floats(runs[m.MINIVAL_TOP1])
    is_original = (runs[m.TRIAL_ID] == original).to_numpy(dtype=bool)
    return {
        m.TRIAL_ID: original,
        m.EPOCHS: _value(described[m.EPOCHS], int),
        m.MODEL: _value(described.get(m.MODEL), str),
        **{a: _value(described[a], lambda v, a=a: _py(v, a)) for a in AXES},
        "on_front": on_front,
        "seeds": [_value(v, int) for v in runs.get(m.SEED, [None] * len(runs))],
        "n": len(runs),
        "original_top1": float(accs[is_original][0]) if is_original.any() else None,
        "mean_top1": float(accs.mean()) if len(accs) else None,
        "std_top1": float(accs.std(ddof=1)) if len(accs) >= 2 else None,
    }


def _value(value, kind):
    """A cell as a plain Python value of `kind`, None for null."""
    return None if is_null(value) else kind(value)


# --------------------------------------------------------------------------- entry point


def analyze(
    results: pd.DataFrame,
    budgets=None,
    target_epochs: int | None = None,
    target_latency_ms: float | None = None,
    front: pd.DataFrame | None = None,
) -> Analysis:
    """The scaling analysis of a results table (see the module docstring).

    `front`: front_ties(results), when the caller has it already (the all-pairs Pareto
    test is the costly step at 10,000 trials, so it runs once).
    """
    front = front_ties(results) if front is None else front
    families = model_families(results)
    analyses = [
        analyze_regime(results, regime, budgets, front=front, families=families)
        for regime in regimes(results)
    ]
    warnings = _regime_warnings(analyses, target_epochs)
    for analysis in analyses:
        warnings += _size_warnings(analysis, target_latency_ms)
        warnings += _base_warnings(analysis)
    confirmation = confirmation_summary(results, front)
    return Analysis(
        regimes=analyses,
        warnings=warnings,
        confirmation=confirmation["configurations"],
        confirmation_order=confirmation["regimes"],
    )
