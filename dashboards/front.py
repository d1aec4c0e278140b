"""The accuracy/latency Pareto front and the FLOPs-vs-latency view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards.common import (
    ACC_LABEL,
    BASE_LAYOUT,
    FAILED_COLOUR,
    HOVER_TEMPLATE,
    INFEASIBLE_COLOUR,
    LATENCY_LABEL,
    LEGEND_BELOW,
    faded,
    floats,
    hover_texts,
    in_regime,
    ok_rows,
    regime_colour,
)
from rsearch import metrics as m
from rsearch.results import front_ties, regimes


def _status_rows(results: pd.DataFrame, status: str) -> pd.DataFrame:
    rows = results[(results[m.STATUS] == status).fillna(False).to_numpy(dtype=bool)]
    return rows[~np.isnan(floats(rows[m.LATENCY_MS]))]


# Front members that cannot be told apart from a neighbour are drawn hollow.
FRONT_SYMBOL, TIED_SYMBOL = "diamond", "diamond-open"


def _tie_note(row: pd.Series) -> str:
    tied = row[m.TIED]
    if tied is pd.NA:
        return "<br><i>noise unknown: no minival SE</i>"
    return f"<br><b>within noise of {', '.join(row[m.TIED_WITH])}</b>" if tied else ""


def _front_hover(members: pd.DataFrame) -> list[str]:
    return [
        text + _tie_note(row) for text, (_, row) in zip(hover_texts(members), members.iterrows())
    ]


def pareto_figure(
    results: pd.DataFrame, budget_ms: float | None, front: pd.DataFrame | None = None
) -> go.Figure:
    """Top: every trained trial, one colour per regime, each regime's front joined, with
    +-1 SE error bars; members within noise of a neighbour are hollow (results.front_ties).
    Bottom strip: configs that were never trained (over budget) or failed, at their latency.
    `front`: front_ties(results), when the caller has it already."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.84, 0.16], vertical_spacing=0.03
    )
    all_regimes = regimes(results)
    front = front_ties(results) if front is None else front
    ok = ok_rows(results)
    for regime in all_regimes:
        colour = regime_colour(all_regimes, regime)
        trials = ok[in_regime(ok, regime)]
        members = front[in_regime(front, regime)]
        tied = members[m.TIED].fillna(False).to_numpy(dtype=bool)
        fig.add_trace(
            go.Scatter(
                x=floats(trials[m.LATENCY_MS]),
                y=floats(trials[m.MINIVAL_TOP1]),
                mode="markers",
                name=f"{regime} epochs",
                legendgroup=str(regime),
                marker=dict(color=faded(colour, 0.45), size=8, line=dict(color=colour, width=1)),
                hovertext=hover_texts(trials),
                hovertemplate=HOVER_TEMPLATE,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=floats(members[m.LATENCY_MS]),
                y=floats(members[m.MINIVAL_TOP1]),
                mode="lines+markers",
                name=f"{regime} epochs: Pareto front",
                legendgroup=str(regime),
                line=dict(color=colour, width=2.5),
                marker=dict(
                    color=colour, size=10, symbol=[TIED_SYMBOL if t else FRONT_SYMBOL for t in tied]
                ),
                error_y=dict(
                    type="data",
                    array=np.nan_to_num(floats(members[m.MINIVAL_TOP1_SE])),
                    color=colour,
                    thickness=1.2,
                    width=4,
                    visible=bool(members[m.MINIVAL_TOP1_SE].notna().any()),
                ),
                hovertext=_front_hover(members),
                hovertemplate=HOVER_TEMPLATE,
            ),
            row=1,
            col=1,
        )
    for status, colour, symbol in (
        (m.STATUS_INFEASIBLE, INFEASIBLE_COLOUR, "x"),
        (m.STATUS_FAILED, FAILED_COLOUR, "triangle-up"),
    ):
        rows = _status_rows(results, status)
        if len(rows):
            fig.add_trace(
                go.Scatter(
                    x=floats(rows[m.LATENCY_MS]),
                    y=[status] * len(rows),
                    mode="markers",
                    name=f"{status} (not trained)" if status == m.STATUS_INFEASIBLE else status,
                    marker=dict(color=colour, size=9, symbol=symbol),
                    hovertext=hover_texts(rows),
                    hovertemplate=HOVER_TEMPLATE,
                ),
                row=2,
                col=1,
            )
    if budget_ms is not None:
        fig.add_vline(
            x=budget_ms, line=dict(color="#444", dash="dash", width=1.5), row="all", col=1
        )
        fig.add_annotation(
            x=np.log10(budget_ms),
            y=1,
            yref="paper",
            xref="x",
            showarrow=False,
            text=f"latency budget {budget_ms:.3g} ms",
            xanchor="left",
            yanchor="bottom",
            font=dict(size=11, color="#444"),
        )
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(height=560, margin=dict(t=70))
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log", title_text=LATENCY_LABEL, row=2, col=1)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=1)
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=[m.STATUS_FAILED, m.STATUS_INFEASIBLE],
        row=2,
        col=1,
    )
    return fig


