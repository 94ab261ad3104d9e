"""What the enrichment assets tell Dagster, through a real instance on a temporary
directory and the MARBA database on SQLite and PostgreSQL: who asked for a refresh, one
materialization (or failure) for every partition a run targets, data versions."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.enrichment.sections import SECTIONS, TTL
from marba_dagster.defs.enrichment.assets import enrichment_sections
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.store import schema as s
from marba_dagster.store.db import insert_many
from marba_dagster.store.types import utcnow
from marba_dagster_tests.enrichment_fixtures import seed_brands

REPO = Path(__file__).resolve().parent.parent
SCHEDULE = {"dagster/schedule_name": "enrichment_scheduler_schedule", "marba/job": "enrichment_scheduler"}
PRICES = '{"sandbox-model": {"input_per_mtok": 150, "output_per_mtok": 600}}'


def _resources(db_url, llm: LlmSettings | None = None, **settings):
    return {"marba_db": MarbaDatabase(url=db_url), "llm": llm or LlmSettings(), "notifier": Notifier(),
            "enrichment_settings": EnrichmentSettings(**settings)}


def _materialize(instance, db_url, partition, sections=("reflect",), tags=None, **kw):
    return dg.materialize([enrichment_sections], instance=instance, partition_key=partition,
                          selection=list(sections), resources=kw.pop("resources", None) or _resources(db_url),
                          tags=tags, **kw)


def _run_range(instance, db_url, start, end, sections=SECTIONS, tags=None, resources=None):
    """One run over the brand partitions start..end, as the schedule launches it."""
    job = dg.define_asset_job("enrichment_scheduler", selection=list(sections))
    defs = dg.Definitions(assets=[enrichment_sections], jobs=[job], resources=resources or _resources(db_url))
    return defs.resolve_job_def("enrichment_scheduler").execute_in_process(
        instance=instance, raise_on_error=False,
        tags={**(tags or {}), "dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})


def mats(result) -> dict[tuple[str, str], dg.AssetMaterialization]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        out[(m.asset_key.path[-1], m.partition)] = m
    return out


def dv(m: dg.AssetMaterialization) -> str | None:
    """The data version Dagster stores with the materialization."""
    return m.tags.get("dagster/data_version")


def meta(m: dg.AssetMaterialization) -> dict:
    return {k: v.value for k, v in m.metadata.items()}


def cache_row(engine, brand, section):
    with engine.connect() as conn:
        return conn.execute(sa.select(s.enrichment_cache).where(
            s.enrichment_cache.c.brand_id == brand, s.enrichment_cache.c.section == section)).mappings().first()


def test_section_specs_warn_at_three_quarters_of_the_ttl():
    for section in SECTIONS:
        policy = enrichment_sections.specs_by_key[dg.AssetKey(section)].freshness_policy
        assert policy.fail_window.to_timedelta() == TTL[section]
        assert policy.warn_window.to_timedelta() == TTL[section] * 3 / 4


# --------------------------------------------------------------- who asked for it


@pytest.mark.slow
def test_a_persons_materialize_refreshes_what_machines_keep(db_url, engine, tmp_path):
    seed_brands(engine, utcnow(), ["b1", "b2"])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2"])
        first = mats(_materialize(instance, db_url, "b1", tags=SCHEDULE))[("reflect", "b1")]
        made = cache_row(engine, "b1", "reflect")
        assert meta(first)["outcome"] == "refreshed" and meta(first)["refresh_reason"] == "missing"
        assert dv(first) == made["input_fingerprint"]

        # A schedule (or sensor, or automation) finds the entry fresh: it says so plainly.
        due = _materialize(instance, db_url, "b1", tags=SCHEDULE)
        kept = mats(due)[("reflect", "b1")]
        md = meta(kept)
        assert (md["outcome"], md["reason"], md["refresh_mode"]) == ("unchanged", "fresh, inputs unchanged", "due")
        assert md["started_by"] == "schedule enrichment_scheduler_schedule"
        assert md["created_at"] == made["created_at"].timestamp() and md["expires_at"] == made["expires_at"].timestamp()
        assert dv(kept) == dv(first)
        assert cache_row(engine, "b1", "reflect")["created_at"] == made["created_at"]
        assert instance.get_status_by_partition(dg.AssetKey("reflect"), ["b1"], enrichment_sections.partitions_def) == {
            "b1": dg.AssetPartitionStatus.MATERIALIZED}

        # The Materialize button (the UI adds dagster/from_ui) and a plain Python call refresh.
        for tags in ({"dagster/from_ui": "true"}, None):
            before = cache_row(engine, "b1", "reflect")["created_at"]
            got = mats(_materialize(instance, db_url, "b1", tags=tags))[("reflect", "b1")]
            md = meta(got)
            assert (md["outcome"], md["refresh_reason"], md["refresh_mode"]) == ("refreshed", "requested by a person", "force")
            assert md["due_reason"] == "skip: fresh, inputs unchanged"
            row = cache_row(engine, "b1", "reflect")
            assert row["created_at"] > before and row["payload"]["refresh_reason"] == "requested by a person"
            assert dv(got) == dv(first)  # same inputs, same data version

        # marba/refresh overrides what started the run.
        forced = meta(mats(_materialize(instance, db_url, "b1", tags={**SCHEDULE, "marba/refresh": "force"}))[("reflect", "b1")])
        assert forced["refresh_reason"] == "forced by the run tag marba/refresh=force"
        kept = meta(mats(_materialize(instance, db_url, "b1", tags={"dagster/from_ui": "true", "marba/refresh": "due"}))[("reflect", "b1")])
        assert kept["outcome"] == "unchanged"
        bad = _materialize(instance, db_url, "b1", tags={"marba/refresh": "sometimes"}, raise_on_error=False)
        assert not bad.success
        failure = next(e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert "marba/refresh='sometimes' is not one of: due, force" in failure.step_failure_data.error.message

        # New inputs: a due run refreshes, and the data version changes with them.
        with engine.begin() as conn:
            insert_many(conn, s.engagement_inbox, [{
                "id": "b1-new", "brand_id": "b1", "platform": "instagram", "item_type": "comment", "external_id": "b1-new",
                "author": "someone", "body": "love the new blend", "received_at": utcnow() - timedelta(minutes=5),
                "sentiment_score": 0.8, "sentiment_label": "positive", "priority": "normal", "priority_score": 0.3,
                "status": "new", "collected_at": utcnow()}])
        changed = mats(_materialize(instance, db_url, "b1", tags=SCHEDULE))[("reflect", "b1")]
        assert meta(changed)["refresh_reason"] == "inputs changed"
        assert dv(changed) == cache_row(engine, "b1", "reflect")["input_fingerprint"] != dv(first)


def test_forced_refresh_keeps_the_budget_rules(db_url, engine, sandbox, tmp_path):
    """A person's refresh recomputes a fresh entry, but a throttled brand gets the analyzer."""
    seed_brands(engine, utcnow(), ["b1"], budget="1.00")
    llm = LlmSettings(base_url=sandbox.url("/llm/v1"), api_key="sandbox-key", model="sandbox-model")
    res = _resources(db_url, llm, prices_json=PRICES)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1"])
        first = mats(_materialize(instance, db_url, "b1", resources=res))[("reflect", "b1")]
        assert meta(first)["generated_by"] == "llm:sandbox-model"
        calls = sandbox.request_count("llm.chat_completions")
        with engine.begin() as conn:  # 85% of the brand's monthly budget spent: throttled
            insert_many(conn, s.api_billing_tracker, [{
                "brand_id": "b1", "provider": "llm", "operation": "enrichment.measure", "model": "sandbox-model",
                "input_tokens": 1, "output_tokens": 1, "cost_usd": Decimal("0.85"), "occurred_at": utcnow()}])
        again = meta(mats(_materialize(instance, db_url, "b1", resources=res))[("reflect", "b1")])
        assert (again["outcome"], again["refresh_reason"], again["generated_by"]) == ("refreshed", "requested by a person", "analyzer")
        assert sandbox.request_count("llm.chat_completions") == calls


