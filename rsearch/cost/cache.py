"""A Parquet cache of measured latencies, shared by every trial on a machine.

One row per (model config, resolution, method, device name, software versions). Each
row keeps its figure's noise (latency_noise, the rounds' relative IQR) and the conditions
it was measured under (time, load average, CPU count) inside its result JSON, so a search
can check a cached figure against a fresh one before it trusts it (survey.py). The
file is rewritten whole on every put: written to a temporary file beside it and moved
into place with os.replace, under an exclusive lock on `<path>.lock`, so readers never
see a half-written table and concurrent writers (Ray trials) never lose each other's rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from rsearch import metrics as M
from rsearch.cost.latency import LatencyMethod, device_name, measure_latency
from rsearch.cost.onnx import onnxruntime_version
from rsearch.cost.static import check_resolution
from rsearch.errors import UserError
from rsearch.models import ResNetConfig

try:
    import fcntl
except ImportError:  # not POSIX: atomic replace still holds, concurrent puts may race
    fcntl = None

COLUMNS = (
    ("key", "string"),
    ("model", "string"),  # the model key: layers/width/rs/se/in_chans/num_classes, readable
    (M.RESOLUTION, "int64"),
    ("method", "string"),  # LatencyMethod.key()
    ("device_name", "string"),
    ("software", "string"),
    (M.LATENCY_MS, "float64"),
    (M.LATENCY_P95_MS, "float64"),
    (M.LATENCY_NOISE, "float64"),  # relative IQR of the rounds (null in rows of older versions)
    ("measured_at", "float64"),  # unix time
    ("result", "string"),  # the full result dict, JSON
)


def _arrow():
    """pyarrow and pyarrow.parquet, imported where the file is touched, so rsearch.cost (and
    `rsearch cost --no-cache`) works on a bare GPU box with torch only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _schema():
    pa, _ = _arrow()
    return pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])


def _software(method: LatencyMethod) -> str:
    software = f"torch={torch.__version__};python={sys.version_info.major}.{sys.version_info.minor}"
    if method.backend == "onnxruntime":
        software += f";onnxruntime={onnxruntime_version()}"
    return software


def cache_key(cfg: ResNetConfig, resolution: int, method: LatencyMethod) -> dict:
    """The parts of a cache key (all strings) and their digest under "key"."""
    device = device_name(method.device)
    if method.device == "cpu":  # the same CPU model with fewer cores is a different device
        device += f";threads={method.threads or torch.get_num_threads()}"
    parts = {
        "model": cfg.cache_key(),
        M.RESOLUTION: check_resolution(resolution),
        "method": method.key(),
        "device_name": device,
        "software": _software(method),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    return {"key": digest, **parts}


class LatencyCache:
    """get / put / get_or_measure latency results in one Parquet file."""

    def __init__(self, path, flag: str = "--cache"):
        self.path = Path(path).expanduser()
        self.flag = flag  # what the user calls this file in error messages
        self._rows: dict[str, dict] | None = None
        self._stamp = None

    # -- reading -------------------------------------------------------------------------------
    def _file_stamp(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, dict]:
        stamp = self._file_stamp()
        if self._rows is None or stamp != self._stamp:
            rows = {}
            if stamp is not None:
                for row in self._read():
                    rows[row["key"]] = row
            self._rows, self._stamp = rows, stamp
        return self._rows

    def _read(self) -> list[dict]:
        pa, pq = _arrow()
        problem = "is a directory" if self.path.is_dir() else None
        if problem is None:
            try:
                table = pq.read_table(self.path)
            except (pa.ArrowException, OSError) as exc:
                problem = f"is not a Parquet file ({type(exc).__name__})"
            else:
                missing = {"key", "result"} - set(table.column_names)
                if missing:
                    problem = f"is not a latency cache (no {', '.join(sorted(missing))} column)"
        if problem:
            raise UserError(f"{self.flag}: {self.path} {problem}; pass another path or delete it")
        return table.to_pylist()

    def get(self, cfg: ResNetConfig, resolution: int, method: LatencyMethod) -> dict | None:
        row = self._load().get(cache_key(cfg, resolution, method)["key"])
        return None if row is None else json.loads(row["result"])

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:  # an empty cache is still a cache (`if cache:` must not skip it)
        return True

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            yield
            return
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put(self, cfg: ResNetConfig, resolution: int, method: LatencyMethod, result: dict) -> None:
        self.put_many([(cfg, resolution, method, result)])

    def put_many(self, entries) -> None:
        """Store (cfg, resolution, method, result) entries with one rewrite of the file."""
        new_rows = []
        for cfg, resolution, method, result in entries:
            parts = cache_key(cfg, resolution, method)
            new_rows.append(
                {
                    **parts,
                    M.LATENCY_MS: float(result[M.LATENCY_MS]),
                    M.LATENCY_P95_MS: float(result.get(M.LATENCY_P95_MS, result[M.LATENCY_MS])),
                    M.LATENCY_NOISE: result.get(M.LATENCY_NOISE),
                    "measured_at": time.time(),
                    "result": json.dumps(result, sort_keys=True),
                }
            )
        with self._locked():
            self._rows = None  # re-read under the lock: another process may have written
            rows = self._load()
            rows.update({row["key"]: row for row in new_rows})
            pa, pq = _arrow()
            table = pa.Table.from_pylist(list(rows.values()), schema=_schema())
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            os.close(fd)
            try:
                pq.write_table(table, tmp)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            self._stamp = self._file_stamp()

    def get_or_measure(self, cfg: ResNetConfig, resolution: int, method: LatencyMethod) -> dict:
        """The cached result (with "cached": True) or a fresh measurement, stored."""
        found = self.get(cfg, resolution, method)
        if found is not None:
            return {**found, "cached": True}
        result = measure_latency(cfg, resolution, method)
        self.put(cfg, resolution, method, result)
        return {**result, "cached": False}
