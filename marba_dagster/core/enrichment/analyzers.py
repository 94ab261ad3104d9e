"""The built-in analyzer: what each MIRROR section says, computed from the data alone.

Each ``analyze_<section>(brand, frames, now)`` takes the brand (a dict with at least ``id``,
``industry``, ``timezone``) and the input frames loaded for that section, and returns a
:class:`SectionResult`. Deterministic: the same frames and ``now`` give the same result.
A section whose inputs do not exist says so (``data_status="no_data"``) instead of
inventing content. Inputs that cannot be right (a non-finite target, an unknown timezone)
raise :class:`InputError`: the brand fails for that section and the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from marba_dagster.core.learning import WEEKDAYS

Frames = Mapping[str, pd.DataFrame]

CONFIDENCE_THRESHOLD = 0.5
WINDOW_DAYS = 30
MIN_PEERS_FOR_BENCHMARK = 3
ANOMALY_MIN_DAYS = 10
ANOMALY_Z = 3.5
OPEN_INBOX_EXCLUDED = frozenset(
    {"resolved", "replied", "archived", "dismissed", "done", "closed", "ignored"}
)

# Inputs each section reads (the engine loads them; fingerprints cover exactly these).
SECTION_INPUTS: dict[str, tuple[str, ...]] = {
    "measure": ("daily_metrics", "account_metrics", "posts"),
    "intend": ("objectives", "daily_metrics", "account_metrics"),
    "reimagine": ("competitors", "gaps", "competitor_signals"),
    "reach": ("patterns", "daily_metrics"),
    "optimize": ("patterns", "post_performance"),
    "reflect": ("inbox", "opportunities"),
}


class InputError(ValueError):
    """A brand's input data is inconsistent: the section cannot be computed for it."""


@dataclass
class SectionResult:
    section: str
    insights: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    benchmarks: dict[str, Any] = field(default_factory=dict)
    data_status: str = "ok"  # ok | partial | no_data
    missing_inputs: list[str] = field(default_factory=list)

    def insight(self, title: str, detail: str, **extra: Any) -> None:
        self.insights.append({"title": title, "detail": detail, **extra})

    def recommend(
        self, action: str, rationale: str, priority: str = "medium", **extra: Any
    ) -> None:
        self.recommendations.append(
            {"action": action, "rationale": rationale, "priority": priority, **extra}
        )

    def no_data(self, missing: list[str], message: str) -> SectionResult:
        self.data_status = "no_data"
        self.missing_inputs = missing
        self.insights = [{"title": "Not enough data yet", "detail": message}]
        self.recommendations = []
        return self

    def payload(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "summary": self.insights[0]["detail"] if self.insights else "",
            "insights": self.insights,
            "recommendations": self.recommendations,
            "benchmarks": self.benchmarks,
            "data_status": self.data_status,
            "missing_inputs": self.missing_inputs,
        }


# ----------------------------------------------------------------------------- helpers


def _frame(frames: Frames, name: str) -> pd.DataFrame:
    df = frames.get(name)
    return df if df is not None else pd.DataFrame()


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.2f}%"


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, nd)


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den and den > 0 else None


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return pd.Timestamp(v).date()


def _ts(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def percentile_rank(values: list[float], value: float) -> float:
    """Percent of the values below ``value`` (ties count half), 0..100."""
    if not values:
        return float("nan")
    below = sum(1 for v in values if v < value)
    equal = sum(1 for v in values if v == value)
    return 100.0 * (below + 0.5 * equal) / len(values)


def _window(df: pd.DataFrame, col: str, today: date, days: int) -> pd.DataFrame:
    if df.empty:
        return df
    ts = pd.to_datetime(df[col], utc=True)
    lo = pd.Timestamp(today - timedelta(days=days - 1), tz="UTC")
    hi = pd.Timestamp(today + timedelta(days=1), tz="UTC")
    return df[(ts >= lo) & (ts < hi)]


def industry_kpis(daily: pd.DataFrame, today: date) -> pd.DataFrame:
    """Per brand of an industry: engagement rate, CTR and follower growth over the window
    (computed once per industry, not once per brand)."""
    cols = ["engagement_rate", "click_through_rate", "follower_growth"]
    recent = _window(daily, "metric_date", today, WINDOW_DAYS)
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
        "engagement_rate": _ratio(float(daily["engagements"].sum()), impressions)
        if impressions
        else None,
        "click_through_rate": _ratio(float(daily["clicks"].sum()), impressions)
        if impressions
        else None,
        "impressions": impressions,
    }


