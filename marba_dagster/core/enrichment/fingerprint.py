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


def frame_records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The frame's rows as normalised dicts, in a stable order (columns and rows sorted)."""
    if df is None or df.empty:
        return []
    cols = sorted(df.columns)
    rows = [{c: _norm(r[c]) for c in cols} for r in df[cols].to_dict("records")]
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return rows


def fingerprint(section: str, inputs: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """sha256 over the section name, the analyzer version and every input frame/value."""
    doc = {
        "section": section,
        "version": ANALYZER_VERSION,
        "inputs": {
            k: frame_records(v) if isinstance(v, pd.DataFrame) else _norm(v)
            for k, v in sorted(inputs.items())
        },
        "extra": _norm(dict(extra or {})),
    }
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
