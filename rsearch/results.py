"""The results store: one experiment folder, read and written only through this module.

    <storage>/<name>/
      experiment.json   what was asked for and how latency was measured (+ status)
      space.yaml        the resolved search space
      results.parquet   one row per trial      (RESULT_COLUMNS)
      curves.parquet    one row per trial-epoch (CURVE_COLUMNS)
      results.parts/    rows appended while a search runs, folded in by `compact`
      curves.parts/     (rsearch.fragments: a reader reads each table whole)
      tune/             Ray Tune's own folder (not read here)

Every file is replaced atomically (written beside, then moved over the old one), so a
dashboard reading during a search sees either the old or the new file, never half.
A running search appends what changed (`append_rows`), so a write costs what it adds.
Columns have a fixed order and type: a row that lacks an optional value gets a null,
so files written at any point of a run read back with the same dtypes. Integer
columns read back as pandas' nullable "Int64", booleans as nullable "boolean"; floats as
float64 with NaN for null. A file written before a column existed reads it as all null.

Two columns are computed here, from the other columns, never taken from a row: `pareto`
and `minival_top1_se` (the binomial standard error of minival_top1 on minival_size images).
A confirmation rerun (`confirms` = the original's trial id, another `seed`) is stored like
any trial but never competes for the front: it re-measures a config already there.

`exp_dir` is a local path or a pyarrow filesystem URI (file://, s3://, gs://, ...).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from rsearch import fragments, storage
from rsearch import metrics as m
from rsearch.errors import UserError
from rsearch.frames import floats, is_null, ok_mask, plain
from rsearch.noise import NOISE_Z, binomial_se, within_noise
from rsearch.pareto import hypervolume_2d, pareto_mask_by_group, reference_point
from rsearch.storage import write_file_atomic

EXPERIMENT_FILE = "experiment.json"
SPACE_FILE = "space.yaml"
RESULTS_TABLE, CURVES_TABLE = "results", "curves"  # each a file and its fragments (fragments.py)
RESULTS_FILE = "results.parquet"
CURVES_FILE = "curves.parquet"
_KEYS = {RESULTS_TABLE: [m.TRIAL_ID], CURVES_TABLE: [m.TRIAL_ID, m.EPOCH]}  # a row's identity
_EMPTY = object()  # _read_table's default for an absent file: an empty table
_VERSION_KEY = b"rsearch.schema_version"

_STR, _INT, _FLOAT, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()

# The trial's architecture and regime: in every row of both files, so that a curve can be
# read without its trial's row.
_ARCH_TYPES = (
    (m.FAMILY, _STR),  # none in older files: ResNet-RS (read_experiment fills it)
    (m.DEPTH, _INT),  # layers (ResNet-RS) or MBConv blocks (EfficientNet)
    (m.DEPTH_MULT, _FLOAT),  # an EfficientNet's depth multiplier; none for ResNet-RS
    (m.WIDTH, _FLOAT),
    (m.RESOLUTION, _INT),
    (m.EPOCHS, _INT),
)

# The regularization and recipe values of a trial, in display order (analysis and the
# dashboards show them in this order: REGULARIZATION_COLUMNS).
_REGULARIZATION_TYPES = (
    (m.DROPOUT, _FLOAT),
    (m.STOCHASTIC_DEPTH, _FLOAT),
    (m.LABEL_SMOOTHING, _FLOAT),
    (m.RANDAUGMENT_MAGNITUDE, _INT),
    (m.RANDAUGMENT_OPS, _INT),
    (m.WEIGHT_DECAY, _FLOAT),
    (m.EMA_DECAY, _FLOAT),
    (m.BASE_LR, _FLOAT),
    (m.BATCH_SIZE, _INT),
)
REGULARIZATION_COLUMNS = tuple(name for name, _ in _REGULARIZATION_TYPES)

# results.parquet, in file order. The first six are required in every row.
RESULT_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    (m.TRIAL_ID, _STR),
    (m.STATUS, _STR),
    *_ARCH_TYPES,
    (m.FAILURE, _STR),
    (m.MODEL, _STR),
    (m.RECIPE, _STR),
    (m.SEED, _INT),
    (m.CONFIRMS, _STR),  # a confirmation rerun names its original in `confirms`
    *_REGULARIZATION_TYPES,
    # outcome and cost
    (m.MINIVAL_TOP1, _FLOAT),
    (m.MINIVAL_TOP1_SE, _FLOAT),  # computed by write_results, never taken from the rows
    (m.MINIVAL_SIZE, _INT),
    (m.MINIVAL_LOSS, _FLOAT),
    (m.TEST_TOP1, _FLOAT),
    (m.LATENCY_MS, _FLOAT),
    (m.LATENCY_P95_MS, _FLOAT),
    # the latency measurement's noise, as the cost model measured it
    (m.LATENCY_SPREAD_MS, _FLOAT),
    (m.LATENCY_RUNS, _INT),
    (m.LATENCY_NOISE, _FLOAT),
    (m.LATENCY_RATIO, _FLOAT),
    (m.LATENCY_BORDERLINE, _BOOL),
    (m.PARAMS, _INT),
    (m.FLOPS, _INT),
    (m.TRAIN_SECONDS, _FLOAT),
    (m.EPOCHS_DONE, _INT),
    (m.IMG_PER_S, _FLOAT),
    (m.PARETO, _BOOL),  # computed by write_results, never taken from the rows
    # what `rsearch tune --resume` needs: data only (JSON text and a path), never a pickle
    (m.TRIAL_CONFIG, _STR),
    (m.CHECKPOINT, _STR),
)
REQUIRED_RESULT_COLUMNS = (m.TRIAL_ID, m.STATUS, m.DEPTH, m.WIDTH, m.RESOLUTION, m.EPOCHS)

# The per-epoch metrics the trainer reports (all floats), in curves.parquet's order.
EPOCH_METRICS = (m.TRAIN_LOSS, m.MINIVAL_TOP1, m.MINIVAL_LOSS, m.LR, m.IMG_PER_S, m.EPOCH_SECONDS)

# curves.parquet, in file order.
CURVE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    (m.TRIAL_ID, _STR),
    (m.EPOCH, _INT),
    *((name, _FLOAT) for name in EPOCH_METRICS),
    *_ARCH_TYPES,
)
REQUIRED_CURVE_COLUMNS = (m.TRIAL_ID, m.EPOCH)

STATUSES = (m.STATUS_OK, m.STATUS_INFEASIBLE, m.STATUS_FAILED, m.STATUS_RUNNING, m.STATUS_STOPPED)

# Columns front_summary prints.
FRONT_COLUMNS = (
    m.EPOCHS,
    m.FAMILY,  # printed when the results hold more than one family
    m.MODEL,
    m.DEPTH,
    m.WIDTH,
    m.RESOLUTION,
    m.MINIVAL_TOP1,
    m.MINIVAL_TOP1_SE,
    m.LATENCY_MS,
    m.PARAMS,
    m.FLOPS,
    m.TRIAL_ID,
)


@dataclass(frozen=True)
class Experiment:
    meta: dict  # experiment.json
    results: pd.DataFrame  # one row per trial, RESULT_COLUMNS (+ any extra columns)
    curves: pd.DataFrame  # one row per trial-epoch, CURVE_COLUMNS
    path: str

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or os.path.basename(self.path.rstrip("/")))

    @property
    def latency_budget_ms(self) -> float | None:
        budget = self.meta.get("latency_budget_ms")
        return None if budget is None else float(budget)


# --------------------------------------------------------------------------- files


def _read_bytes(fs: pafs.FileSystem, path: str) -> bytes | None:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read()


# --------------------------------------------------------------------------- meta


def create_experiment(exp_dir, meta: dict, space_resolved: dict) -> None:
    """Write experiment.json (defaults filled in) and space.yaml. Overwrites both."""
    full = {
        "name": storage.basename(exp_dir),
        "schema_version": m.RESULTS_SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "space_file": None,
        "epochs": [],
        "latency_budget_ms": None,
        "latency_method": None,
        "objective": m.OBJECTIVE,
        "planned_trials": None,
        "status": "running",
    }
    full.update(meta)
    write_file_atomic(exp_dir, SPACE_FILE, yaml.safe_dump(space_resolved, sort_keys=False).encode())
    _write_meta(exp_dir, full)


def update_meta(exp_dir, **changes) -> None:
    """Change some experiment.json fields (e.g. status="finished")."""
    fs, root = storage.filesystem(exp_dir)
    meta = _parse_meta(_read_bytes(fs, f"{root}/{EXPERIMENT_FILE}"), root)
    meta.update(changes)
    _write_meta(exp_dir, meta)


def _write_meta(exp_dir, meta: dict) -> None:
    write_file_atomic(
        exp_dir, EXPERIMENT_FILE, (json.dumps(meta, indent=2, default=str) + "\n").encode()
    )


def _parse_meta(raw: bytes | None, root: str) -> dict:
    if raw is None:
        raise UserError(
            f"EXPERIMENT: expected an rsearch experiment folder (with {EXPERIMENT_FILE}), "
            f"got '{root}'"
        )
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise UserError(
            f"EXPERIMENT: expected valid JSON in {root}/{EXPERIMENT_FILE}, got an error: {exc}"
        ) from None
    if not isinstance(meta, dict):
        raise UserError(
            f"EXPERIMENT: expected a JSON object in {root}/{EXPERIMENT_FILE}, "
            f"got {type(meta).__name__}"
        )
    _check_version(meta.get("schema_version", 1), f"{root}/{EXPERIMENT_FILE}")
    return meta


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a number


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# The experiment.json fields the views read: (what is expected, the test). null means unset
# and is always accepted. Checked once, where the file is read, so no view meets a wrong type.
_META_FIELDS = {
    "name": ("a string", lambda v: isinstance(v, str)),
    "status": ("a string", lambda v: isinstance(v, str)),
    "created": ("a string", lambda v: isinstance(v, str)),
    "objective": ("a string", lambda v: isinstance(v, str)),
    "epochs": (
        "a list of integers > 0",
        lambda v: isinstance(v, list) and all(_is_int(e) and e > 0 for e in v),
    ),
    "latency_budget_ms": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "planned_trials": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "latency_method": ("an object", lambda v: isinstance(v, dict)),
}
_METHOD_FIELDS = {  # inside latency_method: the report prints a relative budget from these
    "max_ratio": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "reference": (
        "an object with depth, width and resolution",
        lambda v: isinstance(v, dict) and {m.DEPTH, m.WIDTH, m.RESOLUTION} <= set(v),
    ),
}
_REFERENCE_FIELDS = {
    m.DEPTH: ("an integer", _is_int),
    m.WIDTH: ("a number", _is_number),
    m.RESOLUTION: ("an integer", _is_int),
}


def _check_meta(meta: dict, where: str) -> None:
    """A UserError naming the first field of experiment.json whose value has the wrong type."""

    def check(values: dict, fields: dict, prefix: str) -> None:
        for key, (expected, test) in fields.items():
            value = values.get(key)
            if value is not None and not test(value):
                raise UserError(
                    f"EXPERIMENT: {prefix}{key} in {where}: expected {expected} (or null), "
                    f"got {value!r}"
                )

    check(meta, _META_FIELDS, "")
    method = meta.get("latency_method") or {}
    check(method, _METHOD_FIELDS, "latency_method.")
    check(method.get("reference") or {}, _REFERENCE_FIELDS, "latency_method.reference.")


def _check_version(version, where: str) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(
            f"EXPERIMENT: expected an integer schema_version in {where}, got {version!r}"
        )
    if version > m.RESULTS_SCHEMA_VERSION:
        raise UserError(
            f"EXPERIMENT: {where} has schema_version {version}, newer than this rsearch reads "
            f"(up to {m.RESULTS_SCHEMA_VERSION}); expected an older file or a newer rsearch"
        )


# --------------------------------------------------------------------------- tables


def _cell(value, kind: pa.DataType, column: str):
    """One Python value coerced to its column type; None/NaN become null."""
    if isinstance(value, np.generic):
        value = value.item()
    if is_null(value):
        return None
    if kind == _STR:
        return str(value)
    if kind == _BOOL:
        return bool(value)
    if kind == _INT:
        # Tune's quniform hands back floats such as 12.0: accept whole numbers only.
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{column}: expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def _table(rows: list[dict], columns, required) -> pa.Table:
    known = dict(columns)
    for index, row in enumerate(rows):
        missing = [name for name in required if row.get(name) is None]
        if missing:
            raise ValueError(f"row {index}: expected a value for {', '.join(missing)}")
    arrays = {
        name: pa.array([_cell(r.get(name), kind, name) for r in rows], type=kind)
        for name, kind in columns
    }
    # Extra keys (the driver may record more) are kept after the known columns, by name.
    for name in sorted({key for row in rows for key in row} - set(known)):
        values = [row.get(name) for row in rows]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if v is None else str(v) for v in values], type=_STR)
    table = pa.table(arrays)
    return table.replace_schema_metadata({_VERSION_KEY: str(m.RESULTS_SCHEMA_VERSION).encode()})


def _to_frame(table: pa.Table) -> pd.DataFrame:
    # Nullable dtypes: without them a null int becomes a float and a null bool an object column.
    return table.to_pandas(
        types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get
    )


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _write_parquet(exp_dir, name: str, table: pa.Table) -> None:
    write_file_atomic(exp_dir, name, _parquet_bytes(table))


def write_results(exp_dir, rows: list[dict]) -> pd.DataFrame:
    """Write all trial rows (the whole table) with the pareto and minival_top1_se columns
    computed; fragments appended before are superseded."""
    _check_statuses(rows)
    table = _with_computed(_table(rows, RESULT_COLUMNS, REQUIRED_RESULT_COLUMNS))
    _replace_stored(exp_dir, RESULTS_TABLE, table)
    return _to_frame(table)


def write_curves(exp_dir, rows: list[dict]) -> None:
    """Write all trial-epoch rows (the whole table); fragments appended before are superseded."""
    _replace_stored(exp_dir, CURVES_TABLE, _table(rows, CURVE_COLUMNS, REQUIRED_CURVE_COLUMNS))


def append_rows(exp_dir, result_rows: list[dict], curve_rows: list[dict]) -> None:
    """The trial rows and trial-epoch rows new or changed since the last write, as one
    fragment of each table: a write costs what it adds, not the whole study. A reader takes
    the last row of each trial (and epoch); `compact` folds the fragments in."""
    _check_statuses(result_rows)
    for name, rows, columns, required in (
        (RESULTS_TABLE, result_rows, RESULT_COLUMNS, REQUIRED_RESULT_COLUMNS),
        (CURVES_TABLE, curve_rows, CURVE_COLUMNS, REQUIRED_CURVE_COLUMNS),
    ):
        if rows:  # the computed columns stay null here: a reader computes them on the whole
            fragments.append(exp_dir, name, _parquet_bytes(_table(rows, columns, required)))


def compact(exp_dir) -> None:
    """Fold each table's fragments into its base file (results with its front computed)."""
    fs, root = storage.filesystem(exp_dir)
    for name, columns, required in (
        (RESULTS_TABLE, RESULT_COLUMNS, REQUIRED_RESULT_COLUMNS),
        (CURVES_TABLE, CURVE_COLUMNS, REQUIRED_CURVE_COLUMNS),
    ):
        if not fragments.fragment_names(fs, root, name):
            continue  # nothing to fold: the base is not read
        frame, folded = _read_stored(fs, root, name, columns, required)
        table = _frame_table(frame, columns)
        _write_parquet(
            exp_dir,
            name + fragments.SUFFIX,
            table if name == CURVES_TABLE else _with_computed(table),
        )
        fragments.delete(fs, root, name, folded)


