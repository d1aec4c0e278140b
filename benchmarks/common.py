"""What the torch benchmarks (input_pipeline.py, model_step.py) share: the device options and
the device set-up. Imported as `benchmarks.common`: each script puts the checkout's root on
sys.path first."""

from __future__ import annotations

import argparse

import torch


def add_device_args(parser: argparse.ArgumentParser, *, compile_help: str, threads_help: str):
    """--device, --dtype, --channels-last, --compile and --threads."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16 = torch.autocast (weights stay float32)",
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help=compile_help)
    parser.add_argument("--threads", type=int, help=threads_help)


def check_device(parser: argparse.ArgumentParser, args) -> None:
    """A usage error (before any work) for --device cuda without a visible GPU."""
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device: cuda requested but no CUDA GPU is visible to torch")


def setup_device(args) -> torch.device:
    """The --device, with --threads applied and cuDNN's autotuner on for CUDA."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def rsearch_graph_step(model, forward, *, batch: int, device, autocast_dtype=None, capture=None):
    """rsearch's training step as `recipe.cuda_graphs` runs it (rsearch.train.step.GraphStep):
    the RS recipe's weight-decay groups in torch's fused SGD (peak LR for `batch`, constant),
    the weight EMA, the loss summed on the device; on CUDA the whole step is captured in one
    graph after three uncaptured steps.  `forward`: the model, or its torch.compile wrapper.
    `capture` False: the same step uncaptured (the graph's own effect, measured apart).
    Call it as step(x, y, step_number) with device tensors."""
    from torch import nn

    from rsearch.recipe import Recipe
    from rsearch.train.optim import WeightEMA, make_optimizer
    from rsearch.train.step import GraphStep, StepParts

    recipe = Recipe(batch_size=batch, weight_decay=4e-5, ema_decay=0.9999)

    def autocast(cache_enabled=True):
        return torch.autocast(
            device.type,
            autocast_dtype or torch.float32,
            enabled=autocast_dtype is not None,
            cache_enabled=cache_enabled,
        )

    parts = StepParts(
        model=forward,
        core=model,
        optimizer=make_optimizer(model, recipe, graph_safe=True),
        criterion=nn.CrossEntropyLoss(),
        schedule=lambda step: recipe.peak_lr(),  # constant: speed only
        ema=WeightEMA(model, recipe.ema_decay),
        prepare=lambda x, y: (x, y),
        autocast=autocast,
    )
    return GraphStep(parts, device, capture=capture)
