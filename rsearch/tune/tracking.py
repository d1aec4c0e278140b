"""Experiment tracking in MLflow: one run per search, and under it one run per trial.

    check_server(uri, name, "--mlflow")              # before Ray starts: reachable, usable
    search = start_search_run(space, exp_dir, resume, quiet)     # None without tracking
    tuner's callbacks: [recorder, search.callback(recorder)]  # per Tune run, in this order
    search.end("finished" | "interrupted" | "failed")

A trial's run is nested under the search's (its `mlflow.parentRunId` tag) and carries the
trial's config as params (flattened: `recipe.batch_size`, with the architecture's columns), its
per-epoch metrics (step = the epoch) and its status, trial id and experiment as tags. The
search's run id is recorded in experiment.json: a resumed search logs under the same run, and a
trial it continues logs on in its own run.

Everything is logged from the driver, by an MlflowClient bound to the URI; the process-wide
tracking URI is never set and the trial processes never log. Ray's MLflowLoggerCallback is not
used: it sets the driver's process-wide tracking URI (mlflow.set_tracking_uri), while the
trainables keep MLflow's default, a store in the trial's working directory (ray-project/ray#36257;
still so with Ray 2.60 and MLflow 3: sqlite:///.../working_dirs/<trial>/mlflow.db); it
names runs after Tune's trial, which a resume replaces (rsearch's trial id is the job id); its
step is Tune's iteration, not the epoch; its tags are the same for every trial; and it makes
two requests per metric. The results store stays the record of a search: a tracking server
that fails mid-search stops the tracking (one warning line), never the search.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import sys
import time
from collections.abc import Callable, Iterator

from ray.tune import Callback

from rsearch import metrics as M
from rsearch import results, storage
from rsearch.errors import UserError, bounded
from rsearch.tune.jobs import row_key, unwrap

META_KEY = "mlflow"  # experiment.json: {tracking_uri, experiment_id, run_id} of the search's run
PARENT_TAG = "mlflow.parentRunId"  # MLflow's nesting: the UI shows the trial under the search
EXPERIMENT_TAG = "experiment"  # the rsearch experiment (its folder's name)
RESULTS_TAG = "results"  # the search run's experiment folder or URI
PROBE_TIMEOUT_S = 5  # check_server: a server that has not answered by then is unreachable

# Logged per epoch (step = epoch) when the trial reports them; the test metrics come with the
# last epoch. The costs are logged once (step 0), when the trial's row first has them.
EPOCH_LOGGED = (*results.EPOCH_METRICS, M.TEST_TOP1, M.TEST_LOSS)
COST_LOGGED = (M.PARAMS, M.FLOPS, M.LATENCY_MS, M.LATENCY_RATIO)
ARCH_PARAMS = (M.FAMILY, M.DEPTH, M.DEPTH_MULT, M.WIDTH, M.RESOLUTION)
# rsearch's experiment status -> the MLflow status of the search's run
RUN_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}

# A driver must not stall for minutes on a tracking server that went away (MLflow's defaults:
# 7 retries with exponential back-off, 120 s per request); nor print two "View run" lines per
# trial to stdout when a run ends. The user's own settings win.
CLIENT_DEFAULTS = {
    # a stalled server costs one wait of PROBE_TIMEOUT_S, then tracking stops (the search goes on)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S),
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def check_server(uri: str, experiment: str, where: str) -> None:
    """A one-line UserError, before Ray starts, when the tracking server does not answer within
    PROBE_TIMEOUT_S, or the experiment's MLflow experiment was deleted (runs cannot go there)."""
    with _probe_settings():
        try:
            found = _client(uri).get_experiment_by_name(experiment)
        except Exception as exc:  # MLflow raises many kinds, all meaning one thing
            raise UserError(f"{where}: {_unusable(uri, _reason(exc))}") from None
    if found is not None and found.lifecycle_stage == "deleted":
        raise UserError(
            f"{where}: the MLflow experiment {experiment!r} at {uri} is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {found.experiment_id}), choose "
            "another --name, or run with --no-mlflow"
        )


