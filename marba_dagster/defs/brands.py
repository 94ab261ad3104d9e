"""Brands as a dynamic partition, kept in sync with ``brands.is_active``."""

from __future__ import annotations

import dagster as dg
from dagster import DagsterInstance
from sqlalchemy.engine import Engine

from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.queries import active_brand_ids

BRANDS_PARTITIONS_NAME = "brands"
brands_partitions = dg.DynamicPartitionsDefinition(name=BRANDS_PARTITIONS_NAME)


def partition_changes(active: list[str], current: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to delete) so that the partitions equal the active brands."""
    active_set, current_set = set(active), set(current)
    return sorted(active_set - current_set), sorted(current_set - active_set)


def sync_brand_partitions(instance: DagsterInstance, engine: Engine) -> tuple[list[str], list[str]]:
    """Apply the changes directly to ``instance`` (used by the CLI before a run)."""
    with engine.connect() as conn:
        active = active_brand_ids(conn)
    added, removed = partition_changes(active, instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME))
    if added:
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, added)
    for key in removed:
        instance.delete_dynamic_partition(BRANDS_PARTITIONS_NAME, key)
    return added, removed


@dg.sensor(
    name="brand_partitions_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each newly active brand and drops deactivated ones.",
)
def brand_partitions_sensor(context: dg.SensorEvaluationContext, marba_db: MarbaDatabase):
    with marba_db.connect() as conn:
        active = active_brand_ids(conn)
    added, removed = partition_changes(
        active, context.instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)
    )
    if not added and not removed:
        return dg.SkipReason(f"{len(active)} active brands, partitions already in sync")
    requests = []
    if added:
        requests.append(brands_partitions.build_add_request(added))
    if removed:
        requests.append(brands_partitions.build_delete_request(removed))
    context.log.info(f"brand partitions: +{len(added)} -{len(removed)}")
    return dg.SensorResult(dynamic_partitions_requests=requests)


defs = dg.Definitions(sensors=[brand_partitions_sensor])