def _check_statuses(rows: list[dict]) -> None:
    for index, row in enumerate(rows):
        if row.get(m.STATUS) not in STATUSES and row.get(m.STATUS) is not None:
            raise ValueError(
                f"row {index}: status expected one of {', '.join(STATUSES)}, got {row[m.STATUS]!r}"
            )


def _with_computed(table: pa.Table) -> pa.Table:
    """A results table with its computed columns: minival_top1_se and pareto."""
    frame = _to_frame(table)
    table = _replace_column(
        table, m.MINIVAL_TOP1_SE, pa.array(minival_se(frame), type=_FLOAT, from_pandas=True)
    )
    return _replace_column(table, m.PARETO, pa.array(pareto_flags(frame), type=_BOOL))


def _replace_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _replace_stored(exp_dir, name: str, table: pa.Table) -> None:
    """Write table `name`'s base anew and drop the fragments that were there before."""
    fs, root = storage.filesystem(exp_dir)
    superseded = fragments.fragment_names(fs, root, name)
    _write_parquet(exp_dir, name + fragments.SUFFIX, table)
    fragments.delete(fs, root, name, superseded)


def _frame_table(frame: pd.DataFrame, columns) -> pa.Table:
    """A read (conformed) frame back as a table of the schema's types, extra columns kept."""
    known = dict(columns)
    arrays = {}
    for name in frame.columns:
        values = frame[name]
        if name in known:
            arrays[name] = pa.array(values, type=known[name], from_pandas=True)
            continue
        try:
            arrays[name] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if is_null(v) else str(v) for v in values], type=_STR)
    table = pa.table(arrays)
    return table.replace_schema_metadata({_VERSION_KEY: str(m.RESULTS_SCHEMA_VERSION).encode()})


