"""What the enrichment assets tell Dagster, through a real instance on a temporary
directory and the MARBA database on SQLite and PostgreSQL: who asked for a refresh, one
materialization (or failure) for every partition a run targets, data versions, checks."""

from __future__ import annotations

import json
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
from marba_dagster.core.runs import BRANDS_CHECK, ENTRIES_CHECK, SOURCES_CHECK
from marba_dagster.defs.enrichment.assets import enrichment_sections
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many
from marba_dagster.store.types import utcnow
from marba_dagster_tests.enrichment_fixtures import seed_brands

REPO = Path(__file__).resolve().parent.parent
SCHEDULE = {
    "dagster/schedule_name": "enrichment_scheduler_schedule",
    "marba/job": "enrichment_scheduler",
}
PRICES = '{"sandbox-model": {"input_per_mtok": 150, "output_per_mtok": 600}}'


def key(section: str) -> dg.AssetKey:
    return dg.AssetKey(["enrichment", section])


def _resources(db_url, llm: LlmSettings | None = None, **settings):
    return {
        "marba_db": MarbaDatabase(url=db_url),
        "llm": llm or LlmSettings(),
        "notifier": Notifier(),
        "enrichment_settings": EnrichmentSettings(**settings),
    }


def _materialize(instance, db_url, partition, sections=("reflect",), tags=None, **kw):
    return dg.materialize(
        [enrichment_sections],
        instance=instance,
        partition_key=partition,
        selection=[key(x) for x in sections],
        resources=kw.pop("resources", None) or _resources(db_url),
        tags=tags,
        **kw,
    )


def _run_range(instance, db_url, start, end, sections=SECTIONS, tags=None, resources=None):
    """One run over the brand partitions start..end, as the schedule launches it."""
    job = dg.define_asset_job("enrichment_scheduler", selection=[key(x) for x in sections])
    defs = dg.Definitions(
        assets=[enrichment_sections], jobs=[job], resources=resources or _resources(db_url)
    )
    return defs.resolve_job_def("enrichment_scheduler").execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={
            **(tags or {}),
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )


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


def checks(result) -> dict[tuple[str, str], object]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def cache_row(engine, brand, section):
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(schema.enrichment_cache).where(
                    schema.enrichment_cache.c.brand_id == brand,
                    schema.enrichment_cache.c.section == section,
                )
            )
            .mappings()
            .first()
        )


def test_section_specs_warn_at_three_quarters_of_the_ttl():
    for section in SECTIONS:
        spec = enrichment_sections.specs_by_key[key(section)]
        policy = spec.freshness_policy
        assert policy.fail_window.to_timedelta() == TTL[section]
        assert policy.warn_window.to_timedelta() == TTL[section] * 3 / 4
    names = {(k.asset_key.path[-1], k.name) for k in enrichment_sections.check_keys}
    assert names == {(x, c) for x in SECTIONS for c in (BRANDS_CHECK, SOURCES_CHECK, ENTRIES_CHECK)}


