"""Tune's parts for one regime: param space (nesting mirrors the trial config), search
algorithm (grid | random | HyperOpt TPE), scheduler (FIFO | ASHA | Pareto ASHA) and run config."""
from __future__ import annotations

import functools

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter

from rsearch import metrics as M
from rsearch import storage
from rsearch.tune.trial import arch_key, trial_settings


def param_space(space, regime: int, feasible: list) -> dict:
    algorithm = space.search["algorithm"]
    # Lists are grid dimensions under `grid` and choices otherwise: the space decided at parse time.
    ps: dict = {M.EPOCHS: regime, "seed": int(space.search.get("seed") or 0)}
    if algorithm == "grid" and feasible:
        # One grid dimension over the feasible architectures: configs over the budget never reach Tune.
        ps["arch"] = tune.grid_search([list(a) for a in feasible])
    else:
        for key in (M.DEPTH, M.WIDTH, M.RESOLUTION):
            ps[key] = space.scaling[key].to_tune()
    ps["regularization"] = {k: d.to_tune() for k, d in space.regularization.items()}
    ps["recipe"] = {k: d.to_tune() for k, d in space.recipe.items()}
    return ps


def search_algorithm(space):
    search = space.search
    if search["algorithm"] != "hyperopt":
        return None  # Tune's BasicVariantGenerator: grid x num_samples, random sampling
    from ray.tune.search.hyperopt import HyperOptSearch

    # TPE starts from a few random points (Ray's default of 20 would make a short search random).
    initial = max(3, int(search["num_samples"]) // 4)
    algo = HyperOptSearch(metric=M.OBJECTIVE, mode=M.OBJECTIVE_MODE, n_initial_points=initial,
                          random_state_seed=search.get("seed"))
    if search.get("max_concurrent"):
        return ConcurrencyLimiter(algo, max_concurrent=int(search["max_concurrent"]))
    return algo


def scheduler(space, regime: int, ctx, exp_dir: str | None = None):
    sched = space.search["scheduler"]
    if sched["kind"] == "pareto_asha":
        from rsearch.tune.pareto_asha import ParetoASHA, minival_noise

        return ParetoASHA(regime=regime, cost_of=functools.partial(trial_latency, ctx.costs),
                          grace_fraction=float(sched["grace_fraction"]),
                          reduction_factor=float(sched["reduction_factor"]), noise=minival_noise(ctx.minival_size),
                          exp_dir=exp_dir)
    if sched["kind"] == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=regime,
                             grace_period=min(int(sched.get("grace_period", 1)), regime),
                             reduction_factor=float(sched.get("reduction_factor", 3)))
    return FIFOScheduler()


def trial_latency(costs: dict, trial, result: dict) -> float | None:
    """A trial's latency: reported by 1-worker trials, else from the pre-search cost table
    (FLOPs where the space sets no latency budget)."""
    (depth, width, resolution), _, _ = trial_settings(trial.config)
    known = costs.get(arch_key(depth, width, resolution), {})
    for key in (M.LATENCY_MS, M.FLOPS):
        for source in (result, known):
            if source.get(key) is not None:
                return float(source[key])
    return None


def make_tuner_parts(space, regime: int, feasible: list, ctx, path: str, recorder):
    search = space.search
    tune_config = tune.TuneConfig(
        metric=M.OBJECTIVE, mode=M.OBJECTIVE_MODE, search_alg=search_algorithm(space),
        scheduler=scheduler(space, regime, ctx, recorder.exp_dir), num_samples=int(search["num_samples"]),
        max_concurrent_trials=search.get("max_concurrent"),
        reuse_actors=True)  # a finished trial's process takes the next trial: no new Python + torch import
    return param_space(space, regime, feasible), tune_config, run_config(path, recorder)


def run_config(path: str, recorder) -> tune.RunConfig:
    """Where a Tune run keeps its state, how it retries, and the results recorder."""
    return tune.RunConfig(
        name=storage.basename(path), **storage.ray_storage(storage.parent(path)),
        failure_config=tune.FailureConfig(max_failures=2),  # a killed trial resumes from its checkpoint
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[recorder], verbose=0)