def _followers_by_date(
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
        src.assign(d=src["metric_date"].map(_to_date))
        .groupby(["d", "platform"])["followers"]
        .last()
    )
    wide = per.unstack("platform").sort_index().ffill()
    return wide.sum(axis=1, min_count=1).dropna().astype(float)


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


# ----------------------------------------------------------------------------- measure


def analyze_measure(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("measure")
    today = now.date()
    peers_daily = _frame(frames, "daily_metrics")  # every brand of the same industry
    account = _frame(frames, "account_metrics")
    posts = _frame(frames, "posts")
    bid = brand["id"]
    daily = peers_daily[peers_daily["brand_id"] == bid] if not peers_daily.empty else peers_daily
    recent = _window(daily, "metric_date", today, WINDOW_DAYS)
    acct_recent = _window(account, "metric_date", today, WINDOW_DAYS)
    if recent.empty and acct_recent.empty:
        return res.no_data(
            ["brand_daily_metrics", "account_metrics"],
            f"No analytics for the last {WINDOW_DAYS} days yet: KPIs appear after the analytics collector has run.",
        )
    kpis = (
        _kpis(recent)
        if not recent.empty
        else {"engagement_rate": None, "click_through_rate": None, "impressions": 0.0}
    )
    followers = _followers_by_date(recent, acct_recent)
    kpis["follower_growth"] = _growth(followers)
    kpis["followers"] = float(followers.iloc[-1]) if len(followers) else None
    n_posts = 0
    if not posts.empty:
        n_posts = int(len(_window(posts, "published_at", today, WINDOW_DAYS)))
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
        entry: dict[str, Any] = {"value": _r(value, 6), "peers": len(peers)}
        if value is None:
            res.insight(label, f"{label}: no data in the last {WINDOW_DAYS} days.", metric=metric)
            benchmarks[metric] = entry
            continue
        if len(peers) >= MIN_PEERS_FOR_BENCHMARK:
            pct = percentile_rank(peers, value)
            entry.update(percentile=_r(pct, 1), industry_median=_r(float(np.median(peers)), 6))
            detail = (
                f"{label} {_pct(value)} over {WINDOW_DAYS} days: {pct:.0f}th percentile of "
                f"{len(peers)} {brand.get('industry')} brands (median {_pct(float(np.median(peers)))})."
            )
            if pct < 25:
                res.recommend(
                    f"Lift {label.lower()}: it is in the bottom quarter of {brand.get('industry')} brands",
                    f"{label} {_pct(value)} against an industry median of {_pct(float(np.median(peers)))}.",
                    "high",
                    metric=metric,
                )
        else:
            detail = (
                f"{label} {_pct(value)} over {WINDOW_DAYS} days (only {len(peers)} brand(s) in "
                f"{brand.get('industry')} have data: no percentile yet)."
            )
        res.insight(label, detail, metric=metric, value=_r(value, 6))
        benchmarks[metric] = entry

    # Anomalies in the daily engagement rate (robust z-score over the window).
    anomalies = []
    if not recent.empty:
        per_day = (
            recent.assign(d=recent["metric_date"].map(_to_date))
            .groupby("d")[["engagements", "impressions"]]
            .sum()
        )
        per_day = per_day[per_day["impressions"] > 0]
        er = per_day["engagements"] / per_day["impressions"]
        for d, v, z in robust_anomalies(er):
            kind = "spike" if z > 0 else "drop"
            anomalies.append(
                {"date": d.isoformat(), "engagement_rate": _r(v, 6), "z": _r(z, 2), "kind": kind}
            )
    benchmarks["anomalies"] = anomalies
    for a in anomalies[:3]:
        res.insight(
            f"Engagement {a['kind']} on {a['date']}",
            f"Engagement rate {_pct(a['engagement_rate'])} on {a['date']} is far from the brand's usual level (robust z {a['z']}).",
            metric="engagement_rate",
        )
    benchmarks["kpis"] = {k: _r(v, 6) if isinstance(v, float) else v for k, v in kpis.items()}
    if recent.empty:
        res.data_status, res.missing_inputs = "partial", ["brand_daily_metrics"]
    res.benchmarks = benchmarks
    return res


# ------------------------------------------------------------------------------ intend

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
        return _followers_by_date(
            d,
            account[account["platform"] == platform] if platform and not account.empty else account,
        )
    if d.empty:
        return pd.Series(dtype=float) if (m in _RATE_METRICS or m in _VOLUME_METRICS) else None
    per_day = (
        d.assign(dd=d["metric_date"].map(_to_date))
        .groupby("dd")
        .sum(numeric_only=True)
        .sort_index()
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


def analyze_intend(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("intend")
    objectives = _frame(frames, "objectives")
    daily = _frame(frames, "daily_metrics")
    account = _frame(frames, "account_metrics")
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
        deadline = _to_date(obj["deadline"])
        start = (
            _to_date(obj["start_date"])
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
            "target": _r(target, 6),
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
                f"No {metric} data yet: progress towards {target:g} by {deadline} cannot be measured.",
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
            current=_r(current, 6),
            baseline=_r(baseline, 6),
            progress=_r(progress, 4),
            projected=_r(projected, 6),
            days_left=(deadline - today).days,
        )
        progress_rows.append(row)
        res.insight(
            f"Objective: {label}",
            f"{metric} is {current:.4g} against a target of {target:g} by {deadline} "
            f"({max(progress, 0) * 100:.0f}% of the way from {baseline:.4g}); at the current trend it "
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


# --------------------------------------------------------------------------- reimagine


def _priority(score: float) -> str:
    return "high" if score >= 0.7 else ("medium" if score >= 0.4 else "low")


def analyze_reimagine(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("reimagine")
    competitors = _frame(frames, "competitors")
    gaps = _frame(frames, "gaps")
    signals = _frame(frames, "competitor_signals")
    if competitors.empty:
        return res.no_data(
            ["competitors"],
            "No competitors are configured for this brand: add some to see positioning and gaps.",
        )
    active = (
        competitors[competitors["is_active"].astype(bool)]
        if "is_active" in competitors
        else competitors
    )
    names = dict(zip(competitors["id"], competitors["name"]))
    activity: dict[str, dict[str, int]] = {}
    recent_moves = []
    if not signals.empty:
        for sig in signals.sort_values(["observed_at", "id"], ascending=[False, True]).to_dict(
            "records"
        ):
            payload = sig.get("payload") if isinstance(sig.get("payload"), dict) else {}
            comp = (
                payload.get("competitor_name")
                or names.get(payload.get("competitor_id"))
                or sig.get("source")
                or "unknown"
            )
            change = payload.get("change_type") or "other"
            activity.setdefault(comp, {}).setdefault(change, 0)
            activity[comp][change] += 1
            if len(recent_moves) < 10:
                recent_moves.append(
                    {
                        "competitor": comp,
                        "change_type": change,
                        "title": sig["title"],
                        "observed_at": pd.Timestamp(sig["observed_at"]).isoformat(),
                        "strength": _r(sig.get("strength"), 3),
                    }
                )
    unreachable = []
    if "reachability" in active:
        unreachable = sorted(active.loc[active["reachability"] != "ok", "name"].tolist())
    most_active = sorted(activity.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if most_active:
        comp, counts = most_active[0]
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        res.insight(
            "Most active competitor",
            f"{comp} made the most moves in the last {WINDOW_DAYS} days ({detail}).",
        )
    else:
        res.insight(
            "Competitor activity",
            f"No competitor moves were recorded in the last {WINDOW_DAYS} days across {len(active)} watched competitor(s).",
        )
    pricing = [m for m in recent_moves if m["change_type"] == "pricing_change"]
    if pricing:
        res.insight(
            "Pricing moves",
            f"{len(pricing)} competitor pricing change(s), latest: {pricing[0]['title']} ({pricing[0]['competitor']}).",
        )
        res.recommend(
            "Review your pricing message against the competitor price moves",
            f"{len(pricing)} pricing change(s) in the last {WINDOW_DAYS} days.",
            "high",
        )
    open_gaps = gaps[gaps["status"] == "open"] if not gaps.empty and "status" in gaps else gaps
    gap_rows = []
    if not open_gaps.empty:
        for g in (
            open_gaps.sort_values(["score", "gap_key"], ascending=[False, True])
            .head(5)
            .to_dict("records")
        ):
            gap_rows.append(
                {"gap_type": g["gap_type"], "gap_key": g["gap_key"], "score": _r(g["score"], 3)}
            )
            res.recommend(
                f"Close the {g['gap_type']} gap: {g['gap_key']}",
                f"Competitors cover '{g['gap_key']}' and the brand does not (gap score {float(g['score']):.2f}).",
                _priority(float(g["score"])),
                gap_type=g["gap_type"],
                gap_key=g["gap_key"],
            )
        res.insight(
            "Competitive gaps",
            f"{len(open_gaps)} open gap(s); the largest is {gap_rows[0]['gap_type']} '{gap_rows[0]['gap_key']}'.",
        )
    else:
        res.insight("Competitive gaps", "No open competitive gaps were found.")
        if gaps.empty:
            res.data_status, res.missing_inputs = "partial", ["competitive_gaps"]
    if unreachable:
        res.insight(
            "Unreachable competitors", f"Could not be monitored recently: {', '.join(unreachable)}."
        )
    res.benchmarks = {
        "competitors": int(len(active)),
        "activity": {k: v for k, v in most_active},
        "recent_moves": recent_moves,
        "gaps": gap_rows,
        "unreachable": unreachable,
    }
    return res


# ------------------------------------------------------------------------------- reach


def _tz(brand: Mapping[str, Any]) -> ZoneInfo:
    name = brand.get("timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"brand timezone {name!r} is not a valid IANA timezone") from exc


def next_slot(pattern_key: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The next local occurrence of a best-time key (``18`` or ``tue-18``), in UTC."""
    day, _, hour = pattern_key.rpartition("-")
    if not hour.isdigit() or not 0 <= int(hour) <= 23 or (day and day not in WEEKDAYS):
        return None
    local = now.astimezone(tz)
    for ahead in range(0, 8):
        cand_date = (local + timedelta(days=ahead)).date()
        if day and WEEKDAYS[cand_date.weekday()] != day:
            continue
        cand = datetime(cand_date.year, cand_date.month, cand_date.day, int(hour), tzinfo=tz)
        if cand > local:
            return cand.astimezone(now.tzinfo)
    return None


def _confident(patterns: pd.DataFrame) -> pd.DataFrame:
    if patterns.empty:
        return patterns
    return patterns[patterns["confidence"].astype(float) > CONFIDENCE_THRESHOLD]


def analyze_reach(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("reach")
    tz = _tz(brand)
    patterns = _frame(frames, "patterns")
    daily = _window(_frame(frames, "daily_metrics"), "metric_date", now.date(), WINDOW_DAYS)
    if patterns.empty and daily.empty:
        return res.no_data(
            ["learning_patterns", "brand_daily_metrics"],
            "No analytics or learning patterns yet: channel mix and best times appear once they exist.",
        )
    mix = []
    if not daily.empty:
        per = daily.groupby("platform")[["impressions", "engagements", "posts"]].sum()
        total_impr = float(per["impressions"].sum())
        for platform, row in per.sort_values("impressions", ascending=False).iterrows():
            mix.append(
                {
                    "platform": platform,
                    "share_of_impressions": _r(_ratio(row["impressions"], total_impr), 4),
                    "engagement_rate": _r(_ratio(row["engagements"], row["impressions"]), 6),
                    "posts": int(row["posts"]),
                }
            )
        if mix:
            top = mix[0]
            res.insight(
                "Channel mix",
                "; ".join(
                    f"{m['platform']} {_pct(m['share_of_impressions'])} of impressions (ER {_pct(m['engagement_rate'])})"
                    for m in mix
                ),
            )
            best_er = max(
                (m for m in mix if m["engagement_rate"] is not None),
                key=lambda m: m["engagement_rate"],
                default=None,
            )
            if best_er and best_er["platform"] != top["platform"] and len(mix) > 1:
                res.recommend(
                    f"Shift more posts to {best_er['platform']}",
                    f"It engages best ({_pct(best_er['engagement_rate'])}) but carries only {_pct(best_er['share_of_impressions'])} of impressions.",
                    "medium",
                )
    else:
        res.data_status, res.missing_inputs = "partial", ["brand_daily_metrics"]
    good = _confident(patterns)
    best_times, formats = [], []
    if not good.empty:
        for platform, rows in good[good["pattern_type"] == "best_posting_time"].groupby("platform"):
            for p in (
                rows.sort_values(["lift", "pattern_key"], ascending=[False, True])
                .head(3)
                .to_dict("records")
            ):
                slot = next_slot(str(p["pattern_key"]), tz, now)
                best_times.append(
                    {
                        "platform": platform,
                        "key": p["pattern_key"],
                        "lift": _r(p["lift"], 3),
                        "confidence": _r(p["confidence"], 2),
                        "next_slot_utc": slot.isoformat() if slot else None,
                    }
                )
        for p in (
            good[good["pattern_type"] == "content_format"]
            .sort_values(["lift", "pattern_key"], ascending=[False, True])
            .head(5)
            .to_dict("records")
        ):
            formats.append(
                {
                    "platform": p["platform"],
                    "format": p["pattern_key"],
                    "lift": _r(p["lift"], 3),
                    "confidence": _r(p["confidence"], 2),
                }
            )
    for platform in sorted({b["platform"] for b in best_times}):
        keys = [b for b in best_times if b["platform"] == platform]
        res.insight(
            f"Best times on {platform}",
            ", ".join(f"{b['key']}h local (x{b['lift']:.2f})" for b in keys)
            + f" ({brand.get('timezone') or 'UTC'}).",
        )
        b = keys[0]
        res.recommend(
            f"Schedule {platform} posts at {b['key']}h local time",
            f"Posts then do {b['lift']:.2f}x the brand's baseline (confidence {b['confidence']}).",
            "high" if b["lift"] >= 1.3 else "medium",
            confidence=b["confidence"],
        )
    if formats:
        f = formats[0]
        res.insight(
            "Best formats",
            ", ".join(f"{x['format']} on {x['platform']} (x{x['lift']:.2f})" for x in formats),
        )
        res.recommend(
            f"Use more {f['format']} posts on {f['platform']}",
            f"{f['format']} does {f['lift']:.2f}x the baseline (confidence {f['confidence']}).",
            "medium",
            confidence=f["confidence"],
        )
    if patterns.empty:
        res.insight(
            "Best times and formats",
            "No learning patterns yet: the learning engine needs more published posts.",
        )
        res.data_status, res.missing_inputs = (
            "partial",
            sorted(set(res.missing_inputs) | {"learning_patterns"}),
        )
    elif good.empty:
        res.insight(
            "Best times and formats",
            f"Patterns exist but none has confidence above {CONFIDENCE_THRESHOLD}: more data is needed before recommending.",
        )
    res.benchmarks = {
        "channel_mix": mix,
        "best_times": best_times,
        "formats": formats,
        "timezone": str(tz.key),
    }
    return res


# ---------------------------------------------------------------------------- optimize


def analyze_optimize(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("optimize")
    patterns = _frame(frames, "patterns")
    perf = _frame(frames, "post_performance")  # one row per post: latest metrics
    if patterns.empty and perf.empty:
        return res.no_data(
            ["learning_patterns", "content_posts"],
            "No published posts with metrics and no learning patterns yet: nothing to optimise from.",
        )
    top, bottom = [], []
    if not perf.empty:
        p = perf[perf["impressions"] > 0].copy()
        p["engagements"] = p[["likes", "comments", "shares", "saves"]].sum(axis=1)
        p["engagement_rate"] = p["engagements"] / p["impressions"]
        p = p.sort_values(["engagement_rate", "id"], ascending=[False, True])
        cols = ["id", "platform", "format", "engagement_rate", "impressions", "body"]

        def rows(df):
            return [
                {
                    "post_id": r["id"],
                    "platform": r["platform"],
                    "format": r["format"],
                    "engagement_rate": _r(r["engagement_rate"], 6),
                    "impressions": int(r["impressions"]),
                    "excerpt": str(r["body"] or "")[:80],
                }
                for r in df[cols].to_dict("records")
            ]

        n = min(3, len(p) // 2) if len(p) >= 2 else len(p)
        top = rows(p.head(n))
        bottom = rows(p.tail(n).iloc[::-1]) if len(p) >= 2 else []
        if top:
            t = top[0]
            res.insight(
                "Best content",
                f"Top post: {t['format']} on {t['platform']} at {_pct(t['engagement_rate'])} engagement ('{t['excerpt']}').",
            )
        if bottom:
            b = bottom[0]
            res.insight(
                "Weakest content",
                f"Weakest post: {b['format']} on {b['platform']} at {_pct(b['engagement_rate'])} engagement ('{b['excerpt']}').",
            )
        if not top:
            res.insight("Content", "Posts have no impressions yet: no ranking possible.")
    else:
        res.data_status, res.missing_inputs = "partial", ["content_posts"]
    good = _confident(patterns)
    pattern_recs = []
    if not good.empty:
        good = good.sort_values(
            ["confidence", "lift", "pattern_type", "pattern_key"],
            ascending=[False, False, True, True],
        )
        verbs = {
            "best_posting_time": "Post at {k}h local time",
            "content_format": "Use the {k} format",
            "topic": "Post about {k}",
            "power_word": "Use the word '{k}'",
            "hashtag": "Use {k}",
        }
        for pr in good.to_dict("records"):
            lift = float(pr["lift"])
            if lift <= 1.0:
                continue  # a pattern that does worse than baseline is not a recommendation
            action = (
                verbs.get(pr["pattern_type"], "Use {k}").format(k=pr["pattern_key"])
                + f" on {pr['platform']}"
            )
            pattern_recs.append(
                {
                    "pattern_type": pr["pattern_type"],
                    "key": pr["pattern_key"],
                    "platform": pr["platform"],
                    "lift": _r(lift, 3),
                    "confidence": _r(pr["confidence"], 2),
                    "data_points": int(pr["data_points"]),
                }
            )
            res.recommend(
                action,
                f"{lift:.2f}x the brand's baseline over {int(pr['data_points'])} posts.",
                "high" if lift >= 1.3 and float(pr["confidence"]) >= 0.7 else "medium",
                confidence=_r(pr["confidence"], 2),
            )
            if len(pattern_recs) >= 8:
                break
    if patterns.empty:
        res.insight(
            "Recommendations", "No learning patterns yet, so no data-backed recommendations."
        )
        res.data_status, res.missing_inputs = (
            "partial",
            sorted(set(res.missing_inputs) | {"learning_patterns"}),
        )
    elif not pattern_recs:
        res.insight(
            "Recommendations",
            f"No pattern has confidence above {CONFIDENCE_THRESHOLD} and a lift over the baseline yet.",
        )
    res.benchmarks = {"top_posts": top, "bottom_posts": bottom, "patterns_used": pattern_recs}
    return res


# ----------------------------------------------------------------------------- reflect


def analyze_reflect(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("reflect")
    inbox = _frame(frames, "inbox")
    opps = _frame(frames, "opportunities")
    if inbox.empty and opps.empty:
        return res.no_data(
            ["engagement_inbox", "intelligence_opportunities"],
            "No engagement collected and no opportunities detected yet.",
        )
    trend: dict[str, Any] = {}
    urgent = []
    if not inbox.empty:
        ib = inbox.assign(received=_ts(inbox["received_at"]))
        scored = ib.dropna(subset=["sentiment_score"])
        last7 = scored[scored["received"] > now - timedelta(days=7)]["sentiment_score"].astype(
            float
        )
        prev7 = scored[
            (scored["received"] <= now - timedelta(days=7))
            & (scored["received"] > now - timedelta(days=14))
        ]["sentiment_score"].astype(float)
        weekly = []
        for w in range(3, -1, -1):
            lo, hi = now - timedelta(days=7 * (w + 1)), now - timedelta(days=7 * w)
            s = scored[(scored["received"] > lo) & (scored["received"] <= hi)][
                "sentiment_score"
            ].astype(float)
            weekly.append(
                {
                    "week_ending": hi.date().isoformat(),
                    "mean": _r(s.mean(), 3) if len(s) else None,
                    "items": int(len(s)),
                }
            )
        cur, prev = (
            (float(last7.mean()) if len(last7) else None),
            (float(prev7.mean()) if len(prev7) else None),
        )
        direction = "unknown"
        if cur is not None and prev is not None:
            direction = (
                "improving"
                if cur - prev > 0.05
                else ("declining" if prev - cur > 0.05 else "stable")
            )
        labels = (
            ib["sentiment_label"].dropna().value_counts().to_dict()
            if "sentiment_label" in ib
            else {}
        )
        trend = {
            "last_7d": _r(cur, 3),
            "previous_7d": _r(prev, 3),
            "direction": direction,
            "weekly": weekly,
            "labels": {str(k): int(v) for k, v in sorted(labels.items())},
            "items": int(len(ib)),
        }
        if cur is None:
            res.insight("Sentiment", "No scored engagement in the last 7 days.")
        else:
            res.insight(
                "Sentiment trend",
                f"Average sentiment {cur:+.2f} over the last 7 days"
                + (
                    f" against {prev:+.2f} the week before: {direction}."
                    if prev is not None
                    else "."
                ),
            )
        if direction == "declining":
            res.recommend(
                "Look into what drives the negative turn in sentiment",
                f"Sentiment fell from {prev:+.2f} to {cur:+.2f} week on week.",
                "high",
            )
        open_mask = ~ib["status"].astype(str).str.lower().isin(OPEN_INBOX_EXCLUDED)
        urg = ib[(ib["priority"] == "urgent") & open_mask]
        urg = (
            urg.sort_values(["priority_score", "received"], ascending=[False, False])
            if "priority_score" in urg
            else urg
        )
        for it in urg.head(5).to_dict("records"):
            urgent.append(
                {
                    "platform": it["platform"],
                    "item_type": it["item_type"],
                    "author": it.get("author"),
                    "received_at": it["received"].isoformat(),
                    "excerpt": str(it.get("body") or "")[:120],
                }
            )
        if len(urg):
            res.insight(
                "Urgent inbox items",
                f"{len(urg)} urgent item(s) wait for an answer; the oldest arrived {urg['received'].min().isoformat()}.",
            )
            res.recommend(
                f"Answer the {len(urg)} urgent inbox item(s)",
                "Urgent items are complaints, crises or high-reach mentions.",
                "high",
            )
        else:
            res.insight("Urgent inbox items", "No urgent item is waiting.")
    else:
        res.data_status, res.missing_inputs = "partial", ["engagement_inbox"]
    active = []
    if not opps.empty:
        o = opps[opps["status"] == "active"].copy()
        if not o.empty:
            exp = _ts(o["expires_at"]) if "expires_at" in o else None
            if exp is not None:
                o = o[exp.isna() | (exp > now)]
            o = o.sort_values(["score", "id"], ascending=[False, True])
            for it in o.head(5).to_dict("records"):
                active.append(
                    {
                        "title": it["title"],
                        "type": it["opportunity_type"],
                        "urgency": it["urgency"],
                        "score": _r(it["score"], 3),
                        "expires_at": pd.Timestamp(it["expires_at"]).isoformat()
                        if it.get("expires_at") is not None and not pd.isna(it.get("expires_at"))
                        else None,
                    }
                )
        if active:
            res.insight(
                "Active opportunities",
                f"{len(o)} active; best: {active[0]['title']} ({active[0]['urgency']}, score {active[0]['score']}).",
            )
            for a in active[:3]:
                res.recommend(
                    f"Act on: {a['title']}",
                    f"{a['type'].replace('_', ' ')} opportunity, urgency {a['urgency']}.",
                    "high" if a["urgency"] in ("critical", "high") else "medium",
                )
        else:
            res.insight("Active opportunities", "No active opportunity right now.")
    else:
        res.insight("Active opportunities", "No opportunities detected yet.")
        if res.data_status == "ok":
            res.data_status, res.missing_inputs = "partial", ["intelligence_opportunities"]
    res.benchmarks = {"sentiment": trend, "urgent_items": urgent, "opportunities": active}
    return res


ANALYZERS: dict[str, Callable[[Mapping[str, Any], Frames, datetime], SectionResult]] = {
    "measure": analyze_measure,
    "intend": analyze_intend,
    "reimagine": analyze_reimagine,
    "reach": analyze_reach,
    "optimize": analyze_optimize,
    "reflect": analyze_reflect,
}


def analyze(section: str, brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    return ANALYZERS[section](brand, frames, now)
