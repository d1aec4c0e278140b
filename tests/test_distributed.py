"""Data parallelism: the DDP loop matches the single-worker loop; Ray Train runs it with 2
workers."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rsearch import metrics as M
from rsearch.cli import main
from rsearch.data import DataConfig
from rsearch.recipe import preset
from rsearch.train import TrainConfig, TrainingDiverged, distributed, train_epochs

# Two workers with half the batch each must follow one worker with the full batch: the
# same samples per step (the loader shards each global batch), SyncBatchNorm (global batch
# statistics), DDP's gradient mean (= the full-batch mean).  Float32 reductions happen in
# a different order, so the trajectories agree to a tolerance, not bit for bit.
TOLERANCE = dict(rel=2e-3, abs=2e-4)


def equivalence_config(cache_dir: str, workers: int, batch_size: int = 32) -> TrainConfig:
    """Two epochs of three steps, no randomness but the data order's: no dropout, stochastic
    depth, EMA or RandAugment (so the worker count alone can move the trajectory)."""
    regularization = dict(dropout=0.0, stochastic_depth=0.0, ema_decay=0.0, randaugment_ops=0)
    data = dict(train_size=400, test_size=100, num_classes=4, minival_fraction=0.1)
    return TrainConfig(
        depth=26,
        width=0.25,
        resolution=32,
        epochs=2,
        recipe=preset("rs", depth=26, batch_size=batch_size, **regularization),
        workers=workers,
        data=DataConfig(source="synthetic", cache_dir=cache_dir, **data),
        seed=0,
        max_steps_per_epoch=3,
        eval_test=False,
    )


def _ddp_worker(rank: int, world: int, cache_dir: str, port: int, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        rows = [
            e.metrics
            for e in train_epochs(equivalence_config(cache_dir, world), rank=rank, world_size=world)
        ]
        if rank == 0:
            with open(out, "w") as f:
                json.dump(rows, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_workers_with_half_batches_follow_one_worker(tmp_path):
    cache = str(tmp_path / "cache")
    torch.set_num_threads(1)
    single = [e.metrics for e in train_epochs(equivalence_config(cache, 1))]
    out = tmp_path / "ddp.json"
    mp.spawn(_ddp_worker, args=(2, cache, 29517, str(out)), nprocs=2, join=True)
    double = json.loads(out.read_text())
    assert len(double) == len(single) == 2
    for a, b in zip(single, double):
        for key in (M.TRAIN_LOSS, M.MINIVAL_LOSS, M.MINIVAL_TOP1):
            assert a[key] == pytest.approx(b[key], **TOLERANCE), (key, a[key], b[key])
    # And the test is able to fail: without SyncBatchNorm-equivalent statistics (a different
    # batch split) the trajectory moves measurably.
    other = [e.metrics for e in train_epochs(equivalence_config(cache, 1, batch_size=16))]
    assert other[-1][M.TRAIN_LOSS] != pytest.approx(single[-1][M.TRAIN_LOSS], **TOLERANCE)


@pytest.mark.slow
def test_rsearch_train_on_ray_train_with_two_workers(tmp_path, ray_local, learning_args):
    out = tmp_path / "run"
    code = main(["train", *learning_args, "--epochs", "4", "--workers", "2", "--output", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 4 and summary["test_top1"] > 0.2  # chance is 0.10
    assert (out / "checkpoint.pt").exists() and (out / "epochs.parquet").exists()


@pytest.mark.slow
def test_a_diverging_worker_group_raises_training_diverged_in_the_driver(
    tmp_path, ray_local, monkeypatch, diverging_pythonpath
):
    # The divergence comes from outside: Ray starts the group's workers with the test's
    # sitecustomize on their PYTHONPATH, which makes their models' loss NaN.
    hooked = {"env_vars": {"PYTHONPATH": diverging_pythonpath()}}
    run_config = distributed.RunConfig
    monkeypatch.setattr(
        distributed, "RunConfig", lambda **kw: run_config(**kw, worker_runtime_env=hooked)
    )
    cfg = equivalence_config(str(tmp_path / "cache"), 2)
    # Raised by a worker, the divergence would be a worker-group failure: Ray Train would restart
    # the group max_failures times and then raise its TrainingFailedError, not TrainingDiverged.
    with pytest.raises(TrainingDiverged, match="training loss is nan in epoch 1"):
        distributed.fit_torch_trainer(
            cfg,
            name="nan",
            storage_path=str(tmp_path / "runs"),
            cpus_per_worker=0.5,
            max_failures=2,
        )
