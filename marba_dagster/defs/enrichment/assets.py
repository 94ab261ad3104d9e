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
  active or the partitions are out of sync."""



from datetime import timezone

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.data_version import DATA_VERSION_IS_USER_PROVIDED_TAG, DATA_VERSION_TAG

from marba_dagster.core.enrichment.refresh import InvalidRefreshTag, RefreshMode, refresh_mode
from marba_dagster.core.enrichment.sections import DESCRIPTIONS, SECTIONS, TTL
from marba_dagster.defs import pools
from marba_dagster.defs.brands import BRANDS_PARTITIONS_NAME, brands_partitions
from marba_dagster.defs.common import NAMED_IN_CHECK, markdown_table, requested_brands
from marba_dagster.defs.enrichment.engine import EnrichmentPass, Outcome
from marba_dagster.defs.enrichment.resources import EnrichmentSettings
from marba_dagster.defs.jobs import JOB_TAG, REFRESH_TAG
from marba_dagster.defs.resources import LlmSettings, MarbaDatabase, Notifier
from marba_dagster.store import schema as s
from marba_dagster.store.queries import active_brand_ids, existing_brand_ids

JOB_NAME = "enrichment_scheduler"
TRIGGER_TAG = "marba/enrichment_trigger"


# What each section reads, as upstream assets: when one of them is materialized, the
# automation condition requests the section, and the fingerprint decides per brand whether
# anything changed.
SECTION_DEPS: dict[str, list[str]] = {
    "measure": ["brand_daily_metrics", "platform_metrics"],
    "intend": ["brand_daily_metrics"],
    # Significant moves (a price change) also invalidate it at once through
    # enrichment_schedule.invalidated_at, set by competitive monitoring.
    "reimagine": ["competitive_gaps"],
    "reach": ["learning_patterns", "brand_daily_metrics"],
    "optimize": ["learning_patterns", "platform_metrics"],
    "reflect": ["engagement_inbox", "intelligence_opportunities"],
}

INPUTS_CHANGED = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
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


def _section_specs() -> list[dg.AssetSpec]:
    return [
    dg.AssetSpec(
        section,
        description=(f"MIRROR section '{section}': {DESCRIPTIONS[section]}. Cached in enrichment_cache for "
                     f"{_hours(section)}. A run a person starts refreshes "
                     "every selected brand; schedules, sensors and automation refresh only what is due. "
                     "Each brand's materialization says whether its entry was refreshed, unchanged or deferred, "
                     "with the entry's input fingerprint as its data version."),
        group_name="enrichment",
        skippable=True,
        deps=_deps(section),
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=TTL[section],
                                                         warn_window=TTL[section] * WARN_FRACTION),
        automation_condition=INPUTS_CHANGED,
        kinds={"python", "pandas", "sql"},
        metadata={"ttl_hours": TTL[section].total_seconds() / 3600, "table": "enrichment_cache"},
    )
    for section in SECTIONS
    ]


def _preview(o) -> str:
    rows = [{"field": "generated_by", "value": o.generated_by}, {"field": "reason", "value": o.reason},
            {"field": "data", "value": o.data_status}, {"field": "expires_at", "value": o.expires_at.isoformat() if o.expires_at else ""}]
    if o.ai_fallback:
        rows.append({"field": "AI fallback", "value": o.ai_fallback})
    return markdown_table(rows, ["field", "value"])


def _ts(value):
    return dg.MetadataValue.timestamp(value) if value is not None else None


def _materialization(o, mode: RefreshMode) -> dg.AssetMaterialization:
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
    tags = {DATA_VERSION_TAG: o.fingerprint, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"} if o.fingerprint else None
    return dg.AssetMaterialization(asset_key=dg.AssetKey(o.section), partition=o.brand_id,
                                   description=f"{outcome}: {o.reason}", metadata=metadata, tags=tags)


@dg.multi_asset(
    specs=_section_specs(),
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
    materialized."""
    try:
        mode = refresh_mode(context.run.tags, REFRESH_TAG)
    except InvalidRefreshTag as exc:
        raise dg.Failure(description=str(exc)) from None
    keys = list(context.partition_keys)
    narrowed = requested_brands(context)
    if narrowed:
        keys = [k for k in keys if k in set(narrowed)]
    with marba_db.connect() as conn:
        active = set(active_brand_ids(conn))
        known = set(existing_brand_ids(conn, [k for k in keys if k not in active]))
    brands = [k for k in keys if k in active]
    sections = [sec for sec in SECTIONS if dg.AssetKey(sec) in context.selected_asset_keys]
    config = enrichment_settings.engine_config(llm, notifier)
    by = "" if mode.started_by in mode.reason else f" (run started by {mode.started_by})"
    context.log.info(f"refresh mode {mode.mode}: {mode.reason}{by}")

    def say(level: str, message: str) -> None:
        getattr(context.log, level if level in ("info", "warning", "error") else "info")(message)

    report = EnrichmentPass(marba_db.engine, config, run_id=context.run.run_id, logger=say).run(
        brands, sections, force=mode.reason if mode.forced else None)
    # Partitions of brands that are not active: nothing is enriched, and the partition says
    # so as a failure (the brand_partitions_sensor drops such partitions within a minute).
    not_active = [k for k in keys if k not in active]
    if not_active:
        context.log.warning(f"{len(not_active)} partition(s) of brands that are not active, not enriched: "
                            + ", ".join(not_active[:NAMED_IN_CHECK]))
    for k in not_active:
        why = "brand is inactive: not enriched" if k in known else "brand does not exist (deleted): not enriched"
        report.outcomes += [Outcome(k, sec, "failed", error=why) for sec in sections]
    counts: dict[str, int] = {}
    for o in report.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status != "failed":
            yield _materialization(o, mode)
    context.log.info(
        f"enrichment: {len(keys)} brand(s) x {len(sections)} section(s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; {report.ai_calls} AI call(s), {report.ai_tokens} tokens, {report.ai_cost_usd} USD"
    )
    failed = report.failed()
    if failed:
        by_section = {sec: sorted(report.failed(sec)) for sec in sections if report.failed(sec)}
        names = "; ".join(f"{sec}: {', '.join(bs)}" for sec, bs in by_section.items())
        tail = (f"; not active (inactive or deleted), nothing enriched: {', '.join(sorted(not_active))}"
                if not_active else "")
        raise dg.Failure(
            description=f"{len(failed)} brand(s) failed ({names}){tail}",
            metadata={"brands_failed": len(failed),
                      "errors": dg.MetadataValue.json({f"{o.section}/{o.brand_id}": o.error for o in report.outcomes if o.status == "failed"})},
        )


