"""Dagster wiring of the enrichment engine: six section assets, the refresh sensor and the
automation sensor (the ``enrichment_settings`` resource is in ``resources.py``).

The six sections are one ``multi_asset`` (six asset keys, subsettable) so that a run shares
one model client, hence one requests/tokens-per-minute budget, across every section and
brand; each (section, brand) is materialized on its own, so one brand's failure shows as
that brand's failed partition while the others are materialized.

What the Dagster surfaces say:

* **Who asked.** A run a person starts refreshes every selected (section, brand); a run of
  a schedule, a sensor or declarative automation (and a backfill it launched) refreshes
  only what is due. The run tag ``marba/refresh`` (``due``/``force``) overrides both
  (``core.enrichment.refresh``). Materializations say which (``refresh_mode``,
  ``started_by``, ``refresh_reason``).
* **Every targeted partition ends materialized or failed**, so a backfill's status is the
  truth: ``outcome`` is ``refreshed``, ``unchanged`` (fresh entry, inputs unchanged) or
  ``deferred`` (expired entry kept under budget throttling, with ``deferred_until``); each
  carries the entry's ``created_at``/``expires_at`` and its input fingerprint as the data
  version. A partition whose brand is inactive or deleted fails, named in the step's
  failure: nothing may be enriched for it, and the brand_partitions_sensor removes such
  partitions within a minute, so a failure means the person asked for a brand that is not
  active or the partitions are out of sync.
* **Checks per section** (WARN, never blocking): ``all_brands_processed``,
  ``sources_available`` (the model endpoint: calls that fell back to the analyzer, by
  cause) and ``all_entries_current`` (active brands whose entry is missing or expired,
  which the section's freshness, driven by its newest materialization, cannot show).
"""

from collections import Counter
from datetime import timezone

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.data_version import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)

from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, keys_by_brand
from marba_dagster.core.enrichment.checks import entries_summary, fallback_summary
from marba_dagster.core.enrichment.refresh import InvalidRefreshTag, RefreshMode, refresh_mode
from marba_dagster.core.enrichment.sections import DESCRIPTIONS, SECTIONS, TTL
from marba_dagster.core.runs import BRANDS_CHECK, JOB_TAG, REFRESH_TAG, SOURCES_CHECK
from marba_dagster.defs import pools
from marba_dagster.defs.batches import NAMED_IN_CHECK, completeness_check_specs, requested_brands
from marba_dagster.defs.brands import brands_partitions
from marba_dagster.defs.enrichment.data import entry_currency
from marba_dagster.defs.enrichment.engine import (
    AI_BUDGET,
    AI_FALLBACK,
    AI_NARRATED,
    EnrichmentPass,
    Outcome,
)
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.store import schema as s
from marba_dagster.store.brands import active_brand_ids, existing_brand_ids
from marba_dagster.store.types import utcnow

JOB_NAME = "enrichment_scheduler"
TRIGGER_TAG = "marba/enrichment_trigger"


# What each section reads, as upstream assets: when one of them is materialized, the
# automation condition requests the section, and the fingerprint decides per brand whether
# anything changed.
SECTION_DEPS: dict[str, list[str | dg.AssetKey]] = {
    "measure": ["brand_daily_metrics", "platform_metrics"],
    "intend": ["brand_daily_metrics"],
    # Significant moves (a price change) also invalidate it at once through
    # enrichment_schedule.invalidated_at, set by competitive monitoring.
    "reimagine": [dg.AssetKey(["competitive", "competitive_gaps"])],
    "reach": ["learning_patterns", "brand_daily_metrics"],
    "optimize": ["learning_patterns", "platform_metrics"],
    "reflect": ["engagement_inbox", dg.AssetKey(["opportunities", "intelligence_opportunities"])],
}

INPUTS_CHANGED = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("inputs changed (new analytics, patterns, engagement, opportunities)")


# Daily and hourly collectors feed per-brand sections: each section reads the latest
# period, so it depends on the upstream's last partition (cheap to evaluate at any scale).
_TIME_PARTITIONED = {"brand_daily_metrics", "platform_metrics", "engagement_inbox"}


