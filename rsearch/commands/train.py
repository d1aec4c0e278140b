"""`rsearch train`: train one ResNet-RS configuration with the RS recipe (or any preset)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rsearch.errors import UserError

RECIPE_FLAGS = {  # CLI flag -> Recipe field, for per-run overrides of the preset
    "dropout": float,
    "stochastic_depth": float,
    "label_smoothing": float,
    "randaugment_magnitude": int,
    "randaugment_ops": int,
    "weight_decay": float,
    "ema_decay": float,
    "base_lr": float,
    "warmup_epochs": float,
}


def register(subparsers) -> None:
    from rsearch.recipe import PRESETS

    p = subparsers.add_parser(
        "train",
        help="train one model (in-process, or DDP on Ray Train with --workers N)",
        description="Train one ResNet-RS configuration with the RS recipe; writes summary.json, epochs.parquet "
        "and checkpoint.pt to --output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = p.add_argument_group("model")
    model.add_argument(
        "--model",
        help="resnetrs-50 ... resnetrs-420 (or resnetrs50), resnetrs-<depth>, "
        "resnet-<depth> for the plain baseline",
    )
    model.add_argument("--depth", type=int, help="any depth >= 14 (instead of --model)")
    model.add_argument("--width", type=float, default=1.0, help="width multiplier")
    model.add_argument(
        "--resolution", type=int, help="image size (default: the paper's size for the depth)"
    )
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument(
        "--recipe",
        default="rs",
        choices=PRESETS,
        metavar="PRESET",
        help=f"recipe preset: {', '.join(PRESETS)}",
    )
    train.add_argument(
        "--batch-size", type=int, default=128, help="global batch, split over --workers"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument(
        "--deterministic", action="store_true", help="deterministic torch algorithms"
    )
    for field, kind in RECIPE_FLAGS.items():
        train.add_argument(
            "--" + field.replace("_", "-"),
            type=kind,
            default=None,
            help=f"override the preset's {field}",
        )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        default="synthetic",
        choices=["synthetic", "fashion-mnist", "imagefolder", "parquet"],
        metavar="SOURCE",
        help="synthetic | fashion-mnist | imagefolder | parquet",
    )
    data.add_argument(
        "--data-dir",
        help="folder of the data (fashion-mnist default: /usr/share/datasets/fashion-mnist)",
    )
    data.add_argument("--num-classes", type=int, default=10, help="synthetic: number of classes")
    data.add_argument("--train-size", type=int, default=None, help="synthetic: training images")
    data.add_argument(
        "--crop-min-scale",
        type=float,
        default=None,
        help="smallest random-resized-crop area (default 0.08, the paper's; small data may want more)",
    )
    data.add_argument(
        "--loader-workers", type=int, default=0, help="DataLoader processes per worker"
    )
    run = p.add_argument_group("execution")
    run.add_argument(
        "--workers", type=int, default=1, help="data-parallel workers (N > 1 runs Ray Train DDP)"
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
    p.set_defaults(func=run_command)


def build_config(args):
    """The TrainConfig these arguments describe (validated; raises UserError)."""
    from rsearch.data import DataConfig
    from rsearch.models import parse_model_name, regularization_defaults
    from rsearch.recipe import preset
    from rsearch.train.config import TrainConfig

    if args.model is None and args.depth is None:
        raise UserError(
            "--model or --depth: one is required (e.g. --model resnetrs-50, or --depth 26 --width 0.25)"
        )
    rs = True
    depth = args.depth
    if args.model is not None:
        depth, rs = parse_model_name(args.model)
    if not args.width > 0:
        raise UserError(f"--width: expected a number > 0, got {args.width}")
    overrides = {f: getattr(args, f) for f in RECIPE_FLAGS if getattr(args, f) is not None}
    overrides.update(batch_size=args.batch_size, compile=args.compile)
    if not rs:  # a plain ResNet name means no ResNet-D and no SE, whatever the preset
        overrides.update(resnet_d=False, se=False)
    recipe = preset(args.recipe, depth=max(depth, 14), **overrides)
    data_kwargs = {"source": args.data, "data_dir": args.data_dir, "seed": args.seed}
    if args.crop_min_scale is not None:
        data_kwargs["crop_min_scale"] = args.crop_min_scale
    if args.data == "synthetic":
        data_kwargs["num_classes"] = args.num_classes
        if args.train_size is not None:
            data_kwargs["train_size"] = args.train_size
    resolution = args.resolution or regularization_defaults(depth)["image_size"]
    return TrainConfig(
        depth=depth,
        width=args.width,
        resolution=resolution,
        epochs=args.epochs,
        recipe=recipe,
        data=DataConfig(**data_kwargs),
        seed=args.seed,
        device="cuda" if args.gpu else "cpu",
        workers=args.workers,
        loader_workers=args.loader_workers,
        deterministic=args.deterministic,
    )


def run_command(args) -> int:
    from rsearch.train.runner import run_training

    cfg = build_config(args)
    if args.resume and not args.output:
        raise UserError("--resume: needs --output, the folder of the run to continue")
    output = (
        args.output
        or f"rsearch_runs/{'resnetrs' if cfg.recipe.resnet_d else 'resnet'}-{cfg.depth}"
        f"-w{cfg.width:g}-r{cfg.resolution}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    from rsearch.train.loop import TrainingDiverged

    try:
        summary = run_training(cfg, output, resume=args.resume, ray_address=args.address)
    except TrainingDiverged as exc:
        print(
            f"rsearch train: training diverged: {exc}; the last good epoch's checkpoint is in {output}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        test = summary.get("test_top1")
        print(
            f"minival top-1 {summary['minival_top1']:.4f}"
            + (f"  test top-1 {test:.4f}" if test is not None else "")
            + f"  ({summary['wall_s']:.0f}s)  -> {output}"
        )
    return 0