@pytest.mark.slow
def test_dagster_asset_materialize_refreshes_a_fresh_brand(marba_env, engine):
    """``dagster asset materialize --select reflect --partition b1`` on the real code
    location: the second call refreshes the entry the first one made."""
    seed_brands(engine, utcnow(), ["b1"])
    home = marba_env["dagster_home"]
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("brands", ["b1"])
    exe = Path(sys.executable).parent / "dagster"
    cmd = [str(exe), "asset", "materialize", "-m", "marba_dagster.definitions", "--select", "reflect", "--partition", "b1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    created = []
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        created.append(cache_row(engine, "b1", "reflect")["created_at"])
    assert created[1] > created[0]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("reflect"))
        md = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert (md["outcome"], md["refresh_reason"], md["due_reason"]) == ("refreshed", "requested by a person",
                                                                       "skip: fresh, inputs unchanged")


# ------------------------------------------------- every partition ends materialized or failed


def test_inactive_and_deleted_brands_fail_by_name(db_url, engine, tmp_path):
    seed_brands(engine, utcnow(), ["b1", "b2"])
    with engine.begin() as conn:
        conn.execute(s.brands.update().where(s.brands.c.id == "b2").values(is_active=False))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2", "ghost"])
        result = _run_range(instance, db_url, "b1", "ghost", ["reflect", "reach"], tags=SCHEDULE)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert "not active (inactive or deleted), nothing enriched: b2, ghost" in failure.step_failure_data.error.message
        assert set(mats(result)) == {("reflect", "b1"), ("reach", "b1")}
        for section in ("reflect", "reach"):
            assert instance.get_status_by_partition(dg.AssetKey(section), ["b1", "b2", "ghost"],
                                                    enrichment_sections.partitions_def) == {
                "b1": dg.AssetPartitionStatus.MATERIALIZED, "b2": dg.AssetPartitionStatus.FAILED,
                "ghost": dg.AssetPartitionStatus.FAILED}
        errors = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert errors.step_failure_data.user_failure_data.metadata["errors"].value["reach/b2"] == "brand is inactive: not enriched"
    assert cache_row(engine, "b2", "reflect") is None
