"""`rsearch tune`: search scaling (depth, width, resolution) and regularization under
epoch/latency budgets.

Run the search a space file describes on Ray Tune (local Ray, or --address
auto on a cluster). Results go to <storage>/<name>/: results.parquet,
curves.parquet, space.yaml.

examples:
  rsearch tune --space search_spaces/quickstart.yaml
  rsearch tune --space search_spaces/scaling.yaml --dry-run --gpus 64   # plan and cost forecast
  rsearch tune --resume ~/rsearch_results/quickstart                     # continue a search
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import sys

from rsearch import metrics as M
from rsearch import storage
from rsearch.architecture import row_phrase
from rsearch.commands.args import add_command, integer, number
from rsearch.errors import UserError

OVER_BUDGET = "over_budget"  # a cost row's decision: why it is infeasible, or None


def register(subparsers) -> None:
    p = add_command(subparsers, __name__, show_defaults=True)
    p.add_argument(
        "--space", help="search-space YAML (see search_spaces/); required unless --resume"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the space, count every architecture's params and FLOPs, print the plan "
        "and a forecast of its GPU-hours and wall time; no Ray, trains nothing, writes nothing",
    )
    p.add_argument(
        "--json", action="store_true", help="with --dry-run: print one JSON object instead of text"
    )
    dry = p.add_argument_group("dry run (with --dry-run)")
    dry.add_argument(
        "--measure-latency",
        action="store_true",
        help="also measure every architecture's latency in this process (or validate the cached "
        "figures) and apply the latency budget; minutes for a large grid",
    )
    dry.add_argument(
        "--gpus",
        type=integer(1),
        help="the cluster's GPUs (a CPU space: worker slots) for the wall-time forecast "
        "(default: one trial's, times search.max_concurrent)",
    )
    dry.add_argument(
        "--throughput",
        type=number(0),
        metavar="TFLOPS",
        help="forecast from this sustained training rate per GPU, TFLOP/s (3 x forward FLOPs x "
        "img/s), instead of measuring here or the declared H100 fit",
    )
    dry.add_argument(
        "--train-size",
        type=integer(1),
        help="training images for the forecast, where the data is not reachable from here",
    )
    p.add_argument("--name", help="experiment name (default: the space's name)")
    p.add_argument(
        "--storage",
        help="results root: a local or shared path, or a pyarrow filesystem URI such as "
        "s3://bucket/prefix or gs://bucket/prefix (default: the space's storage.path)",
    )
    p.add_argument(
        "--resume",
        metavar="EXPERIMENT",
        help="continue an interrupted experiment: its folder or URI (as printed when it started), "
        f"or its name under --storage (default root {storage.DEFAULT_STORAGE_PATH})",
    )
    p.add_argument(
        "--address", help="Ray cluster address, e.g. auto (default: $RAY_ADDRESS, else a local Ray)"
    )
    tracking = p.add_mutually_exclusive_group()
    tracking.add_argument(
        "--mlflow",
        metavar="URI",
        help="log every trial to this MLflow tracking server (http://HOST:PORT, or any MLflow "
        "tracking URI): one run per trial, nested under one run per search; overrides the "
        "space's tracking.mlflow (pip install 'rsearch[mlflow]')",
    )
    tracking.add_argument(
        "--no-mlflow",
        action="store_true",
        help="no tracking this time, whatever the space's tracking.mlflow says (a resume whose "
        "tracking server is gone)",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress lines")
    p.set_defaults(func=run)


def _load(args):
    """(space, experiment location) for a new search or a resumed one."""
    # torch (the space validates latency methods), Ray (the driver): loaded when the command
    # runs, never for `rsearch --help`; likewise in the functions below
    from rsearch.space import load_space
    from rsearch.space.schema import check_storage_path, parse_name
    from rsearch.tune.driver import experiment_dir

    if args.name is not None:  # --name "" is an error, not "no name"
        parse_name(args.name, "--name")
    if args.storage is not None:
        storage.check_reachable(check_storage_path(args.storage, "--storage"), "--storage")
    if args.resume:
        if args.space:
            raise UserError(
                "--space: not used with --resume (the experiment's saved space.yaml is used)"
            )
        exp_dir = _resume_location(args.resume, args.storage)
        return load_space(storage.join(exp_dir, "space.yaml")), exp_dir
    if not args.space:
        raise UserError(
            "--space: a search-space YAML is required (e.g. search_spaces/quickstart.yaml)"
        )
    space = load_space(args.space)
    if not args.storage:
        storage.check_reachable(space.storage.path, "storage.path")
    return space, experiment_dir(space, args.storage, args.name)


def _tracked(space, args):
    """The space, tracked at --mlflow's URI when given (it overrides tracking.mlflow, and is
    saved with a new experiment's space.yaml), or not at all with --no-mlflow. A resume logs to
    the store its search started in: another one would lack its finished trials."""
    from rsearch.space.schema import TrackingSpec

    if args.no_mlflow:
        return dataclasses.replace(space, tracking=TrackingSpec(mlflow=None))
    if args.mlflow is None:
        return space
    from rsearch.space.space import check_mlflow_installed

    check_mlflow_installed("--mlflow")
    if args.resume:
        _check_same_store(space.tracking.mlflow, args.mlflow)
    return dataclasses.replace(space, tracking=TrackingSpec(mlflow=args.mlflow))


def _check_same_store(started_in: str | None, given: str) -> None:
    from rsearch.tune.tracking import same_store  # mlflow's side, when tracking is asked for

    if started_in is None:
        raise UserError(
            "--mlflow: this experiment was not tracked when it started; a store would lack its "
            "finished trials (resume without --mlflow)"
        )
    if not same_store(started_in, given):
        raise UserError(
            f"--mlflow: this experiment is tracked at {storage.redacted(started_in)}; a resume "
            "logs there (drop --mlflow, or pass --no-mlflow to resume without tracking)"
        )


def _resume_location(resume: str, storage_root: str | None) -> str:
    """--resume takes the experiment's own folder/URI, or a bare name under --storage."""
    bare_name = "/" not in resume and not storage.is_uri(resume)
    if not bare_name:
        storage.check_reachable(resume, "--resume")
    exp_dir = (
        storage.join(storage_root or storage.DEFAULT_STORAGE_PATH, resume)
        if bare_name
        else storage.normalize(resume)
    )
    if not storage.exists(storage.join(exp_dir, "space.yaml")):
        hint = (
            "; pass the experiment's folder or URI, as printed when it started" if bare_name else ""
        )
        raise UserError(f"--resume: no rsearch experiment at {exp_dir} (no space.yaml there){hint}")
    return exp_dir


