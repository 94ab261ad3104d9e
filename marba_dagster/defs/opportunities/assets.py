"""The opportunity detector (job ``opportunity_detector``, hourly): five signal assets and
the opportunities built from them, for every active brand in one run.

Outside calls are grouped, never made per brand: one Open-Meteo request per batch of
distinct rounded locations, one trends feed per country, one news search per city. A
source that fails (a 429, invalid XML, an entity bomb, a wrong encoding) skips only the
brands it serves, each with a warning in ``job_logs``; the others proceed. Every asset
reports ``all_brands_processed`` and the three that read outside sources
``sources_available``, a WARN check naming each lost source, its cause and its brands; the
signals themselves are checked by ``signals_valid`` (``checks.py``).
"""

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import dagster as dg

from marba_dagster.connectors.errors import ClientError
from marba_dagster.core.markdown import markdown_table
from marba_dagster.core.opportunities.scoring import COMPETITOR_TTL
from marba_dagster.core.opportunities.signals import (
    WEATHER_MEMORY,
    brands_by_city,
    brands_by_country,
    brands_by_location,
    change_type_counts,
    change_type_of,
    news_rows,
    place_key,
    prior_weather,
    seasonal_rows,
    signal_preview,
    trend_rows,
    unknown_change_types,
    weather_rows,
)
from marba_dagster.core.opportunities.urgency import URGENCY_RANK
from marba_dagster.core.opportunities.weather import detect_events
from marba_dagster.defs import execution
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.execution import FEEDS_RETRY
from marba_dagster.defs.opportunities.resources import OpportunitySettings, WeatherConfig
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.services.opportunities import (
    OpportunityTotals,
    failure_text,
    fetch_forecasts,
    fetch_trends,
    hourly_series,
    push_critical,
    refresh_opportunities,
    replace_signals,
    requests_sent,
    search_news,
)
from marba_dagster.services.rows import checked_brands
from marba_dagster.store import opportunities as store_opportunities
from marba_dagster.store.brands import brands_by_id
from marba_dagster.store.schema import COMPETITOR_CHANGE_TYPES
from marba_dagster.store.types import utcnow

GROUP = "opportunities"
WEATHER = dg.AssetKey([GROUP, "weather_signals"])
TRENDS = dg.AssetKey([GROUP, "trend_signals"])
NEWS = dg.AssetKey([GROUP, "news_signals"])
SEASONAL = dg.AssetKey([GROUP, "seasonal_signals"])
COMPETITOR = dg.AssetKey([GROUP, "competitor_signals"])
OPPORTUNITIES = dg.AssetKey([GROUP, "intelligence_opportunities"])
COMPETITOR_SNAPSHOTS = dg.AssetKey(["competitive", "competitor_snapshots"])
COMPETITOR_SOCIAL = dg.AssetKey(["competitive", "social_activity"])
# Source names in the sources_available check (one entry per country or city).
OPEN_METEO = "Open-Meteo"
TRENDS_FEED = "Google Trends feed {geo}"
NEWS_SEARCH = "Google News search {city}"
NO_FORECAST = "malformed answer: no forecast for the location"
SIGNAL_COLUMNS = ["brand", "title", "strength"]


def _brands(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, batch: BrandBatch
) -> tuple[list[str], dict[str, dict]]:
    """The run's brands, their rows checked at the boundary (``core.rows``): a bad value is
    dropped or ignored with a warning naming the brand and field, an unusable row is left
    out as a failed brand; every other brand goes on."""
    ids = scoped_brand_ids(context, marba_db)
    with marba_db.connect() as conn:
        brands, problems = checked_brands(brands_by_id(conn, ids))
    batch.row_problems(problems)
    return [brand_id for brand_id in ids if brand_id in brands], brands


def _skip(batch: BrandBatch, brand_ids: Iterable[str], source: str, reason: str) -> None:
    for brand_id in brand_ids:
        batch.log(brand_id, "warning", f"{source} skipped: {reason}", source=source)


@dataclass(frozen=True)
class FeedSignals:
    """What one fetched feed (a country's trends, a city's news search) means for a brand."""

    signal_type: str  # the ``intelligence_signals.signal_type`` written
    log_source: str  # the ``job_logs`` source of its warnings
    skip_label: str  # how a brand's skip warning names the feed
    source: str  # the source's name in ``sources_available``
    rows: Callable[[Any, dict], list[dict]]  # (feed, brand row) -> signal rows


