"""The accuracy/latency Pareto front and the FLOPs-vs-latency view.

front_info / flops_info choose what each figure shows, from the experiment's frames and
without plotly; pareto_figure / flops_figure only draw an info object.

With two or more model families (rsearch.families: ResNet-RS, EfficientNet) the front figure
draws each family of each regime apart: its own marker symbol (FAMILY_SYMBOLS), its own
legend entries, the family in every hover text, and its own front (the non-dominated trials
of that family, results.front_ties of its rows). With one family it is the figure it was.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dashboards.common import (
    ACC_LABEL,
    BASE_LAYOUT,
    FAILED_COLOUR,
    INFEASIBLE_COLOUR,
    LATENCY_LABEL,
    LEGEND_BELOW,
    Points,
    RegimePoints,
    faded,
    front_rows,
    full_hover,
    hover_texts,
    in_regime,
    marker_size,
    name_or,
    ok_rows,
    regime_colour,
    scatter_class,
    trace_data,
)
from rsearch import metrics as m
from rsearch.families import family_of, label, model_families
from rsearch.frames import floats
from rsearch.results import front_ties, regimes

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Front members that cannot be told apart from a neighbour are drawn hollow.
FRONT_SYMBOL, TIED_SYMBOL = "diamond", "diamond-open"
# With two or more model families, each family's marker (its front's tied members: "-open").
FAMILY_SYMBOLS = {m.DEFAULT_FAMILY: "circle", "efficientnet": "diamond"}
_MORE_SYMBOLS = ("square", "triangle-down", "cross", "star")  # any further family, in order
# The strip below the front: configs never trained, in this order, each with its marker.
UNTRAINED = (m.STATUS_INFEASIBLE, m.STATUS_FAILED)
_UNTRAINED_MARKERS = {
    m.STATUS_INFEASIBLE: ("infeasible (not trained)", INFEASIBLE_COLOUR, "x"),
    m.STATUS_FAILED: (m.STATUS_FAILED, FAILED_COLOUR, "triangle-up"),
}


# --------------------------------------------------------------------------- the front: data


@dataclass(frozen=True)
class RegimeFront:
    """One regime of the front figure."""

    regime: int
    colour: str
    trials: Points  # every trained trial of the regime: x latency, y minival top-1
    front: Points  # its Pareto-front members (the stored `pareto` flags), by latency
    tied: np.ndarray  # per member: within noise of a neighbour (drawn hollow)
    se: np.ndarray  # per member: the minival top-1 SE of its error bar (NaN: unknown)
    # With two or more model families: this entry's family and its marker symbol (one entry
    # per regime and family); None with one family (one entry per regime, as before).
    family: str | None = None
    symbol: str | None = None


@dataclass(frozen=True)
class Untrained:
    """Configs of one status (UNTRAINED) at their measured latency, in the strip below."""

    status: str
    latency_ms: np.ndarray
    hover: tuple[str, ...]


@dataclass(frozen=True)
class FrontInfo:
    regimes: tuple[RegimeFront, ...]  # by regime (then family, with two or more families)
    untrained: tuple[Untrained, ...]  # only the statuses that have rows
    budget_ms: float | None  # the dashed line, where the search had a budget


def _tie_note(row: pd.Series) -> str:
    tied = row[m.TIED]
    if tied is pd.NA:
        return "<br><i>noise unknown: no minival SE</i>"
    return f"<br><b>within noise of {', '.join(row[m.TIED_WITH])}</b>" if tied else ""


def _members(results: pd.DataFrame, ties: pd.DataFrame) -> pd.DataFrame:
    """The front rows with their tie columns. Membership is the stored flag; which members
    are within noise of a neighbour is results.front_ties' rule (the one `rsearch analyze`
    states), looked up by trial id."""
    members = front_rows(results)
    ids = members[m.TRIAL_ID].tolist()
    tied = dict(zip(ties[m.TRIAL_ID], ties[m.TIED]))
    tied_with = dict(zip(ties[m.TRIAL_ID], ties[m.TIED_WITH]))
    return members.assign(
        **{
            m.TIED: pd.array([tied.get(i, pd.NA) for i in ids], dtype="boolean"),
            m.TIED_WITH: pd.Series([tied_with.get(i, []) for i in ids], members.index, object),
        }
    )


def _with_family(texts: tuple[str, ...], family: str | None) -> tuple[str, ...]:
    """Hover texts with the model family as their second line (none with one family)."""
    if family is None:
        return texts
    line = f"<br>family: {html.escape(label(family))}"
    return tuple(
        text.replace("<br>", line + "<br>", 1) if "<br>" in text else text + line for text in texts
    )


def _regime_front(
    trained: pd.DataFrame,
    members: pd.DataFrame,
    regime: int,
    colour: str,
    family: str | None = None,
    symbol: str | None = None,
    full: bool = True,
) -> RegimeFront:
    """full: the trials' full hover texts (front members always get theirs)."""
    trials = trained[in_regime(trained, regime)]
    mine = members[in_regime(members, regime)]
    hover = tuple(
        text + _tie_note(row)
        for text, (_, row) in zip(_with_family(hover_texts(mine), family), mine.iterrows())
    )
    return RegimeFront(
        regime=regime,
        colour=colour,
        trials=Points(
            floats(trials[m.LATENCY_MS]),
            floats(trials[m.MINIVAL_TOP1]),
            _with_family(hover_texts(trials, full), family),
        ),
        front=Points(floats(mine[m.LATENCY_MS]), floats(mine[m.MINIVAL_TOP1]), hover),
        tied=mine[m.TIED].fillna(False).to_numpy(dtype=bool),
        se=floats(mine[m.MINIVAL_TOP1_SE]),
        family=family,
        symbol=symbol,
    )


