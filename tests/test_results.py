"""The results store: real Parquet files in a temporary experiment folder."""
import json
import math
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsearch import metrics as m
from rsearch.errors import UserError
from rsearch.results import (
    CURVE_COLUMNS,
    RESULT_COLUMNS,
    best_under_budget,
    create_experiment,
    front_summary,
    front_ties,
    hypervolume_by_regime,
    read_experiment,
    update_meta,
    write_curves,
    write_results,
)


def trial(trial_id, status="ok", depth=50, width=1.0, resolution=160, epochs=10, acc=0.5, latency=1.0, **extra):
    row = {m.TRIAL_ID: trial_id, m.STATUS: status, m.DEPTH: depth, m.WIDTH: width,
           m.RESOLUTION: resolution, m.EPOCHS: epochs, m.MINIVAL_TOP1: acc, m.LATENCY_MS: latency}
    row.update(extra)
    return row


@pytest.fixture
def exp(tmp_path):
    path = tmp_path / "exp"
    create_experiment(path, {"epochs": [10, 100], "latency_budget_ms": 2.0}, {"search": {"algorithm": "grid"}})
    return path


def test_create_and_update_meta(exp):
    meta = json.loads((exp / "experiment.json").read_text())
    assert meta["name"] == "exp" and meta["status"] == "running"
    assert meta["schema_version"] == m.RESULTS_SCHEMA_VERSION and meta["objective"] == m.MINIVAL_TOP1
    assert meta["latency_budget_ms"] == 2.0 and meta["planned_trials"] is None
    assert "algorithm: grid" in (exp / "space.yaml").read_text()
    update_meta(exp, status="finished", planned_trials=4)
    meta = json.loads((exp / "experiment.json").read_text())
    assert meta["status"] == "finished" and meta["planned_trials"] == 4 and meta["epochs"] == [10, 100]


def test_columns_and_dtypes_do_not_depend_on_which_values_rows_carry(exp):
    sparse = write_results(exp, [trial("a", status="running", acc=None, latency=None)])
    full = write_results(exp, [trial("a", dropout=0.25, params=np.int64(10), flops=20.0,
                                     randaugment_magnitude=15.0, failure=None, model="resnetrs-50")])
    assert list(sparse.columns) == list(full.columns) == [name for name, _ in RESULT_COLUMNS]
    assert sparse.dtypes.equals(full.dtypes)
    back = read_experiment(exp).results
    assert back.dtypes.equals(full.dtypes)
    assert back.loc[0, m.RANDAUGMENT_MAGNITUDE] == 15 and back.loc[0, m.PARAMS] == 10
    schema = pq.read_schema(exp / "results.parquet")
    assert schema.field(m.DEPTH).type == pa.int64() and schema.field(m.PARETO).type == pa.bool_()
    assert schema.metadata[b"rsearch.schema_version"] == str(m.RESULTS_SCHEMA_VERSION).encode()


def test_extra_keys_are_kept_after_the_known_columns(exp):
    frame = write_results(exp, [trial("a", host=3, note={"x": 1}), trial("b")])
    assert list(frame.columns[-2:]) == ["host", "note"]
    assert read_experiment(exp).results["host"].tolist()[0] == 3


@pytest.mark.parametrize("row, message", [
    ({m.TRIAL_ID: "a", m.STATUS: "ok"}, "expected a value for depth"),
    (trial("a", status="done"), "status expected one of"),
    (trial("a", randaugment_magnitude=9.5), "randaugment_magnitude: expected a whole number"),
])
def test_malformed_rows_are_refused(exp, row, message):
    with pytest.raises(ValueError, match=message):
        write_results(exp, [row])


