"""The training loop: plain PyTorch, no Ray. One generator, one epoch per `next()`.

    for epoch in train_epochs(cfg):        # or train_epochs(cfg, resume=state)
        print(epoch.metrics)               # epoch, train_loss, minival_top1, minival_loss, lr, ...
        save_checkpoint(epoch.state(), p)  # everything needed to continue exactly here

The in-process Tune trial, the Ray Train worker and `rsearch train` all drive this loop;
with `world_size > 1` the caller has set up torch.distributed (Ray Train does).
`Trainer` holds the run's state; `Trainer.epochs` is the loop itself, read top to bottom.
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
from rsearch.data.device_jpeg import DeviceAugment, EncodedSampleSet
from rsearch.data.device_jpeg import collate as device_jpeg_collate
from rsearch.models import build
from rsearch.train.config import TrainConfig
from rsearch.train.optim import LRSchedule, WeightEMA, make_optimizer
from rsearch.train.step import EagerStep, GraphStep, StepParts
from rsearch.train.syncbn import convert_global_batchnorm


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf: the trial is recorded as failed, the search goes on."""


DIVERGED = "diverged: "  # how a divergence reads in a trial's failure reason

Progress = Callable[[int, int], None]  # (batches done, batches in the epoch)


@dataclass
class EpochResult:
    metrics: dict  # flat, JSON-able; test_top1/test_loss only after the last epoch
    state: Callable[[], dict]  # builds the checkpoint lazily (only rank 0 needs it)


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
    progress: Progress | None = None,
    splits=None,
) -> Iterator[EpochResult]:
    """`splits`: data already loaded by the caller with `load_splits(cfg)` (else loaded here)."""
    trainer = Trainer(cfg, rank=rank, world_size=world_size, splits=splits)
    if resume is not None:
        trainer.restore(resume)
    yield from trainer.epochs(progress)


