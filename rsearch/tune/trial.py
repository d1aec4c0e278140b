"""The Tune function trainable: one trial = one (architecture, regularization, regime).

1 worker  -> the training loop runs inside the trial process (no Ray Train start-up cost);
N workers -> the trial drives a Ray Train TorchTrainer named after the trial id, whose
             reports reach Tune through Ray's TuneReportCallback.
A configuration over the latency (or params/FLOPs) budget is reported as `infeasible`
with its measured cost and never trained; it reports the worst objective so that a
model-based searcher (HyperOpt TPE) learns the boundary instead of sampling near it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ray import tune

from rsearch import memory, storage
from rsearch import metrics as M
from rsearch.architecture import EFFICIENTNET, RESNETRS, Architecture
from rsearch.cost.budget import LatencyBudget
from rsearch.data import DataConfig
from rsearch.errors import UserError
from rsearch.models.registry import EFFICIENTNET_PRESETS, efficientnet_regularization_defaults
from rsearch.recipe import DEFAULT_PRESETS, preset
from rsearch.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, same_run, save_checkpoint
from rsearch.train.config import TrainConfig
from rsearch.train.distributed import fit_torch_trainer
from rsearch.train.loop import DIVERGED, TrainingDiverged, train_epochs
from rsearch.tune.costs import measure_costs
from rsearch.tune.jobs import job_field, unwrap

# An EfficientNet's multipliers, as a space names them (its `depth` is no layer count).
MULTIPLIER_KEYS = ("depth_mult", "width_mult")

# Recipe fields that quniform/randint may yield as floats; the Recipe takes them as ints.
INTEGER_RECIPE_FIELDS = (M.RANDAUGMENT_MAGNITUDE, M.RANDAUGMENT_OPS, M.BATCH_SIZE)


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares, handed over with tune.with_parameters (not searched)."""

    data: dict  # DataConfig fields
    num_classes: int
    in_chans: int
    workers: int = 1
    cpus_per_worker: float = 1
    gpus_per_worker: float = 0
    latency_budget: LatencyBudget | None = None  # absolute ms, or a ratio to a reference
    max_params: int | None = None
    max_flops: int | None = None
    latency_method: dict | None = None  # LatencyMethod fields
    latency_cache: str | None = None  # Parquet latency cache of this machine's measurements
    # figures measured on the deployment target (constraints.latency_ms.table): nothing is
    # measured when set; cost/table.py LatencyTable.to_context()
    latency_table: dict | None = None
    # Architecture.key ("depth,width,resolution") -> {params, flops, latency_ms, ...}
    costs: dict = field(default_factory=dict)
    train_storage: str = ""  # where N-worker trials keep their Ray Train runs
    max_steps_per_epoch: int | None = None  # cap on steps per epoch (benchmarks, smoke checks)
    eval_test: bool = True  # evaluate the test split after a trial's last epoch
    minival_size: int = 0  # images in the minival split (how noisy its accuracy is)


def confirmed_trial(config: dict) -> str | None:
    """The original trial id of a confirmation rerun; None for an original trial."""
    return job_field(config, "of")


def trial_settings(config: dict) -> tuple[Architecture, dict, str]:
    """Split a trial config into (architecture, recipe values, preset)."""
    config = unwrap(config)
    if "arch" in config:  # grid searches enumerate feasible architectures as one dimension
        arch = Architecture.from_list(config["arch"])
    elif M.MODEL in config:  # an EfficientNet preset's multipliers, at the trial's resolution
        preset_arch = EFFICIENTNET_PRESETS[config[M.MODEL]]
        arch = Architecture.of(
            preset_arch.depth_mult, preset_arch.width_mult, config[M.RESOLUTION], EFFICIENTNET
        )
    else:
        family = config.get(M.FAMILY, RESNETRS)
        depth_key, width_key = MULTIPLIER_KEYS if family == EFFICIENTNET else (M.DEPTH, M.WIDTH)
        arch = Architecture.of(config[depth_key], config[width_key], config[M.RESOLUTION], family)
    recipe = dict(config.get("recipe", {}))
    recipe.update(config.get("regularization", {}))
    name = recipe.pop("preset", None) or DEFAULT_PRESETS[arch.family]
    return arch, recipe, name


def per_size_defaults(arch: Architecture) -> dict | None:
    """The recipe's per-size defaults (dropout, stochastic depth, RandAugment magnitude) of an
    EfficientNet; None for ResNet-RS, whose preset reads them from its depth."""
    if arch.family != EFFICIENTNET:
        return None
    return efficientnet_regularization_defaults(arch.depth, arch.resolution)


def build_train_config(config: dict, ctx: TrialContext) -> TrainConfig:
    config = unwrap(config)
    arch, recipe_values, name = trial_settings(config)
    for key in INTEGER_RECIPE_FIELDS:
        if key in recipe_values:
            recipe_values[key] = int(round(recipe_values[key]))
    depth = arch.depth if arch.family == RESNETRS else 50  # the preset's ResNet size rules
    recipe = preset(name, depth=depth, sized=per_size_defaults(arch), **recipe_values)
    device = "cuda" if ctx.gpus_per_worker > 0 else "cpu"
    return TrainConfig(
        depth=arch.depth,
        width=arch.width,
        resolution=arch.resolution,
        family=arch.family,
        epochs=int(config[M.EPOCHS]),
        recipe=recipe,
        data=DataConfig(**ctx.data),
        seed=int(config.get(M.SEED, 0)),
        device=device,
        workers=ctx.workers,
        max_steps_per_epoch=ctx.max_steps_per_epoch,
        eval_test=ctx.eval_test,
    )


