"""The plain (non-searched) sections of a space file: strict mappings with typed defaults.

Each `parse_<section>(raw, ...)` takes the YAML value of one top-level key and returns
the section with every default filled -- a frozen dataclass (SearchSpec, Resources,
LatencySpec, ...), or the DataConfig keywords for `data` -- or raises a UserError naming
the key path. The searched sections (scaling, regularization, recipe) are Dimensions: see
space.py. `to_dict()` gives a section back as its YAML mapping (space.yaml, experiment.json).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rsearch import metrics
from rsearch.architecture import Architecture
from rsearch.bounds import DATA_FIELDS, FIELDS, LATENCY_FIELDS, Bound, FieldError
from rsearch.cost.budget import LatencyBudget
from rsearch.cost.latency import LatencyMethod
from rsearch.cost.onnx import INSTALL, onnxruntime_installed
from rsearch.cost.table import read_table
from rsearch.data.config import SOURCES as DATA_SOURCES
from rsearch.data.config import DataConfig
from rsearch.errors import UserError
from rsearch.space.distributions import is_integer
from rsearch.storage import DEFAULT_STORAGE_PATH, check_no_credentials

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


# --- validators: a Bound of rsearch.bounds, under a key path ------------------------------


def _fail(path: str, expected: str, value: Any):
    raise UserError(f"{path}: expected {expected}, got {value!r}")


def rule(bound: Bound) -> Validator:
    """The validator of a Bound: the value, or `PATH: expected <bound>, got <value>`."""

    def check(value, path):
        if not bound.accepts(value):
            _fail(path, bound.expected(), value)
        return value

    return check


def integer(low: int = 0, high: int | None = None) -> Validator:
    return rule(Bound("int", low, high))


def number(low: float = 0.0, high: float | None = None, low_open: bool = True) -> Validator:
    """A finite number in (low, high] (or [low, high] with low_open=False)."""
    return rule(Bound("float", low, high, low_open=low_open))


def one_of(*options: str) -> Validator:
    return rule(Bound("str", options=options))


def boolean() -> Validator:
    return rule(Bound("bool"))


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
# At most 200 characters: a folder name (filesystems refuse more than 255 bytes).
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}"
parse_name = text(NAME_PATTERN, f"a name matching {NAME_PATTERN}")


# --- data -> rsearch.data.DataConfig ---------------------------------------------------------
# YAML keys are DataConfig's fields, except `dir` (DataConfig.data_dir). Defaults are
# DataConfig's own, so the two never drift apart.
_DATA_DIR_KEY = {"dir": "data_dir"}
# DataConfig fields a space cannot set: a search ranks its trials on a held-out minival, so
# training on it is for a final model only (rsearch train --from-trial).
FINAL_MODEL_ONLY = ("minival_in_train",)
_DATA: dict[str, Validator] = {
    **{
        name: rule(bound)
        for name, bound in DATA_FIELDS.items()
        if name not in FINAL_MODEL_ONLY  # DataConfig's own rules
    },
    "num_classes": rule(FIELDS["num_classes"]),  # synthetic: the classifier's outputs
    "dir": optional(text()),
    "cache_dir": optional(text()),
    "image_column": text(),
    "label_column": text(),
}
# Keys that only mean something for some sources (the others bring their own classes, ...).
_DATA_ONLY_FOR = {
    "num_classes": ("synthetic",),
    "train_size": ("synthetic",),
    "test_size": ("synthetic",),
    "image_column": ("parquet",),
    "label_column": ("parquet",),
    "verify_images": ("imagefolder",),
    "decode": ("imagefolder",),
}
_NEEDS_DIR = ("imagefolder", "parquet")


def _data_defaults() -> dict[str, Any]:
    return {key: getattr(DataConfig, _DATA_DIR_KEY.get(key, key)) for key in _DATA}


def _check_data_dir(path: str, source: str) -> None:
    """Parquet shards may be in an object store, under any URI `storage.path` takes; the
    other sources read a local or shared folder. The URI itself is not printed: its userinfo
    or query may hold credentials."""
    check_storage_path(path, "data.dir")
    uri = _URI.fullmatch(path)
    if uri and source != "parquet":
        raise UserError(
            f"data.dir: source {source} reads a local or shared folder, got a {uri.group(1)}:// "
            "URI; expected a path every node can reach (only parquet reads from object stores)"
        )


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
    if data.get("dir") is not None:
        _check_data_dir(data["dir"], source)
    if source == "synthetic" and data["train_size"] * data["minival_fraction"] < 1:
        _fail(
            "data.minival_fraction",
            f"a fraction of train_size {data['train_size']} that holds out at least one image",
            data["minival_fraction"],
        )
    try:  # its own checks, for anything not covered here
        DataConfig(**data_config_kwargs(data))
    except FieldError as exc:
        yaml_key = {field: key for key, field in _DATA_DIR_KEY.items()}.get(exc.field, exc.field)
        raise UserError(exc.named(f"data.{yaml_key}")) from None
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
        rule(FIELDS["epochs"])(value, f"epochs[{i}]")
        if value in raw[:i]:
            _fail(f"epochs[{i}]", "distinct regimes", value)
    return list(raw)


# --- objective ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    metric: str = metrics.OBJECTIVE
    mode: str = metrics.OBJECTIVE_MODE

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_objective(raw: Any) -> Objective:
    raw = strict_mapping(raw, "objective", ("metric", "mode"))
    checks = {"metric": one_of(metrics.OBJECTIVE), "mode": one_of(metrics.OBJECTIVE_MODE)}
    return Objective(**_filled(raw, "objective", Objective, checks))


def _filled(raw: dict, path: str, section, checks: dict[str, Validator]) -> dict:
    """Every field of the dataclass `section`, validated, its defaults filled."""
    return {
        f.name: checks[f.name](raw.get(f.name, f.default), join(path, f.name))
        for f in dataclasses.fields(section)
        if f.name in checks
    }


# --- constraints --------------------------------------------------------------------------
# A latency figure means nothing without its method: the keys besides the budget are the
# fields of rsearch.cost.LatencyMethod (defaults taken from it), recorded with every figure.
# The budget is absolute (`max`, in ms: right on a known deployment device) or relative
# (`max_ratio` of a `reference` architecture measured in the same interleaved rounds: the
# feasible set then does not depend on how fast this machine is).
_LATENCY: dict[str, Validator] = {
    "max": optional(number()),  # the absolute budget in ms
    "max_ratio": optional(number()),  # the relative budget: at most this many times the reference
    # the method's fields, by its own rules (device is checked against resources later)
    **{
        name: optional(rule(bound)) if name == "threads" else rule(bound)
        for name, bound in LATENCY_FIELDS.items()
    },
}
_REFERENCE_KEYS = ("depth", "width", "resolution")
_LATENCY_KEYS = (*_LATENCY, "reference", "table")


@dataclass(frozen=True)
class LatencySpec:
    """constraints.latency_ms: the budget, and how every latency figure is measured."""

    max: float | None  # the absolute budget in ms ...
    max_ratio: float | None  # ... or the relative one: at most this many times the reference
    reference: Architecture | None  # the relative budget's reference architecture
    method: LatencyMethod  # recorded with every figure
    # figures measured on the deployment target (rsearch cost --space --out), read instead of
    # measuring; `method` is then the table's. An absolute path.
    table: str | None = None

    def budget(self) -> LatencyBudget:
        ref = self.reference
        reference = None if ref is None else (ref.depth, ref.width, ref.resolution)
        return LatencyBudget(max_ms=self.max, max_ratio=self.max_ratio, reference=reference)

    def budget_fields(self) -> dict:
        """{max, max_ratio, reference} as YAML writes them."""
        ref = self.reference
        reference = None if ref is None else dict(zip(_REFERENCE_KEYS, ref.to_list(), strict=True))
        return {"max": self.max, "max_ratio": self.max_ratio, "reference": reference}

    def method_fields(self) -> dict:
        """The LatencyMethod keywords that are set (a trial context carries them to Ray)."""
        return {k: v for k, v in dataclasses.asdict(self.method).items() if v is not None}

    def to_dict(self) -> dict:
        budget = self.budget_fields()
        return {
            "max": budget["max"],
            "max_ratio": budget["max_ratio"],
            **dataclasses.asdict(self.method),
            "reference": budget["reference"],
            "table": self.table,
        }


@dataclass(frozen=True)
class Constraints:
    latency: LatencySpec | None = None
    max_params: float | None = None
    max_flops: float | None = None


def parse_constraints(raw: Any, *, with_table: bool = True) -> Constraints:
    raw = strict_mapping(raw, "constraints", ("latency_ms", "max_params", "max_flops"))
    return Constraints(
        latency=_parse_latency(raw.get("latency_ms"), with_table),
        max_params=optional(number())(raw.get("max_params"), "constraints.max_params"),
        max_flops=optional(number())(raw.get("max_flops"), "constraints.max_flops"),
    )


def _parse_latency(raw: Any, with_table: bool = True) -> LatencySpec | None:
    path = "constraints.latency_ms"
    if raw is None:
        return None
    raw = strict_mapping(raw, path, _LATENCY_KEYS)
    # a resolved space writes unset keys as null
    raw = {k: v for k, v in raw.items() if v is not None}
    table_path = _latency_table_path(raw, path)
    table = read_table(table_path, f"{path}.table") if table_path and with_table else None
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
    if table is not None:  # a table's figures have one method: the table's
        defaults = dataclasses.asdict(table.method)
    latency = {
        key: check(raw.get(key, defaults.get(key)), f"{path}.{key}")
        for key, check in _LATENCY.items()
    }
    reference = _latency_reference(raw, path)
    budget = {key: latency.pop(key) for key in ("max", "max_ratio")}
    try:  # the rules between fields (cuda_graphs needs cuda, ...) are the method's own
        method = LatencyMethod(**latency)
    except FieldError as exc:
        raise UserError(exc.named(f"{path}.{exc.field}")) from None
    if table is not None:
        _check_table_method(method, table, path)
    elif table_path is None and method.backend == "onnxruntime" and not onnxruntime_installed():
        raise UserError(
            f"{path}.backend: onnxruntime needs ONNX Runtime, an optional extra: {INSTALL}"
        )
    return LatencySpec(**budget, reference=reference, method=method, table=table_path)


def _latency_table_path(raw: dict, path: str) -> str | None:
    """The absolute path of the table a search reads its latency figures from (read as the
    space is parsed, unless rsearch cost --space is about to make it)."""
    if "table" not in raw:
        return None
    location = text()(raw["table"], f"{path}.table")
    return os.path.abspath(os.path.expanduser(location))


def _check_table_method(method: LatencyMethod, table, path: str) -> None:
    """A method key the space sets must be the table's: its figures were measured that way."""
    for name, value in dataclasses.asdict(table.method).items():
        if getattr(method, name) != value:
            _fail(
                f"{path}.{name}",
                f"{value!r} as the table's figures were measured (or no {name} key)",
                getattr(method, name),
            )


