"""The search driver: SearchSpace -> cost table -> one Ray Tune run per epoch regime -> results.

space (validated) --> costs: params, FLOPs, latency measured in interleaved rounds
                      (cache validated first), feasibility under the budget
    --> per regime: Tuner(grid | random | HyperOpt TPE, FIFO | ASHA | Pareto ASHA) over run_trial
        --> with search.confirm: the regime's best front members re-trained with other seeds
    --> ResultsRecorder keeps results.parquet / curves.parquet current
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import sys
import time

import ray
from ray import tune

from rsearch import metrics as M
from rsearch import results, storage
from rsearch.cost import LatencyCache
from rsearch.cost.table import read_table
from rsearch.data import DataConfig
from rsearch.data.config import default_cache_root
from rsearch.data.load import data_shape
from rsearch.errors import UserError, renamed
from rsearch.noise import small_minival_warning
from rsearch.ray_session import init_ray
from rsearch.space.schema import MODEL_BASED
from rsearch.train.environment import training_environment
from rsearch.train.runner import preflight
from rsearch.tune import jobs as J
from rsearch.tune.confirm import run_confirmation
from rsearch.tune.costs import TABLE_KEY, check_table, measure_costs, measure_costs_remote
from rsearch.tune.interrupt import Interrupted, StopSignals
from rsearch.tune.lock import LOCK_FILE, DriverLock
from rsearch.tune.plan import Plan, first_value, make_plan
from rsearch.tune.recorder import ResultsRecorder
from rsearch.tune.tracking import start_search_run
from rsearch.tune.trial import (
    TrialContext,
    build_train_config,
    confirmed_trial,
    over_budget,
    run_trial,
    trial_settings,
)
from rsearch.tune.tuner import param_space, run_config, search_algorithm, tune_config

LATENCY_TABLE = "latency.parquet"  # shared by every experiment under one storage root
# The data and training checks are `rsearch train`'s and name its flags; a space's user wrote keys.
SPACE_KEYS_OF_TRAIN_FLAGS = {
    "--data-dir": "data.dir",
    "--batch-size": "recipe.batch_size",
    "--gpu": "resources.gpus_per_worker",
}


def experiment_dir(space, storage_root: str | None = None, name: str | None = None) -> str:
    """<storage root>/<name>: a local or shared path, or a pyarrow filesystem URI (s3://, ...)."""
    return storage.join(storage_root or space.storage.path, name or space.name)


def latency_table(exp_dir: str) -> str:
    """The latency table beside the experiments of a local or shared root (one table for all of
    them); a local per-machine cache when results go to an object store (no file locks there)."""
    if storage.is_uri(exp_dir):
        return str(default_cache_root() / LATENCY_TABLE)
    return storage.join(storage.parent(exp_dir), LATENCY_TABLE)


def run_search(
    space,
    *,
    exp_dir: str,
    resume: bool = False,
    address: str | None = None,
    quiet: bool = False,
    space_file: str | None = None,
) -> str:
    """Run (or resume) the whole study; returns the experiment folder."""
    if resume and not storage.exists(storage.join(exp_dir, results.EXPERIMENT_FILE)):
        raise UserError(
            f"--resume: no experiment at {exp_dir}; expected a folder written by `rsearch tune`"
        )
    lock = DriverLock(exp_dir, "--resume" if resume else "--name")
    lock.check()  # a running driver is named before any slow work
    _check_new(exp_dir, resume)
    # Everything that can be wrong with the input is found before Ray starts or a folder is written.
    probe_ctx = _context(space, {"num_classes": 2, "in_chans": 3}, exp_dir)
    if resume:  # the records a resume runs from are data, and are checked as data
        J.check_records(exp_dir, lambda config: build_train_config(config, probe_ctx))
    probe = build_train_config(_first_config(space), probe_ctx)
    with renamed(SPACE_KEYS_OF_TRAIN_FLAGS):
        data_info, _ = preflight(probe, local_gpu=not (address or os.environ.get("RAY_ADDRESS")))
    _check_latency_table(space, exp_dir, data_info, space_file)
    with lock:  # atomic: of two drivers started together, exactly one gets here
        _check_new(exp_dir, resume)
        return _run_locked(space, exp_dir, resume, address, quiet, space_file, data_info)


def _check_latency_table(space, exp_dir: str, data_info: dict, space_file: str | None) -> None:
    """A latency cache that cannot be read fails here, not inside the Ray task that measures;
    so does a deployment target's table that lacks a network of the search."""
    if space.latency is None:
        return
    if space.latency.table is not None:
        space_arg = space_file or storage.join(exp_dir, results.SPACE_FILE)
        check_table(space, _context(space, data_info, exp_dir), space_arg)
        return
    table = latency_table(exp_dir)
    if storage.exists(table):
        len(LatencyCache(table, flag="latency table"))  # reads it; UserError if unreadable


def _check_new(exp_dir: str, resume: bool) -> None:
    """A new experiment's folder must hold nothing but (our own) driver lock."""
    if not resume and any(name != LOCK_FILE for name in storage.entry_names(exp_dir)):
        raise UserError(
            f"--name: experiment {exp_dir} already exists; pass --resume to continue it, "
            "or choose another --name"
        )


def _run_locked(
    space,
    exp_dir: str,
    resume: bool,
    address: str | None,
    quiet: bool,
    space_file: str | None,
    data_info: dict,
) -> str:
    ctx = _context(space, data_info, exp_dir)
    plan = make_plan(space)
    warning = small_minival_warning(ctx.minival_size)
    if warning and not quiet:
        print(f"[rsearch] {warning}", file=sys.stderr, flush=True)

    # Per-epoch checkpoints of short trials trip Tune's "snapshotting too often" warning on
    # every epoch; it is expected here, not a problem to report.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's new console output prints its own experiment box even at verbose=0; the
    # recorder's live table is rsearch's progress display.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init_ray(address)
    # After ray.init: Ray's core worker installs its own SIGTERM handler (log and abort), which
    # must not be the one that answers a SIGTERM of the driver.
    tracking = None  # the search's MLflow run, when the space (or --mlflow) asks for one
    with StopSignals() as stops:
        try:
            _check_fits(ctx, address)
            if not resume:
                results.create_experiment(exp_dir, _meta(space, plan, space_file), space.resolved())
            else:  # an interrupted experiment runs again: views must not take it for final
                results.update_meta(exp_dir, status="running")
            tracking = start_search_run(space, exp_dir, resume, quiet)  # recorded in the meta
            if not quiet:
                print(
                    f"[rsearch] experiment {exp_dir} (if interrupted: rsearch tune --resume "
                    f"{shlex.quote(exp_dir)})",
                    file=sys.stderr,
                    flush=True,
                )
            ctx = _with_costs(ctx, plan, quiet, exp_dir)
            for regime in space.epochs:
                _run_regime(space, plan, regime, ctx, exp_dir, resume, quiet, stops.fit, tracking)
                if space.search.confirm:
                    run_confirmation(
                        space,
                        regime,
                        ctx,
                        exp_dir,
                        resume,
                        quiet,
                        _RunTune(
                            space, regime, ctx, exp_dir, quiet, stops.fit, tracking=tracking
                        ).jobs,
                    )
        except KeyboardInterrupt:
            ray.shutdown()  # no trial's log line may come after the resume command the CLI prints
            if storage.exists(storage.join(exp_dir, results.EXPERIMENT_FILE)):
                results.update_meta(
                    exp_dir, status="interrupted", interrupted=time.strftime("%Y-%m-%dT%H:%M:%S")
                )
            if tracking is not None:
                tracking.end("interrupted")
            raise Interrupted(stops.received or signal.SIGINT, exp_dir) from None
        except BaseException:
            # Whatever went wrong, the experiment must not stay "running" (dashboard --watch
            # waits on it); --resume continues it as it would an interrupted one.
            if storage.exists(storage.join(exp_dir, results.EXPERIMENT_FILE)):
                results.update_meta(
                    exp_dir, status="failed", failed=time.strftime("%Y-%m-%dT%H:%M:%S")
                )
            if tracking is not None:
                tracking.end("failed")
            raise
    results.update_meta(exp_dir, status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if tracking is not None:
        tracking.end("finished")
    return exp_dir


def _context(space, data_info: dict, exp_dir: str) -> TrialContext:
    """What every trial shares. It travels to Ray's workers: plain values and dicts only."""
    latency = space.latency
    res = space.resources
    return TrialContext(
        data=dict(space.data),
        num_classes=int(data_info["num_classes"]),
        in_chans=int(data_info["in_chans"]),
        minival_size=int(data_info.get(M.MINIVAL_SIZE, 0)),
        workers=int(res.workers),
        cpus_per_worker=float(res.cpus_per_worker),
        gpus_per_worker=float(res.gpus_per_worker),
        latency_budget=latency.budget() if latency is not None else None,
        max_params=space.max_params,
        max_flops=space.max_flops,
        latency_method=latency.method_fields() if latency is not None else None,
        latency_cache=latency_table(exp_dir),
        latency_table=_deployment_table(latency),
        train_storage=storage.join(exp_dir, "train"),
    )


def _deployment_table(latency) -> dict | None:
    """The figures of a table measured on the deployment target, as a trial context carries them."""
    if latency is None or latency.table is None:
        return None
    return read_table(latency.table, TABLE_KEY).to_context()


def space_data_shape(space) -> dict:
    """{num_classes, in_chans} of the space's data, read without decoding an image; a UserError
    naming the space's keys when the data cannot be read here."""
    with renamed(SPACE_KEYS_OF_TRAIN_FLAGS):
        return data_shape(DataConfig(**space.data))


def dry_run_context(space, exp_dir: str, shape: dict | None = None) -> TrialContext:
    """The trial context a dry run measures with, without decoding any image: the class count
    and channels of the space's data, so that it looks up the latency-cache keys the search
    will (a 100-class model's head is not a 10-class one's). A plan is often made away from
    the data (on a laptop, for a cluster that has it): then the space's declared shape, or
    `shape` ({num_classes, in_chans}) when the caller has it."""
    if shape is not None:
        return _context(space, shape, exp_dir)
    try:
        shape = space_data_shape(space)
    except UserError as exc:
        shape = {
            "num_classes": int(space.data.get("num_classes", 10)),
            "in_chans": 1 if space.data.get("source") == "fashion-mnist" else 3,
        }
        print(
            f"[rsearch] dry run: {exc}; planned for {shape['num_classes']} classes instead "
            "(the trials read the class count from the data)",
            file=sys.stderr,
        )
    return _context(space, shape, exp_dir)


def _first_config(space) -> dict:
    """One concrete trial config (first value of every dimension), to validate the data and
    the recipe."""
    config = {k: first_value(d) for k, d in space.scaling.trial_dimensions().items()}
    config[M.EPOCHS] = space.epochs[0]
    config["regularization"] = {k: first_value(d) for k, d in space.regularization.items()}
    config["recipe"] = {k: first_value(d) for k, d in space.recipe.items()}
    return config


def _meta(space, plan: Plan, space_file: str | None) -> dict:
    return {
        "name": space.name,
        "schema_version": M.RESULTS_SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "space_file": space_file,
        "epochs": list(space.epochs),
        "latency_budget_ms": space.latency.max if space.latency else None,
        "latency_method": space.latency.to_dict() if space.latency else None,
        "objective": M.OBJECTIVE,
        "confirm": space.search.confirm.to_dict() if space.search.confirm else None,
        "planned_trials": plan.total_trials + _planned_reruns(space),
        # where the search was launched (trials of a cluster may run on other machines)
        "environment": training_environment(max(1, int(space.resources.cpus_per_worker))),
        "status": "running",
    }


def _planned_reruns(space) -> int:
    """Confirmation reruns at most: top x the seeds other than the search's, per regime."""
    confirm = space.search.confirm
    if not confirm:
        return 0
    others = [s for s in confirm.seeds if s != (space.search.seed or 0)]
    return confirm.top * len(others) * len(space.epochs)


def _with_costs(ctx: TrialContext, plan: Plan, quiet: bool, exp_dir: str) -> TrialContext:
    if not plan.architectures:
        return ctx  # continuous scaling dimensions: each trial measures its own (cached)
    if not quiet:
        how = (
            f"latency from the table {ctx.latency_table['source']['path']}, measured on "
            f"{ctx.latency_table['source']['device_name']}"
            if ctx.latency_table is not None
            else "latency measured in interleaved rounds"
        )
        print(
            f"[rsearch] cost of {len(plan.architectures)} architectures: params and FLOPs counted, "
            f"{how} (latency method: {ctx.latency_method})",
            file=sys.stderr,
            flush=True,
        )
    if ctx.latency_table is not None:  # read from a table: nothing to measure, no task to hold
        costs, survey = measure_costs(plan.architectures, ctx)
    else:
        costs, survey = measure_costs_remote(plan.architectures, ctx)
    if survey is not None:
        _record_survey(exp_dir, ctx, costs, survey, quiet)
    return dataclasses.replace(ctx, costs=costs)


def _record_survey(exp_dir: str, ctx: TrialContext, costs: dict, survey: dict, quiet: bool) -> None:
    """experiment.json keeps how the latency figures came about; a relative budget also gets its
    equivalent in ms on this machine (for the views' budget line)."""
    budget = ctx.latency_budget
    extra = {"latency_survey": survey}
    if budget is not None and budget.relative:
        extra["latency_budget_ms"] = budget.max_ratio * survey["reference_ms"]
        extra["latency_reference_ms"] = survey["reference_ms"]
    results.update_meta(exp_dir, **extra)
    if quiet:
        return
    feasible = sum(1 for c in costs.values() if c.get("latency_feasible"))
    borderline = sum(1 for c in costs.values() if c.get("latency_borderline"))
    source = "from the deployment table" if "table" in survey else f"cache {survey['cache']}"
    print(
        f"[rsearch] latency {source}; {survey['measured']} measured, "
        f"{len(survey['remeasured'])} re-measured (borderline); {feasible} of {len(costs)} "
        f"architectures within the budget ({budget.describe() if budget else 'none'})"
        f"{f', {borderline} borderline' if borderline else ''}",
        file=sys.stderr,
        flush=True,
    )


def _run_regime(
    space,
    plan: Plan,
    regime: int,
    ctx: TrialContext,
    exp_dir: str,
    resume: bool,
    quiet: bool,
    fit,
    tracking=None,
):
    feasible, infeasible = _split_by_budget(plan, ctx)
    run_name, samples = f"regime_{regime}", space.search.num_samples
    # a model-based searcher (HyperOpt, Optuna) samples as it learns: no jobs drawn up front
    model_based, grid = space.search.algorithm in MODEL_BASED, space.search.algorithm == "grid"
    # A resumed grid/random regime runs the jobs drawn when it started: latency re-measured
    # today must not add or drop any of them.
    planned = J.load_plan(exp_dir, run_name) if resume and not model_based else None
    if planned is not None:
        drawn = {trial_settings(job["config"])[0].key for job in planned}
        infeasible = [k for k in infeasible if k not in drawn]
    extra = [_infeasible_row(ctx.costs[k], regime, ctx) for k in infeasible] if grid else []
    run = _RunTune(space, regime, ctx, exp_dir, quiet, fit, extra, tracking)
    if grid and not feasible and planned is None:
        print(
            f"[rsearch] regime {regime} epochs: every architecture is over the budget; "
            "nothing to train",
            file=sys.stderr,
        )
        run.record_only()
        return
    recorded = J.recorded_trials(exp_dir, regime, confirmations=False) if resume else {}
    if not quiet:
        over = f" ({len(infeasible)} over the budget: recorded, not trained)" if infeasible else ""
        done = f"; resumed: {len(recorded)} started before" if recorded else ""
        print(
            f"[rsearch] regime {regime} epochs: {plan.trials_per_regime} trials planned"
            f"{over}{done}",
            file=sys.stderr,
            flush=True,
        )
    space_of_regime = param_space(space, regime, feasible)
    if model_based:
        again = J.unfinished_jobs(recorded, exp_dir)
        if again:  # trials a stop interrupted continue from their checkpoints, then TPE goes on
            run.jobs(run_name, again)
            recorded = J.recorded_trials(exp_dir, regime, confirmations=False)
        if samples > len(recorded):
            algo = search_algorithm(space, space_of_regime, J.finished_points(recorded))
            run.search(
                run_name, space_of_regime, search_alg=algo, num_samples=samples - len(recorded)
            )
        return
    if planned is None:  # drawn once, before the first trial: a resume runs the same jobs
        planned = J.draw(space_of_regime, samples, space.search.seed or 0, f"{regime}ep")
        J.save_plan(exp_dir, run_name, planned)
    todo = J.pending(planned, recorded, exp_dir)
    if todo:
        run.jobs(run_name, todo)
    else:
        run.record_only()


class _RunTune:
    """One Tune run of a regime (or of its confirmation reruns) at a fresh path under tune/,
    recorded into the experiment's results store (and logged to MLflow when tracked)."""

    def __init__(
        self,
        space,
        regime: int,
        ctx: TrialContext,
        exp_dir: str,
        quiet: bool,
        fit,
        extra_rows=(),
        tracking=None,
    ):
        self.space, self.regime, self.ctx = space, regime, ctx
        self.exp_dir, self.quiet = exp_dir, quiet
        self.fit = fit  # runs a Tuner, answering stop signals (StopSignals.fit)
        self.extra_rows = list(extra_rows)
        self.tracking = tracking  # the search's MLflow run (rsearch.tune.tracking), or None

    def _recorder(self):
        return ResultsRecorder(
            self.exp_dir,
            self.ctx.costs,
            lambda config: _describe(config, self.ctx),
            self.extra_rows,
            self.quiet,
        )

    def record_only(self) -> None:
        recorder = self._recorder()
        recorder.setup()
        if self.tracking is not None:  # the infeasible configurations' runs
            self.tracking.callback(recorder).setup()
        recorder.close()

    def jobs(self, run_name: str, jobs: list[dict], scheduled: bool = True) -> None:
        self.search(
            run_name, {}, search_alg=J.JobQueue(jobs), num_samples=len(jobs), scheduled=scheduled
        )

    def search(
        self,
        run_name: str,
        param_space: dict,
        *,
        search_alg=None,
        num_samples: int = 1,
        scheduled: bool = True,
    ) -> None:
        recorder = self._recorder()
        tracker = None if self.tracking is None else self.tracking.callback(recorder)
        config = tune_config(
            self.space,
            self.regime,
            self.ctx,
            recorder,
            search_alg=search_alg,
            num_samples=num_samples,
            scheduled=scheduled,
        )
        tuner = tune.Tuner(
            _trainable(self.ctx),
            param_space=param_space,
            tune_config=config,
            run_config=run_config(_fresh_run_path(self.exp_dir, run_name), recorder, tracker),
        )
        try:
            self.fit(tuner)
        finally:  # an interrupted run's last rows are written too (Tune ends it without hooks)
            recorder.close()
            if tracker is not None:  # and its trials' MLflow runs end (KILLED: resumable)
                tracker.close()


def _fresh_run_path(exp_dir: str, run_name: str) -> str:
    """tune/<run>, or tune/<run>.resume<k> when an earlier attempt left that folder: a new
    Tune run never reads (unpickles) another run's state."""
    path = storage.join(exp_dir, "tune", run_name)
    attempt = 0
    while storage.exists(path):
        attempt += 1
        path = storage.join(exp_dir, "tune", f"{run_name}.resume{attempt}")
    return path


def _trainable(ctx: TrialContext):
    return tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), _trial_resources(ctx))


