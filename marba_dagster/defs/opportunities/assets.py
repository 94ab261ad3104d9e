"""The opportunity detector (job ``opportunity_detector``, hourly): five signal assets and
the opportunities built from them, for every active brand in one run.

Outside calls are grouped, never made per brand: one Open-Meteo request per batch of
distinct rounded locations, one trends feed per country, one news search per city. A
source that fails (a 429, invalid XML, an entity bomb, a wrong encoding) skips only the
brands it serves, each with a warning in ``job_logs``; the others proceed. Every asset
reports ``all_brands_processed`` and the three that read outside sources
``sources_available``, a WARN check naming each lost source, its cause and its brands; the
signals themselves are checked by ``signals_valid``.
"""

import json
import os
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.open_meteo import DEFAULT_BATCH_SIZE, OpenMeteoClient
from marba_dagster.connectors.rss import NewsClient, TrendsClient
from marba_dagster.core.opportunities import calendar as cal
from marba_dagster.core.opportunities.matching import (
    match_text,
    news_query,
    parse_traffic,
    traffic_strength,
)
from marba_dagster.core.opportunities.predictive import fit_history
from marba_dagster.core.opportunities.relevance import (
    DEFAULT_RELEVANCE,
    RelevanceError,
    RelevanceMap,
    merge_relevance,
    parse_relevance,
)
from marba_dagster.core.opportunities.scoring import build_opportunities
from marba_dagster.core.opportunities.urgency import URGENCY_RANK
from marba_dagster.core.opportunities.weather import (
    HourlySeries,
    detect_events,
    match_event_key,
    rounded_location,
)
from marba_dagster.defs import pools
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.opportunities import store as ost
from marba_dagster.defs.opportunities.notify import push_critical
from marba_dagster.defs.resources import ApiEndpoint, InvalidSetting, MarbaDatabase, Notifier
from marba_dagster.defs.retries import FEEDS_RETRY
from marba_dagster.store import schema as s
from marba_dagster.store.brands import brands_by_id
from marba_dagster.store.schema import COMPETITOR_CHANGE_TYPES
from marba_dagster.store.types import utcnow

GROUP = "opportunities"
RELEVANCE_ENV = "MARBA_RELEVANCE_FILE"
TREND_TTL = timedelta(hours=24)
NEWS_TTL = timedelta(hours=48)
RETRY = FEEDS_RETRY
# Source names in the sources_available check (one entry per country or city).
OPEN_METEO = "Open-Meteo"
TRENDS_FEED = "Google Trends feed {geo}"
NEWS_SEARCH = "Google News search {city}"


class WeatherConfig(dg.Config):
    batch_size: int = DEFAULT_BATCH_SIZE  # locations per Open-Meteo request
    grid_degrees: float = 0.1  # brands within one grid cell share a forecast

    def check_numbers(self) -> None:
        """``InvalidSetting`` (no retry) for a number the detector cannot work with."""
        if self.batch_size < 1:
            raise InvalidSetting(
                "weather_signals config batch_size", self.batch_size, "must be >= 1"
            )
        if not 0 < self.grid_degrees <= 10:
            raise InvalidSetting(
                "weather_signals config grid_degrees", self.grid_degrees, "must be > 0 and <= 10"
            )


def _brands(context, marba_db: MarbaDatabase) -> tuple[list[str], dict[str, dict]]:
    ids = scoped_brand_ids(context, marba_db)
    with marba_db.connect() as conn:
        return ids, brands_by_id(conn, ids)


def _skip(batch: BrandBatch, brand_ids, source: str, reason: str) -> None:
    for b in brand_ids:
        batch.log(b, "warning", f"{source} skipped: {reason}", source=source)


def _result(
    batch: BrandBatch,
    asset: str,
    written: int,
    extra: dict[str, Any],
    preview: list[dict],
    cols,
    *,
    sources: bool = False,
) -> dg.MaterializeResult:
    batch.finish()
    md = {
        **batch.metadata(),
        "signals_written": written,
        **extra,
        "preview": dg.MetadataValue.md(markdown_table(preview, cols)),
    }
    return dg.MaterializeResult(
        metadata=md, check_results=batch.check_results(asset, sources=sources)
    )


