"""`rsearch tune --resume` runs nothing from the experiment folder: it resumes from rsearch's own
records (plans/*.json, results.parquet, weights-only checkpoints), never from Ray's pickles."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray import tune
from test_tune import _curve_epochs, kill_search_when, rsearch, smoke_space, widths

from rsearch import metrics as M
from rsearch import results, storage
from rsearch.errors import UserError
from rsearch.tune import jobs as J
from rsearch.tune.trial import TrialContext, build_train_config
from rsearch.tune.tuner import WarmStartHyperOpt, search_algorithm


class _Payload:
    """Unpickling this runs a shell command: what a hostile tuner.pkl would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant_payloads(exp_dir: Path, marker: Path) -> list[Path]:
    """A payload in every file of tune/ that Ray unpickles on Tuner.restore, and in the trial states
    that experiment_state-*.json holds as hex-encoded cloudpickles."""
    blob = pickle.dumps(_Payload(marker))
    planted = []
    for path in list(exp_dir.glob("tune/**/*.pkl")) + [exp_dir / "tune" / "regime_3" / "tuner.pkl"]:
        path.write_bytes(blob)
        planted.append(path)
    for state in exp_dir.glob("tune/**/experiment_state-*.json"):
        data = json.loads(state.read_text())
        data["trial_data"] = [[blob.hex(), blob.hex()] for _ in data.get("trial_data", [])] or [
            [blob.hex()] * 2
        ]
        state.write_text(json.dumps(data))
        planted.append(state)
    return planted