def run(args) -> int:
    from rsearch.tune.plan import make_plan

    if args.json and not args.dry_run:
        raise UserError("--json: only with --dry-run (a search's results are in results.parquet)")
    for flag in ("measure_latency", "gpus", "throughput", "train_size"):
        if getattr(args, flag) not in (None, False) and not args.dry_run:
            raise UserError(f"--{flag.replace('_', '-')}: only with --dry-run")
    if args.mlflow is not None:  # a malformed URI is refused before the space is read
        from rsearch.space.schema import check_mlflow_uri

        check_mlflow_uri(args.mlflow, "--mlflow")
    space, exp_dir = _load(args)
    space = _tracked(space, args)
    plan = make_plan(space)
    if args.dry_run:
        return _dry_run(args, space, plan, exp_dir)
    if space.tracking.mlflow is not None:  # an unreachable server is named before Ray starts
        from rsearch.tune.tracking import check_server

        where = "--mlflow" if args.mlflow is not None else "tracking.mlflow"
        check_server(space.tracking.mlflow, storage.basename(exp_dir), where)
    from rsearch.tune.driver import run_search
    from rsearch.tune.interrupt import Interrupted

    try:
        run_search(
            space,
            exp_dir=exp_dir,
            resume=bool(args.resume),
            address=args.address,
            quiet=args.quiet,
            space_file=storage.normalize(args.space) if args.space else None,
        )
    except Interrupted as stop:
        print(
            f"rsearch tune: {stop}; experiment marked interrupted. Resume with: "
            f"rsearch tune --resume {shlex.quote(stop.exp_dir)}",
            file=sys.stderr,
            flush=True,
        )
        return stop.exit_code
    return _print_summary(exp_dir)


