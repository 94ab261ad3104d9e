"""The fault matrix: every hostile answer and careless row, through the real jobs' assets,
on SQLite and PostgreSQL, against the sandbox over real HTTP.

Each row is one failure kind: what happens, what is lost, what the operator sees. Rows
already covered by a test elsewhere are listed with that test; the others are here.

==========================  =================================================================
case                        covered by
==========================  =================================================================
header drip (hostile)       here: news search of one city, one competitor page (+ the client
                            tests in test_http_deadline.py: ApiClient and SafeFetcher against
                            raw-socket servers dripping headers, body, or never answering)
body drip                   test_http_client::test_slow_drip_body_ends_at_the_deadline,
                            test_http_deadline (raw socket)
never answers               here: Open-Meteo (weather lost, the rest of the job runs)
429, Retry-After seconds    test_rate_limit_retries (both forms, analytics job: no Dagster
429, Retry-After HTTP-date  re-run within seconds); test_http_client::test_429_retry_after_is_
                            waited_out (both forms); test_publishing::test_429_with_retry_after_
                            reschedules_after_it; here: weather 429 then answer (HTTP-date)
5xx sequences               here: weather [500, 502] then answer, [500] x 3 = lost source;
                            test_http_client::test_5xx_* (client)
malformed JSON              test_analytics_collector::test_persistent_429_and_malformed_page_
                            leave_only_that_account_unchanged; here: Open-Meteo malformed
malformed XML, XML bombs,   test_opportunities_assets::test_faults_skip_only_what_they_affect,
wrong encodings             test_rss_feeds::test_each_feed_fault_skips_only_its_country,
                            test_competitive_monitoring::test_unreadable_feed_is_a_lost_source_
                            naming_the_competitor
size bomb, gzip bomb        test_safe_fetch::test_50mb_body_cut_at_cap_with_bounded_memory,
                            test_gzip_bomb_cut_at_cap_with_bounded_memory, test_http_compressed;
                            here: Open-Meteo gzip bomb and 50 MB body (answer too large)
PostgreSQL restart mid-run  here: every connection of the run's database terminated while the
                            run waits on Open-Meteo (pg_terminate_backend: the shared server
                            is not stopped); the run reconnects and loses nothing
kill -9 of a publisher      test_publishing::test_killed_between_platform_answer_and_commit_
                            becomes_unknown (and the publisher's own crash tests)
revoked tokens              test_analytics_collector::test_revoked_and_rejected_tokens_mark_
                            reconnect_and_the_rest_goes_on, test_engagement::test_rejected_
                            token_flags_reconnect_and_other_sources_still_collected,
                            test_publishing::test_revoked_token_fails_with_reconnect_reason
the SSRF list               test_safe_fetch::test_ssrf_refused_without_connecting (and the
                            address tests there), test_competitive_monitoring::test_refused_
                            competitor_url_is_a_failure_not_a_crash
an API echoing the token    test_redaction (every collect path and the publisher)
bad app rows                test_row_validation (keywords, latitude 999, watch_urls as a
                            string, social_accounts as a list, a blank account id)
one place failing a batch   here: Open-Meteo 400 for one place, bisected and named;
                            test_row_validation (bisection, refusal before batching)
==========================  =================================================================
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.opportunities.weather import rounded_location
from marba_dagster.defs.competitive.assets import competitor_snapshots
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.opportunities.assets import news_signals, weather_signals
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many
from marba_dagster_tests.conftest import _truncate_all
from marba_dagster_tests.test_opportunities_assets import BRANDS

WEATHER_ROUTE = "open_meteo.forecast"
NEWS_ROUTE = "news.search_rss"


@pytest.fixture
def brands(engine):
    with engine.begin() as conn:
        conn.execute(schema.brands.insert(), BRANDS)
    return engine


def run_assets(assets, db_url, sandbox, **endpoint):
    env = sandbox.env()
    resources = {
        "marba_db": MarbaDatabase(url=db_url),
        "open_meteo": ApiEndpoint(base_url=env["MARBA_OPEN_METEO_URL"], **endpoint),
        "news_rss": ApiEndpoint(base_url=env["MARBA_NEWS_RSS_URL"], **endpoint),
    }
    return dg.materialize(
        assets,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def signal_brands(engine, signal_type: str) -> set[str]:
    signals = schema.intelligence_signals
    with engine.connect() as conn:
        return {
            r[0]
            for r in conn.execute(
                sa.select(signals.c.brand_id).where(signals.c.signal_type == signal_type)
            )
        }


def warned(engine) -> dict[str, str]:
    logs = schema.job_logs
    with engine.connect() as conn:
        return {
            r.brand_id: r.message
            for r in conn.execute(sa.select(logs.c.brand_id, logs.c.message, logs.c.level))
            if r.level == "warning" and r.brand_id
        }


# ------------------------------------------------------------------- hostile servers


def test_header_drip_on_one_news_search_loses_that_city_only(brands, db_url, sandbox):
    sandbox.faults.add(NEWS_ROUTE, "header_drip", interval=0.3, path_contains="Phoenix")
    result = run_assets([news_signals], db_url, sandbox, deadline=5.0, max_attempts=1)
    assert result.success
    sources = checks(result)["sources_available"]
    assert not sources.passed and "Phoenix" in sources.description
    assert "timeout" in sources.description  # the deadline cut the dripping headers
    assert "Oslo" not in sources.description
    assert "news skipped" in warned(brands)["phx-ice"]
    assert "oslo-coffee" not in warned(brands)  # Oslo's search answered


def test_header_drip_on_one_competitor_page_loses_that_url_only(db_url, engine, sandbox):
    sites = f"{sandbox.base_url}/sites"
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "b1", "name": "Bakery", "industry": "bakery"}])
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": cid,
                    "brand_id": "b1",
                    "name": cid,
                    "website_url": f"{sites}/{cid}/",
                    "watch_urls": [f"{sites}/{cid}/pricing"],
                }
                for cid in ("comp-slow", "comp-fine")
            ],
        )
    sandbox.faults.add("sites.page", "header_drip", interval=0.3, path_contains="comp-slow/pricing")
    result = dg.materialize(
        [competitor_snapshots],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"],
                per_host_interval=0,
                deadline=5.0,
            ),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    sources = checks(result)["sources_available"]
    assert not sources.passed and "comp-slow" in sources.description
    snapshots = schema.competitive_intelligence_snapshots
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(snapshots.c.url, snapshots.c.error).where(snapshots.c.brand_id == "b1")
        ).all()
    failed = {url for url, error in rows if error}
    assert failed == {f"{sites}/comp-slow/pricing"}
    assert {f"{sites}/comp-fine/", f"{sites}/comp-fine/pricing", f"{sites}/comp-slow/"} <= {
        url for url, error in rows if not error
    }


def test_open_meteo_never_answering_loses_weather_only(brands, db_url, sandbox):
    sandbox.faults.add(WEATHER_ROUTE, "never_answer")
    result = run_assets(
        [weather_signals, news_signals], db_url, sandbox, deadline=5.0, max_attempts=1
    )
    assert result.success
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()
    }
    lost = evaluations[("weather_signals", "sources_available")]
    assert not lost.passed and "Open-Meteo" in lost.description and "timeout" in lost.description
    assert evaluations[("news_signals", "sources_available")].passed
    assert signal_brands(brands, "weather") == set()


# ------------------------------------------------------------ statuses and bodies


def test_429_with_an_http_date_then_an_answer_is_waited_out(brands, db_url, sandbox):
    sandbox.faults.add(WEATHER_ROUTE, "rate_limit", retry_after=1, http_date=True, times=1)
    result = run_assets([weather_signals], db_url, sandbox)
    assert result.success and checks(result)["sources_available"].passed
    assert [r["status"] for r in sandbox.requests(WEATHER_ROUTE)] == [429, 200]


def test_5xx_sequence_then_an_answer_loses_nothing(brands, db_url, sandbox):
    sandbox.faults.add(WEATHER_ROUTE, "status_sequence", statuses=[500, 502])
    result = run_assets([weather_signals], db_url, sandbox)
    assert result.success and checks(result)["sources_available"].passed
    assert checks(result)["all_brands_processed"].passed
    assert [r["status"] for r in sandbox.requests(WEATHER_ROUTE)] == [500, 502, 200]


@pytest.mark.parametrize(
    ("kind", "params", "cause"),
    [
        ("status_sequence", {"statuses": [500, 500, 500]}, "HTTP 500"),
        ("malformed_body", {}, "malformed answer"),
        ("gzip_bomb", {"megabytes": 200}, "answer too large"),
        ("oversized_body", {"megabytes": 50}, "answer too large"),
    ],
    ids=["5xx-persistent", "malformed-json", "gzip-bomb", "size-bomb"],
)
def test_a_broken_open_meteo_is_a_named_lost_source(brands, db_url, sandbox, kind, params, cause):
    sandbox.faults.add(WEATHER_ROUTE, kind, **params)
    result = run_assets(
        [weather_signals, news_signals], db_url, sandbox, max_attempts=3, deadline=10
    )
    assert result.success  # the job goes on: news still ran
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()
    }
    lost = evaluations[("weather_signals", "sources_available")]
    assert not lost.passed and "Open-Meteo" in lost.description and cause in lost.description
    assert evaluations[("news_signals", "sources_available")].passed
    assert "weather skipped" in warned(brands)["oslo-coffee"]


def test_open_meteo_400_for_one_place_is_isolated_and_names_its_brand(brands, db_url, sandbox):
    # Phoenix's grid point, as the batch request spells it: every request carrying it is a 400.
    lat, _lon = rounded_location(33.45, -112.07, 0.1)
    sandbox.faults.add(
        WEATHER_ROUTE, "status_sequence", statuses=[400] * 10, path_contains=f"{lat:.4f}"
    )
    result = run_assets([weather_signals], db_url, sandbox)
    assert result.success
    lost = checks(result)["sources_available"]
    assert not lost.passed and "phx-ice" in lost.description and "HTTP 400" in lost.description
    assert "oslo-coffee" not in lost.description  # Oslo's forecast came in the other half
    statuses = [r["status"] for r in sandbox.requests(WEATHER_ROUTE)]
    assert statuses[0] == 400 and 200 in statuses
    assert "weather skipped" in warned(brands)["phx-ice"]
    assert "oslo-coffee" not in warned(brands)


# ------------------------------------------------------------------ the database


@pytest.mark.slow
def test_postgresql_connections_dropped_mid_run_lose_nothing(pg_session_url, sandbox):
    """A PostgreSQL restart as the run sees it: every connection to its database is
    terminated while the run waits on Open-Meteo (the shared server keeps running)."""
    url = pg_session_url
    _truncate_all(url)
    pg = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with pg.begin() as conn:
        conn.execute(schema.brands.insert(), BRANDS)
    sandbox.faults.add(WEATHER_ROUTE, "latency", ms=2500)
    terminated: list[bool] = []

    def restart_when_waiting() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end and not sandbox.request_count(WEATHER_ROUTE):
            time.sleep(0.05)
        with pg.connect() as conn:
            terminated.extend(
                bool(r[0])
                for r in conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            )

    thread = threading.Thread(target=restart_when_waiting)
    thread.start()
    result = run_assets([news_signals, weather_signals], url, sandbox)
    thread.join()
    assert terminated and all(terminated)  # the run's connections were really dropped
    assert result.success
    brand_checks = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "all_brands_processed"
    ]
    assert len(brand_checks) == 2 and all(e.passed for e in brand_checks)
    with pg.connect() as conn:
        errors = conn.execute(
            sa.select(sa.func.count()).where(schema.job_logs.c.level == "error")
        ).scalar()
    assert errors == 0
    pg.dispose()
