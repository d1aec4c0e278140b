"""The HTML report: built from a realistic experiment folder, loaded in real headless Chromium.

Set RSEARCH_UPDATE_SCREENSHOT=1 to rewrite docs/report.png from this test's report.
"""

import contextlib
import html
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dashboards import browser
from dashboards.curves import curves_figure, curves_info
from dashboards.front import TIED_SYMBOL, flops_info, front_info, pareto_figure
from dashboards.page import _budget_text, _environment_fact, sections
from dashboards.scaling import regularization_info, scaling_info
from dashboards.table import SORT_SCRIPT, table_html, trials_info
from rsearch import metrics as m
from rsearch.analysis import analyze, order_statement, winner_statement
from rsearch.cli import main
from rsearch.noise import verdict
from rsearch.results import (
    create_experiment,
    front_ties,
    pareto_flags,
    read_experiment,
    update_meta,
    write_curves,
    write_results,
)

FIGURES = {"fig-pareto", "fig-flops", "fig-scaling", "fig-regularization", "fig-curves"}
BUDGET_MS = 6.0
MINIVAL_SIZE = 25_600  # 2% of ImageNet: SE about 0.003, so the front has tied and separated members
needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None,
    reason="chromium not installed (Debian: apt-get install chromium; CI installs it)",
)


# --------------------------------------------------------------------------- a realistic experiment


def _trial(i, regime, depth, width, resolution, rng):
    flops = int(2 * 4.1e9 * (depth / 50) * width**2 * (resolution / 224) ** 2)
    # Wide layers use the GPU better than deep ones: latency grows slower than FLOPs with width.
    latency = 0.45 * (depth / 26) ** 0.95 * (width / 0.5) ** 1.3 * (resolution / 128) ** 1.8
    d, w, r = math.log2(depth / 26), math.log2(width / 0.5), math.log2(resolution / 128)
    if regime == 10:  # short regime: width pays, depth barely
        acc = 0.38 + 0.055 * w + 0.02 * d + 0.03 * r - 0.006 * r * r
    else:  # long regime: depth pays, width overfits
        acc = 0.55 + 0.02 * w + 0.05 * d + 0.03 * r - 0.006 * r * r
    big = depth >= 101
    row = {
        m.TRIAL_ID: f"trial_{i:03d}",
        m.STATUS: m.STATUS_OK,
        m.MODEL: f"resnetrs-{depth}-w{width:g}",
        m.DEPTH: depth,
        m.WIDTH: width,
        m.RESOLUTION: resolution,
        m.EPOCHS: regime,
        m.RECIPE: "rs",
        m.DROPOUT: float(rng.choice([0.25, 0.4] if big else [0.1, 0.25])),
        m.STOCHASTIC_DEPTH: 0.1 if big else 0.0,
        m.LABEL_SMOOTHING: 0.1,
        m.RANDAUGMENT_MAGNITUDE: 15 if big else 10,
        m.RANDAUGMENT_OPS: 2,
        m.WEIGHT_DECAY: 4e-5,
        m.EMA_DECAY: 0.9999,
        m.BASE_LR: 0.1,
        m.BATCH_SIZE: 256,
        m.MINIVAL_TOP1: acc + rng.normal(0, 0.004),
        m.MINIVAL_LOSS: 2.5 - 2 * acc,
        m.TEST_TOP1: acc - 0.01,
        m.LATENCY_MS: latency,
        m.LATENCY_P95_MS: latency * 1.08,
        m.PARAMS: int(25e6 * (depth / 50) * width**2),
        m.FLOPS: flops,
        m.TRAIN_SECONDS: 3.0 * regime * flops / 1e9,
        m.EPOCHS_DONE: regime,
        m.IMG_PER_S: 1e12 / flops,
        m.MINIVAL_SIZE: MINIVAL_SIZE,
        m.SEED: 0,
        m.LATENCY_SPREAD_MS: latency * 0.04,
        m.LATENCY_RUNS: 7,
        m.LATENCY_NOISE: 0.04,
        m.LATENCY_BORDERLINE: abs(latency - BUDGET_MS) < 0.04 * BUDGET_MS,
    }
    if latency > BUDGET_MS:
        row.update(
            {
                m.STATUS: m.STATUS_INFEASIBLE,
                m.MINIVAL_TOP1: None,
                m.MINIVAL_LOSS: None,
                m.TEST_TOP1: None,
                m.TRAIN_SECONDS: 0.0,
                m.EPOCHS_DONE: 0,
                m.IMG_PER_S: None,
            }
        )
    return row


