"""Latency of many architectures, measured in interleaved rounds.

Timing one architecture after another lets a burst of load (a compile, a backup, another
user) land on all the rounds of a few architectures, which then look slower than they are.
Here every architecture is timed once per round, in an order shuffled each round (seeded),
for `method.repeats` rounds, so a burst falls on one round of several architectures and a
sustained load slows every architecture alike.

Combining rule (chosen by measurement, benchmarks/latency_stability.py): an architecture's
figure is the median of its round figures, and its ratio to a reference architecture is the
median of the per-round ratios (architecture / reference, both timed in the same round,
seconds apart). Per-round ratios cancel a load that changes between rounds; the median
discards a round that a burst hit. The alternative, the minimum of the rounds, moved more
under load in that benchmark (it rewards the one lucky round).
"""
from __future__ import annotations

import random
import sys

from rsearch.cost.latency import LatencyMethod, Runner, describe_result, percentile, round_figure

# Built models stay in memory between rounds while their parameters add up to no more than
# this (about 1.2 GB in float32); beyond it each round rebuilds (and re-warms) the model.
KEEP_PARAMS = 300_000_000


def measure_interleaved(items: dict, method: LatencyMethod, *, reference: str | None = None, rounds: int | None = None,
                        seed: int = 0, make_runner=Runner, progress: bool = False,
                        keep_blocks: bool = False) -> dict[str, dict]:
    """{key: result} for items {key: (ResNetConfig, resolution)}, timed in interleaved rounds.

    With `reference` (a key of `items`), every result also gets latency_ratio (the median of
    its per-round ratios to the reference), latency_ratio_spread and latency_ratio_noise.
    `keep_blocks` adds every round's block times under "blocks" (for benchmarks)."""
    rounds = rounds or method.repeats
    order = list(items)
    rng = random.Random(seed)
    kept: dict[str, Runner] = {}
    kept_params = 0
    blocks: dict[str, list[list[float]]] = {key: [] for key in order}
    last: dict[str, Runner] = {}  # each key's latest runner, for its description
    for r in range(rounds):
        rng.shuffle(order)
        for key in order:
            runner = kept.get(key)
            if runner is None:
                runner = make_runner(*items[key], method)
                if kept_params + runner.params <= KEEP_PARAMS:
                    kept[key], kept_params = runner, kept_params + runner.params
            blocks[key].append(runner.time_round())
            if key not in kept:
                runner.release()  # a rebuilt model is freed before the next one is built
            last[key] = runner
        if progress:
            print(f"\r[rsearch] latency: round {r + 1}/{rounds} of {len(order)} architectures", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr, flush=True)
    out = {key: describe_result(blocks[key], last[key]) for key in items}
    if keep_blocks:
        for key in items:
            out[key]["blocks"] = blocks[key]
    if reference is not None:
        for key in items:
            out[key].update(_ratio(blocks[key], blocks[reference]))
    return out


def _ratio(arch_rounds: list[list[float]], ref_rounds: list[list[float]]) -> dict:
    """The median of the per-round ratios, with their interquartile range."""
    ratios = [round_figure(a) / round_figure(b) for a, b in zip(arch_rounds, ref_rounds)]
    median = percentile(ratios, 0.5)
    spread = percentile(ratios, 0.75) - percentile(ratios, 0.25)
    return {"latency_ratio": median, "latency_ratio_spread": spread,
            "latency_ratio_noise": spread / median if median > 0 else 0.0}