def _latency_reference(raw: dict, path: str) -> Architecture | None:
    """A relative budget's reference; none with an absolute one."""
    if "max_ratio" in raw:
        if "reference" not in raw:
            raise UserError(
                f"{path}.reference: missing; expected the architecture max_ratio is relative to, "
                "e.g. {depth: 26, width: 0.25, resolution: 48}"
            )
        return _parse_reference(raw["reference"], f"{path}.reference")
    if "reference" in raw:
        _fail(
            f"{path}.reference",
            "no reference with an absolute `max` (use max_ratio for a relative budget)",
            raw["reference"],
        )
    return None


def _parse_reference(raw: Any, path: str) -> Architecture:
    """{depth, width, resolution} of a buildable ResNet-RS: the rules of scaling's keys."""
    raw = strict_mapping(raw, path, _REFERENCE_KEYS)
    missing = [k for k in _REFERENCE_KEYS if k not in raw]
    if missing:
        rules = ", ".join(f"{key}: {FIELDS[key].expected()}" for key in _REFERENCE_KEYS)
        raise UserError(
            f"{path}.{missing[0]}: missing; expected a buildable architecture {{{rules}}}"
        )
    for key in _REFERENCE_KEYS:
        if not FIELDS[key].accepts(raw[key]):
            raise UserError(
                f"{path}.{key}: not a buildable architecture: expected "
                f"{FIELDS[key].expected()}, got {raw[key]!r}"
            )
    return Architecture.of(*(raw[key] for key in _REFERENCE_KEYS))


