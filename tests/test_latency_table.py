"""Latency on the deployment target: the onnxruntime backend, latency tables written by
`rsearch cost --space S --latency --out T` on the target, and searches that read them
(`constraints.latency_ms.table`) instead of measuring."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import run_cli
from test_tune import SMOKE, rsearch, smoke_space  # tests/ is on sys.path (pytest prepend mode)

from rsearch import cli, results
from rsearch import metrics as M
from rsearch.architecture import Architecture
from rsearch.bounds import FieldError
from rsearch.cost import LatencyMethod, measure_latency
from rsearch.cost.table import read_table, row_key
from rsearch.models import model_config, network_config

SMOKE_LATENCY = yaml.safe_load(SMOKE.read_text())["constraints"]["latency_ms"]
ORT = {"backend": "onnxruntime"}
# A relative budget whose reference (48 px) is none of the space's architectures (32 px): the
# table must hold it too.
RELATIVE = {
    "max": None,
    "max_ratio": 4.0,
    "reference": {"depth": 26, "width": 0.25, "resolution": 48},
}
TINY = model_config(depth=26, width=0.25, num_classes=10)


def latency_space(tmp_path, name: str, **latency):
    """smoke.yaml with its latency section changed by `latency` (None drops a key)."""
    section = {k: v for k, v in {**SMOKE_LATENCY, **latency}.items() if v is not None}
    return smoke_space(tmp_path, name, constraints={"latency_ms": section})


@pytest.fixture(scope="module")
def ort_table(tmp_path_factory):
    """(table path, `rsearch cost --json` report, the space it measured): the smoke space's
    architectures and its relative budget's reference, timed with ONNX Runtime."""
    folder = tmp_path_factory.mktemp("table")
    space = latency_space(folder, "measured", **ORT, **RELATIVE)
    table = folder / "target.parquet"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["cost", "--space", str(space), "--latency", "--out", str(table), "--json"])
    assert code == 0
    return table, json.loads(out.getvalue()), space


# --- the onnxruntime backend ----------------------------------------------------------------


def test_onnxruntime_backend_reports_its_method_like_the_torch_backend():
    torch_figure = measure_latency(TINY, 32, LatencyMethod(threads=1, repeats=2))
    ort_figure = measure_latency(TINY, 32, LatencyMethod(threads=1, repeats=2, **ORT))
    assert set(torch_figure) <= set(ort_figure)  # every field the torch figure carries
    assert ort_figure["backend"] == "onnxruntime" and torch_figure["backend"] == "torch"
    assert ort_figure["onnxruntime"]  # its version, as torch's is recorded
    assert ort_figure["threads_used"] == 1 and ort_figure["clock"] == "thread_cpu"
    assert ort_figure[M.LATENCY_MS] > 0 and ort_figure[M.LATENCY_ROUNDS] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("dtype", "bfloat16"), ("compile", True), ("channels_last", True), ("device", "cuda")],
)
def test_onnxruntime_backend_refuses_torch_only_settings(field, value):
    with pytest.raises(FieldError) as err:
        LatencyMethod(**ORT, **{field: value})
    assert err.value.field == field and "backend onnxruntime" in str(err.value)


def test_torch_method_keys_are_those_cached_before_backends_existed():
    assert "backend" not in LatencyMethod().key()  # cached torch figures stay valid
    assert LatencyMethod(**ORT).key() == LatencyMethod().key() + ";backend=onnxruntime"


def test_cost_of_one_model_with_onnxruntime(capsys):
    argv = "cost --depth 26 --width 0.25 --resolution 32 --classes 10 --latency --threads 1"
    code, out, err = run_cli(
        [*argv.split(), "--repeats", "2", "--backend", "onnxruntime", "--no-cache", "--json"],
        capsys,
    )
    assert code == 0, err
    (figure,) = json.loads(out)["latency"]
    assert figure["backend"] == "onnxruntime" and figure[M.LATENCY_MS] > 0


