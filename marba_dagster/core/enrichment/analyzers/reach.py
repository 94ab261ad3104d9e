"""reach: the channel mix, the best posting times (with their next slot in the brand's
timezone) and the best formats, from the learning patterns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marba_dagster.core.enrichment.analyzers.frames import (
    CONFIDENCE_THRESHOLD,
    WINDOW_DAYS,
    confident_patterns,
    frame_of,
    in_window,
    percent,
    ratio,
    rounded,
)
from marba_dagster.core.enrichment.analyzers.result import Frames, InputError, SectionResult
from marba_dagster.core.learning import WEEKDAYS


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


def analyze_reach(brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    res = SectionResult("reach")
    tz = _tz(brand)
    patterns = frame_of(frames, "patterns")
    daily = in_window(frame_of(frames, "daily_metrics"), "metric_date", now.date(), WINDOW_DAYS)
    if patterns.empty and daily.empty:
        return res.no_data(
            ["learning_patterns", "brand_daily_metrics"],
            "No analytics or learning patterns yet: channel mix and best times appear once they "
            "exist.",
        )
    mix = []
    if not daily.empty:
        per = daily.groupby("platform")[["impressions", "engagements", "posts"]].sum()
        total_impr = float(per["impressions"].sum())
        for platform, row in per.sort_values("impressions", ascending=False).iterrows():
            mix.append(
                {
                    "platform": platform,
                    "share_of_impressions": rounded(ratio(row["impressions"], total_impr), 4),
                    "engagement_rate": rounded(ratio(row["engagements"], row["impressions"]), 6),
                    "posts": int(row["posts"]),
                }
            )
        if mix:
            top = mix[0]
            res.insight(
                "Channel mix",
                "; ".join(
                    f"{m['platform']} {percent(m['share_of_impressions'])} of impressions (ER "
                    f"{percent(m['engagement_rate'])})"
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
                    f"It engages best ({percent(best_er['engagement_rate'])}) but carries only "
                    f"{percent(best_er['share_of_impressions'])} of impressions.",
                    "medium",
                )
    else:
        res.data_status, res.missing_inputs = "partial", ["brand_daily_metrics"]
    good = confident_patterns(patterns)
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
                        "lift": rounded(p["lift"], 3),
                        "confidence": rounded(p["confidence"], 2),
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
                    "lift": rounded(p["lift"], 3),
                    "confidence": rounded(p["confidence"], 2),
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
            f"Patterns exist but none has confidence above {CONFIDENCE_THRESHOLD}: more data is "
            "needed before recommending.",
        )
    res.benchmarks = {
        "channel_mix": mix,
        "best_times": best_times,
        "formats": formats,
        "timezone": str(tz.key),
    }
    return res