# ------------------------------------------------------------------------------ weather


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=RETRY,
    pool=pools.WEATHER,
    check_specs=completeness_check_specs("weather_signals", sources=True),
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
    ids, brands = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    by_loc: dict[tuple[float, float], list[str]] = defaultdict(list)
    no_location = []
    for b in ids:
        br = brands[b]
        if br.get("latitude") is None or br.get("longitude") is None:
            no_location.append(b)
            batch.log(
                b,
                "warning",
                "no weather: the brand has no location (latitude/longitude)",
                source="weather",
            )
            continue
        by_loc[rounded_location(br["latitude"], br["longitude"], config.grid_degrees)].append(b)
    locations = sorted(by_loc)
    results: dict[tuple[float, float], Any] = {}
    metrics = {"requests_sent": 0}
    if locations:
        with open_meteo.client("open_meteo") as client:
            for res in OpenMeteoClient(client).forecast_batches(locations, config.batch_size):
                for i, loc in enumerate(res.locations):
                    results[loc] = res.error if res.error is not None else res.forecasts[i]
            metrics = client.metrics()
    failed_locations = sum(1 for v in results.values() if isinstance(v, HttpError))
    with marba_db.connect() as conn:
        existing = ost.current_signals(
            conn, [b for v in by_loc.values() for b in v], "weather", now - timedelta(hours=6)
        )
    detected: dict[tuple[float, float], tuple] = {}
    written = 0
    preview: list[dict] = []
    for loc in locations:
        got = results.get(loc)
        if isinstance(got, HttpError) or got is None:
            _skip(
                batch,
                by_loc[loc],
                "weather",
                f"forecast unavailable ({type(got).__name__ if got else 'missing'})",
            )
            batch.lose_source(
                OPEN_METEO,
                got if got is not None else "malformed answer: no forecast for the location",
                by_loc[loc],
            )
            continue
        series = HourlySeries(
            got.time,
            got.hourly["temperature_2m"],
            got.hourly["precipitation"],
            got.hourly["snowfall"],
            got.hourly["wind_gusts_10m"],
        )
        detected[loc] = detect_events(loc[0], series, now)
        place_key = f"{loc[0]:.2f},{loc[1]:.2f}"
        for b in by_loc[loc]:

            def work(b=b, loc=loc, place_key=place_key) -> int:
                events, th = detected[loc]
                prior = [
                    (
                        r["dedup_key"],
                        (r["payload"] or {}).get("kind"),
                        r["observed_at"]
                        if not (r["payload"] or {}).get("start")
                        else datetime.fromisoformat(r["payload"]["start"]),
                        r["valid_until"],
                    )
                    for r in existing.get(b, [])
                    if r["valid_until"]
                ]
                rows, used = [], []
                place = brands[b].get("city") or place_key
                for ev in events:
                    key = match_event_key(ev, place_key, [p for p in prior if p[0] not in used])
                    used.append(key)
                    rows.append(
                        {
                            "source": "open-meteo",
                            "title": ev.title(place),
                            "dedup_key": key,
                            "payload": {
                                "kind": ev.kind,
                                "start": ev.start.isoformat(),
                                "end": ev.end.isoformat(),
                                "peak": ev.peak,
                                "threshold": ev.threshold,
                                "unit": ev.unit,
                                "hours": ev.hours,
                                "basis": th.basis,
                                "thresholds": th.as_dict(),
                                "location": list(loc),
                            },
                            "observed_at": now,
                            "valid_until": ev.end,
                            "strength": ev.strength,
                        }
                    )
                with marba_db.begin() as conn:
                    n = ost.write_signals(conn, b, "weather", rows)
                    ost.withdraw_signals(conn, b, "weather", [r["dedup_key"] for r in rows], now)
                preview.extend(
                    {"brand": b, "title": r["title"], "strength": r["strength"]} for r in rows[:2]
                )
                return n

            written += batch.run(b, work) or 0
    return _result(
        batch,
        "weather_signals",
        written,
        {
            "distinct_locations": len(locations),
            "brands_without_location": len(no_location),
            "open_meteo_requests": int(metrics.get("requests_sent", 0)),
            "locations_failed": failed_locations,
        },
        preview,
        ["brand", "title", "strength"],
        sources=True,
    )


