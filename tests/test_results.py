"""The results store: real Parquet files in a temporary experiment folder."""

import json
import math
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsearch import metrics as m
from rsearch.cli import main
from rsearch.errors import UserError
from rsearch.noise import small_minival_warning
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

# A trial's architecture and regime unless a test names others (depth=..., epochs=...).
ARCH = {m.DEPTH: 50, m.WIDTH: 1.0, m.RESOLUTION: 160, m.EPOCHS: 10}


def trial(trial_id, status="ok", acc=0.5, latency=1.0, **columns):
    """A results row; `columns` (keyword = column name) add or replace values."""
    row = {m.TRIAL_ID: trial_id, m.STATUS: status, **ARCH}
    return {**row, m.MINIVAL_TOP1: acc, m.LATENCY_MS: latency, **columns}


@pytest.fixture
def exp(tmp_path):
    path = tmp_path / "exp"
    create_experiment(
        path, {"epochs": [10, 100], "latency_budget_ms": 2.0}, {"search": {"algorithm": "grid"}}
    )
    return path


def test_create_and_update_meta(exp):
    meta = json.loads((exp / "experiment.json").read_text())
    assert meta["name"] == "exp" and meta["status"] == "running"
    assert (
        meta["schema_version"] == m.RESULTS_SCHEMA_VERSION and meta["objective"] == m.MINIVAL_TOP1
    )
    assert meta["latency_budget_ms"] == 2.0 and meta["planned_trials"] is None
    assert "algorithm: grid" in (exp / "space.yaml").read_text()
    update_meta(exp, status="finished", planned_trials=4)
    meta = json.loads((exp / "experiment.json").read_text())
    assert (
        meta["status"] == "finished" and meta["planned_trials"] == 4 and meta["epochs"] == [10, 100]
    )


def test_columns_and_dtypes_do_not_depend_on_which_values_rows_carry(exp):
    sparse = write_results(exp, [trial("a", status="running", acc=None, latency=None)])
    full = write_results(
        exp,
        [
            trial(
                "a",
                dropout=0.25,
                params=np.int64(10),
                flops=20.0,
                randaugment_magnitude=15.0,
                failure=None,
                model="resnetrs-50",
            )
        ],
    )
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


@pytest.mark.parametrize(
    "row, message",
    [
        ({m.TRIAL_ID: "a", m.STATUS: "ok"}, "expected a value for depth"),
        (trial("a", status="done"), "status expected one of"),
        (trial("a", randaugment_magnitude=9.5), "randaugment_magnitude: expected a whole number"),
    ],
)
def test_malformed_rows_are_refused(exp, row, message):
    with pytest.raises(ValueError, match=message):
        write_results(exp, [row])


def test_pareto_column_matches_brute_force_per_regime(exp):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        status = rng.choice(["ok", "ok", "ok", "infeasible", "failed", "running"])
        acc = None if status in ("infeasible", "failed") else float(rng.integers(0, 8)) / 10
        rows.append(
            trial(
                f"t{i}",
                status=str(status),
                epochs=int(rng.choice([10, 100])),
                acc=acc,
                latency=float(rng.integers(1, 8)),
            )
        )
    frame = write_results(exp, rows)
    for i, row in enumerate(rows):
        if row[m.STATUS] != "ok":
            assert not frame.loc[i, m.PARETO], row
            continue
        competitors = [r for r in rows if r[m.STATUS] == "ok" and r[m.EPOCHS] == row[m.EPOCHS]]
        dominated = any(
            r[m.MINIVAL_TOP1] >= row[m.MINIVAL_TOP1]
            and r[m.LATENCY_MS] <= row[m.LATENCY_MS]
            and (r[m.MINIVAL_TOP1], r[m.LATENCY_MS]) != (row[m.MINIVAL_TOP1], row[m.LATENCY_MS])
            for r in competitors
        )
        assert bool(frame.loc[i, m.PARETO]) == (not dominated), row
    assert read_experiment(exp).results[m.PARETO].tolist() == frame[m.PARETO].tolist()