def test_a_space_asking_for_onnxruntime_without_it_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    space = latency_space(tmp_path, "no_ort", **ORT)
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "rsearch tune: error: constraints.latency_ms.backend: onnxruntime needs ONNX Runtime, "
        "an optional extra: pip install 'rsearch[onnx]'"
    ]


# --- rsearch cost --space --out ---------------------------------------------------------------


def test_cost_space_writes_every_architecture_and_the_reference_with_its_method(ort_table):
    table_path, report, _ = ort_table
    table = read_table(table_path, "table")
    assert report["table"] == str(table_path)
    assert table.method.backend == "onnxruntime" and table.method.threads == 1
    assert table.method.repeats == SMOKE_LATENCY["repeats"]
    widths = [row[M.WIDTH] for row in report["architectures"]]
    assert widths == [0.25, 0.5, 2.0]
    assert len(table.figures) == 4  # three architectures and the 48-px reference
    reference = row_key(TINY, 48)
    assert reference in table.figures
    for row in report["architectures"]:
        cfg = model_config(depth=26, width=row[M.WIDTH], num_classes=10)
        figure = table.figures[row_key(cfg, 32)]
        assert figure[M.LATENCY_MS] == row[M.LATENCY_MS]
        assert row[M.LATENCY_RATIO] == pytest.approx(
            figure[M.LATENCY_MS] / table.figures[reference][M.LATENCY_MS]
        )
    assert table.device_name and "onnxruntime=" in table.software


def test_a_dry_run_on_a_table_reads_its_ratios_and_measures_nothing(ort_table, tmp_path, capsys):
    table_path, _, _ = ort_table
    table = read_table(table_path, "table")
    space = latency_space(tmp_path, "tabled", **ORT, **RELATIVE, table=str(table_path))
    code, out, err = run_cli(["tune", "--space", str(space), "--dry-run", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["latency_survey"]["measured"] == 0
    assert report["latency_survey"]["table"]["path"] == str(table_path)
    reference = table.figures[row_key(TINY, 48)][M.LATENCY_MS]
    for arch in report["architectures"]:
        cfg = model_config(depth=26, width=arch[M.WIDTH], num_classes=10)
        ratio = table.figures[row_key(cfg, 32)][M.LATENCY_MS] / reference
        assert arch[M.LATENCY_RATIO] == pytest.approx(ratio, rel=1e-12)
        assert arch["feasible"] == (ratio <= RELATIVE["max_ratio"])


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        ("--depth 26 --latency --out OUT", "--out: only with --space"),
        ("--space SMOKE --out OUT", "--out: needs --latency"),
        ("--space SMOKE --latency --batch 4", "--batch: not with --space"),
        ("--space SMOKE --resolution 64", "--resolution: not with --space"),
    ],
)
def test_cost_space_flags_are_checked(tmp_path, capsys, flags, line):
    values = {"SMOKE": str(SMOKE), "OUT": str(tmp_path / "t.parquet")}
    argv = ["cost", *(values.get(flag, flag) for flag in flags.split())]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    (message,) = err.strip().splitlines()
    assert message.startswith(f"rsearch cost: error: {line}"), message
    assert not (tmp_path / "t.parquet").exists()


def test_cost_space_never_replaces_a_table(ort_table, capsys):
    table_path, _, space = ort_table
    before = table_path.read_bytes()
    code, _, err = run_cli(
        ["cost", "--space", str(space), "--latency", "--out", str(table_path)], capsys
    )
    assert code == 2 and f"--out: {table_path} exists" in err
    assert table_path.read_bytes() == before


def test_cost_space_refuses_sampled_architectures(tmp_path, capsys):
    space = smoke_space(
        tmp_path,
        "sampled",
        scaling={"depth": [26], "width": {"kind": "uniform", "low": 0.25, "high": 1.0}},
    )
    code, _, err = run_cli(["cost", "--space", str(space)], capsys)
    assert code == 2 and "--space: its scaling dimensions are sampled ranges" in err