class Trainer:
    """One run: its config, its place in the worker group, and everything the loop mutates."""

    def __init__(self, cfg: TrainConfig, *, rank: int = 0, world_size: int = 1, splits=None):
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.device = torch.device(cfg.device)
        if cfg.deterministic:
            # cuBLAS is deterministic only with a fixed workspace (set before its first use)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's)
        recipe = cfg.recipe
        self.splits = splits if splits is not None else load_splits(cfg)
        # uint8 batch -> normalised float, on the device (4x less to ship than floats)
        self.normalize = self.splits.normalizer()
        # data.decode device: training batches arrive as JPEG files, decoded and augmented here
        self.device_augment = (
            DeviceAugment(self.splits.train, self.device)
            if isinstance(self.splits.train, EncodedSampleSet)
            else None
        )
        self.core = self._build_model()  # the bare model (state dicts, EMA source)
        self.model = self._parallel(self.core)  # what is trained (DDP-wrapped when distributed)
        self.ema = WeightEMA(self.core, recipe.ema_decay) if recipe.ema_decay > 0 else None
        self.optimizer = make_optimizer(self.core, recipe, graph_safe=recipe.cuda_graphs)
        self.steps_per_epoch = _steps_per_epoch(len(self.splits.train), cfg)
        self.schedule = LRSchedule(recipe, self.steps_per_epoch, cfg.epochs)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.train_step = (GraphStep if recipe.cuda_graphs else EagerStep)(
            self.step_parts(), self.device
        )
        self.loaders = {}  # built once; worker processes persist across epochs
        self.step = 0
        self.epoch = 0
        self.history = []

    def _build_model(self) -> nn.Module:
        splits = self.splits
        core = build(self.cfg.model(splits.num_classes, splits.in_chans)).to(self.device)
        if self.device.type == "cuda" and self.cfg.recipe.channels_last:
            core = core.to(memory_format=torch.channels_last)
        if self.world_size > 1:
            # SyncBatchNorm: N workers with batch B/N see the statistics of the global batch B,
            # so the data-parallel run follows the single-worker trajectory.
            core = (
                nn.SyncBatchNorm.convert_sync_batchnorm(core)
                if self.device.type == "cuda"
                else convert_global_batchnorm(core)
            )
        return core

    def _parallel(self, core: nn.Module) -> nn.Module:
        model = core
        if self.world_size > 1:
            cuda = self.device.type == "cuda"
            model = nn.parallel.DistributedDataParallel(
                core, device_ids=[self.device.index] if cuda else None
            )
        if self.cfg.recipe.compile:
            model = torch.compile(model)
        return model

    def epochs(self, progress: Progress | None = None) -> Iterator[EpochResult]:
        """The loop: from the current epoch to the regime's last, one result per epoch."""
        cfg = self.cfg
        start = time.perf_counter()
        while self.epoch < cfg.epochs:
            # Phase 1: one pass over the training split.
            t0 = time.perf_counter()
            train_loss, images = self.train_one_epoch(progress)
            train_seconds = time.perf_counter() - t0
            self.epoch += 1
            # Phase 2: evaluate on minival with the EMA weights (the paper evaluates the EMA).
            evaluated = self.ema.module if self.ema is not None else self.core
            minival_loss, minival_top1 = self.evaluate(evaluated, "minival")
            row = {
                M.EPOCH: self.epoch,
                M.TRAIN_LOSS: train_loss,
                M.MINIVAL_TOP1: minival_top1,
                M.MINIVAL_LOSS: minival_loss,
                M.LR: self.schedule(max(self.step - 1, 0)),
                M.IMG_PER_S: images / max(train_seconds, 1e-9),
                M.EPOCH_SECONDS: time.perf_counter() - t0,
                M.WALL_S: time.perf_counter() - start,
            }
            # Phase 3: the test split is reported once, at the end, never used for selection.
            if self.epoch == cfg.epochs and cfg.eval_test and self.splits.test is not None:
                row[M.TEST_LOSS], row[M.TEST_TOP1] = self.evaluate(evaluated, "test")
            self.history.append(row)
            yield EpochResult(metrics=dict(row), state=self.state)

    def train_one_epoch(self, progress: Progress | None = None) -> tuple[float, int]:
        """(mean training loss across ranks, images seen by all ranks); raises TrainingDiverged."""
        self.model.train()
        loader = self._loader("train")
        loader.set_epoch(self.epoch)
        steps = self.steps_per_epoch
        self.train_step.take_loss_sum()  # start the epoch's sum at zero
        images = 0
        for i, (x, y) in enumerate(loader):
            if i >= steps:
                break
            if self.device_augment is not None:
                x = self.device_augment(*x)
            self.train_step(x, y, self.step)
            self.step += 1
            images += x.shape[0] * self.world_size
            if progress is not None and self.rank == 0:
                progress(i + 1, steps)
        loss_sum = self.train_step.take_loss_sum()
        mean_loss = self._all_reduce_sum(loss_sum).item() / (steps * self.world_size)
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(f"training loss is {mean_loss} in epoch {self.epoch + 1}")
        return mean_loss, images

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> tuple[float, float]:
        """(mean loss, top-1 accuracy) over the whole split, exact across ranks (no padding)."""
        was_training = model.training
        model.eval()
        totals = torch.zeros(3, device=self.device, dtype=torch.float64)  # loss sum, correct, count
        for x, y in self._loader(split):
            x, y = self._to_device(x, y)
            with self._autocast():
                logits = model(x).float()
            totals[0] += nn.functional.cross_entropy(logits, y, reduction="sum")
            totals[1] += (logits.argmax(1) == y).sum()
            totals[2] += y.numel()
        model.train(was_training)
        loss_sum, correct, count = self._all_reduce_sum(totals).tolist()
        return loss_sum / max(count, 1), correct / max(count, 1)

    def _loader(self, split: str):
        """The split's loader, built on first use and kept: its worker processes persist."""
        if split not in self.loaders:
            train = split == "train"
            encoded = train and self.device_augment is not None  # JPEG files, not images
            self.loaders[split] = make_loader(
                getattr(self.splits, split),
                self.cfg.per_worker_batch,
                train=train,
                seed=self.cfg.seed,
                epoch=self.epoch if train else 0,
                rank=self.rank,
                world_size=self.world_size,
                num_workers=self.cfg.loader_workers,
                # encoded files are read by nvJPEG from host memory: nothing to pin
                pin_memory=self.device.type == "cuda" and not encoded,
                collate=device_jpeg_collate if encoded else None,
            )
        return self.loaders[split]

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalize(x.to(self.device, non_blocking=True))
        if self.device.type == "cuda" and self.cfg.recipe.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _autocast(self, cache_enabled: bool = True):
        if self.device.type == "cuda" and self.cfg.recipe.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache_enabled)
        return nullcontext()

    def step_parts(self) -> StepParts:
        """What a training step works on (train/step.py)."""
        return StepParts(
            model=self.model,
            core=self.core,
            optimizer=self.optimizer,
            criterion=self.criterion,
            schedule=self.schedule,
            ema=self.ema,
            prepare=self._to_device,
            autocast=self._autocast,
        )

    def _all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(t)
        return t

    def state(self) -> dict:
        """Everything needed to continue exactly here (plain tensors and values: checkpoint.py)."""
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.core.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": list(self.history),
            "config": self.cfg.to_dict(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, state: dict) -> None:
        """Continue from `state` (a checkpoint written by `state()`)."""
        self.core.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state.get("history", []))
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)


def _steps_per_epoch(train_size: int, cfg: TrainConfig) -> int:
    steps = train_size // cfg.recipe.batch_size
    if steps < 1:
        raise ValueError(
            f"batch_size {cfg.recipe.batch_size} exceeds the training split ({train_size} images)"
        )
    return min(steps, cfg.max_steps_per_epoch or steps)
