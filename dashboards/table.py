"""The report's tables: plain HTML, sortable by a few lines of inline JavaScript.

trials_info / front_table_info / confirmation_info choose the cells (text, sort key, class);
table_html only writes them out. A table of more than PAGE_ROWS rows (the trials of a large
study) is paged: the page holds its cells once as JSON data and one page of rows in the DOM,
and PAGER_SCRIPT sorts, filters and pages through the data (10,000 DOM rows of 30 cells
each make a browser crawl, and a sort that moves them all takes seconds).
"""

from __future__ import annotations

import html
import json
import re
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
document.querySelectorAll('table.sortable:not(.paged)').forEach(function (table) {
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


# Rows a paged table shows at a time; a table of at most this many is one plain table.
PAGE_ROWS = 100

# A paged table (table_html): the same sort as SORT_SCRIPT's (numbers as numbers, empty cells
# last, a click again reverses), a filter box (rows with a cell containing the text) and a
# pager, over the JSON data beside the table: per column its distinct cells ("html", "klass")
# and each row's index into them ("codes"). A column of numbers comes sorted ascending, its
# "nulls" empty cells last; any other column carries its sort keys ("key"), ranked here.
PAGER_SCRIPT = """
document.querySelectorAll('table.paged').forEach(function (table) {
  var data = JSON.parse(document.getElementById(table.id + '-data').textContent);
  var pager = document.querySelector('.pager[data-for="' + table.id + '"]');
  var label = pager.querySelector('.pager-info'), filter = pager.querySelector('input');
  var cols = data.columns, per = Number(table.getAttribute('data-page-rows')), page = 0;
  function compare(x, y) {
    var nx = Number(x), ny = Number(y);
    return (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
  }
  cols.forEach(function (c) {  // c.rank[entry]: its place in ascending order; null: empty
    var n = c.html.length, entries = Array.from({length: n}, function (_, i) { return i; });
    if (c.key) {
      entries.sort(function (a, b) { return compare(c.key[a], c.key[b]); });
      c.rank = new Array(n);
      entries.forEach(function (e, r) { c.rank[e] = c.key[e] === '' ? null : r; });
    } else {
      c.rank = entries.map(function (i) { return i < n - c.nulls ? i : null; });
    }
    c.text = c.html.map(function (h) {
      return h.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
        .replace(/&#x27;/g, "'").replace(/&amp;/g, '&').toLowerCase();
    });
  });
  var order = Array.from({length: data.rows}, function (_, i) { return i; }), shown = order;
  function cell(c, code) {
    var k = c.klass ? c.klass[code] : null;
    return '<td' + (k ? ' class="' + k + '"' : '') + '>' + c.html[code] + '</td>';
  }
  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / per));
    page = Math.min(Math.max(page, 0), pages - 1);
    var rows = shown.slice(page * per, (page + 1) * per);
    table.tBodies[0].innerHTML = rows.map(function (r) {
      return '<tr>' + cols.map(function (c) { return cell(c, c.codes[r]); }).join('') + '</tr>';
    }).join('\\n');
    var of = ' of ' + shown.length.toLocaleString('en') +
      (shown.length < data.rows ? ' (filtered from ' + data.rows.toLocaleString('en') + ')' : '');
    label.textContent = rows.length ?
      'rows ' + (page * per + 1) + '\\u2013' + (page * per + rows.length) + of : 'no rows match';
  }
  function select() {
    var q = filter.value.trim().toLowerCase();
    if (!q) { shown = order; return; }
    var hits = cols.map(function (c) {
      return c.text.map(function (t) { return t.includes(q); });
    });
    shown = order.filter(function (r) {
      return cols.some(function (c, i) { return hits[i][c.codes[r]]; });
    });
  }
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending', c = cols[col];
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      order.sort(function (a, b) {  // stable: equal rows keep their order, as SORT_SCRIPT's
        var x = c.rank[c.codes[a]], y = c.rank[c.codes[b]];
        if (x === null || y === null) { return (x === null) - (y === null); }
        return asc ? x - y : y - x;
      });
      select(); page = 0; render();
    });
  });
  filter.addEventListener('input', function () { select(); page = 0; render(); });
  pager.querySelectorAll('button').forEach(function (button) {
    button.addEventListener('click', function () {
      var step = {first: -Infinity, prev: -1, next: 1, last: Infinity}[button.dataset.page];
      page = isFinite(step) ? page + step : step < 0 ? 0 : shown.length;
      render();
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
    # Column by column: a row at a time (iterrows) costs seconds at 10,000 trials.
    cells = [_cells(c, ordered[c].tolist()) for c in columns]
    return TableInfo("trials", columns, tuple(zip(*cells)))


def _cells(name: str, values: list) -> list[Cell]:
    """_cell of each value of one column, each distinct value formatted once."""
    memo: dict = {}
    cells = []
    for value in values:
        try:
            key = (type(value), value)  # the type too: True == 1, but its cell differs
            cell = memo.get(key)
        except TypeError:  # unhashable (a list)
            key, cell = None, None
        if cell is None:
            cell = _cell(name, value)
            if key is not None:
                memo[key] = cell
        cells.append(cell)
    return cells


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


def _td(cell: Cell, sort_key: bool = True) -> str:
    """sort_key: the data-v attribute SORT_SCRIPT sorts by (a paged table sorts its data)."""
    klass = f' class="{html.escape(cell.klass)}"' if cell.klass else ""
    key = f' data-v="{html.escape(cell.key, quote=True)}"' if sort_key else ""
    return f"<td{klass}{key}>{cell.html}</td>"


def _rows_html(rows, sort_key: bool = True) -> str:
    return "\n".join(
        "<tr>" + "".join(_td(cell, sort_key) for cell in row) + "</tr>" for row in rows
    )


def table_html(info: TableInfo) -> str:
    """A sortable table (SORT_SCRIPT sorts it on a header click); paged (PAGER_SCRIPT) when
    it has more than PAGE_ROWS rows."""
    if len(info.rows) > PAGE_ROWS:
        return _paged_html(info)
    return (
        f'<div class="table-wrap"><table class="sortable" id="{info.table_id}">'
        f"{_head(info)}\n<tbody>\n{_rows_html(info.rows)}\n</tbody></table></div>"
    )


def _head(info: TableInfo) -> str:
    cells = "".join(
        f'<th scope="col" title="click to sort">{html.escape(c)}</th>' for c in info.columns
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _paged_html(info: TableInfo) -> str:
    """The first page of rows in the DOM, every row in the JSON data (PAGER_SCRIPT)."""
    table_id, total = info.table_id, len(info.rows)
    data = json.dumps(table_data(info), separators=(",", ":")).replace("</", "<\\/")
    buttons = "".join(
        f'<button type="button" data-page="{page}" title="{page} page">{mark}</button>'
        for page, mark in (("first", "&laquo;"), ("prev", "&lsaquo;"))
    )
    after = "".join(
        f'<button type="button" data-page="{page}" title="{page} page">{mark}</button>'
        for page, mark in (("next", "&rsaquo;"), ("last", "&raquo;"))
    )
    pager = (
        f'<div class="pager" data-for="{table_id}">'
        '<input type="search" placeholder="filter rows" aria-label="filter rows">'
        f'{buttons}<span class="pager-info">rows 1&ndash;{PAGE_ROWS} of {total:,}</span>{after}'
        "</div>"
    )
    return (
        f'{pager}<div class="table-wrap"><table class="sortable paged" id="{table_id}" '
        f'data-page-rows="{PAGE_ROWS}">{_head(info)}\n<tbody>\n'
        f"{_rows_html(info.rows[:PAGE_ROWS], sort_key=False)}\n</tbody></table></div>"
        f'<script type="application/json" id="{table_id}-data">{data}</script>'
    )


# A sort key PAGER_SCRIPT's Number() reads as a number (str() of an int or a finite float).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def table_data(info: TableInfo) -> dict:
    """A paged table's data (PAGER_SCRIPT): {"rows": n, "columns": per column its distinct
    cells' "html" (and "klass" where any has one), each row's index into them ("codes"), and
    either "key" (their sort keys) or, for a column of numbers, the cells sorted ascending
    with its "nulls" empty cells last, so that no key need be sent: at 10,000 trials the
    full-precision keys of the float columns would be most of the page."""
    columns = []
    for j in range(len(info.columns)):
        cells = [row[j] for row in info.rows]
        distinct = list(dict.fromkeys(cells))
        numeric = all(c.key == "" or _NUMBER.fullmatch(c.key) for c in distinct)
        if numeric:
            distinct.sort(key=lambda c: (c.key == "", float(c.key or 0)))
        index = {cell: k for k, cell in enumerate(distinct)}
        column = {"html": [c.html for c in distinct], "codes": [index[c] for c in cells]}
        if any(c.klass for c in distinct):
            column["klass"] = [html.escape(c.klass) if c.klass else None for c in distinct]
        if numeric:
            column["nulls"] = sum(c.key == "" for c in distinct)
        else:
            column["key"] = [c.key for c in distinct]
        columns.append(column)
    return {"rows": len(info.rows), "columns": columns}