def _architectures(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (depth, width, resolution) with FLOPs and median latency, trained or not."""
    keys = [m.DEPTH, m.WIDTH, m.RESOLUTION]
    frame = pd.DataFrame({c: floats(results[c]) for c in keys + [m.FLOPS, m.LATENCY_MS, m.PARAMS]})
    frame[m.MODEL] = results[m.MODEL].astype(object).to_numpy()
    frame = frame.dropna(subset=[m.FLOPS, m.LATENCY_MS])
    return frame.groupby(keys, as_index=False).agg(
        {m.FLOPS: "median", m.LATENCY_MS: "median", m.PARAMS: "median", m.MODEL: "first"}
    )


def _arch_hover(arch: pd.DataFrame) -> list[str]:
    return [
        f"<b>{row[m.MODEL] or 'model'}</b><br>depth {row[m.DEPTH]:g}, width {row[m.WIDTH]:g}, "
        f"resolution {row[m.RESOLUTION]:g}<br>GFLOPs {row[m.FLOPS] / 1e9:.4g}<br>latency "
        f"{row[m.LATENCY_MS]:.4g} ms<br>ms per GFLOP {row[m.LATENCY_MS] / (row[m.FLOPS] / 1e9):.3g}"
        for _, row in arch.iterrows()
    ]


def flops_figure(results: pd.DataFrame) -> go.Figure | None:
    """Left: latency against FLOPs per architecture, with the line 'latency proportional to
    FLOPs' through the median ratio; points far from it are where FLOPs mislead.
    Right: accuracy against FLOPs per regime (equal FLOPs, different accuracy)."""
    arch = _architectures(results)
    if arch.empty:
        return None
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.16,
        subplot_titles=("latency vs FLOPs (one point per architecture)", "accuracy vs FLOPs"),
    )
    gflops = arch[m.FLOPS].to_numpy() / 1e9
    fig.add_trace(
        go.Scatter(
            x=gflops,
            y=arch[m.LATENCY_MS],
            mode="markers",
            name="architecture",
            marker=dict(
                size=9,
                color=arch[m.RESOLUTION],
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(
                    title=dict(text="resolution", side="top"), x=0.43, len=0.75, thickness=10
                ),
            ),
            hovertext=_arch_hover(arch),
            hovertemplate=HOVER_TEMPLATE,
        ),
        row=1,
        col=1,
    )
    ratio = float(np.median(arch[m.LATENCY_MS].to_numpy() / gflops))
    span = np.array([gflops.min(), gflops.max()])
    fig.add_trace(
        go.Scatter(
            x=span,
            y=span * ratio,
            mode="lines",
            name="latency proportional to FLOPs",
            line=dict(color="#444", dash="dot"),
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    ok = ok_rows(results)
    all_regimes = regimes(results)
    for regime in all_regimes:
        trials = ok[in_regime(ok, regime)]
        fig.add_trace(
            go.Scatter(
                x=floats(trials[m.FLOPS]) / 1e9,
                y=floats(trials[m.MINIVAL_TOP1]),
                mode="markers",
                name=f"{regime} epochs",
                legendgroup=str(regime),
                marker=dict(color=regime_colour(all_regimes, regime), size=8, opacity=0.75),
                hovertext=hover_texts(trials),
                hovertemplate=HOVER_TEMPLATE,
            ),
            row=1,
            col=2,
        )
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    fig.update_xaxes(type="log", title_text="GFLOPs")
    fig.update_yaxes(type="log", title_text=LATENCY_LABEL, row=1, col=1)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=2)
    return fig
