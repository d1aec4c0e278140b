"""The report's tables: plain HTML, sortable by a few lines of inline JavaScript.

trials_info / front_table_info / confirmation_info choose the cells (text, sort key, class);
table_html only writes them out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from dashboards.common import COST_FIELDS, text_of
from rsearch import metrics as m
from rsearch.frames import is_null, plain
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
    *COST_FIELDS,
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
    m.TRIAL_ID,
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
      function key(row) {
        var v = row.cells[col].getAttribute('data-v');
        return v === '' ? null : v;
      }
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


@dataclass(frozen=True)
class Cell:
    html: str  # what the cell shows (HTML, escaped)
    key: str  # its sort key (data-v): "" sorts last
    klass: str | None = None  # a CSS class: the status colour, the front and tie marks


@dataclass(frozen=True)
class TableInfo:
    table_id: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


_EMPTY = Cell("", "")


def _cell(name: str, value) -> Cell:
    if is_null(value):
        return _EMPTY
    value = plain(value)
    if name == m.PARETO:
        return Cell("&#9670;" if value else "", str(int(bool(value))), "pareto")
    if isinstance(value, list):  # e.g. the seeds of a confirmed config
        value = ", ".join("-" if v is None else str(v) for v in value)
    klass = f"status-{value}" if name == m.STATUS else None
    return Cell(html.escape(text_of(value)), str(value), klass)


def _tied_cell(row: pd.Series) -> Cell:
    tied = row[m.TIED]
    if is_null(tied):
        return Cell("noise unknown", "")
    text = ("&#8776; " + html.escape(", ".join(row[m.TIED_WITH]))) if tied else ""
    return Cell(text, str(int(bool(tied))), "tied")


def _shown(columns, frame: pd.DataFrame, always: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of `columns` the frame has values in (`always` even when empty)."""
    return tuple(
        c for c in columns if c in frame.columns and (c in always or frame[c].notna().any())
    )


def trials_info(results: pd.DataFrame) -> TableInfo:
    """The whole results table, best first within each regime."""
    columns = _shown(COLUMNS, results, always=(m.TRIAL_ID, m.STATUS))
    ordered = results.sort_values(
        [m.EPOCHS, m.MINIVAL_TOP1], ascending=[True, False], kind="stable", na_position="last"
    )
    rows = (tuple(_cell(c, row[c]) for c in columns) for _, row in ordered.iterrows())
    return TableInfo("trials", columns, tuple(rows))


def front_table_info(front: pd.DataFrame) -> TableInfo:
    """The Pareto front of each regime (results.front_ties), by regime then latency: top-1
    with its SE, and the neighbours a member cannot be told apart from (&#8776;)."""
    columns = _shown(FRONT_COLUMNS, front, always=(m.TRIAL_ID, m.TIED))
    rows = (
        tuple(_tied_cell(row) if c == m.TIED else _cell(c, row[c]) for c in columns)
        for _, row in front.iterrows()
    )
    return TableInfo("front-table", columns, tuple(rows))


def confirmation_info(configurations: list[dict]) -> TableInfo:
    """Each confirmed config (analysis.confirmation_summary) with its runs' mean and sd."""
    rows = (tuple(_cell(c, row.get(c)) for c in CONFIRMATION_COLUMNS) for row in configurations)
    return TableInfo("confirmation-table", CONFIRMATION_COLUMNS, tuple(rows))


def _td(cell: Cell) -> str:
    klass = f' class="{html.escape(cell.klass)}"' if cell.klass else ""
    return f'<td{klass} data-v="{html.escape(cell.key, quote=True)}">{cell.html}</td>'


def table_html(info: TableInfo) -> str:
    """A sortable table (SORT_SCRIPT sorts it on a header click)."""
    head = "".join(
        f'<th scope="col" title="click to sort">{html.escape(c)}</th>' for c in info.columns
    )
    body = "\n".join("<tr>" + "".join(_td(cell) for cell in row) + "</tr>" for row in info.rows)
    return (
        f'<div class="table-wrap"><table class="sortable" id="{info.table_id}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )
