"""Signal rows of the opportunity detector, and how brands share outside sources (pure).

Brands are grouped by what they share — a forecast grid cell, a country's trends feed, a
city's news search — so each source is asked once. Each builder turns what one source said
into one brand's ``intelligence_signals`` rows (without their ids: the store adds them).
Trend and news items are those of ``connectors.rss`` (read by attribute: title, link,
published_at, ...), forecasts are ``core.opportunities.weather`` events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import calendar
from .matching import Match, match_text, parse_traffic, traffic_strength
from .weather import Thresholds, WeatherEvent, match_event_key, rounded_location

TREND_TTL = timedelta(hours=24)
NEWS_TTL = timedelta(hours=48)
# Weather signals still valid this long ago keep their dedup key when the event moves.
WEATHER_MEMORY = timedelta(hours=6)
DEFAULT_NEWS_COUNTRY = "US"
PREVIEW_PER_BRAND = 2

Location = tuple[float, float]
Brand = Mapping[str, Any]


# ----------------------------------------------------------------------- sharing sources


def brands_by_location(
    brand_ids: Iterable[str], brands: Mapping[str, Brand], grid_degrees: float
) -> tuple[dict[Location, list[str]], list[str]]:
    """(brands per rounded location, brands without coordinates)."""
    by_location: dict[Location, list[str]] = defaultdict(list)
    without: list[str] = []
    for brand_id in brand_ids:
        brand = brands[brand_id]
        if brand.get("latitude") is None or brand.get("longitude") is None:
            without.append(brand_id)
            continue
        location = rounded_location(brand["latitude"], brand["longitude"], grid_degrees)
        by_location[location].append(brand_id)
    return dict(by_location), without


def brands_by_country(
    brand_ids: Iterable[str], brands: Mapping[str, Brand]
) -> tuple[dict[str, list[str]], list[str]]:
    """(brands per country code, brands without a country)."""
    by_country: dict[str, list[str]] = defaultdict(list)
    without: list[str] = []
    for brand_id in brand_ids:
        country = (brands[brand_id].get("country_code") or "").upper()
        if country:
            by_country[country].append(brand_id)
        else:
            without.append(brand_id)
    return dict(by_country), without


def brands_by_city(
    brand_ids: Iterable[str], brands: Mapping[str, Brand]
) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """(brands per (city, country code), brands without a city)."""
    by_city: dict[tuple[str, str], list[str]] = defaultdict(list)
    without: list[str] = []
    for brand_id in brand_ids:
        brand = brands[brand_id]
        if not brand.get("city"):
            without.append(brand_id)
            continue
        country = (brand.get("country_code") or DEFAULT_NEWS_COUNTRY).upper()
        by_city[(brand["city"], country)].append(brand_id)
    return dict(by_city), without


def keywords_of(brand_ids: Iterable[str], brands: Mapping[str, Brand]) -> list[str]:
    """Every keyword of the brands, in order (a city's news search asks for them all)."""
    return [k for brand_id in brand_ids for k in (brands[brand_id].get("keywords") or [])]


# --------------------------------------------------------------------------------- weather


def place_key(location: Location) -> str:
    return f"{location[0]:.2f},{location[1]:.2f}"


def prior_weather(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, Any, datetime, datetime]]:
    """(dedup key, kind, start, end) of a brand's current weather signals."""
    prior = []
    for row in rows:
        if not row["valid_until"]:
            continue
        payload = row["payload"] or {}
        start = (
            datetime.fromisoformat(payload["start"]) if payload.get("start") else row["observed_at"]
        )
        prior.append((row["dedup_key"], payload.get("kind"), start, row["valid_until"]))
    return prior


def weather_rows(
    events: Sequence[WeatherEvent],
    thresholds: Thresholds,
    prior: Sequence[tuple[str, Any, datetime, datetime]],
    place: str,
    location: Location,
    now: datetime,
) -> list[dict[str, Any]]:
    """One row per event; an event overlapping a current signal of its kind keeps that
    signal's key (a forecast that moves by an hour is the same event)."""
    key_of_place = place_key(location)
    rows: list[dict[str, Any]] = []
    used: list[str] = []
    for event in events:
        key = match_event_key(event, key_of_place, [p for p in prior if p[0] not in used])
        used.append(key)
        rows.append(
            {
                "source": "open-meteo",
                "title": event.title(place),
                "dedup_key": key,
                "payload": {
                    "kind": event.kind,
                    "start": event.start.isoformat(),
                    "end": event.end.isoformat(),
                    "peak": event.peak,
                    "threshold": event.threshold,
                    "unit": event.unit,
                    "hours": event.hours,
                    "basis": thresholds.basis,
                    "thresholds": thresholds.as_dict(),
                    "location": list(location),
                },
                "observed_at": now,
                "valid_until": event.end,
                "strength": event.strength,
            }
        )
    return rows


