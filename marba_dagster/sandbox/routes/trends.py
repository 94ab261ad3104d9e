"""Google Trends trending-searches RSS (routes ``trends.trending_rss`` and
``trends.trending_rss_daily``).

``GET /trends/trending/rss?geo=XX`` (the current path, as at
https://trends.google.com/trending/rss) and ``GET /trends/trendingsearches/daily/rss?geo=XX``
(the path ``sandbox_env`` points MARBA_TRENDS_RSS_URL at) answer the same RSS 2.0 document
with the ``ht`` namespace: per item ``title``, ``ht:approx_traffic``, ``description``,
``link``, ``pubDate``, ``ht:picture``, ``ht:picture_source`` and 1-3 ``ht:news_item``.
A missing or unknown ``geo`` is a 400 like the real service's error page.

Demo content is deterministic per country and UTC day: 20 searches drawn from a pool that
includes terms the demo industries care about. Tests can replace a country's items with
``TrendsState.set_items(geo, [...])`` (``state.module_state("trends", TrendsState)``).
Feed faults: see ``_feeds`` (``invalid_xml``, ``entity_bomb``, ``wrong_encoding``,
``feed_status``; ``match`` = a country code).
"""

from __future__ import annotations

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

ROUTE = "trends.trending_rss"
ROUTE_DAILY = "trends.trending_rss_daily"
for _r in (ROUTE, ROUTE_DAILY):
    register_route_kinds(_r, FEED_FAULT_KINDS)

NS = "https://trends.google.com/trending/rss"
POOL = (
    "cold brew recipe",
    "pumpkin spice latte",
    "sourdough starter",
    "croissant day",
    "restaurant week",
    "brunch near me",
    "marathon training",
    "yoga for beginners",
    "summer dresses",
    "hiking boots",
    "skincare routine",
    "ice cream flavors",
    "plumber emergency",
    "book club picks",
    "florist near me",
    "dog adoption",
    "pilates classes",
    "craft beer festival",
    "fade haircut",
    "bike lanes",
    "board games",
    "engagement rings",
    "wine tasting",
    "heat wave",
    "storm warning",
    "champions league",
    "nba finals",
    "election results",
    "new iphone",
    "box office",
    "taylor swift",
    "stock market",
    "halloween costumes",
    "black friday deals",
    "valentines day gifts",
    "mothers day brunch",
    "back to school supplies",
    "coffee prices",
    "espresso machine",
    "latte art",
)
TRAFFIC = (
    "200+",
    "500+",
    "1000+",
    "2000+",
    "5000+",
    "10K+",
    "20K+",
    "50K+",
    "100K+",
    "200K+",
    "500K+",
    "1M+",
)
SOURCES = (
    "The Daily Ledger",
    "Metro News",
    "City Times",
    "Channel 5",
    "The Courier",
    "Evening Post",
)
GEOS = frozenset(
    [
        "AR",
        "AT",
        "AU",
        "BE",
        "BR",
        "CA",
        "CH",
        "CL",
        "CO",
        "CZ",
        "DE",
        "DK",
        "EG",
        "ES",
        "FI",
        "FR",
        "GB",
        "GR",
        "HK",
        "HU",
        "ID",
        "IE",
        "IL",
        "IN",
        "IT",
        "JP",
        "KE",
        "KR",
        "MX",
        "MY",
        "NG",
        "NL",
        "NO",
        "NZ",
        "PE",
        "PH",
        "PK",
        "PL",
        "PT",
        "RO",
        "RU",
        "SA",
        "SE",
        "SG",
        "TH",
        "TR",
        "TW",
        "UA",
        "US",
        "VN",
        "ZA",
    ]
)


