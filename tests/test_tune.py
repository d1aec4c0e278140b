"""`rsearch tune` end to end on local Ray: results, Pareto flags, infeasible configs, faults,
resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import cli_outcomes, run_cli

from rsearch import metrics as M
from rsearch import results
from rsearch.analysis import confirmation_summary
from rsearch.cli import main
from rsearch.pareto import accuracy_latency_mask

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke.yaml"


def smoke_space(tmp_path: Path, name: str = "smoke", **changes) -> Path:
    """smoke.yaml with `changes` applied at top level (dicts merged one level deep)."""
    space = yaml.safe_load(SMOKE.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(space.get(key), dict):
            space[key].update(value)
        else:
            space[key] = value
    space["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def widths(*widths: float) -> dict:
    """A space's `scaling`: depth 26 at 32 px, in these width multipliers."""
    return {"depth": [26], "width": list(widths), "resolution": [32]}


def rsearch(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rsearch", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
        **kwargs,
    )


def run_tune(space: Path, storage: Path, env=None) -> subprocess.CompletedProcess:
    """`rsearch tune --space SPACE --storage STORAGE --quiet` to the end, in a subprocess."""
    return rsearch("tune", "--space", str(space), "--storage", str(storage), "--quiet", env=env)


def assert_pareto_flags_correct(frame):
    """No flagged point is dominated; every non-dominated point is flagged (brute force)."""
    for _, group in frame.groupby(M.EPOCHS):
        ok = group[group[M.STATUS] == M.STATUS_OK]
        for i, row in ok.iterrows():
            dominated = any(
                (o[M.MINIVAL_TOP1] >= row[M.MINIVAL_TOP1] and o[M.LATENCY_MS] <= row[M.LATENCY_MS])
                and (o[M.MINIVAL_TOP1] > row[M.MINIVAL_TOP1] or o[M.LATENCY_MS] < row[M.LATENCY_MS])
                for j, o in ok.iterrows()
                if j != i
            )
            assert bool(row[M.PARETO]) == (not dominated), row.to_dict()
        assert not group[group[M.STATUS] != M.STATUS_OK][M.PARETO].any()


@pytest.mark.slow
def test_smoke_search_end_to_end(tmp_path, ray_local):
    assert main(["tune", "--space", str(SMOKE), "--storage", str(tmp_path), "--quiet"]) == 0
    exp = results.read_experiment(tmp_path / "smoke")
    frame = exp.results
    assert len(frame) == 3 and exp.meta["status"] == "finished"
    infeasible = frame[frame[M.STATUS] == M.STATUS_INFEASIBLE]
    assert list(infeasible[M.WIDTH]) == [2.0]  # ~30 ms against a 10 ms budget
    assert (infeasible[M.TRAIN_SECONDS] == 0).all() and infeasible[M.LATENCY_MS].iloc[0] > 10
    ok = frame[frame[M.STATUS] == M.STATUS_OK]
    assert len(ok) == 2 and ok[M.MINIVAL_TOP1].notna().all() and (ok[M.TRAIN_SECONDS] > 0).all()
    assert ok[M.PARAMS].gt(0).all() and ok[M.FLOPS].gt(0).all() and ok[M.TEST_TOP1].notna().all()
    assert_pareto_flags_correct(frame)
    assert set(exp.curves[M.TRIAL_ID]) == set(ok[M.TRIAL_ID])
    assert (tmp_path / "smoke" / "space.yaml").exists()
    # every latency figure carries its noise; every accuracy its standard error
    assert frame[M.LATENCY_NOISE].notna().all() and frame[M.LATENCY_RUNS].gt(0).all()
    assert (frame[M.LATENCY_BORDERLINE] == False).all()  # noqa: E712  (10 ms is far from every figure)
    assert (frame[M.MINIVAL_SIZE] == 30).all() and ok[M.MINIVAL_TOP1_SE].gt(0).all()
    assert (
        exp.meta["latency_survey"]["cache"] == "empty"
        and exp.meta["latency_survey"]["measured"] == 3
    )
    # where the accuracies repeat bit for bit: this CPU, this torch, the trials' one thread
    environment = exp.meta["environment"]
    assert environment["torch"] == torch.__version__ and environment["torch_threads"] == 1
    assert environment["cpu"] and environment["cpu_capability"]


