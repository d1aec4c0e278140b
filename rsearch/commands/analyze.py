"""`rsearch analyze`: which scaling axis wins in each epoch regime, and the model family.

    rsearch analyze ~/rsearch_results/quickstart
    rsearch analyze ~/rsearch_results/quickstart --json --target-epochs 350
"""
from __future__ import annotations

import argparse
import json
import math

from rsearch import metrics as m


def _budgets(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(v > 0 and math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated latencies in ms > 0 (e.g. 1,2.5,5), got {text!r}")
    return values


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"must be a {kind.__name__} > 0, got {text!r}")
        return value
    return parse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="which scaling axis (depth, width, resolution) wins per epoch regime",
        description="For each epoch regime of an experiment: the accuracy gained per doubling of measured "
                    "latency when scaling depth, width or resolution from a common base, whether the "
                    "winner's lead exceeds run-to-run noise, the best config per latency budget, and "
                    "warnings where a conclusion would be extrapolated (to a longer regime, larger "
                    "models, or from a single base architecture).")
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment folder (<storage>/<name>)")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.add_argument("--budgets", type=_budgets, metavar="MS[,MS...]",
                   help="latency budgets for the model-family table (default: the Pareto front)")
    p.add_argument("--target-epochs", type=_positive(int), metavar="N",
                   help="the regime you will train in: warns if it was not measured")
    p.add_argument("--target-latency-ms", type=_positive(float), metavar="MS",
                   help="the latency you will deploy at: warns if beyond the largest model measured")
    p.set_defaults(func=run)


def run(args) -> int:
    # Imported here so that `rsearch --help` does not load pandas/pyarrow.
    from rsearch.analysis import analyze
    from rsearch.results import read_experiment

    experiment = read_experiment(args.experiment)
    result = analyze(experiment.results, budgets=args.budgets, target_epochs=args.target_epochs,
                     target_latency_ms=args.target_latency_ms)
    if args.json:
        payload = {"experiment": experiment.name, "path": experiment.path, **result.to_dict()}
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        print(format_analysis(result, experiment))
    return 0


# --------------------------------------------------------------------------- text report


def _num(value, spec: str = ".4g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _counts(results) -> str:
    counts = results[m.STATUS].value_counts()
    return ", ".join(f"{int(n)} {status}" for status, n in counts.items())


def _axis_lines(regime) -> list[str]:
    lines = [f"  {'axis':<11}{'values':<22}{'latency ms':<18}{'top-1 gain':>11}{'per 2x latency':>16}"]
    for axis in regime.ranking + [a for a in regime.curves if a not in regime.ranking]:
        curve = regime.curves[axis]
        values = " ".join(f"{v:g}" for v in curve.values)
        span = f"{curve.latency_ms[0]:.3g}-{curve.latency_ms[-1]:.3g}" if curve.latency_ms else "-"
        gain = curve.accuracy[-1] - curve.accuracy[0] if curve.accuracy else None
        mark = "  <- best" if axis == regime.winner else ""
        lines.append(f"  {axis:<11}{values:<22}{span:<18}{_num(gain, '+.4f'):>11}{_num(curve.slope, '+.4f'):>16}{mark}")
    return lines


def _verdict(regime) -> str:
    if regime.winner is None:
        return "  no axis could be followed from a base (need two or more sizes along an axis)"
    if regime.effect is None:
        return f"  only {regime.winner} could be followed from the base: no comparison"
    runner_up = regime.ranking[1]
    text = f"  {regime.winner} beats {runner_up} by {regime.effect:+.4f} top-1 per doubling of latency; "
    if regime.noise_sd is None:
        return text + "run-to-run noise unknown (no repeated configs)"
    verdict = "exceeds" if regime.exceeds_noise else "does NOT exceed"
    return (text + f"noise sd {regime.noise_sd:.4f} from {regime.noise_repeats} repeated config(s): "
                   f"{verdict} noise (2 x se = {2 * regime.effect_se:.4f})")


def _family_lines(regime) -> list[str]:
    lines = [f"  {'budget ms':>10}  {'model':<22}{'depth':>6}{'width':>7}{'res':>6}{'top-1':>9}{'latency ms':>12}"]
    for row in regime.family:
        if row.get(m.TRIAL_ID) is None:
            lines.append(f"  {_num(row['budget_ms']):>10}  (nothing measured fits)")
            continue
        lines.append(f"  {_num(row['budget_ms']):>10}  {str(row.get(m.MODEL) or '-'):<22}{row[m.DEPTH]:>6}"
                     f"{row[m.WIDTH]:>7g}{row[m.RESOLUTION]:>6}{_num(row[m.MINIVAL_TOP1], '.4f'):>9}"
                     f"{_num(row[m.LATENCY_MS], '.3g'):>12}")
    return lines


def format_analysis(result, experiment) -> str:
    results = experiment.results
    lines = [f"Experiment {experiment.name}: {len(results)} trials ({_counts(results)})",
             "Scaling from a common base: top-1 gained per doubling of measured latency along each axis."]
    for regime in result.regimes:
        lines.append("")
        base = regime.base
        where = ("" if base is None else f"  base: depth {base[m.DEPTH]}, width {base[m.WIDTH]:g}, resolution "
                 f"{base[m.RESOLUTION]} ({base[m.LATENCY_MS]:.3g} ms, top-1 {base[m.MINIVAL_TOP1]:.4f})")
        lines.append(f"== {regime.epochs} epochs ({regime.trials_ok} ok trials){where}")
        if regime.curves:
            lines += _axis_lines(regime)
        lines.append(_verdict(regime))
        lines.append("  Best config per latency budget:")
        lines += _family_lines(regime)
    lines.append("")
    if result.warnings:
        lines.append("Warnings (conclusions that would be extrapolated):")
        lines += [f"  ! {w.kind}: {w.message}" for w in result.warnings]
    else:
        lines.append("No extrapolation warnings.")
    return "\n".join(lines)
