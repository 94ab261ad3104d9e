"""measure: KPIs (engagement rate, click-through rate, follower growth) against the
brand's industry, with anomalies in the daily engagement rate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from marba_dagster.core.enrichment.analyzers.frames import (
    WINDOW_DAYS,
    followers_by_date,
    frame_of,
    in_window,
    percent,
    percentile_rank,
    ratio,
    rounded,
    to_date,
)
from marba_dagster.core.enrichment.analyzers.result import Frames, SectionResult

MIN_PEERS_FOR_BENCHMARK = 3
ANOMALY_MIN_DAYS = 10
ANOMALY_Z = 3.5


def industry_kpis(daily: pd.DataFrame, today: date) -> pd.DataFrame:
    """Per brand of an industry: engagement rate, CTR and follower growth over the window
    (computed once per industry, not once per brand)."""
    cols = ["engagement_rate", "click_through_rate", "follower_growth"]
    recent = in_window(daily, "metric_date", today, WINDOW_DAYS)
    if recent.empty:
        return pd.DataFrame(columns=cols)
    g = recent.groupby("brand_id")[["engagements", "impressions", "clicks"]].sum().astype(float)
    impr = g["impressions"].where(g["impressions"] > 0)
    out = pd.DataFrame(
        {"engagement_rate": g["engagements"] / impr, "click_through_rate": g["clicks"] / impr}
    )
    f = recent.dropna(subset=["followers"])
    if not f.empty:
        per_day = (
            f.groupby(["brand_id", "metric_date"])["followers"]
            .sum()
            .reset_index()
            .sort_values(["brand_id", "metric_date"])
        )
        agg = per_day.groupby("brand_id")["followers"].agg(["first", "last", "count"]).astype(float)
        growth = (agg["last"] - agg["first"]) / agg["first"].where(
            (agg["first"] > 0) & (agg["count"] >= 2)
        )
        out["follower_growth"] = growth
    else:
        out["follower_growth"] = float("nan")
    return out


def _kpis(daily: pd.DataFrame) -> dict[str, float | None]:
    """Engagement rate and CTR over the rows (totals, not averages of daily rates)."""
    impressions = float(daily["impressions"].sum()) if not daily.empty else 0.0
    return {
        "engagement_rate": ratio(float(daily["engagements"].sum()), impressions)
        if impressions
        else None,
        "click_through_rate": ratio(float(daily["clicks"].sum()), impressions)
        if impressions
        else None,
        "impressions": impressions,
    }


def _growth(series: pd.Series) -> float | None:
    if len(series) < 2 or series.iloc[0] <= 0:
        return None
    return float(series.iloc[-1] - series.iloc[0]) / float(series.iloc[0])


def robust_anomalies(series: pd.Series, z: float = ANOMALY_Z) -> list[tuple[Any, float, float]]:
    """(index, value, robust z) of points whose median/MAD z-score exceeds ``z``."""
    s = series.dropna()
    if len(s) < ANOMALY_MIN_DAYS:
        return []
    med = float(s.median())
    mad = float((s - med).abs().median())
    if mad == 0:
        return []
    scores = 0.6745 * (s - med) / mad
    return [(idx, float(s[idx]), float(scores[idx])) for idx in s.index if abs(scores[idx]) > z]


def analyze_measure(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("measure")
    today = now.date()
    peers_daily = frame_of(frames, "daily_metrics")  # every brand of the same industry
    account = frame_of(frames, "account_metrics")
    posts = frame_of(frames, "posts")
    bid = brand["id"]
    daily = peers_daily[peers_daily["brand_id"] == bid] if not peers_daily.empty else peers_daily
    recent = in_window(daily, "metric_date", today, WINDOW_DAYS)
    acct_recent = in_window(account, "metric_date", today, WINDOW_DAYS)
    if recent.empty and acct_recent.empty:
        return res.no_data(
            ["brand_daily_metrics", "account_metrics"],
            f"No analytics for the last {WINDOW_DAYS} days yet: KPIs appear after the analytics "
            "collector has run.",
        )
    kpis = (
        _kpis(recent)
        if not recent.empty
        else {"engagement_rate": None, "click_through_rate": None, "impressions": 0.0}
    )
    followers = followers_by_date(recent, acct_recent)
    kpis["follower_growth"] = _growth(followers)
    kpis["followers"] = float(followers.iloc[-1]) if len(followers) else None
    n_posts = 0
    if not posts.empty:
        n_posts = int(len(in_window(posts, "published_at", today, WINDOW_DAYS)))
    kpis["posts"] = n_posts

    # Industry percentiles: each peer's KPI over the same window.
    peer_kpis = frames.get("peer_kpis")
    if peer_kpis is None:
        peer_kpis = industry_kpis(peers_daily, today)
    peer_values: dict[str, list[float]] = {
        m: [float(v) for v in peer_kpis[m].dropna()] if m in peer_kpis else []
        for m in ("engagement_rate", "click_through_rate", "follower_growth")
    }
    benchmarks: dict[str, Any] = {"industry": brand.get("industry"), "window_days": WINDOW_DAYS}
    labels = {
        "engagement_rate": "Engagement rate",
        "click_through_rate": "Click-through rate",
        "follower_growth": "Follower growth",
    }
    for metric, label in labels.items():
        value = kpis.get(metric)
        peers = peer_values[metric]
        entry: dict[str, Any] = {"value": rounded(value, 6), "peers": len(peers)}
        if value is None:
            res.insight(label, f"{label}: no data in the last {WINDOW_DAYS} days.", metric=metric)
            benchmarks[metric] = entry
            continue
        if len(peers) >= MIN_PEERS_FOR_BENCHMARK:
            pct = percentile_rank(peers, value)
            entry.update(
                percentile=rounded(pct, 1), industry_median=rounded(float(np.median(peers)), 6)
            )
            detail = (
                f"{label} {percent(value)} over {WINDOW_DAYS} days: {pct:.0f}th percentile of "
                f"{len(peers)} {brand.get('industry')} brands (median "
                f"{percent(float(np.median(peers)))})."
            )
            if pct < 25:
                res.recommend(
                    f"Lift {label.lower()}: it is in the bottom quarter of "
                    f"{brand.get('industry')} brands",
                    f"{label} {percent(value)} against an industry median of "
                    f"{percent(float(np.median(peers)))}.",
                    "high",
                    metric=metric,
                )
        else:
            detail = (
                f"{label} {percent(value)} over {WINDOW_DAYS} days (only {len(peers)} brand(s) in "
                f"{brand.get('industry')} have data: no percentile yet)."
            )
        res.insight(label, detail, metric=metric, value=rounded(value, 6))
        benchmarks[metric] = entry

    # Anomalies in the daily engagement rate (robust z-score over the window).
    anomalies = []
    if not recent.empty:
        per_day = (
            recent.assign(d=recent["metric_date"].map(to_date))
            .groupby("d")[["engagements", "impressions"]]
            .sum()
        )
        per_day = per_day[per_day["impressions"] > 0]
        er = per_day["engagements"] / per_day["impressions"]
        for d, v, z in robust_anomalies(er):
            kind = "spike" if z > 0 else "drop"
            anomalies.append(
                {
                    "date": d.isoformat(),
                    "engagement_rate": rounded(v, 6),
                    "z": rounded(z, 2),
                    "kind": kind,
                }
            )
    benchmarks["anomalies"] = anomalies
    for a in anomalies[:3]:
        res.insight(
            f"Engagement {a['kind']} on {a['date']}",
            f"Engagement rate {percent(a['engagement_rate'])} on {a['date']} is far from the "
            f"brand's usual level (robust z {a['z']}).",
            metric="engagement_rate",
        )
    benchmarks["kpis"] = {k: rounded(v, 6) if isinstance(v, float) else v for k, v in kpis.items()}
    if recent.empty:
        res.data_status, res.missing_inputs = "partial", ["brand_daily_metrics"]
    res.benchmarks = benchmarks
    return res
