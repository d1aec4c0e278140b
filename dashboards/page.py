"""The report page: one self-contained HTML file, plotly.js inline once, no network access.

build_report(experiment) -> HTML text. Each section is a figure, or a one-line note
when the results do not support it yet (a search that is still running).
Every figure marks itself `data-drawn="1"` once plotly has drawn it, so a headless
browser (and tests/test_dashboard.py) can tell a drawn report from a broken one.
"""

from __future__ import annotations

import datetime as _dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plotly.offline import get_plotlyjs

from dashboards.common import ok_rows
from dashboards.curves import CURVE_SAMPLE, curves_figure, curves_info
from dashboards.front import family_symbols, flops_figure, flops_info, front_info, pareto_figure
from dashboards.scaling import (
    fixed_knobs,
    regularization_figure,
    regularization_info,
    scaling_figure,
    scaling_info,
)
from dashboards.table import (
    PAGE_ROWS,
    PAGER_SCRIPT,
    SORT_SCRIPT,
    confirmation_info,
    front_table_info,
    table_html,
    trials_info,
)
from rsearch import metrics as m
from rsearch.analysis import (
    Analysis,
    analyze,
    order_statement,
    speed_statement,
    ties_statement,
    winner_statement,
)
from rsearch.families import label
from rsearch.noise import NOISE_Z
from rsearch.results import Experiment, front_ties

if TYPE_CHECKING:
    import plotly.graph_objects as go

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# Runs after plotly's newPlot promise resolves ({plot_id} is filled in by plotly.py).
MARK_DRAWN = (
    "var d = document.getElementById('{plot_id}');"
    "if (d && d._fullLayout && d.querySelector('.main-svg')) d.setAttribute('data-drawn', '1');"
)

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #222;
  background: #fafafa; }