def test_pareto_column_matches_brute_force_per_regime(exp):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        status = rng.choice(["ok", "ok", "ok", "infeasible", "failed", "running"])
        acc = None if status in ("infeasible", "failed") else float(rng.integers(0, 8)) / 10
        rows.append(trial(f"t{i}", status=str(status), epochs=int(rng.choice([10, 100])),
                          acc=acc, latency=float(rng.integers(1, 8))))
    frame = write_results(exp, rows)
    for i, row in enumerate(rows):
        if row[m.STATUS] != "ok":
            assert not frame.loc[i, m.PARETO], row
            continue
        competitors = [r for r in rows if r[m.STATUS] == "ok" and r[m.EPOCHS] == row[m.EPOCHS]]
        dominated = any(r[m.MINIVAL_TOP1] >= row[m.MINIVAL_TOP1] and r[m.LATENCY_MS] <= row[m.LATENCY_MS]
                        and (r[m.MINIVAL_TOP1], r[m.LATENCY_MS]) != (row[m.MINIVAL_TOP1], row[m.LATENCY_MS])
                        for r in competitors)
        assert bool(frame.loc[i, m.PARETO]) == (not dominated), row
    assert read_experiment(exp).results[m.PARETO].tolist() == frame[m.PARETO].tolist()


def test_curves_round_trip(exp):
    write_results(exp, [trial("a")])
    write_curves(exp, [{m.TRIAL_ID: "a", m.EPOCH: e, m.MINIVAL_TOP1: 0.1 * e, m.DEPTH: 50} for e in (1, 2)])
    curves = read_experiment(exp).curves
    assert list(curves.columns) == [name for name, _ in CURVE_COLUMNS]
    assert curves[m.EPOCH].tolist() == [1, 2] and curves[m.TRAIN_LOSS].isna().all()


def test_readers_never_see_a_half_written_file(exp):
    rows = [trial(f"t{i}", acc=i / 500, latency=1 + i % 7, dropout=0.1) for i in range(500)]
    write_results(exp, rows[:1])
    stop = threading.Event()

    def writer():
        n = 1
        while not stop.is_set():
            n = n % len(rows) + 1
            write_results(exp, rows[:n])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(60):
            results = read_experiment(exp).results  # raises if it ever read a partial file
            assert len(results) >= 1
    finally:
        stop.set()
        thread.join()
    assert not [p.name for p in exp.iterdir() if p.name.endswith(".tmp")]


def test_uri_storage(exp):
    write_results(f"file://{exp}", [trial("a")])
    assert read_experiment(f"file://{exp}").results[m.TRIAL_ID].tolist() == ["a"]


def test_older_file_missing_columns_is_conformed(exp):
    pq.write_table(pa.table({m.TRIAL_ID: ["a"], m.STATUS: ["ok"], m.EPOCHS: [10]}), exp / "results.parquet")
    results = read_experiment(exp).results
    assert list(results.columns) == [name for name, _ in RESULT_COLUMNS]
    assert results[m.LATENCY_MS].isna().all() and str(results[m.PARAMS].dtype) == "Int64"


# --- bad input: one line, UserError (the CLI turns it into exit code 2) ---

