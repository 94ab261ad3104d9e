"""The six MIRROR sections as Dagster assets ``enrichment/<section>`` (group ``enrichment``).

The six sections are one ``multi_asset`` (six asset keys, subsettable) so that a run shares
one model client, hence one requests/tokens-per-minute budget, across every section and
brand; each (section, brand) is materialized on its own, so one brand's failure shows as
that brand's failed partition while the others are materialized. The engine is
``services.enrichment``; the checks are in ``checks.py``, the refresh and automation
sensors in ``sensors.py``, the ``enrichment_settings`` resource in ``resources.py``.

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
  ``sources_available`` and ``all_entries_current`` (``checks.py``).
"""

import dagster as dg
from dagster._core.definitions.data_version import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)

from marba_dagster.core.brands import keys_by_brand
from marba_dagster.core.enrichment.refresh import InvalidRefreshTag, RefreshMode, refresh_mode
from marba_dagster.core.enrichment.sections import DESCRIPTIONS, SECTIONS, TTL, ttl_label
from marba_dagster.core.markdown import markdown_table
from marba_dagster.core.runs import ENTRIES_CHECK, REFRESH_TAG
from marba_dagster.defs import execution
from marba_dagster.defs.batches import NAMED_IN_CHECK, requested_brands
from marba_dagster.defs.brands import brands_partitions
from marba_dagster.defs.enrichment.checks import (
    entries_result,
    section_check_results,
    section_check_specs,
)
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.services.enrichment import Outcome, enrich_brands
from marba_dagster.store.types import utcnow

DOMAIN = "enrichment"  # the asset keys' prefix and the asset group

SECTION_KEYS: dict[str, dg.AssetKey] = {
    section: dg.AssetKey([DOMAIN, section]) for section in SECTIONS
}

# What each section reads, as upstream assets: when one of them is materialized, the
# automation condition requests the section, and the fingerprint decides per brand whether
# anything changed.
BRAND_DAILY_METRICS = dg.AssetKey(["analytics", "brand_daily_metrics"])
PLATFORM_METRICS = dg.AssetKey(["analytics", "platform_metrics"])
LEARNING_PATTERNS = dg.AssetKey(["learning", "learning_patterns"])
COMPETITIVE_GAPS = dg.AssetKey(["competitive", "competitive_gaps"])
ENGAGEMENT_INBOX = dg.AssetKey(["engagement", "engagement_inbox"])
OPPORTUNITIES = dg.AssetKey(["opportunities", "intelligence_opportunities"])
SECTION_DEPS: dict[str, list[dg.AssetKey]] = {
    "measure": [BRAND_DAILY_METRICS, PLATFORM_METRICS],
    "intend": [BRAND_DAILY_METRICS],
    # Significant moves (a price change) also invalidate it at once through
    # enrichment_schedule.invalidated_at, set by competitive monitoring.
    "reimagine": [COMPETITIVE_GAPS],
    "reach": [LEARNING_PATTERNS, BRAND_DAILY_METRICS],
    "optimize": [LEARNING_PATTERNS, PLATFORM_METRICS],
    "reflect": [ENGAGEMENT_INBOX, OPPORTUNITIES],
}
# Daily and hourly collectors feed per-brand sections: each section reads the latest
# period, so it depends on the upstream's last partition (cheap to evaluate at any scale).
TIME_PARTITIONED = {BRAND_DAILY_METRICS, PLATFORM_METRICS, ENGAGEMENT_INBOX}

INPUTS_CHANGED = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("inputs changed (new analytics, patterns, engagement, opportunities)")

# The freshness policy warns once three quarters of the TTL have passed without a
# materialization. Every run that selects a section materializes each of its brands
# (refreshed, or unchanged with the entry's times), so a section stays inside its window
# as long as runs happen; the last quarter of the TTL is the operator's lead time to
# notice a stopped schedule, a paused sensor or failing inputs before entries expire and
# freshness fails: 1.5h for reflect, 6h for measure and optimize, 18h for reach, 42h
# for intend and reimagine. (Measure and optimize, whose 1-day TTL equals the nightly
# cadence, reach that quarter most evenings before the 02:00 run: that is their true state.)
WARN_FRACTION = 0.75


def _deps(section: str) -> list[dg.AssetDep]:
    return [
        dg.AssetDep(key, partition_mapping=dg.LastPartitionMapping())
        if key in TIME_PARTITIONED
        else dg.AssetDep(key)
        for key in SECTION_DEPS[section]
    ]


def _section_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key,
            description=(
                f"MIRROR section '{section}': {DESCRIPTIONS[section]}. Cached in "
                f"enrichment_cache for {ttl_label(section)} (TTL rules: docs/architecture.md). "
                "A run a person starts refreshes every selected brand; schedules, sensors and "
                "automation refresh only what is due. Each brand's materialization says "
                "whether its entry was refreshed, unchanged or deferred, with the entry's "
                "input fingerprint as its data version."
            ),
            group_name=DOMAIN,
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
        for section, key in SECTION_KEYS.items()
    ]


