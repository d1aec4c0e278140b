"""Shared pieces of the report: colours, layout, hover text, and the rows the figures choose.

Nothing here imports plotly: the info objects (what a figure shows) are built from these
helpers alone, and only the figure builders draw.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rsearch import metrics as m
from rsearch.frames import floats, is_null, ok_mask, plain
from rsearch.results import REGULARIZATION_COLUMNS

# One colour per epoch regime, the same in every figure (Okabe-Ito: colour-blind safe).
REGIME_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
# One colour per scaling axis.
AXIS_COLOURS = {m.DEPTH: "#0072B2", m.WIDTH: "#D55E00", m.RESOLUTION: "#009E73"}
INFEASIBLE_COLOUR = "#7f7f7f"
FAILED_COLOUR = "#b2182b"

FIGURE_HEIGHT = 460
BASE_LAYOUT = dict(
    template="plotly_white",
    height=FIGURE_HEIGHT,
    margin=dict(l=60, r=20, t=40, b=50),
    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    hoverlabel=dict(align="left"),
    font=dict(family="system-ui, -apple-system, 'Segoe UI', sans-serif", size=12),
)

# Figures with subplot titles keep their legend below the plots, clear of the titles.
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0)

ACC_LABEL = "minival top-1"
LATENCY_LABEL = "measured latency (ms)"
HOVER_TEMPLATE = "%{hovertext}<extra></extra>"

# Views at scale (10,000 trials). A figure of more trial points than this gets the compact
# hover (SHORT_HOVER_FIELDS): the full config of each (about 1 KB of text) would make such a
# report tens of MB; the trials table has every field of every trial.
FULL_HOVER_POINTS = 2_000
# A trace of more points than this is drawn with WebGL (plotly's scattergl): SVG, one DOM
# node a marker, slows to a crawl with thousands of them.
WEBGL_POINTS = 1_000


@dataclass(frozen=True)
class Points:
    """One set of markers (or one line) of a figure: coordinates and a hover text per point.
    Arrays, or lists where several lines are joined into one with None gaps."""

    x: np.ndarray | list
    y: np.ndarray | list
    hover: tuple[str | None, ...]


@dataclass(frozen=True)
class RegimePoints:
    """The points of one epoch regime, in the regime's colour."""

    regime: int
    colour: str
    points: Points


def trace_data(points: Points) -> dict:
    """The keyword arguments that put `points` and their hover texts into a plotly trace."""
    return dict(x=points.x, y=points.y, hovertext=points.hover, hovertemplate=HOVER_TEMPLATE)


def regime_colour(regimes: list[int], regime: int) -> str:
    return REGIME_COLOURS[regimes.index(regime) % len(REGIME_COLOURS)]


def faded(colour: str, alpha: float) -> str:
    """#rrggbb -> rgba(r,g,b,alpha)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def in_regime(frame: pd.DataFrame, regime: int) -> np.ndarray:
    """Boolean mask of the rows of one epoch regime (null epochs never match)."""
    return (frame[m.EPOCHS] == regime).fillna(False).to_numpy(dtype=bool)


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Trained trials with both objectives measured."""
    measured = ~np.isnan(floats(results[m.MINIVAL_TOP1])) & ~np.isnan(floats(results[m.LATENCY_MS]))
    return results[ok_mask(results) & measured]


def on_front(results: pd.DataFrame) -> np.ndarray:
    """The stored `pareto` flags: the store computes them on every write (results.write_results),
    so a running search's page shows the front as of its last recorded trial."""
    # A copy: to_numpy may return a view of the column, which a later edit would change.
    return np.array(results[m.PARETO].to_numpy(dtype=bool, na_value=False))


def front_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The Pareto-front rows of every regime, by regime then latency."""
    return results[on_front(results)].sort_values([m.EPOCHS, m.LATENCY_MS], kind="stable")


def name_or(value, default: str) -> str:
    """A model name for a title, or `default` where the row has none."""
    return default if is_null(value) or value == "" else str(value)


def text_of(value) -> str:
    """A cell value as the report prints it: 4 significant digits, thousands separators
    from 10,000 on (plain text: the caller escapes it)."""
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


# How the latency was judged and what the trial cost: the tail of the hover text and of the
# trials table alike.
COST_FIELDS = (
    m.LATENCY_NOISE,
    m.LATENCY_RATIO,
    m.LATENCY_BORDERLINE,
    m.PARAMS,
    m.FLOPS,
    m.TRAIN_SECONDS,
    m.EPOCHS_DONE,
)

# The hover text lists these, in this order, where present.
_HOVER_FIELDS = (
    m.TRIAL_ID,
    m.STATUS,
    m.FAILURE,
    m.CONFIRMS,
    m.SEED,
    m.EPOCHS,
    m.DEPTH,
    m.DEPTH_MULT,  # an EfficientNet's (none for ResNet-RS: left out of its hover text)
    m.WIDTH,
    m.RESOLUTION,
    m.RECIPE,
    *REGULARIZATION_COLUMNS,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.MINIVAL_SIZE,
    m.TEST_TOP1,
    m.LATENCY_MS,
    m.LATENCY_P95_MS,
    m.LATENCY_SPREAD_MS,
    m.LATENCY_RUNS,
    *COST_FIELDS,
)
# The compact hover: which trial, its architecture and its outcome.
SHORT_HOVER_FIELDS = (
    m.TRIAL_ID,
    m.STATUS,
    m.FAILURE,
    m.EPOCHS,
    m.DEPTH,
    m.DEPTH_MULT,
    m.WIDTH,
    m.RESOLUTION,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.LATENCY_MS,
)


def _hover_value(value) -> str | None:
    return None if is_null(value) else html.escape(text_of(value))


def hover_texts(frame: pd.DataFrame, full: bool = True) -> tuple[str, ...]:
    """Each row's hover text (plotly hover HTML): its model in bold, then one line per field
    it has a value in, all of _HOVER_FIELDS (its full config), or with full=False only the
    SHORT_HOVER_FIELDS, for a figure too large for full ones. Built column by column: a row
    at a time costs seconds at 10,000 trials."""
    fields = _HOVER_FIELDS if full else SHORT_HOVER_FIELDS
    titles = (
        [_hover_value(v) or "trial" for v in frame[m.MODEL].tolist()]
        if m.MODEL in frame.columns
        else ["trial"] * len(frame)
    )
    lines = [
        [None if v is None else f"{name}: {v}" for v in map(_hover_value, frame[name].tolist())]
        for name in fields
        if name in frame.columns
    ]
    return tuple(
        "<br>".join([f"<b>{title}</b>", *(line for line in row if line is not None)])
        for title, *row in zip(titles, *lines)
    )


def full_hover(points: int) -> bool:
    """Whether a figure of this many trial points gets the full hover texts."""
    return points <= FULL_HOVER_POINTS


def marker_size(points: int, size: float) -> float:
    """`size` for a trace of a few points; smaller for a WebGL cloud of thousands, which would
    otherwise merge into one blot."""
    return size if points <= WEBGL_POINTS else round(size * 0.6, 1)


def scatter_class(points: int):
    """go.Scatter, or go.Scattergl (WebGL) for a trace of more than WEBGL_POINTS points."""
    import plotly.graph_objects as go  # only the figure builders call this

    return go.Scattergl if points > WEBGL_POINTS else go.Scatter


def panels_figure(titles: list[str]):
    """An empty figure of one panel per regime, side by side (the curves and scaling views)."""
    from plotly.subplots import make_subplots  # only the figure builders call this

    return make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
