"""Scaling analysis on constructed results tables whose right answer is known."""

import itertools
import json
import math
import tempfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rsearch import metrics as m
from rsearch.analysis import analyze, confirmation_summary, ties_statement, winner_statement
from rsearch.cli import main
from rsearch.results import create_experiment, write_results

# Each step along an axis doubles latency, so a step's accuracy gain is its slope.
STEPS = {m.DEPTH: [26, 50, 101], m.WIDTH: [0.5, 1.0, 2.0], m.RESOLUTION: [128, 160, 224]}
BASE = (26, 0.5, 128)


def row(regime, config, gains, base_acc=0.40, jitter=0.0, trial_id=None, **extra):
    """A trial whose accuracy is base_acc + the cumulative per-step gains of each axis."""
    acc, latency = base_acc + jitter, 1.0
    for axis, value in zip(STEPS, config):
        k = STEPS[axis].index(value)
        acc += sum(gains[axis][:k])
        latency *= 2**k
    depth, width, resolution = config
    return {
        m.TRIAL_ID: trial_id or f"{regime}-{depth}-{width}-{resolution}-{jitter}",
        m.STATUS: m.STATUS_OK,
        m.DEPTH: depth,
        m.WIDTH: width,
        m.RESOLUTION: resolution,
        m.EPOCHS: regime,
        m.MINIVAL_TOP1: acc,
        m.LATENCY_MS: latency,
        m.MODEL: f"resnetrs-{depth}-w{width}",
        **extra,
    }


def axis_lines():
    """The base plus the configs that grow one axis at a time (no full grid)."""
    configs = [BASE]
    for i, axis in enumerate(STEPS):
        for value in STEPS[axis][1:]:
            config = list(BASE)
            config[i] = value
            configs.append(tuple(config))
    return configs


def full_grid():
    return list(itertools.product(*STEPS.values()))


def uniform(depth, width, resolution):
    return {m.DEPTH: [depth] * 2, m.WIDTH: [width] * 2, m.RESOLUTION: [resolution] * 2}


LONG = uniform(0.06, 0.03, 0.02)  # depth wins, as in the paper's 350-epoch regime
SHORT = uniform(0.02, 0.05, 0.03)  # width wins, as in the paper's 10-epoch regime


def kinds(analysis):
    return sorted(w.kind for w in analysis.warnings)


def test_depth_wins_long_width_wins_short_and_warnings_say_so():
    rows = [row(350, c, LONG) for c in axis_lines()] + [row(10, c, SHORT) for c in axis_lines()]
    result = analyze_frame(rows)
    by_regime = {r.epochs: r for r in result.regimes}
    assert by_regime[350].winner == m.DEPTH and by_regime[350].ranking == [
        m.DEPTH,
        m.WIDTH,
        m.RESOLUTION,
    ]
    assert by_regime[10].winner == m.WIDTH and by_regime[10].ranking == [
        m.WIDTH,
        m.RESOLUTION,
        m.DEPTH,
    ]
    assert by_regime[350].curves[m.DEPTH].slope == pytest.approx(0.06)
    assert by_regime[10].effect == pytest.approx(0.05 - 0.03)
    assert by_regime[10].base[m.DEPTH] == 26 and by_regime[10].base[m.LATENCY_MS] == 1.0
    # Regimes disagree; each regime rests on its single base; no size effect was built in.
    assert kinds(result) == ["base", "base", "regime"]
    regime_warning = next(w for w in result.warnings if w.kind == "regime")
    assert (
        "width at 10 epochs" in regime_warning.message
        and "depth at 350 epochs" in regime_warning.message
    )
    # Without repeats the noise is unknown, and said to be.
    assert by_regime[10].noise_sd is None and by_regime[10].exceeds_noise is None


def test_consistent_full_grid_gives_no_warnings():
    result = analyze_frame([row(100, c, LONG) for c in full_grid()])
    (regime,) = result.regimes
    assert (
        regime.winner == m.DEPTH and len(regime.base_winners) == 8
    )  # every non-max corner of the 3x3x3 grid
    assert result.warnings == []


