"""Urgency from time to expiry (MARBA guide): critical < 4h, high < 24h, medium < 7d, low."""

from __future__ import annotations

from datetime import datetime, timedelta

CRITICAL_BEFORE = timedelta(hours=4)
HIGH_BEFORE = timedelta(hours=24)
MEDIUM_BEFORE = timedelta(days=7)
URGENCY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def urgency_for(expires_at: datetime | None, now: datetime) -> str:
    """``critical`` when less than 4 hours remain, ``high`` under 24 hours, ``medium`` under
    7 days, else ``low``. Exactly 4h is ``high``, exactly 24h ``medium``, exactly 7d ``low``
    (the bounds are strict, as in the guide). No expiry at all is ``low``; an expiry already
    passed is ``critical`` (callers expire such rows)."""
    if expires_at is None:
        return "low"
    if expires_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("urgency_for needs timezone-aware datetimes")
    left = expires_at - now
    if left < CRITICAL_BEFORE:
        return "critical"
    if left < HIGH_BEFORE:
        return "high"
    if left < MEDIUM_BEFORE:
        return "medium"
    return "low"


def urgency_weight(urgency: str) -> float:
    """How much urgency adds to the score (0..1)."""
    return {"critical": 1.0, "high": 0.8, "medium": 0.55, "low": 0.3}[urgency]
