"""What rsearch's driver costs a big study, next to bare Ray Tune, side by side.

N trials each report E epochs, without training: the trainable is this benchmark's load
generator, not a model. Each trial reports E epochs of made-up metrics (an accuracy and a
latency drawn from its config, no checkpoint) as fast as Tune takes them, so what is timed
is the driver: Tune's event loop, the scheduler, the callbacks.

    bare      Ray Tune with rsearch's search (its drawn jobs, handed out by jobs.JobQueue) and
              scheduler (Pareto ASHA), and no rsearch callback
    rsearch   rsearch's own driver path (tune.driver._RunTune: the same Tuner plus the results
              recorder, its store and its progress table), the load generator put in place of
              the training trainable

Both run in one Ray, one after the other, per N. Printed: each arm's wall seconds, the
driver's extra cost per report ((rsearch - bare) / (N x E)), and the ratio rsearch / bare.
Target (issue 11): ratio <= 1.15 at N = 10,000.

    python benchmarks/driver_scale.py [--trials 1000 10000] [--epochs 9] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

from ray import tune

# As rsearch's driver sets them (tune.driver.run_search), for both arms: no Tune console box.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rsearch import metrics as M  # noqa: E402
from rsearch import results  # noqa: E402
from rsearch.ray_session import init_ray  # noqa: E402
from rsearch.space import parse_space  # noqa: E402
from rsearch.tune import driver  # noqa: E402
from rsearch.tune import jobs as J  # noqa: E402
from rsearch.tune.tuner import param_space, run_config, tune_config  # noqa: E402

SCALING = {"depth": [26, 50], "width": [0.25, 0.5, 1.0, 2.0], "resolution": [32, 48]}


def load_generator(config: dict) -> None:
    """E epoch reports of one made-up trial: accuracy rising to a level its job id draws,
    latency growing with its width and resolution. No model, no data, no checkpoint."""
    job = config[J.JOB]
    settings = job["config"]
    depth, width, resolution = settings.get("arch") or (
        settings["depth"],
        settings["width"],
        settings["resolution"],
    )
    level = (zlib.crc32(job["id"].encode()) % 1000) / 1000
    latency = depth * width * resolution / 100
    epochs = settings[M.EPOCHS]
    for epoch in range(1, epochs + 1):
        accuracy = level * epoch / epochs
        tune.report(
            {
                M.EPOCH: epoch,
                M.STATUS: M.STATUS_OK if epoch == epochs else M.STATUS_RUNNING,
                M.MINIVAL_TOP1: accuracy,
                M.MINIVAL_LOSS: 2.3 * (1 - accuracy),
                M.TRAIN_LOSS: 2.3 * (1 - accuracy),
                M.LR: 0.1,
                M.IMG_PER_S: 1000.0,
                M.EPOCH_SECONDS: 0.01,
                M.LATENCY_MS: latency,
            }
        )


def _space(trials: int, epochs: int):
    return parse_space(
        {
            "name": "driver-scale",
            "epochs": epochs,
            "data": {"source": "synthetic", "train_size": 600, "test_size": 100},
            "scaling": SCALING,
            "regularization": {"dropout": {"kind": "uniform", "low": 0.0, "high": 0.5}},
            "search": {
                "algorithm": "random",
                "num_samples": trials,
                "seed": 0,
                "scheduler": {"kind": "pareto_asha"},
            },
        }
    )


def _setup(root: Path, name: str, trials: int, epochs: int):
    """(space, its trial context, the experiment folder, the drawn jobs)."""
    space = _space(trials, epochs)
    exp_dir = str(root / name)
    results.create_experiment(exp_dir, {"name": name}, space.resolved())
    ctx = driver._context(space, {"num_classes": 10, "in_chans": 3}, exp_dir)
    jobs = J.draw(param_space(space, epochs, []), trials, 0, f"{epochs}ep")
    return space, ctx, exp_dir, jobs


def _resources(ctx):
    return driver._trial_resources(ctx)


def run_bare(root: Path, trials: int, epochs: int) -> float:
    space, ctx, exp_dir, jobs = _setup(root, "bare", trials, epochs)
    no_recorder = type("NoRecorder", (), {"exp_dir": exp_dir})()  # tune_config reads exp_dir
    config = tune_config(
        space, epochs, ctx, no_recorder, search_alg=J.JobQueue(jobs), num_samples=trials
    )
    run = dataclasses.replace(run_config(f"{exp_dir}/tune/run", None), callbacks=None)
    tuner = tune.Tuner(
        tune.with_resources(load_generator, _resources(ctx)),
        param_space={},
        tune_config=config,
        run_config=run,
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def run_rsearch(root: Path, trials: int, epochs: int) -> float:
    space, ctx, exp_dir, jobs = _setup(root, "rsearch", trials, epochs)
    real_trainable = driver._trainable
    driver._trainable = lambda ctx: tune.with_resources(load_generator, _resources(ctx))
    try:
        run = driver._RunTune(space, epochs, ctx, exp_dir, False, lambda tuner: tuner.fit())
        start = time.perf_counter()
        run.jobs("run", jobs)
        seconds = time.perf_counter() - start
    finally:
        driver._trainable = real_trainable
    stored = results.read_experiment(exp_dir)
    if len(stored.results) != trials:  # the recorder must have kept every trial
        raise SystemExit(f"rsearch arm recorded {len(stored.results)} of {trials} trials")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    init_ray(num_cpus=2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # untimed: the first Tune run of a Ray pays for starting its worker processes
        run_bare(Path(tmp) / "warm-up", 20, args.epochs)
        for n in args.trials:
            bare = run_bare(Path(tmp) / f"n{n}", n, args.epochs)
            mine = run_rsearch(Path(tmp) / f"n{n}", n, args.epochs)
            reports = n * args.epochs
            row = {
                "trials": n,
                "epochs": args.epochs,
                "bare_s": round(bare, 1),
                "rsearch_s": round(mine, 1),
                "overhead_ms_per_report": round((mine - bare) / reports * 1e3, 3),
                "ratio": round(mine / bare, 3),
            }
            rows.append(row)
            print(
                f"N={n:>6} x {args.epochs} epochs: bare Tune {bare:7.1f} s, rsearch {mine:7.1f} s"
                f" -> ratio {row['ratio']:.3f}, {row['overhead_ms_per_report']:+.3f} ms/report",
                file=sys.stderr,
                flush=True,
            )
    if args.json:
        print(json.dumps({**rows[-1], "runs": rows}))


if __name__ == "__main__":
    main()