# --- a search on a table ----------------------------------------------------------------------


def test_a_table_missing_architectures_is_one_line_naming_them(ort_table, tmp_path, capsys):
    table_path, _, _ = ort_table
    space = latency_space(tmp_path, "wider", **ORT, **RELATIVE, table=str(table_path))
    doc = yaml.safe_load(space.read_text())
    doc["scaling"]["width"] = [0.25, 0.75, 1.0, 1.25, 1.5]
    space.write_text(yaml.safe_dump(doc))
    storage = tmp_path / "results"
    code, _, err = run_cli(["tune", "--space", str(space), "--storage", str(storage)], capsys)
    assert code == 2
    (line,) = [ln for ln in err.strip().splitlines() if "error" in ln]
    assert line.startswith(
        "rsearch tune: error: constraints.latency_ms.table: the table has no figure for 4 of the "
        "6 networks the search needs (resnetrs-26-w0.75 @32 px (10 classes, 3 channels); "
    )
    assert "and 1 more" in line
    assert f"rsearch cost --space {space} --latency --out NEW_TABLE.parquet" in line
    assert not storage.exists() or not any(storage.iterdir())  # nothing written


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"batch_size": 4}, "constraints.latency_ms.batch_size: expected 1 as the table's"),
        ({"backend": "torch"}, "constraints.latency_ms.backend: expected 'onnxruntime' as"),
        ({"table": "missing.parquet"}, "constraints.latency_ms.table: no latency table at"),
    ],
)
def test_a_table_is_checked_before_anything_runs(ort_table, tmp_path, capsys, change, expected):
    table_path, _, _ = ort_table
    space = latency_space(tmp_path, "checked", **{**ORT, "table": str(table_path), **change})
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"rsearch tune: error: {expected}"), line


def test_a_file_that_is_not_a_table_is_refused(tmp_path, capsys):
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"key": ["x"], "latency_ms": [1.0]}), other)
    space = latency_space(tmp_path, "foreign", table=str(other))
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    assert f"constraints.latency_ms.table: {other} is not a latency table" in err


@pytest.mark.slow
def test_a_search_on_a_table_measures_nothing(ort_table, tmp_path):
    """Every trial's latency is the table's figure, to the last bit; the report says where the
    figures come from."""
    table_path, _, _ = ort_table
    table = read_table(table_path, "table")
    space = latency_space(tmp_path, "deployed", **ORT, table=str(table_path))  # absolute, 10 ms
    storage = tmp_path / "results"
    proc = rsearch("tune", "--space", str(space), "--storage", str(storage))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "latency from the deployment table; 0 measured" in proc.stderr
    exp = results.read_experiment(str(storage / "deployed"))
    assert exp.meta["latency_survey"]["measured"] == 0
    assert exp.meta["latency_survey"]["table"]["path"] == str(table_path)
    assert exp.meta["latency_method"]["table"] == str(table_path)
    assert len(exp.results) == 3
    for _, row in exp.results.iterrows():
        cfg = model_config(depth=26, width=row[M.WIDTH], num_classes=10)
        expected = table.figures[row_key(cfg, 32)][M.LATENCY_MS]
        assert row[M.LATENCY_MS] == expected  # read, not measured: the same float
        over = expected > SMOKE_LATENCY["max"]
        assert (row[M.STATUS] == M.STATUS_INFEASIBLE) == over
    report = rsearch("dashboard", str(storage / "deployed"))
    assert report.returncode == 0, report.stderr[-2000:]
    page = (storage / "deployed" / "report.html").read_text()
    assert f"<b>latency table</b> {table_path}, measured on {table.device_name}" in page


