"""Cost of each architecture before any training: params and FLOPs (counted) and latency
(measured in interleaved rounds with the space's declared method, validated against and
stored in a Parquet latency table keyed by config, method, device and software), with the
feasibility decision of the space's latency budget (rsearch.cost.survey)."""

from __future__ import annotations

import dataclasses
import itertools
import shlex

from rsearch import metrics as M
from rsearch.architecture import RESNETRS, Architecture
from rsearch.cost import LatencyCache, LatencyMethod, model_cost
from rsearch.cost.rounds import measure_interleaved
from rsearch.cost.survey import storable, survey
from rsearch.cost.table import missing_keys, missing_message, survey_table, write_table
from rsearch.errors import UserError
from rsearch.models import network_config
from rsearch.recipe import DEFAULT_PRESETS, preset

TABLE_KEY = "constraints.latency_ms.table"
NEW_TABLE_COMMAND = "rsearch cost --space {space} --latency --out NEW_TABLE.parquet"
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
    items = latency_items(archs, ctx, configs)
    if ctx.latency_table is not None:
        found = _from_table(items, ctx, ref)
    else:
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
    if ctx.latency_table is not None:
        summary["table"] = ctx.latency_table["source"]
    if ref is not None:
        summary["reference_ms"] = float(found.figures[ref][M.LATENCY_MS])
    return out, summary


def latency_items(archs, ctx, configs: dict | None = None, switches=()) -> dict:
    """{key: (model config, resolution)} of the networks whose latency a search needs: `archs`
    (Architectures, keyed by Architecture.key), each ResNet-RS among them also without ResNet-D
    or SE as the (resnet_d, se) `switches` of its recipes build it, and, for a relative budget,
    its reference, timed in the same rounds."""
    items = dict(configs or {a.key: (_model(a, ctx, True, True), a.resolution) for a in archs})
    for resnet_d, se in switches:
        for a in archs:
            if a.family == RESNETRS:
                items[f"{a.key}:resnet_d={resnet_d},se={se}"] = (
                    _model(a, ctx, resnet_d, se),
                    a.resolution,
                )
    ref = reference_key(ctx)
    if ref is not None and ref not in items:
        reference = Architecture.of(*ctx.latency_budget.reference)
        items[ref] = (_model(reference, ctx, True, True), reference.resolution)
    return items


def recipe_switches(space) -> list[tuple[bool, bool]]:
    """The (resnet_d, se) pairs of the recipes a space's ResNet-RS trials can train with, other
    than the full network's: an additive study's early presets train another network (plain
    stem and shortcut, no SE), whose latency is its own."""
    values = {key: _values(space.recipe.get(key)) for key in ("preset", "resnet_d", "se")}
    pairs = set()
    for name, resnet_d, se in itertools.product(*values.values()):
        overrides = {k: v for k, v in {"resnet_d": resnet_d, "se": se}.items() if v is not None}
        recipe = preset(name or DEFAULT_PRESETS[RESNETRS], **overrides)
        pairs.add((recipe.resnet_d, recipe.se))
    return sorted(pairs - {(True, True)})


def _values(dimension) -> list:
    """A recipe dimension's values; [None] when the space does not set it, or samples it."""
    return (dimension.values() if dimension is not None else None) or [None]


def check_table(space, ctx, space_arg: str) -> None:
    """Before anything runs (the search, its dry run): every network the search's trials can
    train is in the deployment table it reads, else one line naming the first few and the
    command that measures them."""
    if ctx.latency_table is None:
        return
    items = latency_items(space.architectures() or [], ctx, switches=recipe_switches(space))
    _check_covered(items, ctx, NEW_TABLE_COMMAND.format(space=shlex.quote(space_arg)))


def _check_covered(items: dict, ctx, remedy: str) -> None:
    missing = missing_keys(items, ctx.latency_table)
    if missing:
        raise UserError(missing_message(missing, items, ctx.latency_table, TABLE_KEY, remedy))


def _from_table(items: dict, ctx, ref: str | None):
    """The figures of a table measured on the deployment target; nothing is measured here."""
    _check_covered(items, ctx, NEW_TABLE_COMMAND.format(space="SPACE"))
    return survey_table(items, ctx.latency_table, ctx.latency_budget, ref)


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


def measure_table(archs, ctx, method: LatencyMethod, out, *, switches=(), progress: bool = False):
    """Measure every network of a search (latency_items) with `method`, on this machine, in
    interleaved rounds, and write them as a deployment target's latency table (rsearch cost
    --space --out). Returns ({latency_items key: figure}, the table's path)."""
    items = latency_items(archs, ctx, switches=switches)
    figures = measure_interleaved(items, method, reference=reference_key(ctx), progress=progress)
    entries = [(key, cfg, res, storable(figures[key])) for key, (cfg, res) in items.items()]
    path = write_table(out, entries, method) if out is not None else None
    return figures, path