def test_section_descriptions_point_to_the_architecture_doc():
    for section in SECTIONS:
        assert "docs/architecture.md" in enrichment_sections.specs_by_key[key(section)].description


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
        assert (md["outcome"], md["reason"], md["refresh_mode"]) == (
            "unchanged",
            "fresh, inputs unchanged",
            "due",
        )
        assert md["started_by"] == "schedule enrichment_scheduler_schedule"
        assert (
            md["created_at"] == made["created_at"].timestamp()
            and md["expires_at"] == made["expires_at"].timestamp()
        )
        assert dv(kept) == dv(first)
        assert cache_row(engine, "b1", "reflect")["created_at"] == made["created_at"]
        assert instance.get_status_by_partition(
            key("reflect"), ["b1"], enrichment_sections.partitions_def
        ) == {"b1": dg.AssetPartitionStatus.MATERIALIZED}

        # The Materialize button (the UI adds dagster/from_ui) and a plain Python call refresh.
        for tags in ({"dagster/from_ui": "true"}, None):
            before = cache_row(engine, "b1", "reflect")["created_at"]
            got = mats(_materialize(instance, db_url, "b1", tags=tags))[("reflect", "b1")]
            md = meta(got)
            assert (md["outcome"], md["refresh_reason"], md["refresh_mode"]) == (
                "refreshed",
                "requested by a person",
                "force",
            )
            assert md["due_reason"] == "skip: fresh, inputs unchanged"
            row = cache_row(engine, "b1", "reflect")
            assert (
                row["created_at"] > before
                and row["payload"]["refresh_reason"] == "requested by a person"
            )
            assert dv(got) == dv(first)  # same inputs, same data version

        # marba/refresh overrides what started the run.
        forced = meta(
            mats(_materialize(instance, db_url, "b1", tags={**SCHEDULE, "marba/refresh": "force"}))[
                ("reflect", "b1")
            ]
        )
        assert forced["refresh_reason"] == "forced by the run tag marba/refresh=force"
        kept = meta(
            mats(
                _materialize(
                    instance, db_url, "b1", tags={"dagster/from_ui": "true", "marba/refresh": "due"}
                )
            )[("reflect", "b1")]
        )
        assert kept["outcome"] == "unchanged"
        bad = _materialize(
            instance, db_url, "b1", tags={"marba/refresh": "sometimes"}, raise_on_error=False
        )
        assert not bad.success
        failure = next(
            e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
        )
        assert (
            "marba/refresh='sometimes' is not one of: due, force"
            in failure.step_failure_data.error.message
        )

        # New inputs: a due run refreshes, and the data version changes with them.
        with engine.begin() as conn:
            insert_many(
                conn,
                schema.engagement_inbox,
                [
                    {
                        "id": "b1-new",
                        "brand_id": "b1",
                        "platform": "instagram",
                        "item_type": "comment",
                        "external_id": "b1-new",
                        "author": "someone",
                        "body": "love the new blend",
                        "received_at": utcnow() - timedelta(minutes=5),
                        "sentiment_score": 0.8,
                        "sentiment_label": "positive",
                        "priority": "normal",
                        "priority_score": 0.3,
                        "status": "new",
                        "collected_at": utcnow(),
                    }
                ],
            )
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
            insert_many(
                conn,
                schema.api_billing_tracker,
                [
                    {
                        "brand_id": "b1",
                        "provider": "llm",
                        "operation": "enrichment.measure",
                        "model": "sandbox-model",
                        "input_tokens": 1,
                        "output_tokens": 1,
                        "cost_usd": Decimal("0.85"),
                        "occurred_at": utcnow(),
                    }
                ],
            )
        again = meta(mats(_materialize(instance, db_url, "b1", resources=res))[("reflect", "b1")])
        assert (again["outcome"], again["refresh_reason"], again["generated_by"]) == (
            "refreshed",
            "requested by a person",
            "analyzer",
        )
        assert sandbox.request_count("llm.chat_completions") == calls


