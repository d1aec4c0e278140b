"""A Tune callback that keeps results.parquet and curves.parquet current while a search runs.

Rows are keyed by the trial's job id (stable across resumes; Tune's trial id for a HyperOpt
suggestion) and rewritten atomically after every reported epoch, so the dashboard can read
the experiment mid-run, and a resumed driver picks the rows up again (`setup` reloads them)
instead of starting from an empty table. Each row keeps what a resume needs: the trial's
config (JSON) and its latest checkpoint folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ray.tune import Callback

from rsearch import metrics as M
from rsearch import results
from rsearch.architecture import Architecture, row_phrase
from rsearch.errors import bounded
from rsearch.frames import records
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
        self.curves: dict[tuple[str, int], dict] = {}
        self._last_print = 0.0

    # --- Tune hooks ---
    def setup(self, **info):
        existing = results.read_experiment(self.exp_dir, allow_empty=True)
        for row in records(existing.results):
            self.rows[row[M.TRIAL_ID]] = row
        for row in records(existing.curves):
            self.curves[(row[M.TRIAL_ID], int(row[M.EPOCH]))] = row
        for row in self.extra_rows:
            self.rows.setdefault(row[M.TRIAL_ID], row)
        self._flush()

    def on_trial_start(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row.setdefault(M.STATUS, M.STATUS_RUNNING)
        self._flush()

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
            key = row[M.TRIAL_ID]
            curve = {M.TRIAL_ID: key, M.EPOCH: result[M.EPOCH]}
            curve.update({k: result.get(k) for k in results.EPOCH_METRICS})
            curve.update({k: row[k] for k in _ARCH_REGIME})
            self.curves[(key, int(result[M.EPOCH]))] = curve
            row[M.EPOCHS_DONE] = int(result[M.EPOCH])
            row[M.TRAIN_SECONDS] = sum(
                c.get(M.EPOCH_SECONDS) or 0.0 for (t, _), c in self.curves.items() if t == key
            )
        self._flush()
        self._progress(trials)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        # Where a resumed search continues this trial from (Tune keeps only the latest).
        self._row(trial)[M.CHECKPOINT] = checkpoint_relative(self.exp_dir, checkpoint)
        self._flush()

    def on_trial_complete(self, iteration, trials, trial, **info):
        row = self._row(trial)
        if row.get(M.STATUS) not in FINAL:
            # Finished without reaching the regime's last epoch: stopped early by the scheduler
            # (ASHA). Such a trial is no full-regime result, so it stays off the Pareto front.
            done = row.get(M.EPOCHS_DONE) or 0
            row[M.STATUS] = M.STATUS_OK if done >= row[M.EPOCHS] else M.STATUS_STOPPED
        self._flush()
        self._progress(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row[M.STATUS] = M.STATUS_FAILED
        row[M.FAILURE] = _error_line(trial)
        row[M.MINIVAL_TOP1] = None  # an earlier epoch's accuracy is no result of a failed trial
        self._flush()
        self._progress(trials, force=True)

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
        return row

    def _flush(self) -> None:
        results.write_results(self.exp_dir, list(self.rows.values()))
        results.write_curves(self.exp_dir, list(self.curves.values()))

    def _progress(self, trials, force: bool = False) -> None:
        """A compact live table: counts by status and the best minival accuracy so far."""
        if self.quiet or (not force and time.monotonic() - self._last_print < 5):
            return
        self._last_print = time.monotonic()
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
