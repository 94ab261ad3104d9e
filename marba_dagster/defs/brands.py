"""The ``brands`` dynamic partitions and the sensor that keeps them equal to the active
brands (keys ``slug~id``: see ``core.brands``)."""

from __future__ import annotations

import dagster as dg

from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, partition_changes
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.instance.partitions import wanted_keys

brands_partitions = dg.DynamicPartitionsDefinition(name=BRANDS_PARTITIONS_NAME)


@dg.sensor(
    name="brand_partitions_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each newly active brand and drops deactivated ones.",
)
def brand_partitions_sensor(context: dg.SensorEvaluationContext, marba_db: MarbaDatabase):
    with marba_db.connect() as conn:
        wanted = wanted_keys(conn)
    added, removed = partition_changes(
        wanted, context.instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)
    )
    if not added and not removed:
        return dg.SkipReason(f"{len(wanted)} active brands, partitions already in sync")
    requests = []
    if added:
        requests.append(brands_partitions.build_add_request(added))
    if removed:
        requests.append(brands_partitions.build_delete_request(removed))
    context.log.info(f"brand partitions: +{len(added)} -{len(removed)}")
    return dg.SensorResult(dynamic_partitions_requests=requests)


defs = dg.Definitions(sensors=[brand_partitions_sensor])
