"""Learning curves: minival accuracy per epoch, Pareto-front members highlighted.

curves_info chooses the lines, from the experiment's frames and without plotly;
curves_figure only draws them. Every front member's curve is drawn; of the other trials at
most CURVE_SAMPLE per regime, a seeded random sample, and the panel's title says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dashboards.common import (
    ACC_LABEL,
    BASE_LAYOUT,
    LEGEND_BELOW,
    Points,
    faded,
    name_or,
    on_front,
    panels_figure,
    regime_colour,
    scatter_class,
    trace_data,
)
from rsearch import metrics as m
from rsearch.frames import floats
from rsearch.results import regimes

if TYPE_CHECKING:
    import plotly.graph_objects as go

# The other trials' curves drawn per regime, at most: a few hundred lines already show the
# spread, and 3,000 (a 10,000-trial study) make an unreadable tangle and a large page.
CURVE_SAMPLE = 200


@dataclass(frozen=True)
class FrontCurve:
    """One front member's learning curve: x epoch, y minival top-1."""

    trial_id: str
    label: str  # model @resolution, named in the hover
    points: Points


@dataclass(frozen=True)
class CurvesPanel:
    """One regime's panel: the other trials (or a sample of them) joined into one thin line,
    the front members bold."""

    regime: int
    colour: str
    others: Points | None  # None where every trial of the regime is on the front
    front: tuple[FrontCurve, ...]
    others_shown: int = 0  # the other trials drawn (joined in `others`)
    others_total: int = 0  # the other trials with a curve: more than shown when sampled

    @property
    def sampled(self) -> bool:
        return self.others_shown < self.others_total

    @property
    def title(self) -> str:
        if not self.sampled:
            return f"{self.regime} epochs"
        return (
            f"{self.regime} epochs: front + {self.others_shown:,} of {self.others_total:,} sampled"
        )


@dataclass(frozen=True)
class CurvesInfo:
    panels: tuple[CurvesPanel, ...]  # the regimes with curves, ascending


def _epoch_text(trial_id, epoch: float, top1: float) -> str:
    return f"trial {trial_id}<br>epoch {epoch:g}: top-1 {top1:.4g}"


def _epoch_texts(trial_id, epochs: np.ndarray, top1: np.ndarray) -> list[str]:
    return [_epoch_text(trial_id, e, a) for e, a in zip(epochs, top1)]


def _joined(curves: pd.DataFrame) -> Points:
    """Many trials as one line (one trace draws fast): their curves, each by epoch, in the
    order the trials first appear, separated by None gaps."""
    trial, ids = pd.factorize(curves[m.TRIAL_ID])
    epochs, top1 = floats(curves[m.EPOCH]), floats(curves[m.MINIVAL_TOP1])
    order = np.lexsort((epochs, trial))
    trial, epochs, top1 = trial[order], epochs[order], top1[order]
    ends = np.append(np.flatnonzero(np.diff(trial)) + 1, len(trial))  # a gap after each trial
    texts = [
        _epoch_text(ids[t], e, a) for t, e, a in zip(trial.tolist(), epochs.tolist(), top1.tolist())
    ]

    def gapped(values) -> list:
        return np.insert(np.array(values, dtype=object), ends, None).tolist()

    return Points(gapped(epochs.tolist()), gapped(top1.tolist()), tuple(gapped(texts)))


def _sample(trial_ids: np.ndarray, size: int = CURVE_SAMPLE) -> np.ndarray:
    """At most `size` of the trial ids, in their order; seeded, so a rewritten page (--watch)
    keeps its lines while the trials stay the same."""
    if len(trial_ids) <= size:
        return trial_ids
    keep = np.random.default_rng(0).choice(len(trial_ids), size, replace=False)
    return trial_ids[np.sort(keep)]


