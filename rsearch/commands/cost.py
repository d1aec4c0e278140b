"""`rsearch cost`: parameters, FLOPs, activation memory and measured latency of a model.

Count a model's parameters, FLOPs (2 x MACs, torch's flop counter) and
training activation memory on the meta device (no weights allocated); with
--latency, measure inference latency with a declared method (cached), in
PyTorch or ONNX Runtime (--backend onnxruntime).

With --space, every architecture of a search space, measured in interleaved
rounds with the space's latency method on this machine; --out writes them as a
latency table, which a search on another machine reads instead of measuring
(constraints.latency_ms.table): run it on the deployment target.

examples:
  rsearch cost --model resnetrs-350 --resolution 256 --json
  rsearch cost --depth 300 --width 1.5 --resolution 224 --latency --batch 1,64 --json
  rsearch cost --model resnetrs-50 --resolution 160 --latency --backend onnxruntime
  rsearch cost --space search_spaces/quickstart.yaml --latency --out latency_table.parquet
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from rsearch import metrics as M
from rsearch.bounds import FIELDS, MIN_DEPTH, FieldError
from rsearch.commands.args import add_command, field, integer, named_flags, number, number_list
from rsearch.errors import UserError, bounded
from rsearch.models import model_config, parse_model_name, regularization_defaults

DEFAULT_CACHE = "~/.cache/rsearch/latency.parquet"
# The fields model_config and check_resolution name, as this command's flags.
EFFICIENTNET = "efficientnet-"  # the prefix of the EfficientNet presets' names
FLAGS = {
    "num_classes": "--classes",
    "in_chans": "--in-chans",
    "model": "--model",
    "batch_size": "--batch",
    "backend": "--backend",
}
# Flags that default to None so that --space can tell what was given (argparse dest -> the
# default of a single model's measurement; _fill_defaults sets them).
METHOD_DEFAULTS = {
    "batch": [1],
    "device": "cpu",
    "dtype": "float32",
    "warmup": 3,
    "repeats": 10,
    "min_run_time": 0.05,
    "channels_last": False,
    "compile": False,
    "cuda_graphs": False,
    "threads": None,
}
# Flags that describe one model, refused beside --space (the space lists the architectures),
# and the cache's, which --space does not use (its table is measured afresh).
BESIDE_SPACE_REFUSED = ("width", "resolution", "baseline", "cache", "no_cache")


def register(subparsers) -> None:
    p = add_command(subparsers, __name__)
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--space",
        help="every architecture of this search-space YAML, with its latency method (with "
        "--latency; --out writes them as a latency table for constraints.latency_ms.table)",
    )
    which.add_argument(
        "--model",
        help="resnetrs-50 .. resnetrs-420 (or resnetrs50, resnet-50 for "
        "the plain baseline, resnetrs-<depth> for any depth), or efficientnet-b0 .. b7",
    )
    which.add_argument(
        "--depth",
        type=field("depth"),
        help=f"any depth >= {MIN_DEPTH} (published block counts where they exist, "
        "the documented rule otherwise)",
    )
    p.add_argument("--width", type=field("width"), help="width multiplier (default 1.0)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="plain ResNet (7x7 stem + max-pool, no SE, no ResNet-D) instead of ResNet-RS",
    )
    p.add_argument(
        "--resolution",
        type=field("resolution"),
        help="input size in pixels (default: the paper's size for that depth)",
    )
    p.add_argument(
        "--classes",
        type=field("num_classes"),
        help="number of classes (default 1000; with --space: the space's data's, or this "
        "count where the data cannot be read, as on a deployment target)",
    )
    p.add_argument(
        "--in-chans",
        type=int,
        choices=(1, 3),
        help="input channels (default 3; with --space as --classes)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    lat = p.add_argument_group("latency (with --latency)")
    lat.add_argument("--latency", action="store_true", help="also measure inference latency")
    # The method's flags default to None: with --space the space sets the method, and a flag
    # given beside it is refused rather than silently ignored (METHOD_DEFAULTS fills them).
    lat.add_argument(
        "--batch",
        type=number_list(FIELDS["batch_size"], "1,64"),
        help="batch sizes, e.g. 1,64 (default 1)",
    )
    lat.add_argument("--device", choices=("cpu", "cuda"), help="default cpu")
    lat.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        help="bfloat16 runs under autocast (default float32)",
    )
    lat.add_argument("--warmup", type=integer(0), help="untimed calls (default 3)")
    lat.add_argument(
        "--repeats",
        type=integer(1),
        help="timed rounds, each a torch.utils.benchmark blocked_autorange (default 10)",
    )
    lat.add_argument(
        "--min-run-time",
        type=number(0, 60, why="seconds"),
        help="seconds of timed calls per round (default 0.05)",
    )
    lat.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    lat.add_argument("--compile", action="store_true", help="torch.compile the model")
    lat.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay CUDA graphs (compile mode reduce-overhead with --compile)",
    )
    lat.add_argument("--threads", type=integer(1), help="CPU threads (default: torch's default)")
    lat.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        help="what runs the model: torch (default), or ONNX Runtime's CPU execution provider "
        "(float32; pip install 'rsearch[onnx]'); with --space it replaces the space's backend",
    )
    lat.add_argument(
        "--out",
        help="with --space --latency: write the figures as a latency table (Parquet) here",
    )
    lat.add_argument(
        "--cache",
        help=f"latency cache, Parquet (default $RSEARCH_LATENCY_CACHE or {DEFAULT_CACHE}; "
        "not with --space, which measures afresh)",
    )
    lat.add_argument(
        "--no-cache", action="store_true", help="always measure; do not read or write the cache"
    )
    p.set_defaults(func=run)


def _resolve(args):
    """Validate everything before any work: (cfg, resolution, the report's description of
    the network, latency methods)."""
    # torch: the CLI builds every command's parser (`rsearch --help`) without importing it
    from rsearch.cost import LatencyMethod, check_device, check_resolution
    from rsearch.cost.onnx import require_onnxruntime

    if args.model is None and args.depth is None:
        raise UserError(
            "--model, --depth or --space: one is required (e.g. --model resnetrs-50 or --depth 300)"
        )
    if args.out is not None:
        raise UserError("--out: only with --space (a latency table holds a space's architectures)")
    _fill_defaults(args)
    with named_flags(FLAGS):
        if args.model is not None and args.model.startswith(EFFICIENTNET):
            cfg, default_resolution, network = _efficientnet(args)
        elif args.model is not None:
            model_config(model=args.model)  # a name that builds nothing is the name's error
            cfg, default_resolution, network = _resnet(args, *parse_model_name(args.model))
        else:
            cfg, default_resolution, network = _resnet(args, args.depth, True)
        resolution = check_resolution(
            default_resolution if args.resolution is None else args.resolution
        )
        methods = []
        if args.device == "cuda" or args.latency:
            check_device(args.device)
        if args.latency:
            methods = [
                LatencyMethod(
                    device=args.device,
                    dtype=args.dtype,
                    batch_size=b,
                    warmup=args.warmup,
                    repeats=args.repeats,
                    min_run_time=args.min_run_time,
                    channels_last=args.channels_last,
                    compile=args.compile,
                    cuda_graphs=args.cuda_graphs,
                    threads=args.threads,
                    backend=args.backend or "torch",
                )
                for b in args.batch
            ]
            if args.backend == "onnxruntime":
                require_onnxruntime("--backend")
    return cfg, resolution, network, methods


def _fill_defaults(args) -> None:
    """The defaults of one model's measurement, for the flags not given."""
    defaults = {**METHOD_DEFAULTS, "width": 1.0, "classes": 1000, "in_chans": 3}
    defaults["cache"] = os.environ.get("RSEARCH_LATENCY_CACHE", DEFAULT_CACHE)
    for dest, default in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)


