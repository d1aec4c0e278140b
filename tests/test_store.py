"""The incremental results store: fragments appended while a search runs, read whole, folded
in at the end; and the recorder's write policy (what a report costs the driver)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs as pafs

from rsearch import fragments, results
from rsearch import metrics as m
from rsearch.tune import recorder as recorder_module
from rsearch.tune.recorder import ResultsRecorder


def _row(trial_id, top1, latency, status=m.STATUS_OK, epochs=3):
    return {
        m.TRIAL_ID: trial_id,
        m.STATUS: status,
        m.DEPTH: 26,
        m.WIDTH: 0.25,
        m.RESOLUTION: 32,
        m.EPOCHS: epochs,
        m.MINIVAL_TOP1: top1,
        m.MINIVAL_SIZE: 100,
        m.LATENCY_MS: latency,
    }


def _curve(trial_id, epoch, top1, seconds=1.0):
    return {m.TRIAL_ID: trial_id, m.EPOCH: epoch, m.MINIVAL_TOP1: top1, m.EPOCH_SECONDS: seconds}


def _parts(exp, name):
    return fragments.fragment_names(pafs.LocalFileSystem(), str(exp), name)


def _experiment(tmp_path):
    exp = tmp_path / "exp"
    results.create_experiment(exp, {"name": "exp"}, {})
    return exp


def test_appended_rows_read_back_last_row_winning_with_the_front_computed_on_the_whole(tmp_path):
    exp = _experiment(tmp_path)
    results.write_results(exp, [_row("a", 0.5, 10.0), _row("b", 0.4, 5.0)])
    results.write_curves(exp, [_curve("a", 1, 0.3)])
    # b gets better and faster than a: a leaves the front, which only the whole table shows
    results.append_rows(exp, [_row("b", 0.6, 4.0)], [_curve("a", 1, 0.35), _curve("b", 1, 0.2)])
    results.append_rows(exp, [_row("c", None, 3.0, status=m.STATUS_RUNNING)], [])
    exp_read = results.read_experiment(exp)
    frame = exp_read.results.set_index(m.TRIAL_ID)
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["b", m.MINIVAL_TOP1] == 0.6
    assert frame[m.PARETO].tolist() == [False, True, False]
    assert frame.loc["b", m.MINIVAL_TOP1_SE] > 0
    curves = exp_read.curves.set_index([m.TRIAL_ID, m.EPOCH])
    assert len(curves) == 2 and curves.loc[("a", 1), m.MINIVAL_TOP1] == 0.35
    assert len(_parts(exp, "results")) == 2 and len(_parts(exp, "curves")) == 1

    results.compact(exp)
    assert _parts(exp, "results") == [] and _parts(exp, "curves") == []
    after = results.read_experiment(exp)
    assert after.results.equals(exp_read.results) and after.curves.equals(exp_read.curves)


def test_a_compaction_cut_off_before_deleting_its_fragments_reads_the_same(tmp_path):
    exp = _experiment(tmp_path)
    results.write_results(exp, [_row("a", 0.5, 10.0)])
    results.append_rows(exp, [_row("a", 0.7, 10.0), _row("b", 0.2, 1.0)], [])
    before = results.read_experiment(exp).results
    fs, root = pafs.LocalFileSystem(), str(exp)
    frame, _ = results._read_stored(
        fs, root, "results", results.RESULT_COLUMNS, results.REQUIRED_RESULT_COLUMNS
    )
    results._write_parquet(
        exp, "results.parquet", results._frame_table(frame, results.RESULT_COLUMNS)
    )
    assert len(_parts(exp, "results")) == 1  # the crash: base rewritten, fragment still there
    assert results.read_experiment(exp).results.equals(before)


def test_a_whole_table_written_supersedes_the_fragments_before_it(tmp_path):
    exp = _experiment(tmp_path)
    results.append_rows(exp, [_row("a", 0.5, 10.0)], [_curve("a", 1, 0.5)])
    results.write_results(exp, [_row("z", 0.1, 1.0)])
    results.write_curves(exp, [])
    read = results.read_experiment(exp)
    assert read.results[m.TRIAL_ID].tolist() == ["z"] and read.curves.empty


class _Trial(SimpleNamespace):
    pass


def _trial(trial_id):
    return _Trial(trial_id=trial_id, config={"epochs": 3}, error_msg=None, error_file=None)


def _recorder(exp):
    describe = lambda config: {  # noqa: E731
        m.DEPTH: 26,
        m.WIDTH: 0.25,
        m.RESOLUTION: 32,
        m.EPOCHS: config["epochs"],
    }
    rec = ResultsRecorder(str(exp), costs={}, describe_trial=describe, quiet=True)
    rec.setup()
    return rec


def _report(rec, trial, epoch, top1=0.5, seconds=2.0):
    result = {m.EPOCH: epoch, m.MINIVAL_TOP1: top1, m.EPOCH_SECONDS: seconds}
    rec.on_trial_result(0, [trial], trial, result)


def test_reports_between_writes_stay_in_memory_and_a_finish_is_written(tmp_path, monkeypatch):
    exp = _experiment(tmp_path)
    rec = _recorder(exp)
    # no report is due to be written, but a finish is at once
    monkeypatch.setattr(recorder_module, "FLUSH_INTERVAL_S", {"local": 3600.0})
    monkeypatch.setattr(recorder_module, "FINISH_GAP_S", {"local": 0.0})
    trials = [_trial(f"t{i}") for i in range(20)]
    for trial in trials:
        rec.on_trial_start(0, trials, trial)
        for epoch in (1, 2, 3):
            _report(rec, trial, epoch)
    assert _parts(exp, "results") == []  # 80 events, no write
    rec.on_trial_complete(0, trials, trials[0])
    assert len(_parts(exp, "results")) == 1  # every row changed so far, in one fragment
    stored = results.read_experiment(exp)
    assert len(stored.results) == 20 and len(stored.curves) == 60
    assert stored.results.set_index(m.TRIAL_ID).loc["t0", m.STATUS] == m.STATUS_OK
    rec.close()
    assert _parts(exp, "results") == [] and _parts(exp, "curves") == []
    assert results.read_experiment(exp).results.equals(stored.results)


def test_train_seconds_is_a_running_sum_and_a_repeated_epoch_replaces_its_own(tmp_path):
    exp = _experiment(tmp_path)
    rec = _recorder(exp)
    trial = _trial("t")
    rec.on_trial_start(0, [trial], trial)
    _report(rec, trial, 1, seconds=2.0)
    _report(rec, trial, 2, seconds=3.0)
    _report(rec, trial, 2, seconds=4.0)  # restarted from the epoch-1 checkpoint
    assert rec.rows["t"][m.TRAIN_SECONDS] == 6.0
    rec.close()
    resumed = _recorder(exp)  # a resumed driver sums on from what the store holds
    _report(resumed, trial, 3, seconds=1.0)
    assert resumed.rows["t"][m.TRAIN_SECONDS] == 7.0


def test_many_flushes_are_folded_in_after_a_bounded_number_of_fragments(tmp_path, monkeypatch):
    exp = _experiment(tmp_path)
    monkeypatch.setattr(recorder_module, "COMPACT_AFTER", 4)
    rec = _recorder(exp)
    trial = _trial("t")
    for epoch in range(1, 10):
        _report(rec, trial, epoch)
        rec.flush()
        assert len(_parts(exp, "curves")) < 4
    assert len(results.read_experiment(exp).curves) == 9


def test_an_epoch_with_a_checkpoint_is_written_together_with_it(tmp_path, monkeypatch):
    # a driver killed between the two would leave an epoch whose checkpoint no row names
    exp = _experiment(tmp_path)
    monkeypatch.setattr(recorder_module, "FLUSH_INTERVAL_S", {"local": 0.0})  # always due...
    monkeypatch.setattr(recorder_module, "FINISH_GAP_S", {"local": 0.0})
    rec = _recorder(exp)
    trial = _trial("t")
    result = {m.EPOCH: 1, m.MINIVAL_TOP1: 0.5, m.EPOCH_SECONDS: 1.0, "should_checkpoint": True}
    rec.on_trial_result(0, [trial], trial, result)
    assert results.read_experiment(exp, allow_empty=True).curves.empty  # ...but this one waits
    rec.on_checkpoint(0, [trial], trial, SimpleNamespace(path=str(exp / "tune" / "c")))
    stored = results.read_experiment(exp)
    assert len(stored.curves) == 1 and stored.results[m.CHECKPOINT].tolist() == ["tune/c"]
