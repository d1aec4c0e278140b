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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rsearch import metrics as M
from rsearch import storage
from rsearch.cost.latency import LatencyMethod
from rsearch.cost.rounds import ratio_to
from rsearch.cost.survey import Survey
from rsearch.errors import UserError

META_KEY = b"rsearch.latency_table"
VERSION = 1
SHOWN_MISSING = 3  # architectures a missing-figures error names
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
    """Write (arch key or None, cfg, resolution, result) entries measured with `method`."""
    pa, pq = _arrow()
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise UserError(f"{flag}: no directory {target.parent}; expected a path in an existing one")
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
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    storage.write_file_atomic(str(target.parent), target.name, sink.getvalue().to_pybytes())
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
    """The table at `path`, or a one-line UserError naming `where` (the key or flag)."""
    pa, pq = _arrow()
    source = Path(path).expanduser()
    if not source.is_file():
        raise UserError(
            f"{where}: no latency table at {source}; expected a file written by "
            "rsearch cost --space SPACE --latency --out FILE"
        )
    try:
        table = pq.read_table(source)
        meta = json.loads((table.schema.metadata or {})[META_KEY])
        method = LatencyMethod(**meta["method"])
        figures = {
            key: json.loads(result)
            for key, result in zip(
                table.column("key").to_pylist(), table.column("result").to_pylist()
            )
        }
        if not figures or not all(_valid_figure(f) for f in figures.values()):
            raise ValueError("a row without a latency figure")
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"{where}: {source} is not a latency table written by rsearch cost --out "
            f"({type(exc).__name__})"
        ) from None
    return LatencyTable(
        path=str(source),
        method=method,
        device_name=str(meta["device_name"]),
        software=str(meta["software"]),
        measured_at=float(meta["measured_at"]),
        figures=figures,
    )


def _valid_figure(figure) -> bool:
    value = figure.get(M.LATENCY_MS) if isinstance(figure, dict) else None
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def missing_keys(items: dict, table: dict) -> list[str]:
    """The keys of items {key: (cfg, resolution)} the table (to_context's dict) has no figure of."""
    return [k for k, (cfg, res) in items.items() if row_key(cfg, res) not in table["figures"]]


def missing_message(missing: list[str], items: dict, table: dict, where: str, remedy: str) -> str:
    """The one line for architectures a table lacks: how many, the first few, the command."""
    shown = "; ".join(_network_phrase(items[k]) for k in missing[:SHOWN_MISSING])
    more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
    return (
        f"{where}: {table['source']['path']} has no figure for {len(missing)} of the "
        f"{len(items)} architectures to measure ({shown}{more}); measure them on the deployment "
        f"target with: {remedy} and set {where} to that file"
    )


def _network_phrase(item) -> str:
    cfg, resolution = item
    return f"{cfg.name} @{resolution} px ({cfg.num_classes} classes)"


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