# ---------------------------------------------------------------------------------- trends


def match_payload(match: Match) -> dict[str, Any]:
    return {"score": match.score, "terms": list(match.terms), "where": match.where}


def trend_rows(feed: Any, brand: Brand, now: datetime) -> list[dict[str, Any]]:
    """The country's trending searches (``connectors.rss.TrendsFeed``) that match the brand's
    keywords or industry, valid for a day from when they were published."""
    rows = []
    for item in feed.items:
        match = match_text(
            item.title,
            [n.title for n in item.news],
            brand.get("keywords") or [],
            brand.get("industry"),
        )
        if match is None:
            continue
        published = item.published_at or now
        traffic = parse_traffic(item.approx_traffic)
        slug = "-".join(item.title.lower().split())[:80]
        rows.append(
            {
                "source": "google-trends",
                "title": f"Trending in {feed.geo}: {item.title}",
                "dedup_key": f"trend:{feed.geo}:{slug}:{published.date().isoformat()}",
                "payload": {
                    "geo": feed.geo,
                    "query": item.title,
                    "approx_traffic": item.approx_traffic,
                    "traffic": traffic,
                    "link": item.link,
                    "news": [
                        {"title": n.title, "url": n.url, "source": n.source} for n in item.news[:3]
                    ],
                    "match": match_payload(match),
                },
                "observed_at": published,
                "valid_until": published + TREND_TTL,
                "strength": traffic_strength(traffic),
            }
        )
    return rows


# ------------------------------------------------------------------------------------ news


def news_rows(feed: Any, brand: Brand, city: str, now: datetime) -> list[dict[str, Any]]:
    """The city's headlines (``connectors.rss.NewsFeed``) of the last two days that match the
    brand's keywords or industry (the city's own name does not count as a match); fresher
    is stronger."""
    rows = []
    for item in feed.items:
        published = item.published_at or now
        if published + NEWS_TTL <= now:
            continue
        match = match_text(
            item.title, [], brand.get("keywords") or [], brand.get("industry"), ignore=[city]
        )
        if match is None:
            continue
        age_hours = max(0.0, (now - published).total_seconds() / 3600)
        rows.append(
            {
                "source": "google-news",
                "title": item.title,
                "dedup_key": f"news:{item.key}"[:200],
                "payload": {
                    "query": feed.query,
                    "city": city,
                    "link": item.link,
                    "source": item.source,
                    "source_url": item.source_url,
                    "published_at": published.isoformat(),
                    "match": match_payload(match),
                },
                "observed_at": published,
                "valid_until": published + NEWS_TTL,
                "strength": round(max(0.3, 1.0 - age_hours / 48.0), 4),
            }
        )
    return rows


# -------------------------------------------------------------------------------- seasonal


def seasonal_rows(brand: Brand, now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    """(rows, note): the holidays and marketing days whose window contains the brand's
    today, stronger as they come closer; the note says why there are none, if it knows."""
    timezone = brand.get("timezone") or "UTC"
    today = calendar.local_date(now, timezone)
    events, note = calendar.active_events(
        today, brand.get("country_code"), brand.get("subdivision")
    )
    rows = []
    for event in events:
        days_to = (event.start - today).days
        strength = 1.0 if days_to <= 0 else max(0.3, 1.0 - days_to / max(1, event.lead_days))
        rows.append(
            {
                "source": event.source,
                "title": f"{event.name} ({event.start.isoformat()})",
                "dedup_key": event.dedup_key,
                "payload": {
                    "kind": event.kind,
                    "name": event.name,
                    "start": event.start.isoformat(),
                    "end": event.end.isoformat(),
                    "lead_days": event.lead_days,
                    "days_until": days_to,
                    "country": brand.get("country_code"),
                    "subdivision": brand.get("subdivision"),
                },
                "observed_at": now,
                "valid_until": event.expires_at(timezone),
                "strength": round(strength, 4),
            }
        )
    return rows, note


# ------------------------------------------------------------------------------ competitor


def change_type_of(signal: Mapping[str, Any]) -> Any:
    return (signal["payload"] or {}).get("change_type")


def change_type_counts(signals: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Competitor signals per ``payload.change_type`` (``"None"`` for a missing one)."""
    return Counter(str(change_type_of(signal)) for signal in signals)


def unknown_change_types(
    signals: Iterable[Mapping[str, Any]], known: Collection[str]
) -> list[Mapping[str, Any]]:
    """The competitor signals whose change type is missing or not one of ``known``."""
    return [signal for signal in signals if change_type_of(signal) not in known]


# -------------------------------------------------------------------------------- preview


def signal_preview(brand_id: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The brand's first signals, for a materialization's preview table."""
    return [
        {"brand": brand_id, "title": row["title"], "strength": row["strength"]}
        for row in rows[:PREVIEW_PER_BRAND]
    ]
