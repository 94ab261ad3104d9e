"""EnrichmentEngine (the guide's Python API) for real: MARBA database and sandbox through the
environment (``marba_env``), runs launched in process on a Dagster instance under a
temporary DAGSTER_HOME, results read back from enrichment_cache."""

from __future__ import annotations

import gc

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.api import EnrichmentEngine
from marba_dagster.core.brands import brand_id_of
from marba_dagster.core.enrichment.sections import SECTIONS
from marba_dagster.runner import RunError
from marba_dagster.store import schema
from marba_dagster.store.types import utcnow
from marba_dagster_tests.conftest import (
    create_pg_database,
    drop_pg_database,
    open_pg_connections,
    production_dagster_home,
    require_postgres,
)
from marba_dagster_tests.enrichment_fixtures import seed_brands


@pytest.fixture
def world(marba_env, engine):
    seed_brands(engine, utcnow(), ["b1", "b2"])
    instance = dg.DagsterInstance.get()  # the temporary DAGSTER_HOME of marba_env
    try:
        yield EnrichmentEngine(instance=instance), instance
    finally:
        instance.dispose()


def _cache(engine, brand):
    with engine.connect() as conn:
        return {
            r.section: r
            for r in conn.execute(
                sa.select(schema.enrichment_cache).where(
                    schema.enrichment_cache.c.brand_id == brand
                )
            )
        }


def test_enrich_all_sections_runs_one_brand_through_the_instance(world, engine):
    api, instance = world
    out = api.enrich_all_sections("b1")
    assert out["success"] and out["errors"] == []
    run = instance.get_run_by_id(out["run_id"])
    assert (
        run.job_name == "enrichment_scheduler"
        and brand_id_of(run.tags["dagster/partition"]) == "b1"
    )
    assert set(out["sections"]) == set(SECTIONS)
    cached = _cache(engine, "b1")
    assert set(cached) == set(SECTIONS) and _cache(engine, "b2") == {}
    for section, got in out["sections"].items():
        assert got["brand_id"] == "b1" and got["section"] == section
        assert got["payload"]["insights"] and got["stale"] is False
        assert got["input_fingerprint"] == cached[section].input_fingerprint
    materialized = {
        k.path[-1]
        for k in instance.get_asset_keys()
        if instance.get_latest_materialization_event(k) is not None
    }
    assert set(SECTIONS) <= materialized
    # Fresh entries with unchanged inputs are kept on a second call.
    again = api.enrich_all_sections("b1")
    assert again["success"]
    assert {k: v["created_at"] for k, v in again["sections"].items()} == {
        k: v["created_at"] for k, v in out["sections"].items()
    }


def test_refresh_section_replaces_a_fresh_entry(world, engine):
    api, _ = world
    first = api.enrich_all_sections("b1")["sections"]["reach"]
    out = api.refresh_section("b1", "reach")
    assert out["success"] and list(out["sections"]) == ["reach"]
    assert out["section"]["created_at"] > first["created_at"]
    assert out["section"]["payload"]["refresh_reason"] == "requested"
    with engine.connect() as conn:
        requested = conn.execute(
            sa.select(schema.enrichment_schedule.c.refresh_requested_at).where(
                schema.enrichment_schedule.c.brand_id == "b1",
                schema.enrichment_schedule.c.section == "reach",
            )
        ).scalar_one()
    assert requested is not None and requested <= out["section"]["created_at"]
    # The other sections were left alone.
    assert (
        api.get_section("b1", "measure")["created_at"]
        == api.enrich_all_sections("b1")["sections"]["measure"]["created_at"]
    )


def test_get_section_reads_cache_and_staleness(world, engine):
    api, _ = world
    assert api.get_section("b1", "reflect") is None
    api.refresh_section("b1", "reflect")
    got = api.get_section("b1", "reflect")
    assert got["stale"] is False
    with engine.begin() as conn:
        conn.execute(
            schema.enrichment_cache.update()
            .where(schema.enrichment_cache.c.brand_id == "b1")
            .values(expires_at=utcnow().replace(year=2000))
        )
    assert api.get_section("b1", "reflect")["stale"] is True
    with pytest.raises(ValueError):
        api.get_section("b1", "nonsense")


def test_unknown_inactive_and_bad_section(world, engine):
    api, instance = world
    with pytest.raises(RunError, match="unknown brand: nope"):
        api.enrich_all_sections("nope")
    with engine.begin() as conn:
        conn.execute(
            schema.brands.update().where(schema.brands.c.id == "b2").values(is_active=False)
        )
    with pytest.raises(RunError, match="not active"):
        api.enrich_all_sections("b2")
    with pytest.raises(RunError, match="not active"):
        api.refresh_section("b2", "reach")
    with pytest.raises(RunError, match="unknown brand"):
        api.refresh_section("nope", "reach")
    with pytest.raises(ValueError):
        api.refresh_section("b1", "nonsense")
    assert instance.get_runs() == []
    assert _cache(engine, "b2") == {}
    with engine.connect() as conn:  # a refused request records nothing
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(schema.enrichment_schedule)
            ).scalar_one()
            == 0
        )


def test_default_instance_and_one_failing_section(marba_env, engine):
    seed_brands(engine, utcnow(), ["b1"], timezones={"b1": "Mars/Olympus_Mons"})
    api = EnrichmentEngine()  # DAGSTER_HOME and MARBA_DATABASE_URL from the environment
    out = api.enrich_all_sections("b1")
    assert not out["success"]
    assert len(out["errors"]) == 1 and "reach: b1" in out["errors"][0]
    assert out["sections"]["reach"] is None  # the timezone is needed for best times
    assert {k for k, v in out["sections"].items() if v is not None} == set(SECTIONS) - {"reach"}
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(out["run_id"])
        assert (
            run.status == dg.DagsterRunStatus.FAILURE
            and brand_id_of(run.tags["dagster/partition"]) == "b1"
        )


def test_default_instance_is_disposed_after_each_call(marba_env, engine, monkeypatch):
    """With production's instance storage (held connections), a call that made its own
    instance closes it: an app calling the API all day does not collect connections."""
    require_postgres()
    url = create_pg_database("marba_api_inst")
    try:
        production_dagster_home(marba_env["dagster_home"], url, monkeypatch)
        seed_brands(engine, utcnow(), ["b1"])
        gc.disable()  # connections must be closed by the call, not by a collector pass
        try:
            api = EnrichmentEngine()
            for section in ("measure", "reach"):
                assert api.refresh_section("b1", section)["success"]
            assert open_pg_connections(url) == 0
        finally:
            gc.enable()
    finally:
        drop_pg_database(url)
