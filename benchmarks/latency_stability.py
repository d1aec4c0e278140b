"""Latency figures under load: interleaved rounds and reference ratios against the old method.

Measures the quickstart's architectures three times - on an idle machine, beside one
CPU-bound process and beside two (busy loops started by this script: its load generator) -
with rsearch's method (every architecture once per round, shuffled, `repeats` rounds of
torch.utils.benchmark blocked_autorange; one CPU thread is timed by its own CPU time) and,
for contrast, with the method rsearch used before (3 warm-up calls, then 10 calls timed one
by one with time.perf_counter, median; architectures one after another).

For each architecture it prints its ratio to the space's reference architecture under each
condition and the spread of that ratio across the conditions ((max - min) / min; target
<= 10%), the same spread of the old method's absolute figures, and whether the feasible set
(ratio <= max_ratio) is the same in all three conditions. It also compares combining rules
on the same raw rounds (medians or minima of blocks and rounds, per-round ratios or ratios
of each architecture's own figure), which is how rsearch's rule (the ratio of the two
fastest blocks, rsearch/cost/rounds.py) was chosen.

    python benchmarks/latency_stability.py [--space search_spaces/quickstart.yaml] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time

import torch

from rsearch import metrics as M
from rsearch.cost.latency import percentile
from rsearch.cost.rounds import measure_interleaved
from rsearch.models import build, network_config
from rsearch.space import load_space

CONDITIONS = (("idle", 0), ("1 busy process", 1), ("2 busy processes", 2))


def _median(values):
    return percentile(values, 0.5)


def per_round_ratios(of_round, of_ratios):
    """Ratio rule: each round's figure (of its blocks) over the reference's, combined over
    rounds."""
    return lambda arch, ref: of_ratios([of_round(a) / of_round(b) for a, b in zip(arch, ref)])


def ratio_of_figures(of_round, of_rounds):
    """Ratio rule: each architecture's own figure (combined over its rounds) over the
    reference's."""
    return lambda arch, ref: (
        of_rounds([of_round(a) for a in arch]) / of_rounds([of_round(b) for b in ref])
    )


RULES = {  # name -> f(architecture's rounds of blocks, reference's rounds of blocks) -> ratio
    "median of per-round ratios (median block)": per_round_ratios(_median, _median),
    "median of per-round ratios (fastest block)": per_round_ratios(min, _median),
    "fastest per-round ratio": per_round_ratios(_median, min),
    "ratio of medians of rounds": ratio_of_figures(_median, _median),
    "ratio of fastest rounds": ratio_of_figures(_median, min),
    "ratio of fastest blocks": ratio_of_figures(min, min),
}
RSEARCH_RULE = "ratio of fastest blocks"


@contextlib.contextmanager
def busy(n: int):
    """n CPU-bound processes (pure Python loops) for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(1.0 if n else 0.0)  # let the scheduler spread them
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def old_method(cfg, resolution: int, threads: int) -> float:
    """rsearch's figure before: 3 warm-up calls, 10 calls timed one by one, median (ms)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build(cfg).eval()
        x = torch.randn(1, cfg.in_chans, resolution, resolution)
        times = []
        with torch.inference_mode():
            for i in range(13):
                start = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append((time.perf_counter() - start) * 1e3)
        return percentile(times, 0.5)
    finally:
        torch.set_num_threads(old)


def spread(values) -> float:
    return (max(values) - min(values)) / min(values)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="search_spaces/quickstart.yaml")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    space = load_space(args.space)
    latency = space.latency
    if latency is None or latency.reference is None:
        raise SystemExit(
            f"{args.space}: constraints.latency_ms needs a reference (a relative budget)"
        )
    method = latency.method
    classes = int(space.data.get("num_classes", 10))
    archs = space.architectures()
    if archs is None:
        raise SystemExit(f"{args.space}: a scaling dimension is a range (nothing to enumerate)")
    ref = latency.reference
    ref_key = ref.key
    items = {
        arch.key: (network_config(arch, num_classes=classes, in_chans=3), arch.resolution)
        for arch in [*archs, ref]
    }
    raw = {}
    for name, n in CONDITIONS:
        with busy(n):
            start = time.perf_counter()
            new = measure_interleaved(items, method, reference=ref_key, keep_blocks=True)
            seconds = time.perf_counter() - start
            old = {
                key: old_method(cfg, res, method.threads or 1) for key, (cfg, res) in items.items()
            }
        raw[name] = {"seconds": seconds, "new": new, "old": old}
        print(
            f"{name}: measured {len(items)} architectures in {seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    report = {
        "space": args.space,
        "max_ratio": latency.max_ratio,
        "reference": ref_key,
        "rules": {},
    }
    for rule, ratio in RULES.items():
        report["rules"][rule] = {
            key: [
                ratio(raw[name]["new"][key]["blocks"], raw[name]["new"][ref_key]["blocks"])
                for name, _ in CONDITIONS
            ]
            for key in items
        }
    table = report["rules"][RSEARCH_RULE]
    old_abs = {key: [raw[name]["old"][key] for name, _ in CONDITIONS] for key in items}
    new_abs = {
        key: [raw[name]["new"][key][M.LATENCY_MS] for name, _ in CONDITIONS] for key in items
    }
    budget = latency.max_ratio
    print(
        f"\nratio to {ref_key} (rsearch's rule), per condition: "
        + ", ".join(n for n, _ in CONDITIONS)
    )
    print(
        f"{'architecture':<14} {'ratios':>24} {'spread':>7} | "
        f"{'old abs ms':>22} {'spread':>7} | feasible"
    )
    for key in items:
        ratios = table[key]
        feasible = [r <= budget for r in ratios] if budget else []
        print(
            f"{key:<14} {' '.join(f'{r:7.3f}' for r in ratios):>24} {spread(ratios):7.1%} | "
            f"{' '.join(f'{v:7.2f}' for v in old_abs[key]):>22} {spread(old_abs[key]):7.1%} | "
            f"{'/'.join('y' if f else 'n' for f in feasible)}"
        )
    print("\nlargest spread across the conditions, per rule (target <= 10%):")
    lines = {
        rule + (" (rsearch)" if rule == RSEARCH_RULE else ""): rows
        for rule, rows in report["rules"].items()
    }
    lines.update({"new method, absolute ms": new_abs, "old method, absolute ms": old_abs})
    for label, rows in lines.items():
        spreads = [spread(v) for v in rows.values()]
        print(f"  {label:<52} max {max(spreads):6.1%}  median {percentile(spreads, 0.5):6.1%}")
    if budget:
        sets = [
            frozenset(k for k in items if table[k][i] <= budget) for i in range(len(CONDITIONS))
        ]
        print(
            f"\nfeasible set (ratio <= {budget:g}) the same in all conditions: "
            f"{len(set(sets)) == 1} "
            f"({len(sets[0])} of {len(items)} idle)"
        )
    if args.json:
        for cond in raw.values():
            for result in cond["new"].values():
                result.pop("blocks")
        with open(args.json, "w") as f:
            json.dump(
                {
                    **report,
                    "old_ms": old_abs,
                    "new_ms": new_abs,
                    "seconds": {n: raw[n]["seconds"] for n in raw},
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
