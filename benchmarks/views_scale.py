"""The views at scale: `rsearch analyze` and `rsearch dashboard` on a large finished study.

Generates a finished study as the search would have left it (the results store's own
writers: results.parquet, curves.parquet, experiment.json, space.yaml): N trials over three
epoch regimes, a grid of ResNet-RS architectures with randomised regularization, a few
failed trials, confirmation reruns of front members, 10 curve points per trained trial,
and the configs over the latency budget (measured, never trained: the recorder's extra
rows). Then times the user's commands as subprocesses and prints their wall time and the
report's size.
Target (issue 11): 10,000 trials, 100,000 trial-epochs: dashboard < 20 s and < 20 MB,
analyze < 10 s.

    python benchmarks/views_scale.py [--trials 10000] [--keep DIR] [--json]

`make_study` is the generator tests/test_views_scale.py uses too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: rsearch importable without installing

from rsearch import metrics as m  # noqa: E402
from rsearch.results import (  # noqa: E402
    create_experiment,
    pareto_flags,
    update_meta,
    write_curves,
    write_results,
)

REGIMES = (10, 30, 90)
DEPTHS = (26, 50, 101, 152, 200, 270, 350)
WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
RESOLUTIONS = (128, 160, 192, 224, 256, 320)
CURVE_POINTS = 10  # epochs recorded per trained trial (evenly spaced over its regime)
MINIVAL_SIZE = 25_600
FAILED_FRACTION = 0.005
INFEASIBLE_FRACTION = 0.05  # the slowest architectures: over the latency budget
CONFIRMED = 2  # front members rerun with two other seeds, per regime


def _latency_ms(depth, width, resolution):
    return 0.45 * (depth / 26) ** 0.95 * (width / 0.5) ** 1.3 * (resolution / 128) ** 1.8


def _accuracy(regime, depth, width, resolution, dropout, rng):
    """Short regimes reward width, long ones depth; regularization pays on large models."""
    d, w, r = np.log2(depth / 26), np.log2(width / 0.5), np.log2(resolution / 128)
    long = np.log(regime / REGIMES[0]) / math.log(REGIMES[-1] / REGIMES[0])  # 0 .. 1
    acc = (
        0.38
        + 0.2 * long
        + (0.055 - 0.035 * long) * w
        + (0.02 + 0.03 * long) * d
        + 0.03 * r
        - 0.006 * r * r
    )
    size = d + w  # larger models want more dropout
    acc -= 0.02 * (dropout - 0.1 * size / 4) ** 2
    return np.clip(acc + rng.normal(0, 0.004, len(acc)), 0.01, 0.99)


def _architectures() -> tuple[np.ndarray, np.ndarray, float]:
    """The grid's (depth, width, resolution) rows and their latency (one figure per
    architecture, measured before the search, as rsearch.tune.costs does), and the budget
    that leaves the slowest INFEASIBLE_FRACTION of them over it."""
    grid = np.array(list(itertools.product(DEPTHS, WIDTHS, RESOLUTIONS)), dtype=float)
    latency = _latency_ms(grid[:, 0], grid[:, 1], grid[:, 2])
    return grid, latency, float(np.quantile(latency, 1 - INFEASIBLE_FRACTION))


def _trial_row(trial_id: str, depth, width, resolution, regime, latency, budget) -> dict:
    """What the recorder holds for a trial before its first result: its config and costs."""
    depth, resolution, regime = int(depth), int(resolution), int(regime)
    flops = int(2 * 4.1e9 * (depth / 50) * width**2 * (resolution / 224) ** 2)
    return {
        m.TRIAL_ID: trial_id,
        m.STATUS: m.STATUS_OK,
        m.MODEL: f"resnetrs-{depth}-w{width:g}",
        m.DEPTH: depth,
        m.WIDTH: float(width),
        m.RESOLUTION: resolution,
        m.EPOCHS: regime,
        m.RECIPE: "rs",
        m.SEED: 0,
        m.MINIVAL_SIZE: MINIVAL_SIZE,
        m.LATENCY_MS: float(latency),
        m.LATENCY_P95_MS: float(latency * 1.08),
        m.LATENCY_SPREAD_MS: float(latency * 0.04),
        m.LATENCY_RUNS: 7,
        m.LATENCY_NOISE: 0.04,
        m.LATENCY_BORDERLINE: bool(abs(latency - budget) < 0.04 * budget),
        m.PARAMS: int(25e6 * (depth / 50) * width**2),
        m.FLOPS: flops,
        m.TRAIN_SECONDS: 0.0,
        m.EPOCHS_DONE: 0,
    }


def _rows(trials: int, rng) -> tuple[list[dict], float]:
    """`trials` trained (or failed) trials of feasible architectures, then one infeasible row
    per architecture over the budget and regime (the recorder's extra rows: measured, never
    scheduled); and the budget."""
    grid, latency, budget = _architectures()
    feasible = np.flatnonzero(latency <= budget)
    pick = feasible[rng.integers(len(feasible), size=trials)]
    (depth, width, resolution), lat = grid[pick].T, latency[pick]
    regime = np.array(REGIMES)[np.arange(trials) % len(REGIMES)]
    dropout = rng.choice([0.0, 0.1, 0.2, 0.3, 0.4], trials)
    acc = _accuracy(regime, depth, width, resolution, dropout, rng)
    failed = rng.random(trials) < FAILED_FRACTION
    rows = []
    for i in range(trials):
        row = _trial_row(
            f"trial_{i:05d}", depth[i], width[i], resolution[i], regime[i], lat[i], budget
        )
        big = depth[i] >= 152
        row.update(
            {
                m.DROPOUT: float(dropout[i]),
                m.STOCHASTIC_DEPTH: float(rng.choice([0.0, 0.1, 0.2]) if big else 0.0),
                m.LABEL_SMOOTHING: 0.1,
                m.RANDAUGMENT_MAGNITUDE: int(rng.choice([5, 10, 15])),
                m.RANDAUGMENT_OPS: 2,
                m.WEIGHT_DECAY: float(rng.choice([1e-5, 4e-5, 1e-4])),
                m.EMA_DECAY: 0.9999,
                m.BASE_LR: float(rng.choice([0.05, 0.1, 0.2])),
                m.BATCH_SIZE: 256,
                m.MINIVAL_TOP1: float(acc[i]),
                m.MINIVAL_LOSS: float(2.5 - 2 * acc[i]),
                m.TEST_TOP1: float(acc[i] - 0.01),
                m.TRAIN_SECONDS: float(3.0 * regime[i] * row[m.FLOPS] / 1e9),
                m.EPOCHS_DONE: int(regime[i]),
                m.IMG_PER_S: float(1e12 / row[m.FLOPS]),
                # What the recorder keeps for a resume: the Tune config and the checkpoint.
                m.TRIAL_CONFIG: json.dumps(
                    {"depth": row[m.DEPTH], "width": row[m.WIDTH], "dropout": float(dropout[i])}
                ),
                m.CHECKPOINT: f"tune/trial_{i:05d}/checkpoint_{int(regime[i]) - 1:06d}",
            }
        )
        if failed[i]:
            row.update(
                {
                    m.STATUS: m.STATUS_FAILED,
                    m.FAILURE: "CUDA out of memory at batch 256",
                    m.MINIVAL_TOP1: None,  # as the recorder clears it
                    m.EPOCHS_DONE: int(regime[i]) // 3,
                }
            )
        rows.append(row)
    over = np.flatnonzero(latency > budget)
    for k, (index, regime) in enumerate(itertools.product(over, REGIMES)):
        row = _trial_row(f"infeasible_{k:03d}", *grid[index], regime, latency[index], budget)
        rows.append(dict(row, status=m.STATUS_INFEASIBLE))
    return rows, budget


def _confirmations(path, rows: list[dict], rng) -> list[dict]:
    """Reruns with other seeds of the CONFIRMED fastest front members of each regime."""
    frame = write_results(path, rows)
    on_front = pareto_flags(frame)
    by_id = {row[m.TRIAL_ID]: row for row in rows}
    reruns = []
    for regime in REGIMES:
        front = frame[on_front & (frame[m.EPOCHS] == regime).to_numpy(dtype=bool)]
        for trial_id in front.sort_values(m.LATENCY_MS)[m.TRIAL_ID][:CONFIRMED]:
            for seed in (1, 2):
                original = by_id[trial_id]
                reruns.append(
                    dict(
                        original,
                        trial_id=f"{trial_id}_seed{seed}",
                        seed=seed,
                        confirms=trial_id,
                        minival_top1=original[m.MINIVAL_TOP1] + rng.normal(0, 0.004),
                    )
                )
    return reruns


def _curves(rows: list[dict]) -> list[dict]:
    """CURVE_POINTS epochs per trained trial (fewer for a failed one: it stopped early)."""
    curves = []
    for row in rows:
        if row[m.STATUS] == m.STATUS_INFEASIBLE:
            continue
        regime, final = row[m.EPOCHS], row[m.MINIVAL_TOP1] or 0.3  # failed: its last value
        for k in range(1, CURVE_POINTS + 1):
            epoch = max(1, round(regime * k / CURVE_POINTS))
            if epoch > row[m.EPOCHS_DONE]:
                break
            frac = epoch / regime
            rise = (1 - math.exp(-4 * frac)) / (1 - math.exp(-4))  # a saturating curve
            curves.append(
                {
                    m.TRIAL_ID: row[m.TRIAL_ID],
                    m.EPOCH: epoch,
                    m.TRAIN_LOSS: 4 - 3 * frac,
                    m.MINIVAL_TOP1: final * rise,
                    m.MINIVAL_LOSS: 4 - 3 * final * rise,
                    m.LR: 0.1 * (1 + math.cos(math.pi * frac)) / 2,
                    m.IMG_PER_S: row[m.IMG_PER_S],
                    m.EPOCH_SECONDS: row[m.TRAIN_SECONDS] / regime,
                    **{k: row[k] for k in (m.DEPTH, m.WIDTH, m.RESOLUTION, m.EPOCHS)},
                }
            )
    return curves


def make_study(path, trials: int = 10_000, seed: int = 0) -> Path:
    """A finished study of `trials` trials (plus a few confirmation reruns) at `path`."""
    rng = np.random.default_rng(seed)
    rows, budget = _rows(trials, rng)
    create_experiment(
        path,
        {
            "epochs": list(REGIMES),
            "latency_budget_ms": budget,
            "planned_trials": trials,
            "latency_method": {"batch_size": 1, "dtype": "bf16", "device": "NVIDIA H200"},
        },
        {"search": {"algorithm": "hyperopt", "num_samples": trials}},
    )
    rows += _confirmations(path, rows, rng)
    write_results(path, rows)
    write_curves(path, _curves(rows))
    update_meta(path, status="finished")
    return Path(path)


def _timed(args: list[str]) -> float:
    """Wall seconds of `rsearch ARGS` in a fresh process, as the user runs it."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rsearch", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"rsearch {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return seconds


