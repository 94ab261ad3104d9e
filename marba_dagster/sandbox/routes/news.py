"""Google News RSS search (route ``news.search_rss``): ``GET /news/rss/search?q=...``.

Same shape as https://news.google.com/rss/search?q=...&hl=en-US&gl=US&ceid=US:en: RSS 2.0
with ``xmlns:media``; a channel titled ``"<q>" - Google News``; per item ``title``
(``"Headline - Source"``), ``link`` (a news.google.com article link), ``guid``
(``isPermaLink="false"``), ``pubDate``, ``description`` (escaped HTML: a link and the source
in ``<font color="#6f6f6f">``) and ``source url="..."``. A missing ``q`` is a 400.

Demo content is deterministic per query and UTC day: the query's first quoted phrase is
taken as the place, the OR'd terms as topics; headlines combine them, plus general local
news. Tests can pin items for queries containing a text with
``NewsState.set_items(contains, [...])``. Feed faults: see ``_feeds`` (``match`` = a
substring of ``q``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marba_dagster.sandbox.faults import register_route_kinds
from marba_dagster.sandbox.routes._feeds import (
    FEED_FAULT_KINDS,
    RSS_TYPE,
    attr,
    fault_response,
    h,
    rfc822,
    take_matching,
    x,
)

ROUTE = "news.search_rss"
register_route_kinds(ROUTE, FEED_FAULT_KINDS)

TOPIC_TEMPLATES = (
    "New {term} spot opens in downtown {place}",
    "{place} {term} festival returns this weekend",
    "Why {place} residents are lining up for {term}",
    "{place} small businesses bet on {term} as season changes",
)
GENERAL_TEMPLATES = (
    "{place} council approves new bike lanes",
    "Road works close main street in {place} until Friday",
    "{place} weekend events guide",
    "Local school in {place} wins regional award",
)
OUTLETS = ("{place} Herald", "{place} Daily News", "Channel 7 {place}", "The {place} Courier")


@dataclass
class NewsState:
    """Pinned items: (substring of q, [{"title", "source", "hours_ago"}])."""

    pinned: list[tuple[str, list[dict]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_items(self, contains: str, items: list[dict]) -> None:
        with self.lock:
            self.pinned.append((contains.lower(), [dict(i) for i in items]))

    def get(self, q: str) -> list[dict] | None:
        with self.lock:
            for contains, items in self.pinned:
                if contains in q.lower():
                    return [dict(i) for i in items]
        return None

    def reset(self) -> None:
        with self.lock:
            self.pinned.clear()


def parse_query(q: str) -> tuple[str, list[str]]:
    """(place, topic terms) of ``"Austin" (coffee OR "cold brew") when:2d``."""
    quoted = re.findall(r'"([^"]+)"', q)
    place = quoted[0] if quoted else q.split()[0]
    group = re.search(r"\(([^)]*)\)", q)
    terms = []
    if group:
        for t in re.split(r"\s+OR\s+", group.group(1)):
            t = t.strip().strip('"')
            if t:
                terms.append(t)
    return place, terms


def demo_items(q: str, now: datetime) -> list[dict]:
    place, terms = parse_query(q)
    day = now.astimezone(timezone.utc).date().isoformat()
    out = []
    for term in terms[:6]:
        k = h("news", q, day, term)
        if k % 3 == 0:  # not every topic is in the news every day
            continue
        out.append(
            {
                "title": TOPIC_TEMPLATES[k % len(TOPIC_TEMPLATES)].format(place=place, term=term),
                "source": OUTLETS[(k >> 4) % len(OUTLETS)].format(place=place),
                "hours_ago": 1 + (k >> 8) % 30,
            }
        )
    for j, tpl in enumerate(GENERAL_TEMPLATES):
        k = h("news-general", q, day, j)
        out.append(
            {
                "title": tpl.format(place=place),
                "source": OUTLETS[k % len(OUTLETS)].format(place=place),
                "hours_ago": 2 + (k >> 8) % 40,
            }
        )
    return out


def render(q: str, items: list[dict], now: datetime, gl: str, hl: str) -> str:
    search = f"https://news.google.com/search?q={q}&hl={hl}&gl={gl}&ceid={gl}:{hl.split('-')[0]}"
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
        '<rss xmlns:media="http://search.yahoo.com/mrss/" version="2.0">',
        "<channel>",
        "<generator>NFE/5.0</generator>",
        f"<title>{x(q)} - Google News</title>",
        f"<link>{x(search)}</link>",
        f"<language>{x(hl)}</language>",
        "<webMaster>news-webmaster@google.com</webMaster>",
        f"<copyright>{now.year} Google LLC</copyright>",
        f"<lastBuildDate>{rfc822(now)}</lastBuildDate>",
        "<description>Google News</description>",
    ]
    for it in items:
        source = it.get("source") or "Local News"
        k = h("guid", q, it["title"])
        guid = f"CBMi{k:016x}{h('g2', it['title']):016x}"
        link = f"https://news.google.com/rss/articles/{guid}?oc=5"
        domain = "https://www." + re.sub(r"[^a-z0-9]+", "", source.lower()) + ".com"
        published = now - timedelta(hours=float(it.get("hours_ago", 1)))
        desc = (
            f'<a href="{link}" target="_blank">{x(it["title"])}</a>'
            f'&nbsp;&nbsp;<font color="#6f6f6f">{x(source)}</font>'
        )
        parts += [
            "<item>",
            f"<title>{x(it['title'] + ' - ' + source)}</title>",
            f"<link>{x(link)}</link>",
            f'<guid isPermaLink="false">{guid}</guid>',
            f"<pubDate>{rfc822(published)}</pubDate>",
            f"<description>{x(desc)}</description>",
            f"<source url={attr(domain)}>{x(source)}</source>",
            "</item>",
        ]
    parts += ["</channel>", "</rss>"]
    return "\n".join(parts)


def routes(state) -> list[Route]:
    news_state = state.module_state("news", NewsState)

    async def search(request: Request):
        q = request.query_params.get("q") or ""
        if not q.strip():
            return Response(
                "<html><body>Error 400 (Bad Request): q is required</body></html>",
                status_code=400,
                media_type="text/html",
            )
        gl = (request.query_params.get("gl") or "US").upper()
        hl = request.query_params.get("hl") or f"en-{gl}"
        now = state.now()
        fault = take_matching(state.faults, ROUTE, q)
        items = news_state.get(q)
        if items is None:
            items = demo_items(q, now)
        if fault is not None:
            return fault_response(
                fault, lambda: render(q, items, now, gl, hl) + "\n<!-- Caf\u00e9 \u00bb -->"
            )
        return Response(render(q, items, now, gl, hl).encode("utf-8"), media_type=RSS_TYPE)

    return [Route("/news/rss/search", search, methods=["GET"], name=ROUTE)]
