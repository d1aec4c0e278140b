"""The full grid against the adaptive search, on the same space, side by side.

    full grid   every configuration trained for every epoch of its regime (the latency
                budget only applied afterwards, to the front): what a search without
                pre-pruning or early stopping spends
    adaptive    the adaptive search rsearch ships for scaling studies (scaling.yaml):
                latency pre-pruning (configs over the budget are never trained) + Pareto
                ASHA (successive halving that promotes by Pareto rank on accuracy and
                latency, with a minival-noise margin; one rung at 1/3 of each regime)
    asha        the same pre-pruning + Tune's plain ASHA on accuracy (grace 1 epoch, factor 3),
                with --with-asha: for comparison

For each: the Pareto hypervolume (minival accuracy vs measured latency, within the budget,
same reference point for all) per regime, and the training compute spent: trial-epochs x
training FLOPs (3 x forward FLOPs x images per epoch) and wall time.
Target (DESIGN.md section 4): adaptive >= 98% of the grid's hypervolume for <= 30% of its compute.

    python benchmarks/search_efficiency.py [--space search_spaces/quickstart.yaml] [--with-asha] \\
        [--json out.json]
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


def variants(raw: dict, with_asha: bool = False) -> tuple[dict[str, dict], float]:
    budget = raw["constraints"]["latency_ms"]["max"]
    grid = copy.deepcopy(raw)
    grid["name"] = f"{raw.get('name', 'space')}-fullgrid"
    grid["constraints"]["latency_ms"]["max"] = 1e9  # measure every latency, prune nothing
    grid["search"]["scheduler"] = {"kind": "fifo"}
    adaptive = copy.deepcopy(raw)
    adaptive["name"] = f"{raw.get('name', 'space')}-adaptive"
    adaptive["search"]["scheduler"] = {
        "kind": "pareto_asha",
        "grace_fraction": 1 / 3,
        "reduction_factor": 3,
    }
    spaces = {"full grid": grid, "adaptive": adaptive}
    if with_asha:
        asha = copy.deepcopy(raw)
        asha["name"] = f"{raw.get('name', 'space')}-asha"
        asha["search"]["scheduler"] = {"kind": "asha", "grace_period": 1, "reduction_factor": 3}
        spaces["asha"] = asha
    return spaces, budget


def training_compute(frame, images_per_epoch: int) -> float:
    """Training FLOPs spent: epochs actually trained x 3 x forward FLOPs per image x images."""
    done = frame[M.EPOCHS_DONE].fillna(0).astype(float)
    return float((done * frame[M.FLOPS].astype(float) * 3 * images_per_epoch).sum())


def print_table(report: dict) -> None:
    """One column per search, each followed by its ratio to the full grid."""
    grid, others = report["full grid"], [k for k in report if k != "full grid"]

    def row(label: str, values: dict) -> None:
        cells = f"{values['full grid']:12.4g}"
        for name in others:
            ratio = values[name] / values["full grid"] if values["full grid"] else float("nan")
            cells += f" {values[name]:12.4g} {ratio:7.3f}"
        print(f"{label:22s} {cells}")

    print(
        f"\n{'':22s} {'full grid':>12s}" + "".join(f" {name:>12s} {'ratio':>7s}" for name in others)
    )
    for regime in sorted(grid["hypervolume"]):
        row(
            f"hypervolume {regime} ep",
            {k: r["hypervolume"].get(regime, 0.0) for k, r in report.items()},
        )
    row("hypervolume (sum)", {k: sum(r["hypervolume"].values()) for k, r in report.items()})
    for key, label in (
        ("trial_epochs", "trial-epochs"),
        ("train_flops", "training FLOPs"),
        ("train_seconds", "train seconds"),
        ("wall_s", "wall seconds"),
    ):
        row(label, {k: r[key] for k, r in report.items()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument(
        "--storage", default=None, help="where both experiments go (default: a temp folder)"
    )
    parser.add_argument(
        "--with-asha", action="store_true", help="also run plain ASHA (accuracy only)"
    )
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    raw = yaml.safe_load(Path(args.space).read_text())
    spaces, budget = variants(raw, args.with_asha)
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
        train_images = int(
            space.data.get("train_size", 5000) * (1 - space.data.get("minival_fraction", 0.02))
        )
        report[label] = {
            "hypervolume": results.hypervolume_by_regime(frame, ref_latency_ms=budget),
            "trial_epochs": int(frame[M.EPOCHS_DONE].fillna(0).sum()),
            "train_flops": training_compute(frame, train_images),
            "train_seconds": float(frame[M.TRAIN_SECONDS].fillna(0).sum()),
            "wall_s": wall,
            "trials": len(frame),
            "path": str(exp_dir),
        }
        print(f"{label}: done in {wall:.0f} s ({exp_dir})", file=sys.stderr, flush=True)
    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
