"""The opportunity detector end to end: real database (SQLite and PostgreSQL), real sandbox."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.api.opportunities import OpportunityDetection
from marba_dagster.core.opportunities.urgency import URGENCY_RANK
from marba_dagster.defs.opportunities.assets import (
    competitor_signals,
    intelligence_opportunities,
    news_signals,
    seasonal_signals,
    trend_signals,
    weather_signals,
)
from marba_dagster.defs.opportunities.checks import (
    competitor_signals_valid,
    news_signals_valid,
    seasonal_signals_valid,
    trend_signals_valid,
    weather_signals_valid,
)
from marba_dagster.defs.opportunities.resources import build_opportunity_settings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.sandbox.routes.trends import TrendsState
from marba_dagster.sandbox.routes.webhook import WebhookState
from marba_dagster.store import schema
from marba_dagster.store.types import utcnow

ASSETS = [
    weather_signals,
    trend_signals,
    seasonal_signals,
    news_signals,
    competitor_signals,
    intelligence_opportunities,
    weather_signals_valid,
    trend_signals_valid,
    seasonal_signals_valid,
    news_signals_valid,
    competitor_signals_valid,
]
TRENDS_ROUTE = "trends.trending_rss"
WEATHER = dg.AssetKey(["opportunities", "weather_signals"])
TRENDS = dg.AssetKey(["opportunities", "trend_signals"])
NEWS = dg.AssetKey(["opportunities", "news_signals"])
SEASONAL = dg.AssetKey(["opportunities", "seasonal_signals"])
COMPETITOR = dg.AssetKey(["opportunities", "competitor_signals"])
OPPORTUNITIES = dg.AssetKey(["opportunities", "intelligence_opportunities"])

BRANDS = [
    {
        "id": "oslo-coffee",
        "name": "Fjord Coffee",
        "industry": "coffee shop",
        "country_code": "NO",
        "subdivision": None,
        "city": "Oslo",
        "latitude": 59.9139,
        "longitude": 10.7522,
        "timezone": "Europe/Oslo",
        "keywords": ["coffee", "cold brew"],
    },
    {
        "id": "oslo-bakery",
        "name": "Oslo Bakehouse",
        "industry": "bakery",
        "country_code": "NO",
        "subdivision": None,
        "city": "Oslo",
        "latitude": 59.92,
        "longitude": 10.75,
        "timezone": "Europe/Oslo",
        "keywords": ["sourdough", "bakery"],
    },
    {
        "id": "phx-ice",
        "name": "Desert Scoop",
        "industry": "ice cream",
        "country_code": "US",
        "subdivision": "AZ",
        "city": "Phoenix",
        "latitude": 33.45,
        "longitude": -112.07,
        "timezone": "America/Phoenix",
        "keywords": ["ice cream", "gelato"],
    },
    {
        "id": "gb-nowhere",
        "name": "Roaming Bikes",
        "industry": "bike shop",
        "country_code": "GB",
        "subdivision": "ENG",
        "city": None,
        "latitude": None,
        "longitude": None,
        "timezone": "Europe/London",
        "keywords": ["bike", "cycling"],
    },
]


@pytest.fixture
def world(engine, sandbox):
    with engine.begin() as conn:
        conn.execute(schema.brands.insert(), BRANDS)
    ts = sandbox.state.module_state("trends", TrendsState)
    ts.set_items(
        "NO",
        [
            {
                "title": "cold brew recipe",
                "traffic": "20K+",
                "hours_ago": 2,
                "news": ["Cold brew is back"],
            },
            {"title": "election results", "traffic": "1M+", "hours_ago": 1, "news": []},
        ],
    )
    ts.set_items("US", [{"title": "gelato day", "traffic": "5000+", "hours_ago": 3, "news": []}])
    ts.set_items(
        "GB", [{"title": "cycling holidays", "traffic": "2000+", "hours_ago": 3, "news": []}]
    )
    return engine


def resources(db_url, sandbox, webhook=True):
    env = sandbox.env()
    return {
        "marba_db": MarbaDatabase(url=db_url),
        "open_meteo": ApiEndpoint(base_url=env["MARBA_OPEN_METEO_URL"]),
        "trends_rss": ApiEndpoint(base_url=env["MARBA_TRENDS_RSS_URL"], max_attempts=2),
        "news_rss": ApiEndpoint(base_url=env["MARBA_NEWS_RSS_URL"], max_attempts=2),
        "notifier": Notifier(
            webhook_url=sandbox.url("/webhook/slack/T000/B000/secret") if webhook else None
        ),
        # MARBA_RELEVANCE_FILE bound as the code location binds it
        "opportunity_settings": build_opportunity_settings(),
    }


def run(db_url, sandbox, **kw):
    result = dg.materialize(
        ASSETS,
        resources=resources(db_url, sandbox, **kw),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def meta(result, asset: dg.AssetKey):
    (m,) = [
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == asset
    ]
    return {k: getattr(v, "value", v) for k, v in m.metadata.items()}


def rows(engine, table, **where):
    with engine.connect() as conn:
        q = sa.select(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return [dict(r) for r in conn.execute(q).mappings()]


def test_detector_end_to_end_dedup_and_expiry(world, db_url, sandbox):
    engine = world
    r1 = run(db_url, sandbox)
    wm = meta(r1, WEATHER)
    # Oslo brands share one grid cell; Phoenix another; one request for both places
    assert wm["distinct_locations"] == 2 and wm["open_meteo_requests"] == 1
    assert sandbox.request_count("open_meteo.forecast") == 1
    assert wm["brands_without_location"] == 1
    logs = rows(engine, schema.job_logs, brand_id="gb-nowhere")
    assert any("no weather" in log["message"] and log["level"] == "warning" for log in logs)
    assert sandbox.request_count(TRENDS_ROUTE) == 3  # one per country
    assert sandbox.request_count("news.search_rss") == 2  # one per city

    trends = rows(engine, schema.intelligence_signals, signal_type="trend")
    assert {(t["brand_id"], t["payload"]["query"]) for t in trends} == {
        ("oslo-coffee", "cold brew recipe"),
        ("phx-ice", "gelato day"),
        ("gb-nowhere", "cycling holidays"),
    }
    opps1 = rows(engine, schema.intelligence_opportunities)
    assert opps1 and all(0 <= o["score"] <= 1 and o["status"] == "active" for o in opps1)
    assert "trending_topic" in {o["opportunity_type"] for o in opps1}
    first_ids = {o["dedup_key"]: o["id"] for o in opps1}

    # second run: same events, same rows, updated in place
    run(db_url, sandbox)
    opps2 = rows(engine, schema.intelligence_opportunities)
    assert {o["dedup_key"]: o["id"] for o in opps2} == first_ids
    assert len(rows(engine, schema.intelligence_signals, signal_type="trend")) == len(trends)

    # expiry: the trend's validity passes -> its opportunity becomes expired
    trend_opp = next(
        o
        for o in opps2
        if o["opportunity_type"] == "trending_topic" and o["brand_id"] == "oslo-coffee"
    )
    past = utcnow() - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.intelligence_signals)
            .where(
                schema.intelligence_signals.c.signal_type == "trend",
                schema.intelligence_signals.c.brand_id == "oslo-coffee",
            )
            .values(valid_until=past, observed_at=past - timedelta(hours=24))
        )
    sandbox.state.module_state("trends", TrendsState).set_items("NO", [])
    run(db_url, sandbox)
    after = {o["id"]: o for o in rows(engine, schema.intelligence_opportunities)}
    assert after[trend_opp["id"]]["status"] == "expired"
    od = OpportunityDetection(db_url)
    try:
        listed = od.get_all_opportunities("oslo-coffee")
        assert trend_opp["id"] not in {o["id"] for o in listed}
        keys = [(URGENCY_RANK[o["urgency"]], -o["score"]) for o in listed]
        assert keys == sorted(keys)
        with pytest.raises(KeyError):
            od.get_all_opportunities("no-such-brand")
    finally:
        od.close()


def test_faults_skip_only_what_they_affect(world, db_url, sandbox):
    engine = world
    sandbox.faults.add(TRENDS_ROUTE, "entity_bomb", match="GB")
    sandbox.faults.add(TRENDS_ROUTE, "feed_status", match="US", status=429, retry_after=0)
    sandbox.faults.add("news.search_rss", "wrong_encoding", match="Oslo")
    sandbox.faults.add("news.search_rss", "invalid_xml", match="Phoenix")
    result = run(db_url, sandbox)
    trends = rows(engine, schema.intelligence_signals, signal_type="trend")
    assert {t["brand_id"] for t in trends} == {"oslo-coffee"}  # NO unaffected
    assert rows(engine, schema.intelligence_signals, signal_type="news") == []
    assert meta(result, TRENDS)["countries_failed"] == 2
    logs = {
        (log["brand_id"], log["message"].split(":")[0])
        for log in rows(engine, schema.job_logs)
        if log["level"] == "warning"
    }
    assert ("gb-nowhere", "trends skipped") in logs and ("phx-ice", "trends skipped") in logs
    assert ("oslo-coffee", "trends skipped") not in logs
    assert ("oslo-coffee", "news skipped") in logs and ("phx-ice", "news skipped") in logs
    msgs = " ".join(log["message"] for log in rows(engine, schema.job_logs))
    assert "FeedRejected" in msgs and "FeedEncodingError" in msgs and "RateLimited" in msgs
    # weather and the calendar still ran for everyone with the data for them
    assert meta(result, WEATHER)["brands_processed"] == 3
    assert meta(result, SEASONAL)["brands_processed"] == 4


def test_critical_opportunity_pushed_once_and_prediction(world, db_url, sandbox):
    engine = world
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            schema.intelligence_signals.insert(),
            [
                {
                    "id": "comp-sig-1",
                    "brand_id": "phx-ice",
                    "signal_type": "competitor",
                    "source": "competitive_monitoring",
                    "title": "Rival Scoops cut prices by 20%",
                    "payload": {"change_type": "pricing_change"},
                    "dedup_key": "competitor:rival:pricing:1",
                    "observed_at": now,
                    "valid_until": now + timedelta(hours=2),
                    "strength": 0.9,
                }
            ],
        )
    hooks = sandbox.state.module_state("webhook", WebhookState)
    run(db_url, sandbox)
    run(db_url, sandbox)
    received = [r["payload"]["text"] for r in hooks.all()]
    # The sandbox's weather follows the clock, so at some hours a weather event for the brand
    # is critical too and pushed as well: what is checked is that nothing is pushed twice
    # over the two runs and the competitor's move is pushed exactly once.
    assert len(received) == len(set(received))
    assert sum("Rival Scoops cut prices" in text for text in received) == 1
    (opp,) = rows(
        engine,
        schema.intelligence_opportunities,
        dedup_key="competitor_activity:competitor:rival:pricing:1",
    )
    assert opp["urgency"] == "critical" and opp["notified_at"] is not None
    (note,) = [n for n in rows(engine, schema.notifications) if "Rival Scoops" in n["text"]]
    assert note["status"] == "sent" and "secret" not in (note["error"] or "")
    assert opp["predicted_score"] is None
    assert "not enough history" in opp["evidence"]["prediction"]["basis"]

    # history: the brand acts on competitor moves and ignores the rest
    hist = []
    for i in range(12):
        for kind, acted in (("competitor_activity", "acted"), ("seasonal_event", "dismissed")):
            hist.append(
                {
                    "id": f"h-{kind}-{i}",
                    "brand_id": "phx-ice",
                    "opportunity_type": kind,
                    "title": "old",
                    "description": "",
                    "urgency": "high",
                    "score": 0.6,
                    "detected_at": now - timedelta(days=30),
                    "updated_at": now - timedelta(days=29),
                    "expires_at": now - timedelta(days=29),
                    "status": acted,
                    "dedup_key": f"hist:{kind}:{i}",
                    "evidence": {
                        "model_features": {
                            "type": kind,
                            "kind": "pricing_change" if acted == "acted" else "public_holiday",
                            "urgency": "high",
                            "score": 0.6,
                            "relevance": 0.8,
                            "strength": 0.5,
                        }
                    },
                    "suggested_actions": [],
                }
            )
    with engine.begin() as conn:
        conn.execute(schema.intelligence_opportunities.insert(), hist)
    run(db_url, sandbox)
    active = {
        o["opportunity_type"]: o
        for o in rows(
            engine, schema.intelligence_opportunities, brand_id="phx-ice", status="active"
        )
    }
    comp = active["competitor_activity"]
    assert (
        comp["predicted_score"] is not None
        and "learned from 24" in comp["evidence"]["prediction"]["basis"]
    )
    if "seasonal_event" in active:
        assert comp["predicted_score"] > active["seasonal_event"]["predicted_score"]
    texts = [r["payload"]["text"] for r in hooks.all()]
    assert len(texts) == len(set(texts))
    assert sum("Rival Scoops cut prices" in t for t in texts) == 1  # still pushed once


def test_relevance_file_override_and_bad_file(world, db_url, sandbox, monkeypatch, tmp_path):
    engine = world
    f = tmp_path / "relevance.json"
    f.write_text(json.dumps({"pricing_change": {"ice cream": 0.1}}))
    monkeypatch.setenv("MARBA_RELEVANCE_FILE", str(f))
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            schema.intelligence_signals.insert(),
            [
                {
                    "id": "comp-sig-2",
                    "brand_id": "phx-ice",
                    "signal_type": "competitor",
                    "source": "competitive_monitoring",
                    "title": "Rival price cut",
                    "payload": {"change_type": "pricing_change"},
                    "dedup_key": "c2",
                    "observed_at": now,
                    "valid_until": now + timedelta(hours=30),
                    "strength": 0.9,
                }
            ],
        )
    result = run(db_url, sandbox, webhook=False)
    assert (
        rows(engine, schema.intelligence_opportunities, opportunity_type="competitor_activity")
        == []
    )
    assert str(f) in meta(result, OPPORTUNITIES)["relevance_mapping"]
    f.write_text('{"rain": {"coffee": 7}}')
    before = rows(engine, schema.intelligence_opportunities)
    # Even under a retry policy the step fails once: every attempt would read the same file.
    job = dg.Definitions(
        assets=[intelligence_opportunities],
        resources=resources(db_url, sandbox),
        jobs=[
            dg.define_asset_job(
                "opps",
                selection=[intelligence_opportunities],
                op_retry_policy=dg.RetryPolicy(max_retries=2),
            )
        ],
    ).resolve_job_def("opps")
    bad = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not bad.success
    kinds = [
        e.event_type_value
        for e in bad.all_events
        if e.step_key == intelligence_opportunities.op.name
    ]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds
    failure = next(e for e in bad.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(
        f"invalid setting MARBA_RELEVANCE_FILE={str(f)!r}: cannot use the file: "
    )
    assert "outside 0..1" in description and "\n" not in description
    assert rows(engine, schema.intelligence_opportunities) == before  # nothing lost
    f.write_text("{not json")
    bad = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    description = next(
        e for e in bad.all_events if e.is_step_failure
    ).step_failure_data.user_failure_data.description
    assert (
        description.startswith("invalid setting MARBA_RELEVANCE_FILE=") and "\n" not in description
    )


def checks(result) -> dict[tuple[dg.AssetKey, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def test_every_outside_source_down_is_named_and_the_run_goes_on(world, db_url, sandbox):
    engine = world
    sandbox.faults.add("open_meteo.forecast", "status_sequence", statuses=[503] * 3)
    sandbox.faults.add(TRENDS_ROUTE, "status_sequence", statuses=[500] * 6)
    sandbox.faults.add(
        "news.search_rss",
        "malformed_body",
        body="<rss><channel><item>",
        content_type="application/rss+xml",
    )
    result = run(db_url, sandbox)
    found = checks(result)
    weather = found[(WEATHER, "sources_available")]
    assert weather.passed is False and weather.severity == dg.AssetCheckSeverity.WARN
    assert (
        weather.description.startswith("lost 1 source(s): Open-Meteo (")
        and "HTTP 503" in weather.description
    )
    assert "3 brand(s) without it" in weather.description
    trends = found[(TRENDS, "sources_available")]
    assert trends.passed is False
    assert trends.description.startswith("lost 3 source(s): Google Trends feed GB (")
    for geo in ("GB", "NO", "US"):
        assert f"Google Trends feed {geo} (" in trends.description
    assert "HTTP 500" in trends.description
    news = found[(NEWS, "sources_available")]
    assert news.passed is False
    assert "Google News search Oslo (malformed answer" in news.description
    assert "Google News search Phoenix (malformed answer" in news.description
    assert {x["source"]: x["brands"] for x in news.metadata["lost_sources"].value} == {
        "Google News search Oslo": ["oslo-bakery", "oslo-coffee"],
        "Google News search Phoenix": ["phx-ice"],
    }
    # No brand failed: they were skipped for the lost sources, and say so.
    brands = found[(WEATHER, "all_brands_processed")]
    assert (
        brands.passed is True and "3 more brand(s) skipped for a lost source" in brands.description
    )
    assert found[(SEASONAL, "all_brands_processed")].passed is True
    assert found[(OPPORTUNITIES, "all_brands_processed")].passed is True
    assert "secret" not in " ".join(e.description or "" for e in found.values())
    # The calendar still produced its signals.
    assert rows(engine, schema.intelligence_signals, signal_type="seasonal")
    assert rows(engine, schema.intelligence_signals, signal_type="weather") == []


def test_sources_available_passes_when_every_source_answers(world, db_url, sandbox):
    found = checks(run(db_url, sandbox))
    for asset in (WEATHER, TRENDS, NEWS):
        assert found[(asset, "sources_available")].passed is True, asset
        assert found[(asset, "sources_available")].description == "every source answered"
    for asset in (WEATHER, TRENDS, NEWS, SEASONAL, COMPETITOR, OPPORTUNITIES):
        assert found[(asset, "all_brands_processed")].passed is True, asset


def _signal(sid, brand, signal_type, *, strength=0.5, observed=None, valid=None, payload=None):
    now = utcnow()
    observed = observed or now - timedelta(hours=1)
    return {
        "id": sid,
        "brand_id": brand,
        "signal_type": signal_type,
        "source": "test",
        "title": sid,
        "payload": payload or {},
        "dedup_key": sid,
        "observed_at": observed,
        "valid_until": valid if valid is not None else observed + timedelta(hours=5),
        "strength": strength,
    }


def test_signals_valid_checks_pass_on_good_rows_and_name_bad_ones(world, db_url, sandbox):
    engine = world
    with engine.begin() as conn:
        conn.execute(
            schema.intelligence_signals.insert(),
            [
                _signal(
                    "comp-ok", "phx-ice", "competitor", payload={"change_type": "pricing_change"}
                )
            ],
        )
    first = checks(run(db_url, sandbox))
    for asset in (WEATHER, TRENDS, NEWS, SEASONAL, COMPETITOR):
        assert first[(asset, "signals_valid")].passed is True, (
            asset,
            first[(asset, "signals_valid")].description,
        )
    assert first[(COMPETITOR, "signals_valid")].metadata["signals_checked"].value == 1

    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            schema.intelligence_signals.insert(),
            [
                _signal("w-strong", "oslo-coffee", "weather", strength=1.5),
                _signal(
                    "t-backwards",
                    "phx-ice",
                    "trend",
                    observed=now - timedelta(hours=2),
                    valid=now - timedelta(hours=3),
                ),
                _signal("n-negative", "oslo-bakery", "news", strength=-0.1),
                _signal("c-unknown", "phx-ice", "competitor", payload={"change_type": "price_war"}),
                _signal(
                    "c-missing", "phx-ice", "competitor", payload={"url": "https://rival.example"}
                ),
                # Outside the checked window: not looked at.
                _signal(
                    "w-old",
                    "oslo-coffee",
                    "weather",
                    strength=7.0,
                    observed=now - timedelta(days=30),
                ),
            ],
        )
    found = checks(
        dg.materialize(
            [
                weather_signals,
                trend_signals,
                news_signals,
                competitor_signals,
                weather_signals_valid,
                trend_signals_valid,
                news_signals_valid,
                competitor_signals_valid,
            ],
            resources=resources(db_url, sandbox),
            instance=dg.DagsterInstance.ephemeral(),
        )
    )
    weather = found[(WEATHER, "signals_valid")]
    assert weather.passed is False and weather.severity == dg.AssetCheckSeverity.WARN
    assert (
        weather.description.startswith("1 problem(s) in ")
        and "1 with a strength outside [0, 1]" in weather.description
    )
    assert "oslo-coffee/w-strong" in weather.description
    assert [e["id"] for e in weather.metadata["examples"].value] == ["w-strong"]
    trend = found[(TRENDS, "signals_valid")]
    assert trend.passed is False and "1 valid until no later than observed" in trend.description
    assert found[(NEWS, "signals_valid")].metadata["strength_out_of_range"].value == 1
    comp = found[(COMPETITOR, "signals_valid")]
    assert comp.passed is False and comp.description.startswith(
        "2 problem(s) in 3 competitor signal(s): "
    )
    assert "2 with a missing or unknown change_type" in comp.description
    assert sorted(e["id"] for e in comp.metadata["examples"].value) == ["c-missing", "c-unknown"]


def test_impossible_weather_config_fails_at_once_without_retries(world, db_url, sandbox):
    result = dg.materialize(
        [weather_signals],
        resources=resources(db_url, sandbox),
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {weather_signals.op.name: {"config": {"batch_size": 0}}}},
        raise_on_error=False,
    )
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events if e.step_key == weather_signals.op.name]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description == (
        "invalid setting weather_signals config batch_size=0: must be >= 1"
    )
    assert sandbox.request_count("open_meteo.forecast") == 0
