"""`rsearch train`: train one model (in-process, or DDP on Ray Train with --workers N).

Train one ResNet-RS configuration with the RS recipe, or an EfficientNet
(--model efficientnet-bN, at a lower --resolution: EfficientNet-RS) with its
own; writes summary.json, epochs.parquet and checkpoint.pt to --output.

examples:
  rsearch train --depth 26 --width 0.25 --resolution 32 --epochs 5 --output runs/tiny
  rsearch train --model resnetrs-50 --resolution 160 --workers 2 --output runs/ddp
  rsearch train --model efficientnet-b0 --resolution 128 --output runs/effnet-rs
  rsearch train ... --output runs/tiny --resume        # continue an interrupted run
"""

from __future__ import annotations

import json
import sys
import time

from rsearch.architecture import EFFICIENTNET, RESNETRS, Architecture
from rsearch.bounds import DATA_SOURCES, MIN_DEPTH, FieldError
from rsearch.commands.args import add_command, field, named_flags
from rsearch.errors import UserError
from rsearch.models import parse_model_name, regularization_defaults
from rsearch.models.registry import EFFICIENTNET_PRESETS, efficientnet_regularization_defaults
from rsearch.recipe import PRESETS, REGULARIZATION_KNOBS, preset

# Recipe fields with a flag of their own (--dropout, ...), overriding the preset for one run.
RECIPE_FLAGS = REGULARIZATION_KNOBS
# The fields whose flag is not --<field> (batch_size is --batch-size, and so on).
FLAGS = {"preset": "--recipe", "device": "--gpu", "source": "--data"}
# What --from-trial takes from the trial: a flag that would change it is refused. A flag with a
# default of its own counts as given when it differs from that default.
_TRIAL_FLAGS = {
    **dict.fromkeys(("model", "depth", "width", "resolution", "recipe", "data_dir")),
    **dict.fromkeys(("train_size", "crop_min_scale", "compile", "cuda_graphs", "deterministic")),
    **{"batch_size": 128, "seed": 0, "data": "synthetic", "num_classes": 10, "workers": 1},
}


def register(subparsers) -> None:
    p = add_command(subparsers, __name__, show_defaults=True)
    model = p.add_argument_group("model")
    model.add_argument(
        "--model",
        help="resnetrs-50 ... resnetrs-420 (or resnetrs50), resnetrs-<depth>, "
        "resnet-<depth> for the plain baseline, efficientnet-b0 ... efficientnet-b7",
    )
    model.add_argument(
        "--depth", type=field("depth"), help=f"any depth >= {MIN_DEPTH} (instead of --model)"
    )
    model.add_argument(
        "--width", type=field("width"), help="width multiplier (default: 1, a ResNet-RS's)"
    )
    model.add_argument(
        "--resolution",
        type=field("resolution"),
        help="image size (default: the paper's size for the depth, or the EfficientNet's own)",
    )
    train = p.add_argument_group("training")
    train.add_argument(
        "--epochs", type=field("epochs"), help="the regime (default 5; --from-trial: the trial's)"
    )
    train.add_argument(
        "--recipe",
        choices=PRESETS,
        metavar="PRESET",
        help=f"recipe preset: {', '.join(PRESETS)} (default: rs; efficientnet for an EfficientNet)",
    )
    train.add_argument(
        "--batch-size",
        type=field("batch_size"),
        default=_TRIAL_FLAGS["batch_size"],
        help="global batch, split over --workers",
    )
    train.add_argument("--seed", type=int, default=_TRIAL_FLAGS["seed"])
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="capture the whole training step in a CUDA graph (--gpu, one worker)",
    )
    train.add_argument(
        "--deterministic", action="store_true", help="deterministic torch algorithms"
    )
    for name in RECIPE_FLAGS:
        train.add_argument(
            "--" + name.replace("_", "-"),
            type=field(name),
            default=None,
            help=f"override the preset's {name}",
        )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        default=_TRIAL_FLAGS["data"],
        choices=DATA_SOURCES,
        metavar="SOURCE",
        help=" | ".join(DATA_SOURCES),
    )
    data.add_argument(
        "--data-dir",
        help="folder of the data (fashion-mnist default: /usr/share/datasets/fashion-mnist); "
        "parquet shards may be in a bucket: s3://bucket/prefix?endpoint_override=...&region=..., "
        "gs://... (credentials from the environment)",
    )
    data.add_argument(
        "--num-classes",
        type=field("num_classes"),
        default=_TRIAL_FLAGS["num_classes"],
        help="synthetic: number of classes",
    )
    data.add_argument("--train-size", type=int, default=None, help="synthetic: training images")
    data.add_argument(
        "--crop-min-scale",
        type=float,
        default=None,
        help="smallest random-resized-crop area (default 0.08, the paper's; small data may "
        "want more)",
    )
    data.add_argument(
        "--loader-workers", type=int, default=0, help="DataLoader processes per worker"
    )
    data.add_argument(
        "--decode",
        choices=("cpu", "device"),
        default=None,
        help="imagefolder: decode and augment the training JPEGs in the loader workers (cpu, "
        "the default) or on the training device, a batch at a time (device: nvJPEG with --gpu); "
        "the same images either way",
    )
    run = p.add_argument_group("execution")
    run.add_argument(
        "--workers",
        type=field("workers"),
        default=_TRIAL_FLAGS["workers"],
        help="data-parallel workers (N > 1 runs Ray Train DDP)",
    )
    run.add_argument("--gpu", action="store_true", help="train on GPU(s)")
    run.add_argument(
        "--address", help="Ray cluster address for --workers > 1 (default: start Ray locally)"
    )
    run.add_argument("--output", help="output folder (default: rsearch_runs/<model>-<time>)")
    run.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --output"
    )
    run.add_argument("--json", action="store_true", help="print summary.json to stdout at the end")
    final = p.add_argument_group("a search's trial, re-trained (a final model)")
    final.add_argument(
        "--from-trial",
        metavar="EXPERIMENT/TRIAL_ID",
        help="re-train a search's trial with its exact configuration (architecture, recipe, "
        "data, seed), read from its checkpoint; the minival split trains too, as the paper "
        "trains its final models, and test top-1 is reported",
    )
    final.add_argument(
        "--keep-minival",
        action="store_true",
        help="with --from-trial: keep the minival split held out, as the search did",
    )
    p.set_defaults(func=run_command)