def _trend_feed(now: datetime, geo: str) -> FeedSignals:
    return FeedSignals(
        "trend", "trends", f"{geo} feed", TRENDS_FEED.format(geo=geo), partial(_trend_rows, now)
    )


def _trend_rows(now: datetime, feed: Any, brand: dict) -> list[dict]:
    return trend_rows(feed, brand, now)


def _news_search(now: datetime, key: tuple[str, str]) -> FeedSignals:
    city = key[0]
    return FeedSignals(
        "news",
        "news",
        f"{city} search",
        NEWS_SEARCH.format(city=city),
        partial(_news_rows, now, city),
    )


def _news_rows(now: datetime, city: str, feed: Any, brand: dict) -> list[dict]:
    return news_rows(feed, brand, city, now)


def _write_feed_signals(
    batch: BrandBatch,
    marba_db: MarbaDatabase,
    feeds: Mapping[Hashable, Any],
    members_of: Mapping[Hashable, list[str]],
    brands: dict[str, dict],
    describe: Callable[[Hashable], FeedSignals],
) -> tuple[int, list[dict]]:
    """Each feed's signals for each brand it serves, brand by brand (``batch.brand``); a feed
    that failed skips its brands with a warning and is a lost source naming them.
    Returns (signals written, preview rows)."""
    written, preview = 0, []
    for key, feed in feeds.items():
        members, what = members_of[key], describe(key)
        if isinstance(feed, Exception):
            _skip(batch, members, what.log_source, f"{what.skip_label}: {failure_text(feed)}")
            batch.lose_source(what.source, feed, members)
            continue
        for brand_id in members:
            with batch.brand(brand_id):
                rows = what.rows(feed, brands[brand_id])
                with marba_db.begin() as conn:
                    written += store_opportunities.write_signals(
                        conn, brand_id, what.signal_type, rows
                    )
                preview += signal_preview(brand_id, rows)
    return written, preview


def _result(
    batch: BrandBatch,
    asset: dg.AssetKey,
    written: int,
    extra: dict[str, Any],
    preview: list[dict],
    *,
    sources: bool = False,
) -> dg.MaterializeResult:
    batch.finish()
    metadata = {
        **batch.metadata(),
        "signals_written": written,
        **extra,
        "preview": dg.MetadataValue.md(markdown_table(preview, SIGNAL_COLUMNS)),
    }
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(asset, sources=sources)
    )


# ------------------------------------------------------------------------------ weather


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=FEEDS_RETRY,
    pool=execution.WEATHER_POOL,
    check_specs=completeness_check_specs(WEATHER, sources=True),
)
def weather_signals(
    context: dg.AssetExecutionContext,
    config: WeatherConfig,
    marba_db: MarbaDatabase,
    open_meteo: ApiEndpoint,
) -> dg.MaterializeResult:
    """Rain, heat, cold, snow and wind in the next 48 hours at each brand's location, with
    thresholds relative to the place (its seasonal norm and its past week). One Open-Meteo
    request per batch of distinct rounded locations, never one per brand. A brand without
    coordinates gets no weather and a warning in ``job_logs``; a batch Open-Meteo did not
    answer (or answered malformed) is a lost source naming its brands."""
    config.check_numbers()
    now = utcnow()
    batch = BrandBatch(context, marba_db)
    ids, brands = _brands(context, marba_db, batch)
    by_location, without_location = brands_by_location(ids, brands, config.grid_degrees)
    for brand_id in without_location:
        batch.log(
            brand_id,
            "warning",
            "no weather: the brand has no location (latitude/longitude)",
            source="weather",
        )
    locations = sorted(by_location)
    forecasts, requests = {}, 0
    if locations:
        with open_meteo.client("open_meteo") as client:
            forecasts = fetch_forecasts(client, locations, config.batch_size)
            requests = requests_sent(client)
    with marba_db.connect() as conn:
        located = [brand_id for members in by_location.values() for brand_id in members]
        existing = store_opportunities.current_signals(
            conn, located, "weather", now - WEATHER_MEMORY
        )
    written, preview = 0, []
    for location in locations:
        members = by_location[location]
        forecast = forecasts.get(location)
        if forecast is None or isinstance(forecast, Exception):
            missing = failure_text(forecast) if forecast else "missing"
            _skip(batch, members, "weather", f"forecast unavailable ({missing})")
            source = OPEN_METEO
            if isinstance(forecast, ClientError):  # refused or isolated: this place alone
                source = f"{OPEN_METEO} at {place_key(location)} for {', '.join(members)}"
            batch.lose_source(source, forecast or NO_FORECAST, members)
            continue
        events, thresholds = detect_events(location[0], hourly_series(forecast), now)
        for brand_id in members:
            with batch.brand(brand_id):
                place = brands[brand_id].get("city") or place_key(location)
                prior = prior_weather(existing.get(brand_id, []))
                rows = weather_rows(events, thresholds, prior, place, location, now)
                with marba_db.begin() as conn:
                    written += replace_signals(conn, brand_id, "weather", rows, now)
                preview += signal_preview(brand_id, rows)
    return _result(
        batch,
        WEATHER,
        written,
        {
            "distinct_locations": len(locations),
            "brands_without_location": len(without_location),
            "open_meteo_requests": requests,
            "locations_failed": sum(1 for f in forecasts.values() if isinstance(f, Exception)),
        },
        preview,
        sources=True,
    )


