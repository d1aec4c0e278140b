"""The plain (non-searched) sections of a space file: strict mappings with typed defaults.

Each `parse_<section>(raw, ...)` takes the YAML value of one top-level key and
returns a dict with every default filled, or raises a UserError naming the key path.
The searched sections (scaling, regularization, recipe) are Dimensions: see space.py.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

from rsearch import metrics
from rsearch.cost.latency import LatencyMethod
from rsearch.data.config import MAX_MINIVAL_FRACTION, DataConfig
from rsearch.data.config import SOURCES as DATA_SOURCES
from rsearch.errors import UserError
from rsearch.models.registry import MAX_BATCH
from rsearch.space.distributions import is_integer, is_number
from rsearch.storage import DEFAULT_STORAGE_PATH

Validator = Callable[[Any, str], Any]  # (value, key path) -> the value, or UserError


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def strict_mapping(raw: Any, path: str, allowed: tuple[str, ...]) -> dict:
    """`raw` as a dict (None -> {}), refusing any key not in `allowed`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping, got {raw!r}")
    for key in raw:
        if key not in allowed:
            raise UserError(f"{join(path, key)}: unknown key; expected one of {', '.join(allowed)}")
    return raw


def fill(raw: dict, path: str, fields: dict[str, tuple[Any, Validator]]) -> dict:
    """Every field of `fields` (name -> (default, validator)), validated, defaults filled."""
    return {
        name: validate(raw.get(name, default), join(path, name))
        for name, (default, validate) in fields.items()
    }


# --- validators ---------------------------------------------------------------------------


def _fail(path: str, expected: str, value: Any):
    raise UserError(f"{path}: expected {expected}, got {value!r}")


def integer(low: int = 0, high: int | None = None) -> Validator:
    expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:,}]"

    def check(value, path):
        if not is_integer(value) or value < low or (high is not None and value > high):
            _fail(path, expected, value)
        return value

    return check