def test_target_outside_what_was_measured_warns():
    rows = [row(100, c, LONG) for c in full_grid()]
    assert kinds(analyze_frame(rows, target_epochs=100, target_latency_ms=64)) == []
    longer = analyze_frame(rows, target_epochs=350)
    assert (
        kinds(longer) == ["regime"]
        and "from a shorter regime (100 epochs)" in longer.warnings[0].message
    )
    assert kinds(analyze_frame(rows, target_latency_ms=65)) == ["model_size"]


def test_winner_changing_with_model_size_warns():
    # Depth's first step is the best step; its second step is the worst.
    gains = {m.DEPTH: [0.08, 0.005], m.WIDTH: [0.03, 0.03], m.RESOLUTION: [0.02, 0.02]}
    result = analyze_frame([row(100, c, gains) for c in full_grid()])
    # The same size effect also shows from a larger base: from depth 50, depth has only
    # its weak step left and width wins, so the base warning is right too.
    assert kinds(result) == ["base", "model_size"]
    size = next(w.message for w in result.warnings if w.kind == "model_size")
    assert "depth for the smallest models, width for the largest" in size


def test_winner_depending_on_base_warns():
    # Width helps only from depth 26; from depth 50 resolution is the better axis.
    rows = []
    for depth, width, resolution in full_grid():
        if depth == 101:
            continue
        gains = uniform(0.05, 0.06, 0.02) if depth == 26 else uniform(0.05, 0.01, 0.04)
        rows.append(row(100, (depth, width, resolution), gains))
    result = analyze_frame(rows)
    assert kinds(result) == ["base"]
    message = next(w.message for w in result.warnings if w.kind == "base")
    assert "depends on the base" in message


@pytest.mark.parametrize("jitter, exceeds", [(0.001, True), (0.02, False)])
def test_effect_compared_with_run_to_run_noise(jitter, exceeds):
    rows = [row(10, c, SHORT, jitter=j) for c in axis_lines() for j in (jitter, -jitter)]
    (regime,) = analyze_frame(rows).regimes
    assert regime.noise_repeats == len(axis_lines())
    assert regime.noise_sd == pytest.approx(jitter * math.sqrt(2))
    assert regime.effect == pytest.approx(0.02)  # repeats are averaged: the slopes do not move
    assert regime.exceeds_noise is exceeds


def test_best_regularization_variant_represents_the_architecture():
    rows = [row(10, c, SHORT, **{m.DROPOUT: 0.25}) for c in axis_lines()]
    # A badly regularised variant of the widest model must not drag width down.
    rows.append(row(10, (26, 2.0, 128), SHORT, base_acc=0.1, **{m.DROPOUT: 0.0}))
    (regime,) = analyze_frame(rows).regimes
    assert regime.curves[m.WIDTH].slope == pytest.approx(0.05) and regime.noise_sd is None


def test_family_table_is_the_front_or_a_budget_ladder():
    rows = [row(10, c, SHORT) for c in axis_lines()]
    rows.append(
        {**row(10, (101, 2.0, 224), SHORT), m.STATUS: m.STATUS_INFEASIBLE, m.MINIVAL_TOP1: None}
    )
    (regime,) = analyze_frame(rows).regimes
    latencies = [r[m.LATENCY_MS] for r in regime.family]
    accuracies = [r[m.MINIVAL_TOP1] for r in regime.family]
    assert latencies == sorted(latencies) and accuracies == sorted(accuracies)
    assert regime.family[0][m.LATENCY_MS] == 1.0 and regime.family[-1][m.WIDTH] == 2.0
    (ladder,) = analyze_frame(rows, budgets=[0.5, 2, 4]).regimes
    assert [r["budget_ms"] for r in ladder.family] == [0.5, 2.0, 4.0]
    assert ladder.family[0].get(m.TRIAL_ID) is None  # nothing fits 0.5 ms
    assert (ladder.family[2][m.WIDTH], ladder.family[2][m.DEPTH]) == (2.0, 26)


def test_no_usable_trials_and_json_round_trip():
    rows = [{**row(10, BASE, SHORT), m.STATUS: m.STATUS_FAILED, m.MINIVAL_TOP1: None}]
    result = analyze_frame(rows)
    assert result.regimes[0].winner is None and result.warnings == []
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["regimes"][0]["epochs"] == 10


def analyze_frame(rows, **kwargs):
    """Through the real store: write the rows, read the typed frame back, analyse it."""
    with tempfile.TemporaryDirectory() as tmp:
        create_experiment(tmp, {}, {})
        frame = write_results(tmp, rows)
    return analyze(frame, **kwargs)