@dataclass
class TrendsState:
    """Per-country overrides of the demo items: [{"title", "traffic", "news": [titles]}]."""

    items: dict[str, list[dict]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_items(self, geo: str, items: list[dict]) -> None:
        with self.lock:
            self.items[geo.upper()] = [dict(i) for i in items]

    def get(self, geo: str) -> list[dict] | None:
        with self.lock:
            got = self.items.get(geo.upper())
            return None if got is None else [dict(i) for i in got]

    def reset(self) -> None:
        with self.lock:
            self.items.clear()


def demo_items(geo: str, now: datetime) -> list[dict]:
    """The day's 20 searches for ``geo`` (deterministic)."""
    day = now.astimezone(timezone.utc).date().isoformat()
    order = sorted(POOL, key=lambda t: h("trend-order", geo, day, t))[:20]
    out = []
    for i, title in enumerate(order):
        k = h("trend", geo, day, title)
        news = [
            f"{title.title()}: what to know"
            if j == 0
            else f"Why everyone is searching for {title} today"
            for j in range(1 + k % 3)
        ]
        out.append(
            {
                "title": title,
                "traffic": TRAFFIC[(k >> 8) % len(TRAFFIC)],
                "hours_ago": (k >> 16) % 20 + i % 3,
                "news": news,
            }
        )
    return out


def render(geo: str, items: list[dict], now: datetime) -> str:
    link = f"https://trends.google.com/trending/rss?geo={geo}"
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
        f'<rss xmlns:atom="http://www.w3.org/2005/Atom" xmlns:ht="{NS}" version="2.0">',
        "<channel>",
        "<title>Daily Search Trends</title>",
        "<description>Recent searches</description>",
        f"<link>{x(link)}</link>",
        f'<atom:link href={attr(link)} rel="self" type="application/rss+xml"/>',
    ]
    for it in items:
        title = it["title"]
        k = h("pic", geo, title)
        published = now - timedelta(hours=float(it.get("hours_ago", 1)))
        parts += [
            "<item>",
            f"<title>{x(title)}</title>",
            f"<ht:approx_traffic>{x(str(it.get('traffic', '200+')))}</ht:approx_traffic>",
            "<description></description>",
            f"<link>{x(link)}</link>",
            f"<pubDate>{rfc822(published)}</pubDate>",
            f"<ht:picture>https://encrypted-tbn0.gstatic.com/images?q=tbn:{k:x}</ht:picture>",
            f"<ht:picture_source>{x(SOURCES[k % len(SOURCES)])}</ht:picture_source>",
        ]
        for j, nt in enumerate(it.get("news") or []):
            src = SOURCES[(k + j) % len(SOURCES)]
            slug = "-".join(nt.lower().split())[:60]
            parts += [
                "<ht:news_item>",
                f"<ht:news_item_title>{x(nt)}</ht:news_item_title>",
                "<ht:news_item_snippet></ht:news_item_snippet>",
                f"<ht:news_item_url>{x(f'https://news.example.com/{geo.lower()}/{slug}')}</ht:news_item_url>",
                "<ht:news_item_picture>"
                f"https://encrypted-tbn0.gstatic.com/images?q=tbn:{k + j:x}"
                "</ht:news_item_picture>",
                f"<ht:news_item_source>{x(src)}</ht:news_item_source>",
                "</ht:news_item>",
            ]
        parts.append("</item>")
    parts += ["</channel>", "</rss>"]
    return "\n".join(parts)


def routes(state) -> list[Route]:
    trends_state = state.module_state("trends", TrendsState)

    def make(route_name: str):
        async def trending(request: Request):
            geo = (request.query_params.get("geo") or "").upper()
            now = state.now()
            fault = take_matching(state.faults, route_name, geo)
            items = trends_state.get(geo)
            if items is None:
                if geo not in GEOS:
                    return Response(
                        f"<html><body>Error 400 (Bad Request): unknown geo {geo!r}</body></html>",
                        status_code=400,
                        media_type="text/html",
                    )
                items = demo_items(geo, now)
            if fault is not None:
                return fault_response(
                    fault,
                    lambda: render(geo, items, now) + "\n<!-- Caf\u00e9 M\u00fcnchen \u00bb -->",
                )
            return Response(render(geo, items, now).encode("utf-8"), media_type=RSS_TYPE)

        return trending

    return [
        Route("/trends/trending/rss", make(ROUTE), methods=["GET"], name=ROUTE),
        Route(
            "/trends/trendingsearches/daily/rss",
            make(ROUTE_DAILY),
            methods=["GET"],
            name=ROUTE_DAILY,
        ),
    ]