@pytest.mark.slow
def test_resume_never_unpickles_the_folder_and_continues_each_trial_from_its_checkpoint(tmp_path):
    space = smoke_space(
        tmp_path, "tampered", epochs=[3], scaling=widths(0.25, 0.5), search={"max_concurrent": 1}
    )
    exp_dir, marker = tmp_path / "tampered", tmp_path / "payload-ran"
    kill_search_when(space, tmp_path, lambda: _curve_epochs(exp_dir) >= 1, "the first epoch")
    before = results.read_experiment(exp_dir)
    started = before.results[before.results[M.STATUS] == M.STATUS_RUNNING]
    assert len(started) == 1 and started[M.CHECKPOINT].notna().all(), before.results.to_dict(
        "records"
    )
    planted = _plant_payloads(exp_dir, marker)
    assert any(p.name == "tuner.pkl" for p in planted)

    proc = rsearch("tune", "--resume", str(exp_dir), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "a pickle from the experiment folder was loaded"
    exp = results.read_experiment(exp_dir)
    assert len(exp.results) == 2 and (exp.results[M.STATUS] == M.STATUS_OK).all()
    assert sorted(exp.curves.groupby(M.TRIAL_ID)[M.EPOCH].apply(list).tolist()) == [
        [1, 2, 3],
        [1, 2, 3],
    ]
    # The interrupted trial continued after its checkpoint in the resumed run: that run's first
    # report is an epoch after the checkpointed ones, none before it was trained again.
    trial_id = started[M.TRIAL_ID].iloc[0]
    checkpointed = int(started[M.EPOCHS_DONE].iloc[0])
    resumed = [
        p for p in exp_dir.glob("tune/regime_3.resume1/*/result.json") if trial_id in p.read_text()
    ]
    assert len(resumed) == 1, list(exp_dir.glob("tune/*/*"))
    epochs = [json.loads(line)[M.EPOCH] for line in resumed[0].read_text().splitlines()]
    assert epochs == list(range(checkpointed + 1, 4)), epochs


@pytest.mark.slow
def test_an_unreadable_checkpoint_fails_its_trial_with_the_reason_and_the_search_exits_1(tmp_path):
    space = smoke_space(tmp_path, "broken", epochs=[3], scaling=widths(0.25))
    exp_dir = tmp_path / "broken"
    kill_search_when(space, tmp_path, lambda: _curve_epochs(exp_dir) >= 1, "the first epoch")
    row = results.read_experiment(exp_dir).results.iloc[0]
    checkpoint = exp_dir / row[M.CHECKPOINT] / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    proc = rsearch("tune", "--resume", str(exp_dir), "--quiet")
    assert proc.returncode == 1, proc.stderr[-3000:]
    row = results.read_experiment(exp_dir).results.iloc[0]
    assert (
        row[M.STATUS] == M.STATUS_FAILED and "not a readable rsearch checkpoint" in row[M.FAILURE]
    ), row[M.FAILURE]
    last = proc.stderr.strip().splitlines()[-1]
    assert "no trial finished: 1 failed" in last and "not a readable rsearch checkpoint" in last, (
        last
    )


def _experiment_with_a_running_trial(tmp_path: Path, **row) -> Path:
    exp_dir = tmp_path / "exp"
    results.create_experiment(exp_dir, {"status": "interrupted", "epochs": [3]}, {})
    good = json.dumps({"epochs": 3, "seed": 0, "arch": [26, 0.25, 32]})
    results.write_results(
        exp_dir,
        [
            {
                M.TRIAL_ID: "3ep-00000",
                M.STATUS: M.STATUS_RUNNING,
                M.DEPTH: 26,
                M.WIDTH: 0.25,
                M.RESOLUTION: 32,
                M.EPOCHS: 3,
                M.TRIAL_CONFIG: good,
                **row,
            }
        ],
    )
    return exp_dir


def _probe(config: dict):
    """What the driver checks each recorded config with: the trial config it would build."""
    ctx = TrialContext(data={"source": "synthetic", "num_classes": 10}, num_classes=10, in_chans=3)
    return build_train_config(config, ctx)


@pytest.mark.parametrize(
    "row, message",
    [
        ({M.CHECKPOINT: "../../elsewhere"}, "expected a folder inside the experiment"),
        ({M.CHECKPOINT: "/etc"}, "expected a folder inside the experiment"),
        ({M.TRIAL_CONFIG: "{not json"}, "no readable trial_config for trial 3ep-00000"),
        ({M.TRIAL_CONFIG: "[1, 2]"}, "no readable trial_config for trial 3ep-00000"),
        (
            {M.TRIAL_CONFIG: json.dumps({"epochs": 3, "arch": [10**9, 0.5, 32]})},
            "trial 3ep-00000: .*depth.*1000",
        ),
        (
            {M.TRIAL_CONFIG: json.dumps({"foo": 1})},
            "trial 3ep-00000: expected a trial config of this space",
        ),
        ({M.TRIAL_ID: "../../x"}, "trial id '../../x'"),
    ],
)
def test_hostile_resume_records_are_refused_as_data(tmp_path, row, message):
    exp_dir = _experiment_with_a_running_trial(tmp_path, **row)
    with pytest.raises(UserError, match=message):
        J.check_records(str(exp_dir), _probe)


def test_a_recorded_checkpoint_through_a_symlink_out_of_the_experiment_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    (exp_dir / "link").symlink_to(outside)
    with pytest.raises(UserError, match="expected a folder inside the experiment"):
        storage.checkpoint_folder(str(exp_dir), "link", "3ep-00000", "--resume")
    (exp_dir / "tune").mkdir()
    folder = storage.checkpoint_folder(str(exp_dir), "tune", "3ep-00000", "--resume")
    assert folder.endswith("/tune")


GOOD_JOB = {"epochs": 3, "seed": 0, "arch": [26, 0.25, 32]}


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"id": "x"}',
        '[{"id": 3, "config": {}}]',
        '[{"id": "a"}]',
        json.dumps([{"id": "a", "config": GOOD_JOB}, {"id": "a", "config": GOOD_JOB}]),
        json.dumps([{"id": "../a", "config": GOOD_JOB}]),
        json.dumps([{"id": "a", "config": {**GOOD_JOB, "arch": [10**9, 0.25, 32]}}]),
    ],
)
def test_a_job_list_that_is_not_rsearch_s_is_refused(tmp_path, text):
    exp_dir = _experiment_with_a_running_trial(tmp_path)
    (exp_dir / J.PLANS).mkdir()
    (exp_dir / J.PLANS / "regime_3.json").write_text(text)
    with pytest.raises(UserError, match="regime_3.json"):
        J.check_records(str(exp_dir), _probe)