def _read_stored(fs, root: str, name: str, columns, required) -> tuple[pd.DataFrame, list[str]]:
    """Table `name`: its base and fragments, the last row of each key kept; and the names of
    the fragments read."""
    base, parts, names = fragments.read(
        fs, root, name, lambda path: _read_table(fs, path, columns, required, absent=None)
    )
    empty = _to_frame(_table([], columns, ()))
    frames = [f for f in (base, *parts) if f is not None and len(f)]
    if not parts or not frames:
        return (base if base is not None else empty), names
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    key = _KEYS[name]
    frame = frame[~frame.duplicated(key, keep="last")].reset_index(drop=True)
    return _conform(frame, columns), names


def _read_table(fs: pafs.FileSystem, path: str, columns, required, absent=_EMPTY):
    """One file as a conformed frame; an empty table (or `absent`) when there is none."""
    raw = _read_bytes(fs, path)
    if raw is None:
        return _to_frame(_table([], columns, ())) if absent is _EMPTY else absent
    try:
        # use_threads=False: a threaded read leaves work behind that can abort the process
        # ("terminate called without an active exception", apache/arrow#34314) when it exits
        # right after, as a command refusing the file does. The files are small.
        table = pq.read_table(pa.BufferReader(raw), use_threads=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(
            f"EXPERIMENT: expected a Parquet file at {path}, got an unreadable file: {exc}"
        ) from None
    version = (table.schema.metadata or {}).get(_VERSION_KEY, b"1")
    _check_version(int(version) if version.isdigit() else version.decode(errors="replace"), path)
    return _conform(_to_frame(_checked_types(table, columns, required, path)), columns)


# The Arrow types a file may hold for each schema type: the schema's own, or narrower ones
# that convert exactly (int32 for int64, an integer for a float). Never text for a number.
_ACCEPTED = {
    _STR: lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),  # pandas: large_string
    _INT: pa.types.is_integer,
    _BOOL: pa.types.is_boolean,
    _FLOAT: lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
}
_HOLDS = {_STR: "strings", _INT: "integers", _FLOAT: "numbers", _BOOL: "true/false"}


