"""Brand shards: one tick of a job's schedule as several runs of at most N brands (pure).

A job whose tick covers more active brands than ``MARBA_BRANDS_PER_RUN`` is split into
``n = ceil(brands / per_run)`` shards of nearly equal size, one run each, so the run queue
can run them side by side (``marba/job`` limits how many at once, ``marba/shard`` keeps two
runs of one shard apart).

- A brand-partitioned job (enrichment) is split into contiguous ranges of its brand
  partitions, in the partitions' own order (a Dagster partition range is contiguous in that
  order): ``dagster/asset_partition_range_start`` .. ``_end`` per shard.
- Every other job is split by brand id: the ids are sorted, and shard ``i`` covers the
  half-open range [``first``, ``before``) of that order, the first shard open below and the
  last open above. The ranges tile the whole id space, so every brand active when a shard's
  run starts (one activated after the tick too) is in exactly one shard of the tick; the
  run resolves its range against the active brands when it starts (``in_shard``).

A tick's run keys are derived from the tick's time and the shard's place (``<job>:<tick
time>:<i>/<n>``, or the plain ``<job>:<tick time>`` of an unsharded tick, as before shards
existed), so a daemon that evaluates the same tick again after a restart asks for the same
keys and Dagster launches none of them twice. The shards of a tick are one execution of the
job (``combine_shards``): the MARBA app reads one ``job_executions`` row per tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any

from marba_dagster.core.brands import brand_id_of
from marba_dagster.core.catalog import JobSpec
from marba_dagster.core.run_scope import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    run_scope,
)
from marba_dagster.core.runs import (
    BRANDS_BEFORE_TAG,
    BRANDS_FROM_TAG,
    MAX_ERROR_CHARS,
    SHARD_OF_TAG,
    SHARD_TAG,
    TICK_TAG,
    RunFacts,
)

# Dagster's run queue launches higher ``dagster/priority`` first.
PRIORITY_TAG = "dagster/priority"
SHARD_PRIORITY = "1"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; ``brands`` it held when planned."""

    index: int
    count: int
    brands: int
    first: str | None = None  # brand range, inclusive (None: from the lowest id)
    before: str | None = None  # brand range, exclusive (None: to the highest id)
    partition_start: str | None = None  # brand-partitioned jobs: the partition range
    partition_end: str | None = None

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def shard_count(brands: int, per_run: int) -> int:
    if per_run < 1:
        raise ValueError("brands per run must be >= 1")
    return max(1, math.ceil(brands / per_run))