@contextlib.contextmanager
def _probe_settings() -> Iterator[None]:
    """One try with a short timeout (MLflow reads these per request), then the settings back."""
    probe = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S),
    }
    before = {key: os.environ.get(key) for key in probe}
    os.environ.update(probe)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _unusable(uri: str, reason: str) -> str:
    uri = storage.redacted(uri)
    if "certificate verify failed" in reason:
        return (
            f"the MLflow tracking server at {uri} failed the TLS certificate check ({reason}); "
            "trust its certificate (MLFLOW_TRACKING_SERVER_CERT_PATH) or run with --no-mlflow"
        )
    if "error code" in reason:
        return (
            f"{uri} answered, but not as an MLflow tracking server ({bounded(reason, 120)}); "
            "check the URI, or run with --no-mlflow"
        )
    if uri.startswith(("http://", "https://")):
        return (
            f"the MLflow tracking server at {uri} did not answer within {PROBE_TIMEOUT_S} s "
            f"({reason}); start it, or run with --no-mlflow"
        )
    return f"MLflow cannot use the tracking store {uri} ({reason})"


def _reason(exc: Exception) -> str:
    """The root cause of a failed request in a few words ("[Errno 111] Connection refused"),
    not MLflow's paragraph around it."""
    text = str(exc)
    cause = re.search(r"\[Errno -?\d+\][^'\")]*|timed out|Name or service not known", text)
    return cause.group(0).strip() if cause else bounded(text.splitlines()[0] if text else "", 300)


def _client(uri: str):
    # mlflow is an optional extra (rsearch[mlflow]), imported only when a search is tracked;
    # the space's check (or --mlflow's) has made sure it is installed
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def start_search_run(space, exp_dir: str, resume: bool, quiet: bool) -> SearchRun | None:
    """The search's MLflow run (None when the space tracks nothing): a resumed search's own
    run when experiment.json names one on this server, else a new one, recorded there."""
    uri = space.tracking.mlflow
    if uri is None:
        return None
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    name = storage.basename(exp_dir)
    recorded = _recorded_run(exp_dir, uri) if resume else None
    try:
        search = SearchRun(uri, name)
        search.open(recorded, exp_dir, _search_params(space))
    except UserError:
        raise
    except Exception as exc:  # the server went away since check_server
        raise UserError(
            f"tracking.mlflow: the MLflow tracking server at {uri} failed ({_reason(exc)}); "
            f"resume with: rsearch tune --resume {exp_dir}"
        ) from None
    results.update_meta(exp_dir, **{META_KEY: search.record()})
    if not quiet:
        print(f"[rsearch] MLflow: {search.describe()}", file=sys.stderr, flush=True)
    return search


def _recorded_run(exp_dir: str, uri: str) -> str | None:
    """The search run a first driver recorded, when it is on this same server."""
    meta = results.read_experiment(exp_dir, allow_empty=True).meta.get(META_KEY)
    if isinstance(meta, dict) and same_store(meta.get("tracking_uri"), uri):
        run_id = meta.get("run_id")
        return run_id if isinstance(run_id, str) else None
    return None


def same_store(a, b) -> bool:
    """Whether two tracking URIs name one store (http://host:5000/ is http://host:5000)."""
    return isinstance(a, str) and isinstance(b, str) and a.rstrip("/") == b.rstrip("/")


def _search_params(space) -> dict:
    """The search run's params: what makes one search differ from another."""
    return {"epochs": list(space.epochs), **_flat(space.search.to_dict(), "search.")}


