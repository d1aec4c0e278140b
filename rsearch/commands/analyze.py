"""`rsearch analyze`: which scaling axis (depth, width, resolution) wins per epoch regime.

For each epoch regime of an experiment: the accuracy gained per doubling of
measured latency when scaling depth, width or resolution from a common base,
whether the winner's lead exceeds run-to-run noise, the best config per
latency budget, warnings where a conclusion would be extrapolated (to a longer
regime, larger models, or from a single base architecture), and, when the
results hold two model families, the speed ratio between their Pareto fronts
at equal minival accuracy (the scaling axes are then read from the ResNet-RS
trials).

examples:
  rsearch analyze ~/rsearch_results/quickstart
  rsearch analyze ~/rsearch_results/quickstart --json --target-epochs 350
"""

from __future__ import annotations

import json
import math

from rsearch import metrics as m
from rsearch.bounds import Bound
from rsearch.commands.args import add_command, add_experiment, integer, number, number_list
from rsearch.noise import NOISE_Z, verdict

# Latency budgets in ms: any positive, finite number.
_BUDGET = Bound("float", 0, low_open=True)


def register(subparsers) -> None:
    p = add_command(subparsers, __name__)
    add_experiment(p)
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.add_argument(
        "--budgets",
        type=number_list(_BUDGET, "1,2.5,5"),
        metavar="MS[,MS...]",
        help="latency budgets for the model-family table (default: the Pareto front)",
    )
    p.add_argument(
        "--target-epochs",
        type=integer(1),
        metavar="N",
        help="the regime you will train in: warns if it was not measured",
    )
    p.add_argument(
        "--target-latency-ms",
        type=number(0),
        metavar="MS",
        help="the latency you will deploy at: warns if beyond the largest model measured",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    # Imported here so that `rsearch --help` does not load pandas/pyarrow.
    from rsearch.analysis import analyze
    from rsearch.results import read_experiment

    experiment = read_experiment(args.experiment)
    result = analyze(
        experiment.results,
        budgets=args.budgets,
        target_epochs=args.target_epochs,
        target_latency_ms=args.target_latency_ms,
    )
    if args.json:
        payload = {"experiment": experiment.name, "path": experiment.path, **result.to_dict()}
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        print(format_analysis(result, experiment))
    return 0


# --------------------------------------------------------------------------- text report


def _num(value, spec: str = ".4g") -> str:
    # Not frames.is_null: that module loads pandas, which `rsearch --help` must not.
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else format(value, spec)


def _counts(results) -> str:
    counts = results[m.STATUS].value_counts()
    return ", ".join(f"{int(n)} {status}" for status, n in counts.items())


def _axis_lines(regime) -> list[str]:
    lines = [
        f"  {'axis':<11}{'values':<22}{'latency ms':<18}{'top-1 gain':>11}{'per 2x latency':>16}"
    ]
    for axis in regime.ranking + [a for a in regime.curves if a not in regime.ranking]:
        curve = regime.curves[axis]
        values = " ".join(f"{v:g}" for v in curve.values)
        span = f"{curve.latency_ms[0]:.3g}-{curve.latency_ms[-1]:.3g}" if curve.latency_ms else "-"
        gain = curve.accuracy[-1] - curve.accuracy[0] if curve.accuracy else None
        mark = "  <- best" if axis == regime.winner else ""
        slope = _num(curve.slope, "+.4f")
        lines.append(f"  {axis:<11}{values:<22}{span:<18}{_num(gain, '+.4f'):>11}{slope:>16}{mark}")
    return lines


def _architecture(row) -> str:
    """model, depth, width and resolution, in the tables' columns."""
    model = str(row.get(m.MODEL) or "-")
    # depth :g: a ResNet-RS's layers (26) and an EfficientNet's multiplier (1.2) alike
    return f"{model:<22}{row[m.DEPTH]:>6g}{row[m.WIDTH]:>7g}{row[m.RESOLUTION]:>6}"


def _pm(acc, se) -> str:
    """accuracy +- SE ("SE ?" when unknown)."""
    return (
        f"{_num(acc, '.4f')} ± {_num(se, '.4f')}"
        if se is not None
        else f"{_num(acc, '.4f')} ± SE ?"
    )


def _front_lines(regime) -> list[str]:
    """The regime's Pareto front with top-1 +- SE, and which neighbours cannot be told apart."""
    # the same words as the dashboard's; pandas, as in run()
    from rsearch.analysis import ties_statement

    if not regime.front:
        return ["  Pareto front: none yet (no trained trial with a measured latency)"]
    width = _id_width(regime.front)
    lines = [
        f"  Pareto front (minival top-1 ± SE; tied: within {NOISE_Z:g} SE of a neighbour):",
        f"  {'latency ms':>10}  {'top-1 ± SE':<18}{'model':<22}{'depth':>6}{'width':>7}{'res':>6}  "
        f"{'trial':<{width}}tied",
    ]
    for row in regime.front:
        tied = (
            "tied with " + ", ".join(row[m.TIED_WITH])
            if row[m.TIED]
            else "-"
            if row[m.TIED] is False
            else "noise unknown"
        )
        accuracy = _pm(row[m.MINIVAL_TOP1], row.get(m.MINIVAL_TOP1_SE))
        lines.append(
            f"  {_num(row[m.LATENCY_MS], '.3g'):>10}  {accuracy:<18}"
            f"{_architecture(row)}  {str(row[m.TRIAL_ID]):<{width}}{tied}"
        )
    lines.append("  " + ties_statement(regime.front))
    return lines


def _id_width(rows: list[dict], key: str = m.TRIAL_ID) -> int:
    return max([len("trial")] + [len(str(row[key])) for row in rows]) + 2


def _lead(row) -> str:
    """A budget pick's lead over the best other architecture under its budget, with the verdict."""
    if row.get("runner_up") is None:
        return "alone under its budget"
    return f"{row['lead']:+.4f} over {row['runner_up']}: {verdict(row['exceeds_noise'])}"


def _budget_lines(regime) -> list[str]:
    """The best config per latency budget (RegimeAnalysis.family: the paper's model-family
    table)."""
    lines = [
        f"  {'budget ms':>10}  {'model':<22}{'depth':>6}{'width':>7}{'res':>6}{'top-1 ± SE':>19}"
        f"{'latency ms':>12}  lead over the best other architecture"
    ]
    for row in regime.family:
        if row.get(m.TRIAL_ID) is None:
            lines.append(f"  {_num(row['budget_ms']):>10}  (nothing measured fits)")
            continue
        accuracy = _pm(row[m.MINIVAL_TOP1], row.get(m.MINIVAL_TOP1_SE))
        lines.append(
            f"  {_num(row['budget_ms']):>10}  {_architecture(row)}{accuracy:>19}"
            f"{_num(row[m.LATENCY_MS], '.3g'):>12}  {_lead(row)}"
        )
    return lines


def _model_family_lines(regime) -> list[str]:
    """With two or more model families: their speed at equal accuracy, and which trials the
    scaling axes came from; nothing with one family (the output of older versions)."""
    # the same words as the dashboard's; pandas, as in run()
    from rsearch.analysis import speed_statement
    from rsearch.families import label

    families = regime.model_families
    if families is None:
        return []
    names = ", ".join(label(f) for f in families["families"])
    return [
        f"  Model families ({names}): speed at equal minival top-1 along each family's front:",
        "  " + speed_statement(regime),
        f"  (the scaling axes above: the {families['scaling_trials']} ok "
        f"{label(families['scaling_family'])} trials of {regime.trials_ok})",
    ]


def _confirmation_lines(result) -> list[str]:
    """The confirmation reruns per regime; nothing when there were none."""
    # the same words as the dashboard's; pandas, as in run()
    from rsearch.analysis import order_statement

    if not result.confirmation:
        return []
    lines = ["", "Confirmation reruns (each original and its reruns with other seeds):"]
    for order in result.confirmation_order:
        lines.append(f"== {order['epochs']} epochs: {order_statement(order)}")
        configs = [c for c in result.confirmation if c[m.EPOCHS] == order["epochs"]]
        width = _id_width(configs, "trial_id")
        lines.append(
            f"  {'trial':<{width}}{'model':<22}{'front':>6}{'n':>4}  {'seeds':<14}{'original':>9}"
            f"{'mean ± sd':>19}"
        )
        for c in configs:
            seeds = ",".join("-" if s is None else str(s) for s in c["seeds"]) or "-"
            lines.append(
                f"  {str(c['trial_id']):<{width}}{str(c.get(m.MODEL) or '-'):<22}"
                f"{'yes' if c['on_front'] else 'no':>6}{c['n']:>4}  {seeds:<14}"
                f"{_num(c['original_top1'], '.4f'):>9}"
                f"{_num(c['mean_top1'], '.4f') + ' ± ' + _num(c['std_top1'], '.4f'):>19}"
            )
    return lines


def format_analysis(result, experiment) -> str:
    # the same words as the dashboard's; pandas, as in run()
    from rsearch.analysis import winner_statement

    results = experiment.results
    lines = [
        f"Experiment {experiment.name}: {len(results)} trials ({_counts(results)})",
        "Scaling from a common base: top-1 gained per doubling of measured latency along each "
        "axis.",
        f"A difference exceeds noise when it is larger than {NOISE_Z:g} standard errors.",
    ]
    for regime in result.regimes:
        lines.append("")
        base = regime.base
        where = (
            ""
            if base is None
            else f"  base: depth {base[m.DEPTH]}, width {base[m.WIDTH]:g}, resolution "
            f"{base[m.RESOLUTION]} ({base[m.LATENCY_MS]:.3g} ms, top-1 {base[m.MINIVAL_TOP1]:.4f})"
        )
        lines.append(f"== {regime.epochs} epochs ({regime.trials_ok} ok trials){where}")
        if regime.curves:
            lines += _axis_lines(regime)
        lines.append("  " + winner_statement(regime))
        lines += _front_lines(regime)
        lines.append("  Best config per latency budget:")
        lines += _budget_lines(regime)
        lines += _model_family_lines(regime)
    lines += _confirmation_lines(result)
    lines.append("")
    if result.warnings:
        lines.append("Warnings (conclusions that would be extrapolated):")
        lines += [f"  ! {w.kind}: {w.message}" for w in result.warnings]
    else:
        lines.append("No extrapolation warnings.")
    return "\n".join(lines)
