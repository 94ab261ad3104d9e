"""The six MIRROR sections and their cache TTLs (the MARBA guide's rules, see
docs/architecture.md)."""

from __future__ import annotations

from datetime import timedelta

SECTIONS: tuple[str, ...] = ("measure", "intend", "reimagine", "reach", "optimize", "reflect")

TTL: dict[str, timedelta] = {
    "measure": timedelta(hours=24),
    "intend": timedelta(days=7),
    "reimagine": timedelta(days=7),
    "reach": timedelta(days=3),
    "optimize": timedelta(days=1),
    "reflect": timedelta(hours=6),
}

# Under budget throttling (80% of a monthly AI budget) the least time-sensitive sections,
# those with the longest TTL, are deferred: their existing entry is kept a while longer.
DEFERRABLE_SECTIONS: frozenset[str] = frozenset(
    s for s, ttl in TTL.items() if ttl == max(TTL.values())
)
# How long a deferred section waits before it is considered again.
DEFER_FOR = timedelta(days=1)

DESCRIPTIONS: dict[str, str] = {
    "measure": (
        "KPIs (engagement rate, follower growth, CTR) with industry percentiles and anomalies"
    ),
    "intend": "progress on each objective, on track or not, with a projection",
    "reimagine": "positioning against competitors and the competitive gaps",
    "reach": "channel mix, best posting times and formats from the learning patterns",
    "optimize": "best and worst content and the recommendations with confidence > 0.5",
    "reflect": "sentiment trend, urgent inbox items and active opportunities",
}


class UnknownSection(ValueError):
    def __init__(self, section: str) -> None:
        super().__init__(f"unknown section {section!r}; sections are: {', '.join(SECTIONS)}")


def check_section(section: str) -> str:
    if section not in TTL:
        raise UnknownSection(section)
    return section


def ttl_for(section: str) -> timedelta:
    return TTL[check_section(section)]


def ttl_label(section: str) -> str:
    """The section's TTL as people write it: ``6h``, ``3d``."""
    hours = ttl_for(section).total_seconds() / 3600
    return f"{hours:g}h" if hours < 24 else f"{hours / 24:g}d"