@pytest.mark.slow
def test_confirmation_reruns_the_best_front_member_with_the_other_seeds(tmp_path, ray_local):
    space = smoke_space(
        tmp_path,
        "confirm",
        scaling=widths(0.25, 0.5),
        search={"confirm": {"top": 1, "seeds": [0, 1]}},
    )
    assert main(["tune", "--space", str(space), "--storage", str(tmp_path), "--quiet"]) == 0
    exp = results.read_experiment(tmp_path / "confirm")
    frame = exp.results
    reruns = frame[frame[M.CONFIRMS].notna()]
    originals = frame[frame[M.CONFIRMS].isna()]
    # seed 0 is the original's own: one rerun, seed 1
    assert len(originals) == 2 and len(reruns) == 1
    rerun = reruns.iloc[0]
    best = originals[originals[M.PARETO] == True].sort_values(M.MINIVAL_TOP1).iloc[-1]  # noqa: E712
    assert (
        rerun[M.CONFIRMS] == best[M.TRIAL_ID]
        and rerun[M.SEED] == 1
        and rerun[M.STATUS] == M.STATUS_OK
    )
    assert (rerun[M.DEPTH], rerun[M.WIDTH]) == (best[M.DEPTH], best[M.WIDTH])
    assert not rerun[M.PARETO]
    assert exp.meta["confirm"] == {"top": 1, "seeds": [0, 1]}
    summary = confirmation_summary(frame)
    assert len(summary["configurations"]) == 1 and summary["configurations"][0]["n"] == 2