def test_curves_round_trip(exp):
    write_results(exp, [trial("a")])
    write_curves(
        exp, [{m.TRIAL_ID: "a", m.EPOCH: e, m.MINIVAL_TOP1: 0.1 * e, m.DEPTH: 50} for e in (1, 2)]
    )
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
    # Every file rsearch wrote has the required columns (REQUIRED_RESULT_COLUMNS); later columns may
    # be missing.
    pq.write_table(
        pa.table(
            {
                m.TRIAL_ID: ["a"],
                m.STATUS: ["ok"],
                m.DEPTH: [50],
                m.WIDTH: [1.0],
                m.RESOLUTION: [160],
                m.EPOCHS: [10],
            }
        ),
        exp / "results.parquet",
    )
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
    assert empty.results.empty and list(empty.results.columns) == [
        name for name, _ in RESULT_COLUMNS
    ]
    assert empty.curves.empty and empty.latency_budget_ms == 2.0 and empty.name == "exp"


def test_newer_schema_in_meta(exp):
    update_meta(exp, schema_version=m.RESULTS_SCHEMA_VERSION + 1)
    with pytest.raises(UserError, match="newer than this rsearch reads") as info:
        read_experiment(exp, allow_empty=True)
    assert "\n" not in str(info.value)


def test_newer_schema_in_parquet(exp):
    table = pa.table({m.TRIAL_ID: ["a"]}).replace_schema_metadata(
        {b"rsearch.schema_version": b"99"}
    )
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


# --- hostile files: a wrong type in experiment.json or results.parquet is a one-line error
# naming the file and the field, exit 2 from both views, and no report written.


def _retype(column, values, kind=None):
    """results.parquet with `column` replaced by `values` (e.g. numbers as strings)."""

    def edit(table):
        array = pa.array(values(table[column].to_pylist()), type=kind)
        return table.set_column(table.schema.get_field_index(column), column, array)

    return edit


_AS_TEXT = _retype(m.MINIVAL_TOP1, lambda v: [None if x is None else f"{x:.3f}" for x in v])
_BAD_META = [
    ({"epochs": "three"}, "epochs", "a list of integers > 0"),
    ({"epochs": 3}, "epochs", "a list of integers > 0"),
    ({"epochs": [10, "100"]}, "epochs", "a list of integers > 0"),
    ({"latency_budget_ms": "fast"}, "latency_budget_ms", "a number > 0"),
    ({"latency_budget_ms": True}, "latency_budget_ms", "a number > 0"),
    ({"latency_method": [1, 2]}, "latency_method", "an object"),
    (
        {
            "latency_method": {
                "max_ratio": 2,
                "reference": {"depth": 26, "width": "wide", "resolution": 64},
            }
        },
        "latency_method.reference.width",
        "a number",
    ),
    (
        {"latency_method": {"max_ratio": "2x", "reference": None}},
        "latency_method.max_ratio",
        "a number > 0",
    ),
    ({"planned_trials": [4]}, "planned_trials", "an integer >= 0"),
    ({"name": ["exp"]}, "name", "a string"),
    ({"status": {"done": True}}, "status", "a string"),
]
_BAD_TABLES = [
    (_AS_TEXT, "minival_top1", "numbers"),
    (_retype(m.LATENCY_MS, lambda v: [str(x) for x in v]), "latency_ms", "numbers"),
    (_retype(m.DEPTH, lambda v: [float(x) for x in v]), "depth", "integers"),
    (_retype(m.STATUS, lambda v: list(range(len(v)))), "status", "strings"),
    (_retype(m.PARETO, lambda v: [int(bool(x)) for x in v]), "pareto", "true/false"),
    (lambda table: table.drop([m.STATUS]), "missing status", "expected the columns"),
    (
        lambda table: pa.table({"a": [1, 2], "b": ["x", "y"]}),  # a foreign Parquet file
        "missing trial_id, status, depth, width, resolution, epochs",
        "expected the columns",
    ),
    (_retype(m.TRIAL_ID, lambda v: [None] + v[1:]), "trial_id", "a value in every row"),
]


def _views(exp, tmp_path, capsys) -> list[tuple[int, str]]:
    """(exit code, stderr) of `rsearch analyze` and `rsearch dashboard` on `exp`."""
    outcomes = []
    for argv in (
        ["analyze", str(exp)],
        ["analyze", str(exp), "--json"],
        ["dashboard", str(exp), "-o", str(tmp_path / "report.html")],
    ):
        code = main(argv)
        outcomes.append((code, capsys.readouterr().err))
    assert not (tmp_path / "report.html").exists()
    return outcomes


@pytest.fixture
def written(exp):
    write_results(exp, [trial("a"), trial("b", depth=101, acc=0.6, latency=1.5)])
    write_curves(exp, [{m.TRIAL_ID: "a", m.EPOCH: 1, m.MINIVAL_TOP1: 0.4}])
    return exp