# --- search -------------------------------------------------------------------------------
ALGORITHMS = ("grid", "random", "hyperopt", "optuna")
# Searchers that sample as they learn from finished trials (no jobs drawn up front): HyperOpt's
# TPE on the objective, Optuna's multi-objective TPE on the objective and the cost.
MODEL_BASED = ("hyperopt", "optuna")
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


@dataclass(frozen=True)
class SchedulerSpec:
    """search.scheduler, its kind's options filled (the others None)."""

    kind: str  # fifo | asha | pareto_asha
    grace_period: int | None = None  # asha: epochs every trial trains before the first rung
    grace_fraction: float | None = None  # pareto_asha: the first rung, a fraction of the regime
    reduction_factor: float | None = None  # asha, pareto_asha

    def to_dict(self) -> dict:
        """{kind, <the kind's options>}, as the space file writes it."""
        return {"kind": self.kind, **{name: getattr(self, name) for name in SCHEDULERS[self.kind]}}


@dataclass(frozen=True)
class ConfirmSpec:
    """search.confirm: re-train the `top` best front members with each of `seeds`."""

    top: int
    seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"top": self.top, "seeds": list(self.seeds)}


@dataclass(frozen=True)
class SearchSpec:
    algorithm: str = "grid"  # grid | random | hyperopt | optuna
    num_samples: int = 1
    max_concurrent: int | None = None  # None: as many as the cluster's resources allow
    seed: int | None = 0  # None: unseeded
    scheduler: SchedulerSpec = SchedulerSpec("fifo")
    confirm: ConfirmSpec | None = None

    def to_dict(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "num_samples": self.num_samples,
            "max_concurrent": self.max_concurrent,
            "seed": self.seed,
            "scheduler": self.scheduler.to_dict(),
            "confirm": None if self.confirm is None else self.confirm.to_dict(),
        }