# --- the command line: real experiment folders, exit codes ---


def test_cli_text_and_json(tmp_path, capsys):
    create_experiment(tmp_path / "exp", {}, {})
    write_results(
        tmp_path / "exp",
        [row(350, c, LONG) for c in axis_lines()] + [row(10, c, SHORT) for c in axis_lines()],
    )
    assert main(["analyze", str(tmp_path / "exp")]) == 0
    text = capsys.readouterr().out
    assert (
        "== 10 epochs" in text
        and "! regime:" in text
        and "noise unknown (no repeated configs" in text
    )
    assert "Confirmation reruns" not in text  # none were run
    assert main(["analyze", str(tmp_path / "exp"), "--json", "--target-epochs", "1000"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["winner"] for r in payload["regimes"]] == [m.WIDTH, m.DEPTH]
    assert [w["kind"] for w in payload["warnings"]].count("regime") == 2
    assert payload["confirmation"] == [] and payload["confirmation_order"] == []


@pytest.mark.parametrize(
    "make, argv_tail, message",
    [
        (lambda p: None, [], "no such folder"),
        (lambda p: p.mkdir(), [], "with experiment.json"),
        (lambda p: create_experiment(p, {}, {}), [], "at least one trial"),
        (
            lambda p: create_experiment(p, {"schema_version": m.RESULTS_SCHEMA_VERSION + 1}, {}),
            [],
            "newer",
        ),
        (lambda p: create_experiment(p, {}, {}), ["--budgets", "1,-2"], "--budgets"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, make, argv_tail, message):
    make(tmp_path / "exp")
    code = exit_code(["analyze", str(tmp_path / "exp"), *argv_tail])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def exit_code(argv) -> int:
    """main()'s return value, or argparse's exit code for usage errors."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# --- noise: every statement carries its verdict ---


def with_size(rows, n):
    return [{**r, m.MINIVAL_SIZE: n} for r in rows]


@pytest.mark.parametrize(
    "n, verdict, exceeded",
    [
        (None, "noise unknown", None),
        (1_000_000, "exceeds noise", True),
        (50, "within noise", False),
    ],
)
def test_statements_carry_their_noise_verdict(n, verdict, exceeded):
    rows = [row(350, c, LONG) for c in axis_lines()] + [row(10, c, SHORT) for c in axis_lines()]
    result = analyze_frame(rows if n is None else with_size(rows, n))
    for regime in result.regimes:
        assert regime.noise_source == (None if n is None else "minival") and regime.noise_sd is None
        assert regime.exceeds_noise is exceeded and f": {verdict} (" in winner_statement(regime)
        for entry in regime.family[1:]:  # the fastest is alone under its budget
            assert entry["runner_up"] is not None and entry["exceeds_noise"] in (
                exceeded,
                True if n else None,
            )
    regime_warning = next(w for w in result.warnings if w.kind == "regime")
    assert regime_warning.measured and regime_warning.exceeds_noise is exceeded
    assert regime_warning.message.endswith(f"[{verdict}]")
    one_base = [w for w in result.warnings if w.kind == "base"]
    assert one_base and not any(w.measured for w in one_base)  # a fact about coverage: no verdict


def test_slope_standard_error_comes_from_the_minival_ses():
    n = 2000
    rows = with_size([row(10, c, SHORT) for c in axis_lines()], n)
    (regime,) = analyze_frame(rows).regimes
    curve = regime.curves[m.WIDTH]
    se = [math.sqrt(a * (1 - a) / n) for a in curve.accuracy]
    # x = 0, 1, 2 (each step doubles latency): slope weights -1/2, 0, +1/2.
    assert curve.slope_se == pytest.approx(math.sqrt((se[0] / 2) ** 2 + (se[2] / 2) ** 2))
    assert curve.first_step_se == pytest.approx(math.hypot(se[0], se[1]))
    top, second = regime.curves[regime.ranking[0]], regime.curves[regime.ranking[1]]
    assert regime.effect_se == pytest.approx(math.hypot(top.slope_se, second.slope_se))


def test_model_size_warning_carries_its_verdict():
    gains = {m.DEPTH: [0.08, 0.005], m.WIDTH: [0.03, 0.03], m.RESOLUTION: [0.02, 0.02]}
    for n, exceeded in ((1_000_000, True), (100, False)):
        result = analyze_frame(with_size([row(100, c, gains) for c in full_grid()], n))
        (size,) = [w for w in result.warnings if w.kind == "model_size"]
        assert size.measured and size.exceeds_noise is exceeded


def test_front_lists_accuracy_se_and_ties():
    n = 2500
    rows = [row(10, c, SHORT) for c in axis_lines()]
    rows.append(
        {
            **row(10, (50, 0.5, 128), SHORT, trial_id="near-base"),
            m.MINIVAL_TOP1: 0.405,
            m.LATENCY_MS: 1.5,
        }
    )
    (regime,) = analyze_frame(with_size(rows, n)).regimes
    ids = [r[m.TRIAL_ID] for r in regime.front]
    assert ids[:2] == ["10-26-0.5-128-0.0", "near-base"]
    assert [r[m.TIED] for r in regime.front][:3] == [True, True, False]
    assert regime.front[0][m.MINIVAL_TOP1_SE] == pytest.approx(math.sqrt(0.4 * 0.6 / n))
    assert (
        ties_statement(regime.front)
        == "indistinguishable within 2 SE: 10-26-0.5-128-0.0 = near-base"
    )
    (unknown,) = analyze_frame([row(10, c, SHORT) for c in axis_lines()]).regimes
    assert "noise unknown" in ties_statement(unknown.front)


# --- confirmation reruns ---


def confirmed_rows(rerun_accs):
    """A 10-epoch front a < b < c, and reruns {original: [accuracies]} with seeds 1, 2, ..."""
    rows = [
        row(10, c, SHORT, trial_id=t, **{m.SEED: 0})
        for t, c in zip("abc", [BASE, (26, 1.0, 128), (26, 2.0, 128)])
    ]
    acc = {r[m.TRIAL_ID]: r[m.MINIVAL_TOP1] for r in rows}
    config = {r[m.TRIAL_ID]: r for r in rows}
    for original, accs in rerun_accs.items():
        for seed, a in enumerate(accs, start=1):
            rows.append(
                {
                    **config[original],
                    m.TRIAL_ID: f"{original}-s{seed}",
                    m.SEED: seed,
                    m.CONFIRMS: original,
                    m.MINIVAL_TOP1: a,
                }
            )
    return rows, acc


def test_confirmation_summary_gives_mean_sd_and_that_the_order_held():
    rows, acc = confirmed_rows({"a": [0.41, 0.42], "b": [0.44]})
    result = analyze_frame(rows)
    (order,) = result.confirmation_order
    assert order["epochs"] == 10 and order["front_order_held"] is True
    assert order["original_order"] == order["confirmed_order"] == ["a", "b"]
    a, b = result.confirmation
    assert (a["trial_id"], a["epochs"], a["seeds"], a["n"], a["on_front"]) == (
        "a",
        10,
        [0, 1, 2],
        3,
        True,
    )
    assert a["original_top1"] == pytest.approx(acc["a"])
    assert a["mean_top1"] == pytest.approx(np.mean([acc["a"], 0.41, 0.42]))
    assert a["std_top1"] == pytest.approx(np.std([acc["a"], 0.41, 0.42], ddof=1))
    assert (b["seeds"], b["n"]) == ([0, 1], 2) and b["mean_top1"] == pytest.approx(
        (acc["b"] + 0.44) / 2
    )
    # The reruns are repeats of their configs: they also measure the run-to-run noise.
    assert result.regimes[0].noise_repeats == 2 and result.regimes[0].noise_source == "run-to-run"
    assert [f[m.TRIAL_ID] for f in result.regimes[0].front] == [
        "a",
        "b",
        "c",
    ]  # reruns stay off the front


def test_confirmation_summary_says_when_the_order_did_not_hold():
    rows, _ = confirmed_rows({"a": [0.50, 0.52], "b": [0.40], "c": [0.55]})
    (order,) = analyze_frame(rows).confirmation_order
    assert order["front_order_held"] is False
    assert order["original_order"] == ["a", "b", "c"] and order["confirmed_order"] == [
        "b",
        "a",
        "c",
    ]
    rows, _ = confirmed_rows({"a": [0.41]})
    (single,) = analyze_frame(rows).confirmation_order
    assert single["front_order_held"] is None  # one confirmed member: no order to check


def test_no_confirmation_rows_give_an_empty_summary():
    rows, _ = confirmed_rows({})
    result = analyze_frame(rows)
    assert result.confirmation == [] and result.confirmation_order == []
    empty = {"configurations": [], "regimes": []}
    assert confirmation_summary(pd.DataFrame({m.TRIAL_ID: ["a"], m.STATUS: ["ok"]})) == empty


def test_cli_shows_front_ties_and_confirmation(tmp_path, capsys):
    rows, _ = confirmed_rows({"a": [0.50, 0.52], "b": [0.40]})
    create_experiment(tmp_path / "exp", {}, {})
    write_results(tmp_path / "exp", with_size(rows, 400))
    assert main(["analyze", str(tmp_path / "exp")]) == 0
    text = capsys.readouterr().out
    assert "Pareto front (minival top-1 ± SE" in text and "0.4000 ± 0.0245" in text
    assert (
        "Confirmation reruns" in text
        and "front order NOT held: a < b on the front, b < a by mean" in text
    )
    assert (
        "+0.0500 over a: within noise" in text
    )  # the 2-SE margin is 2 x hypot(0.0245, 0.0249) = 0.07
    assert main(["analyze", str(tmp_path / "exp"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["confirmation_order"][0]["front_order_held"] is False
    assert [c["trial_id"] for c in payload["confirmation"]] == ["a", "b"] and payload[
        "confirmation"
    ][0]["n"] == 3
    front = payload["regimes"][0]["front"]
    assert [f[m.TRIAL_ID] for f in front] == ["a", "b", "c"] and all(
        f[m.MINIVAL_TOP1_SE] for f in front
    )
    assert all(isinstance(f[m.TIED], bool) for f in front)
    assert all(
        "exceeds_noise" in entry and "lead" in entry for entry in payload["regimes"][0]["family"]
    )
    assert all("measured" in w and "exceeds_noise" in w for w in payload["warnings"])


def test_run_to_run_noise_is_never_below_the_minival_se():
    # Two runs of the base agree to 0.001, but each was measured on only 400 images (SE 0.0245):
    # that agreement is luck, not evidence of a 0.001 noise.
    rows = [row(350, c, LONG) for c in axis_lines()] + [row(350, BASE, LONG, jitter=0.001)]
    (tight,) = analyze_frame(rows).regimes
    assert tight.noise_source == "run-to-run" and tight.exceeds_noise is True
    (floored,) = analyze_frame(with_size(rows, 400)).regimes
    assert floored.noise_source == "run-to-run+minival" and floored.noise_sd == tight.noise_sd
    assert (
        floored.exceeds_noise is False
        and "never below a config's minival SE" in winner_statement(floored)
    )


# --- two model families (#12): speed at equal accuracy, scaling axes from ResNet-RS only ---

from rsearch.analysis import speed_statement  # noqa: E402


def resnetrs_front(rows):
    """The (accuracy, latency) of the Pareto front of `rows`, by accuracy."""
    points = sorted((r[m.MINIVAL_TOP1], r[m.LATENCY_MS]) for r in rows)
    front, best_latency = [], math.inf
    for acc, lat in sorted(points, key=lambda p: (-p[0], p[1])):
        if lat < best_latency:
            front.append((acc, lat))
            best_latency = lat
    return sorted(front)


def efficientnet_rows(regime, points, depths, status=m.STATUS_OK, **extra):
    """EfficientNet trials, one per (accuracy, latency) point, at depth multipliers `depths`.
    Width 0.5 and resolution 128 are those of the ResNet-RS base: mixed into the scaling
    axes, these rows would form a depth axis below depth 26 (and move the base)."""
    return [
        {
            m.TRIAL_ID: f"eff-{regime}-{k}",
            m.STATUS: status,
            m.FAMILY: "efficientnet",
            m.MODEL: f"efficientnet-w0.5-d{depth:g}",
            m.DEPTH: depth,
            m.WIDTH: 0.5,
            m.RESOLUTION: 128,
            m.EPOCHS: regime,
            m.MINIVAL_TOP1: acc,
            m.LATENCY_MS: lat,
            **extra,
        }
        for k, ((acc, lat), depth) in enumerate(zip(points, depths))
    ]


def with_family(rows, family=m.DEFAULT_FAMILY):
    return [{m.FAMILY: family, **r} for r in rows]


def two_families(slowdown=2.0, shift=0.0, depths=(1.0, 1.1, 1.2, 1.4, 1.8, 2.2, 2.6)):
    """10-epoch ResNet-RS axis lines (width wins) and an EfficientNet front `slowdown` x slower
    at every accuracy of ResNet-RS's front (accuracies moved by `shift`)."""
    resnet = with_family([row(10, c, SHORT) for c in axis_lines()])
    front = resnetrs_front(resnet)
    points = [(acc + shift, slowdown * lat) for acc, lat in front]
    return resnet, efficientnet_rows(10, points, depths[: len(points)]), front


def frame_of(rows):
    """A results table as pandas holds it, without the store (whose depth column holds whole
    numbers; an EfficientNet's depth multiplier is 1.1)."""
    return pd.DataFrame(rows).assign(**{m.CONFIRMS: None})


def test_efficientnet_exactly_twice_as_slow_at_equal_accuracy_gives_two():
    resnet, efficient, front = two_families()
    assert len(front) >= 3 and {r[m.DEPTH] for r in efficient} - {1.0, 2.0}  # fractional depths
    (alone,) = analyze_frame(resnet).regimes
    result = analyze(frame_of(resnet + efficient))
    (regime,) = result.regimes
    families = regime.model_families
    assert families["families"] == ["resnetrs", "efficientnet"]
    comparison = families["comparison"]
    assert (comparison["faster"], comparison["slower"]) == ("resnetrs", "efficientnet")
    assert comparison["median_ratio"] == pytest.approx(2.0)
    assert comparison["min_ratio"] == pytest.approx(2.0)
    assert comparison["max_ratio"] == pytest.approx(2.0)
    assert comparison["accuracy_range"] == pytest.approx([front[0][0], front[-1][0]])
    assert speed_statement(regime) == (
        f"ResNet-RS is 2x faster than EfficientNet at equal minival top-1 (median latency ratio "
        f"over top-1 {front[0][0]:.4f}-{front[-1][0]:.4f}, where both fronts exist; "
        "min 2x, max 2x)"
    )
    # The scaling axes are those of the ResNet-RS rows alone: the multipliers move nothing.
    assert (regime.winner, regime.ranking, regime.base) == (alone.winner, alone.ranking, alone.base)
    for axis in STEPS:
        assert regime.curves[axis].values == alone.curves[axis].values
        assert regime.curves[axis].slope == pytest.approx(alone.curves[axis].slope)
    assert families["scaling_trials"] == len(resnet) and regime.trials_ok == len(resnet + efficient)
    # Every EfficientNet row names its family on the front and in the budget table.
    assert {r[m.FAMILY] for r in regime.front} <= {"resnetrs", "efficientnet"}
    assert all(m.FAMILY in r for r in regime.family)
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["regimes"][0]["model_families"]["comparison"]["median_ratio"] == pytest.approx(2)


def test_fronts_that_do_not_overlap_give_the_reason():
    _, efficient, front = two_families(slowdown=1.0, shift=0.3)  # every EfficientNet: +0.3 top-1
    resnet = with_family([row(10, c, SHORT) for c in axis_lines()])
    (regime,) = analyze(frame_of(resnet + efficient)).regimes
    comparison = regime.model_families["comparison"]
    assert comparison["median_ratio"] is None and comparison["accuracy_range"] is None
    low, high = front[0][0], front[-1][0]
    assert comparison["reason"] == (
        f"the fronts do not overlap in accuracy: efficientnet spans [{low + 0.3:.4g}, "
        f"{high + 0.3:.4g}], resnetrs spans [{low:.4g}, {high:.4g}]"
    )
    assert (
        speed_statement(regime)
        == f"no speed comparison of the model families: {comparison['reason']}"
    )


def test_a_second_family_without_trained_models_gives_the_reason():
    resnet, efficient, _ = two_families()
    untrained = [{**r, m.STATUS: m.STATUS_INFEASIBLE, m.MINIVAL_TOP1: None} for r in efficient]
    (regime,) = analyze(frame_of(resnet + untrained)).regimes
    assert regime.model_families["comparison"]["reason"] == (
        "only resnetrs has trained models at 10 epochs"
    )
    assert regime.winner == m.WIDTH


def test_an_efficientnet_confirmation_keeps_its_depth_multiplier():
    resnet, efficient, _ = two_families()
    rerun = {**efficient[1], m.TRIAL_ID: "eff-rerun", m.CONFIRMS: efficient[1][m.TRIAL_ID]}
    frame = pd.concat([frame_of(resnet + efficient), pd.DataFrame([rerun])], ignore_index=True)
    (confirmed,) = analyze(frame).confirmation
    assert confirmed[m.DEPTH] == 1.1 and confirmed[m.TRIAL_ID] == efficient[1][m.TRIAL_ID]


def test_one_family_output_is_unchanged_and_has_no_comparison(tmp_path, capsys):
    """Tables from before the family column, and tables whose every row is ResNet-RS (a
    family column of "resnetrs" or nulls), print the same text and JSON, with no comparison."""
    rows = [row(350, c, LONG) for c in axis_lines()] + [row(10, c, SHORT) for c in axis_lines()]
    outputs = []
    for name, table in (
        ("old", rows),
        ("named", with_family(rows)),
        ("nulls", with_family(rows, None)),
    ):
        create_experiment(tmp_path / name, {}, {})
        write_results(tmp_path / name, table)
        if name == "old":  # as an older version wrote it: no family column at all
            path = tmp_path / name / "results.parquet"
            stored = pq.read_table(path)
            new = [c for c in (m.FAMILY, "depth_mult") if c in stored.column_names]
            pq.write_table(stored.drop_columns(new), path)
            assert m.FAMILY not in pq.read_table(path).column_names
        text = []
        for argv_tail in ([], ["--json"]):
            assert main(["analyze", str(tmp_path / name), *argv_tail]) == 0
            text.append(capsys.readouterr().out.replace(str(tmp_path / name), "PATH"))
        text = [
            t.replace(f"Experiment {name}:", "Experiment X:").replace(f'"{name}"', '"X"')
            for t in text
        ]
        outputs.append(text)
        payload = json.loads(text[1])
        assert all("model_families" not in r for r in payload["regimes"])
        assert all(m.FAMILY not in f for r in payload["regimes"] for f in r["front"])
        assert "Model families" not in text[0] and "faster than" not in text[0]
    assert outputs[0] == outputs[1] == outputs[2]
    # The front's rows in the columns of older versions (depth a whole number, as it was).
    assert (
        "\n           1  0.4000 ± SE ?     resnetrs-26-w0.5          26    0.5   128  "
        "10-26-0.5-128-0.0  noise unknown\n"
    ) in outputs[0][0]


def test_cli_reports_the_speed_ratio_of_two_families(tmp_path, capsys):
    # Whole-number multipliers: the store's depth column holds whole numbers (see frame_of).
    resnet, efficient, front = two_families(depths=(1, 2, 3, 4, 5, 6, 7))
    create_experiment(tmp_path / "exp", {}, {})
    write_results(tmp_path / "exp", resnet + efficient)
    assert main(["analyze", str(tmp_path / "exp")]) == 0
    text = capsys.readouterr().out
    low, high = front[0][0], front[-1][0]
    assert "  Model families (ResNet-RS, EfficientNet): speed at equal minival top-1" in text
    assert (
        f"ResNet-RS is 2x faster than EfficientNet at equal minival top-1 (median latency "
        f"ratio over top-1 {low:.4f}-{high:.4f}" in text
    )
    assert (
        f"(the scaling axes above: the {len(resnet)} ok ResNet-RS trials of "
        f"{len(resnet + efficient)})" in text
    )
    assert "width gives the most top-1 per doubling of latency" in text
    assert main(["analyze", str(tmp_path / "exp"), "--json"]) == 0
    (regime,) = json.loads(capsys.readouterr().out)["regimes"]
    comparison = regime["model_families"]["comparison"]
    assert comparison["median_ratio"] == pytest.approx(2.0)
    assert comparison["accuracy_range"] == pytest.approx([low, high])
    assert (comparison["faster"], comparison["slower"]) == ("resnetrs", "efficientnet")
    assert regime["winner"] == m.WIDTH and regime["base"][m.DEPTH] == 26