def test_a_table_holds_the_networks_of_every_recipe_a_trial_can_train(tmp_path, capsys):
    """An additive study's baseline preset trains a ResNet without ResNet-D and SE: another
    network, with a latency of its own, which the table must hold for its trials."""
    space = latency_space(tmp_path, "ablation", **ORT)
    doc = yaml.safe_load(space.read_text())
    doc["scaling"]["width"] = [0.25]
    doc["recipe"]["preset"] = ["baseline", "+se", "rs"]
    space.write_text(yaml.safe_dump(doc))
    table_path = tmp_path / "ablation.parquet"
    code, _, err = run_cli(
        ["cost", "--space", str(space), "--latency", "--out", str(table_path)], capsys
    )
    assert code == 0, err
    figures = read_table(table_path, "table").figures
    arch = Architecture.of(26, 0.25, 32)
    # baseline: no ResNet-D, no SE; +se: SE without ResNet-D; rs: both (the full network)
    expected = {
        row_key(network_config(arch, num_classes=10, in_chans=3, resnet_d=d, se=se), 32)
        for d, se in ((False, False), (False, True), (True, True))
    }
    assert set(figures) == expected


# --- what a hostile review found ------------------------------------------------------------


def forged(tmp_path, table_path, name: str, meta=None, result=None):
    """A copy of a table with its metadata (a function of the dict) or a row's result changed."""
    table = pq.read_table(table_path)
    info = json.loads(table.schema.metadata[b"rsearch.latency_table"])
    if meta is not None:
        meta(info)
    if result is not None:
        results = [json.loads(r) for r in table.column("result").to_pylist()]
        result(results[0])
        column = table.schema.get_field_index("result")
        table = table.set_column(column, "result", pa.array([json.dumps(r) for r in results]))
    table = table.replace_schema_metadata({b"rsearch.latency_table": json.dumps(info)})
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("meta", "result", "reason"),
    [
        (lambda m: m.pop("device_name"), None, "KeyError"),
        (lambda m: m.update(measured_at="yesterday"), None, "measured_at: expected a unix time"),
        (lambda m: m.update(measured_at=1e300), None, "measured_at: expected a unix time"),
        (lambda m: m.update(device_name="x" * 5000), None, "device_name: expected a text"),
        (None, lambda r: r.update(latency_noise="high"), "latency_noise: expected a number"),
        (None, lambda r: r.update(latency_ms=True), "latency_ms: expected a number"),
    ],
)
def test_a_forged_table_is_one_line(ort_table, tmp_path, capsys, meta, result, reason):
    table_path, _, _ = ort_table
    bad = forged(tmp_path, table_path, "bad", meta, result)
    space = latency_space(tmp_path, "forged", **ORT, table=str(bad))
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "is not a latency table written by rsearch cost --out" in line and reason in line
    assert len(line) < 600