def _chunks(items: Sequence[str], count: int) -> list[Sequence[str]]:
    """``items`` in ``count`` contiguous chunks whose sizes differ by at most one."""
    total = len(items)
    return [items[i * total // count : (i + 1) * total // count] for i in range(count)]


def plan_by_id(brand_ids: Sequence[str], per_run: int) -> list[Shard]:
    """Shards of at most ``per_run`` brands over the sorted ids (ranges tiling every id)."""
    ids = sorted(set(brand_ids))
    count = shard_count(len(ids), per_run)
    if count == 1:
        return [Shard(1, 1, len(ids))]
    chunks = _chunks(ids, count)
    return [
        Shard(
            index=i + 1,
            count=count,
            brands=len(chunk),
            first=None if i == 0 else chunk[0],
            before=None if i == count - 1 else chunks[i + 1][0],
        )
        for i, chunk in enumerate(chunks)
    ]


def plan_by_partition(keys: Sequence[str], per_run: int) -> list[Shard]:
    """Shards of at most ``per_run`` brand partitions, contiguous in the partitions' order."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    count = shard_count(len(keys), per_run)
    return [
        Shard(
            index=i + 1,
            count=count,
            brands=len(chunk),
            partition_start=chunk[0],
            partition_end=chunk[-1],
        )
        for i, chunk in enumerate(_chunks(keys, count))
    ]


@dataclass(frozen=True)
class ShardRun:
    """One run a tick asks for: its shard, partition, tags and run key."""

    shard: Shard
    partition_key: str | None
    tags: dict[str, str]
    run_key: str


def shard_runs(
    spec: JobSpec, now: datetime, brand_keys: Sequence[str], per_run: int, tick: str
) -> list[ShardRun]:
    """The runs of one tick of ``spec`` at ``now`` over the brand partitions ``brand_keys``
    (in the partitions' order), each of at most ``per_run`` brands.

    ``NothingToRun`` (from ``run_scope``) when a brand-partitioned job has no partitions. A
    job that is not brand-partitioned and knows no brands yet runs once over every brand.
    """
    partition_key, tags = run_scope(spec, now, brand_keys)
    if spec.partitioning == "brands":
        shards = plan_by_partition(brand_keys, per_run)
    else:
        shards = plan_by_id([brand_id_of(k) for k in brand_keys], per_run)
    return [
        ShardRun(
            shard=shard,
            partition_key=partition_key,
            tags={**tags, **shard_tags(spec.name, tick, shard)},
            run_key=run_key(tick, shard),
        )
        for shard in shards
    ]


def in_shard(brand_id: str, first: str | None, before: str | None) -> bool:
    """Whether ``brand_id`` is in the half-open range [first, before)."""
    return (first is None or brand_id >= first) and (before is None or brand_id < before)


def brand_range(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(first, before) of a run's brand range; (None, None) for a run over every brand."""
    return tags.get(BRANDS_FROM_TAG) or None, tags.get(BRANDS_BEFORE_TAG) or None


def tick_id(job: str, when: datetime) -> str:
    """The id of one execution of ``job``: ``<job>:<tick time in UTC, ISO 8601>``."""
    return f"{job}:{when.astimezone(timezone.utc).isoformat()}"


def run_key(tick: str, shard: Shard) -> str:
    """The run key of ``shard`` of ``tick`` (the tick's own for a tick of one shard)."""
    return tick if shard.count == 1 else f"{tick}:{shard.label}"


def shard_tags(job: str, tick: str, shard: Shard) -> dict[str, str]:
    """The run tags of ``shard``: its queue key and, for a real shard, its place and brands."""
    tags = {SHARD_TAG: shard_key(job, shard.index)}
    if shard.count > 1:
        # A tick's shards go ahead of queued one-brand refreshes (automation can queue
        # hundreds of those while the other jobs write the sections' inputs).
        tags[PRIORITY_TAG] = SHARD_PRIORITY
        tags[TICK_TAG] = tick
        tags[SHARD_OF_TAG] = shard.label
        if shard.first is not None:
            tags[BRANDS_FROM_TAG] = shard.first
        if shard.before is not None:
            tags[BRANDS_BEFORE_TAG] = shard.before
    if shard.partition_start is not None:
        tags[PARTITION_RANGE_START_TAG] = shard.partition_start
        tags[PARTITION_RANGE_END_TAG] = shard.partition_end or shard.partition_start
    return tags


def shard_key(job: str, index: int = 1) -> str:
    """``marba/shard`` of shard ``index`` of ``job``; a run over every brand is shard 1."""
    return f"{job}:{index}"


def queue_key(job: str, tags: Mapping[str, str]) -> str:
    """``marba/shard`` of a run that is not one shard of a tick.

    A run of one partition (an enrichment refresh of one brand by automation or a person)
    is keyed by its partition: two runs of one brand never overlap, and a burst of them
    neither runs one at a time nor holds a slot the scheduled shards need. Any other run
    covers every brand and takes the first shard's key."""
    partition = tags.get(PARTITION_TAG)
    return f"{job}:partition:{partition}" if partition else shard_key(job)


def parse_shard_of(value: str | None) -> tuple[int, int] | None:
    """``3/8`` -> (3, 8); ``None`` for a missing or malformed value."""
    if not value:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        return None
    i, n = int(index), int(count)
    return (i, n) if 1 <= i <= n else None


# A tick's shards in these states are still under way.
_UNFINISHED = ("queued", "running")


def combine_shards(
    job: str, tick: str, count: int, shards: Sequence[Mapping[str, Any]]
) -> RunFacts:
    """One execution of ``job`` from the recorded shards of ``tick`` (``count`` expected).

    Each shard is a mapping with ``shard_index``, ``status``, ``trigger``, ``partition_key``,
    ``started_at``, ``finished_at``, ``brands_processed``, ``brands_failed``, ``error``. The
    execution is under way until every shard has finished (a shard not recorded yet counts
    as queued); then it failed if any shard failed (a shard fails only for more than its
    brands' own failures: those make it partial), else was canceled if any was, else is
    partial if any shard left something out, else succeeded. Brands add up; the error names
    each shard with its own (``shard 2/4: ...``).
    """
    statuses = [s["status"] for s in shards]
    started = [s["started_at"] for s in shards if s["started_at"] is not None]
    finished = [s["finished_at"] for s in shards if s["finished_at"] is not None]
    done = len(shards) >= count and not any(s in _UNFINISHED for s in statuses)
    if not done:
        status = "running" if started or any(s != "queued" for s in statuses) else "queued"
    elif "failure" in statuses:
        status = "failure"
    elif "canceled" in statuses:
        status = "canceled"
    elif "partial" in statuses:
        status = "partial"
    else:
        status = "success"
    errors = [
        f"shard {s['shard_index']}/{count}: {s['error']}"
        for s in sorted(shards, key=itemgetter("shard_index"))
        if s["error"]
    ]
    error = "; ".join(errors) if done and errors else None
    first = min(shards, key=itemgetter("shard_index")) if shards else {}
    return RunFacts(
        job_name=job,
        run_id=tick,
        status=status,
        trigger=first.get("trigger") or "schedule",
        partition_key=first.get("partition_key"),
        started_at=min(started) if started else None,
        finished_at=max(finished) if done and finished else None,
        brands_processed=sum(int(s["brands_processed"] or 0) for s in shards),
        brands_failed=sum(int(s["brands_failed"] or 0) for s in shards),
        error=error[:MAX_ERROR_CHARS] if error else None,
    )
