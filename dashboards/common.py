"""Shared pieces of the report's figures: colours, hover text, number columns, layout."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from rsearch import metrics as m
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


def regime_colour(regimes: list[int], regime: int) -> str:
    return REGIME_COLOURS[regimes.index(regime) % len(REGIME_COLOURS)]


def faded(colour: str, alpha: float) -> str:
    """#rrggbb -> rgba(r,g,b,alpha)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def floats(series: pd.Series) -> np.ndarray:
    """A column as float numpy (NaN for null), whatever its pandas dtype."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def in_regime(frame: pd.DataFrame, regime: int) -> np.ndarray:
    """Boolean mask of the rows of one epoch regime (null epochs never match)."""
    return (frame[m.EPOCHS] == regime).fillna(False).to_numpy(dtype=bool)


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Trained trials with both objectives measured."""
    ok = (results[m.STATUS] == m.STATUS_OK).fillna(False).to_numpy(dtype=bool)
    measured = ~np.isnan(floats(results[m.MINIVAL_TOP1])) & ~np.isnan(floats(results[m.LATENCY_MS]))
    return results[ok & measured]


def _fmt(value) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, np.integer)) and abs(int(value)) >= 10_000:
        return f"{int(value):,}"
    return html.escape(str(value))


# The hover text lists these, in this order, where present.
_HOVER_FIELDS = (
    m.TRIAL_ID,
    m.STATUS,
    m.FAILURE,
    m.CONFIRMS,
    m.SEED,
    m.EPOCHS,
    m.DEPTH,
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
    m.LATENCY_NOISE,
    m.LATENCY_RATIO,
    m.LATENCY_BORDERLINE,
    m.PARAMS,
    m.FLOPS,
    m.TRAIN_SECONDS,
    m.EPOCHS_DONE,
)


def hover_text(row: pd.Series) -> str:
    """The full config of one trial, one field a line (plotly hover HTML)."""
    title = _fmt(row.get(m.MODEL)) or "trial"
    lines = [f"<b>{title}</b>"]
    for name in _HOVER_FIELDS:
        value = _fmt(row.get(name))
        if value is not None:
            lines.append(f"{name}: {value}")
    return "<br>".join(lines)


def hover_texts(frame: pd.DataFrame) -> list[str]:
    return [hover_text(row) for _, row in frame.iterrows()]


HOVER_TEMPLATE = "%{hovertext}<extra></extra>"