def confirmations(rows, regime, rng, count=2):
    """Reruns with another seed of the `count` fastest front members of a regime."""
    frame = write_results_frame(rows)
    front = frame[
        pareto_flags(frame) & (frame[m.EPOCHS] == regime).to_numpy(dtype=bool)
    ].sort_values(m.LATENCY_MS)
    by_id = {r[m.TRIAL_ID]: r for r in rows}
    return [
        dict(
            by_id[trial_id],
            trial_id=f"{trial_id}_seed{seed}",
            seed=seed,
            confirms=trial_id,
            minival_top1=by_id[trial_id][m.MINIVAL_TOP1] + rng.normal(0, 0.004),
        )
        for trial_id in front[m.TRIAL_ID][:count]
        for seed in (1, 2)
    ]


def write_results_frame(rows):
    with tempfile.TemporaryDirectory() as tmp:
        create_experiment(tmp, {}, {})
        return write_results(tmp, rows)


def make_experiment(path, finished=True, confirm=True):
    """A 2-regime grid with infeasible, failed, running, repeated and confirmation trials, and
    curves."""
    rng = np.random.default_rng(0)
    create_experiment(
        path,
        {
            "epochs": [10, 100],
            "latency_budget_ms": BUDGET_MS,
            "planned_trials": 78,
            "latency_method": {
                "batch_size": 1,
                "dtype": "bf16",
                "compile": "none",
                "device": "NVIDIA H100",
            },
        },
        {"search": {"algorithm": "grid"}},
    )
    rows = []
    for regime in (10, 100):
        for depth in (26, 50, 101, 200):
            for width in (0.5, 1.0, 1.5):
                for resolution in (128, 160, 224):
                    rows.append(_trial(len(rows), regime, depth, width, resolution, rng))
    rows += [
        _trial(len(rows) + k, 10, 26, 0.5, 128, rng) for k in range(2)
    ]  # repeats: run-to-run noise
    failed = [
        dict(
            _trial(len(rows), 100, 200, 1.0, 128, rng),
            status=m.STATUS_FAILED,
            failure="CUDA out of memory at batch 256",
            minival_top1=None,
        ),
        dict(
            _trial(len(rows) + 1, 10, 101, 1.0, 160, rng),
            status=m.STATUS_FAILED,
            failure="NaN loss at epoch 3",
            minival_top1=None,
        ),
    ]
    running = [
        dict(
            _trial(len(rows) + 2, 100, 50, 1.5, 160, rng),
            status=m.STATUS_RUNNING,
            minival_top1=None,
        )
    ]
    rows += failed + running
    if confirm:
        rows += confirmations(rows, 100, rng)
    curves = []
    for row in rows:
        if row[m.STATUS] != m.STATUS_OK:
            continue
        for epoch in range(1, row[m.EPOCHS] + 1, max(1, row[m.EPOCHS] // 20)):
            frac = epoch / row[m.EPOCHS]
            rise = (1 - math.exp(-4 * frac)) / (1 - math.exp(-4))  # saturating learning curve
            curves.append(
                {
                    m.TRIAL_ID: row[m.TRIAL_ID],
                    m.EPOCH: epoch,
                    m.MINIVAL_TOP1: row[m.MINIVAL_TOP1] * rise,
                    m.TRAIN_LOSS: 4 - 3 * frac,
                    m.LR: 0.1 * (1 + math.cos(math.pi * frac)) / 2,
                    m.DEPTH: row[m.DEPTH],
                    m.WIDTH: row[m.WIDTH],
                    m.RESOLUTION: row[m.RESOLUTION],
                    m.EPOCHS: row[m.EPOCHS],
                }
            )
    write_results(path, rows)
    write_curves(path, curves)
    if finished:
        update_meta(path, status="finished")
    return path


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return make_experiment(tmp_path_factory.mktemp("runs") / "scaling-demo")


@pytest.fixture(scope="module")
def report(experiment):
    """The report as the command writes it (path printed on stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["dashboard", str(experiment)]) == 0
    return Path(out.getvalue().strip())


# --------------------------------------------------------------------------- DOM inspection


class _Figures(HTMLParser):
    """Finds plotly figure divs in a DOM dump: their ids, data-drawn flag and svg count."""

    def __init__(self):
        super().__init__()
        self.figures, self._open = (
            {},
            [],
        )  # id -> {"drawn", "svgs"}; stack of (tag, figure id or None)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        figure = None
        if tag == "div" and "plotly-graph-div" in classes:
            figure = attrs.get("id")
            self.figures[figure] = {"drawn": attrs.get("data-drawn") == "1", "svgs": 0}
        inside = next((f for _, f in reversed(self._open) if f), None)
        if tag == "svg" and "main-svg" in classes and inside:
            self.figures[inside]["svgs"] += 1
        if tag not in (
            "br",
            "img",
            "input",
            "meta",
            "link",
            "hr",
            "path",
            "rect",
            "line",
            "circle",
            "stop",
            "use",
            "image",
            "col",
        ):
            self._open.append((tag, figure))

    def handle_startendtag(self, tag, attrs):
        pass  # self-closing: nothing opened

    def handle_endtag(self, tag):
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                break


def figures_in(dom: str) -> dict:
    parser = _Figures()
    parser.feed(dom)
    return parser.figures


# --------------------------------------------------------------------------- in the browser


@needs_chromium
def test_report_draws_every_figure_without_console_errors(experiment, report):
    assert report == experiment / "report.html" and report.exists()
    text = report.read_text()
    assert text.count("plotly.js v") == 1  # the library embedded exactly once
    page = browser.load(report)
    figures = figures_in(page.dom)
    assert set(figures) == FIGURES
    for name, state in figures.items():
        assert state["drawn"] and state["svgs"] >= 1, (name, state)
    assert page.console == []
    assert page.requests == []  # opens offline: nothing fetched from the network
    if os.environ.get("RSEARCH_UPDATE_SCREENSHOT"):
        target = Path(__file__).resolve().parent.parent / "docs" / "report.png"
        browser.screenshot(report, target, size=(1200, 1600))
        browser.shrink_png(target)
        assert target.stat().st_size < 300_000


@needs_chromium
def test_harness_catches_errors_and_undrawn_figures(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><div class="plotly-graph-div" id="fig-x"></div>'
        '<script src="https://cdn.example.invalid/plotly.js"></script>'
        "<script>console.error('boom'); notDefined();</script></body></html>"
    )
    loaded = browser.load(page)
    assert loaded.requests == ["https://cdn.example.invalid/plotly.js"]
    assert figures_in(loaded.dom) == {"fig-x": {"drawn": False, "svgs": 0}}
    assert any("boom" in line for line in loaded.console)
    assert any("Uncaught ReferenceError" in line for line in loaded.console)


@needs_chromium
def test_running_search_without_finished_trials_renders_a_note(tmp_path, capsys):
    path = tmp_path / "live"
    create_experiment(path, {"epochs": [10], "latency_budget_ms": 2.0}, {})
    write_results(
        path,
        [
            {
                m.TRIAL_ID: "a",
                m.STATUS: m.STATUS_RUNNING,
                m.DEPTH: 26,
                m.WIDTH: 0.5,
                m.RESOLUTION: 128,
                m.EPOCHS: 10,
                m.LATENCY_MS: 1.0,
                m.FLOPS: 10**9,
            },
            {
                m.TRIAL_ID: "b",
                m.STATUS: m.STATUS_INFEASIBLE,
                m.DEPTH: 200,
                m.WIDTH: 2.0,
                m.RESOLUTION: 320,
                m.EPOCHS: 10,
                m.LATENCY_MS: 9.0,
                m.FLOPS: 10**11,
            },
        ],
    )
    assert main(["dashboard", str(path), "-o", str(tmp_path / "out" / "live.html")]) == 0
    report = Path(capsys.readouterr().out.strip())
    assert report == tmp_path / "out" / "live.html"
    assert "No finished trials yet (2 recorded so far)" in report.read_text()
    page = browser.load(report)
    figures = figures_in(page.dom)
    assert set(figures) == {"fig-pareto", "fig-flops"}  # the others show notes
    assert all(state["drawn"] and state["svgs"] for state in figures.values())
    assert page.console == []


@needs_chromium
def test_trials_table_sorts_on_click(tmp_path, experiment):
    results = read_experiment(experiment).results
    page = tmp_path / "table.html"
    click = "document.querySelectorAll('#trials th')[%d].click();"
    table = table_html(trials_info(results))
    header = table.split("</thead>")[0]
    latency_col = header.count("<th") - 1 - header.split(m.LATENCY_MS)[1].count("<th")
    page.write_text(
        f"<html><body>{table}<script>{SORT_SCRIPT}{click % latency_col}</script></body></html>"
    )
    dom = browser.load(page).dom
    body = dom.split("<tbody>")[1]
    latencies = [
        float(cell.split('data-v="')[1].split('"')[0])
        for cell in body.split("<tr>")[1:]
        for cell in [cell.split("<td")[latency_col + 1]]
    ]
    assert latencies == sorted(latencies) and latencies != [float(v) for v in results[m.LATENCY_MS]]


@needs_chromium
def test_screenshot_is_a_small_png(tmp_path, report):
    png = browser.screenshot(report, tmp_path / "shot.png", size=(800, 600))
    browser.shrink_png(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 300_000


# --------------------------------------------------------------------------- data behind the
# figures (the info objects: no plotly needed)


def _regime_mask(frame, regime):
    return (frame[m.EPOCHS] == regime).to_numpy(dtype=bool)


def test_front_info_data(experiment):
    results = read_experiment(experiment).results
    info = front_info(results, BUDGET_MS)
    by_regime = {r.regime: r for r in info.regimes}
    assert list(by_regime) == [10, 100]
    front = results[pareto_flags(results) & _regime_mask(results, 100)].sort_values(m.LATENCY_MS)
    line = by_regime[100].front
    np.testing.assert_allclose(line.x, front[m.LATENCY_MS].to_numpy(float))
    np.testing.assert_allclose(line.y, front[m.MINIVAL_TOP1].to_numpy(float))
    assert list(np.diff(line.y) > 0) == [True] * (len(line.y) - 1)  # a front rises with latency
    strips = {strip.status: strip for strip in info.untrained}
    assert list(strips) == [m.STATUS_INFEASIBLE, m.STATUS_FAILED]
    infeasible = strips[m.STATUS_INFEASIBLE]
    assert len(infeasible.latency_ms) == int((results[m.STATUS] == m.STATUS_INFEASIBLE).sum()) > 0
    assert min(infeasible.latency_ms) > BUDGET_MS and info.budget_ms == BUDGET_MS
    hover = by_regime[10].trials.hover[0]
    for field in (
        m.DEPTH,
        m.WIDTH,
        m.RESOLUTION,
        m.DROPOUT,
        m.WEIGHT_DECAY,
        m.LATENCY_MS,
        m.PARAMS,
    ):
        assert f"{field}: " in hover


def test_infos_read_the_stored_front(experiment):
    """The front of every info is the store's `pareto` column, not a recomputation."""
    exp = read_experiment(experiment)
    results = exp.results.copy()
    stored = results[m.PARETO].to_numpy(dtype=bool, na_value=False).copy()  # not a view
    np.testing.assert_array_equal(stored, pareto_flags(results))  # as written by the store
    dropped = results[m.TRIAL_ID][stored].iloc[0]
    results.loc[results[m.TRIAL_ID] == dropped, m.PARETO] = False
    regime = results.loc[results[m.TRIAL_ID] == dropped, m.EPOCHS].iloc[0]
    members = {r.regime: r for r in front_info(results, BUDGET_MS).regimes}[regime].front
    assert len(members.x) == int((stored & _regime_mask(results, regime)).sum()) - 1
    assert not any(f">{dropped}<" in text or f"{dropped}<br>" in text for text in members.hover)
    curves = curves_info(results, exp.curves)
    front_ids = {c.trial_id for panel in curves.panels for c in panel.front}
    assert front_ids == set(results[m.TRIAL_ID][stored]) - {dropped}


def test_a_results_file_without_flags_gets_the_front_the_store_would_have_written(
    experiment, tmp_path
):
    """An older writer's (or another tool's) results.parquet may lack the pareto column: the
    reader computes it, so the views show the same front as `rsearch analyze`."""
    copy = tmp_path / "no-flags"
    shutil.copytree(experiment, copy)
    table = pq.read_table(copy / "results.parquet")
    pq.write_table(table.drop_columns([m.PARETO]), copy / "results.parquet")
    original, reread = read_experiment(experiment).results, read_experiment(copy).results
    np.testing.assert_array_equal(
        reread[m.PARETO].to_numpy(dtype=bool), original[m.PARETO].to_numpy(dtype=bool)
    )
    fronts = [
        [len(r.front.x) for r in front_info(results, BUDGET_MS).regimes]
        for results in (original, reread)
    ]
    assert fronts[0] == fronts[1] and sum(fronts[0]) > 0


def test_scaling_info_follows_the_analysis(experiment):
    results = read_experiment(experiment).results
    analysis = analyze(results)
    info = scaling_info(analysis)
    assert len(info.panels) == len(analysis.regimes)
    for panel, regime in zip(info.panels, analysis.regimes):
        curves = {curve.axis: curve for curve in panel.curves}
        assert list(curves) == [m.DEPTH, m.WIDTH, m.RESOLUTION]
        for axis, curve in curves.items():
            np.testing.assert_allclose(curve.points.y, regime.curves[axis].accuracy)
            np.testing.assert_allclose(curve.points.x, regime.curves[axis].latency_ms)
        assert [curve.labels[0] for curve in panel.curves] == ["base", "", ""]  # named once
    verdicts = [verdict(r.exceeds_noise) for r in analysis.regimes]
    assert [panel.title for panel in info.panels] == [
        f"10 epochs: width wins ({verdicts[0]})",
        f"100 epochs: depth wins ({verdicts[1]})",
    ]


def test_curves_info_highlights_exactly_the_front(experiment):
    exp = read_experiment(experiment)
    info = curves_info(exp.results, exp.curves)
    front = exp.results[pareto_flags(exp.results)]
    assert [panel.regime for panel in info.panels] == [10, 100]
    for panel in info.panels:
        ids = {curve.trial_id for curve in panel.front}
        assert ids == set(front[m.TRIAL_ID][_regime_mask(front, panel.regime)]) and ids
        assert all(
            f"<b>{curve.label}</b> (Pareto front)" in curve.points.hover[0] for curve in panel.front
        )
        others = {text.split("<br>")[0] for text in panel.others.hover if text}
        assert others and not others & {f"trial {trial_id}" for trial_id in ids}


def test_regularization_info_shows_only_varied_knobs(experiment):
    info = regularization_info(read_experiment(experiment).results)
    knobs = [panel.knob for panel in info.panels]
    assert knobs == [m.DROPOUT, m.STOCHASTIC_DEPTH, m.RANDAUGMENT_MAGNITUDE]  # the rest was fixed
    assert info.x_label == "parameters (M)"


def test_flops_info_one_point_per_architecture(experiment):
    results = read_experiment(experiment).results
    info = flops_info(results)
    architectures = results.drop_duplicates([m.DEPTH, m.WIDTH, m.RESOLUTION])
    assert len(info.architectures.x) == len(architectures) == len(info.resolution)
    x, y = info.proportional_line()
    assert x[0] == info.architectures.x.min() and y[1] == x[1] * info.ms_per_gflop
    trained = sum(len(r.points.x) for r in info.regimes)
    assert trained == int((results[m.STATUS] == m.STATUS_OK).sum())


def test_infos_are_built_without_plotly(experiment):
    """Choosing what a figure shows needs no plotting library: only drawing loads plotly."""
    probe = (
        "import sys\n"
        "from dashboards.curves import curves_info\n"
        "from dashboards.front import flops_info, front_info\n"
        "from dashboards.scaling import regularization_info, scaling_info\n"
        "from dashboards.table import trials_info\n"
        "from rsearch.analysis import analyze\n"
        "from rsearch.results import read_experiment\n"
        f"exp = read_experiment({str(experiment)!r})\n"
        "infos = [front_info(exp.results, 6.0), flops_info(exp.results),\n"
        "         scaling_info(analyze(exp.results)), regularization_info(exp.results),\n"
        "         curves_info(exp.results, exp.curves), trials_info(exp.results)]\n"
        "assert all(info is not None for info in infos)\n"
        "sys.exit(0 if 'plotly' not in sys.modules else 3)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_trials_info_cells(experiment):
    results = read_experiment(experiment).results
    info = trials_info(results)
    assert info.columns[:2] == (m.TRIAL_ID, m.STATUS) and m.PARETO in info.columns
    assert len(info.rows) == len(results)
    column = {name: k for k, name in enumerate(info.columns)}
    failed = [row for row in info.rows if row[column[m.STATUS]].key == m.STATUS_FAILED]
    assert {row[column[m.FAILURE]].html for row in failed} == {
        "CUDA out of memory at batch 256",
        "NaN loss at epoch 3",
    }
    assert all(
        row[column[m.STATUS]].klass == f"status-{row[column[m.STATUS]].key}" for row in info.rows
    )
    marks = [row[column[m.PARETO]] for row in info.rows]
    assert sum(cell.key == "1" for cell in marks) == int(pareto_flags(results).sum())
    assert {cell.html for cell in marks if cell.key == "1"} == {"&#9670;"}


def test_figures_draw_their_info(experiment):
    """What only the drawing decides: the budget line in both panels, tied members hollow,
    one legend entry per regime's front curves."""
    exp = read_experiment(experiment)
    info = front_info(exp.results, BUDGET_MS)
    fig = pareto_figure(info)
    assert [s.x0 for s in fig.layout.shapes] == [BUDGET_MS, BUDGET_MS]  # one line per panel
    traces = {t.name: t for t in fig.data}
    for regime in info.regimes:
        line = traces[f"{regime.regime} epochs: Pareto front"]
        assert [s == TIED_SYMBOL for s in line.marker.symbol] == regime.tied.tolist()
        np.testing.assert_allclose(line.x, regime.front.x)
        assert list(line.hovertext) == list(regime.front.hover)
    curves = curves_figure(curves_info(exp.results, exp.curves))
    for regime in (10, 100):
        bold = [t for t in curves.data if t.legendgroup == f"front-{regime}"]
        assert len(bold) > 0 and sum(t.showlegend for t in bold) == 1


# --------------------------------------------------------------------------- the report's text


def test_report_lists_every_trial_and_failure(experiment, report):
    exp = read_experiment(experiment)
    text = report.read_text()
    for trial_id in exp.results[m.TRIAL_ID]:
        assert f">{trial_id}<" in text
    assert "CUDA out of memory at batch 256" in text and "NaN loss at epoch 3" in text
    assert (
        "10 epochs: width gives the most top-1" in text
        and "100 epochs: depth gives the most top-1" in text
    )
    for regime in analyze(
        exp.results
    ).regimes:  # the analysis' own sentence, noise verdict included
        assert html.escape(f"{regime.epochs} epochs: {winner_statement(regime)}") in text


# --------------------------------------------------------------------------- noise in the report


def test_front_marks_members_within_noise_of_a_neighbour(experiment):
    results = read_experiment(experiment).results
    ties = front_ties(results)
    info = front_info(results, BUDGET_MS, ties=ties)
    seen = set()
    for regime in info.regimes:
        members = ties[_regime_mask(ties, regime.regime)]
        tied = members[m.TIED].fillna(False).to_numpy(dtype=bool)
        assert regime.tied.tolist() == tied.tolist()
        np.testing.assert_allclose(regime.se, members[m.MINIVAL_TOP1_SE].to_numpy(float))
        for text, within, others in zip(regime.front.hover, tied, members[m.TIED_WITH]):
            assert ("within noise of " + ", ".join(others) in text) == within
            assert f"{m.MINIVAL_TOP1_SE}: " in text
        seen |= set(tied.tolist())
    assert seen == {True, False}  # the demo front has tied and clearly separated members


def test_report_has_the_front_table_and_the_confirmation_section(experiment, report):
    exp = read_experiment(experiment)
    text = report.read_text()
    ties = front_ties(exp.results)
    front_html = text.split('id="front-table"')[1].split("</table>")[0]
    assert front_html.count("<tr>") == len(ties) + 1  # a header and one row per member
    for _, member in ties[ties[m.TIED].fillna(False).to_numpy(dtype=bool)].iterrows():
        assert "&#8776; " + ", ".join(member[m.TIED_WITH]) in front_html
    assert "indistinguishable within 2 SE: " in text
    analysis = analyze(exp.results)
    confirmation = text.split('<section id="confirmation">')[1].split("</section>")[0]
    table = confirmation.split('id="confirmation-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == len(analysis.confirmation) + 1 == 3  # two confirmed front members
    (order,) = analysis.confirmation_order
    assert html.escape(f"100 epochs: {order_statement(order)}") in confirmation
    for config in analysis.confirmation:
        assert f">{config['trial_id']}<" in table and f">{config['mean_top1']:.4g}<" in table


def test_report_names_borderline_architectures_and_a_relative_budget(experiment, report):
    exp = read_experiment(experiment)
    borderline = exp.results[exp.results[m.LATENCY_BORDERLINE].fillna(False).astype(bool)]
    assert len(borderline)  # the demo has figures within 4% of the budget
    text = html.unescape(report.read_text())
    note = text.split("Borderline latency")[1].split("</")[0]
    for row in borderline.drop_duplicates([m.DEPTH, m.WIDTH, m.RESOLUTION]).to_dict("records"):
        assert f"depth {row[m.DEPTH]} width {row[m.WIDTH]:g} @{row[m.RESOLUTION]}" in note
    relative = {"max_ratio": 1.6, "reference": {"depth": 26, "width": 0.25, "resolution": 48}}
    assert _budget_text(relative, 2.85) == "1.6x depth 26 width 0.25 @48 = 2.85 ms here"
    assert _budget_text({"max": 4.0}, 4.0) == "4 ms" and _budget_text(None, None) == "none"


def test_header_names_the_machine_the_accuracies_repeat_on():
    env = {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "torch": "2.14.1", "torch_threads": 1}
    assert _environment_fact({"environment": env}) == [
        "<span><b>machine</b> AMD EPYC (AVX512), torch 2.14.1, 1 thread per trial</span>"
    ]
    assert (
        "2 threads per trial" in _environment_fact({"environment": {**env, "torch_threads": 2}})[0]
    )
    assert _environment_fact({}) == []  # an experiment from before it was recorded


def test_no_confirmation_rows_no_confirmation_section(tmp_path):
    exp = read_experiment(make_experiment(tmp_path / "plain", confirm=False))
    keys = [s.key for s in sections(exp)]
    assert "confirmation" not in keys and keys[0] == "pareto"


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such folder"),
        (lambda p: p.mkdir(), "with experiment.json"),
        (lambda p: create_experiment(p, {}, {}), "at least one trial"),
        (
            lambda p: (
                make_experiment(p),
                update_meta(p, schema_version=m.RESULTS_SCHEMA_VERSION + 1),
            ),
            "newer",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, make, message):
    make(tmp_path / "exp")
    assert main(["dashboard", str(tmp_path / "exp")]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and captured.out == ""
    assert not (tmp_path / "exp" / "report.html").exists()


def test_watch_rewrites_until_the_search_finishes(tmp_path, capsys):
    path = tmp_path / "live"
    create_experiment(path, {"epochs": [10]}, {})  # status "running"
    write_results(
        path,
        [
            {
                m.TRIAL_ID: "a",
                m.STATUS: m.STATUS_OK,
                m.DEPTH: 26,
                m.WIDTH: 0.5,
                m.RESOLUTION: 128,
                m.EPOCHS: 10,
                m.MINIVAL_TOP1: 0.4,
                m.LATENCY_MS: 1.0,
            }
        ],
    )
    timer = threading.Timer(0.6, update_meta, args=(path,), kwargs={"status": "finished"})
    timer.start()
    try:
        assert main(["dashboard", str(path), "--watch", "0.2"]) == 0
    finally:
        timer.cancel()
    written = capsys.readouterr().out.split()
    assert len(written) >= 2 and set(written) == {str(path / "report.html")}
    final = (path / "report.html").read_text()
    assert 'http-equiv="refresh"' not in final  # the finished report stops reloading itself


def test_dashboard_output_onto_a_folder_or_under_a_file_is_one_line(experiment, tmp_path, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    for target, message in (
        (tmp_path, "is a folder; expected the path of an .html file"),
        (afile / "r.html", "afile.txt is a file; expected a folder"),
    ):
        assert main(["dashboard", str(experiment), "-o", str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            len(err) == 1
            and err[0].startswith("rsearch dashboard: error: -o: ")
            and message in err[0]
        )


# --------------------------------------------------------------------------- two model families


def _two_family_rows():
    """A 10-epoch regime of ResNet-RS trials (latency doubling per step) and EfficientNet
    trials exactly 2x slower at every accuracy, each with a dominated trial."""
    rows = []
    for k, (acc, latency) in enumerate([(0.50, 1.0), (0.55, 2.0), (0.60, 4.0), (0.52, 8.0)]):
        for family, depth, factor in (("resnetrs", 26 + 24 * k, 1.0), ("efficientnet", k, 2.0)):
            rows.append(
                {
                    m.TRIAL_ID: f"{family}-{k}",
                    m.STATUS: m.STATUS_OK,
                    m.FAMILY: family,
                    m.MODEL: f"{family}-{k}",
                    m.DEPTH: depth,
                    m.WIDTH: 1.0,
                    m.RESOLUTION: 160,
                    m.EPOCHS: 10,
                    m.MINIVAL_TOP1: acc,
                    m.LATENCY_MS: factor * latency,
                    m.MINIVAL_SIZE: MINIVAL_SIZE,
                }
            )
    return rows


def test_two_families_get_a_symbol_legend_entry_and_front_each(tmp_path):
    create_experiment(tmp_path / "two", {}, {})
    write_results(tmp_path / "two", _two_family_rows())
    exp = read_experiment(tmp_path / "two")
    info = front_info(exp.results, None)
    entries = {(r.regime, r.family): r for r in info.regimes}
    assert set(entries) == {(10, "efficientnet"), (10, "resnetrs")}
    resnet, efficient = entries[10, "resnetrs"], entries[10, "efficientnet"]
    assert (resnet.symbol, efficient.symbol) == ("circle", "diamond")
    # Each family's own front: the dominated trial of each is off it, EfficientNet 2x slower.
    np.testing.assert_allclose(resnet.front.x, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(efficient.front.x, [2.0, 4.0, 8.0])
    np.testing.assert_allclose(efficient.front.y, resnet.front.y)
    assert all("<br>family: EfficientNet<br>" in text for text in efficient.trials.hover)
    assert all("<br>family: EfficientNet<br>" in text for text in efficient.front.hover)
    assert all("<br>family: ResNet-RS<br>" in text for text in resnet.trials.hover)
    traces = {t.name: t for t in pareto_figure(info).data}
    assert traces["10 epochs, ResNet-RS"].marker.symbol == "circle"
    assert traces["10 epochs, EfficientNet"].marker.symbol == "diamond"
    for family, symbol in (("ResNet-RS", "circle"), ("EfficientNet", "diamond")):
        line = traces[f"10 epochs, {family}: Pareto front"]
        assert set(line.marker.symbol) <= {symbol, f"{symbol}-open"} and len(line.x) == 3
        assert all(f"family: {family}" in text for text in line.hovertext)
    assert "10 epochs: Pareto front" not in traces  # no overall line besides the families'
    # The report states the speed ratio in `rsearch analyze`'s words, and the markers.
    (pareto,) = [s for s in sections(exp) if s.key == "pareto"]
    assert "10 epochs: ResNet-RS is 2x faster than EfficientNet at equal minival top-1" in (
        html.unescape(pareto.body)
    )
    assert "(circle ResNet-RS, diamond EfficientNet)" in pareto.why


def test_one_family_front_has_no_family_marks(experiment):
    info = front_info(read_experiment(experiment).results, BUDGET_MS)
    assert all(r.family is None and r.symbol is None for r in info.regimes)
    fig = pareto_figure(info)
    assert not any("family:" in text for t in fig.data for text in (t.hovertext or ()))
    assert all(
        t.marker.symbol is None for t in fig.data if t.mode == "markers" and "epochs" in t.name
    )