def _resnet(args, depth: int, rs: bool):
    """A ResNet-RS (or, with --baseline, a plain ResNet), its default resolution (the
    paper's for that depth) and the report's description of it."""
    cfg = model_config(
        depth=depth,
        width=args.width,
        num_classes=args.classes,
        in_chans=args.in_chans,
        rs=rs and not args.baseline,
    )
    network = {
        M.FAMILY: M.DEFAULT_FAMILY,
        M.DEPTH: depth,  # as asked for (the depth rule may round the blocks)
        "layers": list(cfg.layers),
        "blocks": sum(cfg.layers),
        M.WIDTH: cfg.width,
        "rs": cfg.rs,
    }
    return cfg, regularization_defaults(depth)["image_size"], network


def _efficientnet(args):
    """An EfficientNet preset, its default resolution (its own evaluation size) and the
    report's description of it."""
    # torchvision (see _resolve)
    from rsearch.models.efficientnet import FAMILY, PRESETS, efficientnet_config

    if args.baseline or args.width != 1.0:
        flag = "--baseline" if args.baseline else "--width"
        raise UserError(f"{flag}: expected no {flag} with an EfficientNet (its preset sets it)")
    cfg = efficientnet_config(args.model, num_classes=args.classes, in_chans=args.in_chans)
    network = {M.FAMILY: FAMILY, "width_mult": cfg.width_mult, "depth_mult": cfg.depth_mult}
    return cfg, PRESETS[args.model].resolution, network