def parse_search(raw: Any, epochs: list[int]) -> SearchSpec:
    raw = strict_mapping(
        raw,
        "search",
        ("algorithm", "num_samples", "scheduler", "max_concurrent", "seed", "confirm"),
    )
    checks = {
        "algorithm": one_of(*ALGORITHMS),
        "num_samples": integer(1),
        "max_concurrent": optional(integer(1)),
        "seed": optional(integer(0)),
    }
    search = _filled(raw, "search", SearchSpec, checks)
    return SearchSpec(
        **search,
        scheduler=_parse_scheduler(raw.get("scheduler", "fifo"), epochs),
        confirm=_parse_confirm(raw.get("confirm"), search["seed"] or 0),
    )


def _parse_confirm(raw: Any, search_seed: int) -> ConfirmSpec | None:
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
    return ConfirmSpec(top=int(top), seeds=tuple(int(s) for s in seeds))


def _parse_scheduler(raw: Any, epochs: list[int]) -> SchedulerSpec:
    path = "search.scheduler"
    if isinstance(raw, str):
        raw = {"kind": raw}  # `scheduler: asha` is short for {kind: asha}
    if not isinstance(raw, dict):
        _fail(path, "a scheduler kind or a mapping with `kind`", raw)
    if "kind" not in raw:
        raise UserError(f"{path}.kind: missing; expected one of {', '.join(SCHEDULERS)}")
    kind = one_of(*SCHEDULERS)(raw["kind"], f"{path}.kind")
    raw = strict_mapping(raw, path, ("kind", *SCHEDULERS[kind]))
    scheduler = SchedulerSpec(kind, **fill(raw, path, SCHEDULERS[kind]))
    grace = scheduler.grace_period
    if grace is not None and grace >= min(epochs):
        # A trial must run past the grace period for ASHA to stop anything early.
        _fail(
            f"{path}.grace_period",
            f"an integer < the shortest regime ({min(epochs)} epochs)",
            grace,
        )
    return scheduler


# --- resources and storage ----------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """What one trial holds."""

    workers: int = 1  # > 1: the trial drives a Ray Train TorchTrainer
    cpus_per_worker: float = 1
    gpus_per_worker: float = 0  # fractions share a GPU

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_resources(raw: Any) -> Resources:
    raw = strict_mapping(raw, "resources", ("workers", "cpus_per_worker", "gpus_per_worker"))
    checks = {
        "workers": rule(FIELDS["workers"]),
        "cpus_per_worker": number(),
        "gpus_per_worker": number(0.0, low_open=False),
    }
    return Resources(**_filled(raw, "resources", Resources, checks))