def build_config(args):
    """The TrainConfig these arguments describe (validated; raises UserError naming the flag)."""
    # torch: `rsearch --help` must not load it
    from rsearch.data import DataConfig
    from rsearch.train.config import TrainConfig

    if args.from_trial is not None:
        return trial_config(args)
    if args.keep_minival:
        raise UserError("--keep-minival: only with --from-trial (a run holds minival out anyway)")
    if args.model is None and args.depth is None:
        raise UserError(
            "--model or --depth: one is required (e.g. --model resnetrs-50, "
            "or --depth 26 --width 0.25)"
        )
    with named_flags(FLAGS):
        overrides = {f: getattr(args, f) for f in RECIPE_FLAGS if getattr(args, f) is not None}
        overrides.update(
            batch_size=args.batch_size, compile=args.compile, cuda_graphs=args.cuda_graphs
        )
        if _is_efficientnet(args.model):
            arch, recipe = _efficientnet(args, overrides)
        else:
            arch, recipe = _resnet(args, overrides)
        return TrainConfig(
            depth=arch.depth,
            width=arch.width,
            resolution=arch.resolution,
            family=arch.family,
            epochs=5 if args.epochs is None else args.epochs,
            recipe=recipe,
            data=DataConfig(**_data_kwargs(args)),
            seed=args.seed,
            device="cuda" if args.gpu else "cpu",
            workers=args.workers,
            loader_workers=args.loader_workers,
            deterministic=args.deterministic,
        )


