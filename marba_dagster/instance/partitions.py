"""The brand partitions of a Dagster instance kept equal to the active brands."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance
from sqlalchemy.engine import Engine

from marba_dagster.core.brands import (
    BRANDS_PARTITIONS_NAME,
    brand_partition_key,
    partition_changes,
)
from marba_dagster.core.catalog import JobSpec
from marba_dagster.core.run_scope import run_scope
from marba_dagster.core.shards import ShardRun, shard_runs, tick_id
from marba_dagster.store.brands import active_brand_names


def wanted_keys(conn) -> list[str]:
    """The partition keys of the active brands."""
    return [brand_partition_key(b, name) for b, name in active_brand_names(conn).items()]


def sync_brand_partitions(instance: DagsterInstance, engine: Engine) -> tuple[list[str], list[str]]:
    """Apply the changes directly to ``instance`` (used by the CLI before a run)."""
    with engine.connect() as conn:
        wanted = wanted_keys(conn)
    added, removed = partition_changes(
        wanted, instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)
    )
    if added:
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, added)
    for key in removed:
        instance.delete_dynamic_partition(BRANDS_PARTITIONS_NAME, key)
    return added, removed


def scope_now(
    spec: JobSpec, now: datetime, instance: DagsterInstance, brand_ids: list[str] | None = None
) -> tuple[str | None, dict[str, str]]:
    """(partition key, tags) of a run of ``spec`` at ``now`` over the instance's brand
    partitions (``core.run_scope.run_scope``); ``NothingToRun`` when there is nothing."""
    return run_scope(spec, now, instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME), brand_ids)


def shard_runs_now(
    spec: JobSpec, now: datetime, instance: DagsterInstance, per_run: int | None = None
) -> list[ShardRun]:
    """The runs of the tick of ``spec`` at ``now``: one per shard of at most ``per_run``
    (default ``MARBA_BRANDS_PER_RUN``) of the instance's brand partitions
    (``core.shards.shard_runs``); ``NothingToRun`` when there is nothing."""
    from marba_dagster import settings

    per_run = per_run or settings.BRANDS_PER_RUN.value()
    keys = instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)
    return shard_runs(spec, now, keys, per_run, tick_id(spec.name, now))
