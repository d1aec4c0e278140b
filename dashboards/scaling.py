"""Scaling curves (depth vs width vs resolution from a common base) and regularization vs size.

scaling_info / regularization_info choose what each figure shows, without plotly;
scaling_figure / regularization_figure only draw an info object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dashboards.common import (
    ACC_LABEL,
    AXIS_COLOURS,
    BASE_LAYOUT,
    LATENCY_LABEL,
    LEGEND_BELOW,
    Points,
    RegimePoints,
    full_hover,
    hover_texts,
    in_regime,
    ok_rows,
    panels_figure,
    regime_colour,
    scatter_class,
    trace_data,
)
from rsearch import metrics as m
from rsearch.analysis import AXES, Analysis, AxisCurve, RegimeAnalysis
from rsearch.frames import floats
from rsearch.noise import verdict
from rsearch.results import REGULARIZATION_COLUMNS, regimes

if TYPE_CHECKING:
    import plotly.graph_objects as go

_SYMBOLS = {m.DEPTH: "circle", m.WIDTH: "square", m.RESOLUTION: "diamond"}


# --------------------------------------------------------------------------- scaling: data


@dataclass(frozen=True)
class ScalingCurve:
    """One axis grown alone from the regime's base: x latency, y minival top-1."""

    axis: str
    labels: tuple[str, ...]  # the axis value by each point; the shared base named once
    points: Points


@dataclass(frozen=True)
class ScalingPanel:
    title: str  # the regime and its verdict
    curves: tuple[ScalingCurve, ...]  # in AXES order, only the axes followed for 2+ values


@dataclass(frozen=True)
class ScalingInfo:
    panels: tuple[ScalingPanel, ...]  # the regimes with at least one curve


def _title(regime: RegimeAnalysis) -> str:
    if regime.winner is None:
        return f"{regime.epochs} epochs: no axis followed"
    if regime.effect is None:
        return f"{regime.epochs} epochs: only {regime.winner} followed"
    return f"{regime.epochs} epochs: {regime.winner} wins ({verdict(regime.exceeds_noise)})"


def _followed(regime: RegimeAnalysis) -> list[AxisCurve]:
    """The regime's curves along at least two values, in AXES order."""
    curves = (regime.curves.get(axis) for axis in AXES)
    return [curve for curve in curves if curve is not None and len(curve.values) >= 2]


def _scaling_curve(regime: RegimeAnalysis, curve: AxisCurve, name_base: bool) -> ScalingCurve:
    # The base is shared by every curve: name it once instead of overprinting its values.
    labels = [f"{v:g}" for v in curve.values]
    labels[0] = "base" if name_base else ""
    slope = "" if curve.slope is None else f"<br>{curve.slope:+.4f} top-1 per 2x latency"
    hover = tuple(
        f"<b>{curve.axis} {v:g}</b> ({regime.epochs} epochs){slope}"
        f"<br>latency {lat:.4g} ms<br>top-1 {acc:.4g}"
        for v, lat, acc in zip(curve.values, curve.latency_ms, curve.accuracy)
    )
    return ScalingCurve(curve.axis, tuple(labels), Points(curve.latency_ms, curve.accuracy, hover))


def scaling_info(analysis: Analysis) -> ScalingInfo | None:
    """One panel per regime: accuracy against latency along each axis from the regime's base;
    None until some axis was followed for two values."""
    panels = []
    for regime in analysis.regimes:
        followed = _followed(regime)
        if followed:
            curves = (_scaling_curve(regime, c, name_base=k == 0) for k, c in enumerate(followed))
            panels.append(ScalingPanel(_title(regime), tuple(curves)))
    return ScalingInfo(tuple(panels)) if panels else None


# --------------------------------------------------------------------------- scaling: drawing


def _curve_trace(curve: ScalingCurve, first_panel: bool) -> dict:
    colour = AXIS_COLOURS[curve.axis]
    return dict(
        **trace_data(curve.points),
        mode="lines+markers+text",
        name=f"scale {curve.axis}",
        legendgroup=curve.axis,
        showlegend=first_panel,
        text=list(curve.labels),
        textposition="top left",
        textfont=dict(size=10),
        line=dict(color=colour, width=2.5),
        marker=dict(color=colour, size=9, symbol=_SYMBOLS[curve.axis]),
    )