def _front_curve(trial_id, rows: pd.DataFrame, label: str) -> FrontCurve:
    rows = rows.sort_values(m.EPOCH)
    epochs, top1 = floats(rows[m.EPOCH]), floats(rows[m.MINIVAL_TOP1])
    hover = tuple(
        f"<b>{label}</b> (Pareto front)<br>{text}" for text in _epoch_texts(trial_id, epochs, top1)
    )
    return FrontCurve(trial_id, label, Points(epochs, top1, hover))


def _labels(results: pd.DataFrame) -> dict[str, str]:
    """Each trial's name in the hover of a front curve: model @resolution."""
    models = results[m.MODEL].astype(object)
    return {
        trial_id: f"{name_or(model, 'trial')} @{resolution:g}"
        for trial_id, model, resolution in zip(
            results[m.TRIAL_ID], models, floats(results[m.RESOLUTION])
        )
    }


def _panel(
    curves: pd.DataFrame, front_ids: set, labels: dict, regime: int, colour: str
) -> CurvesPanel:
    members = curves[m.TRIAL_ID].isin(front_ids)
    others = curves[~members]
    ids = others[m.TRIAL_ID].unique()
    shown = _sample(ids)
    drawn = others[others[m.TRIAL_ID].isin(shown)] if len(shown) < len(ids) else others
    return CurvesPanel(
        regime=regime,
        colour=colour,
        others=_joined(drawn) if len(drawn) else None,
        front=tuple(
            _front_curve(trial_id, rows, labels[trial_id])
            for trial_id, rows in curves[members].groupby(m.TRIAL_ID, sort=False)
        ),
        others_shown=len(shown),
        others_total=len(ids),
    )


def curves_info(results: pd.DataFrame, curves: pd.DataFrame) -> CurvesInfo | None:
    """One panel per regime with measured epochs; the front is the stored `pareto` flags
    (front members are rows of `results`, so each has a label). None while no epoch has a
    minival top-1."""
    curves = curves[~np.isnan(floats(curves[m.MINIVAL_TOP1]))]
    if curves.empty:
        return None
    regime_of = curves[m.TRIAL_ID].map(dict(zip(results[m.TRIAL_ID], floats(results[m.EPOCHS]))))
    front_ids = set(results[on_front(results)][m.TRIAL_ID])
    labels = _labels(results)
    all_regimes = regimes(results)
    panels = tuple(
        _panel(
            curves[(regime_of == r).to_numpy()], front_ids, labels, r, regime_colour(all_regimes, r)
        )
        for r in all_regimes
        if (regime_of == r).any()
    )
    return CurvesInfo(panels) if panels else None


def _others_trace(panel: CurvesPanel, first: bool) -> dict:
    return dict(
        **trace_data(panel.others),
        mode="lines",
        name="other trials (a sample)" if panel.sampled else "other trials",
        legendgroup="other",
        showlegend=first,
        line=dict(color=faded(panel.colour, 0.3), width=1),
    )


def _front_trace(panel: CurvesPanel, curve: FrontCurve, first: bool) -> dict:
    # Front members: bold, one legend entry per regime; the hover names the trial.
    return dict(
        **trace_data(curve.points),
        mode="lines+markers",
        name=f"Pareto front ({panel.regime} epochs)",
        legendgroup=f"front-{panel.regime}",
        showlegend=first,
        line=dict(color=panel.colour, width=2.5),
        marker=dict(size=5),
    )


def curves_figure(info: CurvesInfo) -> go.Figure:
    """One panel per regime; the other trials (or a sample) thin lines, front members bold
    and named."""
    import plotly.graph_objects as go  # plotly draws; the info objects are built without it

    fig = panels_figure([panel.title for panel in info.panels])
    for col, panel in enumerate(info.panels, start=1):
        if panel.others is not None:
            others = scatter_class(len(panel.others.x))  # WebGL for thousands of points
            fig.add_trace(others(**_others_trace(panel, col == 1)), row=1, col=col)
        for k, curve in enumerate(panel.front):
            fig.add_trace(go.Scatter(**_front_trace(panel, curve, k == 0)), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=1)
    if any(panel.sampled for panel in info.panels):
        fig.update_annotations(font_size=13)  # the longer titles, within their panels
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    return fig