class SearchRun:
    """The search's MLflow run, and the runs of its trials by trial id."""

    def __init__(self, uri: str, name: str):
        self.uri, self.name = uri, name
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.trial_runs: dict[str, str] = {}  # trial id -> its run id
        self.stopped = False  # the server failed once: no more tracking in this driver
        self._client = None

    def __getstate__(self) -> dict:
        # Tune pickles the run config (with its callbacks) into tuner.pkl; a client is no state
        return {**self.__dict__, "_client": None}

    @property
    def client(self):
        if self._client is None:
            self._client = _client(self.uri)
        return self._client

    def open(self, recorded_run: str | None, exp_dir: str, params: dict) -> None:
        self.experiment_id = self._experiment()
        if recorded_run is not None and self._usable(recorded_run):
            self.run_id = recorded_run
            self.client.update_run(recorded_run, status="RUNNING")
            self.client.set_tag(recorded_run, M.STATUS, "running")
            self.trial_runs = self._child_runs()
            return
        tags = {EXPERIMENT_TAG: self.name, RESULTS_TAG: exp_dir, M.STATUS: "running"}
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=self.name)
        self.run_id = run.info.run_id
        self.client.log_batch(self.run_id, params=_params(params))

    def _experiment(self) -> str:
        """The MLflow experiment named after the rsearch experiment (made when new)."""
        from mlflow.exceptions import MlflowException  # mlflow: see _client

        found = self.client.get_experiment_by_name(self.name)
        if found is None:
            try:
                return self.client.create_experiment(self.name)
            except MlflowException:  # another driver made it in between
                found = self.client.get_experiment_by_name(self.name)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            raise UserError(
                f"tracking.mlflow: the MLflow experiment {self.name!r} at {self.uri} is deleted"
            )
        return found.experiment_id

    def _usable(self, run_id: str) -> bool:
        """The recorded run is still there (not deleted) in this experiment."""
        from mlflow.exceptions import MlflowException  # mlflow: see _client

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        info = run.info
        return info.lifecycle_stage == "active" and info.experiment_id == self.experiment_id

    def _child_runs(self) -> dict[str, str]:
        """The trial runs a first driver logged under this search's run, by trial id."""
        found, token = {}, None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{PARENT_TAG}` = '{self.run_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                trial_id = run.data.tags.get(M.TRIAL_ID)
                if trial_id:
                    found[trial_id] = run.info.run_id
            token = page.token
            if not token:
                return found

    def record(self) -> dict:
        """What experiment.json keeps of it: a resume finds the run again."""
        return {
            "tracking_uri": self.uri,
            "experiment_id": self.experiment_id,
            "run_id": self.run_id,
        }

    def describe(self) -> str:
        """Where the search's run is: its page in a tracking server's UI, else its store."""
        if self.uri.startswith(("http://", "https://")):
            page = f"{self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
            return f"experiment {self.name!r}, run {page}"
        return f"experiment {self.name!r}, run {self.run_id} in {self.uri}"

    def callback(self, recorder) -> TrialRuns:
        """A Tune callback that logs this Tune run's trials; after `recorder` in the callbacks."""
        return TrialRuns(self, recorder)

    def end(self, status: str) -> None:
        """The search's run ends as the experiment did (finished, interrupted, failed)."""

        def end_run():
            self.client.set_tag(self.run_id, M.STATUS, status)
            self.client.set_terminated(self.run_id, RUN_STATUS[status])

        self.safely(end_run)

    def safely(self, log: Callable[[], None]) -> None:
        """Run one logging step; the first failure stops the tracking with one warning line
        (the search goes on: results.parquet has every trial)."""
        if self.stopped:
            return
        try:
            log()
        except Exception as exc:  # whatever the server answered, the search goes on
            self.stopped = True
            print(
                f"[rsearch] MLflow tracking stopped: {self.uri} failed ({_reason(exc)}); the "
                "search goes on (results.parquet has every trial)",
                file=sys.stderr,
                flush=True,
            )


class TrialRuns(Callback):
    """One MLflow run per trial, nested under the search's run. A run's status tag is the
    trial's row in the results store: Tune calls the callbacks in the order of the run
    config's list, so the ResultsRecorder before this has updated the row."""

    def __init__(self, search: SearchRun, recorder):
        self.search, self.recorder = search, recorder
        self._open: dict[str, str] = {}  # trial id -> run id, while the trial runs
        self._tagged: dict[str, str] = {}  # trial id -> the status its run's tag has
        self._costed: set[str] = set()  # trials whose costs are logged

    # --- Tune hooks ---
    def setup(self, **info):
        # the configurations over the budget that a grid never schedules: runs too, as rows
        for row in self.recorder.extra_rows:
            if row[M.TRIAL_ID] not in self.search.trial_runs:
                self.search.safely(lambda row=row: self._log_unscheduled(row))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.search.safely(lambda: self._start(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.search.safely(lambda: self._log_result(trial, result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.search.safely(lambda: self._end(row_key(trial)))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.search.safely(lambda: self._end(row_key(trial)))

    def on_experiment_end(self, trials, **info):
        self.close()

    def close(self) -> None:
        """Runs of trials still running when the Tune run ended (an interrupted search, which
        Tune ends without their hooks) end as KILLED; a resume continues them."""
        for trial_id in list(self._open):
            self.search.safely(lambda trial_id=trial_id: self._kill(trial_id))

    # --- logging ---
    def _start(self, trial) -> None:
        trial_id = row_key(trial)
        row = self.recorder.rows[trial_id]
        client = self.search.client
        run_id = self.search.trial_runs.get(trial_id)
        if run_id is None:
            run_id = self._create(row)  # tagged with the row's status
            client.log_batch(run_id, params=_params(_trial_params(trial.config, row)))
            self._tagged[trial_id] = row[M.STATUS]
        else:  # a trial a resumed search continues: its run goes on (status tag: next result)
            client.update_run(run_id, status="RUNNING")
            self._tagged.pop(trial_id, None)
        self._open[trial_id] = run_id

    def _create(self, row: dict) -> str:
        trial_id = row[M.TRIAL_ID]
        tags = {
            PARENT_TAG: self.search.run_id,
            M.TRIAL_ID: trial_id,
            EXPERIMENT_TAG: self.search.name,
            M.STATUS: row[M.STATUS],
        }
        if row.get(M.CONFIRMS):  # a confirmation rerun names the trial it reruns
            tags[M.CONFIRMS] = row[M.CONFIRMS]
        run = self.search.client.create_run(self.search.experiment_id, tags=tags, run_name=trial_id)
        self.search.trial_runs[trial_id] = run.info.run_id
        return run.info.run_id

    def _log_result(self, trial, result: dict) -> None:
        """The epoch's metrics (step = epoch), the costs once, the status when it changed: one
        request."""
        from mlflow.entities import Metric, RunTag  # mlflow: see _client

        trial_id = row_key(trial)
        run_id = self._open.get(trial_id)
        if run_id is None:
            return  # its start was not logged (the tracking stopped)
        row, now = self.recorder.rows[trial_id], int(time.time() * 1000)
        metrics = []
        epoch = result.get(M.EPOCH)
        if epoch:  # epoch 0: an infeasible trial's report, no training
            metrics += [Metric(k, v, now, int(epoch)) for k, v in _numbers(result, EPOCH_LOGGED)]
        if trial_id not in self._costed and row.get(M.PARAMS) is not None:
            metrics += [Metric(k, v, now, 0) for k, v in _numbers(row, COST_LOGGED)]
            self._costed.add(trial_id)
        tags = []
        if row[M.STATUS] != self._tagged.get(trial_id):
            tags.append(RunTag(M.STATUS, row[M.STATUS]))
            self._tagged[trial_id] = row[M.STATUS]
        if metrics or tags:
            self.search.client.log_batch(run_id, metrics=metrics, tags=tags)

    def _end(self, trial_id: str) -> None:
        """The trial's final status (ok, stopped, infeasible, failed: the results row's)."""
        run_id = self._open.pop(trial_id, None)
        if run_id is None:
            return
        row = self.recorder.rows[trial_id]
        client = self.search.client
        client.log_batch(run_id, tags=_end_tags(row))
        client.set_terminated(run_id, "FAILED" if row[M.STATUS] == M.STATUS_FAILED else "FINISHED")

    def _kill(self, trial_id: str) -> None:
        run_id = self._open.pop(trial_id)
        self.search.client.set_terminated(run_id, "KILLED")

    def _log_unscheduled(self, row: dict) -> None:
        """An infeasible configuration's run: its architecture, costs and reason; no epochs."""
        from mlflow.entities import Metric  # mlflow: see _client

        run_id = self._create(row)
        params = {k: row.get(k) for k in (*ARCH_PARAMS, M.EPOCHS)}
        now = int(time.time() * 1000)
        self.search.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _numbers(row, COST_LOGGED)],
            params=_params(params),
            tags=_end_tags(row),
        )
        self.search.client.set_terminated(run_id, "FINISHED")


# --- values as MLflow takes them ------------------------------------------------------------


def _trial_params(config: dict, row: dict) -> dict:
    """The trial's config, flattened (`recipe.batch_size`), with its architecture's columns for
    a grid's `arch` list (a job's wrapper, its id and checkpoint, is no parameter)."""
    flat = _flat({k: v for k, v in unwrap(config).items() if k != "arch"})
    return {**flat, **{k: row.get(k) for k in ARCH_PARAMS}}


def _flat(mapping: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _params(values: dict) -> list:
    """MLflow params: strings, unset values left out (a param, once logged, never changes)."""
    from mlflow.entities import Param  # mlflow: see _client

    return [Param(key, str(value)) for key, value in values.items() if value is not None]


def _numbers(source: dict, keys: tuple[str, ...]) -> Iterator[tuple[str, float]]:
    """(key, value) of the keys that hold a finite number (MLflow refuses NaN in some stores)."""
    for key in keys:
        value = source.get(key)
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            yield key, float(value)


def _end_tags(row: dict) -> list:
    from mlflow.entities import RunTag  # mlflow: see _client

    tags = [RunTag(M.STATUS, row[M.STATUS])]
    if row.get(M.FAILURE):
        tags.append(RunTag(M.FAILURE, bounded(str(row[M.FAILURE]))))
    return tags