# ------------------------------------------------------------------------------- trends


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=FEEDS_RETRY,
    pool=execution.FEEDS_POOL,
    check_specs=completeness_check_specs(TRENDS, sources=True),
)
def trend_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, trends_rss: ApiEndpoint
) -> dg.MaterializeResult:
    """Google Trends trending searches of each brand's country matched to the brand's
    keywords and industry. One feed request per country; a country's feed that fails is a
    lost source naming its brands."""
    now = utcnow()
    batch = BrandBatch(context, marba_db)
    ids, brands = _brands(context, marba_db, batch)
    by_country, without_country = brands_by_country(ids, brands)
    for brand_id in without_country:
        batch.log(brand_id, "warning", "no trends: the brand has no country", source="trends")
    with trends_rss.client("trends_rss") as client:
        feeds = fetch_trends(client, sorted(by_country))
        requests = requests_sent(client)
    written, preview = _write_feed_signals(
        batch, marba_db, feeds, by_country, brands, partial(_trend_feed, now)
    )
    return _result(
        batch,
        TRENDS,
        written,
        {
            "countries": len(by_country),
            "countries_failed": sum(1 for f in feeds.values() if isinstance(f, Exception)),
            "trends_requests": requests,
        },
        preview,
        sources=True,
    )


# --------------------------------------------------------------------------------- news


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=FEEDS_RETRY,
    pool=execution.FEEDS_POOL,
    check_specs=completeness_check_specs(NEWS, sources=True),
)
def news_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, news_rss: ApiEndpoint
) -> dg.MaterializeResult:
    """Local news: one Google News search per city (the city and its brands' keywords),
    each headline matched to each brand's keywords and industry. A city's search that fails
    is a lost source naming its brands."""
    now = utcnow()
    batch = BrandBatch(context, marba_db)
    ids, brands = _brands(context, marba_db, batch)
    by_city, without_city = brands_by_city(ids, brands)
    for brand_id in without_city:
        batch.log(brand_id, "warning", "no local news: the brand has no city", source="news")
    with news_rss.client("news_rss") as client:
        feeds = search_news(client, {key: by_city[key] for key in sorted(by_city)}, brands)
        requests = requests_sent(client)
    written, preview = _write_feed_signals(
        batch, marba_db, feeds, by_city, brands, partial(_news_search, now)
    )
    return _result(
        batch,
        NEWS,
        written,
        {
            "cities": len(by_city),
            "cities_failed": sum(1 for f in feeds.values() if isinstance(f, Exception)),
            "news_requests": requests,
        },
        preview,
        sources=True,
    )


