"""N-worker training through Ray Train's TorchTrainer (Train V2 API, DDP; gloo on CPU, NCCL on GPU).

Worker function -> driver function, as in Ray's train_tune_interop example:
`worker_loop` runs the same `train_epochs` loop on every worker and reports each epoch
with `ray.train.report` (rank 0 attaches the checkpoint); `fit_torch_trainer` builds and
runs the TorchTrainer.  Inside a Tune trial, pass `in_tune=True`: metrics and checkpoint
paths then reach Tune through Ray's TuneReportCallback.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import ray.train
import ray.train.torch
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from rsearch import metrics as M
from rsearch import storage
from rsearch.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from rsearch.train.config import TrainConfig
from rsearch.train.loop import DIVERGED, TrainingDiverged, train_epochs


def worker_loop(config: dict) -> dict | None:
    cfg = TrainConfig.from_dict(config["train"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if cfg.device.startswith("cuda"):
        device = ray.train.torch.get_device()  # the GPU Ray assigned to this worker
        torch.cuda.set_device(device)
        cfg = dataclasses.replace(cfg, device=str(device))
    resume = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # a restarted worker group continues from the last report
        with checkpoint.as_directory() as d:
            resume = load_checkpoint(Path(d) / CHECKPOINT_FILE)
    try:
        for epoch in train_epochs(cfg, resume=resume, rank=rank, world_size=world):
            with tempfile.TemporaryDirectory() as tmp:
                attached = None
                if rank == 0:
                    save_checkpoint(epoch.state(), Path(tmp) / CHECKPOINT_FILE)
                    attached = ray.train.Checkpoint.from_directory(tmp)
                # Every rank must call report the same number of times (it is a barrier).
                ray.train.report(
                    {**config.get("report_with", {}), **epoch.metrics},
                    checkpoint=attached,
                    checkpoint_dir_name=f"epoch_{epoch.metrics[M.EPOCH]:04d}",
                )
    except TrainingDiverged as exc:
        # A divergence is the run's outcome, not a fault: raised, Ray Train (and Tune around it)
        # would restart the workers max_failures times to diverge again. The loop checks the
        # all-reduced loss, so every rank stops at the same epoch; the driver reads rank 0's
        # return value and raises TrainingDiverged there.
        return {M.FAILURE: f"{DIVERGED}{exc}"}
    return None


def fit_torch_trainer(
    cfg: TrainConfig,
    *,
    name: str,
    storage_path: str,
    in_tune: bool = False,
    max_failures: int = 2,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 1,
    report_with: dict | None = None,
):
    """Run `cfg` on `cfg.workers` Ray Train workers; returns the ray.train.Result.

    `report_with`: values added to every epoch's report (a Tune trial's cost columns).
    Raises TrainingDiverged, as the in-process loop does, when the loss went non-finite;
    other failures (after max_failures restarts) raise Ray's TrainingFailedError."""
    callbacks = []
    if in_tune:
        # Tune is loaded only inside a trial: `rsearch train --workers N` runs without it.
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    use_gpu = cfg.device.startswith("cuda")
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config={"train": cfg.to_dict(), "report_with": dict(report_with or {})},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=cfg.workers,
            use_gpu=use_gpu,
            resources_per_worker={
                "CPU": cpus_per_worker,
                **({"GPU": gpus_per_worker} if use_gpu else {}),
            },
        ),
        run_config=RunConfig(
            name=name,  # the trial id (never a timestamp), so a restored trial finds its run again
            **storage.ray_storage(storage_path),  # a local/shared path or a pyarrow URI
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )
    result = trainer.fit()
    failure = (result.return_value or {}).get(M.FAILURE) or ""
    if failure.startswith(DIVERGED):
        raise TrainingDiverged(failure[len(DIVERGED) :])
    return result
