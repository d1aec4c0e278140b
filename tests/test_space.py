"""The search-space file: shipped spaces, the distribution registry, and every way to get it
wrong."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ray.tune.search.variant_generator import generate_variants

from rsearch.architecture import Architecture
from rsearch.cost import LatencyMethod
from rsearch.data.config import DataConfig
from rsearch.errors import UserError
from rsearch.recipe import ADDITIVE_PRESETS
from rsearch.space import (
    DISTRIBUTIONS,
    SearchSpace,
    fields,
    load_space,
    parse_dimension,
    parse_space,
    schema,
)
from rsearch.tune import tuner
from rsearch.tune.trial import TrialContext, build_train_config

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
SHIPPED = sorted(p.name for p in SPACES.glob("*.yaml"))

# A valid space touching every section; each bad case below changes one thing in it.
BASE = {
    "name": "base",
    "data": {"source": "synthetic", "num_classes": 10, "train_size": 1000, "test_size": 100},
    "epochs": [2, 6],
    "scaling": {"depth": [26, 50], "width": [0.25, 0.5], "resolution": [32, 48]},
    "regularization": {
        "dropout": 0.1,
        "weight_decay": {"kind": "loguniform", "low": 1.0e-5, "high": 1.0e-3},
        "randaugment_magnitude": {"kind": "randint", "low": 5, "high": 16},
    },
    "recipe": {"preset": "rs", "batch_size": 64},
    "objective": {"metric": "minival_top1", "mode": "max"},
    "constraints": {
        "latency_ms": {
            "max": 4.0,
            "batch_size": 1,
            "dtype": "float32",
            "device": "cpu",
            "repeats": 10,
            "threads": 1,
        },
        "max_params": None,
        "max_flops": None,
    },
    "search": {
        "algorithm": "grid",
        "num_samples": 1,
        "scheduler": {"kind": "fifo"},
        "max_concurrent": 2,
        "seed": 0,
    },
    "resources": {"workers": 1, "cpus_per_worker": 1, "gpus_per_worker": 0},
    "storage": {"path": "~/rsearch_results"},
}
DELETE = object()
REFERENCE = {"depth": 26, "width": 0.25, "resolution": 48}


def changed(*edits) -> dict:
    """BASE with each (dotted.path, value) applied; value DELETE removes the key."""
    space = copy.deepcopy(BASE)
    for path, value in edits:
        *parents, last = path.split(".")
        node = space
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return space


def test_base_is_valid():
    space = parse_space(BASE)
    assert isinstance(space, SearchSpace) and space.name == "base"


# --- shipped spaces ----------------------------------------------------------------------

# file -> (trials per regime, architectures or None)
EXPECTED = {
    "quickstart.yaml": (8, 8),
    "smoke.yaml": (3, 3),
    "scaling.yaml": (175, 175),
    "regularization.yaml": (12, 1),
    "ablation.yaml": (11, 1),
    "fashion_mnist.yaml": (2, 2),
    "families.yaml": (8, 8),
    "families_gpu.yaml": (78, 78),
}


def test_every_shipped_space_is_tested():
    assert sorted(EXPECTED) == SHIPPED


@pytest.mark.parametrize("filename", SHIPPED)
def test_shipped_space_loads_and_round_trips(filename):
    space = load_space(SPACES / filename)
    trials, archs = EXPECTED[filename]
    assert space.name == Path(filename).stem
    assert [space.trial_count(e) for e in space.epochs] == [trials] * len(space.epochs)
    assert len(space.architectures()) == archs
    # The resolved mapping is plain YAML and reads back as the same space.
    text = yaml.safe_dump(space.resolved(), sort_keys=False)
    assert parse_space(yaml.safe_load(text), source=filename) == space
    DataConfig(**space.data)  # what the trainer builds from it


def test_smoke_is_tiny_with_one_architecture_over_budget():
    space = load_space(SPACES / "smoke.yaml")
    assert space.epochs == [1] and space.data["train_size"] <= 1000
    assert space.latency.method.device == "cpu" and space.latency.method.threads == 1
    archs = sorted((a.depth, a.width, a.resolution) for a in space.architectures())
    assert archs == [(26, 0.25, 32), (26, 0.5, 32), (26, 2.0, 32)]


def test_scaling_is_the_papers_grid():
    space = load_space(SPACES / "scaling.yaml")
    dims = space.scaling.families["resnetrs"]
    assert dims["width"].values() == [0.25, 0.5, 1.0, 1.5, 2.0]
    assert dims["depth"].values() == [26, 50, 101, 200, 300, 350, 400]
    assert dims["resolution"].values() == [128, 160, 224, 320, 448]
    assert space.epochs == [10, 100, 350]
    assert space.latency.method.device == "cuda" and space.latency.method.dtype == "bfloat16"
    assert space.search.scheduler.kind == "pareto_asha"


def test_ablation_grids_the_additive_presets_in_order():
    space = load_space(SPACES / "ablation.yaml")
    assert space.recipe["preset"].is_grid and space.recipe["preset"].values() == ADDITIVE_PRESETS


def test_regularization_space_is_tpe_over_the_knobs():
    space = load_space(SPACES / "regularization.yaml")
    assert space.search.algorithm == "hyperopt"
    assert {
        "dropout",
        "stochastic_depth",
        "label_smoothing",
        "randaugment_magnitude",
        "weight_decay",
    } <= set(space.regularization)
    assert all(dim.kind != "fixed" for dim in space.regularization.values())


def _variants(space: SearchSpace, epochs: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [config for _, config in generate_variants(space.param_space(epochs), random_state=rng)]


@pytest.mark.parametrize("filename", SHIPPED)
def test_every_trial_config_builds_a_model_and_a_recipe(filename):
    """What validation accepts, the real consumers accept: Ray's variant generator expands the
    space, and every variant builds a model config and a recipe (preset + per-size defaults)."""
    space = load_space(SPACES / filename)
    regime = space.epochs[-1]
    variants = _variants(space, regime)
    if space.search.algorithm == "grid":
        assert len(variants) * space.search.num_samples == space.trial_count(regime)
    ctx = TrialContext(data=space.data, num_classes=10, in_chans=3)
    families = set()
    rng = np.random.default_rng(0)
    for _, config in generate_variants(tuner.param_space(space, regime, []), random_state=rng):
        cfg = build_train_config(config, ctx)  # what a trial trains, from Tune's own config
        assert cfg.epochs == regime
        cfg.model(ctx.num_classes, ctx.in_chans)
        families.add(cfg.family)
    assert families == set(space.scaling.families)


def test_grid_trial_count_is_grid_size_times_samples_as_ray_counts():
    raw = changed(
        ("recipe.preset", ["+se", "rs"]),
        ("regularization.dropout", {"kind": "choice", "values": [0, 0.2]}),
        ("search.num_samples", 3),
    )
    space = parse_space(raw)
    assert space.trial_count(2) == 2 * 2 * 2 * 2 * 3
    assert len(_variants(space, 2)) * 3 == space.trial_count(2)
    with pytest.raises(ValueError):
        space.trial_count(7)  # not a regime of this space


# --- lists under grid / random / hyperopt ------------------------------------------------


@pytest.mark.parametrize("algorithm", ["random", "hyperopt", "optuna"])
def test_lists_become_choices_when_the_search_samples(algorithm):
    space = parse_space(
        changed(
            ("search.algorithm", algorithm),
            ("search.num_samples", 5),
            ("recipe.preset", {"kind": "grid", "values": ["+se", "rs"]}),
        )
    )
    dims = space.dimensions()
    assert not any(d.is_grid for d in dims.values())
    assert dims["depth"].kind == "choice" and dims["preset"].kind == "choice"
    assert space.trial_count(2) == 5
    assert space.architectures() is not None  # choices are finite: latency can be measured up front
    from ray.tune.search.hyperopt import HyperOptSearch

    converted = HyperOptSearch.convert_search_space(space.param_space(2))
    assert {"depth", "width", "resolution", "weight_decay", "preset"} <= set(converted)


def test_optuna_converts_the_sampled_space_and_searches_one_family_only(monkeypatch):
    from ray.tune.search.optuna import OptunaSearch

    sampled = (("search.algorithm", "optuna"), ("search.num_samples", 5))
    converted = OptunaSearch.convert_search_space(parse_space(changed(*sampled)).param_space(2))
    assert {"depth", "width", "resolution", "weight_decay"} <= set(converted)
    with pytest.raises(UserError) as err:
        parse_space(changed(*sampled, ("scaling", TWO_FAMILIES)))
    assert str(err.value) == (
        "search.algorithm: optuna searches one model family (Optuna's choices are single "
        "values); got 2 in scaling.family: use hyperopt or random"
    )
    # without the optional extra: the command that installs it
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "optuna" else real_find_spec(name, *a),
    )
    with pytest.raises(UserError, match=r"pip install 'rsearch\[optuna\]'"):
        parse_space(changed(*sampled))


def test_hyperopt_refuses_grids_which_is_why_lists_are_converted():
    space = parse_space(BASE)  # algorithm grid: lists stay grids
    from ray.tune.search.hyperopt import HyperOptSearch

    with pytest.raises(ValueError, match="[Gg]rid"):
        HyperOptSearch.convert_search_space(space.param_space(2))


def test_regularization_space_converts_for_hyperopt():
    from ray.tune.search.hyperopt import HyperOptSearch

    space = load_space(SPACES / "regularization.yaml")
    converted = HyperOptSearch.convert_search_space(space.param_space(space.epochs[0]))
    assert set(space.regularization) <= set(converted)


def test_continuous_scaling_has_no_architecture_list():
    space = parse_space(changed(("scaling.width", {"kind": "uniform", "low": 0.25, "high": 1.0})))
    assert space.architectures() is None
    assert space.trial_count(2) == 4  # depth x resolution grid, width drawn per trial


# --- the distribution registry -----------------------------------------------------------


def test_registry_kinds():
    assert list(DISTRIBUTIONS) == [
        "fixed",
        "grid",
        "choice",
        "uniform",
        "loguniform",
        "quniform",
        "randint",
    ]
    for kind, cls in DISTRIBUTIONS.items():
        assert cls.kind == kind


SAMPLED = [
    ({"kind": "choice", "values": [1, 5, 9]}, [1, 5, 9]),
    ({"kind": "uniform", "low": 0.1, "high": 0.4}, None),
    ({"kind": "loguniform", "low": 1e-5, "high": 1e-2}, None),
    ({"kind": "quniform", "low": 0.0, "high": 0.5, "q": 0.1}, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]),
    ({"kind": "randint", "low": 3, "high": 7}, [3, 4, 5, 6]),
]


@pytest.mark.parametrize("raw,values", SAMPLED, ids=[r["kind"] for r, _ in SAMPLED])
def test_distribution_draws_stay_inside_what_it_declares(raw, values):
    dim = parse_dimension(raw, "x")
    assert dim.values() == values and not dim.is_grid
    assert dim.to_yaml() == raw
    draws = dim.to_tune().sample(size=400, random_state=np.random.default_rng(0))
    if values is None:
        assert all(raw["low"] <= d <= raw["high"] for d in draws)
        assert len(set(draws)) > 100  # continuous
    else:
        assert {round(d, 9) for d in draws} == set(values)  # every value drawn, nothing else
    if raw["kind"] == "randint":
        assert all(isinstance(d, (int, np.integer)) for d in draws)


def test_huge_integer_ranges_are_not_listed():
    assert parse_dimension({"kind": "randint", "low": 0, "high": 10**9}, "x").values() is None
    assert (
        parse_dimension({"kind": "quniform", "low": 0.0, "high": 1.0, "q": 1e-6}, "x").values()
        is None
    )
    space = parse_space(changed(("scaling.depth", {"kind": "randint", "low": 14, "high": 1000})))
    assert space.architectures() is None  # a sampled range is never enumerated for the cost phase
    with pytest.raises(
        UserError, match=r"^scaling\.depth\.high: expected an integer in \[14, 1000\]"
    ):
        parse_space(changed(("scaling.depth", {"kind": "randint", "low": 14, "high": 10**8})))


@pytest.mark.parametrize(
    "edits,message",
    [
        (
            [("search.num_samples", 10**29), ("search.algorithm", "random")],
            "search.num_samples: the plan has 200,000,000,000,000,000,000,000,000,000 trials",
        ),
        (
            [
                ("scaling.depth", list(range(14, 1000))),
                ("scaling.width", [0.25, 0.5, 1.0, 2.0]),
                ("scaling.resolution", list(range(32, 1024, 8))),
            ],
            "search.num_samples: the plan has 978,112 trials (grid 489,056 x num_samples 1 x 2 "
            "regimes)",
        ),
    ],
)
def test_a_plan_too_large_to_be_meant_is_refused_with_its_size(edits, message):
    with pytest.raises(UserError) as caught:
        parse_space(changed(*edits))
    assert str(caught.value).startswith(message) and "expected at most 100,000" in str(caught.value)


def test_plain_values_and_lists():
    fixed = parse_dimension(0.25, "x")
    assert fixed.kind == "fixed" and fixed.values() == [0.25] and fixed.to_tune() == 0.25
    assert parse_dimension({"kind": "fixed", "value": 3}, "x") == fixed.__class__(3)
    grid = parse_dimension([26, 50], "x")
    assert grid.kind == "grid" and grid.is_grid and grid.values() == [26, 50]
    assert grid.to_tune() == {"grid_search": [26, 50]}
    assert grid.to_yaml() == [26, 50]


# --- bad input: one line naming the key path ----------------------------------------------

EFFNET = {"depth_mult": [0.5, 1.0], "width_mult": 0.5, "resolution": [32, 48]}
TWO_FAMILIES = {
    "family": ["resnetrs", "efficientnet"],
    "resnetrs": {"depth": 26, "width": [0.25, 0.5], "resolution": 32},
    "efficientnet": EFFNET,
}
RANGE = {"kind": "randint", "low": 32, "high": 64}

BAD = [
    # (edits, the message's beginning)
    ([("sclaing", {})], "sclaing: unknown key; expected one of name, data, epochs, scaling"),
    ([("epochs", DELETE)], "epochs: missing"),
    ([("epochs", [])], "epochs: expected a non-empty list of positive integers, got []"),
    ([("epochs", [3, 0])], "epochs[1]: expected an integer >= 1, got 0"),
    ([("epochs", [3, 3])], "epochs[1]: expected distinct regimes, got 3"),
    ([("epochs", "10")], "epochs: expected a non-empty list of positive integers, got '10'"),
    ([("scaling", [26, 50])], "scaling: expected a mapping, got [26, 50]"),
    (
        [("scaling.height", [32])],
        "scaling.height: unknown key; expected one of depth, width, resolution",
    ),
    (
        [("scaling.resolution", DELETE)],
        "scaling.resolution: missing; scaling needs depth, width, resolution",
    ),
    ([("scaling.width", [0.25, -0.5])], "scaling.width[1]: expected a number in (0, 8], got -0.5"),
    ([("scaling.width", True)], "scaling.width: expected a number, got True"),
    ([("scaling.width", [])], "scaling.width: expected a non-empty list, got []"),
    (
        [("scaling.width", [0.25, 0.25])],
        "scaling.width[1]: expected distinct values, got 0.25 twice",
    ),
    (
        [("scaling.depth", [26, 10])],
        "scaling.depth[1]: expected an integer in [14, 1000] (one bottleneck per stage), got 10",
    ),
    ([("scaling.depth", [26.5])], "scaling.depth[0]: expected an integer, got 26.5"),
    (
        [("scaling.resolution", 16)],
        "scaling.resolution: expected an integer in [32, 1024] (at least the network's total "
        "stride), got 16",
    ),
    (
        [("scaling.resolution", {"kind": "uniform", "low": 32, "high": 64})],
        "scaling.resolution.kind: expected one of fixed, grid, choice, randint (the field takes "
        "integers), got 'uniform'",
    ),
    (
        [("scaling.depth", {"kind": "choice", "values": [26, 12]})],
        "scaling.depth.values[1]: expected an integer in [14, 1000]",
    ),
    (
        [("regularization.dropout", 1.0)],
        "regularization.dropout: expected a number in [0, 1), got 1.0",
    ),
    (
        [("regularization.dropout", {"kind": "uniform", "low": 0.0, "high": 1.5})],
        "regularization.dropout.high: expected a number in [0, 1), got 1.5",
    ),
    (
        [("regularization.dropout", {"kind": "uniform", "low": 0.3, "high": 0.1})],
        "regularization.dropout.high: expected a number > low (0.3), got 0.1",
    ),
    (
        [("regularization.dropout", {"kind": "uniform", "low": 0.0, "high": float("inf")})],
        "regularization.dropout.high: expected a finite number, got inf",
    ),
    (
        [("regularization.dropout", {"kind": "normal", "mean": 0.1})],
        "regularization.dropout.kind: expected one of fixed, grid, choice, uniform, loguniform, "
        "quniform, randint, got 'normal'",
    ),
    (
        [("regularization.dropout", {"low": 0.0, "high": 0.5})],
        "regularization.dropout.kind: missing; expected one of",
    ),
    (
        [("regularization.dropout", {"kind": "uniform", "low": 0.0})],
        "regularization.dropout.high: missing; kind uniform needs low, high",
    ),
    (
        [("regularization.dropout", {"kind": "uniform", "low": 0.0, "high": 0.5, "q": 0.1})],
        "regularization.dropout.q: unknown key for kind uniform; expected one of kind, low, high",
    ),
    (
        [("regularization.dropout", {"kind": "choice", "values": []})],
        "regularization.dropout.values: expected a non-empty list, got []",
    ),
    (
        [("regularization.dropout", {"kind": "choice", "values": 0.1})],
        "regularization.dropout.values: expected a list of values, got 0.1",
    ),
    (
        [("regularization.dropout", {"kind": "quniform", "low": 0.05, "high": 0.5, "q": 0.1})],
        "regularization.dropout.low: expected a multiple of q=0.1, got 0.05",
    ),
    (
        [("regularization.dropout", {"kind": "quniform", "low": 0.0, "high": 0.5, "q": 0})],
        "regularization.dropout.q: expected a number > 0, got 0",
    ),
    (
        [("regularization.dropout", None)],
        "regularization.dropout: expected a value, a list or a mapping with `kind`, got None",
    ),
    (
        [("regularization.dropout", [[0.1]])],
        "regularization.dropout[0]: expected a number, string or boolean, got [0.1]",
    ),
    (
        [("regularization.dropout", {"kind": "fixed", "value": [1]})],
        "regularization.dropout.value: expected a number, string or boolean, got [1]",
    ),
    (
        [("regularization.weight_decay", {"kind": "loguniform", "low": 0.0, "high": 1e-3})],
        "regularization.weight_decay.low: expected a number > 0 (log scale), got 0.0",
    ),
    (
        [("regularization.weight_decay", "1e-5")],
        "regularization.weight_decay: expected a number, got '1e-5'",
    ),
    (
        [("regularization.randaugment_magnitude", {"kind": "randint", "low": 0, "high": 32})],
        "regularization.randaugment_magnitude.high: expected an integer in [0, 30], got 32 "
        "(high is exclusive",
    ),
    (
        [("regularization.randaugment_magnitude", {"kind": "randint", "low": 0.5, "high": 3})],
        "regularization.randaugment_magnitude.low: expected an integer, got 0.5",
    ),
    (
        [("regularization.randaugment_magnitude", {"kind": "randint", "low": 5, "high": 5})],
        "regularization.randaugment_magnitude.high: expected a number > low (5), got 5",
    ),
    (
        [("regularization.randaugment_magnitude", {"kind": "uniform", "low": 5, "high": 15})],
        "regularization.randaugment_magnitude.kind: expected one of fixed, grid, choice, randint",
    ),
    (
        [("regularization.batch_size", 32)],
        "regularization.batch_size: unknown key; expected one of dropout, ",
    ),
    (
        [("recipe.learning_rate", 0.1)],
        "recipe.learning_rate: unknown key; expected one of preset, batch_size",
    ),
    ([("recipe.preset", "fancy")], "recipe.preset: expected one of baseline, +cosine"),
    ([("recipe.preset", ["rs", "nope"])], "recipe.preset[1]: expected one of baseline"),
    (
        [("recipe.preset", {"kind": "uniform", "low": 0, "high": 1})],
        "recipe.preset.kind: expected one of fixed, grid, choice (the field takes strings), "
        "got 'uniform'",
    ),
    (
        [("recipe.schedule", "linear")],
        "recipe.schedule: expected one of cosine, step, exponential, got 'linear'",
    ),
    ([("recipe.compile", "yes")], "recipe.compile: expected true or false, got 'yes'"),
    ([("recipe.batch_size", 0)], "recipe.batch_size: expected an integer in [1, 65,536], got 0"),
    ([("recipe.dropout", 0.2)], "recipe.dropout: already set in regularization.dropout"),
    ([("resources.workers", 0)], "resources.workers: expected an integer >= 1, got 0"),
    (
        [("resources.workers", 3)],
        "recipe.batch_size: expected a multiple of resources.workers (3), got 64",
    ),
    (
        [
            ("resources.workers", 2),
            ("recipe.batch_size", {"kind": "randint", "low": 32, "high": 64}),
        ],
        "recipe.batch_size: expected a multiple of resources.workers (2), got 33",
    ),
    (
        [
            ("resources.workers", 2),
            ("recipe.batch_size", {"kind": "randint", "low": 32, "high": 60_000}),
        ],
        "recipe.batch_size: expected a list of batch sizes with resources.workers 2",
    ),
    (
        [("resources.workers", 2), ("recipe.cuda_graphs", [False, True])],
        "recipe.cuda_graphs: expected false with resources.workers 2 (a CUDA-graph step runs in "
        "one worker; the DDP all-reduce is not captured), got true",
    ),
    (
        [("resources.gpus_per_worker", -1)],
        "resources.gpus_per_worker: expected a number >= 0, got -1",
    ),
    ([("resources.cpus_per_worker", 0)], "resources.cpus_per_worker: expected a number > 0, got 0"),
    (
        [("resources.nodes", 2)],
        "resources.nodes: unknown key; expected one of workers, cpus_per_worker",
    ),
    (
        [("search.algorithm", "bayes")],
        "search.algorithm: expected one of grid, random, hyperopt, optuna, got 'bayes'",
    ),
    ([("search.num_samples", 0)], "search.num_samples: expected an integer >= 1, got 0"),
    ([("search.num_samples", True)], "search.num_samples: expected an integer >= 1, got True"),
    ([("search.max_concurrent", 0)], "search.max_concurrent: expected an integer >= 1, got 0"),
    (
        [("search.scheduler", {"kind": "foo"})],
        "search.scheduler.kind: expected one of fifo, asha, pareto_asha, got 'foo'",
    ),
    (
        [("search.scheduler", {"kind": "pareto_asha", "grace_fraction": 1.5})],
        "search.scheduler.grace_fraction: expected a number in (0, 1], got 1.5",
    ),
    (
        [("search.scheduler", {"kind": "pareto_asha", "grace_period": 1})],
        "search.scheduler.grace_period: unknown key; expected one of kind, grace_fraction, "
        "reduction_factor",
    ),
    (
        [("search.scheduler", "foo")],
        "search.scheduler.kind: expected one of fifo, asha, pareto_asha, got 'foo'",
    ),
    (
        [("search.scheduler", {"grace_period": 1})],
        "search.scheduler.kind: missing; expected one of fifo, asha",
    ),
    (
        [("search.scheduler", {"kind": "fifo", "grace_period": 1})],
        "search.scheduler.grace_period: unknown key; expected one of kind",
    ),
    (
        [("search.scheduler", {"kind": "asha", "grace_period": 0})],
        "search.scheduler.grace_period: expected an integer >= 1, got 0",
    ),
    (
        [("search.scheduler", {"kind": "asha", "grace_period": 2})],
        "search.scheduler.grace_period: expected an integer < the shortest regime (2 epochs), "
        "got 2",
    ),
    (
        [("search.scheduler", {"kind": "asha", "reduction_factor": 1})],
        "search.scheduler.reduction_factor: expected a number > 1, got 1",
    ),
    (
        [
            ("search.algorithm", "hyperopt"),
            ("scaling", {"depth": 26, "width": 0.25, "resolution": 32}),
            ("regularization", {}),
        ],
        "search.algorithm: hyperopt needs at least one searched dimension",
    ),
    (  # a list of one value leaves a sampler no choice either
        [
            ("search.algorithm", "optuna"),
            ("scaling", {"depth": [26], "width": 0.25, "resolution": [32]}),
            ("regularization", {"dropout": {"kind": "choice", "values": [0.1]}}),
        ],
        "search.algorithm: optuna needs at least one searched dimension",
    ),
    (
        [("objective.metric", "test_top1")],
        "objective.metric: expected one of minival_top1, got 'test_top1'",
    ),
    ([("objective.mode", "min")], "objective.mode: expected one of max, got 'min'"),
    (
        [("constraints.latency_ms.max", 0)],
        "constraints.latency_ms.max: expected a number > 0, got 0",
    ),
    ([("constraints.latency_ms.max", DELETE)], "constraints.latency_ms.max: missing"),
    (
        [("constraints.latency_ms.dtype", "float16")],
        "constraints.latency_ms.dtype: expected one of float32, bfloat16, got 'float16'",
    ),
    (
        [("constraints.latency_ms.device", "cuda")],
        "constraints.latency_ms.device: expected cpu when resources.gpus_per_worker is 0, "
        "got 'cuda'",
    ),
    (
        [("constraints.latency_ms.cuda_graphs", True)],
        "constraints.latency_ms.cuda_graphs: expected false with device cpu",
    ),
    (
        [("constraints.latency_ms.threads", 0)],
        "constraints.latency_ms.threads: expected an integer >= 1, got 0",
    ),
    (
        [("constraints.latency_ms.unit", "ms")],
        "constraints.latency_ms.unit: unknown key; expected one of max, max_ratio, device",
    ),
    ([("constraints.latency_ms", 4.0)], "constraints.latency_ms: expected a mapping, got 4.0"),
    # relative budgets: the reference must be a buildable architecture
    (
        [("constraints.latency_ms.max_ratio", 1.5)],
        "constraints.latency_ms.max_ratio: expected either max (ms) or max_ratio (relative), "
        "not both",
    ),
    (
        [("constraints.latency_ms.max", DELETE), ("constraints.latency_ms.max_ratio", 1.5)],
        "constraints.latency_ms.reference: missing; expected the architecture max_ratio is "
        "relative to",
    ),
    (
        [
            ("constraints.latency_ms.max", DELETE),
            ("constraints.latency_ms.max_ratio", 1.5),
            ("constraints.latency_ms.reference", {"depth": 13, "width": 0.25, "resolution": 48}),
        ],
        "constraints.latency_ms.reference.depth: not a buildable architecture: expected an "
        "integer in [14, 1000] (one bottleneck per stage), got 13",
    ),
    (
        [
            ("constraints.latency_ms.max", DELETE),
            ("constraints.latency_ms.max_ratio", 1.5),
            ("constraints.latency_ms.reference", {"depth": 26, "width": 0.25, "resolution": 16}),
        ],
        "constraints.latency_ms.reference.resolution: not a buildable architecture: expected an "
        "integer in [32, 1024]",
    ),
    (
        [
            ("constraints.latency_ms.max", DELETE),
            ("constraints.latency_ms.max_ratio", 1.5),
            (
                "constraints.latency_ms.reference",
                {"depth": 26, "width": 0.25, "resolution": 48, "classes": 3},
            ),
        ],
        "constraints.latency_ms.reference.classes: unknown key; expected one of depth, width, "
        "resolution",
    ),
    (
        [
            ("constraints.latency_ms.max", DELETE),
            ("constraints.latency_ms.max_ratio", 1.5),
            ("constraints.latency_ms.reference", {"depth": 26, "width": 0.25}),
        ],
        "constraints.latency_ms.reference.resolution: missing",
    ),
    (
        [
            ("constraints.latency_ms.max", DELETE),
            ("constraints.latency_ms.max_ratio", 0),
            ("constraints.latency_ms.reference", {"depth": 26, "width": 0.25, "resolution": 48}),
        ],
        "constraints.latency_ms.max_ratio: expected a number > 0, got 0",
    ),
    (
        [("constraints.latency_ms.reference", {"depth": 26, "width": 0.25, "resolution": 48})],
        "constraints.latency_ms.reference: expected no reference with an absolute `max`",
    ),
    # confirmation runs
    (
        [("search.confirm", {"top": 0, "seeds": [1]})],
        "search.confirm.top: expected an integer in [1, 100], got 0",
    ),
    (
        [("search.confirm", {"top": 2, "seeds": [0]})],
        "search.confirm.seeds: expected at least one seed other than search.seed (0), got [0]",
    ),
    (
        [("search.confirm", {"top": 2, "seeds": [2**40]})],
        "search.confirm.seeds[0]: expected an integer in [0, 4,294,967,295]",
    ),
    (
        [("search.confirm", {"top": 2, "seeds": list(range(1, 200))})],
        "search.confirm.seeds: expected at most 100 seeds",
    ),
    (
        [("constraints.latency_ms.repeats", 10**9)],
        "constraints.latency_ms.repeats: expected an integer in [1, 10,000]",
    ),
    (
        [("search.confirm", {"top": 2, "seeds": []})],
        "search.confirm.seeds: expected a non-empty list of integer seeds, got []",
    ),
    ([("search.confirm", {"top": 2})], "search.confirm.seeds: missing"),
    (
        [("search.confirm", {"top": 2, "seeds": [1, -1]})],
        "search.confirm.seeds[1]: expected an integer in [0, 4,294,967,295], got -1",
    ),
    (
        [("search.confirm", {"top": 2, "seeds": [1, 1]})],
        "search.confirm.seeds: expected distinct seeds",
    ),
    ([("search.confirm", {"top": 2, "seeds": [1], "runs": 3})], "search.confirm.runs: unknown key"),
    ([("constraints.max_params", -5)], "constraints.max_params: expected a number > 0, got -5"),
    (
        [("data.source", "imagenet")],
        "data.source: expected one of synthetic, fashion-mnist, imagefolder, parquet, "
        "got 'imagenet'",
    ),
    ([("data", {"source": "imagefolder"})], "data.dir: required for source imagefolder"),
    (
        [("data.dir", "/tmp/x")],
        "data.dir: expected null for source synthetic (the data is generated), got '/tmp/x'",
    ),
    (
        [("data", {"source": "fashion-mnist", "num_classes": 10})],
        "data.num_classes: only for source synthetic, got source fashion-mnist",
    ),
    (
        [("data", {"source": "imagefolder", "dir": "/d", "image_column": "img"})],
        "data.image_column: only for source parquet, got source imagefolder",
    ),
    (
        [("data.minival_fraction", 0.7)],
        "data.minival_fraction: expected a number in (0, 0.5], got 0.7",
    ),
    ([("data.train_size", 10)], "data.minival_fraction: expected a fraction of train_size 10"),
    ([("data.num_classes", 1)], "data.num_classes: expected an integer in [2, 100,000], got 1"),
    (
        [("data.num_classes", 200_000)],
        "data.num_classes: expected an integer in [2, 100,000], got 200000",
    ),
    ([("name", "../evil")], "name: expected a name matching"),
    ([("name", ".hidden")], "name: expected a name matching"),
    (
        [("storage.path", "ftp://host/x")],
        "storage.path: unknown scheme 'ftp'; expected a local path or one of",
    ),
    ([("storage.path", "")], "storage.path: expected a non-empty string, got ''"),
    ([("storage", "~/results")], "storage: expected a mapping, got '~/results'"),
    # --- model families (issue #12) ---
    (
        [("scaling.family", "vit")],
        "scaling.family: expected one of resnetrs, efficientnet, got 'vit'",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "family": ["resnetrs", "vit"]})],
        "scaling.family[1]: expected one of resnetrs, efficientnet, got 'vit'",
    ),
    (
        [("scaling", {"family": "efficientnet", "depth": [1, 2], "resolution": 32})],
        "scaling.depth: unknown key; expected one of model, depth_mult, width_mult, resolution "
        "(the efficientnet family's dimensions; an EfficientNet's depth is a multiplier",
    ),
    (
        [("scaling", {"family": "efficientnet", "model": "efficientnet-b9", "resolution": 32})],
        "scaling.model: expected one of efficientnet-b0, efficientnet-b1,",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "efficientnet": {**EFFNET, "width_mult": [0.5, 0]}})],
        "scaling.efficientnet.width_mult[1]: expected a number in (0, 8], got 0",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "efficientnet": {**EFFNET, "width_mult": -1.0}})],
        "scaling.efficientnet.width_mult: expected a number in (0, 8], got -1.0",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "depth": 26})],
        "scaling.depth: with more than one family, expected each family's dimensions under "
        "scaling.<family>",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "resnets": {}})],
        "scaling.resnets: unknown key; expected one of family, resnetrs, efficientnet",
    ),
    (
        [("scaling", {"family": "efficientnet", **TWO_FAMILIES["resnetrs"]})],
        "scaling.depth: unknown key; expected one of model, depth_mult, width_mult",
    ),
    (
        [("scaling", {"family": "resnetrs", "model": "efficientnet-b0", "resolution": 32})],
        "scaling.model: unknown key; expected one of depth, width, resolution (the resnetrs "
        "family's dimensions; that is an EfficientNet dimension",
    ),
    (
        [("scaling", {"family": "efficientnet", "depth_mult": 1.0, "resolution": 32})],
        "scaling.width_mult: missing; scaling needs resolution and model (or depth_mult and "
        "width_mult)",
    ),
    (
        [("scaling", {**TWO_FAMILIES, "efficientnet": {**EFFNET, "resolution": RANGE}})],
        "scaling.efficientnet.resolution: with more than one family, expected a value or a list",
    ),
    (
        [("scaling", {"family": ["resnetrs"], "efficientnet": EFFNET, "depth": 26})],
        "scaling.efficientnet: efficientnet is not in scaling.family (resnetrs)",
    ),
    (
        [("scaling", {"family": TWO_FAMILIES["family"], "resnetrs": TWO_FAMILIES["resnetrs"]})],
        "scaling.efficientnet: missing; expected a section for each family in scaling.family "
        "(resnetrs, efficientnet)",
    ),
]


@pytest.mark.parametrize(
    "edits,message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)]
)
def test_bad_space_names_the_key_path(edits, message):
    with pytest.raises(UserError) as caught:
        parse_space(changed(*edits))
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_not_a_mapping():
    with pytest.raises(UserError, match=r"^my\.yaml: expected a mapping"):
        parse_space([1, 2], source="my.yaml")


# --- defaults ------------------------------------------------------------------------------


def test_minimal_space_gets_every_default(tmp_path):
    path = tmp_path / "tiny-run.yaml"
    path.write_text("epochs: 3\nscaling: {depth: 26, width: 0.25, resolution: 32}\n")
    space = load_space(path)
    assert space.name == "tiny-run" and space.epochs == [3]
    assert DataConfig(**space.data) == DataConfig()
    assert space.search == schema.SearchSpec(
        algorithm="grid",
        num_samples=1,
        max_concurrent=None,
        seed=0,
        scheduler=schema.SchedulerSpec("fifo"),
        confirm=None,
    )
    assert space.search.to_dict()["scheduler"] == {"kind": "fifo"}
    assert space.resources == schema.Resources(workers=1, cpus_per_worker=1, gpus_per_worker=0)
    assert space.storage.path == "~/rsearch_results"
    assert space.objective.to_dict() == {"metric": "minival_top1", "mode": "max"}
    assert space.latency is None and space.max_params is None and space.max_flops is None
    assert space.recipe["preset"].to_yaml() == "rs"
    assert space.trial_count(3) == 1 and space.architectures() == [Architecture(26, 0.25, 32)]


def test_latency_defaults_are_latency_methods():
    space = parse_space(changed(("constraints.latency_ms", {"max": 5})))
    assert space.latency.method == LatencyMethod()
    assert LatencyMethod(**space.latency.method_fields()) == LatencyMethod()
    assert space.latency.budget_fields() == {"max": 5, "max_ratio": None, "reference": None}
    assert space.latency.budget().describe() == "5 ms"


def test_asha_defaults_and_shorthand():
    space = parse_space(changed(("search.scheduler", "asha"), ("epochs", [4, 8])))
    assert space.search.scheduler == schema.SchedulerSpec(
        "asha", grace_period=1, reduction_factor=3
    )
    assert space.search.scheduler.to_dict() == {
        "kind": "asha",
        "grace_period": 1,
        "reduction_factor": 3,
    }


def test_both_ashas_count_epochs():
    """One time attribute for every scheduler: the epoch each report carries."""
    from types import SimpleNamespace

    from rsearch.tune.tuner import scheduler

    ctx = SimpleNamespace(costs={}, minival_size=100)
    asha = parse_space(changed(("search.scheduler", "asha"), ("epochs", [4, 8])))
    sched = scheduler(asha, 8, ctx)
    assert sched._time_attr == "epoch" and sched._max_t == 8  # Pareto ASHA reads `epoch` too


def test_every_searched_key_reads_the_one_rule_table():
    """A space accepts exactly what the dataclasses it feeds accept (rsearch.bounds)."""
    from rsearch.bounds import FIELDS
    from rsearch.recipe import Recipe

    for key, rule in {**fields.SCALING, **fields.RECIPE}.items():
        assert key == "preset" or rule is FIELDS[key]
    assert set(fields.RECIPE) == {"preset", *(f.name for f in dataclasses.fields(Recipe))}
    assert set(fields.REGULARIZATION) <= set(fields.RECIPE)


def test_sections_are_typed_and_written_back_as_yaml():
    space = parse_space(
        changed(
            ("search.confirm", {"top": 2, "seeds": [1, 2]}),
            ("constraints.latency_ms", {"max_ratio": 1.5, "reference": dict(REFERENCE)}),
        )
    )
    assert space.search.confirm == schema.ConfirmSpec(top=2, seeds=(1, 2))
    assert space.latency.reference == Architecture(26, 0.25, 48)
    assert space.latency.budget().reference == (26, 0.25, 48)
    resolved = space.resolved()
    assert resolved["search"]["confirm"] == {"top": 2, "seeds": [1, 2]}
    assert resolved["constraints"]["latency_ms"]["reference"] == REFERENCE
    assert resolved["resources"] == {"workers": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}


def test_keys_follow_the_dataclasses_they_feed():
    """A field added to DataConfig or LatencyMethod must be settable (and validated) here."""
    data_keys = {"dir" if f.name == "data_dir" else f.name for f in dataclasses.fields(DataConfig)}
    assert data_keys - set(schema.FINAL_MODEL_ONLY) == set(schema._DATA)
    assert {f.name for f in dataclasses.fields(LatencyMethod)} | {"max", "max_ratio"} == set(
        schema._LATENCY
    )


def test_parquet_and_imagefolder_options_pass_to_data_config():
    space = parse_space(
        changed(("data", {"source": "parquet", "dir": "/shards", "label_column": "y"}))
    )
    cfg = DataConfig(**space.data)
    assert cfg.data_dir == "/shards" and cfg.label_column == "y"
    assert "num_classes" not in space.data  # the labels say
    assert space.resolved()["data"]["dir"] == "/shards"


# --- reading the file --------------------------------------------------------------------


def test_object_tag_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(
        f"epochs: !!python/object/apply:os.system ['touch {marker}']\n"
        "scaling: {depth: 26, width: 0.25, resolution: 32}\n"
    )
    with pytest.raises(
        UserError, match=r"evil\.yaml: invalid YAML: .*python/object/apply:os\.system.*line 1"
    ):
        load_space(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty file"),
        ("# nothing but a comment\n", "empty file"),
        ("- 1\n- 2\n", "expected a mapping of search-space sections at the top, got list"),
        ("epochs: [1, 2\n", "invalid YAML: .*line 2"),
        ("epochs: [1]\nepochs: [2]\n", r"invalid YAML: duplicate key 'epochs' \(line 2"),
        ("scaling:\n  depth: 26\n  depth: 50\n", r"invalid YAML: duplicate key 'depth' \(line 3"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=rf"^{path}: {message}") as caught:
        load_space(path)
    assert "\n" not in str(caught.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match=r"nope\.yaml: no such space file"):
        load_space(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is a directory"):
        load_space(tmp_path)


def test_exponent_floats_read_as_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "epochs: [2]\nscaling: {depth: 26, width: 0.25, resolution: 32}\n"
        "regularization: {weight_decay: {kind: loguniform, low: 1e-5, high: 1E-3}}\n"
    )
    wd = load_space(path).regularization["weight_decay"]
    assert (wd.low, wd.high) == (1e-5, 1e-3)


# -- hostile files: bounded before anything is built -------------------------------------------


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines.append(f"name: *a{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text,message",
    [
        (
            _bomb(),
            "more than 100,000 values once its aliases are expanded",
        ),  # 9^9 nodes if expanded
        ("x: " + "[" * 200 + "]" * 200 + "\n", "nested more than 32 levels deep"),
        ("x: &r [*r]\n", "nested more than 32 levels deep (or a recursive alias)"),
        ("x: [" + ", ".join(["1"] * 400_000) + "]\n", "larger than 1,000,000 bytes"),
    ],
)
def test_hostile_yaml_is_refused_in_one_bounded_line(tmp_path, text, message):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(UserError) as caught:
        load_space(path)
    assert message in str(caught.value) and str(caught.value).startswith(f"{path}: ")
    assert time.perf_counter() - start < 10  # refused from the node graph, never expanded


def test_no_error_message_prints_an_unbounded_value(tmp_path):
    from test_tune import rsearch

    space = tmp_path / "long.yaml"
    raw = changed(("name", "../" + "x" * 200_000))
    space.write_text(yaml.safe_dump(raw))
    proc = rsearch("tune", "--space", str(space), "--dry-run")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and len(lines[0]) <= 600, len(proc.stderr)
    assert "name: expected a name matching" in lines[0] and "characters cut" in lines[0]


# --- model families (issue #12) ------------------------------------------------------------


def test_two_families_enumerate_each_familys_own_grid_as_one_arch_dimension():
    space = parse_space(changed(("scaling", TWO_FAMILIES)))
    archs = space.architectures()
    assert [a.family for a in archs] == ["resnetrs"] * 2 + ["efficientnet"] * 4
    assert Architecture(0.5, 0.5, 48, "efficientnet") in archs
    # a union, not a product: 2 + 4 architectures, one grid dimension of Tune
    assert space.grid_size() == 6 and list(space.scaling.trial_dimensions()) == ["arch"]
    # written back as the user wrote it, and read back as the same space
    text = yaml.safe_dump(space.resolved(), sort_keys=False)
    assert parse_space(yaml.safe_load(text)) == space


def test_an_efficientnet_preset_is_its_multipliers_at_the_spaces_resolutions():
    scaling = {"family": "efficientnet", "model": ["efficientnet-b1", "efficientnet-b2"]}
    space = parse_space(changed(("scaling", {**scaling, "resolution": [64, 96]})))
    assert space.architectures() == [
        Architecture(1.1, 1.0, 64, "efficientnet"),
        Architecture(1.1, 1.0, 96, "efficientnet"),
        Architecture(1.2, 1.1, 64, "efficientnet"),
        Architecture(1.2, 1.1, 96, "efficientnet"),
    ]
    # one family: its dimensions travel flat, with the family named for the trial
    dims = space.scaling.trial_dimensions()
    assert (
        list(dims) == ["family", "model", "resolution"] and dims["family"].value == "efficientnet"
    )


def test_a_single_efficientnet_family_may_sample_its_multipliers():
    raw = changed(
        ("scaling", {"family": "efficientnet", "depth_mult": [1.0, 2.0], "width_mult": 1.0}),
        ("scaling.resolution", RANGE),
        ("search.algorithm", "random"),
    )
    space = parse_space(raw)
    assert space.architectures() is None  # a range: trials cost themselves


def test_architecture_keys_of_resnetrs_stay_as_stored():
    assert Architecture.of(26, 0.25, 32.0).key == "26,0.25,32"
    assert Architecture.of(26, 0.25, 32).to_list() == [26, 0.25, 32]
    effnet = Architecture.of(1.1, 1, 240, "efficientnet")
    assert effnet.key == "efficientnet:1.1,1,240"
    assert Architecture.from_list(effnet.to_list()) == effnet
    assert Architecture.from_row(effnet.columns()) == effnet
    assert effnet.columns()["depth"] == 23  # B1's MBConv blocks: an integer column
    # a row of an older writer (no family column) is a ResNet-RS row
    assert Architecture.from_row({"depth": 26, "width": 0.25, "resolution": 32}).key == "26,0.25,32"
