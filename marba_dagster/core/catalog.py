"""The seven MARBA jobs: names, aliases, crons and how each run is scoped (docs/architecture.md).

Pure data. The Dagster wiring (``defs/jobs``), the CLI and the Python API all read it, so a
job is named the same way everywhere and both of its names resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# How a job's run is scoped: one run per UTC day or hour for the collectors, a range over
# the brand partitions for enrichment, or a plain run over every active brand.
Partitioning = Literal["daily", "hourly", "brands", "none"]


@dataclass(frozen=True)
class JobSpec:
    name: str
    alias: str
    cron: str
    group: str
    partitioning: Partitioning
    description: str


# Job names the code refers to (one spelling each).
ENRICHMENT_JOB = "enrichment_scheduler"

JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        ENRICHMENT_JOB,
        "cron-enrichment-scheduler",
        "0 2 * * *",
        "enrichment",
        "brands",
        "Enriches the six MIRROR sections for every active brand, cached under per-section TTLs.",
    ),
    JobSpec(
        "opportunity_detector",
        "cron-opportunity-detector",
        "0 * * * *",
        "opportunities",
        "none",
        "Turns weather, trends, holidays, competitor moves and local news into opportunities.",
    ),
    JobSpec(
        "competitive_monitoring",
        "cron-competitive-monitoring",
        "0 */6 * * *",
        "competitive",
        "none",
        "Snapshots competitor sites and feeds; detects changes, messaging shifts and gaps.",
    ),
    JobSpec(
        "analytics_collector",
        "cron-analytics-collector",
        "0 3 * * *",
        "analytics",
        "daily",
        "Collects post and account metrics from the platforms; derives engagement rates.",
    ),
    JobSpec(
        "learning_engine",
        "cron-learning-engine",
        "0 4 * * *",
        "learning",
        "none",
        "Learns best times, formats, topics, power words and hashtags with confidence.",
    ),
    JobSpec(
        "auto_publisher",
        "cron-auto-publisher",
        "*/5 * * * *",
        "publishing",
        "none",
        "Publishes due scheduled content exactly once and records every attempt.",
    ),
    JobSpec(
        "engagement_collector",
        "cron-engagement-collector",
        "0 * * * *",
        "engagement",
        "hourly",
        "Collects comments, mentions, messages and reviews with sentiment and priority.",
    ),
)

# The order `marba demo` runs them in: data first, then what learns from it, then
# what reads everything (enrichment), then publishing.
DEMO_ORDER = (
    "analytics_collector",
    "learning_engine",
    "engagement_collector",
    "competitive_monitoring",
    "opportunity_detector",
    ENRICHMENT_JOB,
    "auto_publisher",
)

_BY_NAME = {j.name: j for j in JOBS} | {j.alias: j for j in JOBS}


class UnknownJob(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        names = ", ".join(j.name for j in JOBS)
        return f"unknown job {self.args[0]!r}; known jobs: {names} (or their cron-* aliases)"


def resolve(name: str) -> JobSpec:
    """The job for either of its names (``learning_engine`` or ``cron-learning-engine``)."""
    key = name.strip()
    spec = _BY_NAME.get(key) or _BY_NAME.get(key.replace("-", "_"))
    if spec is None:
        raise UnknownJob(name)
    return spec


_CRON_FIELD = re.compile(r"^[\d*/,\-]+$")


def validate_cron(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"invalid cron expression {expr!r}: need five numeric fields")
    return expr


def job_for_group(group: str) -> JobSpec | None:
    """The job whose asset group is ``group``."""
    return next((j for j in JOBS if j.group == group), None)