@dataclass(frozen=True)
class StorageSpec:
    path: str = DEFAULT_STORAGE_PATH  # the results root: a local path or a pyarrow URI

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# A local path, or a URI pyarrow can open (shared storage for multi-node clusters).
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)")


def parse_storage(raw: Any) -> StorageSpec:
    raw = strict_mapping(raw, "storage", ("path",))
    storage = StorageSpec(**_filled(raw, "storage", StorageSpec, {"path": text()}))
    check_storage_path(storage.path, "storage.path")
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
    if uri and not uri.group(2).partition("?")[0].strip("/"):
        raise UserError(f"{where}: expected a bucket or path after {uri.group(1)}://")
    check_no_credentials(path, where)
    return path


# --- tracking -----------------------------------------------------------------------------
# Experiment tracking: the MLflow tracking URI every trial is logged to (rsearch.tune.tracking).
# Only the driver logs, so the URI must be reachable from where `rsearch tune` runs.
MLFLOW_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")
MLFLOW_URI_EXAMPLES = "http://HOST:PORT, https://HOST/PATH or sqlite:///FILE.db"
_MAX_URI_CHARS = 400  # a tracking URI is a short address: longer is a paste gone wrong


@dataclass(frozen=True)
class TrackingSpec:
    mlflow: str | None = None  # an MLflow tracking URI; None: no tracking

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_tracking(raw: Any) -> TrackingSpec:
    raw = strict_mapping(raw, "tracking", ("mlflow",))
    uri = raw.get("mlflow")
    return TrackingSpec(mlflow=None if uri is None else check_mlflow_uri(uri, "tracking.mlflow"))


def check_mlflow_uri(uri: Any, where: str) -> str:
    """An MLflow tracking URI of a known scheme, with what that scheme needs after it. A password
    is refused: the URI is saved in space.yaml and experiment.json (MLflow reads credentials from
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN instead)."""
    from urllib.parse import urlsplit  # stdlib; this section's only import, kept with it

    expected = f"an MLflow tracking URI such as {MLFLOW_URI_EXAMPLES}"
    if not isinstance(uri, str) or not uri or len(uri) > _MAX_URI_CHARS:
        _fail(where, expected, uri if not isinstance(uri, str) else f"{len(uri)} characters")
    if uri == "databricks":  # the Databricks workspace of the default profile
        return uri
    if any(c.isspace() or not c.isprintable() for c in uri):
        _fail(where, "an MLflow tracking URI without spaces", uri)
    try:
        parts = urlsplit(uri)
        port = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise UserError(f"{where}: expected {expected}, got {uri!r} ({exc})") from None
    scheme = parts.scheme.lower().partition("+")[0]  # postgresql+psycopg2: a driver named
    if scheme not in MLFLOW_SCHEMES or "://" not in uri:
        raise UserError(
            f"{where}: expected {expected} (schemes: {', '.join(MLFLOW_SCHEMES)}), got {uri!r}"
        )
    secret_query = any(
        word in key.lower()
        for key, _, _ in (option.partition("=") for option in parts.query.split("&"))
        for word in ("password", "secret", "token", "key", "credential")
    )
    if parts.password is not None or secret_query:
        raise UserError(
            f"{where}: expected no password or token in the URI (it would be saved with the "
            "experiment); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN"
        )
    if scheme in ("http", "https") and (not parts.hostname or port == 0):
        _fail(where, f"a host (and port) after {parts.scheme}://, e.g. http://127.0.0.1:5000", uri)
    local_host = parts.netloc in ("", "localhost")
    if scheme == "file" and (not parts.path.startswith("/") or not local_host):
        _fail(where, "an absolute folder after file://, e.g. file:///srv/mlruns", uri)
    if scheme not in ("http", "https", "file", "databricks") and not (parts.netloc or parts.path):
        _fail(where, f"a database after {parts.scheme}://, e.g. sqlite:////srv/mlflow.db", uri)
    if scheme == "sqlite" and (not parts.path.startswith("//") or parts.path.strip("/") == ""):
        # sqlite:///x.db is relative to wherever the driver runs (a resume elsewhere would log
        # to another database); sqlite:/// alone is an in-memory database, lost at exit
        _fail(where, "an absolute database file, e.g. sqlite:////srv/mlflow.db", uri)
    return uri
