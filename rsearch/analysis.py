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
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from rsearch import metrics as m
from rsearch.results import REGULARIZATION_COLUMNS, best_under_budget, pareto_flags, regimes

AXES = (m.DEPTH, m.WIDTH, m.RESOLUTION)
ARCH = list(AXES)
# Significance: the lead over the runner-up must exceed this many standard errors.
NOISE_Z = 2.0


@dataclass
class AxisCurve:
    axis: str
    values: list  # axis values from the base upwards
    latency_ms: list[float]
    accuracy: list[float]
    slope: float | None  # accuracy gain per doubling of latency; None with < 2 distinct latencies
    slope_se: float | None  # its standard error from run-to-run noise; None if noise unknown
    first_step: float | None  # slope of the first step (smallest models)
    last_step: float | None  # slope of the last step (largest models)


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
    exceeds_noise: bool | None  # None when the noise is unknown or there is no runner-up
    # The winner seen from every base that covers all ranked axes: [{"base": [d, w, r], "winner": axis}]
    base_winners: list[dict]
    family: list[dict] = field(default_factory=list)  # best config per latency budget


@dataclass
class Warning_:
    kind: str  # "regime" | "model_size" | "base"
    message: str


@dataclass
class Analysis:
    regimes: list[RegimeAnalysis]
    warnings: list[Warning_]

    def to_dict(self) -> dict:
        return _clean(asdict(self))


