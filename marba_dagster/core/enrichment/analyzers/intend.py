"""intend: progress on each of the brand's objectives, on track or not, with a linear
projection to its deadline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from marba_dagster.core.enrichment.analyzers.frames import (
    WINDOW_DAYS,
    followers_by_date,
    frame_of,
    rounded,
    to_date,
)
from marba_dagster.core.enrichment.analyzers.result import Frames, InputError, SectionResult

_RATE_METRICS = {
    "engagement_rate": "engagement_rate",
    "click_through_rate": "click_through_rate",
    "ctr": "click_through_rate",
}
_VOLUME_METRICS = ("impressions", "reach", "engagements", "clicks", "posts")


def _metric_series(
    metric: str, platform: str | None, daily: pd.DataFrame, account: pd.DataFrame
) -> pd.Series | None:
    """Daily series of an objective's metric (None if the metric is not tracked)."""
    m = metric.strip().lower()
    d = daily
    if platform and not d.empty:
        d = d[d["platform"] == platform]
    if m in ("followers", "follower_count"):
        return followers_by_date(
            d,
            account[account["platform"] == platform] if platform and not account.empty else account,
        )
    if d.empty:
        return pd.Series(dtype=float) if (m in _RATE_METRICS or m in _VOLUME_METRICS) else None
    per_day = (
        d.assign(dd=d["metric_date"].map(to_date)).groupby("dd").sum(numeric_only=True).sort_index()
    )
    if m in _RATE_METRICS:
        num = "engagements" if _RATE_METRICS[m] == "engagement_rate" else "clicks"
        roll = per_day[[num, "impressions"]].rolling(WINDOW_DAYS, min_periods=1).sum()
        s = roll[num] / roll["impressions"].where(roll["impressions"] > 0)
        return s.dropna()
    if m in _VOLUME_METRICS:
        full = per_day[m].reindex(
            pd.date_range(per_day.index.min(), per_day.index.max()).date, fill_value=0
        )
        return full.rolling(WINDOW_DAYS, min_periods=1).sum().astype(float)
    return None


def analyze_intend(
    brand: Mapping[str, Any],  # noqa: ARG001 (the signature every analyzer has)
    frames: Frames,
    now: datetime,
) -> SectionResult:
    res = SectionResult("intend")
    objectives = frame_of(frames, "objectives")
    daily = frame_of(frames, "daily_metrics")
    account = frame_of(frames, "account_metrics")
    if objectives.empty:
        return res.no_data(
            ["brand_objectives"], "No objectives are set for this brand: add one to track progress."
        )
    today = now.date()
    progress_rows = []
    on_track_count = 0
    for obj in objectives.sort_values(["deadline", "id"]).to_dict("records"):
        metric, target = str(obj["metric"]), obj["target_value"]
        if target is None or not math.isfinite(float(target)):
            raise InputError(
                f"objective {obj['id']}: target_value {target!r} is not a finite number"
            )
        target = float(target)
        deadline = to_date(obj["deadline"])
        start = (
            to_date(obj["start_date"])
            if obj.get("start_date") is not None and not pd.isna(obj.get("start_date"))
            else None
        )
        if start and deadline < start:
            raise InputError(
                f"objective {obj['id']}: deadline {deadline} is before its start date {start}"
            )
        platform = obj.get("platform") if isinstance(obj.get("platform"), str) else None
        label = f"{metric}{' on ' + platform if platform else ''}"
        series = _metric_series(metric, platform, daily, account)
        row: dict[str, Any] = {
            "objective_id": obj["id"],
            "metric": metric,
            "platform": platform,
            "target": rounded(target, 6),
            "deadline": deadline.isoformat(),
        }
        if series is None:
            row["status"] = "untracked"
            res.insight(
                f"Objective: {label}",
                f"'{metric}' is not a metric the analytics track, so progress cannot be measured.",
            )
            res.data_status = "partial"
            progress_rows.append(row)
            continue
        if series.empty:
            row["status"] = "no_data"
            res.insight(
                f"Objective: {label}",
                f"No {metric} data yet: progress towards {target:g} by {deadline} cannot be "
                "measured.",
            )
            res.data_status = "partial"
            progress_rows.append(row)
            continue
        series = series[[d <= today for d in series.index]]
        current = float(series.iloc[-1])
        baseline = obj.get("baseline_value")
        if baseline is None or pd.isna(baseline):
            base_s = series[[d >= start for d in series.index]] if start else series
            baseline = float(base_s.iloc[0]) if len(base_s) else current
        baseline = float(baseline)
        upward = target >= baseline
        span = target - baseline
        progress = 1.0 if span == 0 else (current - baseline) / span
        # Linear projection over the last 30 points to the deadline.
        tail = series.iloc[-WINDOW_DAYS:]
        projected = current
        if len(tail) >= 2:
            x = np.array([(d - tail.index[0]).days for d in tail.index], dtype=float)
            slope, intercept = np.polyfit(x, tail.to_numpy(dtype=float), 1)
            days_ahead = (deadline - tail.index[-1]).days
            projected = float(intercept + slope * (x[-1] + max(days_ahead, 0)))
        reached = current >= target if upward else current <= target
        will_reach = projected >= target if upward else projected <= target
        if deadline < today:
            status = "achieved" if reached else "missed"
        else:
            status = "achieved" if reached else ("on_track" if will_reach else "off_track")
        on_track_count += status in ("achieved", "on_track")
        row.update(
            status=status,
            current=rounded(current, 6),
            baseline=rounded(baseline, 6),
            progress=rounded(progress, 4),
            projected=rounded(projected, 6),
            days_left=(deadline - today).days,
        )
        progress_rows.append(row)
        res.insight(
            f"Objective: {label}",
            f"{metric} is {current:.4g} against a target of {target:g} by {deadline} "
            f"({max(progress, 0) * 100:.0f}% of the way from {baseline:.4g}); at the current "
            "trend it "
            f"reaches {projected:.4g}: {status.replace('_', ' ')}.",
            objective_id=obj["id"],
            status=status,
        )
        if status == "off_track":
            res.recommend(
                f"Act on '{label}': the trend falls short of {target:g} by {deadline}",
                f"Projected {projected:.4g} at the deadline, {abs(target - projected):.4g} short.",
                "high" if (deadline - today).days < 30 else "medium",
                objective_id=obj["id"],
            )
    res.benchmarks = {
        "objectives": progress_rows,
        "on_track": on_track_count,
        "total": len(progress_rows),
    }
    return res