@pytest.mark.parametrize(
    "change, field, expected", _BAD_META, ids=[str(c) for c, _, _ in _BAD_META]
)
def test_wrong_types_in_experiment_json_are_one_line_errors(
    written, tmp_path, capsys, change, field, expected
):
    meta = json.loads((written / "experiment.json").read_text())
    (written / "experiment.json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(UserError) as info:
        read_experiment(written)
    assert f"{field} in {written}/experiment.json: expected {expected}" in str(info.value)
    for code, err in _views(written, tmp_path, capsys):
        assert (
            code == 2 and err.count("\n") == 1 and "Traceback" not in err and str(info.value) in err
        )


@pytest.mark.parametrize(
    "text, expected",
    [("[1, 2]", "a JSON object"), ("not json", "valid JSON"), ('"experiment"', "a JSON object")],
)
def test_experiment_json_that_is_not_an_object(written, tmp_path, capsys, text, expected):
    (written / "experiment.json").write_text(text)
    for code, err in _views(written, tmp_path, capsys):
        assert (
            code == 2
            and err.count("\n") == 1
            and f"expected {expected}" in err
            and "experiment.json" in err
        )


@pytest.mark.parametrize("edit, field, expected", _BAD_TABLES, ids=[f for _, f, _ in _BAD_TABLES])
def test_wrong_types_in_results_parquet_are_one_line_errors(
    written, tmp_path, capsys, edit, field, expected
):
    path = written / "results.parquet"
    pq.write_table(edit(pq.read_table(path)), path)
    with pytest.raises(UserError) as info:
        read_experiment(written)
    assert str(path) in str(info.value) and field in str(info.value) and expected in str(info.value)
    for code, err in _views(written, tmp_path, capsys):
        assert (
            code == 2 and err.count("\n") == 1 and "Traceback" not in err and str(info.value) in err
        )


def test_wrong_types_in_curves_parquet_are_one_line_errors(written):
    path = written / "curves.parquet"
    pq.write_table(
        _retype(m.MINIVAL_TOP1, lambda v: [str(x) for x in v])(pq.read_table(path)), path
    )
    with pytest.raises(UserError, match=f"minival_top1 in {path}: expected numbers"):
        read_experiment(written)


def test_compatible_parquet_types_read_back_as_the_schema_types(written):
    """What another Parquet writer may use for the same values: int32, float32, dictionary
    strings, all-null columns. They are exactly representable, so they read as the schema's
    types."""
    path = written / "results.parquet"
    table = pq.read_table(path)
    for column, kind in (
        (m.DEPTH, pa.int32()),
        (m.LATENCY_MS, pa.float32()),
        (m.MINIVAL_TOP1, pa.int64()),
    ):
        table = table.set_column(
            table.schema.get_field_index(column),
            column,
            pa.array([round(x) for x in table[column].to_pylist()], type=pa.int64()).cast(kind),
        )
    table = table.set_column(
        table.schema.get_field_index(m.STATUS), m.STATUS, table[m.STATUS].dictionary_encode()
    )
    table = table.set_column(table.schema.get_field_index(m.MODEL), m.MODEL, pa.nulls(len(table)))
    pq.write_table(table, path)
    results = read_experiment(written).results
    assert results[m.DEPTH].tolist() == [50, 101] and str(results[m.DEPTH].dtype) == "Int64"
    assert results[m.LATENCY_MS].dtype == np.float64 and results[m.MINIVAL_TOP1].tolist() == [
        0.0,
        1.0,
    ]
    assert results[m.STATUS].tolist() == ["ok", "ok"] and results[m.MODEL].isna().all()


def test_views_refuse_a_foreign_file_with_exit_2_in_a_fresh_process(written):
    """As a user runs them: torch (which the views never need) loaded beside pyarrow made the
    process abort now and then ("terminate called without an active exception", exit 134)
    when it exited right after reading a Parquet file, as it does when refusing one."""
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), written / "results.parquet")
    probe = (
        "import sys; from rsearch.cli import build_parser; "
        "from rsearch.results import read_experiment; "
        "from dashboards.page import build_report; build_parser(); "
        "sys.exit(0 if 'torch' not in sys.modules else 1)"
    )
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
    for command in (
        ["analyze", str(written)],
        ["dashboard", str(written), "-o", str(written / "r.html")],
    ) * 2:
        done = subprocess.run(
            [sys.executable, "-m", "rsearch", *command], capture_output=True, text=True
        )
        assert done.returncode == 2 and "missing trial_id, status" in done.stderr, done.stderr


