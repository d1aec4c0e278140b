"""Ray Train against a plain torch.distributed loop, on the same multi-minute DDP run, side by side.

    plain-ddp    torch.multiprocessing.spawn of N processes, gloo, each running rsearch's
                 train_epochs (rank 0 saves a checkpoint every epoch, as any real run does)
    ray-train    rsearch's N-worker path: a Ray Train TorchTrainer (Train V2) running the same
                 loop, reporting every epoch with rank 0's checkpoint

Both pay process start-up, torch import and data loading in their workers; Ray itself is
started once beforehand (a cluster's Ray is already up). The overhead is
(ray-train - plain-ddp) / plain-ddp, per round; rounds alternate the order.
Target (DESIGN.md section 4): <= 5% on a run of minutes.

    python benchmarks/ray_train_overhead.py [--workers 2] [--epochs 20] [--rounds 1]

(20 epochs of 4,000 images at 32 px: about 4 minutes per path on a 2-core CPU.)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from trial_overhead import config, run_torch_trainer  # benchmarks/ is on sys.path (a script)

from rsearch.data import load_data
from rsearch.ray_session import init_ray
from rsearch.train import TrainConfig, train_epochs
from rsearch.train.checkpoint import CHECKPOINT_FILE, save_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plain_worker(rank: int, world: int, cfg_dict: dict, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for epoch in train_epochs(TrainConfig.from_dict(cfg_dict), rank=rank, world_size=world):
            if rank == 0:
                save_checkpoint(epoch.state(), Path(out_dir) / CHECKPOINT_FILE)
            dist.barrier()
    finally:
        dist.destroy_process_group()


def run_plain(cfg: TrainConfig) -> float:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        mp.spawn(
            _plain_worker,
            args=(cfg.workers, cfg.to_dict(), _free_port(), out),
            nprocs=cfg.workers,
            join=True,
        )
        return time.perf_counter() - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--steps", type=int, default=None, help="cap on steps per epoch (default: whole epochs)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    cfg = config(args.steps, args.workers, epochs=args.epochs, batch=64, images=4000)
    os.environ.setdefault("RSEARCH_CACHE", tempfile.mkdtemp(prefix="rsearch-bench-"))
    load_data(cfg.data, resolution=cfg.resolution)  # render the data once, outside every timing
    init_ray(num_cpus=args.workers)
    storage = tempfile.mkdtemp(prefix="rsearch-train-overhead-")
    paths = {
        "plain-ddp": lambda: run_plain(cfg),
        "ray-train": lambda: run_torch_trainer(cfg, storage),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in order:
            times[name].append(paths[name]())
            print(f"round {r + 1} {name:9s} {times[name][-1]:8.1f} s", file=sys.stderr, flush=True)
    overheads = [
        (ray - plain) / plain for ray, plain in zip(times["ray-train"], times["plain-ddp"])
    ]
    print(
        f"\n{args.workers} workers, {args.epochs} epochs (steps cap {args.steps}), "
        f"{args.rounds} round(s)"
    )
    for name, values in times.items():
        print(f"{name:10s} median {statistics.median(values):8.1f} s")
    print(
        f"Ray Train overhead: median {100 * statistics.median(overheads):+.1f}% of the plain loop "
        f"(per round: {', '.join(f'{100 * o:+.1f}%' for o in overheads)})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "times": times, "overheads": overheads}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