def _clean(value):
    """NaN -> None recursively, so the dict is valid JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------- configs


def _numeric(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce").astype(float) for c in columns},
                        index=frame.index)


def _runs(results: pd.DataFrame, regime: int) -> pd.DataFrame:
    """The usable "ok" runs of one regime: architecture, regularization, accuracy, latency."""
    ok = results[(results[m.STATUS] == m.STATUS_OK).fillna(False).astype(bool)]
    regs = [c for c in REGULARIZATION_COLUMNS if c in ok.columns]
    runs = _numeric(ok, ARCH + [m.EPOCHS, m.MINIVAL_TOP1, m.LATENCY_MS] + regs)
    if m.RECIPE in ok.columns:
        runs[m.RECIPE] = ok[m.RECIPE].astype(object).where(ok[m.RECIPE].notna(), "")
    runs = runs[(runs[m.EPOCHS] == regime) & runs[[m.MINIVAL_TOP1, m.LATENCY_MS] + ARCH].notna().all(axis=1)]
    return runs.drop(columns=[m.EPOCHS])


def _configs(runs: pd.DataFrame) -> tuple[pd.DataFrame, float | None, int]:
    """Best mean accuracy per architecture, and the pooled noise sd of repeated configs."""
    keys = [c for c in runs.columns if c not in (m.MINIVAL_TOP1, m.LATENCY_MS)]
    grouped = runs.fillna({c: -1.0 for c in keys if c != m.RECIPE}).groupby(keys, dropna=False)
    stats = grouped.agg(acc=(m.MINIVAL_TOP1, "mean"), var=(m.MINIVAL_TOP1, "var"),
                        n=(m.MINIVAL_TOP1, "size"), lat=(m.LATENCY_MS, "median")).reset_index()
    repeated = stats[stats["n"] >= 2]
    dof = float((repeated["n"] - 1).sum())
    noise = math.sqrt(float(((repeated["n"] - 1) * repeated["var"]).sum()) / dof) if dof else None
    best = stats.sort_values("acc", ascending=False, kind="stable").drop_duplicates(ARCH)
    return best[ARCH + ["acc", "lat"]].reset_index(drop=True), noise, len(repeated)


# --------------------------------------------------------------------------- curves


def _axis_points(configs: pd.DataFrame, base: pd.Series, axis: str) -> pd.DataFrame:
    others = [a for a in AXES if a != axis]
    same = np.logical_and.reduce([np.isclose(configs[a], base[a]) for a in others])
    line = configs[same & (configs[axis] >= base[axis])]
    return line.sort_values(axis, kind="stable")


def _slope(latency: np.ndarray, accuracy: np.ndarray) -> tuple[float | None, float]:
    """Least-squares slope of accuracy on log2(latency), and sum of squares of x."""
    x = np.log2(latency)
    sxx = float(((x - x.mean()) ** 2).sum())
    if len(x) < 2 or sxx <= 1e-12:
        return None, sxx
    return float(((x - x.mean()) * (accuracy - accuracy.mean())).sum() / sxx), sxx


def _step(line: pd.DataFrame, first: bool) -> float | None:
    pair = line.iloc[:2] if first else line.iloc[-2:]
    if len(pair) < 2:
        return None
    return _slope(pair["lat"].to_numpy(), pair["acc"].to_numpy())[0]


def _curve(configs: pd.DataFrame, base: pd.Series, axis: str, noise: float | None) -> AxisCurve:
    line = _axis_points(configs, base, axis)
    slope, sxx = _slope(line["lat"].to_numpy(), line["acc"].to_numpy())
    return AxisCurve(
        axis=axis, values=[_py(v, axis) for v in line[axis]],
        latency_ms=line["lat"].tolist(), accuracy=line["acc"].tolist(),
        slope=slope, slope_se=None if (slope is None or noise is None) else noise / math.sqrt(sxx),
        first_step=_step(line, first=True), last_step=_step(line, first=False),
    )


def _py(value, axis: str):
    return float(value) if axis == m.WIDTH else int(value)


def _ranking(curves: dict[str, AxisCurve], attr: str = "slope") -> list[str]:
    scored = [(getattr(c, attr), axis) for axis, c in curves.items() if getattr(c, attr) is not None]
    return [axis for _, axis in sorted(scored, key=lambda item: -item[0])]


def _coverage(configs: pd.DataFrame) -> list[tuple[pd.Series, frozenset]]:
    """Each architecture, smallest first, with the axes along which two or more configs
    grow from it (the other two axes held)."""
    ordered = configs.sort_values(ARCH, kind="stable")
    arch = ordered[ARCH].to_numpy(dtype=float)
    table = []
    for (_, row), point in zip(ordered.iterrows(), arch):
        close = np.isclose(arch, point)
        axes = frozenset(axis for i, axis in enumerate(AXES)
                         if (np.delete(close, i, axis=1).all(axis=1) & (arch[:, i] >= point[i])).sum() >= 2)
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


def family_table(results: pd.DataFrame, regime: int, budgets=None) -> list[dict]:
    """Best config per latency budget, like the paper's ResNet-RS model table.

    Without budgets: the regime's Pareto front, fastest first (each row is the best
    config for any budget from its latency up to the next row's).
    """
    keep = [m.TRIAL_ID, m.MODEL, *ARCH, m.MINIVAL_TOP1, m.LATENCY_MS, m.PARAMS, m.FLOPS,
            *[c for c in REGULARIZATION_COLUMNS if c in results.columns]]
    if budgets is None:
        front = results[pareto_flags(results) & (results[m.EPOCHS] == regime).fillna(False).to_numpy(dtype=bool)]
        front = front.sort_values([m.LATENCY_MS, m.MINIVAL_TOP1], kind="stable")
        front = front.drop_duplicates([m.LATENCY_MS, m.MINIVAL_TOP1])
        return [dict({"budget_ms": row[m.LATENCY_MS]}, **row) for row in _records(front[keep])]
    table = []
    for budget in sorted(float(b) for b in budgets):
        best = best_under_budget(results[(results[m.EPOCHS] == regime).fillna(False)], budget).get(regime)
        table.append(dict({"budget_ms": budget}, **({k: best.get(k) for k in keep} if best else {})))
    return table


def _records(frame: pd.DataFrame) -> list[dict]:
    return _clean([{k: (None if v is pd.NA else v) for k, v in row.items()} for row in frame.to_dict("records")])


def analyze_regime(results: pd.DataFrame, regime: int, budgets=None) -> RegimeAnalysis:
    runs = _runs(results, regime)
    configs, noise, repeats = _configs(runs)
    coverage = _coverage(configs)
    base = _choose_base(coverage)
    curves = {} if base is None else {axis: _curve(configs, base, axis, noise) for axis in AXES}
    ranking = _ranking(curves)
    winner = ranking[0] if ranking else None
    effect = effect_se = exceeds = None
    if len(ranking) >= 2:
        top, second = curves[ranking[0]], curves[ranking[1]]
        effect = top.slope - second.slope
        if noise is not None:
            effect_se = math.hypot(top.slope_se, second.slope_se)
            exceeds = bool(effect > NOISE_Z * effect_se)
    return RegimeAnalysis(
        epochs=regime, trials_ok=len(runs),
        base=None if base is None else {**{a: _py(base[a], a) for a in AXES},
                                        m.LATENCY_MS: float(base["lat"]), m.MINIVAL_TOP1: float(base["acc"])},
        curves=curves, ranking=ranking, winner=winner, effect=effect, effect_se=effect_se,
        largest_latency_ms=float(configs["lat"].max()) if len(configs) else None,
        noise_sd=noise, noise_repeats=repeats, exceeds_noise=exceeds,
        base_winners=_winners_from_bases(configs, coverage, ranking, noise) if len(ranking) >= 2 else [],
        family=family_table(results, regime, budgets),
    )


def _winners_from_bases(configs: pd.DataFrame, coverage, axes, noise: float | None) -> list[dict]:
    """The winning axis among `axes`, from every base that covers them all."""
    winners = []
    for base in _bases_covering(coverage, axes):
        ranking = _ranking({axis: _curve(configs, base, axis, noise) for axis in axes})
        if ranking:
            winners.append({"base": [_py(base[a], a) for a in AXES], "winner": ranking[0]})
    return winners


# --------------------------------------------------------------------------- warnings


def _fmt_base(base) -> str:
    return f"depth {base[0]}, width {base[1]:g}, resolution {base[2]}"


def _regime_warnings(analyses: list[RegimeAnalysis], target_epochs: int | None) -> list[Warning_]:
    warnings = []
    decided = [a for a in analyses if a.winner]
    if len({a.winner for a in decided}) > 1:
        seen = ", ".join(f"{a.winner} at {a.epochs} epochs" for a in decided)
        warnings.append(Warning_("regime", f"the best scaling axis depends on the training regime ({seen}): "
                                           "a rule measured in a shorter regime does not carry to a longer one"))
    measured = [a.epochs for a in analyses]
    if target_epochs is not None and measured and target_epochs not in measured:
        nearest = max([e for e in measured if e < target_epochs], default=min(measured))
        direction = "shorter" if nearest < target_epochs else "longer"
        warnings.append(Warning_("regime", f"the target regime ({target_epochs} epochs) was not measured: "
                                           f"conclusions come from a {direction} regime ({nearest} epochs); "
                                           "measure in the target regime"))
    return warnings


def _size_warnings(analysis: RegimeAnalysis, target_latency_ms: float | None) -> list[Warning_]:
    warnings = []
    small = _ranking(analysis.curves, "first_step")
    large = _ranking(analysis.curves, "last_step")
    if small and large and small[0] != large[0]:
        warnings.append(Warning_("model_size", f"at {analysis.epochs} epochs the best axis changes with model "
                                               f"size ({small[0]} for the smallest models, {large[0]} for the "
                                               "largest): a rule measured on small models does not carry "
                                               "to larger ones"))
    largest = analysis.largest_latency_ms
    if target_latency_ms is not None and largest is not None and target_latency_ms > largest:
        warnings.append(Warning_("model_size", f"at {analysis.epochs} epochs the target latency "
                                               f"{target_latency_ms:g} ms is beyond the largest model measured "
                                               f"({largest:.3g} ms): the scaling rule would be extrapolated to "
                                               "larger models"))
    return warnings


def _base_warnings(analysis: RegimeAnalysis) -> list[Warning_]:
    winners = analysis.base_winners
    if len(winners) == 1:
        return [Warning_("base", f"at {analysis.epochs} epochs the ranking rests on one base architecture "
                                 f"({_fmt_base(winners[0]['base'])}): a sub-optimal base can favour any axis; "
                                 "scale from a second base to confirm")]
    if len({w["winner"] for w in winners}) > 1:
        seen = "; ".join(f"{w['winner']} from {_fmt_base(w['base'])}" for w in winners)
        return [Warning_("base", f"at {analysis.epochs} epochs the best axis depends on the base "
                                 f"architecture ({seen}): do not generalise from one base")]
    return []


# --------------------------------------------------------------------------- entry point


def analyze(results: pd.DataFrame, budgets=None, target_epochs: int | None = None,
            target_latency_ms: float | None = None) -> Analysis:
    """The scaling analysis of a results table (see the module docstring)."""
    analyses = [analyze_regime(results, regime, budgets) for regime in regimes(results)]
    warnings = _regime_warnings(analyses, target_epochs)
    for analysis in analyses:
        warnings += _size_warnings(analysis, target_latency_ms)
        warnings += _base_warnings(analysis)
    return Analysis(regimes=analyses, warnings=warnings)