# --- summaries ---


def test_front_summary_and_best_under_budget(exp):
    frame = write_results(
        exp,
        [
            trial("slow", epochs=10, acc=0.9, latency=3.0),
            trial("fast", epochs=10, acc=0.6, latency=1.0),
            trial("twin", epochs=10, acc=0.6, latency=1.0),
            trial("worse", epochs=10, acc=0.5, latency=2.0),
            trial("over", status="infeasible", epochs=10, acc=None, latency=0.5),
            trial("long", epochs=100, acc=0.7, latency=2.5),
        ],
    )
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
    frame = write_results(
        exp,
        [
            trial(
                "half", acc=0.5, minival_size=100, minival_top1_se=123.0
            ),  # a row's own SE is ignored
            trial("high", acc=0.9, minival_size=2500),
            trial("no-size", acc=0.9),
            trial("empty-split", acc=0.9, minival_size=0),
            trial("no-acc", status="running", acc=None, minival_size=100),
        ],
    )
    se = frame[m.MINIVAL_TOP1_SE].tolist()
    assert se[0] == pytest.approx(math.sqrt(0.5 * 0.5 / 100)) == pytest.approx(0.05)
    assert se[1] == pytest.approx(math.sqrt(0.9 * 0.1 / 2500))
    assert all(math.isnan(v) for v in se[2:])
    back = read_experiment(exp).results
    np.testing.assert_allclose(
        back[m.MINIVAL_TOP1_SE].to_numpy(float), frame[m.MINIVAL_TOP1_SE].to_numpy(float)
    )
    assert (
        pq.read_table(exp / "results.parquet").column(m.MINIVAL_TOP1_SE).null_count == 3
    )  # nulls, not NaN


def test_noise_columns_round_trip_with_their_types(exp):
    latency = {m.LATENCY_SPREAD_MS: 0.1, m.LATENCY_RUNS: 7, m.LATENCY_NOISE: 0.05}
    relative = {m.LATENCY_RATIO: 1.2, m.LATENCY_BORDERLINE: True}
    first = trial("a", seed=0, minival_size=80, **latency, **relative)
    rerun = trial("b", seed=np.int64(1), confirms="a", latency_runs=7.0, latency_borderline=None)
    write_results(exp, [first, rerun])
    back = read_experiment(exp).results
    assert back[m.SEED].tolist() == [0, 1] and back[m.CONFIRMS].isna().tolist() == [True, False]
    assert back.loc[1, m.CONFIRMS] == "a"
    assert (
        str(back[m.SEED].dtype)
        == str(back[m.MINIVAL_SIZE].dtype)
        == str(back[m.LATENCY_RUNS].dtype)
        == "Int64"
    )
    assert str(back[m.LATENCY_BORDERLINE].dtype) == "boolean"
    assert back[m.LATENCY_BORDERLINE].isna().tolist() == [False, True]
    assert back.loc[0, m.LATENCY_RATIO] == 1.2 and back.loc[0, m.LATENCY_NOISE] == 0.05
    schema = pq.read_schema(exp / "results.parquet")
    assert (
        schema.field(m.LATENCY_BORDERLINE).type == pa.bool_()
        and schema.field(m.CONFIRMS).type == pa.string()
    )


def test_file_written_before_the_noise_columns_reads_them_as_null(exp):
    pq.write_table(
        pa.table(
            {
                m.TRIAL_ID: ["a", "b"],
                m.STATUS: ["ok", "ok"],
                m.DEPTH: [50, 50],
                m.WIDTH: [1.0, 2.0],
                m.RESOLUTION: [160, 160],
                m.EPOCHS: [10, 10],
                m.MINIVAL_TOP1: [0.5, 0.6],
                m.LATENCY_MS: [1.0, 2.0],
                m.PARETO: [True, True],
            }
        ),
        exp / "results.parquet",
    )
    results = read_experiment(exp).results
    assert list(results.columns) == [name for name, _ in RESULT_COLUMNS]
    for column in (
        m.MINIVAL_TOP1_SE,
        m.MINIVAL_SIZE,
        m.SEED,
        m.CONFIRMS,
        m.LATENCY_SPREAD_MS,
        m.LATENCY_RUNS,
        m.LATENCY_NOISE,
        m.LATENCY_RATIO,
        m.LATENCY_BORDERLINE,
    ):
        assert results[column].isna().all(), column
    assert str(results[m.LATENCY_BORDERLINE].dtype) == "boolean"  # null, not False
    ties = front_ties(results)
    assert ties[m.TRIAL_ID].tolist() == ["a", "b"] and ties[m.TIED].isna().all()  # noise unknown