# ------------------------------------------------------------------------------- trends


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=RETRY,
    pool=pools.FEEDS,
    check_specs=completeness_check_specs("trend_signals", sources=True),
)
def trend_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, trends_rss: ApiEndpoint
) -> dg.MaterializeResult:
    """Google Trends trending searches of each brand's country matched to the brand's
    keywords and industry. One feed request per country; a country's feed that fails is a
    lost source naming its brands."""
    now = utcnow()
    ids, brands = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    by_geo: dict[str, list[str]] = defaultdict(list)
    for b in ids:
        cc = (brands[b].get("country_code") or "").upper()
        if not cc:
            batch.log(b, "warning", "no trends: the brand has no country", source="trends")
            continue
        by_geo[cc].append(b)
    written, failed_geos, preview = 0, [], []
    with trends_rss.client("trends_rss") as client:
        tc = TrendsClient(client)
        for geo in sorted(by_geo):
            try:
                feed = tc.trending(geo)
            except (HttpError, ValueError) as exc:
                failed_geos.append(geo)
                _skip(
                    batch,
                    by_geo[geo],
                    "trends",
                    f"{geo} feed: {type(exc).__name__}: {getattr(exc, 'message', exc)}",
                )
                batch.lose_source(TRENDS_FEED.format(geo=geo), exc, by_geo[geo])
                continue
            for b in by_geo[geo]:
                br = brands[b]

                def work(b=b, br=br, feed=feed) -> int:
                    rows = []
                    for item in feed.items:
                        m = match_text(
                            item.title,
                            [n.title for n in item.news],
                            br.get("keywords") or [],
                            br.get("industry"),
                        )
                        if m is None:
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
                                        {"title": n.title, "url": n.url, "source": n.source}
                                        for n in item.news[:3]
                                    ],
                                    "match": {
                                        "score": m.score,
                                        "terms": list(m.terms),
                                        "where": m.where,
                                    },
                                },
                                "observed_at": published,
                                "valid_until": published + TREND_TTL,
                                "strength": traffic_strength(traffic),
                            }
                        )
                    with marba_db.begin() as conn:
                        n = ost.write_signals(conn, b, "trend", rows)
                    preview.extend(
                        {"brand": b, "title": r["title"], "strength": r["strength"]}
                        for r in rows[:2]
                    )
                    return n

                written += batch.run(b, work) or 0
        requests = int(client.metrics().get("requests_sent", 0))
    return _result(
        batch,
        "trend_signals",
        written,
        {
            "countries": len(by_geo),
            "countries_failed": len(failed_geos),
            "trends_requests": requests,
        },
        preview,
        ["brand", "title", "strength"],
        sources=True,
    )


# --------------------------------------------------------------------------------- news


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=RETRY,
    pool=pools.FEEDS,
    check_specs=completeness_check_specs("news_signals", sources=True),
)
def news_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, news_rss: ApiEndpoint
) -> dg.MaterializeResult:
    """Local news: one Google News search per city (the city and its brands' keywords),
    each headline matched to each brand's keywords and industry. A city's search that fails
    is a lost source naming its brands."""
    now = utcnow()
    ids, brands = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    by_city: dict[tuple[str, str], list[str]] = defaultdict(list)
    for b in ids:
        br = brands[b]
        if not br.get("city"):
            batch.log(b, "warning", "no local news: the brand has no city", source="news")
            continue
        by_city[(br["city"], (br.get("country_code") or "US").upper())].append(b)
    written, failed, preview = 0, 0, []
    with news_rss.client("news_rss") as client:
        nc = NewsClient(client)
        for city, cc in sorted(by_city):
            members = by_city[(city, cc)]
            kws = [k for b in members for k in (brands[b].get("keywords") or [])]
            q = news_query(city, kws)
            try:
                feed = nc.search(q, cc)
            except (HttpError, ValueError) as exc:
                failed += 1
                _skip(
                    batch,
                    members,
                    "news",
                    f"{city} search: {type(exc).__name__}: {getattr(exc, 'message', exc)}",
                )
                batch.lose_source(NEWS_SEARCH.format(city=city), exc, members)
                continue
            for b in members:
                br = brands[b]

                def work(b=b, br=br, feed=feed, city=city) -> int:
                    rows = []
                    for item in feed.items:
                        published = item.published_at or now
                        if published + NEWS_TTL <= now:
                            continue
                        m = match_text(
                            item.title,
                            [],
                            br.get("keywords") or [],
                            br.get("industry"),
                            ignore=[city],
                        )
                        if m is None:
                            continue
                        age_h = max(0.0, (now - published).total_seconds() / 3600)
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
                                    "match": {
                                        "score": m.score,
                                        "terms": list(m.terms),
                                        "where": m.where,
                                    },
                                },
                                "observed_at": published,
                                "valid_until": published + NEWS_TTL,
                                "strength": round(max(0.3, 1.0 - age_h / 48.0), 4),
                            }
                        )
                    with marba_db.begin() as conn:
                        n = ost.write_signals(conn, b, "news", rows)
                    preview.extend(
                        {"brand": b, "title": r["title"], "strength": r["strength"]}
                        for r in rows[:2]
                    )
                    return n

                written += batch.run(b, work) or 0
        requests = int(client.metrics().get("requests_sent", 0))
    return _result(
        batch,
        "news_signals",
        written,
        {"cities": len(by_city), "cities_failed": failed, "news_requests": requests},
        preview,
        ["brand", "title", "strength"],
        sources=True,
    )


