"""Experiment tracking in MLflow: the `tracking` section and --mlflow, their errors, and a
search logged to a real `mlflow server` (SQLite backend, on 127.0.0.1), read back through
MLflow's own client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from test_tune import (  # tests/ is on sys.path (pytest prepend mode)
    SMOKE,
    _curve_epochs,
    _kill_group,
    _wait_for,
    rsearch,
    smoke_space,
    start_driver,
)

from rsearch import metrics as M
from rsearch import results
from rsearch.errors import UserError
from rsearch.space import parse_space
from rsearch.tune.tracking import EPOCH_LOGGED, EXPERIMENT_TAG, META_KEY, PARENT_TAG

SERVER_START_S = 90  # a cold `mlflow server` (imports, SQLite migrations) on 2 busy cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracked_space(uri: str | None = None) -> dict:
    """smoke.yaml with a tracking section."""
    space = yaml.safe_load(SMOKE.read_text())
    if uri is not None:
        space["tracking"] = {"mlflow": uri}
    return space


# --- the space's key and the flag: bad input is one line, before Ray, nothing written ---------


def test_tracking_section_is_parsed_and_saved_with_the_space():
    space = parse_space(tracked_space("http://127.0.0.1:5000"), source="smoke.yaml")
    assert space.tracking.mlflow == "http://127.0.0.1:5000"
    assert space.resolved()["tracking"] == {"mlflow": "http://127.0.0.1:5000"}
    assert parse_space(tracked_space(), source="smoke.yaml").tracking.mlflow is None
    # a resolved space (space.yaml) reads back the same
    assert parse_space(space.resolved()).tracking == space.tracking


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/prefix",
        "file:///srv/mlruns",
        "sqlite:////srv/mlflow.db",
        "postgresql+psycopg2://mlflow@db:5432/mlflow",
        "databricks",
        "databricks://my-profile",
    ],
)
def test_tracking_uris_of_every_mlflow_store_are_accepted(uri):
    assert parse_space(tracked_space(uri)).tracking.mlflow == uri


@pytest.mark.parametrize(
    "value,expected",
    [
        ("", "tracking.mlflow: expected an MLflow tracking URI"),
        (5000, "tracking.mlflow: expected an MLflow tracking URI"),
        ("127.0.0.1:5000", "tracking.mlflow: expected an MLflow tracking URI"),
        ("ftp://host/x", "tracking.mlflow: expected an MLflow tracking URI"),
        ("mlruns", "tracking.mlflow: expected an MLflow tracking URI"),
        ("http://", "tracking.mlflow: expected a host (and port) after http://"),
        ("http://host:port", "tracking.mlflow: expected an MLflow tracking URI"),
        ("http://host :5000", "tracking.mlflow: expected an MLflow tracking URI without spaces"),
        ("file:relative/mlruns", "tracking.mlflow: expected an MLflow tracking URI"),
        ("file://server/mlruns", "tracking.mlflow: expected an absolute folder after file://"),
        ("sqlite://", "tracking.mlflow: expected a database after sqlite://"),
        ("http://me:secret@host:5000", "tracking.mlflow: expected no password or token in"),
        ("http://host:5000?token=secret", "tracking.mlflow: expected no password or token in"),
        ("sqlite:///mlflow.db", "tracking.mlflow: expected an absolute database file"),
        ("sqlite:///", "tracking.mlflow: expected an absolute database file"),
        ("http://" + "h" * 1000, "tracking.mlflow: expected an MLflow tracking URI"),
    ],
)
def test_malformed_tracking_uri_names_the_key(value, expected):
    with pytest.raises(UserError) as caught:
        parse_space(tracked_space(value))
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "secret" not in message and len(message) < 600  # no credential, no unbounded value


def test_unknown_tracking_key_is_named():
    space = tracked_space()
    space["tracking"] = {"wandb": "x"}
    with pytest.raises(UserError, match=r"^tracking\.wandb: unknown key; expected one of mlflow"):
        parse_space(space)


def _tune_before_ray(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`rsearch tune ARGS` in a subprocess that fails the test if Ray was started."""
    code = (
        "import sys, ray; from rsearch.cli import main; c = main(sys.argv[1:]); "
        "assert not ray.is_initialized(), 'ray started'; sys.exit(c)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "tune", *args],
        capture_output=True,
        text=True,
        cwd=SMOKE.parents[1],
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _one_error_line(proc: subprocess.CompletedProcess, named: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"rsearch tune: error: {named}: "), lines[0]
    return lines[0]


def test_malformed_mlflow_flag_is_one_line_before_ray(tmp_path):
    store = tmp_path / "store"
    proc = _tune_before_ray("--space", str(SMOKE), "--storage", str(store), "--mlflow", "ftp://x")
    assert "expected an MLflow tracking URI" in _one_error_line(proc, "--mlflow")
    assert not store.exists()


def without_mlflow(tmp_path: Path) -> dict:
    """An environment whose Python processes cannot import mlflow: a sitecustomize marks it
    absent in sys.modules, as an interpreter without the extra would find it."""
    folder = tmp_path / "no-mlflow"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


def test_tracking_without_mlflow_installed_names_the_extra(tmp_path):
    env, store = without_mlflow(tmp_path), tmp_path / "store"
    flag = _tune_before_ray(
        "--space", str(SMOKE), "--storage", str(store), "--mlflow", "http://127.0.0.1:5000", env=env
    )
    assert "pip install 'rsearch[mlflow]'" in _one_error_line(flag, "--mlflow")
    space = tmp_path / "tracked.yaml"
    space.write_text(yaml.safe_dump(tracked_space("http://127.0.0.1:5000")))
    key = _tune_before_ray("--space", str(space), "--storage", str(store), env=env)
    assert "pip install 'rsearch[mlflow]'" in _one_error_line(key, "tracking.mlflow")
    assert not store.exists()


def test_unreachable_tracking_server_is_one_line_before_ray(tmp_path):
    store, uri = tmp_path / "store", f"http://127.0.0.1:{free_port()}"  # nobody listens there
    started = time.monotonic()
    proc = _tune_before_ray("--space", str(SMOKE), "--storage", str(store), "--mlflow", uri)
    line = _one_error_line(proc, "--mlflow")
    assert f"the MLflow tracking server at {uri} did not answer" in line
    assert "Connection refused" in line
    assert time.monotonic() - started < 120  # one try, no retries with back-off
    assert not store.exists()


def test_a_deleted_mlflow_experiment_is_one_line_before_ray(tmp_path):
    from mlflow import MlflowClient  # mlflow: the optional extra the test extra installs

    uri, store = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "store"  # a real store
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("smoke"))  # runs cannot go there
    proc = _tune_before_ray("--space", str(SMOKE), "--storage", str(store), "--mlflow", uri)
    assert "the MLflow experiment 'smoke'" in _one_error_line(proc, "--mlflow")
    assert "is deleted; restore it" in proc.stderr
    assert not store.exists()