def measure(study: Path) -> dict:
    analyze_s = _timed(["analyze", str(study)])
    dashboard_s = _timed(["dashboard", str(study)])
    report = study / "report.html"
    return {
        "analyze_s": round(analyze_s, 2),
        "dashboard_s": round(dashboard_s, 2),
        "report_mb": round(report.stat().st_size / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10_000, help="trials to generate")
    parser.add_argument("--keep", metavar="DIR", help="write the study here and keep it")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rsearch-views-") as tmp:
        study = Path(args.keep or tmp) / "views-scale"
        start = time.perf_counter()
        make_study(study, args.trials)
        generate_s = time.perf_counter() - start
        import pandas as pd  # only for the counts printed

        curve_rows = len(pd.read_parquet(study / "curves.parquet", columns=[m.TRIAL_ID]))
        result = {
            "trials": args.trials,
            "curve_rows": curve_rows,
            "generate_s": round(generate_s, 2),
            **measure(study),
        }
    print(
        f"{result['trials']} trials, {result['curve_rows']} curve rows "
        f"(generated in {result['generate_s']} s)\n"
        f"rsearch analyze    {result['analyze_s']:6.2f} s\n"
        f"rsearch dashboard  {result['dashboard_s']:6.2f} s, report {result['report_mb']} MB"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
