"""Input fingerprints: a stable hash of exactly the rows a section is computed from."""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

# Bump when an analyzer changes what it says from the same inputs: every entry refreshes.
ANALYZER_VERSION = "1"


def _norm(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return round(value, 9)
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, (_dt.datetime, pd.Timestamp)):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC")
        return ts.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _norm(value.item())
    return value


def _column_values(series: pd.Series) -> list[Any]:
    """A column's values normalised as ``_norm`` would, vectorised for the common dtypes
    (a thousand brands' inputs are millions of cells)."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        return series.tolist()
    if pd.api.types.is_float_dtype(series.dtype):
        return [None if v != v else v for v in series.round(9).tolist()]
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC")
        return [None if v is pd.NaT else v.isoformat() for v in utc.tolist()]
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return [None if v is pd.NaT else v.isoformat() for v in series.tolist()]
    return [_norm(v) for v in series.tolist()]


def frame_lines(df: pd.DataFrame | None) -> list[str]:
    """The frame's rows as canonical JSON lines (columns sorted, values normalised), sorted,
    so neither row nor column order changes the fingerprint."""
    if df is None or df.empty:
        return []
    cols = sorted(df.columns)
    values = [_column_values(df[c]) for c in cols]
    header = json.dumps([str(c) for c in cols], separators=(",", ":"))
    lines = [
        json.dumps(list(row), separators=(",", ":"), default=str)
        for row in zip(*values, strict=True)
    ]
    lines.sort()
    return [header, *lines]


def fingerprint(
    section: str, inputs: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> str:
    """sha256 over the section name, the analyzer version and every input frame/value."""
    h = hashlib.sha256()

    def put(text: str) -> None:
        h.update(text.encode())
        h.update(b"\n")

    put(
        json.dumps(
            {"section": section, "version": ANALYZER_VERSION, "extra": _norm(dict(extra or {}))},
            sort_keys=True,
            default=str,
        )
    )
    for name, value in sorted(inputs.items()):
        if isinstance(value, pd.DataFrame):
            lines = frame_lines(value)
            put(f"frame {json.dumps(str(name))} {len(lines)}")
            for line in lines:
                put(line)
        else:
            put(
                f"value {json.dumps(str(name))} "
                + json.dumps(_norm(value), sort_keys=True, default=str)
            )
    return h.hexdigest()