def trial_cost(cfg: TrainConfig, ctx: TrialContext) -> dict:
    """params, FLOPs and measured latency (from the pre-search table, else measured now,
    cached)."""
    arch = cfg.arch
    # The pre-search table holds ResNet-RS nets with ResNet-D and SE (an EfficientNet has no
    # such switches: its entry is its network whatever the recipe).
    as_tabled = arch.family != RESNETRS or (cfg.recipe.resnet_d and cfg.recipe.se)
    if arch.key in ctx.costs and as_tabled:
        return dict(ctx.costs[arch.key])
    costs, _ = measure_costs([arch], ctx, resnet_d=cfg.recipe.resnet_d, se=cfg.recipe.se)
    return costs[arch.key]


def over_budget(cost: dict, ctx: TrialContext) -> str | None:
    """Why this configuration is infeasible, or None."""
    if ctx.latency_budget is not None and cost.get(M.LATENCY_FEASIBLE) is False:
        return ctx.latency_budget.why_over(cost)
    if ctx.max_params is not None and cost[M.PARAMS] > ctx.max_params:
        return f"params {cost[M.PARAMS]:,} > max_params {ctx.max_params:,}"
    if ctx.max_flops is not None and cost[M.FLOPS] > ctx.max_flops:
        return f"FLOPs {cost[M.FLOPS]:,} > max_flops {ctx.max_flops:,}"
    return None


def run_trial(config: dict, ctx: TrialContext) -> None:
    # One "Checkpoint successfully created" line per epoch per trial would drown the live table.
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    cfg = build_train_config(config, ctx)
    torch.set_num_threads(max(1, int(ctx.cpus_per_worker)))
    cost = trial_cost(cfg, ctx)
    base = {**cost, M.STATUS: M.STATUS_RUNNING}
    reason = over_budget(cost, ctx)
    if reason is not None:
        tune.report(
            {
                **base,
                M.STATUS: M.STATUS_INFEASIBLE,
                M.FAILURE: reason,
                M.MINIVAL_TOP1: 0.0,
                M.TRAIN_SECONDS: 0.0,
                M.EPOCH: 0,
            }
        )
        return
    # Estimated before allocating: the node's OOM killer never gets to act.
    shortfall = _memory_shortfall(cfg, ctx)
    if shortfall is not None:
        _report_failure(base, shortfall)
        return
    try:
        if cfg.workers == 1:
            _train_in_process(cfg, base, job_field(config, "checkpoint"))
        else:
            _train_on_ray_train(cfg, ctx, base, config)
    except TrainingDiverged as exc:
        _report_failure(base, f"{DIVERGED}{exc}")
    except torch.OutOfMemoryError as exc:  # the trial is recorded as failed; the search goes on
        _report_failure(base, f"out of memory: {str(exc).splitlines()[0]}")


def _memory_shortfall(cfg: TrainConfig, ctx: TrialContext) -> str | None:
    """Why this trial cannot fit in the free memory of the node it landed on, or None."""
    try:
        memory.check_training(
            cfg,
            ctx.num_classes,
            ctx.in_chans,
            batch_flag="recipe.batch_size",
            resolution_flag="scaling.resolution",
        )
    except UserError as exc:
        return f"out of memory (estimated before training): {exc}"
    return None


def _report_failure(base: dict, reason: str) -> None:
    tune.report({**base, M.STATUS: M.STATUS_FAILED, M.FAILURE: reason, M.MINIVAL_TOP1: 0.0})


def _train_in_process(cfg: TrainConfig, base: dict, resumed_from: str | None) -> None:
    resume = None
    # Tune's own checkpoint when Tune restarted the trial (a worker died), else the one a
    # resumed search handed over: the trial continues from its last epoch.
    checkpoint = tune.get_checkpoint() or _recorded_checkpoint(resumed_from)
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            resume = _matching(load_checkpoint(Path(d) / CHECKPOINT_FILE), cfg)
    train_seconds = sum(r.get(M.EPOCH_SECONDS, 0.0) for r in (resume or {}).get("history", []))
    for epoch in train_epochs(cfg, resume=resume):
        train_seconds += epoch.metrics[M.EPOCH_SECONDS]
        status = M.STATUS_OK if epoch.metrics[M.EPOCH] == cfg.epochs else M.STATUS_RUNNING
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(epoch.state(), Path(tmp) / CHECKPOINT_FILE)
            tune.report(
                {**base, **epoch.metrics, M.STATUS: status, M.TRAIN_SECONDS: train_seconds},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )


def _recorded_checkpoint(location: str | None):
    """The checkpoint folder a resumed search recorded for this trial; None when it is gone
    (the trial then starts over: epochs repeated, nothing lost)."""
    if not location:
        return None
    if not storage.exists(storage.join(location, CHECKPOINT_FILE)):
        logging.getLogger(__name__).warning(
            "checkpoint %s is gone; the trial starts over", location
        )
        return None
    fs, path = storage.filesystem(location)
    return tune.Checkpoint(path, filesystem=fs)


def _matching(state: dict, cfg: TrainConfig) -> dict | None:
    """A checkpoint of this very configuration, else None (start over): a results row edited
    by hand must not load another run's weights into this trial."""
    return state if same_run(state.get("config") or {}) == same_run(cfg.to_dict()) else None


def _train_on_ray_train(cfg: TrainConfig, ctx: TrialContext, base: dict, config: dict) -> None:
    # Named after the trial's row (its job id, stable across resumes), else Tune's trial id:
    # a retried or resumed trial finds its Ray Train run and continues from its checkpoint.
    trial_id = job_field(config, "id") or tune.get_context().get_trial_id()
    fit_torch_trainer(
        cfg,
        name=trial_id,
        storage_path=ctx.train_storage,
        in_tune=True,
        report_with=base,
        cpus_per_worker=ctx.cpus_per_worker,
        gpus_per_worker=ctx.gpus_per_worker,
    )