# ----------------------------------------------------------------------------- seasonal


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    check_specs=completeness_check_specs(SEASONAL),
)
def seasonal_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Public holidays (``holidays`` package, country and subdivision) and the marketing
    calendar (Valentine's Day to New Year) from their lead time until they end."""
    now = utcnow()
    batch = BrandBatch(context, marba_db)
    ids, brands = _brands(context, marba_db, batch)
    written, preview = 0, []
    for brand_id in ids:
        with batch.brand(brand_id):
            rows, note = seasonal_rows(brands[brand_id], now)
            if note:
                batch.log(brand_id, "info", f"calendar: {note}", source="seasonal")
            with marba_db.begin() as conn:
                written += replace_signals(conn, brand_id, "seasonal", rows, now)
            preview += signal_preview(brand_id, rows)
    return _result(batch, SEASONAL, written, {}, preview)


# --------------------------------------------------------------------------- competitor


# Lineage only: the rows come from the competitive monitoring job's own schedule.
@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    deps=[COMPETITOR_SNAPSHOTS, COMPETITOR_SOCIAL],
    check_specs=completeness_check_specs(COMPETITOR),
)
def competitor_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Competitor moves already detected by the competitive monitoring job
    (``intelligence_signals`` of type ``competitor``, ``payload.change_type``): counted and
    checked here; unknown change types are reported and scored as website changes."""
    now = utcnow()
    ids = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        signals = store_opportunities.current_signals(conn, ids, "competitor", now - COMPETITOR_TTL)
    counts: Counter[str] = Counter()
    for brand_id in ids:
        with batch.brand(brand_id):
            counts.update(change_type_counts(signals[brand_id]))
            for signal in unknown_change_types(signals[brand_id], COMPETITOR_CHANGE_TYPES):
                batch.log(
                    brand_id,
                    "warning",
                    f"competitor signal {signal['id']} has unknown change_type "
                    f"{change_type_of(signal)!r}",
                    source="competitor",
                )
    metadata = {
        **batch.metadata(),
        "competitor_signals": sum(counts.values()),
        "unknown_change_types": sum(
            n for change_type, n in counts.items() if change_type not in COMPETITOR_CHANGE_TYPES
        ),
        "by_change_type": dg.MetadataValue.json(dict(counts)),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=batch.check_results(COMPETITOR))


# ------------------------------------------------------------------------ opportunities


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "sql"},
    deps=[weather_signals, trend_signals, seasonal_signals, news_signals, competitor_signals],
    check_specs=completeness_check_specs(OPPORTUNITIES),
)
def intelligence_opportunities(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    notifier: Notifier,
    opportunity_settings: OpportunitySettings,
) -> dg.MaterializeResult:
    """Opportunities from the current signals: relevance to the brand (the editable event ->
    industry mapping), urgency from time to expiry, a 0..1 score, suggested actions and
    evidence. The same event is one row updated in place (stable dedup key); passed or
    vanished ones become ``expired``. A predictive score learned from the brand's past
    decisions (``acted`` or not) is added when there is enough history. Critical ones are
    pushed once to the notifier webhook. An unusable ``MARBA_RELEVANCE_FILE`` fails the step
    at once (no retries), naming the file."""
    now = utcnow()
    relevance, relevance_source = opportunity_settings.relevance()
    batch = BrandBatch(context, marba_db)
    ids, brands = _brands(context, marba_db, batch)
    with marba_db.connect() as conn:
        signals = store_opportunities.current_signals(conn, ids, None, now)
    webhook = notifier.webhook_url if notifier.configured else None
    totals = OpportunityTotals()
    for brand_id in ids:
        with batch.brand(brand_id):
            brand = brands[brand_id]
            result = refresh_opportunities(
                marba_db.engine, brand_id, brand, signals.get(brand_id, []), relevance, now
            )
            totals.add(brand_id, result)
            if result.pending_critical:
                sent = push_critical(
                    marba_db.engine,
                    webhook,
                    brand_id,
                    brand.get("name") or brand_id,
                    result.pending_critical,
                    now,
                )
                totals.add_notifications(sent)
    batch.finish()
    metadata = {
        **batch.metadata(),
        **{name: int(n) for name, n in totals.counts.items()},
        **{f"urgency_{u}": int(totals.urgencies.get(u, 0)) for u in URGENCY_RANK},
        "relevance_mapping": relevance_source,
        "preview": dg.MetadataValue.md(
            markdown_table(totals.preview, ["brand", "type", "urgency", "score", "title"])
        ),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=batch.check_results(OPPORTUNITIES))