def test_confirmation_reruns_never_compete_for_the_front(exp):
    frame = write_results(
        exp,
        [
            trial("a", acc=0.6, latency=1.0, seed=0),
            trial("b", acc=0.7, latency=2.0, seed=0),
            # A lucky rerun of a: it would dominate both originals if it competed.
            trial("a-rerun", acc=0.9, latency=1.0, seed=1, confirms="a"),
        ],
    )
    assert frame[m.PARETO].tolist() == [True, True, False]
    assert front_summary(frame)[m.TRIAL_ID].tolist() == ["a", "b"]
    assert best_under_budget(frame, 1.5)[10][m.TRIAL_ID] == "a"
    assert hypervolume_by_regime(frame, budget_ms=3.0)[10] == pytest.approx(
        (2 - 1) * 0.6 + (3 - 2) * 0.7
    )


def test_front_ties_mark_neighbours_within_two_standard_errors(exp):
    n = 2500  # se about 0.01 near 0.5
    frame = write_results(
        exp,
        [
            trial("a", acc=0.50, latency=1.0, minival_size=n),
            trial("b", acc=0.52, latency=2.0, minival_size=n),  # 0.02 from a: within 2 x 0.0141
            trial("c", acc=0.60, latency=3.0, minival_size=n),  # 0.08 from b: told apart
            trial(
                "d", acc=0.61, latency=0.5, epochs=100, minival_size=n
            ),  # close to c, but another regime
            trial("e", acc=0.62, latency=1.0, epochs=100),  # no minival size: SE unknown
            trial("dominated", acc=0.51, latency=2.5, minival_size=n),
        ],
    )
    ties = front_ties(frame)
    assert ties[m.TRIAL_ID].tolist() == ["a", "b", "c", "d", "e"]
    se = ties[m.MINIVAL_TOP1_SE].to_numpy(float)
    acc = ties[m.MINIVAL_TOP1].to_numpy(float)
    assert abs(acc[0] - acc[1]) <= 2 * math.hypot(
        se[0], se[1]
    )  # the formula, as the brief states it
    assert abs(acc[1] - acc[2]) > 2 * math.hypot(se[1], se[2])
    assert ties[m.TIED].tolist()[:3] == [True, True, False]
    assert ties[m.TIED_WITH].tolist()[:3] == [["b"], ["a"], []]
    assert ties[m.TIED].isna().tolist()[3:] == [True, True]  # d's only neighbour has no SE
    assert front_ties(frame, z=0.5)[m.TIED].tolist()[:3] == [False, False, False]


def test_a_minival_too_small_to_rank_models_is_warned_about():
    assert small_minival_warning(1000) is None and small_minival_warning(0) is None  # 1.6 points
    text = small_minival_warning(80)  # the old quickstart: 2% of 4,000
    assert "80 images" in text and "5.6 points" in text and "data.minival_fraction" in text


def test_a_results_file_rewritten_by_pandas_still_reads(tmp_path):
    # pandas writes text as large_string: it is still text, and an edited experiment stays readable.
    exp_dir = tmp_path / "exp"
    create_experiment(exp_dir, {"epochs": [1]}, {})
    write_results(
        exp_dir,
        [
            {
                m.TRIAL_ID: "t",
                m.STATUS: m.STATUS_OK,
                m.DEPTH: 26,
                m.WIDTH: 0.25,
                m.RESOLUTION: 32,
                m.EPOCHS: 1,
                m.MINIVAL_TOP1: 0.5,
                m.LATENCY_MS: 2.0,
            }
        ],
    )
    path = exp_dir / "results.parquet"
    pa_table = pq.read_table(path)
    pa_table = pa_table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.large_string() if pa.types.is_string(f.type) else f.type)
                for f in pa_table.schema
            ]
        )
    )
    pq.write_table(pa_table, path)
    assert pq.read_schema(path).field(m.TRIAL_ID).type == pa.large_string()
    assert read_experiment(exp_dir).results[m.TRIAL_ID].tolist() == ["t"]
