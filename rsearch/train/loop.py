"""The training loop: plain PyTorch, no Ray. One generator, one epoch per `next()`.

    for epoch in train_epochs(cfg):        # or train_epochs(cfg, resume=state)
        print(epoch.metrics)               # epoch, train_loss, minival_top1, minival_loss, lr, ...
        save_checkpoint(epoch.state(), p)  # everything needed to continue exactly here

The in-process Tune trial, the Ray Train worker and `rsearch train` all drive this loop;
with `world_size > 1` the caller has set up torch.distributed (Ray Train does).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rsearch import metrics as M
from rsearch.data import load_data, make_loader
from rsearch.models import build
from rsearch.train.config import TrainConfig
from rsearch.train.optim import LRSchedule, WeightEMA, make_optimizer
from rsearch.train.syncbn import convert_global_batchnorm


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf: the trial is recorded as failed, the search goes on."""


DIVERGED = "diverged: "  # how a divergence reads in a trial's failure reason


@dataclass
class EpochResult:
    metrics: dict  # flat, JSON-able; test_top1/test_loss only after the last epoch
    state: Callable[[], dict]  # builds the checkpoint lazily (only rank 0 needs it)


@dataclass
class _Run:
    """Everything the loop mutates, built once by `_setup`."""

    model: nn.Module  # what is trained (DDP-wrapped when distributed)
    core: nn.Module  # the bare model (state dicts, EMA source)
    ema: WeightEMA | None
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    criterion: nn.Module
    splits: object
    device: torch.device
    normalize: (
        Callable  # uint8 batch -> normalised float, on the device (4x less to ship than floats)
    )
    loaders: dict | None = None  # built once; worker processes persist across epochs
    step: int = 0
    epoch: int = 0
    history: list | None = None


def load_splits(cfg: TrainConfig):
    """The run's data: uint8 batches, normalised on the device by `splits.normalizer()`."""
    recipe = cfg.recipe
    return load_data(
        cfg.data,
        resolution=cfg.resolution,
        randaugment_ops=recipe.randaugment_ops,
        randaugment_magnitude=recipe.randaugment_magnitude,
        normalize=False,
    )


def train_epochs(
    cfg: TrainConfig,
    *,
    resume: dict | None = None,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
    splits=None,
) -> Iterator[EpochResult]:
    """`splits`: data already loaded by the caller with `load_splits(cfg)` (else loaded here)."""
    run = _setup(cfg, rank, world_size, splits)
    if resume is not None:
        _restore(run, resume)
    start = time.perf_counter()
    while run.epoch < cfg.epochs:
        # Phase 1: one pass over the training split.
        t0 = time.perf_counter()
        train_loss, images = _train_one_epoch(run, cfg, rank, world_size, progress)
        train_seconds = time.perf_counter() - t0
        run.epoch += 1
        # Phase 2: evaluate on minival with the EMA weights (the paper evaluates the EMA).
        evaluated = run.ema.module if run.ema is not None else run.core
        minival_loss, minival_top1 = evaluate(evaluated, run, "minival", cfg, rank, world_size)
        row = {
            M.EPOCH: run.epoch,
            M.TRAIN_LOSS: train_loss,
            M.MINIVAL_TOP1: minival_top1,
            M.MINIVAL_LOSS: minival_loss,
            M.LR: run.schedule(max(run.step - 1, 0)),
            M.IMG_PER_S: images / max(train_seconds, 1e-9),
            M.EPOCH_SECONDS: time.perf_counter() - t0,
            M.WALL_S: time.perf_counter() - start,
        }
        # Phase 3: the test split is reported once, at the end, never used for selection.
        if run.epoch == cfg.epochs and cfg.eval_test and run.splits.test is not None:
            row[M.TEST_LOSS], row[M.TEST_TOP1] = evaluate(
                evaluated, run, "test", cfg, rank, world_size
            )
        run.history.append(row)
        yield EpochResult(metrics=dict(row), state=lambda: _state(run, cfg))


def _setup(cfg: TrainConfig, rank: int, world_size: int, splits=None) -> _Run:
    device = torch.device(cfg.device)
    if cfg.deterministic:
        # cuBLAS is deterministic only with a fixed workspace (set before its first use)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's)
    recipe = cfg.recipe
    splits = splits if splits is not None else load_splits(cfg)
    core = build(cfg.model(splits.num_classes, splits.in_chans)).to(device)
    if device.type == "cuda" and recipe.channels_last:
        core = core.to(memory_format=torch.channels_last)
    model = core
    if world_size > 1:
        # SyncBatchNorm: N workers with batch B/N see the statistics of the global batch B,
        # so the data-parallel run follows the single-worker trajectory.
        core = (
            nn.SyncBatchNorm.convert_sync_batchnorm(core)
            if device.type == "cuda"
            else convert_global_batchnorm(core)
        )
        model = nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if device.type == "cuda" else None
        )
    if recipe.compile:
        model = torch.compile(model)
    steps = _steps_per_epoch(len(splits.train), cfg)
    return _Run(
        model=model,
        core=core,
        ema=WeightEMA(core, recipe.ema_decay) if recipe.ema_decay > 0 else None,
        optimizer=make_optimizer(core, recipe),
        schedule=LRSchedule(recipe, steps, cfg.epochs),
        criterion=nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
        splits=splits,
        device=device,
        normalize=splits.normalizer(),
        history=[],
        loaders={},
    )