def _dry_run(args, space, plan, exp_dir: str) -> int:
    """The plan, every architecture's counted cost (measured latency with --measure-latency) and
    the forecast of what the search costs; nothing written, no Ray started."""
    from rsearch.tune import forecast as fc
    from rsearch.tune.costs import check_table
    from rsearch.tune.driver import dry_run_context
    from rsearch.tune.plan import describe_plan

    gpus = _checked_gpus(args, space)
    ctx = dry_run_context(space, exp_dir)
    check_table(space, ctx, args.space or storage.join(exp_dir, "space.yaml"))
    # a deployment target's table answers at once: its figures are read, not measured
    measured = bool(args.measure_latency) or ctx.latency_table is not None
    if measured:
        costs, survey = _measure_latencies(space, exp_dir, plan, ctx, progress=not args.json)
    else:
        costs, survey = _counted_costs(plan, ctx), None
    forecast = _forecast(args, space, plan, costs, ctx, gpus) if costs else None
    exists = storage.exists(storage.join(exp_dir, "experiment.json"))
    if args.json:
        report = dry_run_report(space, plan, costs, survey, exp_dir, latency_measured=measured)
        print(json.dumps({**report, "forecast": forecast, "results_dir_exists": exists}))
        return 0
    print(describe_plan(space, plan, costs, survey, latency_measured=measured))
    if forecast is not None:
        upper = space.latency is not None and not measured
        print("\n".join(fc.describe(forecast, upper_bound=upper)))
    elif costs:
        print("forecast: none for CPU trials (no declared CPU fit): --throughput TFLOPS gives one")
    else:
        print("forecast: none for a sampled scaling range (its architectures are not listed)")
    note = (
        " (it exists: continue it with --resume, or choose another --name)"
        if exists and not args.resume
        else ""
    )
    print(f"results would go to {exp_dir}{note}")
    return 0


def _checked_gpus(args, space) -> int:
    """The cluster's GPUs for the forecast (default: one trial's, times search.max_concurrent),
    and every flag that cannot be honoured refused before minutes of counting or measuring."""
    from rsearch.tune import forecast as fc

    setting = fc.setting_of(space, train_images=1)  # the GPUs per trial only
    gpus = args.gpus or math.ceil(setting.gpus_per_trial * (space.search.max_concurrent or 1))
    fc.trial_slots(gpus, setting)  # a --gpus that holds no trial
    if args.gpus and not space.resources.gpus_per_worker and args.throughput is None:
        raise UserError(
            "--gpus: a forecast of CPU trials needs --throughput TFLOPS (a worker's training "
            "rate; the declared fit is for GPUs)"
        )
    measures = args.measure_latency and space.latency and space.latency.table is None
    if measures and space.latency.method.device == "cuda":
        if not _cuda_here():  # the survey would refuse the device only after counting
            raise UserError(
                "--measure-latency: the space measures latency on cuda (constraints.latency_ms."
                "device) and no CUDA GPU is visible to torch here; drop the flag, or run it "
                "beside the trials' GPUs"
            )
    return gpus


def _counted_costs(plan, ctx) -> dict | None:
    """Params and FLOPs of every architecture, with the max_params / max_flops decisions (the
    latency budget needs --measure-latency)."""
    if not plan.architectures:
        return None
    from rsearch.tune.forecast import count_costs
    from rsearch.tune.trial import over_budget

    costs = count_costs(plan.architectures, ctx.num_classes, ctx.in_chans)
    for cost in costs.values():
        cost[OVER_BUDGET] = over_budget(cost, ctx)
    return costs


def _forecast(args, space, plan, costs: dict, ctx, gpus: int) -> dict | None:
    """The forecast from a throughput fit: --throughput, else training steps timed here when
    the trials' GPUs are here, else the declared GPU fit from FLOPs. CPU trials have no declared
    fit (and timing CPU steps on a shared machine takes minutes): no forecast without
    --throughput."""
    from rsearch.tune import forecast as fc

    images, images_from = fc.train_images(space, args.train_size)
    setting = fc.setting_of(space, images)
    device = "cuda" if space.resources.gpus_per_worker else "cpu"
    if args.throughput is not None:
        fit = fc.throughput_fit(args.throughput)
    elif device == "cpu":
        return None
    elif _cuda_here():
        fit = fc.measure_fit(plan.architectures, costs, setting, ctx, device)
    else:
        fit = fc.DECLARED_FIT
    trained = [costs[a.key] for a in _trial_archs(plan)]
    flops = [c[M.FLOPS] for c in trained if c.get(OVER_BUDGET) is None]
    return {
        **fc.forecast(flops, setting, fit, gpus),
        "device": device,
        "train_images_from": images_from,
        "latency_budget_applied": space.latency is None or bool(args.measure_latency),
    }


def _cuda_here() -> bool:
    import torch  # torch, only for a dry run's forecast

    return torch.cuda.is_available()


def _trial_archs(plan) -> list:
    """Each planned trial's architecture, in Tune's order: the grid's architectures each get
    trials_per_regime / len(architectures) trials (the other grid dimensions); a sampled search
    is assumed to draw them evenly."""
    archs = plan.architectures
    return [archs[i % len(archs)] for i in range(plan.trials_per_regime)]


