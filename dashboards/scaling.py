"""Scaling curves (depth vs width vs resolution from a common base) and regularization vs size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards.common import (
    ACC_LABEL,
    AXIS_COLOURS,
    BASE_LAYOUT,
    HOVER_TEMPLATE,
    LATENCY_LABEL,
    LEGEND_BELOW,
    floats,
    hover_texts,
    in_regime,
    ok_rows,
    regime_colour,
)
from rsearch import metrics as m
from rsearch.analysis import AXES, Analysis
from rsearch.noise import verdict
from rsearch.results import REGULARIZATION_COLUMNS, regimes

_SYMBOLS = {m.DEPTH: "circle", m.WIDTH: "square", m.RESOLUTION: "diamond"}


def _title(regime) -> str:
    if regime.winner is None:
        return f"{regime.epochs} epochs: no axis followed"
    if regime.effect is None:
        return f"{regime.epochs} epochs: only {regime.winner} followed"
    return f"{regime.epochs} epochs: {regime.winner} wins ({verdict(regime.exceeds_noise)})"


def scaling_figure(analysis: Analysis) -> go.Figure | None:
    """One panel per regime: accuracy against latency along each axis from the regime's base."""
    panels = [r for r in analysis.regimes if any(len(c.values) >= 2 for c in r.curves.values())]
    if not panels:
        return None
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[_title(r) for r in panels],
        horizontal_spacing=0.06,
    )
    for col, regime in enumerate(panels, start=1):
        base_labelled = False
        for axis in AXES:
            curve = regime.curves.get(axis)
            if curve is None or len(curve.values) < 2:
                continue
            # The base is shared by every curve: name it once instead of overprinting its values.
            labels = [f"{v:g}" for v in curve.values]
            labels[0] = "" if base_labelled else "base"
            base_labelled = True
            slope = "" if curve.slope is None else f"<br>{curve.slope:+.4f} top-1 per 2x latency"
            fig.add_trace(
                go.Scatter(
                    x=curve.latency_ms,
                    y=curve.accuracy,
                    mode="lines+markers+text",
                    name=f"scale {axis}",
                    legendgroup=axis,
                    showlegend=col == 1,
                    text=labels,
                    textposition="top left",
                    textfont=dict(size=10),
                    line=dict(color=AXIS_COLOURS[axis], width=2.5),
                    marker=dict(color=AXIS_COLOURS[axis], size=9, symbol=_SYMBOLS[axis]),
                    hovertext=[
                        f"<b>{axis} {v:g}</b> ({regime.epochs} epochs){slope}<br>latency {lat:.4g} ms"
                        f"<br>top-1 {acc:.4g}"
                        for v, lat, acc in zip(curve.values, curve.latency_ms, curve.accuracy)
                    ],
                    hovertemplate=HOVER_TEMPLATE,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(type="log", title_text=LATENCY_LABEL, row=1, col=col)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=1)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    return fig


def varied_knobs(results: pd.DataFrame) -> list[str]:
    """Regularization/recipe columns that take more than one value among trained trials."""
    ok = ok_rows(results)
    return [c for c in REGULARIZATION_COLUMNS if c in ok.columns and ok[c].dropna().nunique() > 1]


def fixed_knobs(results: pd.DataFrame) -> dict[str, object]:
    """Regularization values that never varied (for the note shown instead of a figure)."""
    ok = ok_rows(results)
    return {
        c: ok[c].dropna().iloc[0]
        for c in REGULARIZATION_COLUMNS
        if c in ok.columns and ok[c].dropna().nunique() == 1
    }


def _best_per_architecture(results: pd.DataFrame) -> pd.DataFrame:
    """The most accurate trial of each (regime, depth, width, resolution)."""
    ok = ok_rows(results).copy()
    ok["_acc"] = floats(ok[m.MINIVAL_TOP1])
    ok = ok.sort_values("_acc", ascending=False, kind="stable")
    return ok.drop_duplicates([m.EPOCHS, m.DEPTH, m.WIDTH, m.RESOLUTION])


def regularization_figure(results: pd.DataFrame) -> go.Figure | None:
    """One panel per knob that varied: its value in the best trial of each architecture
    against model size (parameters), one colour per regime."""
    knobs = varied_knobs(results)
    if not knobs:
        return None
    best = _best_per_architecture(results)
    size = floats(best[m.PARAMS]) / 1e6
    x_label = "parameters (M)"
    if np.isnan(size).all():
        size, x_label = floats(best[m.LATENCY_MS]), LATENCY_LABEL
    cols = min(3, len(knobs))
    rows = math.ceil(len(knobs) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=knobs, vertical_spacing=0.18, horizontal_spacing=0.08
    )
    all_regimes = regimes(results)
    rng = np.random.default_rng(0)  # a little horizontal jitter so equal sizes stay visible
    for index, knob in enumerate(knobs):
        row, col = divmod(index, cols)
        for regime in all_regimes:
            pick = in_regime(best, regime)
            fig.add_trace(
                go.Scatter(
                    x=size[pick] * (1 + rng.uniform(-0.03, 0.03, pick.sum())),
                    y=floats(best[knob])[pick],
                    mode="markers",
                    name=f"{regime} epochs",
                    legendgroup=str(regime),
                    showlegend=index == 0,
                    marker=dict(color=regime_colour(all_regimes, regime), size=9, opacity=0.8),
                    hovertext=hover_texts(best[pick]),
                    hovertemplate=HOVER_TEMPLATE,
                ),
                row=row + 1,
                col=col + 1,
            )
        fig.update_xaxes(type="log", title_text=x_label, row=row + 1, col=col + 1)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(
        legend=dict(orientation="v", y=1, x=1.01, yanchor="top"),
        height=max(380, 340 * rows),
        margin=dict(t=40),
    )
    return fig