def family_symbols(families: list[str]) -> dict[str, str]:
    """Each family's marker symbol: FAMILY_SYMBOLS, then _MORE_SYMBOLS for any other."""
    more = iter(_MORE_SYMBOLS * len(families))
    return {f: FAMILY_SYMBOLS[f] if f in FAMILY_SYMBOLS else next(more) for f in families}


def _family_fronts(results: pd.DataFrame, all_regimes: list[int]) -> tuple[RegimeFront, ...]:
    """One entry per regime and model family: the family's trained trials and its own front
    (the non-dominated trials among its rows, with their ties: results.front_ties)."""
    families = model_families(results)
    symbols = family_symbols(families)
    family = family_of(results)
    rows = {name: results[(family == name).to_numpy(dtype=bool)] for name in families}
    trained = {name: ok_rows(rows[name]) for name in families}
    members = {name: front_ties(rows[name]) for name in families}  # each family's own front
    full = full_hover(sum(len(frame) for frame in trained.values()))
    entries = []
    for regime in all_regimes:
        for name in families:
            entries.append(
                _regime_front(
                    trained[name],
                    members[name],
                    regime,
                    regime_colour(all_regimes, regime),
                    family=name,
                    symbol=symbols[name],
                    full=full,
                )
            )
    return tuple(entries)


def _untrained(results: pd.DataFrame, status: str) -> Untrained:
    rows = results[(results[m.STATUS] == status).fillna(False).to_numpy(dtype=bool)]
    rows = rows[~np.isnan(floats(rows[m.LATENCY_MS]))]
    return Untrained(status, floats(rows[m.LATENCY_MS]), hover_texts(rows, full_hover(len(rows))))


def front_info(
    results: pd.DataFrame, budget_ms: float | None, ties: pd.DataFrame | None = None
) -> FrontInfo:
    """Every trained trial by regime, each regime's front with its noise, and the configs
    never trained. `ties`: front_ties(results), when the caller has it already."""
    all_regimes = regimes(results)
    strips = (_untrained(results, status) for status in UNTRAINED)
    if len(model_families(results)) >= 2:
        entries = _family_fronts(results, all_regimes)
    else:
        ties = front_ties(results) if ties is None else ties
        members = _members(results, ties)
        trained = ok_rows(results)
        full = full_hover(len(trained))
        entries = tuple(
            _regime_front(trained, members, regime, regime_colour(all_regimes, regime), full=full)
            for regime in all_regimes
        )
    return FrontInfo(
        regimes=entries,
        untrained=tuple(strip for strip in strips if len(strip.latency_ms)),
        budget_ms=budget_ms,
    )


# --------------------------------------------------------------------------- the front: drawing


