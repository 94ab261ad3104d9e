"""The learning engine end to end on a real database: asset, API, automation condition."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from marba_dagster.api.learning import LearningEngine
from marba_dagster.defs.analytics.assets import brand_daily_metrics, platform_metrics
from marba_dagster.defs.learning.assets import learning_patterns
from marba_dagster.defs.learning.checks import patterns_consistent
from marba_dagster.defs.learning.sensors import learning_automation_sensor
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.store import schema as s
from marba_dagster.store.db import insert_many
from marba_dagster.store.types import utcnow
from marba_dagster_tests.learning_fixtures import planted_posts


def _store(engine, brands: dict[str, str], posts: pd.DataFrame) -> None:
    now = utcnow()
    with engine.begin() as conn:
        insert_many(
            conn,
            s.brands,
            [
                {
                    "id": b,
                    "name": b.title(),
                    "industry": "cafe",
                    "timezone": tz,
                    "keywords": ["beans"],
                }
                for b, tz in brands.items()
            ],
        )
        if posts.empty:
            return
        insert_many(
            conn,
            s.content_posts,
            [
                {
                    "id": r.post_id,
                    "brand_id": r.brand_id,
                    "platform": r.platform,
                    "external_post_id": r.external_post_id,
                    "body": r.body,
                    "format": r.format,
                    "published_at": r.published_at.to_pydatetime()
                    if hasattr(r.published_at, "to_pydatetime")
                    else r.published_at,
                }
                for r in posts.itertuples()
            ],
        )
        rows = []
        for r in posts.itertuples():
            metrics = {
                c: int(getattr(r, c))
                for c in (
                    "impressions",
                    "reach",
                    "likes",
                    "comments",
                    "shares",
                    "saves",
                    "clicks",
                    "video_views",
                )
            }
            # An older, smaller snapshot that the engine must ignore (it uses the latest).
            rows.append(
                {
                    "post_id": r.post_id,
                    "metric_date": now.date() - timedelta(days=3),
                    **{k: v // 3 for k, v in metrics.items()},
                    "collected_at": now,
                }
            )
            rows.append(
                {"post_id": r.post_id, "metric_date": now.date(), **metrics, "collected_at": now}
            )
        insert_many(conn, s.post_metrics, rows)


def _recent(df: pd.DataFrame) -> pd.DataFrame:
    # Place the generated posts inside the engine's one-year window.
    shift = pd.Timestamp(utcnow()) - pd.Timedelta(days=100) - df["published_at"].min()
    df = df.copy()
    df["published_at"] = df["published_at"] + pd.Timedelta(days=shift.days // 7 * 7)
    return df


def test_learning_asset_writes_patterns_and_api_ranks_recommendations(db_url, engine):
    posts = pd.concat(
        [
            _recent(
                planted_posts(
                    "cafe",
                    "instagram",
                    "America/New_York",
                    700,
                    seed=11,
                    start=pd.Timestamp("2025-06-01", tz="UTC").to_pydatetime(),
                )
            ),
            _recent(planted_posts("small", "instagram", "UTC", 8, seed=12)),
        ]
    )
    posts["published_at"] = pd.to_datetime(posts["published_at"], utc=True)
    _store(engine, {"cafe": "America/New_York", "small": "UTC", "empty": "Asia/Tokyo"}, posts)

    result = dg.materialize(
        [learning_patterns, patterns_consistent], resources={"marba_db": MarbaDatabase(url=db_url)}
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert (
        checks["all_brands_processed"].passed
        and checks["all_brands_processed"].description == "all 3 brand(s) processed"
    )
    assert checks["patterns_consistent"].passed, checks["patterns_consistent"].description
    md = result.asset_materializations_for_node("learning__learning_patterns")[0].metadata
    assert md["brands"].value == 3
    assert md["patterns_found"].value > 0
    assert md["recommendable_patterns"].value >= 3
    assert "pattern_key" in md["preview"].value

    api = LearningEngine(db_url)
    recs = api.generate_recommendations("cafe")
    kinds = {(r["pattern_type"], r["pattern_key"]) for r in recs}
    assert ("content_format", "video") in kinds
    assert ("hashtag", "#summer") in kinds
    hours = [
        r for r in recs if r["pattern_type"] == "best_posting_time" and "-" not in r["pattern_key"]
    ]
    assert hours and hours[0]["pattern_key"] == "18"
    assert [r["rank"] for r in recs] == list(range(1, len(recs) + 1))
    gains = [(r["evidence"]["lift"] - 1) * r["evidence"]["confidence"] for r in recs]
    assert gains == sorted(gains, reverse=True)
    assert all(r["evidence"]["confidence"] > 0.5 and r["evidence"]["p_value"] < 0.05 for r in recs)
    assert "America/New_York" in hours[0]["text"] and "18:00" in hours[0]["text"]

    small = api.get_patterns("small")
    assert small and {p["confidence"] for p in small} == {0.3}
    assert api.generate_recommendations("small") == []
    assert api.get_patterns("empty") == [] and api.generate_recommendations("empty") == []

    # Re-learning replaces the patterns: same set, no duplicates, fresh timestamps.
    before = {
        (p["platform"], p["pattern_type"], p["pattern_key"]) for p in api.get_patterns("cafe")
    }
    assert api.learn(["cafe"]) == len(before)
    after = api.get_patterns("cafe")
    assert {(p["platform"], p["pattern_type"], p["pattern_key"]) for p in after} == before


def test_learning_in_brand_slices_gives_the_patterns_of_one_pass(engine, monkeypatch):
    """Brands are read and learned BRANDS_PER_READ at a time (bounded memory); every
    statistic is per brand and platform, so slices of one brand give the same patterns."""
    from marba_dagster.services import learning as learning_io

    posts = pd.concat(
        [
            _recent(planted_posts("cafe", "instagram", "America/New_York", 300, seed=21)),
            _recent(
                planted_posts(
                    "gym", "instagram", "Europe/Paris", 250, seed=22, hot_format="carousel"
                )
            ),
            _recent(planted_posts("bar", "facebook", "UTC", 200, seed=23, hot_tag="#friday")),
        ]
    )
    posts["published_at"] = pd.to_datetime(posts["published_at"], utc=True)
    _store(
        engine,
        {"cafe": "America/New_York", "gym": "Europe/Paris", "bar": "UTC", "none": "UTC"},
        posts,
    )
    brands = ["bar", "cafe", "gym", "none"]
    now = utcnow()

    def learned() -> tuple[int, int, pd.DataFrame]:
        run = learning_io.learn_and_store(engine, brands, now=now)
        cols = [
            "brand_id",
            "platform",
            "pattern_type",
            "pattern_key",
            "lift",
            "p_value",
            "recommended",
        ]
        table = run.patterns[cols].astype(dict.fromkeys(cols[:4], str))
        table = table.sort_values(cols[:4]).reset_index(drop=True)
        return run.posts, run.written, table

    whole = learned()
    monkeypatch.setattr(learning_io, "BRANDS_PER_READ", 1)
    sliced = learned()
    assert whole[0] == sliced[0] == len(posts)
    assert whole[1] == sliced[1] > 0
    assert set(whole[2]["brand_id"]) == {"bar", "cafe", "gym"}
    pd.testing.assert_frame_equal(whole[2], sliced[2])


def test_a_brand_whose_patterns_cannot_be_written_fails_alone_and_keeps_its_patterns(engine):
    from contextlib import contextmanager

    from marba_dagster.services.learning import replace_patterns

    _store(engine, {"good": "UTC", "bad": "UTC"}, pd.DataFrame())
    now = utcnow()
    row = {
        "platform": "instagram",
        "pattern_type": "hashtag",
        "pattern_key": "#beans",
        "lift": 1.4,
        "data_points": 40,
        "confidence": 0.7,
        "p_value": 0.01,
        "details": {},
        "computed_at": now,
    }
    with engine.begin() as conn:
        insert_many(conn, s.learning_patterns, [{**row, "brand_id": "bad"}])
    failed, processed = {}, []

    @contextmanager
    def isolate(brand_id):  # records like BrandBatch.brand
        try:
            yield
        except Exception as exc:
            failed[brand_id] = exc
        else:
            processed.append(brand_id)

    # The database refuses bad's new pattern (an unknown pattern type): the transaction of
    # both brands fails, then each brand is written on its own.
    written = replace_patterns(
        engine,
        ["bad", "good"],
        [
            {**row, "brand_id": "bad", "pattern_type": "no_such_type", "pattern_key": "x"},
            {**row, "brand_id": "good"},
        ],
        isolate,
    )
    assert written == 1 and processed == ["good"] and list(failed) == ["bad"]
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(s.learning_patterns.c.brand_id, s.learning_patterns.c.pattern_key)
        ).all()
    assert sorted(stored) == [("bad", "#beans"), ("good", "#beans")]


def test_learning_runs_when_a_day_of_analytics_lands():
    defs = dg.Definitions(
        assets=[platform_metrics, brand_daily_metrics, learning_patterns],
        sensors=[learning_automation_sensor],
        resources={
            "marba_db": MarbaDatabase(url="sqlite:///unused.db"),
            "graph_api": ApiEndpoint(base_url="http://127.0.0.1:9"),
            "x_api": ApiEndpoint(base_url="http://127.0.0.1:9"),
        },
    )
    assert learning_automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.get_num_requested(learning_patterns.key) == 0

        day = (date.today() - timedelta(days=1)).isoformat()
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=brand_daily_metrics.key, partition=day)
        )
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
        assert second.get_num_requested(learning_patterns.key) == 1
        # Analytics assets themselves are never requested by this condition.
        assert second.get_num_requested(brand_daily_metrics.key) == 0

        # Handled: nothing more until another day lands.
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=second.cursor
        )
        assert third.get_num_requested(learning_patterns.key) == 0


def test_patterns_consistent_names_inconsistent_patterns(db_url, engine):
    posts = _recent(planted_posts("cafe", "instagram", "UTC", 120, seed=5))
    posts["published_at"] = pd.to_datetime(posts["published_at"], utc=True)
    _store(engine, {"cafe": "UTC"}, posts)
    resources = {"marba_db": MarbaDatabase(url=db_url)}
    first = dg.materialize([learning_patterns, patterns_consistent], resources=resources)
    check = {e.check_name: e for e in first.get_asset_check_evaluations()}["patterns_consistent"]
    assert check.passed is True and check.metadata["patterns_checked"].value > 0

    now = utcnow()
    good = {
        "brand_id": "cafe",
        "platform": "x",
        "lift": 1.2,
        "data_points": 40,
        "confidence": 0.7,
        "p_value": 0.01,
        "details": {},
        "computed_at": now,
    }
    with engine.begin() as conn:
        insert_many(
            conn,
            s.learning_patterns,
            [
                {**good, "pattern_type": "best_posting_time", "pattern_key": "tue-18"},  # fine
                {**good, "pattern_type": "best_posting_time", "pattern_key": "25"},
                {**good, "pattern_type": "best_posting_time", "pattern_key": "tuesday-9"},
                {**good, "pattern_type": "hashtag", "pattern_key": "summer"},
                {**good, "pattern_type": "content_format", "pattern_key": "hologram"},
                {**good, "pattern_type": "power_word", "pattern_key": "synergy"},
                {**good, "pattern_type": "topic", "pattern_key": "cold brew", "confidence": 0.9},
                {**good, "pattern_type": "topic", "pattern_key": "latte", "lift": -0.5},
                # Posts at 03:00 that got no engagement at all: a lift of 0 is real data.
                {**good, "pattern_type": "best_posting_time", "pattern_key": "03", "lift": 0.0},
                {
                    **good,
                    "pattern_type": "hashtag",
                    "pattern_key": "#old",
                    "lift": -1.0,
                    "computed_at": now - timedelta(days=10),
                },  # outside the checked window
            ],
        )
    result = dg.materialize(
        [learning_patterns, patterns_consistent],
        resources=resources,
        selection=dg.AssetSelection.checks(patterns_consistent),
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "1 with a confidence not the tier of its data points" in check.description
    assert "1 with a negative lift" in check.description
    assert "5 with a malformed pattern key" in check.description
    assert check.metadata["malformed_key"].value == 5
    bad_keys = {e["pattern_key"] for e in check.metadata["examples"].value}
    assert bad_keys == {"25", "tuesday-9", "summer", "hologram", "synergy", "cold brew", "latte"}
