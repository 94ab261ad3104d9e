"""The enrichment sensors: the refresh sensor launches a brand's section when the app asks
for it or another job invalidates it; the automation sensor evaluates the sections'
automation conditions (inputs changed)."""

from datetime import UTC

import dagster as dg

from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, keys_by_brand
from marba_dagster.core.catalog import ENRICHMENT_JOB
from marba_dagster.core.runs import ENRICHMENT_TRIGGER_TAG, JOB_TAG
from marba_dagster.defs.enrichment.assets import DOMAIN, SECTION_KEYS
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.enrichment import pending_refreshes


@dg.sensor(
    name="enrichment_refresh_sensor",
    job_name=ENRICHMENT_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches a brand's section when the app sets "
    "enrichment_schedule.refresh_requested_at or another job sets invalidated_at (e.g. a "
    "competitor price move invalidates reimagine).",
)
def enrichment_refresh_sensor(context: dg.SensorEvaluationContext, marba_db: MarbaDatabase):
    with marba_db.connect() as conn:
        pending = pending_refreshes(conn)
    if not pending:
        return dg.SkipReason("no refresh requested")
    key_of = keys_by_brand(context.instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME))
    requests = []
    waiting = []
    for refresh in pending:
        brand_id, section, trigger = refresh["brand_id"], refresh["section"], refresh["trigger"]
        if brand_id not in key_of:
            waiting.append(brand_id)
            continue
        at = refresh["at"].astimezone(UTC).isoformat()
        requests.append(
            dg.RunRequest(
                run_key=f"enrichment:{brand_id}:{section}:{trigger}:{at}",
                partition_key=key_of[brand_id],
                asset_selection=[SECTION_KEYS[section]],
                tags={JOB_TAG: ENRICHMENT_JOB, ENRICHMENT_TRIGGER_TAG: trigger},
            )
        )
    if waiting:
        context.log.info(f"waiting for brand partitions: {', '.join(sorted(set(waiting)))}")
    if not requests:
        return dg.SkipReason("requested brands have no partition yet")
    return dg.SensorResult(run_requests=requests)


enrichment_automation_sensor = dg.AutomationConditionSensorDefinition(
    "enrichment_automation_sensor",
    target=dg.AssetSelection.groups(DOMAIN),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    # Tagged like the job's other runs, so the run queue's per-job limit applies (and, as a
    # run over its own brands, the per-shard one: MarbaInstance tags it shard 1).
    run_tags={JOB_TAG: ENRICHMENT_JOB},
    description="Refreshes enrichment sections when their inputs are materialized "
    "(automation conditions).",
)