def run(args) -> int:
    if args.space is not None:
        return run_space(args)
    cfg, resolution, network, methods = _resolve(args)
    from rsearch.cost import LatencyCache, measure_latency, model_cost  # torch (see _resolve)

    cache = None if args.no_cache or not methods else LatencyCache(args.cache)
    _check_memory(
        cfg,
        resolution,
        [m for m in methods if cache is None or cache.get(cfg, resolution, m) is None],
    )
    report = {
        M.MODEL: cfg.name,
        **network,
        M.RESOLUTION: resolution,
        "classes": cfg.num_classes,
        "in_chans": cfg.in_chans,
        **model_cost(cfg, resolution),
    }
    if methods:
        report["latency"] = [
            cache.get_or_measure(cfg, resolution, m)
            if cache is not None
            else {**measure_latency(cfg, resolution, m), "cached": False}
            for m in methods
        ]
    print(json.dumps(report, sort_keys=False) if args.json else format_table(report))
    return 0


def _check_memory(cfg, resolution: int, to_measure) -> None:
    """Before the first measurement: each batch still to be measured must fit in free memory."""
    from rsearch import memory  # torch, as the cost functions

    for method in to_measure:
        estimate = memory.inference_estimate(
            cfg, resolution, method.batch_size, bf16=method.dtype == "bfloat16"
        )
        memory.check_fits(
            estimate,
            method.device,
            batch_flag="--batch",
            doing=f"measuring the latency of {cfg.name} at {resolution} px in batches of "
            f"{method.batch_size}",
        )


def format_table(report: dict) -> str:
    size, chans, classes = report[M.RESOLUTION], report["in_chans"], report["classes"]
    activations = report["activation_bytes"] / 2**20
    lines = [
        *_architecture_lines(report),
        f"{'input':<12} {size} x {size} px, {chans} channel(s), {classes} classes",
        f"{'params':<12} {report[M.PARAMS] / 1e6:,.2f} M ({report[M.PARAMS]:,})",
        f"{'FLOPs':<12} {report[M.FLOPS] / 1e9:,.2f} G per image (2 x MACs)",
        f"{'activations':<12} {activations:,.1f} MiB per image (training, float32)",
    ]
    if report.get("latency"):
        lines += ["", _latency_method_line(report["latency"][0])]
        lines.append(
            f"{'batch':>6} {'latency ms':>10} {'IQR ms':>8} {'noise':>6} {'p95 ms':>10} "
            f"{'img/s':>10}  cached"
        )
        lines += [_latency_line(r) for r in report["latency"]]
    return "\n".join(lines)


def _architecture_lines(report: dict) -> list[str]:
    if "width_mult" in report:  # an EfficientNet
        return [
            f"{'model':<12} {report[M.MODEL]}",
            f"{'multipliers':<12} width {report['width_mult']:g}, depth {report['depth_mult']:g}",
        ]
    layers = "-".join(str(n) for n in report["layers"])
    baseline = "" if report["rs"] else " (plain ResNet baseline)"
    return [
        f"{'model':<12} {report[M.MODEL]}{baseline}",
        f"{'layers':<12} {layers} ({report['blocks']} bottleneck blocks)",
        f"{'width':<12} {report[M.WIDTH]:g}",
    ]