def _legend(regime: RegimeFront) -> tuple[str, str]:
    """The legend name of the entry's trials and its legend group."""
    if regime.family is None:
        return f"{regime.regime} epochs", str(regime.regime)
    return f"{regime.regime} epochs, {label(regime.family)}", f"{regime.regime}-{regime.family}"


def _trials_trace(regime: RegimeFront) -> dict:
    colour = regime.colour
    name, group = _legend(regime)
    size = marker_size(len(regime.trials.x), 8)
    marker = dict(color=faded(colour, 0.45), size=size, line=dict(color=colour, width=1))
    if regime.symbol is not None:
        marker["symbol"] = regime.symbol
    return dict(
        **trace_data(regime.trials), mode="markers", name=name, legendgroup=group, marker=marker
    )


def _front_trace(regime: RegimeFront) -> dict:
    colour = regime.colour
    error_bars = dict(
        type="data",
        array=np.nan_to_num(regime.se),
        color=colour,
        thickness=1.2,
        width=4,
        visible=bool((~np.isnan(regime.se)).any()),
    )
    name, group = _legend(regime)
    front, tied = (
        (FRONT_SYMBOL, TIED_SYMBOL)
        if regime.symbol is None
        else (regime.symbol, f"{regime.symbol}-open")
    )
    return dict(
        **trace_data(regime.front),
        mode="lines+markers",
        name=f"{name}: Pareto front",
        legendgroup=group,
        line=dict(color=colour, width=2.5)
        if regime.family in (None, m.DEFAULT_FAMILY)
        else dict(color=colour, width=2.5, dash="dash"),  # a second family's front: dashed
        marker=dict(
            color=colour,
            size=10,
            symbol=[tied if t else front for t in regime.tied],
        ),
        error_y=error_bars,
    )


def _untrained_trace(strip: Untrained) -> dict:
    name, colour, symbol = _UNTRAINED_MARKERS[strip.status]
    points = Points(strip.latency_ms, np.array([strip.status] * len(strip.latency_ms)), strip.hover)
    return dict(
        **trace_data(points),
        mode="markers",
        name=name,
        marker=dict(color=colour, size=9, symbol=symbol),
    )


def _add_budget(fig: go.Figure, budget_ms: float) -> None:
    fig.add_vline(x=budget_ms, line=dict(color="#444", dash="dash", width=1.5), row="all", col=1)
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


def pareto_figure(info: FrontInfo) -> go.Figure:
    """Top: every trained trial, one colour per regime, each regime's front joined, with
    +-1 SE error bars; members within noise of a neighbour are hollow (results.front_ties).
    Bottom strip: configs that were never trained (over budget) or failed, at their latency."""
    import plotly.graph_objects as go  # plotly draws; the info objects are built without it
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.84, 0.16], vertical_spacing=0.03
    )
    for regime in info.regimes:
        trials = scatter_class(len(regime.trials.x))  # WebGL for thousands of trials
        fig.add_trace(trials(**_trials_trace(regime)), row=1, col=1)
        fig.add_trace(go.Scatter(**_front_trace(regime)), row=1, col=1)
    for strip in info.untrained:
        fig.add_trace(scatter_class(len(strip.latency_ms))(**_untrained_trace(strip)), row=2, col=1)
    if info.budget_ms is not None:
        _add_budget(fig, info.budget_ms)
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


# --------------------------------------------------------------------------- FLOPs: data


@dataclass(frozen=True)
class FlopsInfo:
    architectures: Points  # one per (depth, width, resolution): x GFLOPs, y median latency
    resolution: np.ndarray  # each architecture's resolution: its point's colour
    ms_per_gflop: float  # the median ratio: the line "latency proportional to FLOPs"
    regimes: tuple[RegimePoints, ...]  # trained trials: x GFLOPs, y minival top-1

    def proportional_line(self) -> tuple[np.ndarray, np.ndarray]:
        """The ends of the line latency = ms_per_gflop x GFLOPs, across the architectures."""
        gflops = self.architectures.x
        span = np.array([gflops.min(), gflops.max()])
        return span, span * self.ms_per_gflop


