"""The app's rows checked at the boundary: one bad row sinks only itself, named.

``core.rows`` directly for the rules; then the real assets on both databases with the
issue's rows: keywords ``[1, null, {"x": 2}, ""]``, a latitude of 999, ``watch_urls``
stored as a string and ``social_accounts`` stored as a list. Every other brand is
processed; the bad one is named in ``job_logs`` (brand and field), in the run's metadata
and by the ``all_brands_processed`` WARN check. And a batched Open-Meteo request never
fails for one member: bad coordinates are refused before batching and a 4xx is bisected.
"""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.connectors.http import ApiClient, ClientError, HttpPolicy
from marba_dagster.connectors.open_meteo import OpenMeteoClient
from marba_dagster.core.rows import (
    DROPPED,
    IGNORED,
    NO_LOCATION,
    SKIPPED,
    check_brand,
    check_competitor,
    check_platform_account,
)
from marba_dagster.defs.competitive.assets import competitive_gaps, competitor_snapshots
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.opportunities.assets import news_signals, weather_signals
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many
from marba_dagster_tests.test_opportunities_assets import BRANDS

BAD_KEYWORDS = [1, None, {"x": 2}, "", "espresso"]
BRANDS_CHECK = "all_brands_processed"

# ------------------------------------------------------------------------------- rules


def brand(**kw):
    return {"id": "b1", "name": "Cafe", "industry": "cafe", **kw}


def test_keywords_keep_the_valid_strings_and_name_what_was_dropped():
    row, problems = check_brand(brand(keywords=BAD_KEYWORDS))
    assert row["keywords"] == ["espresso"]
    (problem,) = problems
    assert (problem.field, problem.action, problem.brand_id) == ("keywords", DROPPED, "b1")
    assert "4 of 5" in problem.text() and "b1" in problem.text()


@pytest.mark.parametrize(
    "keywords", ["coffee, tea", {"a": 1}, 7], ids=["string", "object", "number"]
)
def test_keywords_of_the_wrong_shape_are_ignored(keywords):
    row, problems = check_brand(brand(keywords=keywords))
    assert row["keywords"] == [] and problems[0].action == IGNORED


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [(999, 2.0, "latitude"), (45.0, -181, "longitude"), ("48.1", 2.0, "latitude")],
)
def test_coordinates_out_of_range_mean_no_location(lat, lon, field):
    row, problems = check_brand(brand(latitude=lat, longitude=lon, keywords=["a"]))
    assert row["latitude"] is None and row["longitude"] is None
    (problem,) = problems
    assert (problem.field, problem.action) == (field, NO_LOCATION)
    assert "no weather" in problem.text()


def test_good_brand_has_no_problem_and_unusable_identity_skips_the_row():
    row, problems = check_brand(brand(latitude=48, longitude=2, keywords=["a"], city="Paris"))
    assert problems == [] and row["latitude"] == 48.0
    row, problems = check_brand({"id": "b2", "name": None, "industry": "cafe"})
    assert row is None and problems[0].action == SKIPPED and problems[0].field == "name"


def test_competitor_shapes():
    row, problems = check_competitor(
        {
            "id": "c1",
            "brand_id": "b1",
            "name": "C",
            "watch_urls": "https://c.example/pricing",
            "social_accounts": ["x", "123"],
        }
    )
    assert row["watch_urls"] == [] and row["social_accounts"] == {}
    assert {(p.field, p.action) for p in problems} == {
        ("watch_urls", IGNORED),
        ("social_accounts", IGNORED),
    }
    assert all("c1 of b1" in p.text() for p in problems)
    row, problems = check_competitor(
        {"id": "c2", "brand_id": "b1", "name": "C2", "watch_urls": ["https://a", 3, None]}
    )
    assert row["watch_urls"] == ["https://a"] and problems[0].action == DROPPED