def _checked_types(table: pa.Table, columns, required, path: str) -> pa.Table:
    """`table` with the known columns in their schema types; a UserError naming the file
    and the columns when a required one is missing or empty in a row, or a column holds
    another type."""
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise UserError(
            f"EXPERIMENT: expected the columns {', '.join(required)} in {path}, "
            f"missing {', '.join(missing)}"
        )
    for name, kind in columns:
        if name not in table.column_names:
            continue  # written before the column existed: _conform adds it as nulls
        column = table[name]
        stored = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (pa.types.is_null(stored) or _ACCEPTED[kind](stored)):
            raise UserError(
                f"EXPERIMENT: column {name} in {path}: expected {_HOLDS[kind]}, got {column.type}"
            )
        if name in required and column.null_count:
            raise UserError(
                f"EXPERIMENT: column {name} in {path}: expected a value in every row, "
                f"got {column.null_count} empty"
            )
        try:
            # A safe cast: it refuses a value that would change.
            table = _replace_column(table, name, column.cast(kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UserError(
                f"EXPERIMENT: column {name} in {path}: expected {_HOLDS[kind]} "
                f"that fit {kind}, got {exc}"
            ) from None
    return table


def _conform(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Known columns first, in schema order and dtype (older files may lack some)."""
    template = _to_frame(_table([], columns, ()))
    for name in template.columns:
        if name not in frame.columns:
            frame[name] = pd.Series(
                [None] * len(frame), dtype=template[name].dtype, index=frame.index
            )
    extra = [c for c in frame.columns if c not in template.columns]
    return frame[list(template.columns) + extra]


def read_experiment(exp_dir, allow_empty: bool = False) -> Experiment:
    """Read an experiment folder; a one-line UserError for anything that is not a readable
    experiment.

    allow_empty=True accepts an experiment with no trial rows yet (a live dashboard).
    """
    fs, root = storage.filesystem(exp_dir)
    kind = fs.get_file_info(root).type
    if kind == pafs.FileType.NotFound:
        raise UserError(f"EXPERIMENT: expected an experiment folder, got '{root}' (no such folder)")
    if kind != pafs.FileType.Directory:
        raise UserError(f"EXPERIMENT: expected an experiment folder, got '{root}' (not a folder)")
    meta = _parse_meta(_read_bytes(fs, f"{root}/{EXPERIMENT_FILE}"), root)
    _check_meta(meta, f"{root}/{EXPERIMENT_FILE}")
    results, appended = _read_stored(
        fs, root, RESULTS_TABLE, RESULT_COLUMNS, REQUIRED_RESULT_COLUMNS
    )
    if results.empty and not allow_empty:
        raise UserError(
            f"EXPERIMENT: expected at least one trial in {RESULTS_FILE}, got none in '{root}' "
            "(the search has not recorded a trial yet)"
        )
    if len(results):  # rows of an older writer, from before a second family: ResNet-RS
        results[m.FAMILY] = results[m.FAMILY].fillna(m.DEFAULT_FAMILY)
    if len(results) and (appended or results[m.PARETO].isna().all()):
        # Rows appended since the last compaction (a running search), or a file without the
        # flags (an older writer's, another tool's): the views read the stored front, so
        # compute it here on the whole table as write_results would have stored it.
        results[m.MINIVAL_TOP1_SE] = minival_se(results)
        results[m.PARETO] = pd.array(pareto_flags(results), dtype="boolean")
    curves, _ = _read_stored(fs, root, CURVES_TABLE, CURVE_COLUMNS, REQUIRED_CURVE_COLUMNS)
    return Experiment(meta=meta, results=results, curves=curves, path=root)


# --------------------------------------------------------------------------- summaries


def minival_se(results: pd.DataFrame) -> np.ndarray:
    """The binomial standard error of each row's minival_top1 (NaN where it or minival_size
    is unknown)."""
    if m.MINIVAL_SIZE not in results.columns:
        return np.full(len(results), np.nan)
    return binomial_se(floats(results[m.MINIVAL_TOP1]), floats(results[m.MINIVAL_SIZE]))


def competing(results: pd.DataFrame) -> np.ndarray:
    """Rows that compete for the front and the budget picks: trained ("ok") original trials.

    A confirmation rerun re-measures its original with another seed: letting it compete
    would count one config twice and reward the luckiest seed.
    """
    ok = ok_mask(results)
    if m.CONFIRMS in results.columns:
        ok = ok & results[m.CONFIRMS].isna().to_numpy(dtype=bool)
    return ok


def pareto_flags(results: pd.DataFrame) -> np.ndarray:
    """Non-dominated in (max minival_top1, min latency_ms) among the competing rows
    (trained originals, see `competing`) of the same regime."""
    objectives = np.column_stack([floats(results[m.MINIVAL_TOP1]), floats(results[m.LATENCY_MS])])
    objectives[~competing(results)] = np.nan  # NaN rows are never on the front and dominate nothing
    regimes = floats(results[m.EPOCHS])
    return pareto_mask_by_group(objectives, (True, False), regimes)


def _front(results: pd.DataFrame) -> pd.DataFrame:
    """The Pareto-front rows, by regime then latency."""
    return results[pareto_flags(results)].sort_values([m.EPOCHS, m.LATENCY_MS], kind="stable")


def front_summary(results: pd.DataFrame) -> pd.DataFrame:
    """The Pareto front of each regime, by regime then latency, for printing."""
    front = _front(results)
    one_family = m.FAMILY not in results or results[m.FAMILY].nunique() <= 1
    columns = [c for c in FRONT_COLUMNS if c in front.columns]
    columns = [c for c in columns if not (c == m.FAMILY and one_family)]
    return front[columns].reset_index(drop=True)


def front_ties(results: pd.DataFrame, z: float = NOISE_Z) -> pd.DataFrame:
    """The Pareto front of each regime (all columns, by regime then latency), plus which
    members cannot be told apart from a neighbouring member.

    Neighbours are adjacent in latency within a regime; a and b are tied when
    |acc_a - acc_b| <= z * sqrt(se_a^2 + se_b^2) with se = minival_top1_se. Added columns:
    `tied` True / False, or <NA> when a neighbour's comparison lacks an SE and no tie was
    found (noise unknown); `tied_with` the trial ids of the tied neighbours (a list).
    """
    front = _front(results).reset_index(drop=True)
    acc = floats(front[m.MINIVAL_TOP1])
    se = (
        floats(front[m.MINIVAL_TOP1_SE])
        if m.MINIVAL_TOP1_SE in front.columns
        else minival_se(front)
    )
    regime = floats(front[m.EPOCHS])
    # pair[i]: members i and i+1 (1 tied, 0 apart, NaN unknown); none across two regimes.
    pair = within_noise(acc[:-1], se[:-1], acc[1:], se[1:], z)
    pair[regime[:-1] != regime[1:]] = 0.0
    ids = front[m.TRIAL_ID].tolist()
    tied, tied_with = [], []
    for i in range(len(front)):
        sides = [(j, pair[k]) for j, k in ((i - 1, i - 1), (i + 1, i)) if 0 <= j < len(front)]
        tied_with.append([ids[j] for j, within in sides if within == 1.0])
        unknown = any(np.isnan(within) for _, within in sides)
        tied.append(True if tied_with[-1] else pd.NA if unknown else False)
    front[m.TIED] = pd.array(tied, dtype="boolean")
    front[m.TIED_WITH] = pd.Series(tied_with, index=front.index, dtype=object)
    return front


def regimes(results: pd.DataFrame) -> list[int]:
    """The epoch regimes present, ascending."""
    return sorted(int(e) for e in results[m.EPOCHS].dropna().unique())


def best_under_budget(results: pd.DataFrame, budget_ms: float | None) -> dict[int, dict | None]:
    """Per regime: the most accurate competing trial (trained original) with latency <= budget
    (ties: the faster one).

    budget_ms None means no budget. A regime with no such trial maps to None.
    """
    best: dict[int, dict | None] = {}
    ok = results[competing(results)]
    for regime in regimes(results):
        rows = ok[ok[m.EPOCHS] == regime]
        acc, lat = floats(rows[m.MINIVAL_TOP1]), floats(rows[m.LATENCY_MS])
        usable = ~np.isnan(acc) & ~np.isnan(lat)
        if budget_ms is not None:
            usable &= lat <= budget_ms
        if not usable.any():
            best[regime] = None
            continue
        index = np.flatnonzero(usable)
        winner = index[np.lexsort((lat[index], -acc[index]))[0]]
        best[regime] = plain(rows.iloc[winner].to_dict())
    return best


def hypervolume_by_regime(
    results: pd.DataFrame, budget_ms: float | None = None, ref_latency_ms: float | None = None
) -> dict[int, float]:
    """Pareto hypervolume (accuracy x latency) of each regime's competing trials (trained
    originals).

    The reference is accuracy 0 and `ref_latency_ms`, else the budget, else 1.1 x the
    slowest point; pass the same reference to compare two searches.
    """
    ok = results[competing(results)]
    volumes = {}
    for regime in regimes(results):
        rows = ok[ok[m.EPOCHS] == regime]
        acc, lat = floats(rows[m.MINIVAL_TOP1]), floats(rows[m.LATENCY_MS])
        ref = (
            (0.0, ref_latency_ms) if ref_latency_ms is not None else reference_point(lat, budget_ms)
        )
        volumes[regime] = hypervolume_2d(acc, lat, ref)
    return volumes


__all__ = [
    "Experiment",
    "create_experiment",
    "update_meta",
    "write_results",
    "write_curves",
    "append_rows",
    "compact",
    "read_experiment",
    "front_summary",
    "front_ties",
    "best_under_budget",
    "hypervolume_by_regime",
    "pareto_flags",
    "regimes",
    "competing",
    "minival_se",
    "write_file_atomic",
    "RESULT_COLUMNS",
    "CURVE_COLUMNS",
    "EPOCH_METRICS",
    "REGULARIZATION_COLUMNS",
]
