"""Job health by the rules of docs/architecture.md, over a window of recent runs (pure logic).

- healthy: success rate > 90% and the last run succeeded (and no recent failure);
- degraded: success rate 70–90% (both ends included), or a failure among the recent runs;
- unhealthy: success rate under 70%, or the last run failed;
- unknown: no finished run in the window.

The window is the finished runs of the last ``window_days`` days (7), at most the newest
``window_runs`` (20) of them. A ``partial`` run (some brands failed, the others kept their
results) counts as a success: one brand's bad data is not a job failure. Runs still going
are not counted. Average duration and its trend (newer half against older half) come from
the same window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Health = Literal["healthy", "degraded", "unhealthy", "unknown"]
Trend = Literal["rising", "falling", "stable", "n/a"]

# Execution statuses written by the monitoring sensors (``job_executions.status``).
SUCCESS_STATUSES = frozenset({"success", "partial"})
FAILURE_STATUSES = frozenset({"failure", "canceled"})
FINISHED_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES

HEALTHY_ABOVE = 0.90
UNHEALTHY_BELOW = 0.70
RECENT_RUNS = 3  # "recent failures": a failure among the newest three finished runs
TREND_CHANGE = 0.20  # a 20% change in mean duration between the halves is a trend
TREND_MIN_RUNS = 4


@dataclass(frozen=True)
class Execution:
    """One finished or running job execution (a ``job_executions`` row)."""

    status: str
    started_at: datetime | None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    run_id: str | None = None

    @property
    def when(self) -> datetime | None:
        return self.finished_at or self.started_at

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def seconds(self) -> float | None:
        if self.duration_seconds is not None:
            return float(self.duration_seconds)
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class HealthReport:
    health: Health
    runs: int
    successes: int
    failures: int
    success_rate: float | None
    last_status: str | None
    last_run_at: datetime | None
    avg_duration_seconds: float | None
    duration_trend: Trend
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {
            "health": self.health,
            "runs": self.runs,
            "successes": self.successes,
            "failures": self.failures,
            "success_rate": self.success_rate,
            "last_status": self.last_status,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "avg_duration_seconds": self.avg_duration_seconds,
            "duration_trend": self.duration_trend,
            "reasons": list(self.reasons),
        }


def window(
    executions: Iterable[Execution],
    now: datetime,
    *,
    window_runs: int = 20,
    window_days: float = 7,
) -> list[Execution]:
    """The finished runs of the last ``window_days``, newest first, at most ``window_runs``."""
    since = now - timedelta(days=window_days)
    finished = [e for e in executions if e.finished and e.when is not None and e.when >= since]
    finished.sort(key=lambda e: e.when, reverse=True)
    return finished[:window_runs]


def classify(success_rate: float, last_succeeded: bool, recent_failure: bool) -> Health:
    """The rule of docs/architecture.md on its own.

    Exactly 90% is degraded, exactly 70% is degraded.
    """
    if not last_succeeded or success_rate < UNHEALTHY_BELOW:
        return "unhealthy"
    if success_rate > HEALTHY_ABOVE and not recent_failure:
        return "healthy"
    return "degraded"


def duration_trend(durations_newest_first: list[float]) -> Trend:
    """Compare the mean duration of the newer half of the runs with the older half."""
    if len(durations_newest_first) < TREND_MIN_RUNS:
        return "n/a"
    half = len(durations_newest_first) // 2
    newer = durations_newest_first[:half]
    older = durations_newest_first[-half:]
    old_mean = sum(older) / len(older)
    new_mean = sum(newer) / len(newer)
    if old_mean <= 0:
        return "rising" if new_mean > 0 else "stable"
    change = (new_mean - old_mean) / old_mean
    if change > TREND_CHANGE:
        return "rising"
    if change < -TREND_CHANGE:
        return "falling"
    return "stable"


def assess(
    executions: Iterable[Execution],
    now: datetime,
    *,
    window_runs: int = 20,
    window_days: float = 7,
) -> HealthReport:
    """Health of one job from its executions (any order; running ones are ignored)."""
    runs = window(executions, now, window_runs=window_runs, window_days=window_days)
    if not runs:
        return HealthReport(
            "unknown", 0, 0, 0, None, None, None, None, "n/a", ("no finished run in the window",)
        )
    successes = sum(1 for e in runs if e.succeeded)
    failures = len(runs) - successes
    rate = successes / len(runs)
    last = runs[0]
    recent_failure = any(not e.succeeded for e in runs[:RECENT_RUNS])
    health = classify(rate, last.succeeded, recent_failure)
    reasons = []
    if not last.succeeded:
        reasons.append(f"last run {last.status}")
    if rate < UNHEALTHY_BELOW:
        reasons.append(f"success rate {rate:.0%} under {UNHEALTHY_BELOW:.0%}")
    elif rate <= HEALTHY_ABOVE:
        reasons.append(f"success rate {rate:.0%} not above {HEALTHY_ABOVE:.0%}")
    if recent_failure and last.succeeded:
        reasons.append(f"a failure among the last {RECENT_RUNS} runs")
    durations = [d for d in (e.seconds for e in runs) if d is not None]
    avg = sum(durations) / len(durations) if durations else None
    return HealthReport(
        health=health,
        runs=len(runs),
        successes=successes,
        failures=failures,
        success_rate=rate,
        last_status=last.status,
        last_run_at=last.when,
        avg_duration_seconds=avg,
        duration_trend=duration_trend(durations),
        reasons=tuple(reasons),
    )
