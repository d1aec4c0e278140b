"""rsearch's adaptive search against the full grid and against its peers, side by side, on
one space (the quickstart by default), in one run on this machine:

    full grid   every configuration trained for every epoch of its regime, nothing pruned
                (the latency budget applied afterwards, to the front): what a search without
                pre-pruning or early stopping spends
    adaptive    what rsearch ships for scaling studies (scaling.yaml): the grid, latency
                pre-pruning (configs over the budget are never trained) + Pareto ASHA
                (successive halving that promotes by Pareto rank on accuracy and latency,
                with a minival-noise margin; one rung at 1/3 of each regime)
    hyperopt    Tune's HyperOpt TPE with ASHA (grace 1 epoch, factor 3), on accuracy under
                the latency budget (a config over it reports accuracy 0, untrained)
    optuna      Optuna's multi-objective TPE through Tune's OptunaSearch, on [minival_top1,
                latency_ms] with modes [max, min] (FIFO: Tune's OptunaSearch takes no
                intermediate results for several objectives)
    random      random search, FIFO

The three samplers draw from the same choices (the grid's values) with the same trial
budget: as many trials per regime as the grid has configurations (--samples).

For each: the Pareto hypervolume of minival accuracy against latency within the budget, and
the training compute spent (trial-epochs x 3 x forward FLOPs x images per epoch, and wall
seconds), each as a ratio of the full grid's. Every search measures latency as the space says
(the relative budget's interleaved rounds, the quickstart's 1,000-image minival: the
trust issue's settings); the hypervolume of all of them is computed on the full grid's
measured latency ratio of each architecture, with the budget's ratio as the reference, so two
searches differ in it only by what they trained and the accuracy it reached, never by a
re-measured latency.
Target (DESIGN.md, issue 11): adaptive >= 98% of the grid's hypervolume for <= 20% of its
FLOPs and <= 30% of its wall seconds, and ahead of every peer at equal compute.

    python benchmarks/search_efficiency.py [--space search_spaces/quickstart.yaml] \\
        [--only adaptive,optuna] [--samples N] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rsearch import metrics as M
from rsearch import results
from rsearch.pareto import hypervolume_2d
from rsearch.space import parse_space
from rsearch.tune.driver import experiment_dir, run_search
from rsearch.tune.pareto_asha import rung_epochs

SEARCHES = ("full grid", "adaptive", "hyperopt", "optuna", "random")
ARCH = [M.DEPTH, M.WIDTH, M.RESOLUTION]
# scaling.yaml's scheduler, and Tune's ASHA as its examples set it
PARETO_ASHA = {"kind": "pareto_asha", "grace_fraction": 0.3333, "reduction_factor": 3}
ASHA = {"kind": "asha", "grace_period": 1, "reduction_factor": 3}
NO_BUDGET = 1e9  # a latency ratio (or ms) no architecture reaches: every latency measured


def _budget(raw: dict) -> tuple[str, float]:
    """('max_ratio' | 'max', its value): the space's latency budget."""
    latency = raw["constraints"]["latency_ms"]
    key = "max_ratio" if "max_ratio" in latency else "max"
    return key, float(latency[key])


def _variant(raw: dict, slug: str, search: dict, prune: bool = True) -> dict:
    space = copy.deepcopy(raw)
    space["name"] = f"{raw.get('name', 'space')}-{slug}"
    space["search"] = {**raw.get("search", {}), **search}
    if not prune:
        space["constraints"]["latency_ms"][_budget(raw)[0]] = NO_BUDGET
    return space


def variants(raw: dict, samples: int) -> dict[str, dict]:
    """The five searches of one space, by label."""
    sampled = {"num_samples": samples}
    return {
        "full grid": _variant(raw, "fullgrid", {"algorithm": "grid", "scheduler": "fifo"}, False),
        "adaptive": _variant(raw, "adaptive", {"algorithm": "grid", "scheduler": PARETO_ASHA}),
        "hyperopt": _variant(
            raw, "hyperopt", {"algorithm": "hyperopt", **sampled, "scheduler": ASHA}
        ),
        "optuna": _variant(raw, "optuna", {"algorithm": "optuna", **sampled, "scheduler": "fifo"}),
        "random": _variant(raw, "random", {"algorithm": "random", **sampled, "scheduler": "fifo"}),
    }


def training_compute(frame: pd.DataFrame, images_per_epoch: int) -> float:
    """Training FLOPs spent: epochs actually trained x 3 x forward FLOPs per image x images."""
    done = frame[M.EPOCHS_DONE].fillna(0).astype(float)
    return float((done * frame[M.FLOPS].astype(float) * 3 * images_per_epoch).sum())


def common_latency(grid: pd.DataFrame) -> dict[tuple, float]:
    """Each architecture's latency, as a ratio of the budget's reference, from the full grid
    (which measured every one): the one latency every search's hypervolume is computed on."""
    column = M.LATENCY_RATIO if grid[M.LATENCY_RATIO].notna().any() else M.LATENCY_MS
    rows = grid.dropna(subset=[column]).drop_duplicates(ARCH)
    return {tuple(r[k] for k in ARCH): float(r[column]) for _, r in rows.iterrows()}


