"""Cost of each architecture before any training: params and FLOPs (counted) and latency
(measured in interleaved rounds with the space's declared method, validated against and
stored in a Parquet latency table keyed by config, method, device and software), with the
feasibility decision of the space's latency budget (rsearch.cost.survey)."""

from __future__ import annotations

import dataclasses

from rsearch import metrics as M

# Latency columns a cost row carries into results.parquet (besides latency_ms).
LATENCY_COLUMNS = (
    "latency_p95_ms",
    "latency_spread_ms",
    "latency_noise",
    "latency_rounds",
    "latency_runs",
    "latency_ratio",
    "latency_ratio_noise",
    "latency_feasible",
    "latency_margin",
    "latency_borderline",
    "latency_remeasured",
    "latency_cached",
)


def reference_key(ctx) -> str | None:
    """The arch key of a relative budget's reference architecture."""
    from rsearch.tune.trial import arch_key

    budget = ctx.latency_budget
    return arch_key(*budget.reference) if budget is not None and budget.relative else None


def measure_costs(
    archs,
    ctx,
    *,
    resnet_d: bool = True,
    se: bool = True,
    progress: bool = False,
    read_only_cache: bool = False,
):
    """({"depth,width,resolution": {params, flops, latency_ms, latency noise, decision...}}, survey summary).

    Runs here: call it inside a process that holds the trials' kind of resources
    (`measure_costs_remote` does that with a Ray task; the dry run calls it directly)."""
    from rsearch.cost import LatencyCache, LatencyMethod, model_cost
    from rsearch.cost.survey import survey
    from rsearch.tune.trial import arch_key

    archs = [(int(d), float(w), int(r)) for d, w, r in archs]
    configs = {arch_key(*a): (_model(a, ctx, resnet_d, se), a[2]) for a in archs}
    out = {}
    for (depth, width, resolution), key in zip(archs, configs):
        cfg = configs[key][0]
        out[key] = {
            M.DEPTH: depth,
            M.WIDTH: width,
            M.RESOLUTION: resolution,
            M.MODEL: cfg.name,
            **{k: v for k, v in model_cost(cfg, resolution).items() if k in (M.PARAMS, M.FLOPS)},
        }
    if not ctx.latency_method:
        return out, None
    ref = reference_key(ctx)
    items = dict(configs)
    if ref is not None and ref not in items:  # the reference is timed in the same rounds
        items[ref] = (
            _model(ctx.latency_budget.reference, ctx, True, True),
            ctx.latency_budget.reference[2],
        )
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
        out[key][M.LATENCY_MS] = float(fig["latency_ms"])
        out[key].update({k: fig[k] for k in LATENCY_COLUMNS if k in fig})
    summary = found.describe()
    if ref is not None:
        summary["reference_ms"] = float(found.figures[ref]["latency_ms"])
    return out, summary


def _model(arch, ctx, resnet_d: bool, se: bool):
    from rsearch.models import model_config

    depth, width, _ = arch
    cfg = model_config(
        depth=int(depth),
        width=float(width),
        num_classes=ctx.num_classes,
        in_chans=ctx.in_chans,
        rs=resnet_d,
    )
    return dataclasses.replace(
        cfg, se_ratio=0.25 if se else 0.0
    )  # as TrainConfig.model() builds it


def measure_costs_remote(archs, ctx):
    """Measure on the kind of device the trials use: one Ray task with one worker's resources,
    run before the trials start so the latency figures are not disturbed by training."""
    import ray

    task = ray.remote(measure_costs).options(
        num_cpus=max(1, ctx.cpus_per_worker),
        num_gpus=ctx.gpus_per_worker if ctx.gpus_per_worker else 0,
    )
    return ray.get(task.remote(list(archs), dataclasses.replace(ctx, costs={})))
