"""A step that failed on rate limits respects the platform: it waits for the Retry-After it
was given (``dg.RetryRequested``) or, when that is too long or missing, fails without
Dagster retries and leaves the work to the next scheduled run. Never the retry policy's
three runs within seconds against a limited endpoint."""

from __future__ import annotations

import dagster as dg
import pytest

from marba_dagster.defs.execution import RATE_LIMIT_MAX_STEP_WAIT, rate_limit_retry
from marba_dagster_tests import test_analytics_collector as analytics_tests

ANALYTICS_ROUTES = ("graph.page_posts", "graph.ig_media", "graph.node", "x.user_tweets", "x.user")
ACCOUNTS = len(analytics_tests.TOKENS)


def analytics_run(db_url, sandbox, day, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            analytics_tests.ASSETS,
            resources=analytics_tests._resources(db_url, sandbox),
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
        )
        events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event]
    return result, events


def requests_to(sandbox) -> list[dict]:
    return sorted(
        (r for route in ANALYTICS_ROUTES for r in sandbox.requests(route)),
        key=lambda r: r["started_at"],
    )


def test_the_decision_follows_the_retry_after():
    retry = rate_limit_retry([30.0, 120.0], "2 brand(s) failed")
    assert isinstance(retry, dg.RetryRequested) and retry.seconds_to_wait == 120.0
    too_long = rate_limit_retry([RATE_LIMIT_MAX_STEP_WAIT + 1], "2 brand(s) failed")
    assert isinstance(too_long, dg.Failure) and not too_long.allow_retries
    assert "next scheduled run" in too_long.description
    unknown = rate_limit_retry([None, 5.0], "x")
    assert isinstance(unknown, dg.Failure) and "no Retry-After" in unknown.description


@pytest.mark.parametrize("http_date", [False, True], ids=["seconds", "http-date"])
def test_long_retry_after_fails_without_dagster_retries(
    db_url, engine, sandbox, tmp_path, http_date
):
    day = analytics_tests._setup(engine, sandbox)
    for route in ANALYTICS_ROUTES:
        sandbox.faults.add(route, "rate_limit", retry_after=900, http_date=http_date)
    result, events = analytics_run(db_url, sandbox, day, tmp_path)
    assert not result.success
    # One request per account: the client does not wait 900 s, the step is not re-run.
    assert len(requests_to(sandbox)) == ACCOUNTS
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "next scheduled run" in str(failure.step_failure_data.user_failure_data.description)


@pytest.mark.slow
def test_retry_after_120_is_waited_for_before_the_step_runs_again(
    db_url, engine, sandbox, tmp_path
):
    day = analytics_tests._setup(engine, sandbox)
    # Every account's first request answers 429 Retry-After: 120 (over the client's own 60 s
    # wait, so the client gives up at once); the API answers again afterwards.
    sandbox.faults.add("*", "rate_limit", retry_after=120, times=ACCOUNTS)
    result, events = analytics_run(db_url, sandbox, day, tmp_path)
    assert result.success
    (retry,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retry.event_specific_data.seconds_to_wait == 120
    requests = requests_to(sandbox)
    limited = [r for r in requests if r["status"] == 429]
    answered = [r for r in requests if r["status"] == 200]
    assert len(limited) == ACCOUNTS and answered
    # The server's own clock: nothing reached the endpoint again before the Retry-After.
    assert min(r["started_at"] for r in answered) >= max(r["started_at"] for r in limited) + 119