def test_not_a_folder(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        read_experiment(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        read_experiment(tmp_path / "file")


def test_folder_without_experiment_json(tmp_path):
    with pytest.raises(UserError, match="with experiment.json"):
        read_experiment(tmp_path)


def test_empty_experiment(exp):
    with pytest.raises(UserError, match="at least one trial"):
        read_experiment(exp)
    empty = read_experiment(exp, allow_empty=True)
    assert empty.results.empty and list(empty.results.columns) == [name for name, _ in RESULT_COLUMNS]
    assert empty.curves.empty and empty.latency_budget_ms == 2.0 and empty.name == "exp"


def test_newer_schema_in_meta(exp):
    update_meta(exp, schema_version=m.RESULTS_SCHEMA_VERSION + 1)
    with pytest.raises(UserError, match="newer than this rsearch reads") as info:
        read_experiment(exp, allow_empty=True)
    assert "\n" not in str(info.value)


def test_newer_schema_in_parquet(exp):
    table = pa.table({m.TRIAL_ID: ["a"]}).replace_schema_metadata({b"rsearch.schema_version": b"99"})
    pq.write_table(table, exp / "results.parquet")
    with pytest.raises(UserError, match="schema_version 99"):
        read_experiment(exp)


def test_corrupt_files(exp):
    (exp / "results.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="expected a Parquet file"):
        read_experiment(exp)
    (exp / "experiment.json").write_text("{")
    with pytest.raises(UserError, match="expected valid JSON"):
        read_experiment(exp)


# --- summaries ---

def test_front_summary_and_best_under_budget(exp):
    frame = write_results(exp, [
        trial("slow", epochs=10, acc=0.9, latency=3.0),
        trial("fast", epochs=10, acc=0.6, latency=1.0),
        trial("twin", epochs=10, acc=0.6, latency=1.0),
        trial("worse", epochs=10, acc=0.5, latency=2.0),
        trial("over", status="infeasible", epochs=10, acc=None, latency=0.5),
        trial("long", epochs=100, acc=0.7, latency=2.5),
    ])
    front = front_summary(frame)
    assert front[m.TRIAL_ID].tolist() == ["fast", "twin", "slow", "long"]
    assert front[m.EPOCHS].tolist() == [10, 10, 10, 100]
    assert list(front.columns[5:8]) == [m.MINIVAL_TOP1, m.MINIVAL_TOP1_SE, m.LATENCY_MS]
    best = best_under_budget(frame, 2.0)
    assert best[10][m.TRIAL_ID] in ("fast", "twin") and best[100] is None
    assert best_under_budget(frame, None)[100][m.TRIAL_ID] == "long"
    volumes = hypervolume_by_regime(frame, budget_ms=4.0)
    assert volumes[10] == pytest.approx((3 - 1) * 0.6 + (4 - 3) * 0.9)
    assert volumes[100] == pytest.approx((4 - 2.5) * 0.7)


# --- noise: minival SE, confirmation reruns, ties on the front ---

def test_minival_se_is_computed_from_minival_size_never_taken_from_rows(exp):
    frame = write_results(exp, [
        trial("half", acc=0.5, minival_size=100, minival_top1_se=123.0),  # a row's own SE is ignored
        trial("high", acc=0.9, minival_size=2500),
        trial("no-size", acc=0.9),
        trial("empty-split", acc=0.9, minival_size=0),
        trial("no-acc", status="running", acc=None, minival_size=100),
    ])
    se = frame[m.MINIVAL_TOP1_SE].tolist()
    assert se[0] == pytest.approx(math.sqrt(0.5 * 0.5 / 100)) == pytest.approx(0.05)
    assert se[1] == pytest.approx(math.sqrt(0.9 * 0.1 / 2500))
    assert all(math.isnan(v) for v in se[2:])
    back = read_experiment(exp).results
    np.testing.assert_allclose(back[m.MINIVAL_TOP1_SE].to_numpy(float), frame[m.MINIVAL_TOP1_SE].to_numpy(float))
    assert pq.read_table(exp / "results.parquet").column(m.MINIVAL_TOP1_SE).null_count == 3  # nulls, not NaN


def test_noise_columns_round_trip_with_their_types(exp):
    write_results(exp, [
        trial("a", seed=0, minival_size=80, latency_spread_ms=0.1, latency_runs=7, latency_noise=0.05,
              latency_ratio=1.2, latency_borderline=True),
        trial("b", seed=np.int64(1), confirms="a", latency_runs=7.0, latency_borderline=None),
    ])
    back = read_experiment(exp).results
    assert back[m.SEED].tolist() == [0, 1] and back[m.CONFIRMS].isna().tolist() == [True, False]
    assert back.loc[1, m.CONFIRMS] == "a"
    assert str(back[m.SEED].dtype) == str(back[m.MINIVAL_SIZE].dtype) == str(back[m.LATENCY_RUNS].dtype) == "Int64"
    assert str(back[m.LATENCY_BORDERLINE].dtype) == "boolean"
    assert back[m.LATENCY_BORDERLINE].isna().tolist() == [False, True]
    assert back.loc[0, m.LATENCY_RATIO] == 1.2 and back.loc[0, m.LATENCY_NOISE] == 0.05
    schema = pq.read_schema(exp / "results.parquet")
    assert schema.field(m.LATENCY_BORDERLINE).type == pa.bool_() and schema.field(m.CONFIRMS).type == pa.string()


def test_file_written_before_the_noise_columns_reads_them_as_null(exp):
    pq.write_table(pa.table({m.TRIAL_ID: ["a", "b"], m.STATUS: ["ok", "ok"], m.DEPTH: [50, 50], m.WIDTH: [1.0, 2.0],
                             m.RESOLUTION: [160, 160], m.EPOCHS: [10, 10], m.MINIVAL_TOP1: [0.5, 0.6],
                             m.LATENCY_MS: [1.0, 2.0], m.PARETO: [True, True]}), exp / "results.parquet")
    results = read_experiment(exp).results
    assert list(results.columns) == [name for name, _ in RESULT_COLUMNS]
    for column in (m.MINIVAL_TOP1_SE, m.MINIVAL_SIZE, m.SEED, m.CONFIRMS, m.LATENCY_SPREAD_MS, m.LATENCY_RUNS,
                   m.LATENCY_NOISE, m.LATENCY_RATIO, m.LATENCY_BORDERLINE):
        assert results[column].isna().all(), column
    assert str(results[m.LATENCY_BORDERLINE].dtype) == "boolean"  # null, not False
    ties = front_ties(results)
    assert ties[m.TRIAL_ID].tolist() == ["a", "b"] and ties[m.TIED].isna().all()  # noise unknown


def test_confirmation_reruns_never_compete_for_the_front(exp):
    frame = write_results(exp, [
        trial("a", acc=0.6, latency=1.0, seed=0),
        trial("b", acc=0.7, latency=2.0, seed=0),
        # A lucky rerun of a: it would dominate both originals if it competed.
        trial("a-rerun", acc=0.9, latency=1.0, seed=1, confirms="a"),
    ])
    assert frame[m.PARETO].tolist() == [True, True, False]
    assert front_summary(frame)[m.TRIAL_ID].tolist() == ["a", "b"]
    assert best_under_budget(frame, 1.5)[10][m.TRIAL_ID] == "a"
    assert hypervolume_by_regime(frame, budget_ms=3.0)[10] == pytest.approx((2 - 1) * 0.6 + (3 - 2) * 0.7)


def test_front_ties_mark_neighbours_within_two_standard_errors(exp):
    n = 2500  # se about 0.01 near 0.5
    frame = write_results(exp, [
        trial("a", acc=0.50, latency=1.0, minival_size=n),
        trial("b", acc=0.52, latency=2.0, minival_size=n),  # 0.02 from a: within 2 x 0.0141
        trial("c", acc=0.60, latency=3.0, minival_size=n),  # 0.08 from b: told apart
        trial("d", acc=0.61, latency=0.5, epochs=100, minival_size=n),  # close to c, but another regime
        trial("e", acc=0.62, latency=1.0, epochs=100),  # no minival size: SE unknown
        trial("dominated", acc=0.51, latency=2.5, minival_size=n),
    ])
    ties = front_ties(frame)
    assert ties[m.TRIAL_ID].tolist() == ["a", "b", "c", "d", "e"]
    se = ties[m.MINIVAL_TOP1_SE].to_numpy(float)
    acc = ties[m.MINIVAL_TOP1].to_numpy(float)
    assert abs(acc[0] - acc[1]) <= 2 * math.hypot(se[0], se[1])  # the formula, as the brief states it
    assert abs(acc[1] - acc[2]) > 2 * math.hypot(se[1], se[2])
    assert ties[m.TIED].tolist()[:3] == [True, True, False]
    assert ties[m.TIED_WITH].tolist()[:3] == [["b"], ["a"], []]
    assert ties[m.TIED].isna().tolist()[3:] == [True, True]  # d's only neighbour has no SE
    assert front_ties(frame, z=0.5)[m.TIED].tolist()[:3] == [False, False, False]


def test_a_minival_too_small_to_rank_models_is_warned_about():
    from rsearch.noise import small_minival_warning

    assert small_minival_warning(1000) is None and small_minival_warning(0) is None  # 1.6 points
    text = small_minival_warning(80)  # the old quickstart: 2% of 4,000
    assert "80 images" in text and "5.6 points" in text and "data.minival_fraction" in text