def _measure_latencies(space, exp_dir: str, plan, ctx, progress: bool):
    """Every architecture's cost and feasibility, measured here (no Ray), validated against the
    latency table when it has them; the table is read, never written (a dry run writes nothing)."""
    if not plan.architectures:
        return None, None
    import torch  # torch, only when latency is measured

    from rsearch.tune.costs import measure_costs
    from rsearch.tune.driver import latency_table
    from rsearch.tune.trial import over_budget

    table = latency_table(exp_dir)
    ctx = dataclasses.replace(ctx, latency_cache=table if storage.exists(table) else None)
    # The real run measures in a Ray task holding one trial's CPUs, where torch runs that many
    # threads: measure with the same, or figures of `threads: null` spaces would differ.
    torch.set_num_threads(max(1, int(ctx.cpus_per_worker)))
    costs, survey = measure_costs(plan.architectures, ctx, progress=progress, read_only_cache=True)
    for cost in costs.values():  # every budget decides: latency, max_params, max_flops
        cost[OVER_BUDGET] = over_budget(cost, ctx)
    return costs, survey


# The dry run's JSON: report key -> cost row column, per architecture.
_REPORTED = {
    M.PARAMS: M.PARAMS,
    M.FLOPS: M.FLOPS,
    M.LATENCY_MS: M.LATENCY_MS,
    M.LATENCY_NOISE: M.LATENCY_NOISE,
    M.LATENCY_RATIO: M.LATENCY_RATIO,
    M.LATENCY_MARGIN: M.LATENCY_MARGIN,
    M.LATENCY_RATIO_NOISE: M.LATENCY_RATIO_NOISE,
    "borderline": M.LATENCY_BORDERLINE,
    "cached": M.LATENCY_CACHED,
}


def dry_run_report(
    space,
    plan,
    costs: dict | None,
    survey: dict | None,
    exp_dir: str,
    latency_measured: bool = True,
) -> dict:
    # Without measured latencies a latency budget is undecided: feasible is None unless another
    # budget (max_params, max_flops) already rules the architecture out.
    undecided = space.latency is not None and not latency_measured
    archs = []
    for arch in plan.architectures or []:
        cost = (costs or {}).get(arch.key, {})
        archs.append(
            {
                **arch.columns(),  # depth: layers or blocks; an EfficientNet's multiplier apart
                M.MODEL: cost.get(M.MODEL),
                **{key: cost.get(column) for key, column in _REPORTED.items()},
                "feasible": _feasible(cost, undecided) if costs else None,
                OVER_BUDGET: cost.get(OVER_BUDGET),
            }
        )
    latency = space.latency
    return {
        "experiment": space.name,
        "results_dir": exp_dir,
        "regimes": plan.regimes,
        "trials_per_regime": plan.trials_per_regime,
        "budget": None if latency is None else latency.budget_fields(),
        "latency_survey": survey,
        "architectures": archs,
        "feasible": sum(1 for a in archs if a["feasible"]) if costs and not undecided else None,
        "latency_measured": latency_measured,
    }


def _feasible(cost: dict, undecided: bool) -> bool | None:
    if cost.get(OVER_BUDGET) is not None:
        return False
    return None if undecided else True


def _print_summary(exp_dir: str) -> int:
    """The study's outcome; exit code 1 when trials ran and every one of them failed."""
    from rsearch import results  # pyarrow and pandas, once the search is done
    from rsearch.frames import ok_mask

    exp = results.read_experiment(exp_dir, allow_empty=True)
    print(f"\nexperiment: {exp_dir}")
    if exp.results.empty:
        print("no trials recorded")
        return 0
    counts = exp.results[M.STATUS].value_counts().to_dict()
    print("trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    failed = exp.results[exp.results[M.STATUS] == M.STATUS_FAILED]
    if len(failed) and not ok_mask(exp.results).any():
        first = failed.iloc[0]
        print(
            f"rsearch tune: error: no trial finished: {len(failed)} failed "
            f"(trial {first[M.TRIAL_ID]}: {first[M.FAILURE]})",
            file=sys.stderr,
        )
        return 1
    front = results.front_summary(exp.results)
    if not front.empty:
        print("\nPareto front (minival top-1 vs latency) per regime:")
        print(front.to_string(index=False))
    best = results.best_under_budget(exp.results, exp.meta.get("latency_budget_ms"))
    if best:
        print("\nbest under the latency budget:")
        for regime, row in sorted(best.items()):
            if row:
                print(
                    f"  {regime} epochs: {row_phrase(row)} resolution "
                    f"{row[M.RESOLUTION]}  minival {row[M.MINIVAL_TOP1]:.4f}  "
                    f"latency {row[M.LATENCY_MS]:.3g} ms"
                )
    print(f"\ndashboard: rsearch dashboard {exp_dir}", file=sys.stdout)
    return 0
