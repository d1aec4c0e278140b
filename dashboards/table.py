"""The trials table: plain HTML, sortable by a few lines of inline JavaScript."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from rsearch import metrics as m
from rsearch.results import REGULARIZATION_COLUMNS

COLUMNS = (
    m.TRIAL_ID,
    m.STATUS,
    m.FAILURE,
    m.MODEL,
    m.EPOCHS,
    m.DEPTH,
    m.WIDTH,
    m.RESOLUTION,
    m.RECIPE,
    m.SEED,
    m.CONFIRMS,
    *REGULARIZATION_COLUMNS,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.TEST_TOP1,
    m.LATENCY_MS,
    m.LATENCY_SPREAD_MS,
    m.LATENCY_NOISE,
    m.LATENCY_RATIO,
    m.LATENCY_BORDERLINE,
    m.PARAMS,
    m.FLOPS,
    m.TRAIN_SECONDS,
    m.EPOCHS_DONE,
    m.PARETO,
)
# The front table: each member with its noise, and the neighbours it cannot be told apart from.
FRONT_COLUMNS = (
    m.EPOCHS,
    m.LATENCY_MS,
    m.LATENCY_SPREAD_MS,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.MODEL,
    m.DEPTH,
    m.WIDTH,
    m.RESOLUTION,
    m.TRIAL_ID,
    m.TIED,
)
# The confirmation table (analysis.confirmation_summary's configurations).
CONFIRMATION_COLUMNS = (
    m.EPOCHS,
    "trial_id",
    m.MODEL,
    "on_front",
    "n",
    "seeds",
    "original_top1",
    "mean_top1",
    "std_top1",
)

# Click a header to sort by it; click again to reverse. Cells carry a data-v sort key:
# numbers sort as numbers, empty cells last.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      function key(row) { var v = row.cells[col].getAttribute('data-v'); return v === '' ? null : v; }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var nx = Number(x), ny = Number(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _is_null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(name: str, value) -> str:
    if _is_null(value):
        return '<td data-v=""></td>'
    if isinstance(value, np.generic):
        value = value.item()
    if name == m.PARETO:
        text, key = ("&#9670;" if value else ""), int(bool(value))
        return f'<td class="pareto" data-v="{key}">{text}</td>'
    if isinstance(value, list):  # e.g. the seeds of a confirmed config
        value = ", ".join("-" if v is None else str(v) for v in value)
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, int) and abs(value) >= 10_000:
        text = f"{value:,}"
    else:
        text = str(value)
    klass = f' class="status-{html.escape(str(value))}"' if name == m.STATUS else ""
    return f'<td{klass} data-v="{html.escape(str(value), quote=True)}">{html.escape(text)}</td>'


def _tied_cell(row: pd.Series) -> str:
    tied = row[m.TIED]
    if _is_null(tied):
        return '<td data-v="">noise unknown</td>'
    text = ("&#8776; " + html.escape(", ".join(row[m.TIED_WITH]))) if tied else ""
    return f'<td class="tied" data-v="{int(bool(tied))}">{text}</td>'


def _sortable(table_id: str, columns, rows: list[str]) -> str:
    head = "".join(f'<th scope="col" title="click to sort">{html.escape(c)}</th>' for c in columns)
    body = "\n".join(rows)
    return (
        f'<div class="table-wrap"><table class="sortable" id="{table_id}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )


def trials_table(results: pd.DataFrame) -> str:
    """The whole results table as HTML, best first within each regime."""
    columns = [
        c
        for c in COLUMNS
        if c in results.columns and (c in (m.TRIAL_ID, m.STATUS) or results[c].notna().any())
    ]
    ordered = results.sort_values(
        [m.EPOCHS, m.MINIVAL_TOP1], ascending=[True, False], kind="stable", na_position="last"
    )
    return _sortable(
        "trials",
        columns,
        [
            "<tr>" + "".join(_cell(c, row[c]) for c in columns) + "</tr>"
            for _, row in ordered.iterrows()
        ],
    )


def front_table(front: pd.DataFrame) -> str:
    """The Pareto front of each regime (results.front_ties), by regime then latency: top-1
    with its SE, and the neighbours a member cannot be told apart from (&#8776;)."""
    columns = [
        c
        for c in FRONT_COLUMNS
        if c in front.columns and (c in (m.TRIAL_ID, m.TIED) or front[c].notna().any())
    ]
    return _sortable(
        "front-table",
        columns,
        [
            "<tr>"
            + "".join(_tied_cell(row) if c == m.TIED else _cell(c, row[c]) for c in columns)
            + "</tr>"
            for _, row in front.iterrows()
        ],
    )


def confirmation_table(configurations: list[dict]) -> str:
    """Each confirmed config (analysis.confirmation_summary) with its runs' mean and sd."""
    return _sortable(
        "confirmation-table",
        CONFIRMATION_COLUMNS,
        [
            "<tr>" + "".join(_cell(c, row.get(c)) for c in CONFIRMATION_COLUMNS) + "</tr>"
            for row in configurations
        ],
    )