# --- a search logged to a real tracking server ----------------------------------------------


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 at a free port, runs in SQLite, artifacts in tmp_path; its
    URI. Stopped with its whole process group (it runs uvicorn workers) at the end."""
    root = tmp_path / "mlflow"
    root.mkdir()
    port = free_port()
    log = open(root / "server.log", "w")  # closed in the teardown below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        # no job runner (a pool of huey consumers for MLflow's GenAI jobs): tracking needs none,
        # and on a 2-core machine it slows the server's start and stop by seconds
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,  # its own process group: the teardown stops every process of it
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(uri, server, root / "server.log")
        yield uri
    finally:
        _stop_group(server)
        log.close()


def _wait_until_healthy(uri: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited {server.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {SERVER_START_S} s: {log.read_text()[-2000:]}")


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after 15 s."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; its workers may not be
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return


def _runs(client, experiment: str) -> tuple[list, list]:
    """(the search's runs, the trial runs) of an MLflow experiment."""
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in found if PARENT_TAG not in r.data.tags]
    return parents, [r for r in found if PARENT_TAG in r.data.tags]


@pytest.mark.slow
def test_search_logs_one_nested_run_per_trial_and_a_resume_logs_on_in_them(tmp_path, mlflow_server):
    from mlflow import MlflowClient  # mlflow: the optional extra the test extra installs

    space = smoke_space(
        tmp_path,
        "tracked",
        epochs=[3],
        # two trials, trained side by side; width 0.5 (4.9M params) over the budget, never
        # trained; no latency to measure before the trials
        scaling={"depth": [26], "width": [0.25, 0.5], "resolution": [32]},
        regularization={"dropout": [0.0, 0.1]},
        constraints={"latency_ms": None, "max_params": 3.0e6},
        tracking={"mlflow": mlflow_server},
    )
    exp_dir = tmp_path / "tracked"
    client = MlflowClient(tracking_uri=mlflow_server)

    # interrupted after the first epoch: the trials' runs end KILLED, the search's too
    driver = start_driver(space, tmp_path)
    try:
        _wait_for(lambda: _curve_epochs(exp_dir) >= 1, 300, "the first epoch")
        os.kill(driver.pid, signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
    finally:
        _kill_group(driver)
    assert driver.returncode == 128 + signal.SIGINT, out[-3000:]
    recorded = json.loads((exp_dir / results.EXPERIMENT_FILE).read_text())[META_KEY]
    assert recorded["tracking_uri"] == mlflow_server
    parents, children = _runs(client, "tracked")
    assert [p.info.run_id for p in parents] == [recorded["run_id"]]
    assert parents[0].info.status == "KILLED" and parents[0].data.tags[M.STATUS] == "interrupted"
    assert "KILLED" in {c.info.status for c in children}  # a trial the resume continues
    trial_runs = {c.data.tags[M.TRIAL_ID]: c.info.run_id for c in children}

    # the resume logs under the same search run, each continued trial in its own run
    proc = rsearch("tune", "--resume", str(exp_dir), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = results.read_experiment(exp_dir)
    parents, children = _runs(client, "tracked")
    assert [p.info.run_id for p in parents] == [recorded["run_id"]]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags[M.STATUS] == "finished"
    assert parent.data.params["search.algorithm"] == "grid"
    # one run per trial (the one over the budget too, and none twice), nested under the search's
    assert len(children) == len(exp.results) == 3
    assert {c.data.tags[PARENT_TAG] for c in children} == {parent.info.run_id}
    assert {c.data.tags[M.TRIAL_ID]: c.info.run_id for c in children}.items() >= trial_runs.items()
    assert {c.data.tags[M.TRIAL_ID] for c in children} == set(exp.results[M.TRIAL_ID])
    rows = exp.results.set_index(M.TRIAL_ID)
    (over,) = [c for c in children if rows.loc[c.data.tags[M.TRIAL_ID], M.STATUS] == "infeasible"]
    assert over.data.tags[M.STATUS] == "infeasible" and over.info.status == "FINISHED"
    assert over.data.tags[M.FAILURE].startswith("params ") and over.data.params[M.WIDTH] == "0.5"
    assert over.data.metrics[M.PARAMS] > 3.0e6 and M.MINIVAL_TOP1 not in over.data.metrics
    for child in (c for c in children if c is not over):
        trial_id, tags, params = child.data.tags[M.TRIAL_ID], child.data.tags, child.data.params
        row = rows.loc[trial_id]
        assert tags[EXPERIMENT_TAG] == "tracked" and tags[M.STATUS] == row[M.STATUS] == "ok"
        assert child.info.status == "FINISHED" and child.info.run_name == trial_id
        # the trial's config as params, flattened, with its architecture's columns
        assert params[M.DEPTH] == "26" and params[M.WIDTH] == "0.25" and params["epochs"] == "3"
        assert float(params["regularization.dropout"]) == row[M.DROPOUT]
        assert params["recipe.batch_size"] == "64"
        # per-epoch metrics: one value per epoch (across the resume), the curves' values
        curve = exp.curves[exp.curves[M.TRIAL_ID] == trial_id].sort_values(M.EPOCH)
        for key in (M.MINIVAL_TOP1, M.TRAIN_LOSS, M.LR):
            history = client.get_metric_history(child.info.run_id, key)
            assert sorted(m.step for m in history) == [1, 2, 3], (key, history)
            by_step = {m.step: m.value for m in history}
            assert [by_step[e] for e in curve[M.EPOCH]] == pytest.approx(list(curve[key]))
        assert [m.step for m in client.get_metric_history(child.info.run_id, M.TEST_TOP1)] == [3]
        assert child.data.metrics[M.PARAMS] == row[M.PARAMS] and M.FLOPS in child.data.metrics
        assert set(EPOCH_LOGGED) <= set(child.data.metrics)


@pytest.mark.parametrize(
    ("started", "given", "expected"),
    [
        (None, "http://127.0.0.1:1", "--mlflow: this experiment was not tracked when it started"),
        ("http://127.0.0.1:1", "http://127.0.0.1:2", "--mlflow: this experiment is tracked at"),
    ],
)
def test_a_resume_logs_to_the_store_its_search_started_in(
    tmp_path, capsys, started, given, expected
):
    """Another store would lack the finished trials: refused; --no-mlflow resumes untracked."""
    exp_dir = tmp_path / "smoke"
    space = parse_space(tracked_space(started))
    results.create_experiment(exp_dir, {"status": "interrupted", "epochs": [1]}, space.resolved())
    code, _, err = run_cli(["tune", "--resume", str(exp_dir), "--mlflow", given], capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"rsearch tune: error: {expected}")
    argv = ["tune", "--resume", str(exp_dir), "--no-mlflow", "--dry-run", "--json"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    argv = ["tune", "--resume", str(exp_dir), "--mlflow", given, "--no-mlflow"]
    assert run_cli(argv, capsys)[0] == 2  # one or the other