def test_a_job_list_too_large_or_not_a_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    exp_dir = _experiment_with_a_running_trial(tmp_path)
    (exp_dir / J.PLANS).mkdir()
    (exp_dir / J.PLANS / "regime_3.json").mkdir()  # a folder (or FIFO) where the file should be
    with pytest.raises(UserError, match="expected a file of at most"):
        J.check_records(str(exp_dir), _probe)
    (exp_dir / J.PLANS / "regime_3.json").rmdir()
    (exp_dir / J.PLANS / "regime_3.json").write_text(
        json.dumps([{"id": "a", "config": GOOD_JOB}]) + " " * 2000
    )
    monkeypatch.setattr(J, "MAX_PLAN_BYTES", 1000)
    with pytest.raises(UserError, match="expected a file of at most"):
        J.check_records(str(exp_dir), _probe)


def test_hostile_records_are_one_line_exit_2_before_ray_starts(tmp_path):
    space = smoke_space(tmp_path, "exp")
    exp_dir = _experiment_with_a_running_trial(tmp_path, **{M.CHECKPOINT: "../../elsewhere"})
    (exp_dir / "space.yaml").write_text(space.read_text())
    proc = rsearch("tune", "--resume", str(exp_dir), "--quiet")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "expected a folder inside the experiment" in proc.stderr
    assert results.read_experiment(exp_dir).meta["status"] == "interrupted"  # nothing changed


def test_drawn_jobs_are_the_grid_times_the_samples_and_the_same_for_the_same_seed():
    space = {
        "epochs": 3,
        "arch": tune.grid_search([[26, 0.25, 32], [50, 0.5, 48]]),
        "regularization": {"dropout": tune.uniform(0, 0.3), "ops": tune.choice([1, 2])},
    }
    first, again = J.draw(space, 3, 7, "3ep"), J.draw(space, 3, 7, "3ep")
    assert first == again and len(first) == 6
    assert [j["id"] for j in first] == [f"3ep-{i:05d}" for i in range(6)]
    assert json.loads(json.dumps(first)) == first  # plain JSON: what plans/*.json holds
    assert J.draw(space, 3, 8, "3ep") != first  # another seed, other samples
    assert sorted(tuple(j["config"]["arch"]) for j in first).count((26, 0.25, 32)) == 3


def test_pending_keeps_unstarted_and_unfinished_jobs_and_hands_over_the_checkpoint(tmp_path):
    jobs = [J.make_job(f"j{i}", {"i": i}) for i in range(4)]
    recorded = {
        "j0": {M.STATUS: M.STATUS_OK},
        "j1": {M.STATUS: M.STATUS_FAILED},
        "j2": {M.STATUS: M.STATUS_RUNNING, M.CHECKPOINT: "tune/regime_3/t/checkpoint_000001"},
    }
    todo = J.pending(jobs, recorded, str(tmp_path))
    assert [j["id"] for j in todo] == ["j2", "j3"]
    assert todo[0]["checkpoint"] == str(tmp_path / "tune/regime_3/t/checkpoint_000001")
    assert "checkpoint" not in todo[1]


def test_warm_started_hyperopt_has_seen_the_finished_trials_and_suggests_new_points():
    space = {
        "epochs": 3,
        "regularization": {"dropout": tune.uniform(0.0, 0.5), "ops": tune.choice([1, 2, 3])},
    }
    observed = [
        ({"regularization": {"dropout": d, "ops": o}}, acc)
        for d, o, acc in [(0.1, 1, 0.30), (0.2, 2, 0.50), (0.3, 3, 0.40), (0.45, 2, 0.20)]
    ]
    algo = WarmStartHyperOpt(
        space=space,
        metric=M.OBJECTIVE,
        mode="max",
        n_initial_points=2,
        random_state_seed=0,
        observed=observed,
    )
    trials = algo._hpopt_trials
    # done, with their objectives
    assert sorted(trials.losses()) == sorted(-acc for _, acc in observed)
    suggestion = algo.suggest("t1")
    assert suggestion["epochs"] == 3 and 0.0 <= suggestion["regularization"]["dropout"] <= 0.5
    assert suggestion["regularization"] not in [c["regularization"] for c, _ in observed]
    # none of the observed was queued to run
    assert len(algo._hpopt_trials.trials) == len(observed) + 1


