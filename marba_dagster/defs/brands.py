"""Brands as a dynamic partition, kept in sync with ``brands.is_active``.

A brand's partition key is its name made readable and its id, ``exeter-pet-co~brand-42-00001``,
so the UI's partition pickers and tables say which brand they mean; the id after the first
``~`` is what every job works with (a key without ``~`` is a bare id). A renamed brand gets
a new key: the sync replaces the old one, and the brand's data, kept by id, is unaffected.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import dagster as dg
from dagster import DagsterInstance
from sqlalchemy.engine import Engine

from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.brands import active_brand_names

BRANDS_PARTITIONS_NAME = "brands"
brands_partitions = dg.DynamicPartitionsDefinition(name=BRANDS_PARTITIONS_NAME)

KEY_SEPARATOR = "~"
_SLUG_CHARS = 40


def brand_slug(name: str | None) -> str:
    """``Café Zürich & Co.`` -> ``cafe-zurich-co``; a name with no latin letters -> ``brand``."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    return slug or "brand"


def brand_partition_key(brand_id: str, name: str | None) -> str:
    return f"{brand_slug(name)}{KEY_SEPARATOR}{brand_id}"


def brand_id_of(partition_key: str) -> str:
    """The brand id a partition key stands for (the key itself for a bare id)."""
    _, sep, rest = partition_key.partition(KEY_SEPARATOR)
    return rest if sep else partition_key


def keys_by_brand(keys: Iterable[str]) -> dict[str, str]:
    """Partition key of each brand id among ``keys``."""
    return {brand_id_of(k): k for k in keys}


def partition_changes(wanted: list[str], current: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to delete) so that the partitions equal ``wanted``."""
    wanted_set, current_set = set(wanted), set(current)
    return sorted(wanted_set - current_set), sorted(current_set - wanted_set)


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
