"""``LearningEngine``: the learned patterns of a brand as ranked, readable recommendations.

>>> engine = LearningEngine()               # MARBA_DATABASE_URL, like the CLI
>>> engine.learn(["brand-1"])               # recompute now (the job does it daily)
>>> for rec in engine.generate_recommendations("brand-1"):
...     print(rec["text"])

A recommendation needs confidence > 0.5 (30+ posts), a lift above 1 and a
Benjamini-Hochberg-adjusted p-value under 0.05; they are ranked by expected gain,
``(lift - 1) x confidence``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marba_dagster.core.learning import WEEKDAYS
from marba_dagster.services.learning import learn_and_store
from marba_dagster.store import learning as store
from marba_dagster.store.brands import active_brand_ids
from marba_dagster.store.db import make_engine

_PLATFORM = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "x": "X",
    "google_business": "Google Business Profile",
}
_DAY_NAMES = dict(
    zip(
        WEEKDAYS,
        ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"),
        strict=True,
    )
)


def _describe(p: dict[str, Any], tz: str) -> str:
    platform = _PLATFORM.get(p["platform"], p["platform"])
    key, ptype = p["pattern_key"], p["pattern_type"]
    gain = f"{p['lift']:.2f}x the usual engagement"
    if ptype == "best_posting_time":
        if "-" in key:
            day, hour = key.split("-", 1)
            action = (
                f"Post on {platform} on {_DAY_NAMES.get(day, day)} at {int(hour):02d}:00 ({tz})"
            )
        else:
            action = f"Post on {platform} at {int(key):02d}:00 ({tz})"
        subject = "posts at that time get"
    elif ptype == "content_format":
        action = f"Publish more {key} posts on {platform}"
        subject = f"{key} posts get"
    elif ptype == "hashtag":
        action = f"Use {key} on {platform}"
        subject = f"posts with {key} get"
    elif ptype == "power_word":
        action = f'Use the word "{key}" in {platform} posts'
        subject = f'posts saying "{key}" get'
    else:
        action = f'Post about "{key}" on {platform}'
        subject = f'posts about "{key}" get'
    return (
        f"{action}: {subject} {gain} ({p['data_points']} posts, confidence "
        f"{p['confidence']:.1f}, adjusted p = {p['p_value']:.2g})."
    )


class LearningEngine:
    """Learned patterns and recommendations, read from the MARBA database."""

    def __init__(self, database_url: str | None = None) -> None:
        self.engine = make_engine(database_url)

    def learn(self, brand_ids: Sequence[str] | None = None) -> int:
        """Recompute the patterns of ``brand_ids`` (default: every active brand) now,
        without going through Dagster; returns the number of patterns written."""
        if brand_ids is None:
            with self.engine.connect() as conn:
                brand_ids = active_brand_ids(conn)
        return learn_and_store(self.engine, list(brand_ids)).written

    def get_patterns(
        self, brand_id: str, platform: str | None = None, pattern_type: str | None = None
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.brand_patterns(conn, brand_id, platform, pattern_type)

    def generate_recommendations(
        self, brand_id: str, platform: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Ranked recommendations with their evidence; [] for a brand without any."""
        with self.engine.connect() as conn:
            rows = store.recommendable_patterns(conn, brand_id, platform)
            tz = store.brand_timezone(conn, brand_id)
        rows.sort(
            key=lambda r: ((r["lift"] - 1.0) * r["confidence"], r["data_points"]), reverse=True
        )
        out = []
        for rank, r in enumerate(rows[:limit], start=1):
            out.append(
                {
                    "rank": rank,
                    "brand_id": brand_id,
                    "platform": r["platform"],
                    "pattern_type": r["pattern_type"],
                    "pattern_key": r["pattern_key"],
                    "text": _describe(r, tz),
                    "evidence": {
                        "lift": r["lift"],
                        "data_points": r["data_points"],
                        "confidence": r["confidence"],
                        "p_value": r["p_value"],
                        "mean_engagement_rate": r["mean_engagement"],
                        "baseline_engagement_rate": r["baseline_engagement"],
                        "timezone": tz,
                        "computed_at": r["computed_at"].isoformat(),
                    },
                }
            )
        return out
