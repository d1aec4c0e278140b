"""Cost of each architecture before any training: params and FLOPs (counted) and latency
(measured once per (depth, width, resolution) with the space's declared method, cached in a
Parquet latency table keyed by config, method, device and software)."""
from __future__ import annotations

import dataclasses

from rsearch import metrics as M


def measure_costs(archs, ctx, *, resnet_d: bool = True, se: bool = True) -> dict[str, dict]:
    """{"depth,width,resolution": {params, flops, latency_ms, latency_p95_ms, latency_method...}}.

    Runs here: call it inside a process that holds the trials' kind of resources
    (`measure_costs_remote` does that with a Ray task)."""
    from rsearch.cost import LatencyCache, LatencyMethod, measure_latency, model_cost
    from rsearch.models import model_config
    from rsearch.tune.trial import arch_key

    cache = LatencyCache(ctx.latency_cache) if ctx.latency_cache else None
    method = LatencyMethod(**ctx.latency_method) if ctx.latency_method else None
    out = {}
    for depth, width, resolution in archs:
        cfg = model_config(depth=int(depth), width=float(width), num_classes=ctx.num_classes, in_chans=ctx.in_chans,
                           rs=resnet_d)
        cfg = dataclasses.replace(cfg, se_ratio=0.25 if se else 0.0)  # as TrainConfig.model() builds it
        row = {M.DEPTH: int(depth), M.WIDTH: float(width), M.RESOLUTION: int(resolution), "model": cfg.name}
        row.update({k: v for k, v in model_cost(cfg, int(resolution)).items() if k in (M.PARAMS, M.FLOPS)})
        if method is not None:
            lat = cache.get_or_measure(cfg, int(resolution), method) if cache else measure_latency(cfg, int(resolution), method)
            row[M.LATENCY_MS] = float(lat["latency_ms"])
            row["latency_p95_ms"] = float(lat.get("latency_p95_ms", lat["latency_ms"]))
        out[arch_key(depth, width, resolution)] = row
    return out


def measure_costs_remote(archs, ctx) -> dict[str, dict]:
    """Measure on the kind of device the trials use: one Ray task with one worker's resources,
    run before the trials start so the latency figures are not disturbed by training."""
    import ray

    task = ray.remote(measure_costs).options(num_cpus=max(1, ctx.cpus_per_worker),
                                             num_gpus=ctx.gpus_per_worker if ctx.gpus_per_worker else 0)
    return ray.get(task.remote(list(archs), dataclasses.replace(ctx, costs={})))
