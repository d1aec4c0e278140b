"""A latency table measured on the deployment target, read by searches that run elsewhere.

The latency that decides a budget is the deployment target's (a CPU inference server, an ONNX
Runtime service, a GPU type the cluster lacks), not the training machine's. So
`rsearch cost --space S --latency --out T` measures every architecture of a space, in
interleaved rounds, on the machine it runs on, and writes T; a space with
`constraints.latency_ms.table: T` then takes every figure from T and measures nothing.

One row per network (its model cache key and resolution: the class count and input channels
are part of the network), with the figure's statistics and the whole result as JSON. The
method, the device and the software it was measured with are in the file's schema metadata,
once: a table holds figures of one method only. Written to a temporary file beside the target
and renamed into place, so a table is whole or absent.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rsearch import metrics as M
from rsearch.cost.latency import LatencyMethod
from rsearch.cost.rounds import ratio_to
from rsearch.cost.survey import Survey
from rsearch.errors import UserError, bounded

META_KEY = b"rsearch.latency_table"
VERSION = 1
SHOWN_MISSING = 3  # architectures a missing-figures error names
MAX_LABEL_CHARS = 200  # device name, software versions
MAX_TIMESTAMP = 2**33  # a unix time, year 2242 at the latest
_STATS = (
    M.LATENCY_MS,
    M.LATENCY_MEDIAN_MS,
    M.LATENCY_P95_MS,
    M.LATENCY_SPREAD_MS,
    M.LATENCY_NOISE,
    M.LATENCY_ROUNDS,
    M.LATENCY_RUNS,
)


def row_key(cfg, resolution: int) -> str:
    """How a table names a network: what decides its cost (the latency cache's model key, with
    classes and input channels) and its resolution."""
    return f"{cfg.cache_key()};resolution={int(resolution)}"


@dataclass(frozen=True)
class LatencyTable:
    path: str
    method: LatencyMethod
    device_name: str
    software: str
    measured_at: float
    figures: dict  # row_key -> the measured result (latency.describe_result's dict)

    def describe(self) -> dict:
        """Where the figures come from, for experiment.json and the report."""
        return {
            "path": self.path,
            "device_name": self.device_name,
            "software": self.software,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.measured_at)),
            "architectures": len(self.figures),
            "method": asdict(self.method),
        }

    def to_context(self) -> dict:
        """Plain values for a trial context (it travels to Ray's workers)."""
        return {"source": self.describe(), "figures": self.figures}


def write_table(path, entries, method: LatencyMethod, *, flag: str = "--out") -> Path:
    """Write (key, cfg, resolution, result) entries measured with `method` to a new file: the
    table appears whole, and never over a file that exists (even one made while measuring)."""
    pa, pq = _arrow()
    target = Path(path).expanduser()
    rows = [_row(arch, cfg, resolution, result) for arch, cfg, resolution, result in entries]
    first = entries[0][3]
    meta = {
        "version": VERSION,
        "method": asdict(method),
        "device_name": first["device_name"],
        "software": _software(first),
        "measured_at": time.time(),
    }
    table = pa.Table.from_pylist(rows).replace_schema_metadata({META_KEY: json.dumps(meta)})
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            pq.write_table(table, out)
        os.link(tmp, target)  # fails if the target exists: a measured table is never replaced
    except FileExistsError:
        raise UserError(
            f"{flag}: {target} appeared while measuring; the table is not written over it "
            "(run again with another --out)"
        ) from None
    finally:
        os.unlink(tmp)
    return target


def _row(arch: str | None, cfg, resolution: int, result: dict) -> dict:
    return {
        "key": row_key(cfg, resolution),
        "architecture": arch,
        M.MODEL: cfg.name,
        M.RESOLUTION: int(resolution),
        "num_classes": int(cfg.num_classes),
        "in_chans": int(cfg.in_chans),
        **{stat: float(result[stat]) for stat in _STATS},
        "result": json.dumps(result, sort_keys=True),
    }


def _software(result: dict) -> str:
    parts = [f"torch={result.get('torch')}"]
    if result.get("onnxruntime"):
        parts.append(f"onnxruntime={result['onnxruntime']}")
    return ";".join(parts)


def read_table(path, where: str) -> LatencyTable:
    """The table at `path`, or a one-line UserError naming `where` (the key or flag). Every
    value is checked: a table is data from another machine, and is printed in the views."""
    pa, _ = _arrow()
    source = Path(path).expanduser()
    shown = bounded(str(source), 300)
    try:
        found = source.is_file()
    except OSError as exc:  # a name too long for the filesystem, ...
        raise UserError(f"{where}: cannot read {shown} ({exc.strerror})") from None
    if not found:
        raise UserError(
            f"{where}: no latency table at {shown}; expected a file written by rsearch cost "
            "--space SPACE --latency --out FILE (a resumed search reads the table it started "
            "with, at this path)"
        )
    try:
        return _parsed(source)
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise UserError(
            f"{where}: {shown} is not a latency table written by rsearch cost --out "
            f"({type(exc).__name__}: {bounded(str(exc), 120)})"
        ) from None


def _parsed(source: Path) -> LatencyTable:
    _, pq = _arrow()
    table = pq.read_table(source, columns=["key", "result"])
    meta = json.loads((table.schema.metadata or {})[META_KEY])
    if not isinstance(meta, dict):
        raise TypeError("its metadata is not an object")
    keys, results = table.column("key").to_pylist(), table.column("result").to_pylist()
    figures = {key: json.loads(result) for key, result in zip(keys, results, strict=True)}
    if not figures:
        raise ValueError("no rows")
    for key, figure in figures.items():
        _check_figure(key, figure)
    measured_at = meta["measured_at"]
    if not _finite(measured_at) or not 0 <= measured_at < MAX_TIMESTAMP:
        raise ValueError("measured_at: expected a unix time")
    return LatencyTable(
        path=str(source),
        method=LatencyMethod(**meta["method"]),
        device_name=_label(meta, "device_name"),
        software=_label(meta, "software"),
        measured_at=float(measured_at),
        figures=figures,
    )


def _check_figure(key, figure) -> None:
    """A row's figure: its statistics finite numbers (latency_ms > 0), as a search uses them."""
    if not isinstance(key, str) or not isinstance(figure, dict):
        raise TypeError("a row without a key or a figure")
    for stat in _STATS:
        if stat in figure and not _finite(figure[stat]):
            raise ValueError(f"{stat}: expected a number")
    if not _finite(figure.get(M.LATENCY_MS)) or figure[M.LATENCY_MS] <= 0:
        raise ValueError(f"{M.LATENCY_MS}: expected a number > 0")


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _label(meta: dict, name: str) -> str:
    """A short text of the metadata (shown in the dry run and the report)."""
    value = meta[name]
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LABEL_CHARS:
        raise ValueError(f"{name}: expected a text of at most {MAX_LABEL_CHARS} characters")
    return value


def missing_keys(items: dict, table: dict) -> list[str]:
    """The keys of items {key: (cfg, resolution)} the table (to_context's dict) has no figure of."""
    return [k for k, (cfg, res) in items.items() if row_key(cfg, res) not in table["figures"]]


def missing_message(missing: list[str], items: dict, table: dict, where: str, remedy: str) -> str:
    """The one line for networks a table lacks: how many, the first few, the command."""
    shown = "; ".join(_network_phrase(items[k]) for k in missing[:SHOWN_MISSING])
    more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
    return (
        f"{where}: the table has no figure for {len(missing)} of the {len(items)} networks the "
        f"search needs ({shown}{more}); measure them on the deployment target: {remedy}"
    )


def _network_phrase(item) -> str:
    cfg, resolution = item
    channels = "channel" if cfg.in_chans == 1 else "channels"
    return f"{cfg.name} @{resolution} px ({cfg.num_classes} classes, {cfg.in_chans} {channels})"


def survey_table(items: dict, table: dict, budget, reference: str | None) -> Survey:
    """The figures of items {key: (cfg, resolution)} taken from a table (every key present:
    check with missing_keys first), with ratios to `reference` and the budget's decisions.
    Nothing is measured, so borderline figures are decided as they are."""
    figures = {
        key: {**table["figures"][row_key(cfg, res)], M.LATENCY_CACHED: True}
        for key, (cfg, res) in items.items()
    }
    if reference is not None:
        for key, figure in figures.items():
            figure.update(ratio_to(figure, figures[reference], same=key == reference))
    if budget is not None:
        for figure in figures.values():
            figure.update({**budget.decide(figure), M.LATENCY_REMEASURED: False})
    return Survey(figures=figures, cache="table")


def _arrow():
    """pyarrow, where a table is touched (rsearch.cost works with torch alone otherwise)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq
