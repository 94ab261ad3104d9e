"""Pure logic of the enrichment engine: analyzers, planner, prices, answer validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from marba_dagster.core.enrichment import ai, refresh
from marba_dagster.core.enrichment.analyzers import InputError, analyze, percentile_rank
from marba_dagster.core.enrichment.budget import (
    BudgetLedger,
    BudgetStatus,
    PriceError,
    PriceTable,
    budget_status,
)
from marba_dagster.core.enrichment.checks import entries_summary, fallback_summary
from marba_dagster.core.enrichment.planner import CacheEntry, ScheduleState, decide

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
BRAND = {"id": "b1", "name": "Cafe", "industry": "cafe", "timezone": "Europe/Paris"}


def test_percentile_rank_counts_ties_half():
    assert percentile_rank([0.01, 0.02, 0.03, 0.04], 0.03) == pytest.approx(62.5)
    assert percentile_rank([0.05] * 4, 0.05) == 50.0


def _daily(brand, er, days=20):
    return [
        {
            "brand_id": brand,
            "platform": "instagram",
            "metric_date": NOW.date() - timedelta(days=d),
            "posts": 1,
            "impressions": 1000,
            "reach": 500,
            "engagements": int(1000 * er) + d % 3,
            "clicks": 10,
            "followers": 1000 + d,
        }
        for d in range(1, days)
    ]


def test_measure_percentile_among_industry_and_anomaly():
    rows = _daily("b1", 0.05) + _daily("b2", 0.01) + _daily("b3", 0.02) + _daily("b4", 0.03)
    rows[0]["engagements"] = 400  # one day far above the brand's usual level
    out = analyze("measure", BRAND, {"daily_metrics": pd.DataFrame(rows)}, NOW)
    er = out.benchmarks["engagement_rate"]
    assert er["peers"] == 4 and er["percentile"] == 87.5
    assert [a["kind"] for a in out.benchmarks["anomalies"]] == ["spike"]


def test_intend_projects_and_flags_off_track():
    objectives = pd.DataFrame(
        [
            {
                "id": "o1",
                "metric": "followers",
                "platform": None,
                "baseline_value": 1000.0,
                "target_value": 5000.0,
                "start_date": None,
                "deadline": NOW.date() + timedelta(days=30),
            }
        ]
    )
    daily = pd.DataFrame(_daily("b1", 0.02))  # +1 follower a day: far short of 5000
    out = analyze(
        "intend",
        BRAND,
        {"objectives": objectives, "daily_metrics": daily, "account_metrics": pd.DataFrame()},
        NOW,
    )
    (row,) = out.benchmarks["objectives"]
    assert row["status"] == "off_track" and row["projected"] < 1100 and out.recommendations


def test_broken_objective_and_timezone_are_input_errors():
    bad = pd.DataFrame(
        [
            {
                "id": "o1",
                "metric": "followers",
                "platform": None,
                "baseline_value": None,
                "target_value": 10.0,
                "start_date": date(2026, 5, 1),
                "deadline": date(2026, 4, 1),
            }
        ]
    )
    with pytest.raises(InputError, match="before its start date"):
        analyze("intend", BRAND, {"objectives": bad}, NOW)
    with pytest.raises(InputError, match="timezone"):
        analyze("reach", {**BRAND, "timezone": "Nowhere/Else"}, {}, NOW)


def test_planner_paths():
    entry = CacheEntry(NOW, NOW + timedelta(hours=6), "fp")
    ok = BudgetStatus.ok()
    assert decide("reflect", entry, None, "fp", ok, NOW + timedelta(hours=1)).action == "skip"
    assert (
        decide("reflect", entry, None, "fp2", ok, NOW + timedelta(hours=1)).reason
        == "inputs changed"
    )
    assert decide("reflect", entry, None, "fp", ok, NOW + timedelta(hours=6)).reason == "expired"
    req = ScheduleState(refresh_requested_at=NOW + timedelta(minutes=1))
    assert decide("reflect", entry, req, "fp", ok, NOW + timedelta(minutes=2)).reason == "requested"
    throttled = BudgetStatus("throttled", Decimal("0.85"))
    assert (
        decide("reflect", entry, req, "fp2", throttled, NOW + timedelta(minutes=2)).action == "skip"
    )
    week = CacheEntry(NOW, NOW + timedelta(days=7), "fp")
    d = decide("intend", week, None, "fp", throttled, NOW + timedelta(days=7))
    assert d.action == "defer" and d.defer_until == NOW + timedelta(days=8)
    exhausted = BudgetStatus("exhausted", Decimal(1))
    d = decide("measure", None, None, "fp", exhausted, NOW)
    assert d.refresh and not d.allow_ai


def test_prices_and_budgets():
    table = PriceTable.parse('{"m": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}')
    assert table.price_for("m").cost(1_234_567, 89_012) == Decimal("0.238592")
    with pytest.raises(PriceError):
        table.price_for("unknown")
    with pytest.raises(PriceError):
        PriceTable.parse('{"m": {"input_per_mtok": -1, "output_per_mtok": 1}}')
    assert budget_status(Decimal(10), Decimal(8), None, Decimal(0)).level == "throttled"
    assert budget_status(Decimal(10), Decimal(1), Decimal(100), Decimal(100)).level == "exhausted"
    assert budget_status(Decimal(0), Decimal(0), None, Decimal(0)).level == "exhausted"
    ledger = BudgetLedger({"b": Decimal("1")}, {"b": Decimal("0.9")})
    assert ledger.reserve("b", Decimal("0.05")) and not ledger.reserve("b", Decimal("0.06"))


@pytest.mark.parametrize(
    "content, error",
    [
        ("not json", "not valid JSON"),
        ('{"summary": "x", "insights": ["a"]}', "lacks recommendations"),
        ('{"summary": "x", "insights": [], "recommendations": []}', "1 to 8"),
        (
            '{"summary": "x", "insights": ["a"], "recommendations": [], "extra": 1}',
            "unexpected keys",
        ),
        ('{"summary": "x", "insights": [{"title": "t"}], "recommendations": []}', "lacks detail"),
        (
            '{"summary": "x", "insights": ["a"], "recommendations": '
            '[{"action": "a", "rationale": "r", "priority": "urgent"}]}',
            "priority",
        ),
    ],
)
def test_answer_validation_rejects(content, error):
    with pytest.raises(ai.InvalidAnswer, match=error):
        ai.parse_answer(content)


def test_answer_validation_accepts_strings_and_objects():
    out = ai.parse_answer(
        '{"summary": "s", "insights": ["Reach: up", {"title": "t", "detail": "d"}], '
        '"recommendations": ["do x", {"action": "a", "rationale": "r", "priority": "high"}]}'
    )
    assert out["insights"][0] == {"title": "Reach", "detail": "Reach: up"}
    assert out["recommendations"][1]["priority"] == "high"


def test_fingerprint_ignores_order_and_representation_but_not_values():
    from decimal import Decimal

    from marba_dagster.core.enrichment.fingerprint import fingerprint

    base = pd.DataFrame(
        {
            "brand_id": ["b1", "b1", "b1"],
            "metric_date": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)],
            "reach": [10, 20, 30],
            "rate": [0.1, float("nan"), 1 / 3],
            "at": pd.to_datetime(["2026-11-01T10:00Z", "2026-11-02T10:00Z", None], utc=True),
            "amount": [Decimal("1.50"), Decimal("2.0"), None],
            "body": ["a\nb", "line", None],
        }
    )
    fp = fingerprint("measure", {"daily": base}, {"timezone": "UTC"})
    # Rows and columns in another order, the same instants in another timezone: same inputs.
    shuffled = base.iloc[[2, 0, 1]][list(reversed(base.columns))].reset_index(drop=True)
    shuffled["at"] = shuffled["at"].dt.tz_convert("America/New_York")
    assert fingerprint("measure", {"daily": shuffled}, {"timezone": "UTC"}) == fp
    assert fingerprint("measure", {"daily": base.copy()}, {"timezone": "UTC"}) == fp
    changed = base.copy()
    changed.loc[1, "reach"] = 21
    assert fingerprint("measure", {"daily": changed}, {"timezone": "UTC"}) != fp
    text = base.copy()
    text.loc[0, "body"] = "a b"
    assert fingerprint("measure", {"daily": text}, {"timezone": "UTC"}) != fp
    assert fingerprint("reach", {"daily": base}, {"timezone": "UTC"}) != fp
    assert fingerprint("measure", {"daily": base}, {"timezone": "Europe/Paris"}) != fp
    # A frame split differently across inputs is a different input.
    assert (
        fingerprint("measure", {"daily": base, "other": pd.DataFrame()}, {"timezone": "UTC"}) != fp
    )
    # No rows is no rows, whatever columns the empty query result had.
    assert fingerprint("measure", {"daily": pd.DataFrame()}) == fingerprint(
        "measure", {"daily": pd.DataFrame(columns=["a"])}
    )


# ------------------------------------------------------------------ refresh mode

REFRESH_TAG = "marba/refresh"
# The tags Dagster 1.13.27 put on the run of a backfill the automation condition sensor
# launched (seen in test_enrichment_automation.py, which asserts them on a real backfill).
AUTOMATION_BACKFILL_RUN = {
    "dagster/asset_evaluation_id": "3",
    "dagster/asset_partition_range_start": "b1",
    "dagster/asset_partition_range_end": "b4",
    "dagster/auto_materialize": "true",
    "dagster/backfill": "nggkvwsg",
    "dagster/code_location": "marba_dagster",
    "dagster/from_automation_condition": "true",
    "dagster/sensor_name": "enrichment_automation_sensor",
    "dagster/tick": "3",
    "marba/job": "enrichment_scheduler",
}


@pytest.mark.parametrize(
    "tags, mode, reason",
    [
        (
            {
                "dagster/schedule_name": "enrichment_scheduler_schedule",
                "marba/job": "enrichment_scheduler",
            },
            "due",
            "TTL-aware: started by schedule enrichment_scheduler_schedule",
        ),
        (
            {
                "dagster/sensor_name": "enrichment_refresh_sensor",
                "marba/enrichment_trigger": "requested",
            },
            "due",
            "TTL-aware: started by sensor enrichment_refresh_sensor",
        ),
        (
            AUTOMATION_BACKFILL_RUN,
            "due",
            "TTL-aware: started by declarative automation through enrichment_automation_sensor "
            "(backfill nggkvwsg)",
        ),
        (
            {"dagster/auto_materialize": "true"},
            "due",
            "TTL-aware: started by declarative automation",
        ),
        (
            {"marba/job": "enrichment_scheduler", REFRESH_TAG: "due"},
            "due",
            "TTL-aware (run tag marba/refresh=due)",
        ),
        (
            {"dagster/schedule_name": "x", REFRESH_TAG: "FORCE"},
            "force",
            "forced by the run tag marba/refresh=force",
        ),
        (
            {"dagster/from_ui": "true", REFRESH_TAG: " due "},
            "due",
            "TTL-aware (run tag marba/refresh=due)",
        ),
        ({"dagster/from_ui": "true"}, "force", "requested by a person"),
        ({"dagster/from_ui": "true", "dagster/backfill": "abc"}, "force", "requested by a person"),
        ({"dagster/backfill": "abc"}, "force", "requested by a person"),
        (
            {"marba/job": "enrichment_scheduler", "marba/brands": "b1"},
            "force",
            "requested by a person",
        ),
        ({}, "force", "requested by a person"),
        (
            {"dagster/from_automation_condition": "false", "dagster/sensor_name": ""},
            "force",
            "requested by a person",
        ),
    ],
    ids=[
        "schedule",
        "sensor",
        "automation-backfill",
        "auto-materialize",
        "tag-due",
        "tag-force-wins",
        "tag-due-wins-over-ui",
        "ui",
        "ui-backfill",
        "backfill",
        "command",
        "python",
        "empty-tags",
    ],
)
def test_refresh_mode_from_run_tags(tags, mode, reason):
    got = refresh.refresh_mode(tags, REFRESH_TAG)
    assert (got.mode, got.reason) == (mode, reason)
    assert got.forced == (mode == "force")


def test_refresh_mode_names_the_source_and_refuses_unknown_values():
    assert (
        refresh.refresh_mode({"dagster/from_ui": "true"}, REFRESH_TAG).started_by
        == "the Dagster UI"
    )
    assert (
        "backfill abc" in refresh.refresh_mode({"dagster/backfill": "abc"}, REFRESH_TAG).started_by
    )
    with pytest.raises(
        refresh.InvalidRefreshTag, match="marba/refresh='always' is not one of: due, force"
    ):
        refresh.refresh_mode({REFRESH_TAG: "always"}, REFRESH_TAG)


def test_refresh_tag_names_are_dagsters_and_the_projects():
    from dagster._core.storage import tags as dagster_tags

    from marba_dagster.core.runs import REFRESH_TAG as JOBS_REFRESH_TAG

    assert JOBS_REFRESH_TAG == REFRESH_TAG
    assert refresh.SCHEDULE_NAME_TAG == dagster_tags.SCHEDULE_NAME_TAG
    assert refresh.SENSOR_NAME_TAG == dagster_tags.SENSOR_NAME_TAG
    assert refresh.AUTOMATION_CONDITION_TAG == dagster_tags.AUTOMATION_CONDITION_TAG
    assert refresh.AUTO_MATERIALIZE_TAG == dagster_tags.AUTO_MATERIALIZE_TAG
    assert refresh.BACKFILL_ID_TAG == dagster_tags.BACKFILL_ID_TAG


def test_forced_decisions_recompute_but_keep_budget_rules():
    entry = CacheEntry(NOW, NOW + timedelta(hours=6), "fp")
    ok = BudgetStatus.ok()
    why = "requested by a person"
    fresh = decide("reflect", entry, None, "fp", ok, NOW + timedelta(hours=1), force=why)
    assert (fresh.action, fresh.reason, fresh.allow_ai, fresh.due_reason) == (
        "refresh",
        why,
        True,
        "skip: fresh, inputs unchanged",
    )
    expired = decide("reflect", entry, None, "fp", ok, NOW + timedelta(hours=7), force=why)
    assert (expired.reason, expired.due_reason, expired.allow_ai) == (why, "expired", True)
    throttled = BudgetStatus("throttled", Decimal("0.85"))
    # throttled: a fresh entry is recomputed by the analyzer only; an expired one of a
    # time-sensitive section may still use the model, as it would when due
    assert not decide(
        "reflect", entry, None, "fp", throttled, NOW + timedelta(hours=1), force=why
    ).allow_ai
    assert decide(
        "reflect", entry, None, "fp", throttled, NOW + timedelta(hours=7), force=why
    ).allow_ai
    week = CacheEntry(NOW, NOW + timedelta(days=7), "fp")
    deferred = decide("intend", week, None, "fp", throttled, NOW + timedelta(days=7), force=why)
    assert deferred.refresh and not deferred.allow_ai and deferred.due_reason.startswith("defer: ")
    exhausted = BudgetStatus("exhausted", Decimal(1))
    assert not decide("measure", None, None, "fp", exhausted, NOW, force=why).allow_ai
    assert decide("measure", None, None, "fp", ok, NOW, force=why).reason == why


def test_check_descriptions_say_what_was_lost():
    assert (
        entries_summary("reflect", 40, 0, 0, 0, [])
        == "all 40 active brand(s) have a current reflect entry"
    )
    assert entries_summary("reflect", 0, 0, 0, 0, []) == "no active brand"
    assert entries_summary("intend", 40, 3, 9, 2, [f"b{i}" for i in range(12)]) == (
        "12 of 40 active brand(s) have no current intend entry (9 expired, 2 of them deferred by "
        "budget throttling; 3 missing): b0, b1, b2, b3, b4 and 7 more"
    )
    assert (
        entries_summary("reach", 3, 1, 0, 0, ["b2"])
        == "1 of 3 active brand(s) have no current reach entry (1 missing): b2"
    )
    assert fallback_summary("reflect", 38, {"HTTP 401 from the model endpoint": 38}) == (
        "HTTP 401 from the model endpoint: 38 of 38 reflect call(s) fell back to the analyzer"
    )
    assert fallback_summary(
        "measure", 10, {"model endpoint timed out": 1, "HTTP 500 from the model endpoint": 3}
    ) == (
        "4 of 10 measure call(s) fell back to the analyzer "
        "(HTTP 500 from the model endpoint: 3; model endpoint timed out: 1)"
    )
    assert fallback_summary("reach", 4, {}, budget_skipped=2) == (
        "all 4 reach model call(s) answered; 2 more left to the analyzer by the AI budget"
    )
    assert fallback_summary("reach", 0, {}) == "no model call was made for reach"
