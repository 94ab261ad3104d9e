"""Circuit breaker decisions for a job (pure logic; the monitoring sensor acts on them).

States (``background_jobs.status``): ``active`` (closed), ``circuit_open`` and ``paused``
(an operator's pause, which the breaker leaves alone).

- closed → open: over the job's last ``window`` finished runs since the circuit was last
  reset, at least ``min_failures`` failed and the failure rate is above ``failure_rate``.
  The schedule is stopped.
- open, cool-down elapsed, no probe yet → probe: one run is launched.
- open with a probe: the probe succeeded → close (schedule restarted, window reset);
  the probe failed → reopen (cool-down starts again); still queued or running → wait.

A ``partial`` run (some brands failed, the others kept their results) is not a failure, and
neither is a run that waited on rate limits: only runs that failed as a whole count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["none", "open", "probe", "close", "reopen"]

FAILED = frozenset({"failure", "canceled"})
SUCCEEDED = frozenset({"success", "partial"})


@dataclass(frozen=True)
class CircuitConfig:
    window: int = 10
    min_failures: int = 3
    failure_rate: float = 0.5  # open when the rate is strictly above this
    cooldown: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("circuit window must be at least 1 run")
        if self.min_failures < 1:
            raise ValueError("circuit min_failures must be at least 1")
        if not 0 <= self.failure_rate < 1:
            raise ValueError("circuit failure_rate must be in [0, 1)")
        if self.cooldown.total_seconds() < 0:
            raise ValueError("circuit cool-down cannot be negative")


@dataclass(frozen=True)
class CircuitState:
    status: str  # active | paused | circuit_open
    opened_at: datetime | None = None
    probe_run_id: str | None = None
    reset_at: datetime | None = None


@dataclass(frozen=True)
class RunOutcome:
    """A finished run of the job: its status and when it started (newest first in lists)."""

    run_id: str
    status: str
    started_at: datetime | None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    failures: int = 0
    runs: int = 0


def failure_stats(
    runs: Sequence[RunOutcome], config: CircuitConfig, reset_at: datetime | None
) -> tuple[int, int]:
    """(failures, runs counted) over the newest ``config.window`` finished runs after reset."""
    counted = [
        r
        for r in runs
        if (r.status in FAILED or r.status in SUCCEEDED)
        and (reset_at is None or (r.started_at is not None and r.started_at >= reset_at))
    ][: config.window]
    return sum(1 for r in counted if r.status in FAILED), len(counted)


def should_open(failures: int, runs: int, config: CircuitConfig) -> bool:
    return runs > 0 and failures >= config.min_failures and failures / runs > config.failure_rate


def decide(
    state: CircuitState,
    recent_runs: Sequence[RunOutcome],
    now: datetime,
    config: CircuitConfig = CircuitConfig(),
    probe_status: str | None = None,
) -> Decision:
    """What the breaker does now.

    ``recent_runs``: the job's finished runs, newest first. ``probe_status``: the Dagster
    status of ``state.probe_run_id`` in lower case (``success``, ``failure``, ``canceled``,
    ``queued``, ``started``...), or ``None`` if that run is unknown.
    """
    if state.status == "paused":
        return Decision("none", "paused by an operator")
    if state.status == "circuit_open":
        if state.probe_run_id:
            if probe_status in SUCCEEDED:
                return Decision("close", f"probe run {state.probe_run_id} succeeded")
            if probe_status in FAILED or probe_status is None:
                what = probe_status or "lost"
                return Decision("reopen", f"probe run {state.probe_run_id} {what}")
            return Decision("none", f"probe run {state.probe_run_id} is {probe_status}")
        opened = state.opened_at or now
        if now - opened >= config.cooldown:
            return Decision("probe", "cool-down elapsed")
        return Decision("none", f"cooling down until {(opened + config.cooldown).isoformat()}")
    failures, runs = failure_stats(recent_runs, config, state.reset_at)
    if should_open(failures, runs, config):
        return Decision(
            "open",
            f"{failures} of the last {runs} runs failed (threshold: at least "
            f"{config.min_failures} and over {config.failure_rate:.0%})",
            failures,
            runs,
        )
    return Decision("none", f"{failures} of {runs} recent runs failed", failures, runs)