def scaling_figure(info: ScalingInfo) -> go.Figure:
    """One panel per regime: accuracy against latency along each axis from the regime's base."""
    import plotly.graph_objects as go  # plotly draws; the info objects are built without it

    fig = panels_figure([panel.title for panel in info.panels])
    for col, panel in enumerate(info.panels, start=1):
        for curve in panel.curves:
            fig.add_trace(go.Scatter(**_curve_trace(curve, col == 1)), row=1, col=col)
        fig.update_xaxes(type="log", title_text=LATENCY_LABEL, row=1, col=col)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=1)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    return fig


# --------------------------------------------------------------------------- regularization: data


@dataclass(frozen=True)
class KnobPanel:
    knob: str
    regimes: tuple[RegimePoints, ...]  # every regime: x model size, y the knob's value


@dataclass(frozen=True)
class RegularizationInfo:
    x_label: str  # parameters (M), or the latency where no trial has a parameter count
    panels: tuple[KnobPanel, ...]  # one per knob that varied


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
    ok = ok_rows(results)
    order = np.argsort(-floats(ok[m.MINIVAL_TOP1]), kind="stable")
    return ok.iloc[order].drop_duplicates([m.EPOCHS, m.DEPTH, m.WIDTH, m.RESOLUTION])


def _knob_regime(best, size, hover, knob: str, regime: int, colour: str) -> RegimePoints:
    """hover: the texts of `best`'s rows (an object array: one per row, shared by the knobs)."""
    pick = in_regime(best, regime)
    return RegimePoints(
        regime, colour, Points(size[pick], floats(best[knob])[pick], tuple(hover[pick]))
    )


def regularization_info(results: pd.DataFrame) -> RegularizationInfo | None:
    """Each knob that varied: its value in the best trial of each architecture against model
    size (parameters), one colour per regime. None when no knob varied."""
    knobs = varied_knobs(results)
    if not knobs:
        return None
    best = _best_per_architecture(results)
    size, x_label = floats(best[m.PARAMS]) / 1e6, "parameters (M)"
    if np.isnan(size).all():
        size, x_label = floats(best[m.LATENCY_MS]), LATENCY_LABEL
    all_regimes = regimes(results)
    colours = {regime: regime_colour(all_regimes, regime) for regime in all_regimes}
    hover = np.array(hover_texts(best, full_hover(len(best) * len(knobs))), dtype=object)
    panels = tuple(
        KnobPanel(
            knob,
            tuple(
                _knob_regime(best, size, hover, knob, r, colour) for r, colour in colours.items()
            ),
        )
        for knob in knobs
    )
    return RegularizationInfo(x_label, panels)


# --------------------------------------------------------------------------- regularization:
# drawing


def _knob_trace(regime: RegimePoints, points: Points, first_panel: bool) -> dict:
    return dict(
        **trace_data(points),
        mode="markers",
        name=f"{regime.regime} epochs",
        legendgroup=str(regime.regime),
        showlegend=first_panel,
        marker=dict(color=regime.colour, size=9, opacity=0.8),
    )


def regularization_figure(info: RegularizationInfo) -> go.Figure:
    """One panel per knob that varied, its value against model size, one colour per regime."""
    from plotly.subplots import make_subplots  # plotly draws; infos are built without it

    cols = min(3, len(info.panels))
    rows = math.ceil(len(info.panels) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[panel.knob for panel in info.panels],
        vertical_spacing=0.18,
        horizontal_spacing=0.08,
    )
    rng = np.random.default_rng(0)  # a little horizontal jitter so equal sizes stay visible
    for index, panel in enumerate(info.panels):
        row, col = divmod(index, cols)
        for regime in panel.regimes:
            size = regime.points.x
            jittered = replace(regime.points, x=size * (1 + rng.uniform(-0.03, 0.03, len(size))))
            trace = _knob_trace(regime, jittered, index == 0)
            fig.add_trace(scatter_class(len(size))(**trace), row=row + 1, col=col + 1)
        fig.update_xaxes(type="log", title_text=info.x_label, row=row + 1, col=col + 1)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(
        legend=dict(orientation="v", y=1, x=1.01, yanchor="top"),
        height=max(380, 340 * rows),
        margin=dict(t=40),
    )
    return fig