header { background: #1d3557; color: #fff; padding: 14px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .facts { font-size: 13px; opacity: 0.9; }
header .facts span { margin-right: 18px; display: inline-block; }
nav { padding: 8px 28px; background: #e9eef5; font-size: 13px; }
nav a { margin-right: 14px; color: #1d3557; }
main { padding: 0 28px 28px; max-width: 1500px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; margin: 18px 0;
  padding: 12px 16px; }
section h2 { font-size: 17px; margin: 4px 0 2px; }
p.why { margin: 2px 0 8px; color: #555; font-size: 13px; }
p.note { background: #fff7e0; border-left: 4px solid #e6a700; padding: 8px 12px; margin: 8px 0;
  font-size: 14px; }
ul.warnings li { color: #8a4b00; font-size: 13px; margin: 3px 0; }
ul.verdicts li { font-size: 13px; margin: 3px 0; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; background: #e6a700;
  color: #222; }
.status.finished { background: #52b788; }
.status.interrupted { background: #e76f51; }
.table-wrap { max-height: 520px; overflow: auto; }
table.sortable { border-collapse: collapse; font-size: 12px; width: 100%; }
table.sortable th { position: sticky; top: 0; background: #f0f3f7; cursor: pointer;
  padding: 4px 6px; text-align: left; border-bottom: 1px solid #ccc; white-space: nowrap; }
table.sortable th[aria-sort=ascending]::after { content: ' \\25B2'; }
table.sortable th[aria-sort=descending]::after { content: ' \\25BC'; }
table.sortable td { padding: 3px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
td.status-ok { color: #1b7f3b; } td.status-infeasible { color: #777; }
td.status-failed { color: #b2182b; font-weight: 600; } td.status-running { color: #b07d00; }
td.pareto { color: #0072B2; text-align: center; } td.tied { color: #8a4b00; }
.pager { font-size: 13px; margin: 4px 0 6px; }
.pager input { margin-right: 10px; padding: 2px 6px; }
.pager button { min-width: 28px; } .pager .pager-info { margin: 0 8px; color: #555; }
footer { color: #888; font-size: 12px; padding: 0 28px 20px; }
"""


@dataclass
class Section:
    key: str  # anchor and figure id
    title: str
    why: str  # what a reader should look for
    body: str  # HTML: a figure, a table, or a note


def _figure_html(fig: go.Figure, key: str) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{key}",
        config=PLOTLY_CONFIG,
        post_script=MARK_DRAWN,
        default_width="100%",
    )


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _figure_or_note(info, draw, key: str, note: str) -> str:
    """The figure `draw` makes of `info`, or the note while the results hold nothing to show."""
    return _note(note) if info is None else _figure_html(draw(info), key)


def _items(texts: list[str], klass: str = "verdicts") -> str:
    return (
        f'<ul class="{klass}">{"".join(f"<li>{html.escape(t)}</li>" for t in texts)}</ul>'
        if texts
        else ""
    )


def _verdicts(analysis: Analysis) -> str:
    # The same sentences as `rsearch analyze` prints, noise verdict included.
    items = _items(
        [
            f"{r.epochs} epochs: {winner_statement(r)}"
            for r in analysis.regimes
            if r.winner is not None
        ]
    )
    warnings = "".join(
        f"<li>&#9888; {html.escape(w.kind)}: {html.escape(w.message)}</li>"
        for w in analysis.warnings
    )
    return items + (f'<ul class="warnings">{warnings}</ul>' if warnings else "")


def _front_body(experiment: Experiment, front, analysis: Analysis) -> str:
    """The front figure, which members are tied in each regime, and the front's table.
    `front`: results.front_ties of the experiment's results."""
    info = front_info(experiment.results, experiment.latency_budget_ms, ties=front)
    figure = _figure_html(pareto_figure(info), "pareto")
    if front.empty:
        return figure
    # With two or more model families: their speed at equal accuracy (`rsearch analyze`'s words).
    speeds = _items(
        [
            f"{r.epochs} epochs: {speed_statement(r)}"
            for r in analysis.regimes
            if r.model_families is not None
        ]
    )
    ties = _items(
        [f"{r.epochs} epochs: {ties_statement(r.front)}" for r in analysis.regimes if r.front]
    )
    front_table = table_html(front_table_info(front))
    return figure + speeds + ties + _borderline_note(experiment.results) + front_table


def _borderline_note(results) -> str:
    """Architectures whose feasibility was decided within the latency figure's noise."""
    if m.LATENCY_BORDERLINE not in results or results.empty:
        return ""
    rows = results[results[m.LATENCY_BORDERLINE].fillna(False).astype(bool)]
    archs = rows.drop_duplicates([m.DEPTH, m.WIDTH, m.RESOLUTION])
    if archs.empty:
        return ""
    names = [
        f"depth {r[m.DEPTH]} width {r[m.WIDTH]:g} @{r[m.RESOLUTION]} "
        f"({'over the budget' if r[m.STATUS] == m.STATUS_INFEASIBLE else 'within the budget'})"
        for r in archs.to_dict("records")
    ]
    remeasured = m.LATENCY_REMEASURED in rows and rows[m.LATENCY_REMEASURED].fillna(False).any()
    after = " after re-measurement" if remeasured else ""  # a table's figures are read as they are
    return _note(
        f"Borderline latency (within noise of the budget{after}; its figure decided): "
        + "; ".join(names)
        + "."
    )


def _confirmation_body(analysis: Analysis) -> str:
    return _items(
        [f"{e['epochs']} epochs: {order_statement(e)}" for e in analysis.confirmation_order]
    ) + table_html(confirmation_info(analysis.confirmation))


def _curves_sample_note(info) -> str:
    """Where the figure draws a sample of the other trials: that it does (else "")."""
    if info is None or not any(panel.sampled for panel in info.panels):
        return ""
    return (
        f"; of the other trials a random sample of {CURVE_SAMPLE} per regime, where it has "
        "more (each panel's title says how many)"
    )


def _regularization_note(experiment: Experiment) -> str:
    fixed = fixed_knobs(experiment.results)
    values = ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in fixed.items()
    )
    return "No regularization value varied between finished trials" + (
        f" (fixed: {values})." if values else "."
    )


def _families_why(analysis: Analysis) -> str:
    """With two or more model families, how the front figure tells them apart; else ""."""
    regime = next((r for r in analysis.regimes if r.model_families is not None), None)
    if regime is None:
        return ""
    symbols = family_symbols(regime.model_families["families"])
    marks = ", ".join(f"{symbol} {label(family)}" for family, symbol in symbols.items())
    return (
        f" Each model family has its own marker ({marks}) and its own front line, so the two "
        "fronts can be compared at equal accuracy."
    )


def sections(experiment: Experiment) -> list[Section]:
    results = experiment.results
    front = front_ties(results)  # once: every view below takes the front from here
    analysis = analyze(results, front=front)
    curves = curves_info(results, experiment.curves)
    confirmation = (
        [
            Section(
                "confirmation",
                "Confirmation runs: reruns of chosen trials with other seeds",
                "Mean and sd of minival top-1 over each original and its reruns; the front's "
                "order held when the reruns rank the confirmed members as the front did.",
                _confirmation_body(analysis),
            )
        ]
        if analysis.confirmation
        else []
    )
    return [
        Section(
            "pareto",
            "Pareto front: accuracy vs measured latency",
            "Each regime in its own colour; its non-dominated trials are joined, with ±1 minival "
            "SE bars. A hollow marker cannot be told apart from a neighbouring member (within "
            f"{NOISE_Z:g} SE). Configs over the latency budget were measured but never trained: "
            "they sit in the strip below." + _families_why(analysis),
            _front_body(experiment, front, analysis),
        ),
        *confirmation,
        Section(
            "flops",
            "FLOPs vs measured latency",
            "Points off the dotted line run slower or faster than their FLOPs predict; on the "
            "right, models with equal FLOPs reach different accuracy.",
            _figure_or_note(
                flops_info(results),
                flops_figure,
                "flops",
                "No trial has both FLOPs and latency yet.",
            ),
        ),
        Section(
            "scaling",
            "Scaling curves: depth vs width vs resolution",
            "From a common base config, each axis grown alone. The steeper curve buys more "
            "accuracy per unit of latency; compare the regimes.",
            _verdicts(analysis)
            + _figure_or_note(
                scaling_info(analysis),
                scaling_figure,
                "scaling",
                "Not enough finished trials to follow an axis from a common base yet.",
            ),
        ),
        Section(
            "regularization",
            "Regularization vs model size",
            "The values of the best trial of each architecture: larger models usually want more.",
            _figure_or_note(
                regularization_info(results),
                regularization_figure,
                "regularization",
                _regularization_note(experiment),
            ),
        ),
        Section(
            "curves",
            "Learning curves",
            "Minival top-1 per epoch; Pareto-front members in bold"
            + _curves_sample_note(curves)
            + ".",
            _figure_or_note(
                curves,
                curves_figure,
                "curves",
                "No per-epoch metrics recorded yet.",
            ),
        ),
        Section(
            "trials",
            "Trials",
            "Click a column header to sort. Failed trials show their reason."
            + (
                f" {PAGE_ROWS} rows a page; the filter keeps the rows with a cell containing "
                "its text."
                if len(results) > PAGE_ROWS
                else ""
            ),
            table_html(trials_info(results)) if len(results) else _note("No trials recorded yet."),
        ),
    ]


def _budget_text(method, budget_ms) -> str:
    """An absolute budget in ms; a relative one as its ratio and reference (and ms here)."""
    if isinstance(method, dict) and method.get("max_ratio") is not None and method.get("reference"):
        ref = method["reference"]
        where = "on the table's device" if method.get("table") else "here"
        here = f" = {budget_ms:.3g} ms {where}" if budget_ms is not None else ""
        return (
            f"{method['max_ratio']:g}x depth {ref['depth']} width {ref['width']:g} "
            f"@{ref['resolution']}{here}"
        )
    return f"{budget_ms:g} ms" if budget_ms is not None else "none"


def _fact(label: str, value) -> str:
    return f"<span><b>{html.escape(label)}</b> {html.escape(str(value))}</span>"


def _table_fact(meta: dict) -> list[str]:
    """Where the latency figures came from when a deployment target's table gave them."""
    survey = meta.get("latency_survey")
    table = survey.get("table") if isinstance(survey, dict) else None
    if not isinstance(table, dict):
        return []
    return [
        _fact(
            "latency table",
            f"{table.get('path')}, measured on {table.get('device_name')} "
            f"({table.get('software')}, {table.get('measured_at')})",
        )
    ]


def _environment_fact(meta: dict) -> list[str]:
    """Where the search was launched: accuracies repeat bit for bit only there (same CPU,
    torch build and threads; rsearch/train/environment.py)."""
    env = meta.get("environment")
    if not isinstance(env, dict):
        return []  # an experiment from before it was recorded
    threads = env.get("torch_threads")
    return [
        _fact(
            "machine",
            f"{env.get('cpu')} ({env.get('cpu_capability')}), torch {env.get('torch')}"
            + (f", {threads} thread{'s' if threads != 1 else ''} per trial" if threads else ""),
        )
    ]


def _header(experiment: Experiment) -> str:
    meta, results = experiment.meta, experiment.results
    status = str(meta.get("status", "unknown"))
    counts = results[m.STATUS].value_counts()
    recorded = ", ".join(f"{int(n)} {s}" for s, n in counts.items()) or "none"
    method = meta.get("latency_method")
    method_text = (
        ", ".join(
            f"{k} {v}"
            for k, v in method.items()
            if v is not None and k not in ("max", "max_ratio", "reference", "table")
        )  # budget and table: facts of their own
        if isinstance(method, dict)
        else method
    )
    budget = experiment.latency_budget_ms
    facts = [
        _fact(
            "trials",
            f"{len(results)}"
            + (f" of {meta['planned_trials']}" if meta.get("planned_trials") else "")
            + f" ({recorded})",
        ),
        _fact("regimes", ", ".join(f"{e} epochs" for e in meta.get("epochs") or []) or "-"),
        _fact("latency budget", _budget_text(method, budget)),
        _fact("latency measured", method_text or "-"),
        *_table_fact(meta),
        *_environment_fact(meta),
        _fact("objective", meta.get("objective", m.OBJECTIVE)),
        _fact("created", meta.get("created", "-")),
    ]
    return (
        f"<header><h1>rsearch: {html.escape(experiment.name)} "
        f'<span class="status {html.escape(status)}">{html.escape(status)}</span></h1>'
        f'<div class="facts">{"".join(facts)}</div></header>'
    )


def build_report(experiment: Experiment, refresh_s: float | None = None) -> str:
    """The whole report. refresh_s: make an open browser tab reload itself (used with --watch)."""
    parts = sections(experiment)
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title.split(":")[0])}</a>' for s in parts)
    waiting = ""
    if ok_rows(experiment.results).empty:
        waiting = _note(
            f"No finished trials yet ({len(experiment.results)} recorded so far). This page shows "
            "what exists; run rsearch dashboard again, or with --watch, to refresh it."
        )
    body = "".join(
        f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>'
        f'<p class="why">{html.escape(s.why)}</p>{s.body}</section>'
        for s in parts
    )
    refresh = f'<meta http-equiv="refresh" content="{max(1, int(refresh_s))}">' if refresh_s else ""
    generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rsearch report: {html.escape(experiment.name)}</title>
<style>{CSS}</style>
<script>{get_plotlyjs()}</script>
</head><body>
{_header(experiment)}
<nav>{nav}</nav>
<main>{waiting}{body}</main>
<footer>Generated {generated} by rsearch dashboard from {html.escape(experiment.path)}.</footer>
<script>{SORT_SCRIPT}{PAGER_SCRIPT}</script>
</body></html>
"""