def trial_config(args):
    """The TrainConfig of `--from-trial EXPERIMENT/TRIAL_ID`: the trial's own (from its
    checkpoint: what it trained with, exactly), with --epochs if given, and its minival split
    in the training data unless --keep-minival."""
    import dataclasses

    from rsearch.export import from_experiment  # torch (see build_config)

    experiment, _, trial = args.from_trial.rstrip("/").rpartition("/")
    if not experiment or not trial:
        raise UserError(
            f"--from-trial: expected EXPERIMENT/TRIAL_ID (e.g. ~/rsearch_results/quickstart/"
            f"9ep-00003), got {args.from_trial!r}"
        )
    given = [f for f, default in _TRIAL_FLAGS.items() if getattr(args, f) not in (default, False)]
    given += [f for f in RECIPE_FLAGS if getattr(args, f) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UserError(f"{flag}: --from-trial takes the trial's configuration; drop {flag}")
    cfg = from_experiment(experiment, trial, flag="--from-trial").config
    with named_flags(FLAGS):  # --decode is how the run goes, not what it trains: it may change
        data = cfg.data.replace(
            minival_in_train=not args.keep_minival, decode=args.decode or cfg.data.decode
        )
    device = "cuda" if args.gpu or cfg.device.startswith("cuda") else "cpu"
    epochs = cfg.epochs if args.epochs is None else args.epochs
    return dataclasses.replace(cfg, data=data, epochs=epochs, device=device, eval_test=True)


def _is_efficientnet(model: str | None) -> bool:
    return isinstance(model, str) and model.strip().lower().startswith(EFFICIENTNET)


def _resnet(args, overrides: dict):
    """The architecture and recipe of a ResNet-RS (or plain ResNet) run."""
    depth, rs = parse_model_name(args.model) if args.model is not None else (args.depth, True)
    if not rs:  # a plain ResNet name means no ResNet-D and no SE, whatever the preset
        overrides.update(resnet_d=False, se=False)
    recipe = preset(args.recipe or "rs", depth=max(depth, MIN_DEPTH), **overrides)
    resolution = args.resolution or regularization_defaults(depth)["image_size"]
    width = 1.0 if args.width is None else args.width
    return Architecture.of(depth, width, resolution), recipe


def _efficientnet(args, overrides: dict):
    """The architecture and recipe of an EfficientNet run: the preset's multipliers, its own
    resolution unless --resolution (lower: EfficientNet-RS), its own recipe and per-size
    regularization (the paper trains EfficientNet-RS with EfficientNet's hyperparameters)."""
    name = args.model.strip().lower()
    if name not in EFFICIENTNET_PRESETS:
        raise FieldError("model", f"one of {', '.join(EFFICIENTNET_PRESETS)}", args.model)
    for flag, value in (("--width", args.width), ("--depth", args.depth)):
        if value is not None:
            raise UserError(
                f"{flag}: an EfficientNet's depth and width are its preset's multipliers; "
                f"expected no {flag} with --model {name}"
            )
    named = EFFICIENTNET_PRESETS[name]
    arch = Architecture.of(
        named.depth_mult, named.width_mult, args.resolution or named.resolution, EFFICIENTNET
    )
    sized = efficientnet_regularization_defaults(arch.depth, arch.resolution)
    return arch, preset(args.recipe or "efficientnet", sized=sized, **overrides)


def _data_kwargs(args) -> dict:
    """DataConfig's keywords from the data flags (unset ones keep DataConfig's defaults)."""
    if args.data == "synthetic" and args.data_dir is not None:
        raise UserError(
            "--data-dir: not with --data synthetic (its images are generated); expected "
            "--data parquet, imagefolder or fashion-mnist with it"
        )
    data_kwargs = {"source": args.data, "data_dir": args.data_dir, "seed": args.seed}
    if args.crop_min_scale is not None:
        data_kwargs["crop_min_scale"] = args.crop_min_scale
    if args.decode is not None:
        data_kwargs["decode"] = args.decode
    if args.data == "synthetic":
        data_kwargs["num_classes"] = args.num_classes
        if args.train_size is not None:
            data_kwargs["train_size"] = args.train_size
    return data_kwargs


def run_command(args) -> int:
    # torch, pyarrow and Ray: loaded when a run starts, not for `rsearch --help`
    from rsearch.train.loop import TrainingDiverged
    from rsearch.train.runner import run_training

    cfg = build_config(args)
    if args.resume and not args.output:
        raise UserError("--resume: needs --output, the folder of the run to continue")
    output = args.output or f"rsearch_runs/{_run_name(cfg)}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = run_training(
            cfg,
            output,
            resume=args.resume,
            ray_address=args.address,
            retrained_from=_retrained_from(args),
        )
    except TrainingDiverged as exc:
        print(
            f"rsearch train: training diverged: {exc}; the last good epoch's checkpoint is in "
            f"{output}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        test = summary.get("test_top1")
        # a final model trained on its minival split: that accuracy measures nothing held out
        minival = " (trained on)" if cfg.data.minival_in_train else ""
        print(
            f"minival top-1 {summary['minival_top1']:.4f}{minival}"
            + (f"  test top-1 {test:.4f}" if test is not None else "")
            + f"  ({summary['wall_s']:.0f}s)  -> {output}"
        )
    return 0


def _retrained_from(args) -> dict | None:
    """{experiment, trial_id} of --from-trial (checked by trial_config), else None."""
    if args.from_trial is None:
        return None
    experiment, _, trial = args.from_trial.rstrip("/").rpartition("/")
    return {"experiment": experiment, "trial_id": trial}


def _run_name(cfg) -> str:
    """The default output folder's name: resnetrs-26-w0.25-r32, efficientnet-b0-r224."""
    if cfg.family != RESNETRS:
        name = cfg.model(10, 3).name  # the preset's name (the head does not change it)
        return f"{name}-r{cfg.resolution}"
    kind = "resnetrs" if cfg.recipe.resnet_d else "resnet"
    return f"{kind}-{cfg.depth}-w{cfg.width:g}-r{cfg.resolution}"
