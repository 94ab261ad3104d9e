"""push_once: a webhook push that failed is tried again by the next call for the same key,
at most MAX_PUSH_ATTEMPTS pushes in all, a push that succeeded is never sent twice, and a
push whose worker stopped is released after the lease.
Real sandbox webhook with faults, real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from marba_dagster.sandbox.routes.webhook import ROUTE, WebhookState
from marba_dagster.services.notifications import (
    MAX_PUSH_ATTEMPTS,
    SENDING_LEASE,
    push_once,
    settled,
)
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow


def _row(engine, key):
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(s.notifications).where(s.notifications.c.dedup_key == key))
            .mappings()
            .one()
        )


def _texts(sandbox):
    return [r["payload"]["text"] for r in sandbox.state.module_state("webhook", WebhookState).all()]


def test_failed_push_is_retried_then_sent_once(engine, sandbox):
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    sandbox.faults.add(ROUTE, "status_sequence", statuses=[500, 503])
    results = [
        push_once(engine, url, dedup_key="k1", kind="test", text="post p1 failed") for _ in range(4)
    ]
    assert results == ["failed", "failed", "sent", "duplicate"]
    row = _row(engine, "k1")
    assert (row["status"], row["attempts"], row["error"]) == ("sent", 3, None)
    assert _texts(sandbox) == ["post p1 failed"]
    assert sandbox.request_count(ROUTE) == 3


def test_attempts_are_bounded_and_the_error_kept(engine, sandbox, caplog):
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    sandbox.faults.add(ROUTE, "rate_limit", status=500)  # every request
    results = [
        push_once(engine, url, dedup_key="k2", kind="test", text="job unhealthy")
        for _ in range(MAX_PUSH_ATTEMPTS + 2)
    ]
    assert results == ["failed"] * MAX_PUSH_ATTEMPTS + ["duplicate", "duplicate"]
    row = _row(engine, "k2")
    assert (
        row["status"] == "failed" and row["attempts"] == MAX_PUSH_ATTEMPTS and "500" in row["error"]
    )
    assert "secret" not in row["error"] and "B000" not in row["error"]  # the URL is the credential
    assert sandbox.request_count(ROUTE) == MAX_PUSH_ATTEMPTS
    assert "push failed" in caplog.text and "B000" not in caplog.text
    sandbox.faults.clear()
    assert push_once(engine, url, dedup_key="k2", kind="test", text="job unhealthy") == "duplicate"
    assert _texts(sandbox) == []


def test_sent_and_logged_alerts_are_not_repeated(engine, sandbox):
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    assert push_once(engine, url, dedup_key="k3", kind="test", text="once") == "sent"
    assert push_once(engine, url, dedup_key="k3", kind="test", text="once") == "duplicate"
    assert push_once(engine, None, dedup_key="k4", kind="test", text="no hook") == "logged"
    assert push_once(engine, url, dedup_key="k4", kind="test", text="no hook") == "duplicate"
    assert _texts(sandbox) == ["once"]
    assert (_row(engine, "k3")["attempts"], _row(engine, "k4")["attempts"]) == (1, 1)


def _claim_as_a_stopped_worker(engine, key, text, claimed_at, attempts=1):
    with engine.begin() as conn:
        conn.execute(
            sa.insert(s.notifications).values(
                dedup_key=key,
                kind="test",
                text=text,
                status="sending",
                attempts=attempts,
                claimed_at=claimed_at,
            )
        )


def test_a_push_whose_worker_stopped_is_released_after_the_lease(engine, sandbox):
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    now = utcnow()
    _claim_as_a_stopped_worker(
        engine, "k5", "stale claim", now - SENDING_LEASE - timedelta(minutes=1)
    )
    _claim_as_a_stopped_worker(engine, "k6", "fresh claim", now - timedelta(seconds=30))
    _claim_as_a_stopped_worker(
        engine,
        "k7",
        "last attempt",
        now - SENDING_LEASE - timedelta(minutes=1),
        attempts=MAX_PUSH_ATTEMPTS,
    )
    assert push_once(engine, url, dedup_key="k5", kind="test", text="stale claim") == "sent"
    assert push_once(engine, url, dedup_key="k6", kind="test", text="fresh claim") == "duplicate"
    assert push_once(engine, url, dedup_key="k7", kind="test", text="last attempt") == "duplicate"
    assert (_row(engine, "k5")["status"], _row(engine, "k5")["attempts"]) == ("sent", 2)
    assert _row(engine, "k6")["status"] == "sending"  # another worker may still be pushing it
    stopped = _row(engine, "k7")
    assert stopped["status"] == "failed" and "interrupted" in stopped["error"]
    assert _texts(sandbox) == ["stale claim"]
    assert not settled(engine, "k6") and not settled(engine, "k7") and settled(engine, "k5")


def test_two_runs_pushing_one_critical_opportunity_send_it_once(engine, db_url, sandbox):
    """Opportunity alerts claim their notification before sending: two detector runs that
    see the same critical opportunity at once push it to the webhook once."""
    import threading

    from marba_dagster.defs.resources import MarbaDatabase
    from marba_dagster.services.opportunities import push_critical

    now = utcnow()
    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b1", name="Cafe Uno", industry="cafe"))
        conn.execute(
            s.intelligence_opportunities.insert().values(
                id="o1",
                brand_id="b1",
                opportunity_type="competitor_activity",
                title="Rival cut prices",
                description="",
                urgency="critical",
                score=0.9,
                detected_at=now,
                expires_at=now + timedelta(hours=2),
                status="active",
                dedup_key="d1",
                updated_at=now,
            )
        )
    opp = {
        "id": "o1",
        "dedup_key": "d1",
        "title": "Rival cut prices",
        "description": "",
        "expires_at": now + timedelta(hours=2),
    }
    sandbox.faults.add(ROUTE, "latency", ms=300)  # both runs are mid-push together
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    start = threading.Barrier(2)
    results = []

    def run():
        start.wait()
        results.append(
            push_critical(MarbaDatabase(url=db_url).engine, url, "b1", "Cafe Uno", [opp], now)
        )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert _texts(sandbox) == [_texts(sandbox)[0]] and "Rival cut prices" in _texts(sandbox)[0]
    assert sorted(r["sent"] for r in results) == [0, 1]
    assert sorted(r["already_sent"] for r in results) == [0, 1]
    with engine.connect() as conn:
        notified = conn.execute(sa.select(s.intelligence_opportunities.c.notified_at)).scalar_one()
    assert notified is not None
