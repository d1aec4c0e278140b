"""The full grid against the default adaptive search, on the same space, side by side.

    full grid   every configuration trained for every epoch of its regime (the latency
                budget only applied afterwards, to the front): what a search without
                pre-pruning or early stopping spends
    adaptive    rsearch's default: latency pre-pruning (configs over the budget are never
                trained) + ASHA early stopping (grace 1 epoch, reduction factor 3)

For each: the Pareto hypervolume (minival accuracy vs measured latency, within the budget,
same reference point for both) per regime, and the training compute spent: trial-epochs x
training FLOPs (3 x forward FLOPs x images per epoch) and wall time.
Target (DESIGN.md section 4): adaptive >= 98% of the grid's hypervolume for <= 30% of its compute.

    python benchmarks/search_efficiency.py [--space search_spaces/quickstart.yaml] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from rsearch import metrics as M
from rsearch import results
from rsearch.space import parse_space
from rsearch.tune.driver import experiment_dir, run_search


def variants(raw: dict) -> dict[str, dict]:
    budget = raw["constraints"]["latency_ms"]["max"]
    grid = copy.deepcopy(raw)
    grid["name"] = f"{raw.get('name', 'space')}-fullgrid"
    grid["constraints"]["latency_ms"]["max"] = 1e9  # measure every latency, prune nothing
    grid["search"]["scheduler"] = {"kind": "fifo"}
    adaptive = copy.deepcopy(raw)
    adaptive["name"] = f"{raw.get('name', 'space')}-adaptive"
    adaptive["search"]["scheduler"] = {"kind": "asha", "grace_period": 1, "reduction_factor": 3}
    return {"full grid": grid, "adaptive": adaptive}, budget


def training_compute(frame, images_per_epoch: int) -> float:
    """Training FLOPs spent: epochs actually trained x 3 x forward FLOPs per image x images."""
    done = frame["epochs_done"].fillna(0).astype(float)
    return float((done * frame[M.FLOPS].astype(float) * 3 * images_per_epoch).sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument("--storage", default=None, help="where both experiments go (default: a temp folder)")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    raw = yaml.safe_load(Path(args.space).read_text())
    spaces, budget = variants(raw)
    storage = args.storage or tempfile.mkdtemp(prefix="rsearch-efficiency-")
    report = {}
    for label, mapping in spaces.items():
        space = parse_space(mapping, source=f"{args.space} ({label})")
        exp_dir = experiment_dir(space, storage)
        started = time.perf_counter()
        run_search(space, exp_dir=exp_dir, quiet=True)
        wall = time.perf_counter() - started
        exp = results.read_experiment(exp_dir)
        frame = exp.results
        train_images = int(space.data.get("train_size", 5000) * (1 - space.data.get("minival_fraction", 0.02)))
        report[label] = {
            "hypervolume": results.hypervolume_by_regime(frame, ref_latency_ms=budget),
            "trial_epochs": int(frame["epochs_done"].fillna(0).sum()),
            "train_flops": training_compute(frame, train_images),
            "train_seconds": float(frame[M.TRAIN_SECONDS].fillna(0).sum()),
            "wall_s": wall, "trials": len(frame), "path": str(exp_dir),
        }
        print(f"{label}: done in {wall:.0f} s ({exp_dir})", file=sys.stderr, flush=True)
    grid, ada = report["full grid"], report["adaptive"]
    print(f"\n{'':24s} {'full grid':>12s} {'adaptive':>12s} {'ratio':>8s}")
    for regime in sorted(grid["hypervolume"]):
        g, a = grid["hypervolume"][regime], ada["hypervolume"].get(regime, 0.0)
        print(f"{f'hypervolume {regime} ep':24s} {g:12.4f} {a:12.4f} {a / g if g else float('nan'):8.3f}")
    total_g, total_a = sum(grid["hypervolume"].values()), sum(ada["hypervolume"].values())
    print(f"{'hypervolume (sum)':24s} {total_g:12.4f} {total_a:12.4f} {total_a / total_g if total_g else float('nan'):8.3f}")
    for key, label in (("trial_epochs", "trial-epochs"), ("train_flops", "training FLOPs"),
                       ("train_seconds", "train seconds"), ("wall_s", "wall seconds")):
        g, a = grid[key], ada[key]
        print(f"{label:24s} {g:12.4g} {a:12.4g} {a / g if g else float('nan'):8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
