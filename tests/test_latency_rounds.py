"""Latency in interleaved rounds, relative budgets, borderline re-measurement and cache validation.

Most tests drive the real measure_interleaved / survey code with a fake runner whose
times come from a scripted machine (a base latency per architecture times a load factor
that depends on when the call happens), so a load burst can be placed exactly.
"""

from __future__ import annotations

import random

import pytest

from rsearch.cost import LatencyCache, LatencyMethod
from rsearch.cost.budget import REMEASURE_FACTOR, LatencyBudget
from rsearch.cost.rounds import measure_interleaved
from rsearch.cost.survey import survey
from rsearch.models import model_config

METHOD = LatencyMethod(threads=1, repeats=7)


def arch(depth, width, resolution):
    return (model_config(depth=depth, width=width, num_classes=4), resolution)


ITEMS = {"ref": arch(14, 0.25, 32), "fast": arch(14, 0.5, 32), "slow": arch(26, 0.5, 32)}
BASE_MS = {"ref": 1.0, "fast": 1.4, "slow": 1.8}  # ratios 1.4 and 1.8 to the reference


class Machine:
    """A scripted machine: every timed block advances a clock; `load(t)` multiplies the time."""

    def __init__(self, base_ms: dict, load=lambda t: 1.0, jitter: float = 0.01):
        self.base = {id(cfg): base_ms[key] for key, (cfg, _) in ITEMS.items()}
        self.load, self.t = load, 0
        self.calls = []
        # each timed round is off by a factor that changes from call to call (run-to-run noise)
        rng = random.Random(0)
        self._wiggle = iter(lambda: rng.uniform(1 - jitter, 1 + jitter), None)

    def runner(self, cfg, resolution, method):
        machine = self

        class FakeRunner:
            params, calls_per_block, threads_used = 1000, 10, 1

            def __init__(self):
                self.method, self.resolution = method, resolution

            def time_round(self):
                blocks, wiggle = [], next(machine._wiggle)
                for _ in range(5):
                    machine.t += 1
                    blocks.append(machine.base[id(cfg)] * machine.load(machine.t) * wiggle)
                machine.calls.append(id(cfg))
                return blocks

            def release(self):
                pass

        return FakeRunner()


def measure_with(machine):
    def measure(items, method, **kwargs):
        return measure_interleaved(items, method, make_runner=machine.runner, **kwargs)

    return measure


def feasible_set(found) -> set:
    return {k for k, f in found.figures.items() if f["latency_feasible"]}


RELATIVE = LatencyBudget(max_ratio=1.6, reference=(14, 0.25, 32))


