"""Items of a competitor's RSS/Atom feed, parsed without network access. Pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import feedparser

from .extract import canonical_url
from .text import collapse

__all__ = ["parse_feed", "item_times"]


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(key)
        if st:
            try:
                return datetime(*st[:6], tzinfo=timezone.utc)
            except (TypeError, ValueError):
                continue
    return None


def _format(entry: Any) -> str:
    types = [str(e.get("type", "")) for e in entry.get("enclosures", []) or []]
    types += [
        str(m.get("type", "") or m.get("medium", "")) for m in entry.get("media_content", []) or []
    ]
    link = str(entry.get("link", ""))
    if any(t.startswith("video") for t in types) or any(
        h in link for h in ("youtube.com", "youtu.be", "vimeo.com")
    ):
        return "video"
    if any(t.startswith("audio") for t in types):
        return "audio"
    if any(t.startswith("image") for t in types):
        return "image"
    return "link"


def parse_feed(text: str | bytes, limit: int = 200) -> list[dict[str, Any]]:
    """Feed items, newest first: id, title, link (canonical), published (ISO), format,
    categories, summary. Raises ``ValueError`` if the body is not a feed at all."""
    parsed = feedparser.parse(text, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.entries and not parsed.get("version"):
        reason = getattr(parsed, "bozo_exception", None) or "no RSS or Atom document found"
        raise ValueError(f"not a feed: {reason}")
    items = []
    for e in parsed.entries[:limit]:
        when = _when(e)
        link = canonical_url(e.get("link")) or None
        items.append(
            {
                "id": str(e.get("id") or link or e.get("title") or "")[:500],
                "title": collapse(e.get("title"))[:300],
                "link": link,
                "published": when.isoformat() if when else None,
                "format": _format(e),
                "categories": sorted(
                    {collapse(t.get("term")) for t in e.get("tags", []) or [] if t.get("term")}
                )[:10],
                "summary": collapse(e.get("summary"))[:300],
            }
        )
    items.sort(key=lambda i: i["published"] or "", reverse=True)
    return items


def item_times(items: list[dict[str, Any]]) -> list[datetime]:
    out = []
    for i in items:
        if i.get("published"):
            try:
                out.append(datetime.fromisoformat(i["published"]))
            except ValueError:
                continue
    return out