def pending_refreshes(conn) -> list[dict]:
    """(brand, section) whose refresh the app requested, or another job invalidated, after
    the cached entry was made (or with no entry yet)."""
    sch, cache, brands = s.enrichment_schedule, s.enrichment_cache, s.brands
    rows = conn.execute(
        sa.select(sch.c.brand_id, sch.c.section, sch.c.refresh_requested_at, sch.c.invalidated_at,
                  sch.c.invalidated_reason, cache.c.created_at)
        .select_from(sch.join(brands, brands.c.id == sch.c.brand_id)
                     .outerjoin(cache, sa.and_(cache.c.brand_id == sch.c.brand_id, cache.c.section == sch.c.section)))
        .where(brands.c.is_active.is_(True),
               sa.or_(sch.c.refresh_requested_at.is_not(None), sch.c.invalidated_at.is_not(None)))
        .order_by(sch.c.brand_id, sch.c.section)
    ).mappings().all()
    out = []
    for r in rows:
        made = r["created_at"]
        for kind, ts in (("requested", r["refresh_requested_at"]), ("invalidated", r["invalidated_at"])):
            if ts is not None and (made is None or ts > made):
                out.append({"brand_id": r["brand_id"], "section": r["section"], "trigger": kind, "at": ts,
                            "reason": r["invalidated_reason"] if kind == "invalidated" else None})
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
    partitions = set(context.instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME))
    requests = []
    waiting = []
    for p in pending:
        if p["brand_id"] not in partitions:
            waiting.append(p["brand_id"])
            continue
        at = p["at"].astimezone(timezone.utc).isoformat()
        requests.append(dg.RunRequest(
            run_key=f"enrichment:{p['brand_id']}:{p['section']}:{p['trigger']}:{at}",
            partition_key=p["brand_id"],
            asset_selection=[dg.AssetKey(p["section"])],
            tags={JOB_TAG: JOB_NAME, TRIGGER_TAG: p["trigger"]},
        ))
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
