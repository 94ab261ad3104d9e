"""The opportunity detector's I/O: outside sources asked once per group of brands, signals
and opportunities written per brand, critical ones pushed once.

Used by the ``opportunities`` assets (and benchmarks); no Dagster here. Outside calls go
through the ``connectors`` clients the caller opens; the tables through
``store.opportunities``; the logic is ``core.opportunities``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from marba_dagster.connectors.http import ApiClient, HttpError
from marba_dagster.connectors.open_meteo import LocationForecast, OpenMeteoClient
from marba_dagster.connectors.rss import NewsClient, NewsFeed, TrendsClient, TrendsFeed
from marba_dagster.core.opportunities.matching import news_query
from marba_dagster.core.opportunities.predictive import fit_history
from marba_dagster.core.opportunities.relevance import (
    DEFAULT_RELEVANCE,
    RelevanceMap,
    merge_relevance,
    parse_relevance,
)
from marba_dagster.core.opportunities.scoring import OpportunityDraft, build_opportunities
from marba_dagster.core.opportunities.signals import PREVIEW_PER_BRAND, Location, keywords_of
from marba_dagster.core.opportunities.urgency import URGENCY_RANK
from marba_dagster.core.opportunities.weather import HourlySeries
from marba_dagster.services.notifications import push_once, settled
from marba_dagster.store import opportunities as store_opportunities

NOTIFICATION_KIND = "opportunity_critical"

Forecast = LocationForecast | HttpError | None  # None: the answer did not cover the place


# ------------------------------------------------------------------------ outside sources


def fetch_forecasts(
    client: ApiClient, locations: Sequence[Location], batch_size: int
) -> dict[Location, Forecast]:
    """Each location's 48-hour forecast (or the error of its batch): one Open-Meteo request
    per ``batch_size`` locations."""
    forecasts: dict[Location, Forecast] = {}
    for batch in OpenMeteoClient(client).forecast_batches(locations, batch_size):
        for i, location in enumerate(batch.locations):
            forecasts[location] = batch.error if batch.error is not None else batch.forecasts[i]
    return forecasts


def hourly_series(forecast: LocationForecast) -> HourlySeries:
    return HourlySeries(
        forecast.time,
        forecast.hourly["temperature_2m"],
        forecast.hourly["precipitation"],
        forecast.hourly["snowfall"],
        forecast.hourly["wind_gusts_10m"],
    )


def fetch_trends(client: ApiClient, countries: Iterable[str]) -> dict[str, TrendsFeed | Exception]:
    """Each country's trending searches, or why its feed could not be read."""
    trends = TrendsClient(client)
    feeds: dict[str, TrendsFeed | Exception] = {}
    for country in countries:
        try:
            feeds[country] = trends.trending(country)
        except (HttpError, ValueError) as exc:
            feeds[country] = exc
    return feeds


def search_news(
    client: ApiClient,
    cities: Mapping[tuple[str, str], Sequence[str]],
    brands: Mapping[str, Mapping[str, Any]],
) -> dict[tuple[str, str], NewsFeed | Exception]:
    """One Google News search per (city, country), for the city and its brands' keywords;
    each answer, or why it could not be read."""
    news = NewsClient(client)
    feeds: dict[tuple[str, str], NewsFeed | Exception] = {}
    for city, country in cities:
        query = news_query(city, keywords_of(cities[(city, country)], brands))
        try:
            feeds[(city, country)] = news.search(query, country)
        except (HttpError, ValueError) as exc:
            feeds[(city, country)] = exc
    return feeds


def failure_text(exc: BaseException) -> str:
    """``RateLimited: ...``: the class and message of a feed's failure (no URL, no secret)."""
    return f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"


def requests_sent(client: ApiClient) -> int:
    return int(client.metrics().get("requests_sent", 0))


# -------------------------------------------------------------------------------- signals


def replace_signals(
    conn: Connection, brand_id: str, signal_type: str, rows: Sequence[dict], now: datetime
) -> int:
    """The brand's signals of a source computed whole each run (weather, the calendar):
    upsert these, end the ones no longer there (their opportunities expire)."""
    written = store_opportunities.write_signals(conn, brand_id, signal_type, rows)
    store_opportunities.withdraw_signals(
        conn, brand_id, signal_type, [row["dedup_key"] for row in rows], now
    )
    return written


# ------------------------------------------------------------------------- opportunities


def load_relevance(path: Path | None) -> tuple[RelevanceMap, str]:
    """The built-in event -> industry mapping, overridden by the JSON file at ``path``;
    and where the mapping came from. A file that cannot be read or used raises
    ``OSError`` or ``ValueError`` (``RelevanceError``)."""
    if path is None:
        return RelevanceMap(merge_relevance(DEFAULT_RELEVANCE, None)), "built-in"
    data = json.loads(path.read_text(encoding="utf-8"))
    override = parse_relevance(data, source=str(path))
    return RelevanceMap(merge_relevance(DEFAULT_RELEVANCE, override)), f"built-in + {path}"