# ----------------------------------------------------------------------------- seasonal


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    check_specs=completeness_check_specs("seasonal_signals"),
)
def seasonal_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Public holidays (``holidays`` package, country and subdivision) and the marketing
    calendar (Valentine's Day to New Year) from their lead time until they end."""
    now = utcnow()
    ids, brands = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    written, preview = 0, []
    for b in ids:
        br = brands[b]

        def work(b=b, br=br) -> int:
            tz = br.get("timezone") or "UTC"
            today = now.astimezone(cal._zone(tz)).date()
            events, note = cal.active_events(today, br.get("country_code"), br.get("subdivision"))
            if note:
                batch.log(b, "info", f"calendar: {note}", source="seasonal")
            rows = []
            for ev in events:
                days_to = (ev.start - today).days
                strength = 1.0 if days_to <= 0 else max(0.3, 1.0 - days_to / max(1, ev.lead_days))
                rows.append(
                    {
                        "source": ev.source,
                        "title": f"{ev.name} ({ev.start.isoformat()})",
                        "dedup_key": ev.dedup_key,
                        "payload": {
                            "kind": ev.kind,
                            "name": ev.name,
                            "start": ev.start.isoformat(),
                            "end": ev.end.isoformat(),
                            "lead_days": ev.lead_days,
                            "days_until": days_to,
                            "country": br.get("country_code"),
                            "subdivision": br.get("subdivision"),
                        },
                        "observed_at": now,
                        "valid_until": ev.expires_at(tz),
                        "strength": round(strength, 4),
                    }
                )
            with marba_db.begin() as conn:
                n = ost.write_signals(conn, b, "seasonal", rows)
                ost.withdraw_signals(conn, b, "seasonal", [r["dedup_key"] for r in rows], now)
            preview.extend(
                {"brand": b, "title": r["title"], "strength": r["strength"]} for r in rows[:2]
            )
            return n

        written += batch.run(b, work) or 0
    return _result(batch, "seasonal_signals", written, {}, preview, ["brand", "title", "strength"])


# --------------------------------------------------------------------------- competitor


# Lineage only: the rows come from the competitive monitoring job's own schedule.
@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    deps=[dg.AssetKey(["competitive", "competitor_snapshots"])],
    check_specs=completeness_check_specs("competitor_signals"),
)
def competitor_signals(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Competitor moves already detected by the competitive monitoring job
    (``intelligence_signals`` of type ``competitor``, ``payload.change_type``): counted and
    checked here; unknown change types are reported and scored as website changes."""
    now = utcnow()
    ids, _ = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        sigs = ost.current_signals(conn, ids, "competitor", now - timedelta(hours=72))
    counts: dict[str, int] = defaultdict(int)
    unknown = 0
    for b, rows in sigs.items():
        for r in rows:
            ct = (r["payload"] or {}).get("change_type")
            if ct not in COMPETITOR_CHANGE_TYPES:
                unknown += 1
                batch.log(
                    b,
                    "warning",
                    f"competitor signal {r['id']} has unknown change_type {ct!r}",
                    source="competitor",
                )
            counts[str(ct)] += 1
    batch.succeeded.extend(ids)
    md = {
        **batch.metadata(),
        "competitor_signals": sum(counts.values()),
        "unknown_change_types": unknown,
        "by_change_type": dg.MetadataValue.json(dict(counts)),
    }
    return dg.MaterializeResult(
        metadata=md, check_results=batch.check_results("competitor_signals")
    )


# ------------------------------------------------------------------------ opportunities


def load_relevance() -> tuple[RelevanceMap, str]:
    """The default mapping, overridden by the JSON file named in MARBA_RELEVANCE_FILE."""
    path = os.environ.get(RELEVANCE_ENV, "").strip()
    if not path:
        return RelevanceMap(merge_relevance(DEFAULT_RELEVANCE, None)), "built-in"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        override = parse_relevance(data, source=path)
    except (OSError, ValueError, RelevanceError) as exc:
        # The same file fails every attempt: fail the step at once, no retries.
        raise InvalidSetting(RELEVANCE_ENV, path, f"cannot use the file: {exc}") from None
    return RelevanceMap(merge_relevance(DEFAULT_RELEVANCE, override)), f"built-in + {path}"


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sql"},
    deps=[weather_signals, trend_signals, seasonal_signals, news_signals, competitor_signals],
    check_specs=completeness_check_specs("intelligence_opportunities"),
)
def intelligence_opportunities(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, notifier: Notifier
) -> dg.MaterializeResult:
    """Opportunities from the current signals: relevance to the brand (the editable event ->
    industry mapping), urgency from time to expiry, a 0..1 score, suggested actions and
    evidence. The same event is one row updated in place (stable dedup key); passed or
    vanished ones become ``expired``. A predictive score learned from the brand's past
    decisions (``acted`` or not) is added when there is enough history. Critical ones are
    pushed once to the notifier webhook. An unusable ``MARBA_RELEVANCE_FILE`` fails the step
    at once (no retries), naming the file."""
    now = utcnow()
    rmap, rsource = load_relevance()
    ids, brands = _brands(context, marba_db)
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        signals = ost.current_signals(conn, ids, None, now)
    totals = defaultdict(int)
    urg = defaultdict(int)
    preview: list[dict] = []
    webhook = notifier.webhook_url if notifier.configured else None

    for b in ids:
        br = brands[b]

        def work(b=b, br=br) -> None:
            drafts, skipped = build_opportunities(signals.get(b, []), br, rmap, now)
            with marba_db.connect() as conn:
                history = ost.decided_history(conn, b)
            fit = fit_history(history)
            preds = (
                fit.model.predict([d.features for d in drafts])
                if fit.model
                else [None] * len(drafts)
            )
            rows = []
            for d, p in zip(drafts, preds):
                row = d.row()
                row["predicted_score"] = p
                row["evidence"] = {
                    **row["evidence"],
                    "model_features": d.features,
                    "prediction": {"score": p, "basis": fit.reason},
                }
                rows.append(row)
            with marba_db.begin() as conn:
                counts = ost.save_opportunities(conn, b, rows, now)
                pending = ost.pending_critical(conn, b)
            for k, v in counts.items():
                totals[k] += v
            totals["skipped_signals"] += len(skipped)
            totals["with_prediction"] += sum(1 for p in preds if p is not None)
            for d in drafts:
                urg[d.urgency] += 1
            if pending:
                sent = push_critical(marba_db, webhook, b, br.get("name") or b, pending, now)
                for k, v in sent.items():
                    totals[f"notify_{k}"] += v
            best = sorted(drafts, key=lambda d: (URGENCY_RANK[d.urgency], -d.score))[:2]
            preview.extend(
                {
                    "brand": b,
                    "type": d.opportunity_type,
                    "urgency": d.urgency,
                    "score": d.score,
                    "title": d.title,
                }
                for d in best
            )

        batch.run(b, work)
    batch.finish()
    md = {
        **batch.metadata(),
        **{k: int(v) for k, v in totals.items()},
        **{f"urgency_{k}": int(urg.get(k, 0)) for k in URGENCY_RANK},
        "relevance_mapping": rsource,
        "preview": dg.MetadataValue.md(
            markdown_table(preview, ["brand", "type", "urgency", "score", "title"])
        ),
    }
    return dg.MaterializeResult(
        metadata=md, check_results=batch.check_results("intelligence_opportunities")
    )


@dg.asset_check(
    asset=intelligence_opportunities,
    description="Active opportunities have a score in 0..1, an urgency and an expiry in the future",
)
def active_opportunities_valid(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    t = s.intelligence_opportunities
    now = utcnow()
    with marba_db.connect() as conn:
        bad = conn.execute(
            sa.select(sa.func.count())
            .select_from(t)
            .where(
                t.c.status == "active",
                sa.or_(
                    t.c.score < 0,
                    t.c.score > 1,
                    sa.and_(
                        t.c.expires_at.is_not(None), t.c.expires_at <= now - timedelta(hours=2)
                    ),
                ),
            )
        ).scalar_one()
    return dg.AssetCheckResult(passed=bad == 0, metadata={"invalid_active": int(bad)})


# Signals checked: those observed within this window (the current ones; bounded work).
SIGNAL_CHECK_WINDOW = timedelta(days=7)
SIGNAL_EXAMPLES = 10
PROBLEM_TEXT = {
    "strength_out_of_range": "with a strength outside [0, 1]",
    "valid_until_not_after_observed_at": "valid until no later than observed",
    "unknown_change_type": "with a missing or unknown change_type",
}


def signal_problems(
    conn, signal_type: str, since: datetime
) -> tuple[int, dict[str, int], list[dict]]:
    """(signals checked, count per problem key, examples) for the ``signal_type`` signals
    observed since ``since``: strength outside [0, 1], valid_until not after observed_at and,
    for competitor signals, a missing or unknown ``payload.change_type``."""
    t = s.intelligence_signals
    scope = [t.c.signal_type == signal_type, t.c.observed_at >= since]
    problems = {
        "strength_out_of_range": sa.or_(t.c.strength < 0, t.c.strength > 1),
        "valid_until_not_after_observed_at": sa.and_(
            t.c.valid_until.is_not(None), t.c.valid_until <= t.c.observed_at
        ),
    }
    if signal_type == "competitor":
        change_type = t.c.payload["change_type"].as_string()
        problems["unknown_change_type"] = sa.or_(
            change_type.is_(None), change_type.not_in(COMPETITOR_CHANGE_TYPES)
        )
    counts = {
        name: int(n)
        for name, n in zip(
            problems,
            conn.execute(
                sa.select(*[sa.func.count().filter(cond) for cond in problems.values()]).where(
                    *scope
                )
            ).one(),
        )
    }
    checked = int(conn.execute(sa.select(sa.func.count()).where(*scope)).scalar_one())
    examples: list[dict] = []
    for name, cond in problems.items():
        if counts[name] and len(examples) < SIGNAL_EXAMPLES:
            for r in conn.execute(
                sa.select(t.c.id, t.c.brand_id, t.c.dedup_key, t.c.strength)
                .where(*scope, cond)
                .order_by(t.c.id)
                .limit(SIGNAL_EXAMPLES - len(examples))
            ):
                examples.append(
                    {
                        "problem": name,
                        "id": r.id,
                        "brand_id": r.brand_id,
                        "dedup_key": r.dedup_key,
                        "strength": r.strength,
                    }
                )
    return checked, counts, examples


def _signals_check(asset: dg.AssetsDefinition, signal_type: str) -> dg.AssetChecksDefinition:
    extra = ", and carry a known payload.change_type" if signal_type == "competitor" else ""

    @dg.asset_check(
        asset=asset,
        name="signals_valid",
        blocking=False,
        description=f"The {signal_type} signals of the last {SIGNAL_CHECK_WINDOW.days} days have a "
        f"strength in [0, 1] and a valid_until after observed_at{extra}.",
    )
    def _check(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
        with marba_db.connect() as conn:
            checked, counts, examples = signal_problems(
                conn, signal_type, utcnow() - SIGNAL_CHECK_WINDOW
            )
        bad = {k: v for k, v in counts.items() if v}
        description = (
            f"{sum(bad.values())} of {checked} {signal_type} signal(s) invalid: "
            + ", ".join(f"{n} {PROBLEM_TEXT[k]}" for k, n in bad.items())
            if bad
            else f"{checked} {signal_type} signal(s) valid"
        )
        if examples:
            description += (
                " (e.g. "
                + ", ".join(
                    list(dict.fromkeys(f"{e['brand_id']}/{e['dedup_key']}" for e in examples))[:3]
                )
                + ")"
            )
        return dg.AssetCheckResult(
            passed=not bad,
            severity=dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "signals_checked": checked,
                **counts,
                "examples": dg.MetadataValue.json(examples),
            },
        )

    return _check


weather_signals_valid = _signals_check(weather_signals, "weather")
trend_signals_valid = _signals_check(trend_signals, "trend")
news_signals_valid = _signals_check(news_signals, "news")
seasonal_signals_valid = _signals_check(seasonal_signals, "seasonal")
competitor_signals_valid = _signals_check(competitor_signals, "competitor")