def _latency_method_line(first: dict) -> str:
    """How the figures were measured (one method for every batch size)."""
    mode = f"compile ({first['compile_mode']})" if first["compile"] else "eager"
    if first["cuda_graphs"] and not first["compile"]:
        mode += " + CUDA graphs"
    if first.get("backend") == "onnxruntime":
        mode = f"ONNX Runtime {first.get('onnxruntime')} (CPU execution provider)"
    threads = f", {first['threads_used']} threads" if first.get("threads_used") else ""
    return (
        f"latency: {first['device']} ({first['device_name']}{threads}), {first['dtype']}, "
        f"{mode}{', channels_last' if first['channels_last'] else ''}, "
        f"warmup {first['warmup']}, {first['repeats']} rounds of >= "
        f"{first.get('min_run_time', 0):g} s, {first.get('clock', 'wall')} clock, "
        f"torch {first['torch']}"
    )


def _latency_line(r: dict) -> str:
    return (
        f"{r['batch_size']:>6} {r[M.LATENCY_MS]:>10.3f} {r.get(M.LATENCY_SPREAD_MS, 0):>8.3f} "
        f"{r.get(M.LATENCY_NOISE, 0):>6.1%} {r[M.LATENCY_P95_MS]:>10.3f} "
        f"{r['images_per_s']:>10.1f}  {'yes' if r['cached'] else 'no'}"
    )


# --- --space: every architecture of a search space --------------------------------------------


def run_space(args) -> int:
    """Params and FLOPs of every architecture of a space; with --latency their latency, measured
    here in interleaved rounds with the space's method; with --out, the deployment table."""
    space, plan, ctx, method = _resolve_space(args)
    # torch and Ray's types: loaded when the command runs
    from rsearch.tune.costs import latency_items, measure_costs, measure_table, recipe_switches

    archs = plan.architectures
    counted, _ = measure_costs(archs, dataclasses.replace(ctx, latency_method=None))
    rows = {a.key: counted[a.key] for a in archs}
    report = {"space": args.space, "classes": ctx.num_classes, "in_chans": ctx.in_chans}
    if method is not None:
        switches = recipe_switches(space)
        for cfg, resolution in latency_items(archs, ctx, switches=switches).values():
            _check_memory(cfg, resolution, [method])
        out = _checked_out(args.out)
        figures, path = measure_table(
            archs, ctx, method, out, switches=switches, progress=not args.json
        )
        for key, row in rows.items():
            row.update(_table_columns(figures[key]))
        report["latency_method"] = _method_of(next(iter(figures.values())))
        report["table"] = None if path is None else str(path)
        report["networks_measured"] = len(figures)  # with a reference and recipe variants
    report["architectures"] = list(rows.values())
    print(json.dumps(report) if args.json else _format_space(report))
    return 0


def _resolve_space(args):
    """(space, plan, trial context, latency method or None), every flag checked first."""
    from rsearch.cost import LatencyMethod, check_device
    from rsearch.cost.onnx import require_onnxruntime
    from rsearch.space import load_space
    from rsearch.tune.driver import dry_run_context, experiment_dir
    from rsearch.tune.plan import make_plan

    _refuse_beside_space(args)
    if args.out is not None and not args.latency:
        raise UserError("--out: needs --latency (the table holds measured latencies)")
    # the space's own table is not read: this command is what makes one
    space = load_space(args.space, with_table=False)
    plan = make_plan(space)
    if not plan.architectures:
        raise UserError(
            "--space: its scaling dimensions are sampled ranges; expected a space that lists its "
            "architectures (choices or grid values) to measure each"
        )
    if space.latency is not None:
        space = dataclasses.replace(space, latency=dataclasses.replace(space.latency, table=None))
    ctx = dry_run_context(space, experiment_dir(space), shape=_space_shape(space, args))
    if not args.latency:
        return space, plan, ctx, None
    method = space.latency.method if space.latency is not None else LatencyMethod()
    if args.backend is not None:
        try:
            method = dataclasses.replace(method, backend=args.backend)
        except FieldError as exc:
            raise UserError(
                f"--backend: {args.backend} cannot measure with the space's method: "
                + exc.named(f"constraints.latency_ms.{exc.field}")
            ) from None
    with named_flags({"device": "constraints.latency_ms.device"}):
        check_device(method.device)
    if method.backend == "onnxruntime":
        require_onnxruntime("--backend" if args.backend else "constraints.latency_ms.backend")
    return space, plan, ctx, method