def _deps(section: str) -> list[dg.AssetDep]:
    return [
        dg.AssetDep(key, partition_mapping=dg.LastPartitionMapping())
        if key in _TIME_PARTITIONED
        else dg.AssetDep(key)
        for key in SECTION_DEPS[section]
    ]


def _hours(section: str) -> str:
    h = TTL[section].total_seconds() / 3600
    return f"{h:g}h" if h < 24 else f"{h / 24:g}d"


# The freshness policy warns once three quarters of the TTL have passed without a
# materialization. Every run that selects a section materializes each of its brands
# (refreshed, or unchanged with the entry's times), so a section stays inside its window
# as long as runs happen; the last quarter of the TTL is the operator's lead time to
# notice a stopped schedule, a paused sensor or failing inputs before entries expire and
# freshness fails: 1.5h for reflect, 6h for measure and optimize, 18h for reach, 42h
# for intend and reimagine. (Measure and optimize, whose 1-day TTL equals the nightly
# cadence, reach that quarter most evenings before the 02:00 run: that is their true state.)
WARN_FRACTION = 0.75

ENTRIES_CHECK = "all_entries_current"
# Model calls that fell back to the analyzer are reported as a lost outside source.
MODEL_SOURCE = "model endpoint"


def _section_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            section,
            description=(
                f"MIRROR section '{section}': {DESCRIPTIONS[section]}. Cached in enrichment_cache for "
                f"{_hours(section)} (TTL rules: docs/architecture.md). A run a person starts refreshes "
                "every selected brand; schedules, sensors and automation refresh only what is due. "
                "Each brand's materialization says whether its entry was refreshed, unchanged or deferred, "
                "with the entry's input fingerprint as its data version."
            ),
            group_name="enrichment",
            skippable=True,
            deps=_deps(section),
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=TTL[section], warn_window=TTL[section] * WARN_FRACTION
            ),
            automation_condition=INPUTS_CHANGED,
            kinds={"python", "pandas", "sql"},
            metadata={
                "ttl_hours": TTL[section].total_seconds() / 3600,
                "table": "enrichment_cache",
            },
        )
        for section in SECTIONS
    ]


def _check_specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for section in SECTIONS:
        specs += completeness_check_specs(section, sources=True)
        specs.append(
            dg.AssetCheckSpec(
                ENTRIES_CHECK,
                asset=section,
                blocking=False,
                description=f"Every active brand has a current {section} entry; warns counting the brands whose "
                "entry is missing or expired (the app shows them an old section or none) and naming a sample.",
            )
        )
    return specs


def _preview(o) -> str:
    rows = [
        {"field": "generated_by", "value": o.generated_by},
        {"field": "reason", "value": o.reason},
        {"field": "data", "value": o.data_status},
        {"field": "expires_at", "value": o.expires_at.isoformat() if o.expires_at else ""},
    ]
    if o.ai_fallback:
        rows.append({"field": "AI fallback", "value": o.ai_fallback})
    return markdown_table(rows, ["field", "value"])


def _ts(value):
    return dg.MetadataValue.timestamp(value) if value is not None else None


def _materialization(o, mode: RefreshMode, partition: str) -> dg.AssetMaterialization:
    """The event of one (section, brand) that was refreshed, found current or deferred; its
    data version is the stored entry's input fingerprint."""
    common = {"refresh_mode": mode.mode, "started_by": mode.started_by}
    if o.status == "refreshed":
        outcome = "refreshed"
        metadata = {
            "outcome": outcome,
            "refresh_reason": o.reason,
            **({"due_reason": o.due_reason} if o.due_reason else {}),
            "generated_by": o.generated_by,
            "data_status": o.data_status,
            "tokens": o.tokens,
            "cost_usd": float(o.cost_usd),
            "ai_fallback": o.ai_fallback or "",
            "created_at": _ts(o.created_at),
            "expires_at": _ts(o.expires_at),
            **common,
            "preview": dg.MetadataValue.md(_preview(o)),
        }
    else:
        outcome = "deferred" if o.status == "deferred" or o.expired else "unchanged"
        metadata = {
            "outcome": outcome,
            "reason": o.reason,
            "generated_by": o.generated_by,
            "created_at": _ts(o.created_at),
            "expires_at": _ts(o.expires_at),
            **({"deferred_until": _ts(o.deferred_until)} if o.deferred_until else {}),
            **common,
        }
    tags = (
        {DATA_VERSION_TAG: o.fingerprint, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}
        if o.fingerprint
        else None
    )
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(o.section),
        partition=partition,
        description=f"{outcome}: {o.reason}",
        metadata=metadata,
        tags=tags,
    )