def number(low: float = 0.0, high: float = math.inf, low_open: bool = True) -> Validator:
    """A finite number in (low, high] (or [low, high] with low_open=False)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]" if high != math.inf else None
    expected = (
        f"a number in {interval}" if interval else f"a number {'>' if low_open else '>='} {low:g}"
    )

    def check(value, path):
        ok = (
            is_number(value)
            and math.isfinite(value)
            and (value > low if low_open else value >= low)
        )
        if not ok or value > high:
            _fail(path, expected, value)
        return value

    return check


def one_of(*options: str) -> Validator:
    def check(value, path):
        if value not in options:
            raise UserError(f"{path}: unknown {value!r}; expected one of {', '.join(options)}")
        return value

    return check


def boolean() -> Validator:
    def check(value, path):
        if not isinstance(value, bool):
            _fail(path, "true or false", value)
        return value

    return check


def optional(validator: Validator) -> Validator:
    return lambda value, path: None if value is None else validator(value, path)


def text(pattern: str = r".+", expected: str = "a non-empty string") -> Validator:
    regex = re.compile(pattern)

    def check(value, path):
        if not isinstance(value, str) or not regex.fullmatch(value):
            _fail(path, expected, value)
        return value

    return check


# --- name ---------------------------------------------------------------------------------
# The experiment folder's name: no separators, no leading dot (no `..`, no hidden folders).
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
parse_name = text(NAME_PATTERN, f"a name matching {NAME_PATTERN}")


# --- data -> rsearch.data.DataConfig ---------------------------------------------------------
# YAML keys are DataConfig's fields, except `dir` (DataConfig.data_dir). Defaults are
# DataConfig's own, so the two never drift apart.
_DATA_DIR_KEY = {"dir": "data_dir"}
_DATA: dict[str, Validator] = {
    "source": one_of(*DATA_SOURCES),
    "dir": optional(text()),
    "num_classes": integer(2),
    "train_size": integer(1),
    "test_size": integer(0),  # 0: no test set
    "seed": integer(0),  # synthetic rendering and the minival split
    "minival_fraction": number(0.0, MAX_MINIVAL_FRACTION),  # the paper holds out 2%
    "cache_dir": optional(text()),
    "image_column": text(),
    "label_column": text(),
    "crop_min_scale": number(0.0, 1.0),
    "verify_images": one_of("auto", "decode", "header", "none"),
}
# Keys that only mean something for some sources (the others bring their own classes, ...).
_DATA_ONLY_FOR = {
    "num_classes": ("synthetic",),
    "train_size": ("synthetic",),
    "test_size": ("synthetic",),
    "image_column": ("parquet",),
    "label_column": ("parquet",),
    "verify_images": ("imagefolder",),
}
_NEEDS_DIR = ("imagefolder", "parquet")


def _data_defaults() -> dict[str, Any]:
    return {key: getattr(DataConfig, _DATA_DIR_KEY.get(key, key)) for key in _DATA}


def parse_data(raw: Any) -> dict:
    """The data section as YAML keys (`dir`), every default filled; see data_config_kwargs."""
    raw = strict_mapping(raw, "data", tuple(_DATA))
    source = one_of(*DATA_SOURCES)(raw.get("source", DataConfig.source), "data.source")
    for key, sources in _DATA_ONLY_FOR.items():
        if key in raw and source not in sources:
            raise UserError(
                f"data.{key}: only for source {' or '.join(sources)}, got source {source}"
            )
    defaults = _data_defaults()
    keys = [k for k in _DATA if source in _DATA_ONLY_FOR.get(k, (source,))]
    data = {key: _DATA[key](raw.get(key, defaults[key]), f"data.{key}") for key in keys}
    if source == "synthetic" and data["dir"] is not None:
        _fail("data.dir", "null for source synthetic (the data is generated)", data["dir"])
    if source in _NEEDS_DIR and data["dir"] is None:
        raise UserError(f"data.dir: required for source {source}; expected the dataset's directory")
    if source == "synthetic" and data["train_size"] * data["minival_fraction"] < 1:
        _fail(
            "data.minival_fraction",
            f"a fraction of train_size {data['train_size']} that holds out at least one image",
            data["minival_fraction"],
        )
    DataConfig(**data_config_kwargs(data))  # its own checks, for anything not covered here
    return data


def data_config_kwargs(data: dict) -> dict:
    """The data section (YAML keys) as rsearch.data.DataConfig keyword arguments."""
    return {_DATA_DIR_KEY.get(key, key): value for key, value in data.items()}


# --- epochs: the training regimes (the study runs once per regime) ------------------------


def parse_epochs(raw: Any) -> list[int]:
    if is_integer(raw):
        raw = [raw]  # one regime
    if not isinstance(raw, list) or not raw:
        _fail("epochs", "a non-empty list of positive integers", raw)
    for i, value in enumerate(raw):
        integer(1)(value, f"epochs[{i}]")
        if value in raw[:i]:
            _fail(f"epochs[{i}]", "distinct regimes", value)
    return list(raw)


# --- objective ----------------------------------------------------------------------------


def parse_objective(raw: Any) -> dict:
    raw = strict_mapping(raw, "objective", ("metric", "mode"))
    return fill(
        raw,
        "objective",
        {
            "metric": (metrics.OBJECTIVE, one_of(metrics.OBJECTIVE)),
            "mode": (metrics.OBJECTIVE_MODE, one_of(metrics.OBJECTIVE_MODE)),
        },
    )


# --- constraints --------------------------------------------------------------------------
# A latency figure means nothing without its method: the keys besides the budget are the
# fields of rsearch.cost.LatencyMethod (defaults taken from it), recorded with every figure.
# The budget is absolute (`max`, in ms: right on a known deployment device) or relative
# (`max_ratio` of a `reference` architecture measured in the same interleaved rounds: the
# feasible set then does not depend on how fast this machine is).
_BUDGET_KEYS = ("max", "max_ratio", "reference")
_LATENCY: dict[str, Validator] = {
    "max": optional(number()),  # the absolute budget in ms
    "max_ratio": optional(number()),  # the relative budget: at most this many times the reference
    "device": one_of("cpu", "cuda"),  # the trials' kind of device (checked against resources)
    "dtype": one_of("float32", "bfloat16"),
    "batch_size": integer(1, MAX_BATCH),
    "warmup": integer(0, 10_000),
    "repeats": integer(1, 10_000),  # interleaved rounds
    "min_run_time": number(0.0, 60.0),  # seconds of timed calls per round
    "channels_last": boolean(),
    "compile": boolean(),
    "cuda_graphs": boolean(),  # needs device cuda
    "threads": optional(integer(1)),  # torch threads while measuring (CPU)
}
_REFERENCE_KEYS = ("depth", "width", "resolution")


def parse_constraints(raw: Any) -> dict:
    raw = strict_mapping(raw, "constraints", ("latency_ms", "max_params", "max_flops"))
    return {
        "latency_ms": _parse_latency(raw.get("latency_ms")),
        "max_params": optional(number())(raw.get("max_params"), "constraints.max_params"),
        "max_flops": optional(number())(raw.get("max_flops"), "constraints.max_flops"),
    }


def _parse_latency(raw: Any) -> dict | None:
    path = "constraints.latency_ms"
    if raw is None:
        return None
    raw = strict_mapping(raw, path, (*_LATENCY, "reference"))
    raw = {
        k: v for k, v in raw.items() if v is not None
    }  # a resolved space writes unset keys as null
    if "max" not in raw and "max_ratio" not in raw:
        raise UserError(
            f"{path}.max: missing; expected the latency budget in ms (> 0), or max_ratio with a "
            "reference architecture for a relative budget"
        )
    if "max" in raw and "max_ratio" in raw:
        raise UserError(
            f"{path}.max_ratio: expected either max (ms) or max_ratio (relative), not both"
        )
    defaults = {f.name: f.default for f in dataclasses.fields(LatencyMethod)}
    latency = {
        key: check(raw.get(key, defaults.get(key)), f"{path}.{key}")
        for key, check in _LATENCY.items()
    }
    if "max_ratio" in raw:
        if "reference" not in raw:
            raise UserError(
                f"{path}.reference: missing; expected the architecture max_ratio is relative to, "
                "e.g. {depth: 26, width: 0.25, resolution: 48}"
            )
        latency["reference"] = _parse_reference(raw["reference"], f"{path}.reference")
    elif "reference" in raw:
        _fail(
            f"{path}.reference",
            "no reference with an absolute `max` (use max_ratio for a relative budget)",
            raw["reference"],
        )
    else:
        latency["reference"] = None
    if latency["cuda_graphs"] and latency["device"] != "cuda":
        _fail(f"{path}.cuda_graphs", "false with device cpu (CUDA graphs need device cuda)", True)
    if (latency["compile"] or latency["cuda_graphs"]) and latency["warmup"] < 3:
        # compilation and graph capture happen in the warm-up calls, which are never timed
        _fail(f"{path}.warmup", "at least 3 with compile or cuda_graphs", latency["warmup"])
    return latency


def _parse_reference(raw: Any, path: str) -> dict:
    """{depth, width, resolution} of a buildable ResNet-RS (the model registry decides)."""
    from rsearch.cost.static import check_resolution
    from rsearch.models import model_config

    raw = strict_mapping(raw, path, _REFERENCE_KEYS)
    missing = [k for k in _REFERENCE_KEYS if k not in raw]
    if missing:
        raise UserError(
            f"{path}.{missing[0]}: missing; expected a buildable architecture "
            "{depth: >= 14, width: > 0, resolution: >= 32}"
        )
    depth, width, resolution = (raw[k] for k in _REFERENCE_KEYS)
    if not is_integer(depth):
        _fail(f"{path}.depth", "an integer >= 14", depth)
    if not (is_number(width) and math.isfinite(width)):
        _fail(f"{path}.width", "a number > 0", width)
    if not is_integer(resolution):
        _fail(f"{path}.resolution", "an integer >= 32", resolution)
    for key, check in (
        ("depth", lambda: model_config(depth=depth, width=width)),
        ("resolution", lambda: check_resolution(resolution)),
    ):
        try:
            check()
        except UserError as exc:  # the registry's reason, under this key path
            reason = str(exc).split(": ", 1)[-1]
            field = "width" if str(exc).startswith("--width") else key
            raise UserError(f"{path}.{field}: not a buildable architecture: {reason}") from None
    return {"depth": int(depth), "width": float(width), "resolution": int(resolution)}


# --- search -------------------------------------------------------------------------------
ALGORITHMS = ("grid", "random", "hyperopt")
MAX_CONFIRM_TOP, MAX_CONFIRM_SEEDS = 100, 100  # bounds: a typo must not plan a million reruns
# scheduler kind -> its options (default, validator); max_t is the regime's epochs.
SCHEDULERS: dict[str, dict[str, tuple[Any, Validator]]] = {
    "fifo": {},
    "asha": {"grace_period": (1, integer(1)), "reduction_factor": (3, number(1.0))},
    # ASHA promoting by Pareto rank on (accuracy, latency); the first rung at a fraction of each
    # regime
    "pareto_asha": {
        "grace_fraction": (round(1 / 3, 4), number(0.0, 1.0)),
        "reduction_factor": (3, number(1.0)),
    },
}


def parse_search(raw: Any, epochs: list[int]) -> dict:
    raw = strict_mapping(
        raw,
        "search",
        ("algorithm", "num_samples", "scheduler", "max_concurrent", "seed", "confirm"),
    )
    search = fill(
        raw,
        "search",
        {
            "algorithm": ("grid", one_of(*ALGORITHMS)),
            "num_samples": (1, integer(1)),
            "max_concurrent": (
                None,
                optional(integer(1)),
            ),  # None: as many as the cluster's resources allow
            "seed": (0, optional(integer(0))),  # None: unseeded
        },
    )
    search["scheduler"] = _parse_scheduler(raw.get("scheduler", "fifo"), epochs)
    search["confirm"] = _parse_confirm(raw.get("confirm"), search["seed"] or 0)
    return search


def _parse_confirm(raw: Any, search_seed: int) -> dict | None:
    """Confirmation runs: after each regime, re-train the `top` best front members with each
    of `seeds` (except the seed a member was trained with)."""
    path = "search.confirm"
    if raw is None:
        return None
    raw = strict_mapping(raw, path, ("top", "seeds"))
    for key in ("top", "seeds"):
        if key not in raw:
            raise UserError(
                f"{path}.{key}: missing; expected e.g. confirm: {{top: 2, seeds: [1, 2]}}"
            )
    top = integer(1, MAX_CONFIRM_TOP)(raw["top"], f"{path}.top")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds:
        _fail(f"{path}.seeds", "a non-empty list of integer seeds", seeds)
    if len(seeds) > MAX_CONFIRM_SEEDS:
        _fail(f"{path}.seeds", f"at most {MAX_CONFIRM_SEEDS} seeds", f"{len(seeds)} seeds")
    for i, seed in enumerate(seeds):
        integer(0, 2**32 - 1)(seed, f"{path}.seeds[{i}]")  # torch and numpy take 32-bit seeds
    if len(set(seeds)) != len(seeds):
        _fail(f"{path}.seeds", "distinct seeds", seeds)
    if set(seeds) == {search_seed}:  # every trial already has this seed: nothing would be rerun
        _fail(f"{path}.seeds", f"at least one seed other than search.seed ({search_seed})", seeds)
    return {"top": int(top), "seeds": [int(s) for s in seeds]}


def _parse_scheduler(raw: Any, epochs: list[int]) -> dict:
    path = "search.scheduler"
    if isinstance(raw, str):
        raw = {"kind": raw}  # `scheduler: asha` is short for {kind: asha}
    if not isinstance(raw, dict):
        _fail(path, "a scheduler kind or a mapping with `kind`", raw)
    if "kind" not in raw:
        raise UserError(f"{path}.kind: missing; expected one of {', '.join(SCHEDULERS)}")
    kind = one_of(*SCHEDULERS)(raw["kind"], f"{path}.kind")
    raw = strict_mapping(raw, path, ("kind", *SCHEDULERS[kind]))
    scheduler = {"kind": kind, **fill(raw, path, SCHEDULERS[kind])}
    grace = scheduler.get("grace_period")
    if grace is not None and grace >= min(epochs):
        # A trial must run past the grace period for ASHA to stop anything early.
        _fail(
            f"{path}.grace_period",
            f"an integer < the shortest regime ({min(epochs)} epochs)",
            grace,
        )
    return scheduler


# --- resources and storage ----------------------------------------------------------------


def parse_resources(raw: Any) -> dict:
    raw = strict_mapping(raw, "resources", ("workers", "cpus_per_worker", "gpus_per_worker"))
    return fill(
        raw,
        "resources",
        {
            "workers": (1, integer(1)),  # > 1: the trial drives a Ray Train TorchTrainer
            "cpus_per_worker": (1, number()),
            "gpus_per_worker": (0, number(0.0, low_open=False)),  # fractions share a GPU
        },
    )


# A local path, or a URI pyarrow can open (shared storage for multi-node clusters).
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)")


def parse_storage(raw: Any) -> dict:
    raw = strict_mapping(raw, "storage", ("path",))
    storage = fill(raw, "storage", {"path": (DEFAULT_STORAGE_PATH, text())})
    check_storage_path(storage["path"], "storage.path")
    return storage


def check_storage_path(path: str, where: str) -> str:
    """A local path, or a URI with a scheme pyarrow opens and something after the ://."""
    if not isinstance(path, str) or not path.strip():
        _fail(where, "a local path or a URI such as s3://bucket/prefix", path)
    uri = _URI.fullmatch(path)
    if uri and uri.group(1) not in STORAGE_SCHEMES:
        raise UserError(
            f"{where}: unknown scheme {uri.group(1)!r}; expected a local path "
            f"or one of {', '.join(s + '://' for s in STORAGE_SCHEMES)}"
        )
    if uri and not uri.group(2):
        _fail(where, f"a bucket or path after {uri.group(1)}://", path)
    return path