def _preview(outcome: Outcome) -> str:
    rows = [
        {"field": "generated_by", "value": outcome.generated_by},
        {"field": "reason", "value": outcome.reason},
        {"field": "data", "value": outcome.data_status},
        {
            "field": "expires_at",
            "value": outcome.expires_at.isoformat() if outcome.expires_at else "",
        },
    ]
    if outcome.ai_fallback:
        rows.append({"field": "AI fallback", "value": outcome.ai_fallback})
    return markdown_table(rows, ["field", "value"])


def _timestamp(value):
    return dg.MetadataValue.timestamp(value) if value is not None else None


def _materialization(
    outcome: Outcome, mode: RefreshMode, partition: str
) -> dg.AssetMaterialization:
    """The event of one (section, brand) that was refreshed, found current or deferred; its
    data version is the stored entry's input fingerprint."""
    common = {"refresh_mode": mode.mode, "started_by": mode.started_by}
    if outcome.status == "refreshed":
        label = "refreshed"
        metadata = {
            "outcome": label,
            "refresh_reason": outcome.reason,
            **({"due_reason": outcome.due_reason} if outcome.due_reason else {}),
            "generated_by": outcome.generated_by,
            "data_status": outcome.data_status,
            "tokens": outcome.tokens,
            "cost_usd": float(outcome.cost_usd),
            "ai_fallback": outcome.ai_fallback or "",
            "created_at": _timestamp(outcome.created_at),
            "expires_at": _timestamp(outcome.expires_at),
            **common,
            "preview": dg.MetadataValue.md(_preview(outcome)),
        }
    else:
        label = "deferred" if outcome.status == "deferred" or outcome.expired else "unchanged"
        metadata = {
            "outcome": label,
            "reason": outcome.reason,
            "generated_by": outcome.generated_by,
            "created_at": _timestamp(outcome.created_at),
            "expires_at": _timestamp(outcome.expires_at),
            **(
                {"deferred_until": _timestamp(outcome.deferred_until)}
                if outcome.deferred_until
                else {}
            ),
            **common,
        }
    tags = (
        {DATA_VERSION_TAG: outcome.fingerprint, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}
        if outcome.fingerprint
        else None
    )
    return dg.AssetMaterialization(
        asset_key=SECTION_KEYS[outcome.section],
        partition=partition,
        description=f"{label}: {outcome.reason}",
        metadata=metadata,
        tags=tags,
    )


def _refresh_mode(context: dg.AssetExecutionContext) -> RefreshMode:
    try:
        return refresh_mode(context.run.tags, REFRESH_TAG)
    except InvalidRefreshTag as exc:
        raise dg.Failure(description=str(exc)) from None


def _partition_brands(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Brand id -> partition key of the run's partitions (keys name the brand,
    ``slug~id``; the engine works with the ids), narrowed by the ``marba/brands`` tag."""
    key_of = keys_by_brand(context.partition_keys)
    narrowed = set(requested_brands(context) or ())
    if narrowed:
        key_of = {b: key for b, key in key_of.items() if b in narrowed}
    return key_of


@dg.multi_asset(
    specs=_section_specs(),
    check_specs=section_check_specs(SECTION_KEYS),
    name="enrichment_sections",
    partitions_def=brands_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    pool=execution.LLM_POOL,
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
    sections = [
        section for section, key in SECTION_KEYS.items() if key in context.selected_asset_keys
    ]
    if not sections:
        # Checks executed on their own (the UI's Execute on a check): only the entries
        # check has something to say without a run of the section.
        for check in context.selected_asset_check_keys:
            if check.name == ENTRIES_CHECK:
                yield entries_result(check.asset_key, marba_db, utcnow())
        return
    mode = _refresh_mode(context)
    key_of = _partition_brands(context)
    config = enrichment_settings.engine_config(llm, notifier)
    by = "" if mode.started_by in mode.reason else f" (run started by {mode.started_by})"
    context.log.info(f"refresh mode {mode.mode}: {mode.reason}{by}")
    report = enrich_brands(
        marba_db.engine,
        config,
        list(key_of),
        sections,
        run_id=context.run.run_id,
        force=mode.reason if mode.forced else None,
        log=context.log,
    )
    # Partitions of brands that are not active: nothing is enriched, and the partition says
    # so as a failure (the brand_partitions_sensor drops such partitions within a minute).
    if report.not_active:
        context.log.warning(
            f"{len(report.not_active)} partition(s) of brands that are not active, not "
            "enriched: " + ", ".join(report.not_active[:NAMED_IN_CHECK])
        )
    for outcome in report.outcomes:
        if outcome.status != "failed":
            yield _materialization(outcome, mode, key_of[outcome.brand_id])
    context.log.info(report.summary(len(key_of), len(sections)))
    now = utcnow()
    for section in sections:
        yield from section_check_results(
            SECTION_KEYS[section],
            context.selected_asset_check_keys,
            report,
            marba_db,
            ai_configured=config.ai.configured,
            now=now,
        )
    if report.failed():
        raise dg.Failure(
            description=report.failure_description(sections),
            metadata={
                "brands_failed": len(report.failed()),
                "errors": dg.MetadataValue.json(report.errors()),
            },
        )
