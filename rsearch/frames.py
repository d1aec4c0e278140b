"""Cell and column helpers for the results and curves frames, shared by every reader.

A stored column may come back as a numpy, nullable pandas or object dtype (Parquet written
by this version, by an older one, or by pandas): these helpers give one answer for all.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rsearch import metrics as m


def is_null(value) -> bool:
    """None, pandas' NA and float NaN: every way a frame says "no value"."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def plain(value):
    """`value` as plain Python, nulls as None, recursively through dicts and lists (JSON-ready)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if is_null(value) else value


def floats(series: pd.Series) -> np.ndarray:
    """A column as float numpy (NaN for null or non-numeric), whatever its pandas dtype."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def ok_mask(results: pd.DataFrame) -> np.ndarray:
    """Rows of trials that trained their whole regime (status "ok"; a null status is not)."""
    return (results[m.STATUS] == m.STATUS_OK).to_numpy(dtype=bool, na_value=False)


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as dicts of plain Python values, nulls as None (see `plain`)."""
    return [plain(row) for row in frame.to_dict("records")]