def hypervolumes(frame: pd.DataFrame, latency: dict[tuple, float], ref: float) -> dict[int, float]:
    """Per regime: the hypervolume of the trained trials within the budget, on the common
    latency, reference (accuracy 0, the budget)."""
    ok = frame[results.competing(frame)]
    out = {}
    for regime in results.regimes(frame):
        rows = ok[ok[M.EPOCHS] == regime]
        lat = np.array([latency.get(tuple(r[k] for k in ARCH), np.inf) for _, r in rows.iterrows()])
        acc = rows[M.MINIVAL_TOP1].astype(float).to_numpy()
        within = lat <= ref
        out[int(regime)] = hypervolume_2d(acc[within], lat[within], (0.0, ref))
    return out


def run_one(label: str, mapping: dict, source: str, storage: str) -> dict:
    space = parse_space(mapping, source=f"{source} ({label})")
    exp_dir = experiment_dir(space, storage)
    started = time.perf_counter()
    run_search(space, exp_dir=exp_dir, quiet=True)
    wall = time.perf_counter() - started
    frame = results.read_experiment(exp_dir).results
    data = space.data
    images = int(data.get("train_size", 5000) * (1 - data.get("minival_fraction", 0.02)))
    print(f"{label}: done in {wall:.0f} s ({exp_dir})", file=sys.stderr, flush=True)
    return {
        "frame": frame,
        "trial_epochs": int(frame[M.EPOCHS_DONE].fillna(0).sum()),
        "train_flops": training_compute(frame, images),
        "train_seconds": float(frame[M.TRAIN_SECONDS].fillna(0).sum()),
        "wall_s": wall,
        "trials": len(frame),
        "trained": int(results.competing(frame).sum()),
        "path": str(exp_dir),
    }


def rung_fidelity(grid: Path | str) -> dict[int, dict]:
    """Per regime, in the full grid (every configuration trained to the end): the rank
    correlation (Spearman) between each Pareto ASHA rung's minival accuracy and the final one.
    How far a rung can be trusted to stand for the end on this space."""
    exp = results.read_experiment(grid)
    curves = exp.curves
    out = {}
    for regime in results.regimes(exp.results):
        rungs = rung_epochs(regime, PARETO_ASHA["grace_fraction"], PARETO_ASHA["reduction_factor"])
        in_regime = curves[curves[M.EPOCHS] == regime].pivot_table(
            index=M.TRIAL_ID, columns=M.EPOCH, values=M.MINIVAL_TOP1
        )
        out[int(regime)] = {
            int(rung): float(in_regime[rung].corr(in_regime[regime], method="spearman"))
            for rung in rungs
        }
    return out


def summarise(runs: dict[str, dict], ref: float) -> dict:
    """Hypervolumes on the grid's latency, and every figure as a ratio of the grid's."""
    latency = common_latency(runs["full grid"]["frame"])
    volumes = {label: hypervolumes(run["frame"], latency, ref) for label, run in runs.items()}
    grid, grid_volume = runs["full grid"], sum(volumes["full grid"].values())
    report = {}
    for label, run in runs.items():
        ratios = {k: run[k] / grid[k] for k in ("trial_epochs", "train_flops", "wall_s")}
        report[label] = {
            **{k: v for k, v in run.items() if k != "frame"},
            "hypervolume": volumes[label],
            "ratios": {"hypervolume": sum(volumes[label].values()) / grid_volume, **ratios},
        }
    return report


def print_table(report: dict) -> None:
    """One row per search: hypervolume per regime, then each ratio to the full grid."""
    regimes = sorted(report["full grid"]["hypervolume"])
    head = "".join(f" {f'HV {r} ep':>9s}" for r in regimes)
    print(
        f"\n{'search':10s}{head} {'HV ratio':>9s} {'FLOPs':>9s} {'FLOPs ratio':>12s} "
        f"{'wall s':>8s} {'wall ratio':>11s} {'trial-epochs':>13s}"
    )
    for label, row in report.items():
        ratios = row["ratios"]
        cells = "".join(f" {row['hypervolume'].get(r, 0.0):9.4f}" for r in regimes)
        print(
            f"{label:10s}{cells} {ratios['hypervolume']:9.3f} {row['train_flops']:9.3g} "
            f"{ratios['train_flops']:12.3f} {row['wall_s']:8.0f} {ratios['wall_s']:11.3f} "
            f"{row['trial_epochs']:13d}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument(
        "--storage", default=None, help="where the experiments go (default: a temp folder)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SEARCHES[1:]),
        help="the searches besides the full grid (always run: it is the reference)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="trials per regime of the samplers (default: the grid's configurations)",
    )
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    raw = yaml.safe_load(Path(args.space).read_text())
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SEARCHES))
    if unknown:
        parser.error(f"--only: expected some of {', '.join(SEARCHES[1:])}, got {unknown}")
    samples = args.samples or parse_space(raw, source=args.space).grid_size()
    spaces = variants(raw, samples)
    storage = args.storage or tempfile.mkdtemp(prefix="rsearch-efficiency-")
    runs = {
        label: run_one(label, spaces[label], args.space, storage)
        for label in SEARCHES
        if label == "full grid" or label in chosen
    }
    key, budget = _budget(raw)
    report = summarise(runs, budget)
    print_table(report)
    fidelity = rung_fidelity(runs["full grid"]["path"])
    print(f"\nrank correlation of a rung's minival accuracy with the final one: {fidelity}")
    meta = {
        "space": args.space,
        "samples_per_regime": samples,
        "budget": {key: budget},
        "rung_fidelity_spearman": fidelity,
    }
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, **report}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