def _brands_result(section: str, outcomes: list) -> dg.AssetCheckResult:
    """``all_brands_processed`` for one section, in BrandBatch.check_results' words."""
    failed = {o.brand_id: o.error or "failed" for o in outcomes if o.status == "failed"}
    total = len(outcomes)
    named = dict(sorted(failed.items())[:NAMED_IN_CHECK])
    if failed:
        shown = ", ".join(f"{b} ({e})" for b, e in list(named.items())[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        text = f"{len(failed)} of {total} brand(s) failed: {shown}{more}"
    else:
        text = f"all {total} brand(s) processed"
    return dg.AssetCheckResult(
        asset_key=section,
        check_name=BRANDS_CHECK,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=text,
        metadata={
            "brands_processed": total - len(failed),
            "brands_failed": len(failed),
            "failed_brands": dg.MetadataValue.json(named),
        },
    )


def _model_result(section: str, outcomes: list, ai_configured: bool) -> dg.AssetCheckResult:
    """``sources_available`` for one section: the model endpoint, when one is configured."""
    if not ai_configured:
        return dg.AssetCheckResult(
            asset_key=section,
            check_name=SOURCES_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no outside source: no model endpoint is configured, the analyzer writes every section",
            metadata={"sources_lost": 0, "ai_calls": 0, "ai_fallbacks": 0},
        )
    calls = [o for o in outcomes if o.ai in (AI_NARRATED, AI_FALLBACK)]
    fell = [o for o in calls if o.ai == AI_FALLBACK]
    causes = Counter(o.ai_cause or "unknown cause" for o in fell)
    budget = sum(1 for o in outcomes if o.ai == AI_BUDGET)
    lost = [
        {"source": MODEL_SOURCE, "error": cause, "brands_affected": n}
        for cause, n in causes.most_common()
    ]
    return dg.AssetCheckResult(
        asset_key=section,
        check_name=SOURCES_CHECK,
        passed=not fell,
        severity=dg.AssetCheckSeverity.WARN,
        description=fallback_summary(section, len(calls), causes, budget),
        metadata={
            "sources_lost": 1 if fell else 0,
            "ai_calls": len(calls),
            "ai_fallbacks": len(fell),
            "ai_budget_skipped": budget,
            "fallback_brands": dg.MetadataValue.json(
                sorted(o.brand_id for o in fell)[:NAMED_IN_CHECK]
            ),
            "lost_sources": dg.MetadataValue.json(lost),
        },
    )


def _entries_result(section: str, currency: dict) -> dg.AssetCheckResult:
    stale = currency["missing"] + currency["expired"]
    sample = currency["sample"]
    return dg.AssetCheckResult(
        asset_key=section,
        check_name=ENTRIES_CHECK,
        passed=stale == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=entries_summary(
            section,
            currency["active"],
            currency["missing"],
            currency["expired"],
            currency["deferred"],
            [r["brand_id"] for r in sample],
        ),
        metadata={
            "active_brands": currency["active"],
            "stale_entries": stale,
            "missing_entries": currency["missing"],
            "expired_entries": currency["expired"],
            "deferred_entries": currency["deferred"],
            "stale_sample": dg.MetadataValue.json(sample),
        },
    )


@dg.multi_asset(
    specs=_section_specs(),
    check_specs=_check_specs(),
    name="enrichment_sections",
    partitions_def=brands_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    pool=pools.LLM,
)
def enrichment_sections(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    llm: LlmSettings,
    notifier: Notifier,
    enrichment_settings: EnrichmentSettings,
):
    """Enriches the selected MIRROR sections for every brand partition of the run.

    A run a person starts (UI, Launchpad, ``dagster asset materialize``, Python) refreshes
    every selected (section, brand); runs of schedules, sensors and automation, and runs
    tagged ``marba/refresh=due``, keep entries that are fresh with unchanged inputs
    (``marba/refresh=force`` forces). Refreshed entries come from the built-in analyzer,
    narrated by the model when one is configured and the budget allows. Every partition
    of the run ends with a materialization (refreshed, unchanged or deferred, with the
    reason and the entry's times) or a failure: brands that fail, and partitions of
    inactive or deleted brands, are named in the step's failure after the others are
    materialized. Checks per section: every brand processed, the model answered, and every
    active brand has a current entry."""
    sections = [sec for sec in SECTIONS if dg.AssetKey(sec) in context.selected_asset_keys]
    if not sections:
        # Checks executed on their own (the UI's Execute on a check): only the entries
        # check has something to say without a run of the section.
        for key in context.selected_asset_check_keys:
            if key.name == ENTRIES_CHECK:
                yield _entries_result(
                    key.asset_key.path[-1], _currency(marba_db, key.asset_key.path[-1], utcnow())
                )
        return
    try:
        mode = refresh_mode(context.run.tags, REFRESH_TAG)
    except InvalidRefreshTag as exc:
        raise dg.Failure(description=str(exc)) from None
    # Partition keys name the brand (``slug~id``); the engine works with the ids.
    key_of = keys_by_brand(context.partition_keys)
    keys = list(key_of)
    narrowed = requested_brands(context)
    if narrowed:
        keys = [k for k in keys if k in set(narrowed)]
    with marba_db.connect() as conn:
        active = set(active_brand_ids(conn))
        known = set(existing_brand_ids(conn, [k for k in keys if k not in active]))
    brands = [k for k in keys if k in active]
    config = enrichment_settings.engine_config(llm, notifier)
    by = "" if mode.started_by in mode.reason else f" (run started by {mode.started_by})"
    context.log.info(f"refresh mode {mode.mode}: {mode.reason}{by}")

    def say(level: str, message: str) -> None:
        getattr(context.log, level if level in ("info", "warning", "error") else "info")(message)

    report = EnrichmentPass(marba_db.engine, config, run_id=context.run.run_id, logger=say).run(
        brands, sections, force=mode.reason if mode.forced else None
    )
    # Partitions of brands that are not active: nothing is enriched, and the partition says
    # so as a failure (the brand_partitions_sensor drops such partitions within a minute).
    not_active = [k for k in keys if k not in active]
    if not_active:
        context.log.warning(
            f"{len(not_active)} partition(s) of brands that are not active, not enriched: "
            + ", ".join(not_active[:NAMED_IN_CHECK])
        )
    for k in not_active:
        why = (
            "brand is inactive: not enriched"
            if k in known
            else "brand does not exist (deleted): not enriched"
        )
        report.outcomes += [Outcome(k, sec, "failed", error=why) for sec in sections]
    counts: dict[str, int] = {}
    for o in report.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status != "failed":
            yield _materialization(o, mode, key_of[o.brand_id])
    context.log.info(
        f"enrichment: {len(keys)} brand(s) x {len(sections)} section(s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; {report.ai_calls} AI call(s), {report.ai_tokens} tokens, {report.ai_cost_usd} USD"
    )
    selected_checks = context.selected_asset_check_keys
    now = utcnow()
    for sec in sections:
        outcomes = report.by_section(sec)
        wanted = {
            BRANDS_CHECK: lambda: _brands_result(sec, outcomes),
            SOURCES_CHECK: lambda: _model_result(sec, outcomes, config.ai.configured),
            ENTRIES_CHECK: lambda: _entries_result(sec, _currency(marba_db, sec, now)),
        }
        for name, build in wanted.items():
            if dg.AssetCheckKey(dg.AssetKey(sec), name) in selected_checks:
                yield build()
    failed = report.failed()
    if failed:
        by_section = {sec: sorted(report.failed(sec)) for sec in sections if report.failed(sec)}
        names = "; ".join(f"{sec}: {', '.join(bs)}" for sec, bs in by_section.items())
        tail = (
            f"; not active (inactive or deleted), nothing enriched: {', '.join(sorted(not_active))}"
            if not_active
            else ""
        )
        raise dg.Failure(
            description=f"{len(failed)} brand(s) failed ({names}){tail}",
            metadata={
                "brands_failed": len(failed),
                "errors": dg.MetadataValue.json(
                    {
                        f"{o.section}/{o.brand_id}": o.error
                        for o in report.outcomes
                        if o.status == "failed"
                    }
                ),
            },
        )


def _currency(marba_db: MarbaDatabase, section: str, now) -> dict:
    with marba_db.connect() as conn:
        return entry_currency(conn, section, now, limit=NAMED_IN_CHECK)


def pending_refreshes(conn) -> list[dict]:
    """(brand, section) whose refresh the app requested, or another job invalidated, after
    the cached entry was made (or with no entry yet)."""
    sch, cache, brands = s.enrichment_schedule, s.enrichment_cache, s.brands
    rows = (
        conn.execute(
            sa.select(
                sch.c.brand_id,
                sch.c.section,
                sch.c.refresh_requested_at,
                sch.c.invalidated_at,
                sch.c.invalidated_reason,
                cache.c.created_at,
            )
            .select_from(
                sch.join(brands, brands.c.id == sch.c.brand_id).outerjoin(
                    cache,
                    sa.and_(cache.c.brand_id == sch.c.brand_id, cache.c.section == sch.c.section),
                )
            )
            .where(
                brands.c.is_active.is_(True),
                sa.or_(sch.c.refresh_requested_at.is_not(None), sch.c.invalidated_at.is_not(None)),
            )
            .order_by(sch.c.brand_id, sch.c.section)
        )
        .mappings()
        .all()
    )
    out = []
    for r in rows:
        made = r["created_at"]
        for kind, ts in (
            ("requested", r["refresh_requested_at"]),
            ("invalidated", r["invalidated_at"]),
        ):
            if ts is not None and (made is None or ts > made):
                out.append(
                    {
                        "brand_id": r["brand_id"],
                        "section": r["section"],
                        "trigger": kind,
                        "at": ts,
                        "reason": r["invalidated_reason"] if kind == "invalidated" else None,
                    }
                )
                break
    return out


@dg.sensor(
    name="enrichment_refresh_sensor",
    job_name=JOB_NAME,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches a brand's section when the app sets enrichment_schedule.refresh_requested_at "
    "or another job sets invalidated_at (e.g. a competitor price move invalidates reimagine).",
)
def enrichment_refresh_sensor(context: dg.SensorEvaluationContext, marba_db: MarbaDatabase):
    with marba_db.connect() as conn:
        pending = pending_refreshes(conn)
    if not pending:
        return dg.SkipReason("no refresh requested")
    key_of = keys_by_brand(context.instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME))
    requests = []
    waiting = []
    for p in pending:
        if p["brand_id"] not in key_of:
            waiting.append(p["brand_id"])
            continue
        at = p["at"].astimezone(timezone.utc).isoformat()
        requests.append(
            dg.RunRequest(
                run_key=f"enrichment:{p['brand_id']}:{p['section']}:{p['trigger']}:{at}",
                partition_key=key_of[p["brand_id"]],
                asset_selection=[dg.AssetKey(p["section"])],
                tags={JOB_TAG: JOB_NAME, TRIGGER_TAG: p["trigger"]},
            )
        )
    if waiting:
        context.log.info(f"waiting for brand partitions: {', '.join(sorted(set(waiting)))}")
    if not requests:
        return dg.SkipReason("requested brands have no partition yet")
    return dg.SensorResult(run_requests=requests)


enrichment_automation_sensor = dg.AutomationConditionSensorDefinition(
    "enrichment_automation_sensor",
    target=dg.AssetSelection.groups("enrichment"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    # Tagged like the job's other runs, so the run queue's one-run-per-job limit applies.
    run_tags={JOB_TAG: JOB_NAME},
    description="Refreshes enrichment sections when their inputs are materialized (automation conditions).",
)
