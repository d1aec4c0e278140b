"""Learning curves: minival accuracy per epoch, Pareto-front members highlighted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards.common import (
    ACC_LABEL,
    BASE_LAYOUT,
    HOVER_TEMPLATE,
    LEGEND_BELOW,
    faded,
    floats,
    regime_colour,
)
from rsearch import metrics as m
from rsearch.results import pareto_flags, regimes


def _joined(curves: pd.DataFrame) -> tuple[list, list, list]:
    """Many trials as one trace: their lines separated by None gaps (fast with hundreds)."""
    xs, ys, texts = [], [], []
    for trial_id, rows in curves.groupby(m.TRIAL_ID, sort=False):
        rows = rows.sort_values(m.EPOCH)
        xs += floats(rows[m.EPOCH]).tolist() + [None]
        ys += floats(rows[m.MINIVAL_TOP1]).tolist() + [None]
        texts += [
            f"trial {trial_id}<br>epoch {e:g}: top-1 {a:.4g}"
            for e, a in zip(floats(rows[m.EPOCH]), floats(rows[m.MINIVAL_TOP1]))
        ] + [None]
    return xs, ys, texts


def curves_figure(
    results: pd.DataFrame, curves: pd.DataFrame, front: pd.DataFrame | None = None
) -> go.Figure | None:
    """One panel per regime; every trial a thin line, front members bold and named.
    `front`: the front rows (results.front_ties), when the caller has them already."""
    curves = curves[~np.isnan(floats(curves[m.MINIVAL_TOP1]))]
    if curves.empty:
        return None
    regime_of = dict(zip(results[m.TRIAL_ID], floats(results[m.EPOCHS])))
    model_of = dict(zip(results[m.TRIAL_ID], results[m.MODEL].astype(object)))
    resolution_of = dict(zip(results[m.TRIAL_ID], floats(results[m.RESOLUTION])))
    front_ids = set((results[pareto_flags(results)] if front is None else front)[m.TRIAL_ID])
    curves = curves.assign(_regime=curves[m.TRIAL_ID].map(regime_of))
    all_regimes = regimes(results)
    shown = [r for r in all_regimes if (curves["_regime"] == r).any()]
    if not shown:
        return None
    fig = make_subplots(
        rows=1,
        cols=len(shown),
        subplot_titles=[f"{r} epochs" for r in shown],
        horizontal_spacing=0.06,
    )
    for col, regime in enumerate(shown, start=1):
        colour = regime_colour(all_regimes, regime)
        mine = curves[curves["_regime"] == regime]
        others = mine[~mine[m.TRIAL_ID].isin(front_ids)]
        if len(others):
            xs, ys, texts = _joined(others)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name="other trials",
                    legendgroup="other",
                    showlegend=col == 1,
                    line=dict(color=faded(colour, 0.3), width=1),
                    hovertext=texts,
                    hovertemplate=HOVER_TEMPLATE,
                ),
                row=1,
                col=col,
            )
        # Front members: bold, one legend entry per regime; the hover names the trial.
        for k, (trial_id, rows) in enumerate(
            mine[mine[m.TRIAL_ID].isin(front_ids)].groupby(m.TRIAL_ID, sort=False)
        ):
            rows = rows.sort_values(m.EPOCH)
            label = f"{model_of.get(trial_id) or 'trial'} @{resolution_of.get(trial_id, 0):g}"
            fig.add_trace(
                go.Scatter(
                    x=floats(rows[m.EPOCH]),
                    y=floats(rows[m.MINIVAL_TOP1]),
                    mode="lines+markers",
                    name=f"Pareto front ({regime} epochs)",
                    legendgroup=f"front-{regime}",
                    showlegend=k == 0,
                    line=dict(color=colour, width=2.5),
                    marker=dict(size=5),
                    hovertext=[
                        f"<b>{label}</b> (Pareto front)<br>trial {trial_id}<br>epoch {e:g}: top-1 {a:.4g}"
                        for e, a in zip(floats(rows[m.EPOCH]), floats(rows[m.MINIVAL_TOP1]))
                    ],
                    hovertemplate=HOVER_TEMPLATE,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=1)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    return fig
