"""What the analyzers share: the window they look at, the confidence a pattern needs, and
helpers on frames and numbers (windows, ratios, percentiles, followers over time)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from marba_dagster.core.enrichment.analyzers.result import Frames

CONFIDENCE_THRESHOLD = 0.5
WINDOW_DAYS = 30


def frame_of(frames: Frames, name: str) -> pd.DataFrame:
    df = frames.get(name)
    return df if df is not None else pd.DataFrame()


def percent(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.2f}%"


def rounded(x: float | None, nd: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, nd)


def ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den and den > 0 else None


def to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return pd.Timestamp(v).date()


def utc_times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def percentile_rank(values: list[float], value: float) -> float:
    """Percent of the values below ``value`` (ties count half), 0..100."""
    if not values:
        return float("nan")
    below = sum(1 for v in values if v < value)
    equal = sum(1 for v in values if v == value)
    return 100.0 * (below + 0.5 * equal) / len(values)


def in_window(df: pd.DataFrame, col: str, today: date, days: int) -> pd.DataFrame:
    if df.empty:
        return df
    ts = pd.to_datetime(df[col], utc=True)
    lo = pd.Timestamp(today - timedelta(days=days - 1), tz="UTC")
    hi = pd.Timestamp(today + timedelta(days=1), tz="UTC")
    return df[(ts >= lo) & (ts < hi)]


def followers_by_date(
    daily: pd.DataFrame, account: pd.DataFrame, platform: str | None = None
) -> pd.Series:
    """Total followers per date across platforms (account_metrics first, else daily metrics)."""
    src = account if not account.empty else daily
    if src.empty or "followers" not in src:
        return pd.Series(dtype=float)
    src = src.dropna(subset=["followers"])
    if platform:
        src = src[src["platform"] == platform]
    if src.empty:
        return pd.Series(dtype=float)
    per = (
        src.assign(d=src["metric_date"].map(to_date)).groupby(["d", "platform"])["followers"].last()
    )
    wide = per.unstack("platform").sort_index().ffill()
    return wide.sum(axis=1, min_count=1).dropna().astype(float)


def confident_patterns(patterns: pd.DataFrame) -> pd.DataFrame:
    if patterns.empty:
        return patterns
    return patterns[patterns["confidence"].astype(float) > CONFIDENCE_THRESHOLD]