def test_accounts_and_posts_with_unusable_identity_are_skipped():
    ok, problems = check_platform_account(
        {"id": "a1", "brand_id": "b1", "platform": "x", "external_account_id": "42"}
    )
    assert ok is not None and problems == []
    bad, problems = check_platform_account(
        {"id": "a2", "brand_id": "b1", "platform": "x", "external_account_id": 42}
    )
    assert bad is None and problems[0].field == "external_account_id"


# ------------------------------------------------------------------------ through assets


def warnings(engine) -> list[tuple[str, str]]:
    logs = schema.job_logs
    with engine.connect() as conn:
        return [
            (r.brand_id, r.message)
            for r in conn.execute(sa.select(logs.c.brand_id, logs.c.message, logs.c.level))
            if r.level == "warning"
        ]


def check(result, name: str = BRANDS_CHECK) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_bad_keywords_sink_only_their_brand_in_news_signals(db_url, engine, sandbox):
    rows = [dict(b) for b in BRANDS]
    rows[0]["keywords"] = BAD_KEYWORDS  # oslo-coffee
    with engine.begin() as conn:
        conn.execute(schema.brands.insert(), rows)
    result = dg.materialize(
        [news_signals],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "news_rss": ApiEndpoint(base_url=sandbox.env()["MARBA_NEWS_RSS_URL"]),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    evaluation = check(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "oslo-coffee" in evaluation.description and "keywords" in evaluation.description
    assert any(
        b == "oslo-coffee" and "keywords" in m and "dropped" in m for b, m in warnings(engine)
    )
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["invalid_row_values"].value == 1
    assert metadata["brands_failed"].value == 0
    assert metadata["brands_processed"].value == 3  # both Oslo brands and Phoenix
    # Every brand's search was asked: the Oslo one carries the remaining keyword.
    queries = " ".join(r["query"] for r in sandbox.requests("news.search_rss"))
    assert "espresso" in queries and "Phoenix" in queries


def test_latitude_999_skips_weather_for_that_brand_only(db_url, engine, sandbox):
    rows = [dict(b) for b in BRANDS]
    rows[2]["latitude"] = 999  # phx-ice
    with engine.begin() as conn:
        conn.execute(schema.brands.insert(), rows)
    result = dg.materialize(
        [weather_signals],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "open_meteo": ApiEndpoint(base_url=sandbox.env()["MARBA_OPEN_METEO_URL"]),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    # The batch went out without the bad place and was answered (no 400 for anyone).
    assert all(r["status"] == 200 for r in sandbox.requests("open_meteo.forecast"))
    assert "999" not in " ".join(r["query"] for r in sandbox.requests("open_meteo.forecast"))
    evaluation = check(result)
    assert not evaluation.passed and "phx-ice" in evaluation.description
    assert "latitude" in evaluation.description
    assert check(result, "sources_available").passed  # Open-Meteo was not lost
    assert any(b == "phx-ice" and "latitude" in m for b, m in warnings(engine))


def test_bad_competitor_rows_sink_only_their_field(db_url, engine, sandbox):
    sites = f"{sandbox.base_url}/sites"
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.brands,
            [
                {"id": "b1", "name": "Corner Bakery", "industry": "bakery", "keywords": []},
                {"id": "b2", "name": "Other Shop", "industry": "retail", "keywords": []},
            ],
        )
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": "comp-str",
                    "brand_id": "b1",
                    "name": "Stringy",
                    "website_url": f"{sites}/comp-str/",
                    "watch_urls": f"{sites}/comp-str/pricing",
                    "social_accounts": ["x", "123"],
                },
                {
                    "id": "comp-two",
                    "brand_id": "b2",
                    "name": "Two",
                    "website_url": f"{sites}/comp-two/",
                    "watch_urls": [f"{sites}/comp-two/pricing"],
                    "social_accounts": {"x": "123"},
                },
            ],
        )
    result = dg.materialize(
        [competitor_snapshots, competitive_gaps],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"], per_host_interval=0
            ),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    # Not fetched letter by letter: only the two websites and the one good watch URL.
    paths = [r["path"] for r in sandbox.requests() if r["path"].startswith("/sites/")]
    assert sorted(set(paths)) == [
        "/sites/comp-str/",
        "/sites/comp-two/",
        "/sites/comp-two/pricing",
    ]
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == BRANDS_CHECK]
    snapshots_check = [e for e in evaluations if e.asset_key.path[-1] == "competitor_snapshots"][0]
    assert not snapshots_check.passed
    assert "watch_urls" in snapshots_check.description
    assert "social_accounts" in snapshots_check.description
    gaps_check = [e for e in evaluations if e.asset_key.path[-1] == "competitive_gaps"][0]
    assert gaps_check.passed  # gap analysis ran for both brands (no AttributeError)
    assert any(b == "b1" and "watch_urls" in m for b, m in warnings(engine))


