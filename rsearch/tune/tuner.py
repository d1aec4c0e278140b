"""Tune's parts for one regime: param space (nesting mirrors the trial config), search
algorithm (rsearch's drawn jobs for grid | random; HyperOpt TPE or Optuna's multi-objective
TPE, warm-started on resume),
scheduler (FIFO | ASHA | Pareto ASHA) and run config."""

from __future__ import annotations

import copy
import functools

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.optuna import OptunaSearch  # loads without optuna; asks for it when used
from ray.tune.search.sample import Domain
from ray.tune.utils.util import flatten_dict

from rsearch import metrics as M
from rsearch import storage
from rsearch.noise import minival_noise
from rsearch.space.schema import MODEL_BASED
from rsearch.tune.pareto_asha import ParetoASHA
from rsearch.tune.trial import trial_settings


def param_space(space, regime: int, feasible: list) -> dict:
    # Lists are grid dimensions under `grid` and choices otherwise: the space decided at parse
    # time. The param space stays plain dicts and values: Tune stores it with every trial.
    ps: dict = {M.EPOCHS: regime, M.SEED: int(space.search.seed or 0)}
    if space.search.algorithm == "grid" and feasible:
        # One grid dimension over the feasible architectures: configs over the budget never reach
        # Tune.
        ps["arch"] = tune.grid_search([a.to_list() for a in feasible])
    else:
        ps.update({key: dim.to_tune() for key, dim in space.scaling.trial_dimensions().items()})
    ps["regularization"] = {k: d.to_tune() for k, d in space.regularization.items()}
    ps["recipe"] = {k: d.to_tune() for k, d in space.recipe.items()}
    return ps


def search_algorithm(space, param_space: dict, observed: list[tuple[dict, dict]] = ()):
    """HyperOpt TPE for `hyperopt` searches, Optuna's multi-objective TPE for `optuna` (None:
    the jobs rsearch drew run as a grid). `observed`: (config, {metric: value}) of trials
    finished before a resume, which the searcher learns from."""
    search = space.search
    if search.algorithm not in MODEL_BASED:
        return None
    # TPE starts from a few random points (Ray's default of 20 would make a short search random).
    initial = max(3, search.num_samples // 4)
    # A resumed TPE with the first run's seed would replay that run's random start points,
    # which have run already: the seed moves on by the points it has seen.
    seed = None if search.seed is None else int(search.seed) + len(observed)
    seen = [(searched_values(param_space, c), values) for c, values in observed]
    if search.algorithm == "optuna":
        algo = _optuna_search(space, initial, seed, seen)
    else:
        algo = WarmStartHyperOpt(
            metric=M.OBJECTIVE,
            mode=M.OBJECTIVE_MODE,
            n_initial_points=initial,
            random_state_seed=seed,
            observed=[(c, values[M.OBJECTIVE]) for c, values in seen],
        )
    if search.max_concurrent:
        return ConcurrencyLimiter(algo, max_concurrent=search.max_concurrent)
    return algo


def objectives(space) -> tuple[list[str], list[str]]:
    """(metrics, modes) a multi-objective searcher optimises: the objective, and the cost the
    front is drawn against (measured latency under a latency budget, else FLOPs)."""
    cost = M.LATENCY_MS if space.latency is not None else M.FLOPS
    return [M.OBJECTIVE, cost], [M.OBJECTIVE_MODE, "min"]


def _optuna_search(space, initial: int, seed: int | None, seen: list[tuple[dict, dict]]):
    # optuna is an optional extra (rsearch[optuna]); the schema checked it is installed
    import optuna
    from optuna.samplers import TPESampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" per regime

    metrics, modes = objectives(space)
    sampler = TPESampler(n_startup_trials=initial, seed=seed)
    return WarmStartOptuna(metric=metrics, mode=modes, sampler=sampler, observed=seen)


class WarmStartOptuna(OptunaSearch):
    """Optuna's TPE over several objectives (Ray's OptunaSearch, metric and mode as lists),
    started having seen `observed` (config, {metric: value}) points: they enter the study as
    completed trials, so TPE models them and suggests none of them again."""

    def __init__(self, *args, observed: list[tuple[dict, dict]] = (), **kwargs):
        self._observed = [(dict(c), dict(v)) for c, v in observed]
        super().__init__(*args, **kwargs)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # Tune hands every searcher TuneConfig's one metric (the scheduler's): the objectives
        # stay this searcher's own.
        return super().set_search_properties(None, None, config, **spec)

    def _setup_study(self, mode) -> None:
        super()._setup_study(mode)
        from optuna.trial import create_trial  # optuna: an optional extra (see _optuna_search)

        for config, values in self._observed:
            try:
                trial = create_trial(
                    params=flatten_dict(config, delimiter="/"),  # Ray's names for Optuna
                    distributions=self._space,
                    values=[float(values[name]) for name in self._metric],
                )
            except (ValueError, KeyError, TypeError):
                continue  # outside today's space, or a cost never measured: nothing to model
            self._ot_study.add_trial(trial)


def searched_values(param_space: dict, config: dict) -> dict:
    """The config's values of the dimensions a searcher samples (constants left out)."""
    out = {}
    for key, dim in param_space.items():
        if isinstance(dim, dict):
            nested = searched_values(dim, config.get(key) or {})
            if nested:
                out[key] = nested
        elif isinstance(dim, Domain) and key in config:
            out[key] = config[key]
    return out


class WarmStartHyperOpt(HyperOptSearch):
    """HyperOpt TPE that starts having seen `observed` (config, objective) points: Ray's
    HyperOptSearch takes points to evaluate, not points already evaluated (its
    add_evaluated_point is not implemented). They enter as hyperopt trials marked done with
    their loss, so TPE models them and none is suggested to be run again."""

    def __init__(self, *args, observed: list[tuple[dict, float]] = (), **kwargs):
        self._observed = [(dict(c), float(v)) for c, v in observed]
        super().__init__(*args, **kwargs)

    def _setup_hyperopt(self) -> None:
        super()._setup_hyperopt()
        if not self._observed:
            return
        # hyperopt is imported by the searcher only: Ray's HyperOptSearch module loads without it
        from hyperopt import JOB_STATE_DONE, STATUS_OK
        from hyperopt.fmin import generate_trials_to_calculate

        points, values = [], []
        for config, value in self._observed:
            config = copy.deepcopy(config)
            try:
                _choices_as_indices(config, self._space)  # hyperopt knows a choice by its index
            except (ValueError, KeyError, TypeError):
                continue  # a recorded value outside today's space: nothing TPE can model
            # hyperopt's labels: "regularization/dropout"
            points.append(flatten_dict(config, delimiter="/"))
            values.append(value)
        if not points:
            return
        trials = generate_trials_to_calculate(points)
        trials.refresh()  # its docs become visible as trials.trials
        for doc, value in zip(trials.trials, values):
            doc["state"] = JOB_STATE_DONE
            doc["result"] = {"loss": self.metric_op * value, "status": STATUS_OK}
        trials.refresh()
        self._hpopt_trials = trials


def _choices_as_indices(config: dict, hp_space: dict) -> None:
    """Each value of a hyperopt choice in `config` replaced by its index, in place. Ray's own
    conversion (HyperOptSearch._convert_categories_to_indices) sees literal options only: an
    option that is a list (the `arch` of a two-family space) is a pyll node there, and every
    recorded point would be dropped. ValueError for a value that is no option."""
    from hyperopt.pyll import rec_eval  # hyperopt, by the searcher only (see above)

    for key, value in config.items():
        node = hp_space[key]
        if isinstance(value, dict):
            _choices_as_indices(value, node)
        elif getattr(node, "name", None) == "switch":
            options = [_plain(rec_eval(arg)) for arg in node.pos_args[1:]]
            config[key] = options.index(_plain(value))


def _plain(value):
    """Lists and tuples alike (hyperopt evaluates a list option to a tuple; JSON reads a list)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def scheduler(space, regime: int, ctx, exp_dir: str | None = None):
    """The space's scheduler for one regime. Both ASHAs count time in epochs (the `epoch` each
    report carries): a trial resumed from its checkpoint in a fresh Tune trial is at its own
    epoch, whatever Tune's count of its reports (training_iteration) says."""
    sched = space.search.scheduler
    if sched.kind == "pareto_asha":
        return ParetoASHA(
            regime=regime,
            cost_of=functools.partial(trial_latency, ctx.costs),
            grace_fraction=float(sched.grace_fraction),
            reduction_factor=float(sched.reduction_factor),
            noise=minival_noise(ctx.minival_size),
            exp_dir=exp_dir,
        )
    if sched.kind == "asha":
        return ASHAScheduler(
            time_attr=M.EPOCH,
            max_t=regime,
            grace_period=min(int(sched.grace_period), regime),
            reduction_factor=float(sched.reduction_factor),
        )
    return FIFOScheduler()


