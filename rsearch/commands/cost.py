"""`rsearch cost`: parameters, FLOPs, activation memory and measured latency of a model.

Count a model's parameters, FLOPs (2 x MACs, torch's flop counter) and
training activation memory on the meta device (no weights allocated); with
--latency, measure inference latency with a declared method (cached).

examples:
  rsearch cost --model resnetrs-350 --resolution 256 --json
  rsearch cost --depth 300 --width 1.5 --resolution 224 --latency --batch 1,64 --json
"""

from __future__ import annotations

import json
import os

from rsearch import metrics as M
from rsearch.bounds import FIELDS, MIN_DEPTH
from rsearch.commands.args import add_command, field, integer, named_flags, number, number_list
from rsearch.errors import UserError
from rsearch.models import model_config, parse_model_name, regularization_defaults

DEFAULT_CACHE = "~/.cache/rsearch/latency.parquet"
# The fields model_config and check_resolution name, as this command's flags.
EFFICIENTNET = "efficientnet-"  # the prefix of the EfficientNet presets' names
FLAGS = {
    "num_classes": "--classes",
    "in_chans": "--in-chans",
    "model": "--model",
    "batch_size": "--batch",
}


def register(subparsers) -> None:
    p = add_command(subparsers, __name__)
    which = p.add_mutually_exclusive_group()
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
    p.add_argument(
        "--width", type=field("width"), default=1.0, help="width multiplier (default 1.0)"
    )
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
        default=1000,
        help="number of classes (default 1000)",
    )
    p.add_argument(
        "--in-chans", type=int, choices=(1, 3), default=3, help="input channels (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    lat = p.add_argument_group("latency (with --latency)")
    lat.add_argument("--latency", action="store_true", help="also measure inference latency")
    lat.add_argument(
        "--batch",
        type=number_list(FIELDS["batch_size"], "1,64"),
        default=[1],
        help="batch sizes, e.g. 1,64 (default 1)",
    )
    lat.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    lat.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16 runs under autocast (default float32)",
    )
    lat.add_argument("--warmup", type=integer(0), default=3, help="untimed calls (default 3)")
    lat.add_argument(
        "--repeats",
        type=integer(1),
        default=10,
        help="timed rounds, each a torch.utils.benchmark blocked_autorange (default 10)",
    )
    lat.add_argument(
        "--min-run-time",
        type=number(0, 60, why="seconds"),
        default=0.05,
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
        "--cache",
        default=os.environ.get("RSEARCH_LATENCY_CACHE", DEFAULT_CACHE),
        help=f"latency cache, Parquet (default $RSEARCH_LATENCY_CACHE or {DEFAULT_CACHE})",
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

    if args.model is None and args.depth is None:
        raise UserError(
            "--model or --depth: one is required (e.g. --model resnetrs-50 or --depth 300)"
        )
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
                )
                for b in args.batch
            ]
    return cfg, resolution, network, methods


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