def test_dry_run_json_lists_every_architecture_with_its_latency_and_feasibility(tmp_path):
    relative = {
        "max_ratio": 3.0,
        "reference": {"depth": 26, "width": 0.25, "resolution": 32},
        "device": "cpu",
        "threads": 1,
        "repeats": 3,
    }
    space = smoke_space(tmp_path, "rel", constraints={"latency_ms": relative})
    proc = rsearch(
        "tune",
        "--space",
        str(space),
        "--storage",
        str(tmp_path / "store"),
        "--dry-run",
        "--measure-latency",  # a dry run measures latency only when asked
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # one JSON object, nothing else on stdout
    archs = {a["width"]: a for a in report["architectures"]}
    assert set(archs) == {0.25, 0.5, 2.0}
    for a in archs.values():
        assert {"depth", "width", "resolution", "latency_ms", "latency_noise", "feasible"} <= set(a)
        assert a["latency_ms"] > 0 and a["latency_noise"] >= 0
    assert (
        archs[0.25]["latency_ratio"] == 1.0 and archs[0.25]["feasible"] and archs[0.5]["feasible"]
    )
    assert not archs[2.0]["feasible"] and archs[2.0]["latency_ratio"] > 3.0
    assert report["feasible"] == 2 and report["latency_survey"]["cache"] == "off"
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_a_diverging_trial_is_recorded_as_failed_and_the_others_finish(
    tmp_path, diverging_pythonpath
):
    space = smoke_space(tmp_path, "nan")
    # The divergence comes from outside: every process of the search starts with the test's
    # sitecustomize, which makes the loss of the width-0.5 models NaN.
    proc = run_tune(space, tmp_path, env={"PYTHONPATH": diverging_pythonpath(0.5)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    frame = results.read_experiment(tmp_path / "nan").results.set_index(M.WIDTH)
    assert frame.loc[0.5, M.STATUS] == M.STATUS_FAILED and "diverged" in frame.loc[0.5, M.FAILURE]
    assert (
        frame.loc[0.25, M.STATUS] == M.STATUS_OK and frame.loc[2.0, M.STATUS] == M.STATUS_INFEASIBLE
    )
    assert not frame[M.PARETO].loc[0.5]


def _trial_pids() -> list[int]:
    """Processes running a Tune function trial (Ray names them after the trainable's actor)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::ImplicitFunc"):
                pids.append(int(entry.name))
    return pids


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _ok_rows(exp_dir: Path) -> int:
    try:
        frame = results.read_experiment(exp_dir, allow_empty=True).results
    except Exception:
        return 0
    return int((frame[M.STATUS] == M.STATUS_OK).sum()) if len(frame) else 0


def _curve_epochs(exp_dir: Path) -> int:
    try:
        return len(results.read_experiment(exp_dir, allow_empty=True).curves)
    except Exception:
        return 0


@pytest.mark.slow
def test_killed_trial_worker_resumes_from_its_checkpoint(tmp_path):
    space = smoke_space(tmp_path, "killtrial", epochs=[3], scaling=widths(0.25))
    exp_dir = tmp_path / "killtrial"
    driver = start_driver(space, tmp_path)
    try:
        _wait_for(lambda: _curve_epochs(exp_dir) >= 1, 300, "the first epoch")
        victims = _trial_pids()
        assert victims, "no trial process found"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        out, _ = driver.communicate(timeout=400)
        assert driver.returncode == 0, out[-3000:]
    finally:
        _kill_group(driver)
    exp = results.read_experiment(exp_dir)
    row = exp.results.iloc[0]
    assert row[M.STATUS] == M.STATUS_OK and row[M.EPOCHS_DONE] == 3
    assert sorted(exp.curves[M.EPOCH]) == [1, 2, 3]  # each epoch once: resumed, not restarted
    result_lines = list(exp_dir.glob("tune/regime_3/*/result.json"))[0].read_text().splitlines()
    assert len(result_lines) >= 3
    restored = [json.loads(line).get("iterations_since_restore") for line in result_lines]
    assert 1 in restored[1:], restored  # a restore happened after the first report


def spawn_rsearch(*args: str, merge_output: bool = True) -> subprocess.Popen:
    """`rsearch ARGS` in its own session, so the test can kill it with the Ray it starts."""
    return subprocess.Popen(
        [sys.executable, "-m", "rsearch", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def start_driver(space: Path, storage: Path, merge_output: bool = True) -> subprocess.Popen:
    return spawn_rsearch(
        "tune",
        "--space",
        str(space),
        "--storage",
        str(storage),
        "--quiet",
        merge_output=merge_output,
    )


def kill_search_when(space: Path, storage: Path, until, what: str) -> None:
    """Run `rsearch tune` on `space` until `until()` holds, then SIGKILL the driver and the
    local Ray it started, at once: no graceful save of anything."""
    driver = start_driver(space, storage)
    try:
        _wait_for(until, 300, what)
    finally:
        _kill_group(driver)


def _kill_group(proc: subprocess.Popen):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grid", "hyperopt"])
def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path, algorithm):
    # grid: the jobs drawn when it started; hyperopt: unfinished trials continue, then a TPE
    # that has seen the finished ones samples the rest.
    space = smoke_space(
        tmp_path,
        "killdriver",
        epochs=[2],
        scaling=widths(0.25, 0.375, 0.5),
        search={
            "max_concurrent": 1,
            "algorithm": algorithm,
            "num_samples": 1 if algorithm == "grid" else 3,
        },
    )
    exp_dir = tmp_path / "killdriver"
    kill_search_when(space, tmp_path, lambda: _ok_rows(exp_dir) >= 1, "the first finished trial")
    before = results.read_experiment(exp_dir, allow_empty=True)
    finished = set(before.results[before.results[M.STATUS] == M.STATUS_OK][M.TRIAL_ID])
    finished_curves = before.curves[before.curves[M.TRIAL_ID].isin(finished)]
    proc = rsearch("tune", "--resume", "killdriver", "--storage", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = results.read_experiment(exp_dir)
    assert exp.meta["planned_trials"] == 3 and len(exp.results) == 3
    assert (exp.results[M.STATUS] == M.STATUS_OK).all()
    # Finished trials were not re-run: their curves are exactly as before the kill.
    after = exp.curves[exp.curves[M.TRIAL_ID].isin(finished)].sort_values([M.TRIAL_ID, M.EPOCH])
    expected = finished_curves.sort_values([M.TRIAL_ID, M.EPOCH])
    assert np.allclose(after[M.EPOCH_SECONDS].to_numpy(), expected[M.EPOCH_SECONDS].to_numpy())
    assert len(exp.curves) == 3 * 2


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_whole_search_and_marks_it_interrupted(tmp_path, signum):
    # Before: Tune caught SIGINT and returned, the driver went on with the next regime, exited 0
    # and wrote "finished" while trials were still running.
    space = smoke_space(tmp_path, "stop", epochs=[3, 4], scaling=widths(0.25, 0.5))
    exp_dir = tmp_path / "stop"
    driver = start_driver(space, tmp_path)
    try:
        _wait_for(lambda: _curve_epochs(exp_dir) >= 1, 300, "the first reported epoch of regime 3")
        os.kill(driver.pid, signum)  # the driver only, as `kill` or a job manager would
        out, _ = driver.communicate(timeout=120)
    finally:
        _kill_group(driver)
    assert driver.returncode == 128 + signum, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert "interrupted" in last and f"rsearch tune --resume {exp_dir}" in last, last
    exp = results.read_experiment(exp_dir, allow_empty=True)
    assert exp.meta["status"] == "interrupted"
    assert not (exp_dir / "tune" / "regime_4").exists()  # no further regime started
    assert set(exp.results[M.EPOCHS]) == {3}
    if signum == signal.SIGINT:
        return  # the resume that follows is the same whichever signal stopped the search
    # The interrupted experiment resumes to exactly the planned trials, marked running meanwhile.
    resumed = spawn_rsearch("tune", "--resume", str(exp_dir), "--quiet", merge_output=False)
    try:
        _wait_for(
            lambda: results.read_experiment(exp_dir, allow_empty=True).meta["status"] == "running",
            120,
            "the resumed experiment marked running",
        )
        _, err = resumed.communicate(timeout=600)
    finally:
        _kill_group(resumed)
    assert resumed.returncode == 0, err[-3000:]
    exp = results.read_experiment(exp_dir)
    assert exp.meta["status"] == "finished" and len(exp.results) == 4
    assert (exp.results[M.STATUS] == M.STATUS_OK).all()


def test_dashboard_watch_stops_on_an_interrupted_experiment(tmp_path, capsys):
    exp_dir = tmp_path / "exp"
    results.create_experiment(exp_dir, {"status": "interrupted", "epochs": [1]}, {})
    results.write_results(
        exp_dir,
        [
            {
                M.TRIAL_ID: "t",
                M.STATUS: M.STATUS_RUNNING,
                M.DEPTH: 26,
                M.WIDTH: 0.25,
                M.RESOLUTION: 32,
                M.EPOCHS: 1,
            }
        ],
    )
    # returns at once, no second pass
    assert main(["dashboard", str(exp_dir), "--watch", "3600"]) == 0
    assert capsys.readouterr().out.count("report.html") == 1


BAD_SPACES = [
    ({"scaling": {"width": [0.25, -0.5]}}, "scaling.width[1]"),
    ({"search": {"algorithm": "bayes"}}, "search.algorithm"),
    (
        {"regularization": {"dropout": {"kind": "lognormal", "low": 0, "high": 1}}},
        "regularization.dropout",
    ),
    (
        {"regularization": {"weight_decay": {"kind": "loguniform", "low": 0, "high": 1e-3}}},
        "regularization.weight_decay",
    ),
    ({"epochs": []}, "epochs"),
    ({"surprise": 1}, "surprise"),
    ({"scaling": {"resolution": [16]}}, "scaling.resolution"),
    ({"resources": {"workers": 3}}, "batch_size"),
    # a relative budget whose reference is no buildable architecture; confirmation runs
    (
        {
            "constraints": {
                "latency_ms": {
                    "max_ratio": 1.5,
                    "reference": {"depth": 10, "width": 0.25, "resolution": 32},
                }
            }
        },
        "constraints.latency_ms.reference.depth: not a buildable architecture",
    ),
    (
        {
            "constraints": {
                "latency_ms": {
                    "max_ratio": 1.5,
                    "reference": {"depth": 26, "width": 0.25, "resolution": 8},
                }
            }
        },
        "constraints.latency_ms.reference.resolution: not a buildable architecture",
    ),
    (
        {"search": {"confirm": {"top": 0, "seeds": [1]}}},
        "search.confirm.top: expected an integer in [1, 100]",
    ),
    (
        {"search": {"confirm": {"top": 1, "seeds": []}}},
        "search.confirm.seeds: expected a non-empty list",
    ),
]


@pytest.fixture(scope="module")
def bad_space_outcomes(tmp_path_factory):
    """Each of BAD_SPACES through `rsearch tune`, all in one fresh process: (outcome, storage)."""
    folder = tmp_path_factory.mktemp("bad_spaces")
    runs = []
    for i, (change, _) in enumerate(BAD_SPACES):
        case = folder / str(i)
        case.mkdir()
        space = smoke_space(case, "bad", **change)
        runs.append((["tune", "--space", str(space), "--storage", str(case / "store")], case))
    outcomes = cli_outcomes([argv for argv, _ in runs], cwd=ROOT)
    return [(outcome, case / "store") for outcome, (_, case) in zip(outcomes, runs)]


@pytest.mark.parametrize("index", range(len(BAD_SPACES)), ids=[n for _, n in BAD_SPACES])
def test_malformed_space_exits_2_before_ray_and_writes_nothing(bad_space_outcomes, index):
    outcome, storage = bad_space_outcomes[index]
    lines = outcome["stderr"].strip().splitlines()
    assert outcome["code"] == 2, outcome["stderr"]
    assert len(lines) == 1 and BAD_SPACES[index][1] in lines[0], lines
    assert not outcome["ray_started"] and not storage.exists()


def test_missing_data_is_named_by_its_space_key_not_a_train_flag(tmp_path):
    # the data checks are `rsearch train`'s, which names --data-dir
    space = yaml.safe_load(smoke_space(tmp_path, "nodata").read_text())
    space["data"] = {"source": "imagefolder", "dir": str(tmp_path / "absent")}
    path = tmp_path / "nodata.yaml"
    path.write_text(yaml.safe_dump(space))
    proc = rsearch("tune", "--space", str(path), "--storage", str(tmp_path / "store"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"rsearch tune: error: data.dir: {tmp_path / 'absent'} does not")
    assert not (tmp_path / "store").exists()


def test_resume_takes_the_experiment_folder_wherever_its_space_stored_it(tmp_path):
    space = yaml.safe_load(smoke_space(tmp_path, "elsewhere").read_text())
    space["storage"] = {"path": str(tmp_path / "own-root")}  # not the default root, no --storage
    exp_dir = tmp_path / "own-root" / "elsewhere"
    results.create_experiment(exp_dir, {"name": "elsewhere"}, space)
    by_path = rsearch("tune", "--resume", str(exp_dir), "--dry-run")
    assert by_path.returncode == 0, by_path.stderr
    assert f"results would go to {exp_dir}" in by_path.stdout
    by_name = rsearch(
        "tune", "--resume", "elsewhere", "--storage", str(tmp_path / "own-root"), "--dry-run"
    )
    assert by_name.returncode == 0 and f"results would go to {exp_dir}" in by_name.stdout


def test_resume_of_a_missing_experiment_is_one_line_naming_where_it_looked(tmp_path, capsys):
    argv = ["tune", "--resume", "nope", "--storage", str(tmp_path), "--dry-run"]
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert (
        "error: --resume: " in lines[0]
        and str(tmp_path / "nope") in lines[0]
        and "folder or URI" in lines[0]
    )


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--name", "../escape"], "--name"),
        (["--storage", "ftp://host/x"], "--storage"),
        (["--storage", "s3://"], "--storage"),
    ],
)
def test_bad_tune_flags_are_one_line_before_anything_starts(flags, named, tmp_path, capsys):
    code, _, err = run_cli(["tune", "--space", str(SMOKE), *flags, "--dry-run"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"error: {named}: " in lines[0], err


def test_yaml_object_tag_never_executes(tmp_path):
    marker = tmp_path / "pwned"
    space = tmp_path / "evil.yaml"
    space.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = rsearch("tune", "--space", str(space), "--dry-run")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    store = str(tmp_path / "store")
    proc = rsearch(
        "tune", "--space", str(SMOKE), "--storage", store, "--dry-run", "--measure-latency"
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "trials per regime: 3 (configs over a budget are recorded, never trained)" in proc.stdout
        and "architectures: 3" in proc.stdout
    )
    assert "budget 10 ms: 2 of 3 architectures feasible" in proc.stdout
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_two_worker_trials_run_on_ray_train_inside_tune_and_a_divergence_is_not_retried(
    tmp_path, diverging_pythonpath
):
    space = smoke_space(
        tmp_path,
        "twoworkers",
        scaling=widths(0.25, 0.5),
        resources={"workers": 2, "cpus_per_worker": 0.5},
        search={"max_concurrent": 1},
    )
    # The divergence comes from outside: every process of the search starts with the test's
    # sitecustomize, which makes the loss of the width-0.5 models NaN.
    proc = run_tune(space, tmp_path, env={"PYTHONPATH": diverging_pythonpath(0.5)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = results.read_experiment(tmp_path / "twoworkers")
    frame = exp.results.set_index(M.WIDTH)
    assert frame.loc[0.25, M.STATUS] == M.STATUS_OK and frame.loc[0.25, M.MINIVAL_TOP1] > 0
    assert len(exp.curves) == 1
    # the trial ran a Ray Train run named after the trial id
    assert (tmp_path / "twoworkers" / "train" / frame.loc[0.25, M.TRIAL_ID]).is_dir()
    # A diverging worker group is the trial's result (its reason recorded), not a Ray
    # WorkerGroupError that Ray Train and Tune would restart, to diverge again, 3 x 3 times.
    assert frame.loc[0.5, M.STATUS] == M.STATUS_FAILED
    assert frame.loc[0.5, M.FAILURE].startswith("diverged: training loss is nan"), frame.loc[
        0.5, M.FAILURE
    ]
    assert "WorkerGroupError" not in proc.stderr


def test_a_trial_larger_than_the_local_machine_is_refused(tmp_path):
    space = smoke_space(tmp_path, "toobig", resources={"workers": 4, "cpus_per_worker": 1})
    proc = rsearch("tune", "--space", str(space), "--storage", str(tmp_path / "store"), "--quiet")
    assert proc.returncode == 2 and "resources:" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "store" / "toobig").exists()


def _sampled_search(tmp_path, name: str, epochs: int, **search):
    """A model-based search of 4 trials over the smoke architectures and a sampled dropout, to
    the end: its results, after the checks every such search passes."""
    search = {"num_samples": 4, "max_concurrent": 2, **search}
    dropout = {"kind": "uniform", "low": 0.0, "high": 0.3}
    regularization = {M.DROPOUT: dropout, M.RANDAUGMENT_MAGNITUDE: 5}
    space = smoke_space(
        tmp_path, name, epochs=[epochs], search=search, regularization=regularization
    )
    proc = run_tune(space, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = results.read_experiment(tmp_path / name)
    frame = exp.results
    assert len(frame) == 4 and exp.meta["planned_trials"] == 4
    infeasible = frame[frame[M.STATUS] == M.STATUS_INFEASIBLE]
    assert (infeasible[M.WIDTH] == 2.0).all() and (infeasible[M.TRAIN_SECONDS] == 0).all()
    assert frame[M.LATENCY_MS].notna().all()  # every trial reports it (Optuna's 2nd objective)
    assert_pareto_flags_correct(frame)
    return frame


@pytest.mark.slow
def test_hyperopt_with_asha_records_sampled_and_stopped_trials(tmp_path):
    asha = {"kind": "asha", "grace_period": 1, "reduction_factor": 2}
    frame = _sampled_search(tmp_path, "tpe", 2, algorithm="hyperopt", scheduler=asha)
    assert set(frame[M.STATUS]) <= {M.STATUS_OK, M.STATUS_STOPPED, M.STATUS_INFEASIBLE}
    assert frame[M.DROPOUT].nunique() > 1  # sampled, not fixed
    stopped = frame[frame[M.STATUS] == M.STATUS_STOPPED]
    assert (stopped[M.EPOCHS_DONE] < 2).all() and not stopped[M.PARETO].any()


@pytest.mark.slow
def test_optuna_multi_objective_tpe_samples_every_trial_on_accuracy_and_latency(tmp_path):
    frame = _sampled_search(tmp_path, "motpe", 1, algorithm="optuna")
    assert set(frame[M.STATUS]) <= {M.STATUS_OK, M.STATUS_INFEASIBLE}
    assert frame[M.DROPOUT].nunique() == 4  # sampled by Optuna, not fixed


@pytest.mark.slow
def test_pareto_asha_stops_trials_behind_the_front_at_its_rung(tmp_path):
    # Quickstart-sized data, so that one epoch already separates the models by more than the
    # minival noise (400 images: 0.025): width 0.25 reaches ~0.2, width 0.5 ~0.1 (measured).
    space = smoke_space(
        tmp_path,
        "pasha",
        epochs=[2],
        data={"train_size": 4000, "minival_fraction": 0.1, "crop_min_scale": 0.35},
        scaling=widths(0.25, 0.5),
        regularization={"dropout": [0.0, 0.1], "randaugment_magnitude": 5},
        recipe={"preset": "rs", "batch_size": 64, "base_lr": 0.4},
        search={
            "max_concurrent": 2,
            "scheduler": {"kind": "pareto_asha", "grace_fraction": 0.5, "reduction_factor": 2},
        },
    )
    proc = run_tune(space, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = results.read_experiment(tmp_path / "pasha")
    frame = exp.results
    assert len(frame) == 4 and set(frame[M.STATUS]) <= {M.STATUS_OK, M.STATUS_STOPPED}
    # The rule, checked on the rung's final picture: a trial on the front of every rung-1
    # result was on the front when it reached the rung, so it went on.
    rung = exp.curves[exp.curves[M.EPOCH] == 1].merge(
        frame[[M.TRIAL_ID, M.STATUS, M.LATENCY_MS]], on=M.TRIAL_ID
    )
    on_front = accuracy_latency_mask(rung[M.MINIVAL_TOP1], rung[M.LATENCY_MS])
    assert (rung[on_front][M.STATUS] == M.STATUS_OK).all()
    stopped = frame[frame[M.STATUS] == M.STATUS_STOPPED]
    assert len(stopped) >= 1 and (stopped[M.EPOCHS_DONE] == 1).all() and not stopped[M.PARETO].any()
    assert (frame[frame[M.STATUS] == M.STATUS_OK][M.EPOCHS_DONE] == 2).all()
    assert_pareto_flags_correct(frame)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--storage", "{file}"], "--storage: {file} is a file; expected a folder"),
        (
            ["--storage", "{file}/sub"],
            "--storage: {file}/sub lies under the file {file}; expected a folder",
        ),
        (["--storage", ""], "--storage: expected a local path or a URI"),
        (["--name", ""], "--name: expected a name matching"),
    ],
)
def test_unusable_storage_and_empty_flags_are_refused_up_front(tmp_path, flags, message, capsys):
    # Before: --storage on a file passed the dry run, and the real run failed after Ray started;
    # --name "" and --storage "" were silently ignored.
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    flags = [f.format(file=afile) for f in flags]
    code, _, err = run_cli(["tune", "--space", str(SMOKE), *flags, "--dry-run"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert message.format(file=afile) in lines[0]


@pytest.mark.slow
def test_a_trial_too_large_for_memory_fails_before_allocating_and_the_others_train(tmp_path):
    # Before: a 1024 px trial in batches of 512 (~190 GiB by the estimate) went to the OOM killer.
    space = smoke_space(
        tmp_path,
        "memory",
        constraints={"latency_ms": None},
        recipe={"batch_size": 512},
        scaling={"depth": [26], "width": [0.25], "resolution": [32, 1024]},
        search={"max_concurrent": 1},
    )
    proc = run_tune(space, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    frame = results.read_experiment(tmp_path / "memory").results.set_index(M.RESOLUTION)
    assert frame.loc[32, M.STATUS] == M.STATUS_OK
    assert frame.loc[1024, M.STATUS] == M.STATUS_FAILED
    assert frame.loc[1024, M.FAILURE].startswith(
        "out of memory (estimated before training): recipe.batch_size: "
        "training depth 26 width 0.25 at 1024 px"
    ), frame.loc[1024, M.FAILURE]
    assert not (exp_curves := results.read_experiment(tmp_path / "memory").curves).empty
    assert set(exp_curves[M.RESOLUTION]) == {32}  # the large trial trained no epoch


@pytest.mark.slow
def test_two_families_on_one_front_end_to_end(tmp_path, ray_local, capsys):
    """ResNet-RS and EfficientNet in one grid on local Ray: each trains with its own recipe,
    the store names the family, one front spans both, and the analysis compares them."""
    space = smoke_space(tmp_path, "families")
    raw = yaml.safe_load(space.read_text())
    raw["scaling"] = {
        "family": ["resnetrs", "efficientnet"],
        "resnetrs": {"depth": 26, "width": 0.25, "resolution": 32},
        "efficientnet": {"depth_mult": [0.5, 1.0], "width_mult": 0.25, "resolution": 32},
    }
    del raw["recipe"]["preset"]  # each family's own recipe
    space.write_text(yaml.safe_dump(raw))
    assert main(["tune", "--space", str(space), "--storage", str(tmp_path), "--quiet"]) == 0
    frame = results.read_experiment(tmp_path / "families").results
    assert (frame[M.STATUS] == M.STATUS_OK).all() and len(frame) == 3
    by_family = frame.set_index(M.MODEL)
    # trial ids follow the grid's order (trials finish in any order)
    in_grid_order = frame.sort_values(M.TRIAL_ID)[M.FAMILY]
    assert list(in_grid_order) == ["resnetrs", "efficientnet", "efficientnet"]
    effnet = by_family.loc["efficientnet-w0.25-d0.5"]
    assert (
        effnet[M.RECIPE] == "efficientnet" and by_family.loc["resnetrs-26-w0.25"][M.RECIPE] == "rs"
    )
    # an EfficientNet's depth is its block count (an integer column), its multiplier beside it
    assert effnet[M.DEPTH] == 10 and effnet[M.DEPTH_MULT] == 0.5
    assert by_family.loc["efficientnet-w0.25-d1"][M.DEPTH] == 16
    assert np.isnan(by_family.loc["resnetrs-26-w0.25"][M.DEPTH_MULT])
    assert_pareto_flags_correct(frame)  # one front over both families
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "families"), "--json"]) == 0
    regime = json.loads(capsys.readouterr().out)["regimes"][0]
    compared = regime["model_families"]
    assert compared["families"] == ["resnetrs", "efficientnet"]
    comparison = compared["comparison"]  # a ratio, or the reason there is none
    assert (comparison["median_ratio"] is None) == (comparison["reason"] is not None)