def _split_by_budget(plan: Plan, ctx: TrialContext) -> tuple[list, list]:
    """Architectures within the budget, and the keys of those over it."""
    feasible, infeasible = [], []
    for arch in plan.architectures or []:
        if over_budget(ctx.costs[arch.key], ctx):
            infeasible.append(arch.key)
        else:
            feasible.append(arch)
    return feasible, infeasible


def _infeasible_row(cost: dict, regime: int, ctx: TrialContext) -> dict:
    return {
        M.MINIVAL_SIZE: ctx.minival_size,
        M.TRIAL_ID: f"infeasible_{regime}ep_{_arch_id(cost)}",
        **cost,
        M.EPOCHS: regime,
        M.STATUS: M.STATUS_INFEASIBLE,
        M.FAILURE: over_budget(cost, ctx),
        M.TRAIN_SECONDS: 0.0,
        M.EPOCHS_DONE: 0,
    }


def _arch_id(cost: dict) -> str:
    """An architecture in a trial id: ResNet-RS as older ids name it ("26_0.25_32"), another
    family by its name and multipliers (two EfficientNets may share a block count)."""
    tail = f"{cost[M.WIDTH]:g}_{cost[M.RESOLUTION]}"
    if (cost.get(M.FAMILY) or M.DEFAULT_FAMILY) == M.DEFAULT_FAMILY:
        return f"{cost[M.DEPTH]}_{tail}"
    return f"{cost[M.FAMILY]}_{cost[M.DEPTH_MULT]:g}_{tail}"