def test_warm_started_hyperopt_models_two_family_architectures_recorded_as_lists():
    # A two-family space's `arch` options are lists; Ray's own category lookup dropped them all.
    archs = [[26, 0.25, 32], [50, 0.5, 32], [1.0, 1.0, 32, "efficientnet"]]
    space = {"epochs": 3, "arch": tune.choice(archs)}
    observed = [({"arch": list(a)}, acc) for a, acc in zip(archs, (0.3, 0.5, 0.4), strict=True)]
    algo = WarmStartHyperOpt(
        space=space, metric=M.OBJECTIVE, mode="max", n_initial_points=1, observed=observed
    )
    assert sorted(algo._hpopt_trials.losses()) == [-0.5, -0.4, -0.3]
    assert [doc["misc"]["vals"]["arch"] for doc in algo._hpopt_trials.trials] == [[0], [1], [2]]
    assert list(algo.suggest("t1")["arch"]) in archs


def test_a_resumed_hyperopt_search_does_not_replay_its_first_random_points():
    # Before: the same seed replayed the first run's random start points, which had run already.
    search = SimpleNamespace(algorithm="hyperopt", num_samples=8, seed=0, max_concurrent=None)
    space = SimpleNamespace(search=search)  # the typed search section's fields
    ps = {"epochs": 3, "regularization": {"dropout": tune.uniform(0.0, 0.3)}}

    def first_suggestion(observed=()):
        algo = search_algorithm(space, ps, observed)
        algo.set_search_properties(M.OBJECTIVE, "max", ps)
        return algo.suggest("t")

    ran = first_suggestion()
    assert first_suggestion() == ran  # seeded: the same search suggests the same first point
    assert first_suggestion([(ran, {M.OBJECTIVE: 0.5})])["regularization"] != ran["regularization"]


def test_warm_started_optuna_has_seen_the_finished_trials_on_both_objectives():
    # A resumed multi-objective search: the finished trials enter the study with accuracy and
    # latency, so TPE models them and suggests none of them again.
    search = SimpleNamespace(algorithm="optuna", num_samples=8, seed=0, max_concurrent=None)
    space = SimpleNamespace(search=search, latency=object())  # a latency budget: latency_ms
    ps = {
        "epochs": 3,
        "depth": tune.choice([26, 50]),
        "regularization": {"dropout": tune.uniform(0.0, 0.3)},
    }
    observed = [
        (
            {"epochs": 3, "depth": d, "regularization": {"dropout": p}},
            {M.OBJECTIVE: a, M.LATENCY_MS: ms},
        )
        for d, p, a, ms in [(26, 0.1, 0.3, 1.0), (50, 0.2, 0.5, 2.0), (26, 0.25, 0.4, None)]
    ]
    algo = search_algorithm(space, ps, observed)
    algo.set_search_properties(M.OBJECTIVE, "max", ps)  # Tune's one metric: the searcher keeps two
    study = algo._ot_study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    # the trial whose latency was never measured is left out: nothing to model
    assert sorted(t.values for t in study.trials) == [[0.3, 1.0], [0.5, 2.0]]
    assert {t.params["regularization/dropout"] for t in study.trials} == {0.1, 0.2}
    suggestion = algo.suggest("t1")
    assert suggestion["depth"] in (26, 50) and 0.0 <= suggestion["regularization"]["dropout"] <= 0.3
    assert suggestion["regularization"]["dropout"] not in (0.1, 0.2)


def test_checkpoint_folders_are_recorded_relative_to_the_experiment(tmp_path):
    inside = SimpleNamespace(
        path=str(tmp_path / "exp" / "tune" / "regime_3" / "t" / "checkpoint_000002")
    )
    assert (
        J.checkpoint_relative(str(tmp_path / "exp"), inside) == "tune/regime_3/t/checkpoint_000002"
    )
    assert (
        J.checkpoint_relative(str(tmp_path / "exp"), SimpleNamespace(path="/elsewhere/c")) is None
    )


def test_the_job_queue_hands_out_every_job_once_in_order_then_finishes():
    # Tune's searcher for drawn jobs (a grid_search over them deep-copies the list per trial)
    jobs = [J.make_job(f"j{i}", {"epochs": 3, "seed": i}) for i in range(3)]
    queue = J.JobQueue(jobs)
    handed = [queue.suggest(f"t{i}") for i in range(4)]
    assert handed[:3] == [{J.JOB: job} for job in jobs] and handed[3] == queue.FINISHED
    assert J.row_key(SimpleNamespace(config=handed[1], trial_id="t1")) == "j1"
