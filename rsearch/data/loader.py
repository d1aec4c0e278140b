"""Deterministic, shardable loaders: the sample order is a pure function of (seed, epoch).

Train: one global shuffle per epoch, cut into global batches of batch_size x world_size
(the last incomplete one dropped); rank r takes slice r of every global batch.  So the
ranks' i-th batches together are exactly the i-th batch of the single-worker loader
with the global batch size — what makes N workers follow the 1-worker trajectory.

Eval: no shuffle; rank r takes samples r, r + world_size, ...; shards may differ by one
sample but cover every sample exactly once (no padding), so accuracy sums are exact.

Sources whose reads are cheap only in groups (Parquet row groups) get a windowed
shuffle: group order is shuffled, then samples are shuffled within windows of
LOCALITY_WINDOW consecutive groups, so a reader touches a few groups at a time.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from rsearch.data.transforms import sample_seed
from rsearch.errors import UserError

LOCALITY_WINDOW = 4  # row groups shuffled together (readers cache twice that)
_STREAM = 0x5A3B1E  # separates the shuffle's random stream from other users of the seed


def epoch_order(n: int, seed: int, epoch: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The epoch's permutation of range(n)."""
    rng = np.random.default_rng([seed, epoch, _STREAM])
    if groups is None:
        return rng.permutation(n)
    unique, group_of_item = np.unique(groups, return_inverse=True)
    window_of_group = rng.permutation(len(unique)) // LOCALITY_WINDOW
    return np.lexsort((rng.random(n), window_of_group[group_of_item]))


def train_batches(order: np.ndarray, batch_size: int, rank: int, world_size: int) -> np.ndarray:
    """(num_batches, batch_size) indices of this rank's training batches."""
    global_batch = batch_size * world_size
    steps = len(order) // global_batch
    batches = order[: steps * global_batch].reshape(steps, world_size, batch_size)
    return batches[:, rank]


def eval_batches(n: int, batch_size: int, rank: int, world_size: int) -> list[np.ndarray]:
    shard = np.arange(rank, n, world_size)
    return [shard[i : i + batch_size] for i in range(0, len(shard), batch_size)]


class BatchPlan(Sampler):
    """The DataLoader's batch_sampler: index batches of `epochs` consecutive epochs from `epoch`.

    It runs in the main process, so worker processes need not restart for a new epoch:
    with `tag_epoch`, each key it yields is (index, epoch) and the dataset copy in the
    worker augments for that epoch.  Several epochs in one plan also keep the workers'
    prefetching going across epoch boundaries (no refill bubble at each epoch start).
    """

    def __init__(self, plan_for_epoch, epoch: int, epochs: int, tag_epoch: bool):
        self.plan_for_epoch, self.epochs, self.tag_epoch = plan_for_epoch, epochs, tag_epoch
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches = self.plan_for_epoch(epoch)  # the first epoch's batches

    def __iter__(self):
        for epoch in range(self.epoch, self.epoch + self.epochs):
            batches = self.batches if epoch == self.epoch else self.plan_for_epoch(epoch)
            for batch in batches:
                yield [(i, epoch) for i in batch.tolist()] if self.tag_epoch else batch.tolist()

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def __len__(self) -> int:
        return len(self.batches) * self.epochs


class Loader(DataLoader):
    """A DataLoader with `set_epoch` (reuse it across epochs: its workers persist) and
    `steps_per_epoch`, whose data errors raised in a worker come back as the one-line
    UserError they were, without the worker's traceback folded into the message."""

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)

    @property
    def steps_per_epoch(self) -> int:
        return self.batch_sampler.steps_per_epoch

    def __iter__(self):
        try:
            yield from super().__iter__()
        except UserError as exc:
            message = str(exc)
            marker = "UserError: "
            raise UserError(
                message[message.rfind(marker) + len(marker) :] if marker in message else message
            ) from None


def _train_plan(n, groups, seed, batch_size, rank, world_size, epoch):
    return train_batches(epoch_order(n, seed, epoch, groups), batch_size, rank, world_size)


def _eval_plan(n, batch_size, rank, world_size, epoch):
    return eval_batches(n, batch_size, rank, world_size)


def make_loader(
    dataset,
    batch_size: int,
    *,
    train: bool,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    epochs: int = 1,
    collate=None,
) -> Loader:
    """The loader of one rank, starting at `epoch`.  Three ways to use it:
    build one per epoch; or keep one and call `loader.set_epoch(e)` before each epoch
    (worker processes persist); or pass `epochs` > 1 and take `loader.steps_per_epoch`
    batches per epoch from one iterator (prefetching also runs on across epochs).
    Batch i of epoch e is the same whichever way.  `collate`: the DataLoader's collate_fn
    (None: its default, which stacks the items)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if not isinstance(world_size, int) or world_size < 1 or not 0 <= rank < world_size:
        raise UserError(
            f"rank/world_size: expected 0 <= rank < world_size, got {rank}/{world_size}"
        )
    if not isinstance(num_workers, int) or num_workers < 0:
        raise UserError(f"num_workers: expected a non-negative integer, got {num_workers!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"epochs: expected a positive integer, got {epochs!r}")
    tag_epoch = hasattr(dataset, "at_epoch")
    if tag_epoch:
        dataset = dataset.at_epoch(seed, epoch)
    if train:
        if len(dataset) < batch_size * world_size:
            raise UserError(
                f"batch_size: the training split has {len(dataset)} images, fewer than one "
                f"global batch of {batch_size * world_size}; lower the batch size"
            )
        groups = dataset.locality() if hasattr(dataset, "locality") else None
        plan = partial(_train_plan, len(dataset), groups, seed, batch_size, rank, world_size)
    else:
        plan = partial(_eval_plan, len(dataset), batch_size, rank, world_size)
    # The DataLoader draws its workers' base seed from `generator`, or else from the global
    # RNG: give it its own so iterating never moves the caller's random stream.
    generator = torch.Generator().manual_seed(sample_seed(seed, epoch, rank))
    return Loader(
        dataset,
        batch_sampler=BatchPlan(plan, epoch, epochs, tag_epoch),
        num_workers=num_workers,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        collate_fn=collate,
    )