def _describe(config: dict, ctx: TrialContext) -> dict:
    """The columns a trial's config contributes to its results row."""
    cfg = build_train_config(config, ctx)
    _, _, preset_name = trial_settings(config)
    r = cfg.recipe
    return {
        **cfg.arch.columns(),
        M.EPOCHS: cfg.epochs,
        M.SEED: cfg.seed,
        M.CONFIRMS: confirmed_trial(config),
        M.MINIVAL_SIZE: ctx.minival_size,
        M.RECIPE: preset_name,
        # the recipe's values a results row keeps (the column names are the Recipe's fields)
        **{
            column: getattr(r, column)
            for column in (
                M.DROPOUT,
                M.STOCHASTIC_DEPTH,
                M.LABEL_SMOOTHING,
                M.RANDAUGMENT_MAGNITUDE,
                M.RANDAUGMENT_OPS,
                M.WEIGHT_DECAY,
                M.EMA_DECAY,
                M.BASE_LR,
                M.BATCH_SIZE,
            )
        },
    }


def _check_fits(ctx: TrialContext, address: str | None) -> None:
    """On a local Ray, a trial that needs more than the machine has would wait forever."""
    if address or os.environ.get("RAY_ADDRESS"):
        return  # a cluster may autoscale to fit
    have = ray.cluster_resources()
    need = _trial_resources(ctx)
    cpus = need.get("cpu", 0) + (ctx.workers * ctx.cpus_per_worker if ctx.workers > 1 else 0)
    gpus = need.get("gpu", 0) + (ctx.workers * ctx.gpus_per_worker if ctx.workers > 1 else 0)
    if cpus > have.get("CPU", 0) + 1e-9 or gpus > have.get("GPU", 0) + 1e-9:
        raise UserError(
            f"resources: one trial needs {cpus:g} CPUs and {gpus:g} GPUs, but this machine's Ray "
            f"has {have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs; lower workers / "
            "cpus_per_worker / gpus_per_worker, or pass --address of a larger cluster"
        )


def _trial_resources(ctx: TrialContext) -> dict:
    if ctx.workers == 1:
        return {"cpu": ctx.cpus_per_worker, "gpu": ctx.gpus_per_worker}
    # N workers: the trial only drives the TorchTrainer (a token CPU share: Tune refuses an
    # empty request); the Ray Train workers ask for their own resources.
    return {"cpu": 0.01}
