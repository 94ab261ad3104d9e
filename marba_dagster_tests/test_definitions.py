"""The code location loads, and holds the seven jobs with the schedules of docs/architecture.md."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from marba_dagster.core import catalog
from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, brand_id_of, brand_partition_key
from marba_dagster.core.run_scope import NothingToRun
from marba_dagster.core.runs import BRANDS_TAG, JOB_TAG
from marba_dagster.definitions import load_definitions
from marba_dagster.defs import execution
from marba_dagster.defs.brands import brand_partitions_sensor
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.instance.partitions import scope_now, sync_brand_partitions
from marba_dagster.settings import SettingError, job_cron
from marba_dagster.store import schema as s

DESIGN_JOBS = {
    "enrichment_scheduler": ("cron-enrichment-scheduler", "0 2 * * *"),
    "opportunity_detector": ("cron-opportunity-detector", "0 * * * *"),
    "competitive_monitoring": ("cron-competitive-monitoring", "0 */6 * * *"),
    "analytics_collector": ("cron-analytics-collector", "0 3 * * *"),
    "learning_engine": ("cron-learning-engine", "0 4 * * *"),
    "auto_publisher": ("cron-auto-publisher", "*/5 * * * *"),
    "engagement_collector": ("cron-engagement-collector", "0 * * * *"),
}


@pytest.fixture(scope="module")
def defs():
    return load_definitions()


def test_seven_jobs_with_their_schedules_and_crons(defs):
    repo = defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} >= set(DESIGN_JOBS)
    schedules = {sch.job_name: sch for sch in repo.schedule_defs}
    for name, (_alias, cron) in DESIGN_JOBS.items():
        assert name in schedules, f"no schedule for {name}"
        assert schedules[name].cron_schedule == cron
        assert schedules[name].execution_timezone == "UTC"
        assert schedules[name].default_status == dg.DefaultScheduleStatus.RUNNING
        assert defs.resolve_job_def(name).tags[JOB_TAG] == name


def test_the_asset_graph_is_valid(defs):
    """Partition mappings, deps and resources resolve as `dagster definitions validate` does."""
    dg.Definitions.validate_loadable(defs)
    defs.resolve_asset_graph()
    for spec in catalog.JOBS:
        defs.resolve_job_def(spec.name)


def test_both_names_of_every_job_resolve():
    for name, (alias, _cron) in DESIGN_JOBS.items():
        assert catalog.resolve(name).name == name
        assert catalog.resolve(alias).name == name
        assert catalog.resolve(name.replace("_", "-")).name == name
    with pytest.raises(catalog.UnknownJob, match="known jobs"):
        catalog.resolve("cron-nonsense")


def test_schedule_override_is_configuration(monkeypatch):
    spec = catalog.resolve("auto_publisher")
    monkeypatch.setenv("MARBA_CRON_AUTO_PUBLISHER", "*/10 * * * *")
    assert job_cron(spec) == "*/10 * * * *"
    defs = load_definitions()
    sched = {sch.job_name: sch for sch in defs.get_repository_def().schedule_defs}["auto_publisher"]
    assert sched.cron_schedule == "*/10 * * * *"
    monkeypatch.setenv("MARBA_CRON_AUTO_PUBLISHER", "every five minutes")
    with pytest.raises(SettingError, match="MARBA_CRON_AUTO_PUBLISHER=.*invalid cron"):
        job_cron(spec)


def test_brand_sensor_runs_by_default(defs):
    sensor = defs.get_sensor_def("brand_partitions_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def _brands(engine, rows):
    with engine.begin() as conn:
        conn.execute(
            s.brands.insert(),
            [
                {"id": i, "name": i, "industry": "bakery", "is_active": active, "keywords": []}
                for i, active in rows
            ],
        )


def test_brand_partitions_follow_is_active(engine, db_url):
    _brands(engine, [("b1", True), ("b2", True), ("b3", False)])
    with dg.instance_for_test() as instance:
        db = MarbaDatabase(url=db_url)
        ctx = dg.build_sensor_context(instance=instance, resources={"marba_db": db})
        result = brand_partitions_sensor(ctx)
        assert isinstance(result, dg.SensorResult)
        (add,) = result.dynamic_partitions_requests
        # Keys say which brand they are: its name made readable, then its id.
        assert sorted(add.partition_keys) == ["b1~b1", "b2~b2"]
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, list(add.partition_keys))

        with engine.begin() as conn:
            conn.execute(s.brands.update().where(s.brands.c.id == "b1").values(is_active=False))
            conn.execute(s.brands.update().where(s.brands.c.id == "b3").values(is_active=True))
        result = brand_partitions_sensor(
            dg.build_sensor_context(instance=instance, resources={"marba_db": db})
        )
        kinds = {
            type(r).__name__: sorted(r.partition_keys) for r in result.dynamic_partitions_requests
        }
        assert kinds == {
            "AddDynamicPartitionsRequest": ["b3~b3"],
            "DeleteDynamicPartitionsRequest": ["b1~b1"],
        }
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, ["b3~b3"])
        instance.delete_dynamic_partition(BRANDS_PARTITIONS_NAME, "b1~b1")

        result = brand_partitions_sensor(
            dg.build_sensor_context(instance=instance, resources={"marba_db": db})
        )
        assert isinstance(result, dg.SkipReason)


def test_brand_partition_keys_name_the_brand():
    assert brand_partition_key("3f2a-9c1e", "Café Zürich & Co.") == "cafe-zurich-co~3f2a-9c1e"
    assert brand_partition_key("b7", "東京ベーカリー") == "brand~b7"  # no latin letters
    assert brand_partition_key("b8", "x" * 90) == "x" * 40 + "~b8"
    for key in ("cafe-zurich-co~3f2a-9c1e", "brand~a~b", "bare-id"):
        assert brand_partition_key(brand_id_of(key), "n").endswith("~" + brand_id_of(key))
    assert brand_id_of("brand~a~b") == "a~b" and brand_id_of("bare-id") == "bare-id"


def test_a_renamed_brand_and_a_bare_id_key_are_replaced(engine):
    _brands(engine, [("b1", True)])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, ["b1"])  # a key from before names
        assert sync_brand_partitions(instance, engine) == (["b1~b1"], ["b1"])
        with engine.begin() as conn:
            conn.execute(s.brands.update().where(s.brands.c.id == "b1").values(name="Rye & Co"))
        assert sync_brand_partitions(instance, engine) == (["rye-co~b1"], ["b1~b1"])
        assert instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME) == ["rye-co~b1"]


def test_run_scope_takes_the_latest_complete_period():
    now = datetime(2026, 11, 28, 3, 0, 12, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        assert scope_now(catalog.resolve("analytics_collector"), now, instance)[0] == "2026-11-27"
        key, tags = scope_now(catalog.resolve("engagement_collector"), now, instance, ["b1"])
        assert key == "2026-11-28-02:00"
        assert tags[BRANDS_TAG] == "b1" and tags[JOB_TAG] == "engagement_collector"
        with pytest.raises(NothingToRun):
            scope_now(catalog.resolve("enrichment_scheduler"), now, instance)
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, ["a", "b", "c"])
        key, tags = scope_now(catalog.resolve("enrichment_scheduler"), now, instance)
        assert key is None
        assert tags["dagster/asset_partition_range_start"] == "a"
        assert tags["dagster/asset_partition_range_end"] == "c"
        assert scope_now(catalog.resolve("enrichment_scheduler"), now, instance, ["b"])[0] == "b"


def test_every_asset_has_a_description_and_a_known_group(defs):
    # The seven job groups, plus the job health report (monitoring runs on its own schedule).
    groups = {j.group for j in catalog.JOBS} | {"monitoring"}
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, f"{spec.key.to_user_string()} has no docstring"
        assert spec.group_name in groups, (
            f"{spec.key.to_user_string()} is in group {spec.group_name}"
        )


# The pool each outside service belongs to, by the resource that reaches it.
POOL_OF_RESOURCE = {
    "graph_api": {execution.PLATFORM_READS_POOL, execution.PLATFORM_PUBLISH_POOL},
    "x_api": {execution.PLATFORM_READS_POOL, execution.PLATFORM_PUBLISH_POOL},
    "x_app_api": {execution.PLATFORM_READS_POOL},
    "gbp_api": {execution.PLATFORM_READS_POOL, execution.PLATFORM_PUBLISH_POOL},
    "safe_fetch": {execution.COMPETITOR_SITES_POOL},
    "open_meteo": {execution.WEATHER_POOL},
    "trends_rss": {execution.FEEDS_POOL},
    "news_rss": {execution.FEEDS_POOL},
    "llm": {execution.LLM_POOL},
}


def test_every_step_that_calls_an_outside_service_is_in_its_pool(defs):
    """A step calling an outside API is in that API's pool (so shards running at once can be
    bounded per API); a step that only reads and writes the database is in none."""
    steps = [a for a in defs.resolve_asset_graph().assets_defs if a.is_executable]
    seen = set()
    for a in steps:
        outside = set(a.required_resource_keys) & set(POOL_OF_RESOURCE)
        name = a.op.name
        if not outside:
            assert a.op.pool is None, f"{name} calls no outside service but is in pool {a.op.pool}"
            continue
        for key in outside:
            assert a.op.pool in POOL_OF_RESOURCE[key], (
                f"{name} uses {key} but is in pool {a.op.pool}"
            )
        seen.add(a.op.pool)
    assert seen == set(execution.ALL_POOLS)
    assert {a.op.name for a in steps if a.op.pool == execution.PLATFORM_PUBLISH_POOL} == {
        "publishing__published_posts"
    }
