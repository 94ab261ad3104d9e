"""Derived analytics: engagement rate, click-through rate and follower growth.

Definitions (the numbers the app shows and the learning engine learns from):

* **Engagement rate** of a post: ``(likes + comments + shares + saves) / reach``, the common
  industry convention (interactions per person reached). When a platform reports no reach
  (X reports impressions only) the denominator falls back to ``impressions``; with neither,
  the rate is undefined (``None``/NaN), never zero. For a brand, platform and day, the rate
  is the same ratio over the sums of the day's posts (a reach-weighted mean, so one tiny
  post cannot swing it).
* **Click-through rate**: ``clicks / impressions`` (undefined without impressions).
* **Follower growth over n days** (n = 1, 7, 30): ``(followers_d - followers_{d-n}) /
  followers_{d-n}`` as a fraction (0.05 = +5 %), undefined when the earlier count is missing
  or zero.

Pure logic: pandas in, pandas out.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

ENGAGEMENT_COLUMNS = ("likes", "comments", "shares", "saves")
COUNT_COLUMNS = (
    "impressions",
    "reach",
    "likes",
    "comments",
    "shares",
    "saves",
    "clicks",
    "video_views",
)
GROWTH_WINDOWS = (1, 7, 30)


def engagement_rate(
    likes: int, comments: int, shares: int, saves: int, reach: int, impressions: int
) -> float | None:
    """(likes+comments+shares+saves)/reach, falling back to impressions; None if neither."""
    denom = reach if reach and reach > 0 else impressions
    if not denom or denom <= 0:
        return None
    return (likes + comments + shares + saves) / denom


def add_engagement_rate(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``engagements`` and ``engagement_rate`` columns (NaN where undefined)."""
    out = df.copy()
    eng = np.zeros(len(out), dtype="float64")
    for c in ENGAGEMENT_COLUMNS:
        eng += pd.to_numeric(out[c], errors="coerce").fillna(0).to_numpy(dtype="float64")
    reach = pd.to_numeric(out["reach"], errors="coerce").fillna(0).to_numpy(dtype="float64")
    impr = pd.to_numeric(out["impressions"], errors="coerce").fillna(0).to_numpy(dtype="float64")
    denom = np.where(reach > 0, reach, impr)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["engagement_rate"] = np.where(denom > 0, eng / denom, np.nan)
    out["engagements"] = eng
    return out


def daily_brand_metrics(
    posts: pd.DataFrame, followers: pd.DataFrame, days: list[date]
) -> pd.DataFrame:
    """``brand_daily_metrics`` rows for ``days``.

    ``posts``: brand_id, platform, published_at (UTC), and the latest snapshot of each post's
    counts (``COUNT_COLUMNS``); a post counts for the UTC day it was published.
    ``followers``: brand_id, platform, metric_date, followers (history including at least 30
    days before the first day, for growth). One row per (brand, platform, day) that has posts
    or a follower count.
    """
    cols = [
        "brand_id",
        "platform",
        "metric_date",
        "posts",
        "impressions",
        "reach",
        "engagements",
        "clicks",
        "engagement_rate",
        "click_through_rate",
        "followers",
        "follower_growth_1d",
        "follower_growth_7d",
        "follower_growth_30d",
    ]
    wanted = set(days)
    frames = []
    if not posts.empty:
        p = add_engagement_rate(posts)
        p["metric_date"] = pd.to_datetime(p["published_at"], utc=True).dt.date
        p = p[p["metric_date"].isin(wanted)]
        if not p.empty:
            for c in ("impressions", "reach", "clicks"):
                p[c] = pd.to_numeric(p[c], errors="coerce").fillna(0)
            # Reach-weighted daily rate: sum of engagements over the sum of denominators.
            p["denom"] = np.where(p["reach"] > 0, p["reach"], p["impressions"])
            g = p.groupby(["brand_id", "platform", "metric_date"], as_index=False).agg(
                posts=("published_at", "size"),
                impressions=("impressions", "sum"),
                reach=("reach", "sum"),
                engagements=("engagements", "sum"),
                clicks=("clicks", "sum"),
                denom=("denom", "sum"),
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                g["engagement_rate"] = np.where(
                    g["denom"] > 0, g["engagements"] / g["denom"], np.nan
                )
                g["click_through_rate"] = np.where(
                    g["impressions"] > 0, g["clicks"] / g["impressions"], np.nan
                )
            frames.append(g.drop(columns=["denom"]))
    metrics = (
        pd.concat(frames)
        if frames
        else pd.DataFrame(columns=["brand_id", "platform", "metric_date"])
    )

    fol = _follower_growth(followers, wanted)
    if metrics.empty and fol.empty:
        return pd.DataFrame(columns=cols)
    merged = metrics.merge(fol, on=["brand_id", "platform", "metric_date"], how="outer")
    for c in ("posts", "impressions", "reach", "engagements", "clicks"):
        if c not in merged.columns:
            merged[c] = 0
        merged[c] = pd.to_numeric(merged[c], errors="coerce").fillna(0).astype("int64")
    for c in cols:
        if c not in merged.columns:
            merged[c] = np.nan
    return merged[cols].sort_values(["brand_id", "platform", "metric_date"]).reset_index(drop=True)


def _follower_growth(followers: pd.DataFrame, wanted: set[date]) -> pd.DataFrame:
    out_cols = ["brand_id", "platform", "metric_date", "followers"] + [
        f"follower_growth_{n}d" for n in GROWTH_WINDOWS
    ]
    if followers.empty:
        return pd.DataFrame(columns=out_cols)
    f = followers[["brand_id", "platform", "metric_date", "followers"]].copy()
    f["metric_date"] = pd.to_datetime(f["metric_date"]).dt.date
    lookup = {(b, p, d): v for b, p, d, v in f.itertuples(index=False)}
    rows = []
    for b, p, d, v in f.itertuples(index=False):
        if d not in wanted:
            continue
        row = {"brand_id": b, "platform": p, "metric_date": d, "followers": int(v)}
        for n in GROWTH_WINDOWS:
            before = lookup.get((b, p, d - timedelta(days=n)))
            row[f"follower_growth_{n}d"] = (
                (v - before) / before if before not in (None, 0) else np.nan
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=out_cols)


def quality_problems(daily: pd.DataFrame) -> list[str]:
    """Rates outside their bounds (engagement rate and CTR in [0, 1], growth >= -100 %)."""
    problems = []
    if daily.empty:
        return problems
    for c, lo, hi in (("engagement_rate", 0.0, 1.0), ("click_through_rate", 0.0, 1.0)):
        v = pd.to_numeric(daily[c], errors="coerce")
        bad = daily[(v < lo) | (v > hi)]
        if len(bad):
            problems.append(f"{len(bad)} rows with {c} outside [{lo:g}, {hi:g}]")
    for n in GROWTH_WINDOWS:
        c = f"follower_growth_{n}d"
        v = pd.to_numeric(daily[c], errors="coerce")
        bad = daily[v < -1.0]
        if len(bad):
            problems.append(f"{len(bad)} rows with {c} below -100%")
    return problems