def test_each_round_times_every_architecture_once_in_a_shuffled_order():
    machine = Machine(BASE_MS)
    measure_interleaved(ITEMS, METHOD, make_runner=machine.runner)
    rounds = [machine.calls[i : i + 3] for i in range(0, len(machine.calls), 3)]
    assert len(rounds) == METHOD.repeats and all(len(set(r)) == 3 for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes between rounds


def test_a_load_burst_during_one_round_does_not_flip_a_decision():
    calm = survey(ITEMS, METHOD, RELATIVE, reference="ref", measure=measure_with(Machine(BASE_MS)))
    assert feasible_set(calm) == {"ref", "fast"}
    # A 3x burst over the whole fourth round (15 blocks of the 105).
    burst = Machine(BASE_MS, load=lambda t: 3.0 if 45 < t <= 60 else 1.0)
    loaded = survey(ITEMS, METHOD, RELATIVE, reference="ref", measure=measure_with(burst))
    assert feasible_set(loaded) == feasible_set(calm)
    assert loaded.figures["fast"]["latency_ratio"] == pytest.approx(1.4, rel=0.02)
    # A burst over half a round hits some architectures of that round and not others: the
    # per-round ratios move in that round only, and the median of the rounds does not.
    half = Machine(BASE_MS, load=lambda t: 3.0 if 45 < t <= 52 else 1.0)
    assert feasible_set(
        survey(ITEMS, METHOD, RELATIVE, reference="ref", measure=measure_with(half))
    ) == {"ref", "fast"}


def test_a_sustained_load_moves_absolute_figures_but_not_the_ratios():
    loaded = Machine(BASE_MS, load=lambda t: 2.0)
    found = survey(ITEMS, METHOD, RELATIVE, reference="ref", measure=measure_with(loaded))
    assert found.figures["slow"]["latency_ms"] == pytest.approx(3.6, rel=0.02)
    assert found.figures["slow"]["latency_ratio"] == pytest.approx(1.8, rel=0.02)
    assert feasible_set(found) == {"ref", "fast"}
    # The same load under an absolute budget of 2.5 ms rules out what an idle machine keeps.
    absolute = LatencyBudget(max_ms=2.5)
    idle = survey(ITEMS, METHOD, absolute, measure=measure_with(Machine(BASE_MS)))
    busy = survey(
        ITEMS, METHOD, absolute, measure=measure_with(Machine(BASE_MS, load=lambda t: 2.0))
    )
    assert feasible_set(idle) == {"ref", "fast", "slow"} and feasible_set(busy) == {"ref"}


def test_every_figure_carries_its_noise_and_runs():
    found = survey(
        ITEMS,
        METHOD,
        RELATIVE,
        reference="ref",
        measure=measure_with(Machine(BASE_MS, jitter=0.05)),
    )
    fig = found.figures["fast"]
    assert (
        fig["latency_rounds"] == METHOD.repeats and fig["latency_runs"] == METHOD.repeats * 5 * 10
    )
    assert 0 <= fig["latency_noise"] < 0.2 and fig["latency_spread_ms"] >= 0
    assert fig["latency_margin"] == pytest.approx(1.4 / 1.6 - 1, abs=0.05)
    assert fig["latency_borderline"] is False and fig["latency_remeasured"] is False


def test_a_borderline_architecture_is_measured_again_with_more_rounds():
    # "fast" sits at 1.59x a 1.6x budget with noisy rounds: within noise of the budget.
    machine = Machine({**BASE_MS, "fast": 1.59, "slow": 2.6}, jitter=0.2)
    found = survey(ITEMS, METHOD, RELATIVE, reference="ref", measure=measure_with(machine))
    assert found.remeasured == ["fast"]
    fig = found.figures["fast"]
    assert (
        fig["latency_remeasured"] is True
        and fig["latency_rounds"] == REMEASURE_FACTOR * METHOD.repeats
    )
    # still within noise after the re-measurement: the median decides, and the row says so
    assert fig["latency_borderline"] is True and fig["latency_feasible"] is (
        fig["latency_ratio"] <= 1.6
    )
    assert not found.figures["slow"]["latency_remeasured"]


def test_budget_decision_rule():
    budget = LatencyBudget(max_ms=2.0)
    clear = budget.decide({"latency_ms": 1.0, "latency_noise": 0.1, "latency_rounds": 10})
    assert clear == {"latency_feasible": True, "latency_margin": -0.5, "latency_borderline": False}
    near = budget.decide({"latency_ms": 2.1, "latency_noise": 0.2, "latency_rounds": 10})
    assert near["latency_feasible"] is False and near["latency_borderline"] is True
    # more rounds shrink the uncertainty: the same spread is no longer borderline 5% over ...
    sure = budget.decide({"latency_ms": 2.1, "latency_noise": 0.2, "latency_rounds": 1000})
    assert sure["latency_borderline"] is False
    # ... but no figure is surer than run-to-run drift: 2.5% over is borderline however quiet
    quiet = budget.decide({"latency_ms": 2.05, "latency_noise": 0.0, "latency_rounds": 1000})
    assert quiet["latency_borderline"] is True
    assert "budget 2 ms" in budget.why_over({"latency_ms": 3.0})
    assert "1.8x the reference > budget 1.6x" in RELATIVE.why_over(
        {"latency_ms": 3.0, "latency_ratio": 1.8}
    )


def test_cache_is_validated_before_use_and_reused_when_it_agrees(tmp_path):
    cache = LatencyCache(tmp_path / "latency.parquet")
    first = survey(
        ITEMS, METHOD, RELATIVE, cache, reference="ref", measure=measure_with(Machine(BASE_MS))
    )
    assert first.cache == "empty" and sorted(first.measured) == sorted(ITEMS) and len(cache) == 3
    machine = Machine(BASE_MS)
    again = survey(ITEMS, METHOD, RELATIVE, cache, reference="ref", measure=measure_with(machine))
    assert again.cache == "valid" and again.measured == [] and again.disagreed == []
    assert again.validated[0] == "ref" and set(again.validated) == set(
        ITEMS
    )  # the reference + a sample
    assert all(f["latency_cached"] for f in again.figures.values())
    assert feasible_set(again) == feasible_set(first)
    # a cached figure keeps its noise and the conditions it was measured under
    cached = cache.get(*ITEMS["fast"], METHOD)
    assert {"latency_noise", "latency_rounds", "measured_at", "load_1m", "device_name"} <= set(
        cached
    )
    assert "latency_ratio" not in cached and "latency_feasible" not in cached


def test_a_stale_cache_is_detected_and_everything_re_measured(tmp_path):
    cache = LatencyCache(tmp_path / "latency.parquet")
    survey(ITEMS, METHOD, RELATIVE, cache, reference="ref", measure=measure_with(Machine(BASE_MS)))
    # The cache froze a bad figure: "slow" measured at a third of its real time (1.8 -> 0.6 ms).
    bad = cache.get(*ITEMS["slow"], METHOD)
    cache.put(*ITEMS["slow"], METHOD, {**bad, "latency_ms": bad["latency_ms"] / 3})
    found = survey(
        ITEMS, METHOD, RELATIVE, cache, reference="ref", measure=measure_with(Machine(BASE_MS))
    )
    assert found.cache == "stale" and found.disagreed == ["slow"]
    assert sorted(found.measured) == sorted(ITEMS)
    assert found.figures["slow"]["latency_ratio"] == pytest.approx(1.8, rel=0.02)
    assert "slow" not in feasible_set(found)
    assert cache.get(*ITEMS["slow"], METHOD)["latency_ms"] == pytest.approx(
        1.8, rel=0.02
    )  # repaired


def test_a_machine_that_changed_makes_the_cache_stale(tmp_path):
    cache = LatencyCache(tmp_path / "latency.parquet")
    survey(ITEMS, METHOD, None, cache, measure=measure_with(Machine(BASE_MS)))
    twice_as_slow = survey(
        ITEMS, METHOD, None, cache, measure=measure_with(Machine(BASE_MS, load=lambda t: 2.0))
    )
    assert twice_as_slow.cache == "stale"
    assert twice_as_slow.figures["ref"]["latency_ms"] == pytest.approx(2.0, rel=0.02)


def test_a_read_only_survey_never_writes_the_cache(tmp_path):
    cache = LatencyCache(tmp_path / "latency.parquet")
    survey(
        ITEMS,
        METHOD,
        RELATIVE,
        cache,
        reference="ref",
        measure=measure_with(Machine(BASE_MS)),
        store=False,
    )
    assert not (tmp_path / "latency.parquet").exists()


def test_real_interleaved_measurement_of_tiny_models():
    """The real Runner (torch.utils.benchmark), two tiny models: figures, ratios, noise."""
    method = LatencyMethod(threads=1, repeats=3, min_run_time=0.01)
    items = {"a": arch(14, 0.25, 32), "b": arch(14, 0.5, 64)}
    out = measure_interleaved(items, method, reference="a")
    assert out["a"]["latency_ratio"] == 1.0 and out["b"]["latency_ratio"] > 1.0
    for fig in out.values():
        assert (
            fig["latency_rounds"] == 3 and fig["latency_runs"] >= 3 and fig["clock"] == "thread_cpu"
        )
        assert 0 < fig["latency_min_ms"] <= fig["latency_ms"] <= fig["latency_p95_ms"]
        assert fig["latency_noise"] >= 0 and fig["device_name"]
