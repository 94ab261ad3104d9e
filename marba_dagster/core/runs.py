"""What a run of a MARBA job did, and the names MARBA gives runs and checks (pure).

One source for the run tags every part reads or writes (``marba/job`` and the rest), for
the two checks in which a multi-brand asset reports what it left out, and for turning a
Dagster error into the one line an operator reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Run tags.
JOB_TAG = "marba/job"  # the MARBA job of a run (the run queue's per-job limit)
BRANDS_TAG = "marba/brands"  # comma-separated brand ids a run is narrowed to
# Brand shards (core/shards.py): a scheduled tick of a job with more active brands than
# MARBA_BRANDS_PER_RUN is one run per shard. ``marba/shard`` (``<job>:<i>``) is the run
# queue's one-run-per-shard key, ``marba/shard_of`` (``<i>/<n>``) says which shard of how
# many, ``marba/tick`` (``<job>:<tick time>``) names the execution the shards make up (its
# job_executions row), and a shard's brands are the half-open range of ids
# [``marba/brands_from``, ``marba/brands_before``) (either end open when absent).
SHARD_TAG = "marba/shard"
SHARD_OF_TAG = "marba/shard_of"
TICK_TAG = "marba/tick"
BRANDS_FROM_TAG = "marba/brands_from"
BRANDS_BEFORE_TAG = "marba/brands_before"
# Enrichment freshness: "due" (TTL-aware, as schedules, sensors and automation run it) or
# "force" (recompute what was asked, as a person's Materialize does).
REFRESH_TAG = "marba/refresh"
TRIGGER_TAG = "marba/trigger"  # who asked for the run, when not a schedule or sensor
PROBE_TAG = "marba/probe"  # the circuit breaker's probe run
OUTCOME_TAG = "marba/outcome"  # "partial: ..." on a run that left something out
WORKER_TAG = "marba/worker"  # host:pid:start of the process running the run
# What asked the enrichment refresh sensor for a run: "requested" (the app) or
# "invalidated" (another job).
ENRICHMENT_TRIGGER_TAG = "marba/enrichment_trigger"

# The checks in which every multi-brand asset reports what its run left out; a run that
# fails one of them is a partial success.
BRANDS_CHECK = "all_brands_processed"
SOURCES_CHECK = "sources_available"
RUN_LOSS_CHECKS = frozenset({BRANDS_CHECK, SOURCES_CHECK})
# Enrichment's third check of each section: every active brand has a current entry.
ENTRIES_CHECK = "all_entries_current"

MAX_ERROR_CHARS = 2000


@dataclass
class RunFacts:
    """What a finished (or started) run did, read from the Dagster instance."""

    job_name: str
    run_id: str
    status: str
    trigger: str
    partition_key: str | None
    started_at: datetime | None
    finished_at: datetime | None
    brands_processed: int
    brands_failed: int
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None


def root_cause(error: Any) -> str:
    """The one line that says why a step or run failed: the innermost cause of a Dagster
    ``SerializableErrorInfo`` (step retries wrap the user's error as "Exceeded max_retries",
    user-code errors as "Error occurred while executing ..."), as ``Class: message``."""
    if error is None:
        return "failed"
    inner = error
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    message = (getattr(inner, "message", "") or "").strip()
    first = message.splitlines()[0].strip() if message else ""
    cls = getattr(inner, "cls_name", None)
    if first and cls and not first.startswith(f"{cls}:") and inner is not error:
        return f"{cls}: {first}"
    return first or cls or "failed"


def partial_outcome(facts: RunFacts) -> str:
    """``partial: 2 brands failed, source lost`` (a run tag's short value)."""
    parts = []
    if facts.brands_failed:
        parts.append(f"{facts.brands_failed} brand{'s' if facts.brands_failed != 1 else ''} failed")
    if facts.error and SOURCES_CHECK in facts.error:
        parts.append("source lost")
    return "partial: " + (", ".join(parts) or "see the run's checks")


def step_label(step_key: str | None) -> str:
    """A step as the operator knows it: an asset's step ``analytics__platform_metrics`` reads
    as its asset key ``analytics/platform_metrics``."""
    return (step_key or "run").replace("__", "/")