def _steps_per_epoch(train_size: int, cfg: TrainConfig) -> int:
    steps = train_size // cfg.recipe.batch_size
    if steps < 1:
        raise ValueError(
            f"batch_size {cfg.recipe.batch_size} exceeds the training split ({train_size} images)"
        )
    return min(steps, cfg.max_steps_per_epoch or steps)


def _autocast(cfg: TrainConfig, device: torch.device):
    if device.type == "cuda" and cfg.recipe.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _to_device(x, y, cfg: TrainConfig, device: torch.device, normalize: Callable):
    x = normalize(x.to(device, non_blocking=True))
    if device.type == "cuda" and cfg.recipe.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def _loader(run: _Run, split: str, cfg: TrainConfig, rank: int, world_size: int):
    """The split's loader, built on first use and kept: its worker processes persist across epochs."""
    if split not in run.loaders:
        train = split == "train"
        run.loaders[split] = make_loader(
            getattr(run.splits, split),
            cfg.per_worker_batch,
            train=train,
            seed=cfg.seed,
            epoch=run.epoch if train else 0,
            rank=rank,
            world_size=world_size,
            num_workers=cfg.loader_workers,
            pin_memory=run.device.type == "cuda",
        )
    return run.loaders[split]


def _train_one_epoch(
    run: _Run, cfg: TrainConfig, rank: int, world_size: int, progress
) -> tuple[float, int]:
    run.model.train()
    loader = _loader(run, "train", cfg, rank, world_size)
    loader.set_epoch(run.epoch)
    steps = _steps_per_epoch(len(run.splits.train), cfg)
    loss_sum = torch.zeros((), device=run.device, dtype=torch.float64)
    images = 0
    for i, (x, y) in enumerate(loader):
        if i >= steps:
            break
        x, y = _to_device(x, y, cfg, run.device, run.normalize)
        lr = run.schedule(run.step)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        with _autocast(cfg, run.device):
            loss = run.criterion(run.model(x), y)
        if cfg.nan_at_step is not None and run.step >= cfg.nan_at_step:
            loss = loss * float("nan")  # injected fault (tests of the failure path)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update(run.core, run.step)
        run.step += 1
        loss_sum += loss.detach()
        images += x.shape[0] * world_size
        if progress is not None and rank == 0:
            progress(i + 1, steps)
    mean_loss = _all_reduce_sum(loss_sum, world_size).item() / (steps * world_size)
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(f"training loss is {mean_loss} in epoch {run.epoch + 1}")
    return mean_loss, images


@torch.no_grad()
def evaluate(
    model: nn.Module, run: _Run, split: str, cfg: TrainConfig, rank: int, world_size: int
) -> tuple[float, float]:
    """(mean loss, top-1 accuracy) over the whole split, exact across ranks (no padding)."""
    was_training = model.training
    model.eval()
    device = run.device
    loader = _loader(run, split, cfg, rank, world_size)
    totals = torch.zeros(3, device=device, dtype=torch.float64)  # loss sum, correct, count
    for x, y in loader:
        x, y = _to_device(x, y, cfg, device, run.normalize)
        with _autocast(cfg, device):
            logits = model(x).float()
        totals[0] += nn.functional.cross_entropy(logits, y, reduction="sum")
        totals[1] += (logits.argmax(1) == y).sum()
        totals[2] += y.numel()
    model.train(was_training)
    loss_sum, correct, count = _all_reduce_sum(totals, world_size).tolist()
    return loss_sum / max(count, 1), correct / max(count, 1)


def _all_reduce_sum(t: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        dist.all_reduce(t)
    return t


def _state(run: _Run, cfg: TrainConfig) -> dict:
    state = {
        "epoch": run.epoch,
        "step": run.step,
        "model": run.core.state_dict(),
        "ema": run.ema.module.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "history": list(run.history),
        "config": cfg.to_dict(),
    }
    if run.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(run.device)
    return state


def _restore(run: _Run, state: dict) -> None:
    run.core.load_state_dict(state["model"])
    if run.ema is not None and state.get("ema") is not None:
        run.ema.module.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.epoch, run.step = int(state["epoch"]), int(state["step"])
    run.history = list(state.get("history", []))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and run.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], run.device)
