"""A Tune callback that keeps the experiment's results store current while a search runs.

Rows are keyed by the trial's job id (stable across resumes; Tune's trial id for a HyperOpt
suggestion). They live in memory; what changed since the last write is appended to the
store (results.append_rows) at most every few seconds, within half a second of a trial
finishing or recording a checkpoint (an epoch and its checkpoint are written together), and
at the end, when the fragments are folded into results.parquet and
curves.parquet. A write costs what it adds, so a 10,000-trial study costs the driver what a
100-trial one does per report (benchmarks/driver_scale.py). The dashboard reads the
experiment mid-run, and a resumed driver picks the rows up again (`setup` reloads them)
instead of starting from an empty table. Each row keeps what a resume needs: the trial's
config (JSON) and its latest checkpoint folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ray.tune import Callback
from ray.tune.result import SHOULD_CHECKPOINT

from rsearch import metrics as M
from rsearch import results
from rsearch.architecture import Architecture, row_phrase
from rsearch.errors import bounded
from rsearch.frames import records
from rsearch.storage import is_uri
from rsearch.tune.costs import LATENCY_COLUMNS
from rsearch.tune.jobs import FINAL, checkpoint_relative, config_json, row_key

# What an epoch's result adds to the trial's row (the curve point has all EPOCH_METRICS).
_RESULT_ROW_KEYS = (
    M.FAILURE,
    M.MINIVAL_TOP1,
    M.MINIVAL_LOSS,
    M.TEST_TOP1,
    M.TEST_LOSS,
    M.IMG_PER_S,
    M.PARAMS,
    M.FLOPS,
    M.LATENCY_MS,
    M.MODEL,
    *LATENCY_COLUMNS,
)
# The trial's architecture and regime, copied into each of its curve points.
_ARCH_REGIME = (M.DEPTH, M.WIDTH, M.RESOLUTION, M.EPOCHS)


# Seconds between writes while trials report; a finished (or failed) trial, and a recorded
# checkpoint, is written within FINISH_GAP_S of the last write (they coalesce: a 10,000-trial
# study does not write 10,000 times). On an object store each write is a PUT per table: at
# most 12 a minute.
FLUSH_INTERVAL_S = {"local": 2.0, "object store": 15.0}
FINISH_GAP_S = {"local": 0.5, "object store": 5.0}
# Fragments folded into the base files once this many have been written (and at the end):
# bounds what a mid-run reader opens; a fold costs one rewrite of the study.
COMPACT_AFTER = 256


class ResultsRecorder(Callback):
    def __init__(
        self,
        exp_dir: str,
        costs: dict,
        describe_trial,
        extra_rows: list[dict] | None = None,
        quiet: bool = False,
    ):
        self.exp_dir = exp_dir
        self.costs = costs  # arch key -> params/flops/latency, measured before the search
        # trial config -> {depth, width, resolution, epochs, recipe values}
        self.describe_trial = describe_trial
        self.extra_rows = extra_rows or []  # infeasible configs the grid never scheduled
        self.quiet = quiet
        self.rows: dict[str, dict] = {}
        self._changed: set[str] = set()  # trial ids whose rows changed since the last write
        self._new_curves: dict[tuple[str, int], dict] = {}  # trial-epoch rows not yet written
        self._epoch_seconds: dict[tuple[str, int], float] = {}  # for running train_seconds
        self._where = "object store" if is_uri(exp_dir) else "local"
        self._last_write = 0.0
        self._urgent = False  # a trial finished, or recorded a checkpoint, since the last write
        self._awaiting: set[str] = set()  # trials whose reported epoch's checkpoint is to come
        self._fragments = 0  # written since the last compaction
        self._last_print, self._printed = 0.0, False

    # --- Tune hooks ---
    def setup(self, **info):
        results.compact(self.exp_dir)  # what an interrupted driver appended, folded in
        existing = results.read_experiment(self.exp_dir, allow_empty=True)
        for row in records(existing.results):
            self.rows[row[M.TRIAL_ID]] = row
        curves = existing.curves
        for trial_id, epoch, seconds in zip(
            curves[M.TRIAL_ID], curves[M.EPOCH], curves[M.EPOCH_SECONDS].fillna(0.0), strict=True
        ):
            self._epoch_seconds[(trial_id, int(epoch))] = float(seconds)
        for row in self.extra_rows:
            if row[M.TRIAL_ID] not in self.rows:
                self.rows[row[M.TRIAL_ID]] = row
                self._changed.add(row[M.TRIAL_ID])
        self.flush()

    def on_trial_start(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row.setdefault(M.STATUS, M.STATUS_RUNNING)
        self._maybe_flush()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = self._row(trial)
        status = result.get(M.STATUS, M.STATUS_RUNNING)
        row[M.STATUS] = status
        for key in _RESULT_ROW_KEYS:
            if key in result:
                row[key] = result[key]
        if status in (M.STATUS_INFEASIBLE, M.STATUS_FAILED):
            row[M.MINIVAL_TOP1] = None  # the 0.0 reported to the searcher is not an accuracy
        if result.get(M.EPOCH):
            self._add_curve_point(row, result)
        if result.get(SHOULD_CHECKPOINT):
            # The epoch waits for on_checkpoint, its trial's next event: written apart, a driver
            # killed in between would leave an epoch whose checkpoint no row names.
            self._awaiting.add(row[M.TRIAL_ID])
        self._maybe_flush()
        self._progress()

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        # Where a resumed search continues this trial from (Tune keeps only the latest).
        row = self._row(trial)
        row[M.CHECKPOINT] = checkpoint_relative(self.exp_dir, checkpoint)
        self._awaiting.discard(row[M.TRIAL_ID])
        self._urgent = True  # what a resume continues from
        self._maybe_flush()

    def on_trial_complete(self, iteration, trials, trial, **info):
        row = self._row(trial)
        if row.get(M.STATUS) not in FINAL:
            # Finished without reaching the regime's last epoch: stopped early by the scheduler
            # (ASHA). Such a trial is no full-regime result, so it stays off the Pareto front.
            done = row.get(M.EPOCHS_DONE) or 0
            row[M.STATUS] = M.STATUS_OK if done >= row[M.EPOCHS] else M.STATUS_STOPPED
        self._awaiting.discard(row[M.TRIAL_ID])  # nothing comes after its end
        self._urgent = True
        self._maybe_flush()
        self._progress(finished=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row[M.STATUS] = M.STATUS_FAILED
        row[M.FAILURE] = _error_line(trial)
        row[M.MINIVAL_TOP1] = None  # an earlier epoch's accuracy is no result of a failed trial
        self._awaiting.discard(row[M.TRIAL_ID])  # nothing comes after its end
        self._urgent = True
        self._maybe_flush()
        self._progress(finished=True)

    def on_step_end(self, iteration, trials, **info):
        self._maybe_flush()  # a finish or a change that waited for its gap, when trials are quiet

    def on_experiment_end(self, trials, **info):
        self.close()

    # --- writing ---
    def close(self) -> None:
        """Write what is pending and fold the fragments in (the end of a run, or an
        interrupted one: the driver calls it whatever happened)."""
        self._awaiting.clear()  # no checkpoint comes after the end
        self.flush()
        results.compact(self.exp_dir)
        self._fragments = 0
        if self._printed:  # the run's last line says where it ended
            self._progress(final=True)

    def flush(self) -> None:
        """Append the rows changed since the last write (nothing when none did)."""
        self._last_write, self._urgent = time.monotonic(), False
        ready = [key for key in self._changed if key not in self._awaiting]
        curves = [key for key in self._new_curves if key[0] not in self._awaiting]
        if not (ready or curves):
            return
        results.append_rows(
            self.exp_dir,
            [self.rows[key] for key in ready],
            [self._new_curves.pop(key) for key in curves],
        )
        self._changed.difference_update(ready)
        self._fragments += 1
        if self._fragments >= COMPACT_AFTER:
            results.compact(self.exp_dir)
            self._fragments = 0

    def _maybe_flush(self) -> None:
        since = time.monotonic() - self._last_write
        if since >= FLUSH_INTERVAL_S[self._where] or (
            self._urgent and since >= FINISH_GAP_S[self._where]
        ):
            self.flush()

    # --- helpers ---
    def _row(self, trial) -> dict:
        trial_key = row_key(trial)
        row = self.rows.get(trial_key)
        if row is None:
            described = self.describe_trial(trial.config)
            key = Architecture.from_row(described).key
            row = {
                M.TRIAL_ID: trial_key,
                **self.costs.get(key, {}),
                **described,
                M.TRAIN_SECONDS: 0.0,
                M.TRIAL_CONFIG: config_json(trial.config),
            }
            self.rows[trial_key] = row
        self._changed.add(trial_key)  # every caller changes it
        return row

    def _add_curve_point(self, row: dict, result: dict) -> None:
        """The epoch's curve point, and the trial's train_seconds as a running sum (an epoch
        reported again, by a trial restarted from an earlier checkpoint, replaces its own)."""
        trial_id, epoch = row[M.TRIAL_ID], int(result[M.EPOCH])
        curve = {M.TRIAL_ID: trial_id, M.EPOCH: epoch}
        curve.update({k: result.get(k) for k in results.EPOCH_METRICS})
        curve.update({k: row[k] for k in _ARCH_REGIME})
        self._new_curves[(trial_id, epoch)] = curve
        seconds = float(result.get(M.EPOCH_SECONDS) or 0.0)
        before = self._epoch_seconds.get((trial_id, epoch), 0.0)
        self._epoch_seconds[(trial_id, epoch)] = seconds
        row[M.TRAIN_SECONDS] = (row.get(M.TRAIN_SECONDS) or 0.0) - before + seconds
        row[M.EPOCHS_DONE] = epoch

    def _progress(self, finished: bool = False, final: bool = False) -> None:
        """A compact live table: counts by status and the best minival accuracy so far."""
        # Every 5 s, at most every second when trials finish, and at the end: the line counts
        # every row, and 10,000 finishes each counting 10,000 rows would cost the driver most.
        since = time.monotonic() - self._last_print
        if self.quiet or not (final or since >= (1 if finished else 5)):
            return
        self._last_print, self._printed = time.monotonic(), True
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.get(M.STATUS, "?")] = counts.get(row.get(M.STATUS, "?"), 0) + 1
        best = max(
            (r for r in self.rows.values() if r.get(M.MINIVAL_TOP1) is not None),
            key=lambda r: r[M.MINIVAL_TOP1],
            default=None,
        )
        text = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if best:
            text += (
                f"  | best minival {best[M.MINIVAL_TOP1]:.3f}: {row_phrase(best)} "
                f"res {best[M.RESOLUTION]} "
                f"@ {best[M.EPOCHS]} ep"
            )
        print(f"[rsearch] trials: {text}", file=sys.stderr, flush=True)


def _error_line(trial) -> str:
    """The error itself: the last line of the trial's error.txt (Ray's traceback, text; the
    pickled error beside it is never loaded)."""
    lines = [
        line for line in str(getattr(trial, "error_msg", None) or "").splitlines() if line.strip()
    ]
    if not lines:
        lines = [line for line in _error_text(trial).splitlines() if line.strip()]
    return (
        bounded(lines[-1].strip()) if lines else "trial raised an error (no error.txt was written)"
    )


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        return Path(path).read_text(errors="replace")[-20000:] if path else ""
    except OSError:
        return ""
