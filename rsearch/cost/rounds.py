"""Latency of many architectures, measured in interleaved rounds.

Timing one architecture after another lets a burst of load (a compile, a backup, another
user) land on all the rounds of a few architectures, which then look slower than they are.
Here every architecture is timed once per round, in an order shuffled each round (seeded),
for `method.repeats` rounds, so a burst falls on one round of several architectures and a
sustained load slows every architecture alike.

Combining rule (chosen by measurement, benchmarks/latency_stability.py): an architecture's
figure is its fastest block over all rounds (latency.summarize), and its ratio to a
reference architecture is the ratio of the two figures, both taken from the same
interleaved rounds. Idle, beside one and beside two CPU-bound processes, that ratio moved
at most 2.2-4.3% (three runs of the benchmark on this project's 2-core machine); the ratio
of the median rounds moved 8-15%, the median of per-round ratios 5-21%: a machine whose
cores are shared slows a large model (whose weights no longer stay in cache between time
slices) more than a small one in most rounds, and the fastest block is the one a time
slice did not cut.
"""

from __future__ import annotations

import math
import random
import sys

from rsearch import metrics as M
from rsearch.cost.latency import LatencyMethod, Runner, describe_result

# Built models stay in memory between rounds while their parameters add up to no more than
# this (about 1.2 GB in float32); beyond it each round rebuilds (and re-warms) the model.
KEEP_PARAMS = 300_000_000


def measure_interleaved(
    items: dict,
    method: LatencyMethod,
    *,
    reference: str | None = None,
    rounds: int | None = None,
    seed: int = 0,
    make_runner=Runner,
    progress: bool = False,
    keep_blocks: bool = False,
) -> dict[str, dict]:
    """{key: result} for items {key: (ResNetConfig, resolution)}, timed in interleaved rounds.

    With `reference` (a key of `items`), every result also gets latency_ratio (its figure over
    the reference's), latency_ratio_spread and latency_ratio_noise.
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
            print(
                f"\r[rsearch] latency: round {r + 1}/{rounds} of {len(order)} architectures",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr, flush=True)
    out = {key: describe_result(blocks[key], last[key]) for key in items}
    if keep_blocks:
        for key in items:
            out[key]["blocks"] = blocks[key]
    if reference is not None:
        for key in items:
            out[key].update(ratio_to(out[key], out[reference], same=key == reference))
    return out


def ratio_to(figure: dict, reference: dict, same: bool = False) -> dict:
    """latency_ratio of a figure to the reference's, with the noise of the two combined."""
    if same:
        return {M.LATENCY_RATIO: 1.0, M.LATENCY_RATIO_SPREAD: 0.0, M.LATENCY_RATIO_NOISE: 0.0}
    ratio = figure[M.LATENCY_MS] / reference[M.LATENCY_MS]
    noise = math.hypot(figure.get(M.LATENCY_NOISE, 0.0), reference.get(M.LATENCY_NOISE, 0.0))
    return {
        M.LATENCY_RATIO: ratio,
        M.LATENCY_RATIO_SPREAD: ratio * noise,
        M.LATENCY_RATIO_NOISE: noise,
    }