def test_a_table_measured_on_a_gpu_serves_a_search_of_cpu_trials(ort_table, tmp_path, capsys):
    """A deployment target may be a GPU the cluster lacks: nothing is measured on the trials'
    device, so the rule that latency is measured on their kind of device does not apply."""
    table_path, _, _ = ort_table

    def on_gpu(meta):
        meta["method"].update(device="cuda", backend="torch")

    gpu = forged(tmp_path, table_path, "gpu", meta=on_gpu)
    space = latency_space(tmp_path, "gpu_table", table=str(gpu), threads=1, repeats=5)
    doc = yaml.safe_load(space.read_text())
    for key in ("device", "backend"):
        doc["constraints"]["latency_ms"].pop(key, None)
    space.write_text(yaml.safe_dump(doc))
    code, out, err = run_cli(["tune", "--space", str(space), "--dry-run", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["latency_survey"]["measured"] == 0


def test_sampled_scaling_with_a_table_is_refused_as_the_space_is_read(ort_table, tmp_path, capsys):
    table_path, _, _ = ort_table
    space = latency_space(tmp_path, "sampled_table", **ORT, table=str(table_path))
    doc = yaml.safe_load(space.read_text())
    doc["scaling"]["width"] = {"kind": "uniform", "low": 0.25, "high": 0.5}
    doc["search"] = {"algorithm": "random", "num_samples": 2}
    space.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "rsearch tune: error: constraints.latency_ms.table: expected a space that lists its "
        "architectures (values or lists under scaling): a sampled range's networks are in no table"
    ]


def test_the_dry_run_checks_the_recipe_variants_against_the_table(ort_table, tmp_path, capsys):
    table_path, _, _ = ort_table  # measured for the full networks only
    space = latency_space(tmp_path, "ablation_table", **ORT, table=str(table_path))
    doc = yaml.safe_load(space.read_text())
    doc["scaling"]["width"] = [0.25]
    doc["recipe"]["preset"] = ["baseline", "rs"]
    space.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "has no figure for 1 of the 2 networks the search needs (resnet-26-w0.25 @32 px" in line
    assert f"rsearch cost --space {space} --latency --out NEW_TABLE.parquet" in line


def test_cost_space_measures_for_a_space_whose_table_is_still_to_be_made(tmp_path, capsys):
    """The space the cluster will run names the table this command makes: it is not read."""
    space = latency_space(tmp_path, "to_make", table=str(tmp_path / "target.parquet"))
    code, out, err = run_cli(["cost", "--space", str(space), "--json"], capsys)
    assert code == 0, err
    assert len(json.loads(out)["architectures"]) == 3


def test_cost_space_without_the_data_needs_the_class_count(tmp_path, capsys):
    """A deployment target rarely has the training data: --classes (and --in-chans) say what
    the search's data has; where the data is here, they must agree with it."""
    space = smoke_space(tmp_path, "elsewhere", data={"source": "imagefolder", "dir": "/nowhere"})
    doc = yaml.safe_load(space.read_text())
    for key in ("num_classes", "train_size", "test_size"):
        doc["data"].pop(key)
    space.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli(["cost", "--space", str(space)], capsys)
    assert code == 2 and err.startswith("rsearch cost: error: --classes: the space's data cannot")
    code, out, err = run_cli(["cost", "--space", str(space), "--classes", "3", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["classes"] == 3
    code, _, err = run_cli(["cost", "--space", str(SMOKE), "--classes", "12"], capsys)
    assert code == 2 and "--classes: the space's data has 10, got 12" in err


def test_cost_space_refuses_any_method_flag_given_even_at_its_default(capsys):
    for flags in (["--repeats", "10"], ["--warmup", "0"], ["--no-cache"], ["--width", "1.0"]):
        code, _, err = run_cli(["cost", "--space", str(SMOKE), "--latency", *flags], capsys)
        assert code == 2 and f"{flags[0]}: not with --space" in err, flags


def test_a_table_is_never_written_over_a_file_that_appeared_while_measuring(ort_table, tmp_path):
    from rsearch.cost.table import write_table
    from rsearch.errors import UserError

    table = read_table(ort_table[0], "table")
    entries = [(None, TINY, 32, next(iter(table.figures.values())))]
    precious = tmp_path / "precious.parquet"
    precious.write_text("a user's file")
    with pytest.raises(UserError, match="appeared while measuring"):
        write_table(precious, entries, table.method)
    assert precious.read_text() == "a user's file"
    assert [p.name for p in tmp_path.iterdir()] == ["precious.parquet"]  # no temporary left


def test_over_long_paths_are_one_line(tmp_path, capsys):
    long = "/tmp/" + "x" * 5000 + ".parquet"
    space = latency_space(tmp_path, "long", table=long)
    code, _, err = run_cli(["tune", "--space", str(space), "--dry-run"], capsys)
    assert code == 2 and "constraints.latency_ms.table: cannot read" in err
    code, _, err = run_cli(["cost", "--space", str(SMOKE), "--latency", "--out", long], capsys)
    assert code == 2 and "--out: cannot use" in err