@pytest.mark.slow
def test_dagster_asset_materialize_refreshes_a_fresh_brand(marba_env, engine):
    """``dagster asset materialize --select enrichment/reflect --partition b1`` on the real code
    location: the second call refreshes the entry the first one made."""
    seed_brands(engine, utcnow(), ["b1"])
    home = marba_env["dagster_home"]
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("brands", ["b1"])
    exe = Path(sys.executable).parent / "dagster"
    cmd = [
        str(exe),
        "asset",
        "materialize",
        "-m",
        "marba_dagster.definitions",
        "--select",
        "enrichment/reflect",
        "--partition",
        "b1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    created = []
    for _ in range(2):
        proc = subprocess.run(
            cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        created.append(cache_row(engine, "b1", "reflect")["created_at"])
    assert created[1] > created[0]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(key("reflect"))
        md = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert (md["outcome"], md["refresh_reason"], md["due_reason"]) == (
        "refreshed",
        "requested by a person",
        "skip: fresh, inputs unchanged",
    )


# ------------------------------------------------- every partition ends materialized or failed


def test_inactive_and_deleted_brands_fail_by_name(db_url, engine, tmp_path):
    seed_brands(engine, utcnow(), ["b1", "b2"])
    with engine.begin() as conn:
        conn.execute(
            schema.brands.update().where(schema.brands.c.id == "b2").values(is_active=False)
        )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2", "ghost"])
        result = _run_range(instance, db_url, "b1", "ghost", ["reflect", "reach"], tags=SCHEDULE)
        assert not result.success
        failure = next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
        )
        assert (
            "not active (inactive or deleted), nothing enriched: b2, ghost"
            in failure.step_failure_data.error.message
        )
        assert set(mats(result)) == {("reflect", "b1"), ("reach", "b1")}
        for section in ("reflect", "reach"):
            assert instance.get_status_by_partition(
                key(section), ["b1", "b2", "ghost"], enrichment_sections.partitions_def
            ) == {
                "b1": dg.AssetPartitionStatus.MATERIALIZED,
                "b2": dg.AssetPartitionStatus.FAILED,
                "ghost": dg.AssetPartitionStatus.FAILED,
            }
        brands = checks(result)[("reach", BRANDS_CHECK)]
        assert not brands.passed and brands.severity == dg.AssetCheckSeverity.WARN
        assert brands.description == (
            "2 of 3 brand(s) failed: b2 (brand is inactive: not enriched), "
            "ghost (brand does not exist (deleted): not enriched)"
        )
    assert cache_row(engine, "b2", "reflect") is None


@pytest.mark.slow
def test_deferred_and_expired_entries_are_materialized_and_counted(db_url, engine, tmp_path):
    now = utcnow()
    seed_brands(engine, now, ["b1", "b2", "b3"], budget="1.00")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2", "b3"])
        first = _run_range(instance, db_url, "b1", "b2", ["intend"], tags=SCHEDULE)
        assert first.success
        entries = checks(first)[("intend", ENTRIES_CHECK)]
        assert not entries.passed and entries.severity == dg.AssetCheckSeverity.WARN
        assert (
            entries.description
            == "1 of 3 active brand(s) have no current intend entry (1 missing): b3"
        )
        assert entries.metadata["missing_entries"].value == 1
        old = cache_row(engine, "b1", "intend")
        with engine.begin() as conn:  # b1's entry has expired, and b1 is at 85% of its AI budget
            conn.execute(
                schema.enrichment_cache.update()
                .where(schema.enrichment_cache.c.brand_id == "b1")
                .values(
                    created_at=now - TTL["intend"] - timedelta(hours=1),
                    expires_at=now - timedelta(hours=1),
                )
            )
            conn.execute(
                schema.enrichment_schedule.update()
                .where(schema.enrichment_schedule.c.brand_id == "b1")
                .values(next_refresh_at=now - timedelta(hours=1))
            )
            insert_many(
                conn,
                schema.api_billing_tracker,
                [
                    {
                        "brand_id": "b1",
                        "provider": "llm",
                        "operation": "enrichment.intend",
                        "model": "m",
                        "input_tokens": 1,
                        "output_tokens": 1,
                        "cost_usd": Decimal("0.85"),
                        "occurred_at": now,
                    }
                ],
            )
        second = _run_range(instance, db_url, "b1", "b2", ["intend"], tags=SCHEDULE)
        assert second.success
        got = mats(second)
        deferred, kept = meta(got[("intend", "b1")]), meta(got[("intend", "b2")])
        assert (deferred["outcome"], deferred["reason"]) == (
            "deferred",
            "expired, deferred (budget throttled)",
        )
        assert (
            deferred["deferred_until"] > now.timestamp()
            and deferred["expires_at"] < now.timestamp()
        )
        assert dv(got[("intend", "b1")]) == old["input_fingerprint"]
        assert kept["outcome"] == "unchanged"
        entries = checks(second)[("intend", ENTRIES_CHECK)]
        assert not entries.passed
        assert entries.description == (
            "2 of 3 active brand(s) have no current intend entry "
            "(1 expired, 1 of them deferred by budget throttling; 1 missing): b1, b3"
        )
        assert [r["brand_id"] for r in entries.metadata["stale_sample"].value] == ["b1", "b3"]
        assert checks(second)[("intend", BRANDS_CHECK)].passed
        # A person's refresh of every brand brings every entry back.
        third = _run_range(instance, db_url, "b1", "b3", ["intend"])
        assert third.success and {meta(m)["outcome"] for m in mats(third).values()} == {"refreshed"}
        entries = checks(third)[("intend", ENTRIES_CHECK)]
        assert (
            entries.passed
            and entries.description == "all 3 active brand(s) have a current intend entry"
        )


def test_entries_check_runs_on_its_own(db_url, engine, tmp_path):
    """Executing the check alone (the UI's Execute on a check) reads the cache, runs nothing."""
    seed_brands(engine, utcnow(), ["b1", "b2"])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2"])
        assert _materialize(instance, db_url, "b1").success
        alone = dg.AssetSelection.checks(dg.AssetCheckKey(key("reflect"), ENTRIES_CHECK))
        result = dg.materialize(
            [enrichment_sections], instance=instance, selection=alone, resources=_resources(db_url)
        )
        assert result.success and mats(result) == {}
        entries = checks(result)[("reflect", ENTRIES_CHECK)]
        assert (
            not entries.passed
            and entries.description
            == "1 of 2 active brand(s) have no current reflect entry (1 missing): b2"
        )


# ------------------------------------------------------------------------- the model


@pytest.mark.slow
def test_a_wrong_model_key_warns_naming_the_cause(db_url, engine, sandbox, tmp_path):
    seed_brands(engine, utcnow(), ["b1", "b2"])
    key = "sk-not-the-right-key-4242"
    wrong = _resources(
        db_url,
        LlmSettings(base_url=sandbox.url("/llm/v1"), api_key=key, model="sandbox-model"),
        prices_json=PRICES,
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("brands", ["b1", "b2"])
        result = _run_range(instance, db_url, "b1", "b2", ["reflect", "measure"], resources=wrong)
        assert result.success  # every section is stored, by the analyzer
        assert {meta(m)["generated_by"] for m in mats(result).values()} == {"analyzer"}
        found = checks(result)
        for section in ("reflect", "measure"):
            model = found[(section, SOURCES_CHECK)]
            assert not model.passed and model.severity == dg.AssetCheckSeverity.WARN
            assert (
                model.description
                == f"HTTP 401 from the model endpoint: 2 of 2 {section} call(s) fell back to the "
                "analyzer"
            )
            assert model.metadata["ai_fallbacks"].value == 2
            shown = model.description + json.dumps(
                {k: str(v.value) for k, v in model.metadata.items()}
            )
            assert key not in shown and key[-4:] not in shown and "Bearer" not in shown
            assert found[(section, BRANDS_CHECK)].passed
        right = _resources(
            db_url,
            LlmSettings(
                base_url=sandbox.url("/llm/v1"), api_key="sandbox-key", model="sandbox-model"
            ),
            prices_json=PRICES,
        )
        ok = checks(_run_range(instance, db_url, "b1", "b2", ["reflect"], resources=right))[
            ("reflect", SOURCES_CHECK)
        ]
        assert ok.passed and ok.description == "all 2 reflect model call(s) answered"
        # Analyzer only (no model configured) is intended, not a lost source.
        plain = checks(_run_range(instance, db_url, "b1", "b2", ["reflect"]))[
            ("reflect", SOURCES_CHECK)
        ]
        assert plain.passed and "no model endpoint is configured" in plain.description
