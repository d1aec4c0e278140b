"""Fixed cost of running one short training through each of rsearch's paths, side by side.

    plain        train_epochs() in this process, no Ray at all (the reference)
    tune-1       Tune function trials running the loop in the trial process (rsearch's 1-worker
                 path), one at a time in one search, per trial
    train-1      Ray Train TorchTrainer with 1 worker
    train-2      Ray Train TorchTrainer with 2 workers (DDP over gloo)

Every path trains the same tiny configuration for the same steps; the overhead of a path
is its wall time minus the plain loop's, measured in the same round (rounds interleave the
paths because this machine is noisy).  Ray is started once, before timing (its start-up is
not part of a trial's cost).  Target (DESIGN.md section 4): tune-1 overhead <= 2 s.

    python benchmarks/trial_overhead.py [--rounds 2] [--steps 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
from ray import tune

from rsearch import metrics as M
from rsearch.architecture import arch_key
from rsearch.data import DataConfig, load_data
from rsearch.ray_session import init_ray
from rsearch.recipe import preset
from rsearch.train import TrainConfig, train_epochs
from rsearch.train.distributed import fit_torch_trainer
from rsearch.tune.trial import TrialContext, run_trial

# The tiny architecture every path trains (here and in ray_train_overhead.py).
DEPTH, WIDTH, RESOLUTION = 26, 0.25, 32


def config(
    steps: int | None, workers: int = 1, *, epochs: int = 1, batch: int = 32, images: int = 2000
) -> TrainConfig:
    """The run every path trains: `images` synthetic images, `steps` per epoch at most."""
    return TrainConfig(
        depth=DEPTH,
        width=WIDTH,
        resolution=RESOLUTION,
        epochs=epochs,
        recipe=preset("rs", depth=DEPTH, batch_size=batch, dropout=0.0),
        workers=workers,
        data=DataConfig(source="synthetic", train_size=images, test_size=200),
        eval_test=False,
        max_steps_per_epoch=steps,
    )


def run_plain(steps: int) -> float:
    t = time.perf_counter()
    for _ in train_epochs(config(steps)):
        pass
    return time.perf_counter() - t


def run_tune_trials(steps: int, storage: str, trials: int) -> float:
    """Wall time of `trials` one-at-a-time Tune trials, divided by `trials`: the cost one trial
    of a search pays (Tune's own start-up is amortised, the trial process is reused)."""
    cfg = config(steps)
    ctx = TrialContext(
        data=cfg.data.to_dict(),
        num_classes=10,
        in_chans=3,
        max_steps_per_epoch=steps,
        eval_test=False,
        costs={arch_key(DEPTH, WIDTH, RESOLUTION): {M.PARAMS: 1, M.FLOPS: 1}},
    )
    space = {
        "arch": [DEPTH, WIDTH, RESOLUTION],
        "epochs": 1,
        "seed": tune.grid_search(list(range(trials))),
        "recipe": {"batch_size": 32, "dropout": 0.0},
    }
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=storage, name=f"overhead_{time.time_ns()}", verbose=0
        ),
    )
    t = time.perf_counter()
    result = tuner.fit()
    elapsed = time.perf_counter() - t
    assert not result.errors, result.errors
    return elapsed / trials


def run_torch_trainer(cfg: TrainConfig, storage: str) -> float:
    """Wall time of one Ray Train TorchTrainer run of `cfg` (cfg.workers workers, 1 CPU each)."""
    t = time.perf_counter()
    result = fit_torch_trainer(
        cfg,
        name=f"overhead_{cfg.workers}_{time.time_ns()}",
        storage_path=storage,
        cpus_per_worker=1,
    )
    elapsed = time.perf_counter() - t
    assert result.error is None, result.error
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--trials", type=int, default=4, help="Tune trials per tune-1 measurement")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("RSEARCH_CACHE", tempfile.mkdtemp(prefix="rsearch-bench-"))
    load_data(config(1).data, resolution=RESOLUTION)  # render the data once, outside every timing
    init_ray(num_cpus=2)
    storage = tempfile.mkdtemp(prefix="rsearch-overhead-")
    paths = {
        "plain": lambda: run_plain(args.steps),
        "tune-1": lambda: run_tune_trials(args.steps, storage, args.trials),
        "train-1": lambda: run_torch_trainer(config(args.steps, 1), storage),
        "train-2": lambda: run_torch_trainer(config(args.steps, 2), storage),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name, fn in paths.items():
            times[name].append(fn())
            print(f"round {r + 1} {name:8s} {times[name][-1]:7.2f} s", file=sys.stderr, flush=True)
    plain = statistics.median(times["plain"])
    print(
        f"\n{'path':9s} {'median s':>9s} {'overhead s':>11s}   "
        f"({args.steps} steps, {args.rounds} rounds)"
    )
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:9s} {med:9.2f} {med - plain:11.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": args.steps, "times": times, "plain_median": plain}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