def _architectures(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (depth, width, resolution) with FLOPs and median latency, trained or not."""
    keys = [m.DEPTH, m.WIDTH, m.RESOLUTION]
    frame = pd.DataFrame({c: floats(results[c]) for c in keys + [m.FLOPS, m.LATENCY_MS, m.PARAMS]})
    frame[m.MODEL] = results[m.MODEL].astype(object).to_numpy()
    frame = frame.dropna(subset=[m.FLOPS, m.LATENCY_MS])
    return frame.groupby(keys, as_index=False).agg(
        {m.FLOPS: "median", m.LATENCY_MS: "median", m.PARAMS: "median", m.MODEL: "first"}
    )


def _arch_hover(row: pd.Series) -> str:
    gflops, latency = row[m.FLOPS] / 1e9, row[m.LATENCY_MS]
    return (
        f"<b>{name_or(row[m.MODEL], 'model')}</b><br>depth {row[m.DEPTH]:g}, "
        f"width {row[m.WIDTH]:g}, resolution {row[m.RESOLUTION]:g}<br>GFLOPs {gflops:.4g}"
        f"<br>latency {latency:.4g} ms<br>ms per GFLOP {latency / gflops:.3g}"
    )


def _flops_regime(trained: pd.DataFrame, regime: int, colour: str, full: bool) -> RegimePoints:
    trials = trained[in_regime(trained, regime)]
    points = Points(
        floats(trials[m.FLOPS]) / 1e9, floats(trials[m.MINIVAL_TOP1]), hover_texts(trials, full)
    )
    return RegimePoints(regime, colour, points)


def flops_info(results: pd.DataFrame) -> FlopsInfo | None:
    """Latency and accuracy against FLOPs; None until some trial has both FLOPs and latency."""
    arch = _architectures(results)
    if arch.empty:
        return None
    gflops = arch[m.FLOPS].to_numpy() / 1e9
    latency = arch[m.LATENCY_MS].to_numpy()
    trained = ok_rows(results)
    all_regimes = regimes(results)
    return FlopsInfo(
        architectures=Points(
            gflops, latency, tuple(_arch_hover(row) for _, row in arch.iterrows())
        ),
        resolution=arch[m.RESOLUTION].to_numpy(),
        ms_per_gflop=float(np.median(latency / gflops)),
        regimes=tuple(
            _flops_regime(
                trained, regime, regime_colour(all_regimes, regime), full_hover(len(trained))
            )
            for regime in all_regimes
        ),
    )


# --------------------------------------------------------------------------- FLOPs: drawing


def flops_figure(info: FlopsInfo) -> go.Figure:
    """Left: latency against FLOPs per architecture, with the line 'latency proportional to
    FLOPs' through the median ratio; points far from it are where FLOPs mislead.
    Right: accuracy against FLOPs per regime (equal FLOPs, different accuracy)."""
    import plotly.graph_objects as go  # plotly draws; the info objects are built without it
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.16,
        subplot_titles=("latency vs FLOPs (one point per architecture)", "accuracy vs FLOPs"),
    )
    colorbar = dict(title=dict(text="resolution", side="top"), x=0.43, len=0.75, thickness=10)
    marker = dict(
        size=9, color=info.resolution, colorscale="Viridis", showscale=True, colorbar=colorbar
    )
    architectures = go.Scatter(
        **trace_data(info.architectures), mode="markers", name="architecture", marker=marker
    )
    x, y = info.proportional_line()
    proportional = go.Scatter(
        x=x,
        y=y,
        mode="lines",
        name="latency proportional to FLOPs",
        line=dict(color="#444", dash="dot"),
        hoverinfo="skip",
    )
    fig.add_trace(architectures, row=1, col=1)
    fig.add_trace(proportional, row=1, col=1)
    for regime in info.regimes:
        trials = scatter_class(len(regime.points.x))(  # WebGL for thousands of trials
            **trace_data(regime.points),
            mode="markers",
            name=f"{regime.regime} epochs",
            legendgroup=str(regime.regime),
            marker=dict(
                color=regime.colour, size=marker_size(len(regime.points.x), 8), opacity=0.75
            ),
        )
        fig.add_trace(trials, row=1, col=2)
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(legend=LEGEND_BELOW, height=500, margin=dict(t=40, b=110))
    fig.update_xaxes(type="log", title_text="GFLOPs")
    fig.update_yaxes(type="log", title_text=LATENCY_LABEL, row=1, col=1)
    fig.update_yaxes(title_text=ACC_LABEL, row=1, col=2)
    return fig