def _refuse_beside_space(args) -> None:
    """Every flag that describes one model, or its method, or the cache, given beside --space
    (those flags default to None, switches to False: anything else was typed)."""
    for dest in (*METHOD_DEFAULTS, *BESIDE_SPACE_REFUSED):
        value = getattr(args, dest)
        if value is not None and value is not False:
            flag = "--" + dest.replace("_", "-")
            raise UserError(
                f"{flag}: not with --space (the space lists the architectures and its "
                "constraints.latency_ms sets the method; --backend may replace its backend)"
            )


def _space_shape(space, args) -> dict:
    """The class count and channels of the space's data, which decide the networks' heads and
    stems; where the data cannot be read (a deployment target), --classes and --in-chans."""
    from rsearch.tune.driver import space_data_shape  # Ray's types: when the command runs

    try:
        shape = space_data_shape(space)
    except UserError as exc:
        if args.classes is None:
            raise UserError(
                f"--classes: the space's data cannot be read here ({exc}); on a machine without "
                "it, give the class count of the search's data (--classes N, and --in-chans 1 "
                "for 1-channel images)"
            ) from None
        return {"num_classes": args.classes, "in_chans": args.in_chans or 3}
    for flag, key, given in (
        ("--classes", "num_classes", args.classes),
        ("--in-chans", "in_chans", args.in_chans),
    ):
        if given is not None and given != shape[key]:
            raise UserError(
                f"{flag}: the space's data has {shape[key]}, got {given}; drop {flag} (it is for "
                "a machine without the data)"
            )
    return {"num_classes": int(shape["num_classes"]), "in_chans": int(shape["in_chans"])}


def _checked_out(out: str | None):
    """--out, refused before any measurement if it exists (a measured table is never replaced)
    or its folder does not."""
    if out is None:
        return None
    path = Path(out).expanduser()
    shown = bounded(str(path), 300)
    try:
        exists, folder = path.exists() or path.is_symlink(), path.parent.is_dir()
    except OSError as exc:  # a name too long for the filesystem, ...
        raise UserError(f"--out: cannot use {shown} ({exc.strerror})") from None
    if exists:
        raise UserError(f"--out: {shown} exists; expected a new file (move or delete the old one)")
    if not folder:
        raise UserError(f"--out: no directory {path.parent}; expected a path in an existing one")
    return path


def _method_of(figure: dict) -> dict:
    """What a figure says of how it was measured (the method, the device, the software)."""
    return {k: v for k, v in figure.items() if not k.startswith("latency_") and k != "blocks"}


def _table_columns(figure: dict) -> dict:
    keys = (M.LATENCY_MS, M.LATENCY_NOISE, M.LATENCY_RATIO, M.LATENCY_ROUNDS, "threads_used")
    return {k: figure.get(k) for k in keys}


def _format_space(report: dict) -> str:
    measured = "latency_method" in report
    lines = [
        f"space {report['space']}: {len(report['architectures'])} architectures, "
        f"{report['classes']} classes, {report['in_chans']} channel(s)"
    ]
    if measured:
        lines.append(_latency_method_line(report["latency_method"]))
    header = f"{'model':<28} {'px':>4} {'params M':>9} {'GFLOPs':>8}"
    lines.append(header + (f" {'latency ms':>10} {'noise':>6} {'ratio':>6}" if measured else ""))
    for row in report["architectures"]:
        line = (
            f"{row[M.MODEL]:<28} {row[M.RESOLUTION]:>4} {row[M.PARAMS] / 1e6:>9.2f} "
            f"{row[M.FLOPS] / 1e9:>8.3f}"
        )
        if measured:
            ratio = row.get(M.LATENCY_RATIO)
            line += (
                f" {row[M.LATENCY_MS]:>10.3f} {row[M.LATENCY_NOISE]:>6.1%} "
                f"{'-' if ratio is None else f'{ratio:.3f}':>6}"
            )
        lines.append(line)
    extra = report.get("networks_measured", 0) - len(report["architectures"])
    if extra > 0:
        lines.append(f"also measured: {extra} networks (the budget's reference, recipe variants)")
    if report.get("table"):
        lines.append(
            f"latency table: {report['table']} (a search reads it with "
            f"constraints.latency_ms.table: {report['table']})"
        )
    return "\n".join(lines)
