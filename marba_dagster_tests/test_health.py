"""Job health by the rules of docs/architecture.md: boundaries at exactly 90% and 70%, a failed
last run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marba_dagster.core import health as h

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def runs(statuses, *, step=timedelta(hours=1), durations=None):
    """Executions newest first: statuses[0] is the last run."""
    out = []
    for i, status in enumerate(statuses):
        start = NOW - step * (i + 1)
        secs = durations[i] if durations else 60.0
        out.append(h.Execution(status, start, start + timedelta(seconds=secs), secs, f"r{i}"))
    return out


def pattern(successes: int, total: int) -> list[str]:
    """``total`` runs, the failures placed oldest so the recent runs succeed."""
    return ["success"] * successes + ["failure"] * (total - successes)


@pytest.mark.parametrize(
    "successes,total,expected",
    [
        (20, 20, "healthy"),
        (19, 20, "healthy"),  # 95%
        (18, 20, "degraded"),  # exactly 90%: not above 90%
        (15, 20, "degraded"),
        (14, 20, "degraded"),  # exactly 70%: degraded, not unhealthy
        (13, 20, "unhealthy"),  # 65%
        (9, 10, "degraded"),  # exactly 90% over ten runs
        (7, 10, "degraded"),  # exactly 70% over ten runs
        (6, 10, "unhealthy"),
    ],
)
def test_success_rate_boundaries(successes, total, expected):
    report = h.assess(runs(pattern(successes, total)), NOW)
    assert report.health == expected
    assert report.success_rate == pytest.approx(successes / total)
    assert report.runs == total


def test_failed_last_run_is_unhealthy_even_at_high_rate():
    statuses = ["failure"] + ["success"] * 19  # 95% but the last run failed
    report = h.assess(runs(statuses), NOW)
    assert report.health == "unhealthy"
    assert "last run failure" in report.reasons


def test_recent_failure_degrades_a_high_rate():
    statuses = ["success", "failure"] + ["success"] * 18  # 95%, a failure two runs ago
    assert h.assess(runs(statuses), NOW).health == "degraded"


def test_partial_runs_count_as_success_and_running_runs_are_ignored():
    statuses = ["running", "partial"] + ["success"] * 10
    report = h.assess(runs(statuses), NOW)
    assert report.health == "healthy"
    assert report.runs == 11
    assert report.last_status == "partial"


def test_window_is_last_20_runs_within_7_days():
    # 30 runs, one per hour: only the newest 20 count; the 10 oldest failures fall out.
    report = h.assess(runs(["success"] * 20 + ["failure"] * 10), NOW)
    assert report.runs == 20 and report.health == "healthy"
    # Daily runs: only those of the last 7 days count.
    daily = runs(["success"] * 6 + ["failure"] * 5, step=timedelta(days=1))
    report = h.assess(daily, NOW)
    assert report.runs == 7 and report.failures == 1 and report.health == "degraded"


def test_no_runs_is_unknown():
    assert h.assess([], NOW).health == "unknown"
    old = runs(["success"], step=timedelta(days=30))
    assert h.assess(old, NOW).health == "unknown"


def test_average_duration_and_trend():
    rising = runs(["success"] * 6, durations=[200, 190, 210, 100, 95, 105])
    report = h.assess(rising, NOW)
    assert report.avg_duration_seconds == pytest.approx(150)
    assert report.duration_trend == "rising"
    falling = runs(["success"] * 6, durations=[50, 55, 45, 100, 95, 105])
    assert h.assess(falling, NOW).duration_trend == "falling"
    stable = runs(["success"] * 6, durations=[100, 101, 99, 100, 102, 98])
    assert h.assess(stable, NOW).duration_trend == "stable"
    assert h.assess(runs(["success"] * 3), NOW).duration_trend == "n/a"


def test_classify_directly():
    assert h.classify(0.91, True, False) == "healthy"
    assert h.classify(0.90, True, False) == "degraded"
    assert h.classify(0.70, True, False) == "degraded"
    assert h.classify(0.6999, True, False) == "unhealthy"
    assert h.classify(1.0, False, True) == "unhealthy"
