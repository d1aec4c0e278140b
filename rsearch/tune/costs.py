"""Cost of each architecture before any training: params and FLOPs (counted) and latency
(measured in interleaved rounds with the space's declared method, validated against and
stored in a Parquet latency table keyed by config, method, device and software), with the
feasibility decision of the space's latency budget (rsearch.cost.survey)."""

from __future__ import annotations

import dataclasses

from rsearch import metrics as M
from rsearch.architecture import Architecture
from rsearch.cost import LatencyCache, LatencyMethod, model_cost
from rsearch.cost.survey import survey
from rsearch.models import network_config

# Latency columns a cost row carries into results.parquet (besides latency_ms).
LATENCY_COLUMNS = (
    M.LATENCY_P95_MS,
    M.LATENCY_SPREAD_MS,
    M.LATENCY_NOISE,
    M.LATENCY_ROUNDS,
    M.LATENCY_RUNS,
    M.LATENCY_RATIO,
    M.LATENCY_RATIO_NOISE,
    M.LATENCY_FEASIBLE,
    M.LATENCY_MARGIN,
    M.LATENCY_BORDERLINE,
    M.LATENCY_REMEASURED,
    M.LATENCY_CACHED,
)


def reference_key(ctx) -> str | None:
    """The arch key of a relative budget's reference architecture."""
    budget = ctx.latency_budget
    if budget is None or not budget.relative:
        return None
    return Architecture.of(*budget.reference).key


def measure_costs(
    archs,
    ctx,
    *,
    resnet_d: bool = True,
    se: bool = True,
    progress: bool = False,
    read_only_cache: bool = False,
):
    """({Architecture.key: {params, flops, latency_ms, latency noise, decision...}}, survey
    summary) of `archs`, Architectures (or their `to_list()` forms).

    Runs here: call it inside a process that holds the trials' kind of resources
    (`measure_costs_remote` does that with a Ray task; the dry run calls it directly)."""
    archs = [a if isinstance(a, Architecture) else Architecture.from_list(a) for a in archs]
    configs = {a.key: (_model(a, ctx, resnet_d, se), a.resolution) for a in archs}
    out = {}
    for arch in archs:
        cfg = configs[arch.key][0]
        counted = model_cost(cfg, arch.resolution)
        out[arch.key] = {
            **arch.columns(),
            M.MODEL: cfg.name,
            M.PARAMS: counted[M.PARAMS],
            M.FLOPS: counted[M.FLOPS],
        }
    if not ctx.latency_method:
        return out, None
    ref = reference_key(ctx)
    items = dict(configs)
    if ref is not None and ref not in items:  # the reference is timed in the same rounds
        reference = Architecture.of(*ctx.latency_budget.reference)
        items[ref] = (_model(reference, ctx, True, True), reference.resolution)
    cache = LatencyCache(ctx.latency_cache, flag="latency table") if ctx.latency_cache else None
    found = survey(
        items,
        LatencyMethod(**ctx.latency_method),
        ctx.latency_budget,
        cache,
        reference=ref,
        progress=progress,
        store=not read_only_cache,
    )
    for key in out:
        fig = found.figures[key]
        out[key][M.LATENCY_MS] = float(fig[M.LATENCY_MS])
        out[key].update({k: fig[k] for k in LATENCY_COLUMNS if k in fig})
    summary = found.describe()
    if ref is not None:
        summary["reference_ms"] = float(found.figures[ref][M.LATENCY_MS])
    return out, summary


def _model(arch: Architecture, ctx, resnet_d: bool, se: bool):
    # The trial's own builder (TrainConfig.model): the same network, the same cache key.
    return network_config(
        arch, num_classes=ctx.num_classes, in_chans=ctx.in_chans, resnet_d=resnet_d, se=se
    )


def measure_costs_remote(archs, ctx):
    """Measure on the kind of device the trials use: one Ray task with one worker's resources,
    run before the trials start so the latency figures are not disturbed by training."""
    # Ray is loaded only here: the dry run measures in-process and never starts it.
    import ray

    task = ray.remote(measure_costs).options(
        num_cpus=max(1, ctx.cpus_per_worker),
        num_gpus=ctx.gpus_per_worker if ctx.gpus_per_worker else 0,
    )
    return ray.get(task.remote(list(archs), dataclasses.replace(ctx, costs={})))
