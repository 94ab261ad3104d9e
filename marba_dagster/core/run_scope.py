"""How a run of a MARBA job is scoped: its partition and its run tags (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from marba_dagster.core.brands import brand_id_of
from marba_dagster.core.catalog import JobSpec
from marba_dagster.core.runs import BRANDS_TAG, JOB_TAG

# Dagster's run tags for a range of partitions in one run (``dagster/asset_partition_range_*``).
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


class NothingToRun(Exception):
    """The job has no work in this scope (e.g. no brand partitions yet)."""


def run_scope(
    spec: JobSpec,
    now: datetime,
    brand_keys: Sequence[str],
    brand_ids: list[str] | None = None,
) -> tuple[str | None, dict[str, str]]:
    """(partition key, tags) for a run of ``spec`` covering its current work at ``now``.

    Daily jobs take the latest complete UTC day, hourly jobs the latest complete hour,
    brand-partitioned jobs the range of every brand partition (one run for all brands) or
    the given brands (``brand_keys``: the instance's brand partition keys); ``brand_ids``
    narrows any job through the ``marba/brands`` tag.
    """
    now = now.astimezone(timezone.utc)
    tags = {JOB_TAG: spec.name}
    if brand_ids:
        tags[BRANDS_TAG] = ",".join(brand_ids)
    if spec.partitioning == "daily":
        return (now - timedelta(days=1)).strftime("%Y-%m-%d"), tags
    if spec.partitioning == "hourly":
        return (now - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00"), tags
    if spec.partitioning == "brands":
        keys = list(brand_keys)
        if brand_ids:
            keys = [k for k in keys if brand_id_of(k) in set(brand_ids)]
            if len(keys) == 1:
                return keys[0], tags
        if not keys:
            raise NothingToRun("no brand partitions yet (no active brands synced)")
        tags[PARTITION_RANGE_START_TAG] = keys[0]
        tags[PARTITION_RANGE_END_TAG] = keys[-1]
        return None, tags
    return None, tags
