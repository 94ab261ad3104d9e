"""What competitive monitoring watches and the rows it writes (pure).

A competitor's URLs, the names its sources go by in the ``sources_available`` check, stable
row ids, and the rows of competitor signals, messaging shifts and gaps.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .changes import Change
from .gaps import Gap

TEXT_CAP = 100_000  # characters of page text kept in a snapshot
SIGNAL_TTL = timedelta(days=7)
MAX_URLS_PER_CHUNK = 600  # URLs fetched (and held in memory) at once


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def row_id(*parts: str) -> str:
    """A stable 32-character id from its parts."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def cap_blocks(blocks: list[list[Any]], cap: int) -> list[list[Any]]:
    """The first blocks of a page whose texts together stay within ``cap`` characters."""
    out, size = [], 0
    for block in blocks:
        size += len(block[2]) + 1
        if size > cap:
            break
        out.append(block)
    return out


def competitor_urls(competitor: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, url) to watch: the website and watch URLs (deduplicated), then the feed."""
    seen: list[str] = []
    for url in [competitor.get("website_url"), *(competitor.get("watch_urls") or [])]:
        if isinstance(url, str) and url.strip() and url.strip() not in seen:
            seen.append(url.strip())
    urls = [("page", url) for url in seen]
    feed = competitor.get("feed_url")
    if isinstance(feed, str) and feed.strip():
        urls.append(("feed", feed.strip()))
    return urls


def chunk_brands(
    brand_ids: Sequence[str],
    competitors: dict[str, list[dict[str, Any]]],
    max_urls: int = MAX_URLS_PER_CHUNK,
) -> list[list[str]]:
    """Brands in groups of at most ``max_urls`` URLs, so fetched bodies stay bounded."""
    chunks: list[list[str]] = []
    current: list[str] = []
    urls = 0
    for brand_id in brand_ids:
        count = sum(len(competitor_urls(c)) for c in competitors.get(brand_id, []))
        if current and urls + count > max_urls:
            chunks.append(current)
            current, urls = [], 0
        current.append(brand_id)
        urls += count
    if current:
        chunks.append(current)
    return chunks


def chunk_urls(brand_ids: Iterable[str], competitors: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every URL the brands' competitors are watched at (repeats kept)."""
    return [
        url
        for brand_id in brand_ids
        for competitor in competitors[brand_id]
        for _kind, url in competitor_urls(competitor)
    ]


def site_source(competitor: dict[str, Any]) -> str:
    return f"competitor site {competitor['name']} ({competitor['id']})"


def feed_source(competitor: dict[str, Any]) -> str:
    return f"competitor feed {competitor['name']} ({competitor['id']})"


def signal_row(
    brand_id: str,
    competitor: dict[str, Any],
    url: str,
    source: str,
    change: Change,
    now: datetime,
    *,
    per_page: bool = True,
) -> dict[str, Any]:
    """The ``intelligence_signals`` row of one change (type ``competitor``). A change of the
    competitor rather than of one page (``per_page=False``: a product's price or launch, seen
    on any of its pages) is keyed by the competitor alone, so it is one signal."""
    scope = f"{short_hash(url, 8)}:" if per_page else ""
    dedup = f"{competitor['id']}:{scope}{change.key}"
    if len(dedup) > 200:
        dedup = f"{competitor['id'][:80]}:{change.change_type}:{short_hash(dedup, 40)}"
    return {
        "id": row_id(brand_id, "competitor", dedup),
        "brand_id": brand_id,
        "signal_type": "competitor",
        "source": source,
        "title": f"{competitor['name']}: {change.title}"[:1000],
        "payload": {
            "change_type": change.change_type,
            "competitor_id": competitor["id"],
            "competitor_name": competitor["name"],
            "url": url,
            **change.details,
        },
        "dedup_key": dedup,
        "observed_at": now,
        "valid_until": now + SIGNAL_TTL,
        "strength": float(change.strength),
    }


def shift_row(
    brand_id: str,
    competitor: dict[str, Any],
    url: str,
    shift: Change,
    stamp: str,
    now: datetime,
) -> dict[str, Any]:
    """The ``messaging_shifts`` row of a messaging shift (one per run: ``stamp``)."""
    return {
        "id": row_id(brand_id, competitor["id"], url, "shift", stamp),
        "brand_id": brand_id,
        "competitor_id": competitor["id"],
        "url": url,
        "shift_score": shift.details["shift_score"],
        "terms_gained": shift.details["terms_gained"],
        "terms_lost": shift.details["terms_lost"],
        "before_text": shift.details["before_text"],
        "after_text": shift.details["after_text"],
        "detected_at": now,
    }


def gap_rows(brand_id: str, gaps: Iterable[Gap], now: datetime) -> list[dict[str, Any]]:
    """The ``competitive_gaps`` rows of the gaps found now (open)."""
    return [
        {
            "id": row_id(brand_id, gap.gap_type, gap.gap_key),
            "brand_id": brand_id,
            "gap_type": gap.gap_type,
            "gap_key": gap.gap_key[:200],
            "score": gap.score,
            "evidence": gap.evidence,
            "detected_at": now,
            "status": "open",
        }
        for gap in gaps
    ]


def signal_counts(signals: Iterable[dict[str, Any]]) -> Counter[str]:
    """Competitor signals per ``payload.change_type``."""
    return Counter(row["payload"]["change_type"] for row in signals)