# ------------------------------------------------------------------------ batch isolation


def test_open_meteo_batch_bisects_a_4xx_to_the_culprit(sandbox):
    places = [(48.1 + i, 11.5 + i) for i in range(8)]
    culprit = places[5]
    # The sandbox rejects every request whose query carries the culprit's latitude.
    sandbox.faults.add(
        "open_meteo.forecast",
        "status_sequence",
        statuses=[400] * 20,
        path_contains=f"{culprit[0]:.4f}",
    )
    client = ApiClient(
        sandbox.env()["MARBA_OPEN_METEO_URL"], policy=HttpPolicy(max_attempts=1), name="om"
    )
    with client:
        results = OpenMeteoClient(client).forecast_batches(places, batch_size=100)
    failed = [r for r in results if r.error is not None]
    assert [r.locations for r in failed] == [[culprit]]
    assert isinstance(failed[0].error, ClientError)
    answered = [loc for r in results if r.error is None for loc in r.locations]
    assert sorted(answered) == sorted(p for p in places if p != culprit)
    assert sandbox.request_count("open_meteo.forecast") <= 1 + 2 * 3  # one request per halving


def test_open_meteo_refuses_bad_coordinates_before_batching(sandbox):
    client = ApiClient(sandbox.env()["MARBA_OPEN_METEO_URL"], name="om")
    with client:
        results = OpenMeteoClient(client).forecast_batches([(999.0, 2.0), (48.1, 11.5)])
    bad = [r for r in results if r.error is not None]
    assert [r.locations for r in bad] == [[(999.0, 2.0)]] and "latitude" in str(bad[0].error)
    assert sandbox.request_count("open_meteo.forecast") == 1


def test_unusable_account_row_is_left_out_and_named(db_url, engine, sandbox):
    from marba_dagster_tests import test_analytics_collector as analytics_tests

    day = analytics_tests._setup(engine, sandbox)
    accounts = schema.platform_accounts
    with engine.begin() as conn:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == "acct-beta-instagram")
            .values(external_account_id=" ")
        )
    result = dg.materialize(
        analytics_tests.ASSETS,
        resources=analytics_tests._resources(db_url, sandbox),
        partition_key=day.isoformat(),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    evaluation = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == BRANDS_CHECK and e.asset_key.path[-1] == "platform_metrics"
    ][0]
    assert not evaluation.passed
    assert "acct-beta-instagram" in evaluation.description
    assert "external_account_id" in evaluation.description
    assert any(b == "beta" and "external_account_id" in m for b, m in warnings(engine))
    # Nothing was asked for the blank account; the others were collected.
    assert not any("/%20" in r["path"] or r["path"].endswith("/ ") for r in sandbox.requests())
    posts = schema.content_posts
    with engine.connect() as conn:
        collected = {
            tuple(r) for r in conn.execute(sa.select(posts.c.brand_id, posts.c.platform).distinct())
        }
    assert {("alpha", "facebook"), ("alpha", "x"), ("beta", "facebook")} <= collected
    assert ("beta", "instagram") not in collected