def trial_latency(costs: dict, trial, result: dict) -> float | None:
    """A trial's latency: reported by 1-worker trials, else from the pre-search cost table
    (FLOPs where the space sets no latency budget)."""
    arch, _, _ = trial_settings(trial.config)  # a job's config, unwrapped
    known = costs.get(arch.key, {})
    for key in (M.LATENCY_MS, M.FLOPS):
        for source in (result, known):
            if source.get(key) is not None:
                return float(source[key])
    return None


def tune_config(
    space,
    regime: int,
    ctx,
    recorder,
    *,
    search_alg=None,
    num_samples: int = 1,
    scheduled: bool = True,
) -> tune.TuneConfig:
    """A Tune run's config: rsearch's jobs as a grid (search_alg None, one sample each), or
    HyperOpt sampling `num_samples` trials; with the space's scheduler unless `scheduled` is off."""
    return tune.TuneConfig(
        metric=M.OBJECTIVE,
        mode=M.OBJECTIVE_MODE,
        search_alg=search_alg,
        scheduler=scheduler(space, regime, ctx, recorder.exp_dir) if scheduled else None,
        num_samples=num_samples,
        # a searcher's ConcurrencyLimiter holds the limit already (Tune warns of a second one)
        max_concurrent_trials=None
        if isinstance(search_alg, ConcurrencyLimiter)
        else space.search.max_concurrent,
        # a finished trial's process takes the next trial: no new Python + torch import
        reuse_actors=True,
    )


def run_config(path: str, recorder, tracker=None) -> tune.RunConfig:
    """Where a Tune run keeps its state, how it retries, the results recorder and, when the
    search is tracked, the MLflow logger (after the recorder: it reads the rows it updates)."""
    return tune.RunConfig(
        name=storage.basename(path),
        **storage.ray_storage(storage.parent(path)),
        # a killed trial resumes from its checkpoint
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[recorder] if tracker is None else [recorder, tracker],
        verbose=0,
    )
