"""Generated posts with planted effects, shared by the learning tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

FORMATS = ("text", "image", "video", "carousel")
TAGS = ("#coffee", "#morning", "#local", "#weekend", "#summer", "#team")
FILLER = ("our", "menu", "this", "week", "come", "visit", "team", "fresh", "beans", "roast")


def planted_posts(
    brand_id: str,
    platform: str,
    tz: str,
    n: int,
    *,
    seed: int = 0,
    hot_local_hour: int | None = 18,
    hot_utc_hour: int | None = None,
    hot_format: str | None = "video",
    hot_tag: str | None = "#summer",
    hour_effect: float = 2.0,
    format_effect: float = 1.5,
    tag_effect: float = 1.8,
    hours: tuple[int, ...] = tuple(range(8, 22)),
    start: datetime = datetime(2025, 6, 1, tzinfo=timezone.utc),
    days: int = 90,
    reach_scale: float = 1000.0,
    noise: float = 0.25,
) -> pd.DataFrame:
    """``n`` posts of one account with engagement multiplied by the planted effects.

    Hours are drawn in the brand's local time (or in UTC when ``hot_utc_hour`` is given, to
    test timezones); the effects are independent, so each shows as its own marginal lift.
    """
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(tz)
    rows = []
    for i in range(n):
        day = start + timedelta(days=int(rng.integers(0, days)))
        if hot_utc_hour is not None:
            utc_hours = sorted({(h + hot_utc_hour - hours[0]) % 24 for h in hours})
            hour = int(rng.choice(utc_hours))
            published = day.replace(hour=hour, minute=int(rng.integers(0, 60)))
            hot_time = hour == hot_utc_hour
        else:
            hour = int(rng.choice(hours))
            local_day = day.astimezone(zone).replace(hour=hour, minute=int(rng.integers(0, 60)))
            published = local_day.astimezone(timezone.utc)
            hot_time = hour == hot_local_hour
        fmt = str(rng.choice(FORMATS))
        tags = [t for t in TAGS if rng.random() < 0.3]
        words = list(rng.choice(FILLER, size=6))
        body = " ".join(words + tags)
        factor = 1.0
        if hot_time:
            factor *= hour_effect
        if hot_format and fmt == hot_format:
            factor *= format_effect
        if hot_tag and hot_tag in tags:
            factor *= tag_effect
        reach = int(reach_scale * rng.uniform(0.8, 1.2))
        rate = 0.04 * factor * float(np.exp(rng.normal(0, noise)))
        eng = rate * reach
        rows.append(
            {
                "brand_id": brand_id,
                "platform": platform,
                "post_id": f"{brand_id}-{platform}-{i}",
                "external_post_id": f"{brand_id}_{platform}_{i}",
                "published_at": published,
                "format": fmt,
                "body": body,
                "impressions": int(reach * 1.3),
                "reach": reach,
                "likes": int(round(eng * 0.7)),
                "comments": int(round(eng * 0.1)),
                "shares": int(round(eng * 0.1)),
                "saves": int(round(eng * 0.1)),
                "clicks": int(reach * 0.01),
                "video_views": 0,
            }
        )
    return pd.DataFrame(rows)
