"""Enrichment engine on a real database (SQLite and PostgreSQL) and the sandbox model."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.enrichment.budget import PriceTable
from marba_dagster.core.enrichment.sections import SECTIONS, TTL
from marba_dagster.defs.enrichment.assets import enrichment_sections
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.enrichment.sensors import enrichment_refresh_sensor
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.services.enrichment import AiConfig, EngineConfig, EnrichmentPass, month_start
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many, upsert
from marba_dagster.store.types import utcnow
from marba_dagster_tests.enrichment_fixtures import seed_brands

PRICES = PriceTable.parse('{"sandbox-model": {"input_per_mtok": 150, "output_per_mtok": 600}}')
BRANDS = ["b1", "b2", "b3"]


def key(section: str) -> dg.AssetKey:
    return dg.AssetKey(["enrichment", section])


def ai_config(sandbox, **kw) -> AiConfig:
    return AiConfig(
        base_url=sandbox.url("/llm/v1"),
        api_key="sandbox-key",
        model="sandbox-model",
        prices=kw.pop("prices", PRICES),
        concurrency=4,
        request_timeout=kw.pop("request_timeout", 10.0),
        **kw,
    )


def run(engine, now, sections=SECTIONS, brands=BRANDS, **cfg):
    return EnrichmentPass(engine, EngineConfig(**cfg), now=now, run_id="test-run").run(
        brands, list(sections)
    )


def statuses(report, section=None):
    return {
        (o.section, o.brand_id): (o.status, o.reason)
        for o in report.outcomes
        if section in (None, o.section)
    }


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


def llm_calls(sandbox) -> int:
    return sandbox.request_count("llm.chat_completions")


# ----------------------------------------------------------------------- cache paths


@pytest.mark.parametrize("section", SECTIONS)
def test_ttl_expiry_per_section(engine, section):
    t0 = utcnow()
    seed_brands(engine, t0, ["b1"])
    first = run(engine, t0, [section], ["b1"])
    assert statuses(first) == {(section, "b1"): ("refreshed", "missing")}
    row = cache_row(engine, "b1", section)
    assert row["expires_at"] - row["created_at"] == TTL[section]
    assert row["payload"]["insights"] and "benchmarks" in row["payload"]
    before = run(engine, t0 + TTL[section] - timedelta(minutes=1), [section], ["b1"])
    assert statuses(before) == {(section, "b1"): ("skipped", "fresh, inputs unchanged")}
    after = run(engine, t0 + TTL[section], [section], ["b1"])
    assert statuses(after) == {(section, "b1"): ("refreshed", "expired")}
    with engine.connect() as conn:
        logs = (
            conn.execute(
                sa.select(schema.enrichment_logs.c.status)
                .where(schema.enrichment_logs.c.section == section)
                .order_by(schema.enrichment_logs.c.id)
            )
            .scalars()
            .all()
        )
    assert logs == ["refreshed", "skipped", "refreshed"]


def test_refresh_request_invalidation_and_changed_inputs(engine):
    t0 = utcnow()
    seed_brands(engine, t0)
    run(engine, t0)
    t1 = t0 + timedelta(minutes=5)
    with engine.begin() as conn:
        # the app asks for b1's measure; competitive monitoring invalidates b2's reimagine
        upsert(
            conn,
            schema.enrichment_schedule,
            [{"brand_id": "b1", "section": "measure", "refresh_requested_at": t1}],
            ["brand_id", "section"],
        )
        upsert(
            conn,
            schema.enrichment_schedule,
            [
                {
                    "brand_id": "b2",
                    "section": "reimagine",
                    "invalidated_at": t1,
                    "invalidated_reason": "competitor price move",
                }
            ],
            ["brand_id", "section"],
        )
        # a new learning pattern for b3 changes its reach and optimize inputs
        insert_many(
            conn,
            schema.learning_patterns,
            [
                {
                    "brand_id": "b3",
                    "platform": "instagram",
                    "pattern_type": "topic",
                    "pattern_key": "cold brew",
                    "lift": 1.6,
                    "data_points": 150,
                    "confidence": 0.9,
                    "computed_at": t1,
                }
            ],
        )
    report = run(engine, t1 + timedelta(minutes=1))
    refreshed = {k: v[1] for k, v in statuses(report).items() if v[0] == "refreshed"}
    assert refreshed == {
        ("measure", "b1"): "requested",
        ("reimagine", "b2"): "invalidated: competitor price move",
        ("reach", "b3"): "inputs changed",
        ("optimize", "b3"): "inputs changed",
    }
    assert "cold brew" in str(cache_row(engine, "b3", "optimize")["payload"]["recommendations"])


def test_skip_when_fresh_makes_no_ai_call_and_costs_to_the_cent(engine, sandbox):
    t0 = utcnow()
    seed_brands(engine, t0, ["b1", "b2"])
    report = run(engine, t0, brands=["b1", "b2"], ai=ai_config(sandbox))
    assert report.ai_calls == 12 and llm_calls(sandbox) == 12
    assert all(o.generated_by == "llm:sandbox-model" for o in report.outcomes)
    stats = sandbox.state.llm.stats()
    expected = (
        Decimal(stats["prompt_tokens"]) * 150 + Decimal(stats["completion_tokens"]) * 600
    ) / Decimal(1_000_000)
    with engine.connect() as conn:
        billed = conn.execute(
            sa.select(
                sa.func.sum(schema.api_billing_tracker.c.cost_usd),
                sa.func.sum(schema.api_billing_tracker.c.input_tokens),
                sa.func.sum(schema.api_billing_tracker.c.output_tokens),
                sa.func.count(),
            )
        ).one()
        ops = set(
            conn.execute(
                sa.select(
                    schema.api_billing_tracker.c.operation,
                    schema.api_billing_tracker.c.brand_id,
                    schema.api_billing_tracker.c.model,
                )
            ).all()
        )
    assert (int(billed[1]), int(billed[2]), billed[3]) == (
        stats["prompt_tokens"],
        stats["completion_tokens"],
        12,
    )
    assert round(Decimal(billed[0]), 2) == round(expected, 2) and abs(
        Decimal(billed[0]) - expected
    ) < Decimal("0.00001")
    assert ops == {(f"enrichment.{x}", b, "sandbox-model") for x in SECTIONS for b in ("b1", "b2")}
    payload = cache_row(engine, "b1", "measure")["payload"]
    assert (
        payload["model"] == "sandbox-model"
        and payload["benchmarks"]["engagement_rate"]["peers"] == 2
    )
    second = run(engine, t0 + timedelta(minutes=1), brands=["b1", "b2"], ai=ai_config(sandbox))
    assert second.ai_calls == 0 and llm_calls(sandbox) == 12
    assert {o.status for o in second.outcomes} == {"skipped"}


def test_brand_slices_give_the_results_of_one_pass(engine, sandbox, monkeypatch):
    """A pass plans, narrates and writes BRANDS_PER_SLICE brands at a time (bounded memory);
    industry peers are read once for the pass and one model client serves every slice."""
    from marba_dagster.services.enrichment import engine as enrichment_engine

    t0 = utcnow()
    seed_brands(engine, t0, BRANDS)

    def stored() -> dict:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(schema.enrichment_cache)).mappings().all()
        return {
            (r["brand_id"], r["section"]): (
                r["input_fingerprint"],
                {k: v for k, v in r["payload"].items() if k != "generated_at"},
            )
            for r in rows
        }

    whole = run(engine, t0)
    assert {o.status for o in whole.outcomes} == {"refreshed"}
    expected = stored()
    assert len(expected) == len(BRANDS) * len(SECTIONS)
    assert expected[("b1", "measure")][1]["benchmarks"]["engagement_rate"]["peers"] == 3
    with engine.begin() as conn:
        conn.execute(schema.enrichment_cache.delete())
        conn.execute(schema.enrichment_schedule.delete())
    monkeypatch.setattr(enrichment_engine, "BRANDS_PER_SLICE", 1)
    sliced = run(engine, t0)
    assert statuses(sliced) == statuses(whole)
    assert stored() == expected
    # With the model: one client for the pass, its counters cover every slice.
    with engine.begin() as conn:
        conn.execute(schema.enrichment_cache.delete())
    narrated = run(engine, t0, ai=ai_config(sandbox))
    assert narrated.ai_calls == len(BRANDS) * len(SECTIONS) == llm_calls(sandbox)
    assert narrated.llm_counters["calls"] == narrated.ai_calls


# ------------------------------------------------------------------------- AI faults


@pytest.mark.parametrize(
    "fault, expect_by, expect_requests",
    [
        ({"kind": "status_sequence", "statuses": [429], "retry_after": 1}, "llm:sandbox-model", 2),
        ({"kind": "status_sequence", "statuses": [500, 500, 500]}, "analyzer", 3),
        ({"kind": "status_sequence", "statuses": [500]}, "llm:sandbox-model", 2),
        ({"kind": "read_timeout", "seconds": 5, "times": 3}, "analyzer", 3),
        ({"kind": "invalid_json_content"}, "analyzer", 1),
        ({"kind": "refusal"}, "analyzer", 1),
        ({"kind": "status_sequence", "statuses": [400]}, "analyzer", 1),
    ],
    ids=["429-retry-after", "500s", "500-then-ok", "timeout", "invalid-json", "refusal", "400"],
)
def test_ai_faults_end_in_a_stored_section(engine, sandbox, fault, expect_by, expect_requests):
    t0 = utcnow()
    seed_brands(engine, t0, ["b1"])
    fault = dict(fault)
    kind = fault.pop("kind")
    times = fault.pop("times", None if kind == "status_sequence" else 1)
    sandbox.faults.add("llm.chat_completions", kind, times=times, **fault)
    report = run(engine, t0, ["reflect"], ["b1"], ai=ai_config(sandbox, request_timeout=0.5))
    (o,) = report.outcomes
    assert o.status == "refreshed" and o.generated_by == expect_by
    assert llm_calls(sandbox) == expect_requests
    row = cache_row(engine, "b1", "reflect")
    assert row["payload"]["insights"] and row["generated_by"] == expect_by
    with engine.connect() as conn:
        log = conn.execute(sa.select(schema.enrichment_logs)).mappings().one()
        billed = conn.execute(
            sa.select(sa.func.count()).select_from(schema.api_billing_tracker)
        ).scalar()
    if expect_by == "analyzer":
        assert log["error"].startswith("AI fallback:") and row["payload"]["ai_fallback"]
    # a billed call is one the server answered (200), refused or not
    assert billed == (
        1 if kind in ("invalid_json_content", "refusal") or expect_by != "analyzer" else 0
    )


# ---------------------------------------------------------------------------- budgets


def _spend(engine, brand, amount, now):
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.api_billing_tracker,
            [
                {
                    "brand_id": brand,
                    "provider": "llm",
                    "operation": "enrichment.measure",
                    "model": "sandbox-model",
                    "input_tokens": 1,
                    "output_tokens": 1,
                    "cost_usd": Decimal(amount),
                    "occurred_at": now,
                }
            ],
        )


CHEAP = PriceTable.parse('{"sandbox-model": [1, 4]}')


def test_budget_alert_and_throttling_at_80_percent_then_stop_at_100(engine, sandbox):
    t0 = month_start(utcnow()) + timedelta(days=1, hours=12)  # every step in one month
    seed_brands(engine, t0, ["b1"], budget="1.00")
    run(engine, t0, brands=["b1"])  # analyzer entries exist for every section
    _spend(engine, "b1", "0.85", t0)
    with engine.begin() as conn:  # inputs change for every section of b1
        conn.execute(
            schema.learning_patterns.update()
            .values(lift=1.45)
            .where(schema.learning_patterns.c.pattern_key == "18")
        )
    # 80%: only expired entries refresh; fresh ones are kept even though inputs changed.
    t1 = t0 + timedelta(hours=7)  # reflect (6h) has expired, nothing else
    report = run(engine, t1, brands=["b1"], ai=ai_config(sandbox, prices=CHEAP))
    st = statuses(report)
    assert st[("reflect", "b1")] == ("refreshed", "expired")
    assert st[("reach", "b1")][0] == "skipped" and "throttled" in st[("reach", "b1")][1]
    assert (
        report.ai_calls == 1
        and cache_row(engine, "b1", "reflect")["generated_by"] == "llm:sandbox-model"
    )
    # once a month: a second pass does not alert again
    run(engine, t1 + timedelta(hours=7), brands=["b1"], ai=ai_config(sandbox, prices=CHEAP))
    with engine.connect() as conn:
        alerts = (
            conn.execute(
                sa.select(schema.job_logs.c.message).where(
                    schema.job_logs.c.level == "warning",
                    schema.job_logs.c.message.like("AI budget%"),
                )
            )
            .scalars()
            .all()
        )
        notes = conn.execute(
            sa.select(schema.notifications.c.kind, schema.notifications.c.brand_id)
        ).all()
    assert len(alerts) == 1 and "85%" in alerts[0] and notes == [("ai_budget_80", "b1")]
    # the least time-sensitive sections (7d TTL) are deferred when they expire
    t2 = t0 + timedelta(days=7, hours=1)
    report = run(engine, t2, brands=["b1"], ai=ai_config(sandbox, prices=CHEAP))
    st = statuses(report)
    assert st[("intend", "b1")][0] == "deferred" and st[("reimagine", "b1")][0] == "deferred"
    assert st[("measure", "b1")] == ("refreshed", "expired")
    # 100%: no AI call at all, the analyzer writes every refreshed section
    _spend(engine, "b1", "0.20", t2)
    calls = llm_calls(sandbox)
    report = run(engine, t2 + timedelta(days=2), brands=["b1"], ai=ai_config(sandbox, prices=CHEAP))
    refreshed = [o for o in report.outcomes if o.status == "refreshed"]
    assert refreshed and all(o.generated_by == "analyzer" for o in refreshed)
    assert llm_calls(sandbox) == calls and report.ai_calls == 0


def test_global_budget_exhausted_means_analyzer_only(engine, sandbox):
    t0 = utcnow()
    seed_brands(engine, t0, ["b1"], budget="100")
    _spend(engine, "b1", "5.00", t0)
    report = run(
        engine, t0, ["measure"], ["b1"], ai=ai_config(sandbox), global_budget_usd=Decimal("5")
    )
    assert [o.generated_by for o in report.outcomes] == ["analyzer"] and llm_calls(sandbox) == 0


def test_sections_without_inputs_say_so(engine):
    t0 = utcnow()
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "empty", "name": "Empty", "industry": "cafe"}])
    run(engine, t0, brands=["empty"])
    for section in SECTIONS:
        p = cache_row(engine, "empty", section)["payload"]
        assert p["data_status"] == "no_data" and p["missing_inputs"] and p["recommendations"] == []
        assert p["insights"][0]["title"] == "Not enough data yet"


# ------------------------------------------------------------------- Dagster wiring


def _resources(db_url, **llm):
    return {
        "marba_db": MarbaDatabase(url=db_url),
        "llm": LlmSettings(**llm),
        "notifier": Notifier(),
        "enrichment_settings": EnrichmentSettings(),
    }


def test_one_broken_brand_fails_alone(db_url, engine):
    t0 = utcnow()
    seed_brands(engine, t0, timezones={"b2": "Mars/Olympus_Mons"})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("brands", BRANDS)
    defs = dg.Definitions(assets=[enrichment_sections], resources=_resources(db_url))
    job = dg.define_asset_job(
        "enrichment_scheduler", selection=dg.AssetSelection.groups("enrichment")
    )
    defs = dg.Definitions(assets=[enrichment_sections], jobs=[job], resources=_resources(db_url))
    result = defs.resolve_job_def("enrichment_scheduler").execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": "b1",
            "dagster/asset_partition_range_end": "b3",
        },
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "reach: b2" in failure.step_failure_data.error.message
    parts = enrichment_sections.partitions_def
    reach = instance.get_status_by_partition(key("reach"), BRANDS, parts)
    assert reach == {
        "b1": dg.AssetPartitionStatus.MATERIALIZED,
        "b2": dg.AssetPartitionStatus.FAILED,
        "b3": dg.AssetPartitionStatus.MATERIALIZED,
    }
    measure = instance.get_status_by_partition(key("measure"), BRANDS, parts)
    assert set(measure.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    brands_check = {
        e.asset_key.path[-1]: e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "all_brands_processed"
    }
    assert not brands_check["reach"].passed and brands_check["reach"].description.startswith(
        "1 of 3 brand(s) failed: b2 ("
    )
    assert brands_check["measure"].passed
    with engine.connect() as conn:
        errors = conn.execute(
            sa.select(schema.job_logs.c.brand_id, schema.job_logs.c.message).where(
                schema.job_logs.c.level == "error"
            )
        ).all()
    assert [b for b, _ in errors] == ["b2"] and "timezone" in errors[0][1]
    assert cache_row(engine, "b2", "reach") is None and cache_row(engine, "b1", "reach") is not None


def test_refresh_request_sensor_launches_brand_and_section(db_url, engine):
    t0 = utcnow()
    seed_brands(engine, t0, ["b1", "b2"])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("brands", ["b1", "b2"])
    res = _resources(db_url)
    ctx = dg.build_sensor_context(instance=instance, resources={"marba_db": res["marba_db"]})
    assert isinstance(enrichment_refresh_sensor(ctx), dg.SkipReason)
    run(engine, t0, brands=["b1", "b2"])
    requested = utcnow()
    with engine.begin() as conn:
        upsert(
            conn,
            schema.enrichment_schedule,
            [{"brand_id": "b2", "section": "optimize", "refresh_requested_at": requested}],
            ["brand_id", "section"],
        )
        upsert(
            conn,
            schema.enrichment_schedule,
            [
                {
                    "brand_id": "b1",
                    "section": "reimagine",
                    "invalidated_at": requested,
                    "invalidated_reason": "pricing_change",
                }
            ],
            ["brand_id", "section"],
        )
    result = enrichment_refresh_sensor(ctx)
    reqs = sorted(result.run_requests, key=lambda r: r.partition_key)
    assert [
        (r.partition_key, r.asset_selection, r.tags["marba/enrichment_trigger"]) for r in reqs
    ] == [
        ("b1", [key("reimagine")], "invalidated"),
        ("b2", [key("optimize")], "requested"),
    ]
    for r in reqs:  # launch what the sensor asked for, tagged as the sensor daemon tags it
        out = dg.materialize(
            [enrichment_sections],
            instance=instance,
            partition_key=r.partition_key,
            selection=r.asset_selection,
            resources=res,
            tags={**r.tags, "dagster/sensor_name": enrichment_refresh_sensor.name},
        )
        assert out.success
    assert cache_row(engine, "b2", "optimize")["payload"]["refresh_reason"] == "requested"
    assert isinstance(enrichment_refresh_sensor(ctx), dg.SkipReason)


def test_automation_condition_requests_sections_when_inputs_update(db_url):
    from marba_dagster.defs.learning.assets import learning_patterns

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("brands", ["b1", "b2"])
    defs = dg.Definitions(
        assets=[enrichment_sections, learning_patterns], resources=_resources(db_url)
    )
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    for section in SECTIONS:
        for b in ("b1", "b2"):
            instance.report_runless_asset_event(dg.AssetMaterialization(key(section), partition=b))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.total_requested == 0  # nothing changed upstream
    instance.report_runless_asset_event(
        dg.AssetMaterialization(dg.AssetKey(["learning", "learning_patterns"]))
    )
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    requested = {
        (section, pk) for section in SECTIONS for pk in third.get_requested_partitions(key(section))
    }
    assert requested == {("reach", "b1"), ("reach", "b2"), ("optimize", "b1"), ("optimize", "b2")}