@dataclass
class BrandOpportunities:
    """What one brand's pass wrote: its drafts, the rows saved, and the critical ones still
    to be pushed."""

    drafts: list[OpportunityDraft]
    skipped_signals: int
    with_prediction: int
    saved: dict[str, int]
    pending_critical: list[dict]


def refresh_opportunities(
    engine: Engine,
    brand_id: str,
    brand: Mapping[str, Any],
    signals: Sequence[dict],
    relevance: RelevanceMap,
    now: datetime,
) -> BrandOpportunities:
    """Build the brand's opportunities from its current signals, add the predictive score
    learned from its past decisions, save them (the same event stays one row; passed or
    vanished ones expire) and read the critical ones not yet notified."""
    drafts, skipped = build_opportunities(signals, brand, relevance, now)
    with engine.connect() as conn:
        history = store_opportunities.decided_history(conn, brand_id)
    fit = fit_history(history)
    predictions = (
        fit.model.predict([draft.features for draft in drafts])
        if fit.model
        else [None] * len(drafts)
    )
    rows = []
    for draft, prediction in zip(drafts, predictions, strict=True):
        row = draft.row()
        row["predicted_score"] = prediction
        row["evidence"] = {
            **row["evidence"],
            "model_features": draft.features,
            "prediction": {"score": prediction, "basis": fit.reason},
        }
        rows.append(row)
    with engine.begin() as conn:
        saved = store_opportunities.save_opportunities(conn, brand_id, rows, now)
        pending = store_opportunities.pending_critical(conn, brand_id)
    return BrandOpportunities(
        drafts=drafts,
        skipped_signals=len(skipped),
        with_prediction=sum(1 for p in predictions if p is not None),
        saved=saved,
        pending_critical=pending,
    )


@dataclass
class OpportunityTotals:
    """A run's opportunities summed over its brands, for the materialization's metadata."""

    counts: Counter[str] = field(default_factory=Counter)
    urgencies: Counter[str] = field(default_factory=Counter)
    preview: list[dict[str, Any]] = field(default_factory=list)

    def add(self, brand_id: str, result: BrandOpportunities) -> None:
        self.counts.update(result.saved)
        self.counts["skipped_signals"] += result.skipped_signals
        self.counts["with_prediction"] += result.with_prediction
        self.urgencies.update(draft.urgency for draft in result.drafts)
        best = sorted(result.drafts, key=_most_urgent_first)[:PREVIEW_PER_BRAND]
        self.preview += [
            {
                "brand": brand_id,
                "type": draft.opportunity_type,
                "urgency": draft.urgency,
                "score": draft.score,
                "title": draft.title,
            }
            for draft in best
        ]

    def add_notifications(self, sent: Mapping[str, int]) -> None:
        for outcome, count in sent.items():
            self.counts[f"notify_{outcome}"] += count


def _most_urgent_first(draft: OpportunityDraft) -> tuple[int, float]:
    return URGENCY_RANK[draft.urgency], -draft.score


# ------------------------------------------------------------------------------ alerts


def notification_key(brand_id: str, dedup_key: str) -> str:
    return f"opportunity:{brand_id}:{dedup_key}"[:200]


def alert_text(brand_name: str, opportunity: Mapping[str, Any], now: datetime) -> str:
    left = ""
    if opportunity.get("expires_at"):
        minutes = max(0, int((opportunity["expires_at"] - now).total_seconds() // 60))
        left = f" (expires in {minutes // 60}h{minutes % 60:02d})"
    return (
        f":rotating_light: Critical opportunity for {brand_name}: {opportunity['title']}{left}\n"
        f"{opportunity.get('description', '')}"
    )


def push_critical(
    engine: Engine,
    webhook_url: str | None,
    brand_id: str,
    brand_name: str,
    opportunities: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, int]:
    """Push each critical opportunity once to the Slack-compatible webhook.

    Each push goes through ``services.notifications.push_once`` keyed
    ``opportunity:<brand>:<dedup key>``: claimed before it is sent (two runs seeing the same
    opportunity push it once), retried by later runs while attempts remain, never sent again
    once delivered, and the webhook URL (a credential) never appears in an error. An
    opportunity whose alert is delivered (or recorded, with no webhook) is marked notified.
    Returns counts by outcome: sent, logged, failed (the next run tries again) and
    already_sent (another run has it)."""
    counts = {"sent": 0, "already_sent": 0, "failed": 0, "logged": 0}
    for opportunity in opportunities:
        key = notification_key(brand_id, opportunity["dedup_key"])
        status = push_once(
            engine,
            webhook_url,
            dedup_key=key,
            kind=NOTIFICATION_KIND,
            text=alert_text(brand_name, opportunity, now),
            brand_id=brand_id,
        )
        counts["already_sent" if status == "duplicate" else status] += 1
        if status in ("sent", "logged") or (status == "duplicate" and settled(engine, key)):
            with engine.begin() as conn:
                store_opportunities.mark_notified(conn, opportunity["id"], now)
    return counts
