"""The auto-publisher: due selection, exactly-once under concurrency and crashes, retries.

Real database (SQLite and PostgreSQL), real sandbox over loopback HTTP, real processes for
the concurrent runs and the crash. Posts are counted on the platform side (the sandbox's
publish log), not only in our tables.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.defs.publishing.assets import published_posts
from marba_dagster.defs.publishing.checks import no_unresolved_posts
from marba_dagster.defs.publishing.resources import PublisherSettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.sandbox.routes._published import published_log
from marba_dagster.store import schema
from marba_dagster.store.types import utcnow
from marba_dagster_tests.publish_worker import CRASH_EXIT_STATUS, build_run

REPO = Path(__file__).resolve().parents[1]
scheduled_content = schema.scheduled_content
TOKENS = {"facebook": "fb-token-123", "instagram": "ig-token-456", "x": "x-token-789"}
ACCOUNTS = {"facebook": "1001", "instagram": "1002", "x": "1003"}


@pytest.fixture
def world(engine, sandbox):
    """One active brand with a Facebook Page, an Instagram account and an X account."""
    data = platform_data(sandbox.state)
    with engine.begin() as conn:
        conn.execute(schema.brands.insert().values(id="b1", name="Cafe Uno", industry="cafe"))
        for p in ("facebook", "instagram", "x"):
            data.add_account(p, ACCOUNTS[p], TOKENS[p])
            conn.execute(
                schema.platform_accounts.insert().values(
                    id=f"acct-{p}",
                    brand_id="b1",
                    platform=p,
                    external_account_id=ACCOUNTS[p],
                    access_token=TOKENS[p],
                )
            )
    return {"engine": engine, "sandbox": sandbox, "log": published_log(sandbox.state)}


def add_post(
    engine,
    pid,
    *,
    platform="facebook",
    minutes=0,
    body=None,
    status="scheduled",
    media=None,
    fmt=None,
):
    media = (
        media
        if media is not None
        else (["https://cdn.example.com/a.jpg"] if platform == "instagram" else [])
    )
    fmt = fmt or ("carousel" if len(media) > 1 else "image" if media else "text")
    with engine.begin() as conn:
        conn.execute(
            scheduled_content.insert().values(
                id=pid,
                brand_id="b1",
                platform=platform,
                body=body or f"post {pid}",
                media_urls=media,
                format=fmt,
                scheduled_at=utcnow() + timedelta(minutes=minutes),
                status=status,
            )
        )


def status_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(scheduled_content.c.status, sa.func.count()).group_by(
                    scheduled_content.c.status
                )
            ).all()
        )


def post(engine, pid) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(scheduled_content).where(scheduled_content.c.id == pid))
            .mappings()
            .one()
        )


def events(engine, pid) -> list[str]:
    publish_events = schema.publish_events
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(publish_events.c.status)
                .where(publish_events.c.scheduled_content_id == pid)
                .order_by(publish_events.c.id)
            )
        ]


def run_once(world, db_url, now=None, graph_url=None, **kw):
    env = world["sandbox"].env()
    run, clients = build_run(
        db_url,
        graph_url or env["MARBA_GRAPH_API_URL"],
        env["MARBA_X_API_URL"],
        engine=world["engine"],
        gbp_url=env["MARBA_GBP_API_URL"],
        **kw,
    )
    try:
        return run.run(now=now)
    finally:
        for c in clients:
            c.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/graph/v21.0"


def test_due_window_catch_up_missed_cancelled_and_edits(world, db_url):
    engine, log = world["engine"], world["log"]
    add_post(engine, "gap-30", minutes=-30)  # fell due while the scheduler was down
    add_post(engine, "gap-10", platform="x", minutes=-10)
    add_post(engine, "gap-2h", platform="instagram", minutes=-120)
    add_post(engine, "ahead-3", minutes=3)  # inside the five-minute window
    add_post(engine, "ahead-20", minutes=20)  # not due yet
    add_post(engine, "too-late", minutes=-25 * 60)  # beyond the 24h maximum lateness
    add_post(engine, "cancelled", minutes=-5, body="never send this", status="cancelled")
    add_post(engine, "edited", minutes=-1, body="first draft")
    with engine.begin() as conn:  # the user edits the post before it goes out
        conn.execute(
            sa.update(scheduled_content)
            .where(scheduled_content.c.id == "edited")
            .values(body="final text")
        )

    summary = run_once(world, db_url)

    published = {
        p
        for p in ("gap-30", "gap-10", "gap-2h", "ahead-3", "edited")
        if post(engine, p)["status"] == "published"
    }
    assert published == {"gap-30", "gap-10", "gap-2h", "ahead-3", "edited"}
    assert summary.published == 5
    assert post(engine, "ahead-20")["status"] == "scheduled"
    late = post(engine, "too-late")
    assert late["status"] == "failed" and late["last_error"].startswith("missed:")
    assert "maximum lateness 24h" in late["last_error"]
    assert post(engine, "cancelled")["status"] == "cancelled"
    texts = log.texts()
    assert (
        texts["final text"] == 1 and "first draft" not in texts and "never send this" not in texts
    )
    assert all(n == 1 for n in texts.values()) and log.count() == 5
    row = post(engine, "gap-10")
    assert row["external_post_id"] and row["published_at"] and row["attempts"] == 1
    assert events(engine, "gap-30") == ["claimed", "published"]
    assert events(engine, "too-late") == ["missed"]
    # A second run publishes nothing again.
    again = run_once(world, db_url)
    assert again.published == 0 and log.count() == 5


def test_max_lateness_is_configurable(world, db_url):
    engine = world["engine"]
    add_post(engine, "two-hours-late", minutes=-120)
    run_once(world, db_url, max_lateness=timedelta(hours=1))
    row = post(engine, "two-hours-late")
    assert row["status"] == "failed" and "maximum lateness 1h" in row["last_error"]
    assert world["log"].count() == 0


def test_three_publisher_processes_publish_200_posts_exactly_once(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    for i in range(200):
        add_post(
            engine, f"p{i:03d}", platform=("facebook", "instagram", "x")[i % 3], minutes=-(i % 40)
        )
    env = sandbox.env()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marba_dagster_tests.publish_worker",
                db_url,
                env["MARBA_GRAPH_API_URL"],
                env["MARBA_X_API_URL"],
                "--concurrency",
                "4",
                "--wait-file",
                str(go),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    go.touch()  # all three start claiming at once
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    log = world["log"]
    assert log.count() == 200
    assert max(log.texts().values()) == 1
    assert sum(x["published"] for x in summaries) == 200
    statuses = status_counts(engine)
    with engine.connect() as conn:
        published_events = conn.execute(
            sa.select(sa.func.count()).where(schema.publish_events.c.status == "published")
        ).scalar_one()
    assert statuses == {"published": 200}
    assert published_events == 200


def test_killed_between_platform_answer_and_commit_becomes_unknown(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    add_post(engine, "crashy", minutes=-1, body="crash after send")
    senv = sandbox.env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "marba_dagster_tests.publish_worker",
            db_url,
            senv["MARBA_GRAPH_API_URL"],
            senv["MARBA_X_API_URL"],
            "--concurrency",
            "1",
            "--lease",
            "60",
            "--crash-after-platform-call",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == CRASH_EXIT_STATUS, proc.stderr[
        -2000:
    ]  # the process really died mid-way
    assert log.count() == 1  # the platform has the post...
    row = post(engine, "crashy")
    assert (
        row["status"] == "publishing" and row["external_post_id"] is None
    )  # ...we never recorded it

    # A run before the lease expires leaves it alone and sends nothing.
    run_once(world, db_url)
    assert post(engine, "crashy")["status"] == "publishing"
    # After the lease: unknown, alerted, never sent again.
    later = utcnow() + timedelta(seconds=61)
    summary = run_once(world, db_url, now=later)
    row = post(engine, "crashy")
    assert row["status"] == "unknown" and "lease expired" in row["last_error"]
    assert summary.expired_leases == 1
    run_once(world, db_url, now=later + timedelta(minutes=10))
    assert log.count() == 1 and sandbox.request_count("graph_publish.page_feed") == 1
    assert events(engine, "crashy") == ["claimed", "unknown"]
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.select(schema.notifications.c.kind))]
    assert kinds == ["publish_unknown"]


def send_started(engine, pid):
    return post(engine, pid)["send_started_at"]


@pytest.mark.parametrize("crash", ["--crash-after-platform-call", "--crash-at-send-record"])
def test_kill9_requeues_claims_never_sent_and_leaves_only_the_sent_one_unknown(
    world, db_url, crash
):
    """Four claims held when the process dies: the one that recorded "about to send" is
    unknown (whether or not the platform got it); the three never sent are scheduled again
    and published by the next run, once each."""
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    for i in range(8):  # k0 is the most overdue: claimed first, with k1-k3
        mark = "[crash] " if i == 0 else ""
        add_post(
            engine,
            f"k{i}",
            platform=("facebook", "x")[i % 2],
            minutes=-(10 - i),
            body=f"{mark}kill test {i}",
        )
    senv = sandbox.env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "marba_dagster_tests.publish_worker",
            db_url,
            senv["MARBA_GRAPH_API_URL"],
            senv["MARBA_X_API_URL"],
            "--concurrency",
            "4",
            "--lease",
            "60",
            crash,
            "--hold-others",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == CRASH_EXIT_STATUS, proc.stderr[-2000:]
    reached = 1 if crash == "--crash-after-platform-call" else 0
    assert log.count() == reached
    held = [f"k{i}" for i in range(4)]
    assert [post(engine, p)["status"] for p in held] == ["publishing"] * 4
    assert send_started(engine, "k0") is not None
    assert [send_started(engine, p) for p in held[1:]] == [None] * 3

    # Before the leases expire the held posts are left alone; the rest go out.
    first = run_once(world, db_url)
    assert first.published == 4 and first.requeued == 0
    assert [post(engine, p)["status"] for p in held] == ["publishing"] * 4

    later = utcnow() + timedelta(seconds=61)
    summary = run_once(world, db_url, now=later)
    assert summary.requeued == 3 and summary.unknown == 1 and summary.published == 3
    k0 = post(engine, "k0")
    assert k0["status"] == "unknown" and "after it started sending" in k0["last_error"]
    for p in held[1:]:
        row = post(engine, p)
        assert row["status"] == "published" and row["attempts"] == 2, row
        assert events(engine, p) == ["claimed", "requeued", "claimed", "published"]
    assert events(engine, "k0") == ["claimed", "unknown"]

    run_once(world, db_url, now=later + timedelta(minutes=10))
    texts = log.texts()
    assert log.count() == 7 + reached and max(texts.values()) == 1
    assert ("[crash] kill test 0" in texts) == bool(reached)
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.select(schema.notifications.c.kind))]
    assert kinds == ["publish_unknown"]


def test_an_expired_unsent_claim_with_no_attempts_left_fails(world, db_url):
    engine = world["engine"]
    add_post(engine, "spent", minutes=-1)
    with engine.begin() as conn:  # claimed for its third attempt by a run that then died
        conn.execute(
            sa.update(scheduled_content)
            .where(scheduled_content.c.id == "spent")
            .values(
                status="publishing",
                attempts=3,
                claim_token="dead",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    summary = run_once(world, db_url)
    row = post(engine, "spent")
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after 3 attempts")
    assert summary.failed == 1 and summary.requeued == 0 and world["log"].count() == 0


@pytest.mark.parametrize("fault", ["apply_then_hang", "apply_then_drop"])
def test_timeout_or_reset_after_sending_becomes_unknown_without_second_call(world, db_url, fault):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    add_post(engine, "ambiguous", platform="x", minutes=-1, body="did it go out?")
    params = {"seconds": 5} if fault == "apply_then_hang" else {}
    sandbox.faults.add("x_publish.tweets", fault, times=1, **params)
    summary = run_once(world, db_url, read_timeout=0.5)
    row = post(engine, "ambiguous")
    assert row["status"] == "unknown", row["last_error"]
    assert summary.unknown == 1
    assert "outcome unknown" in row["last_error"]
    for minutes in (5, 60):
        run_once(world, db_url, now=utcnow() + timedelta(minutes=minutes))
    assert sandbox.request_count("x_publish.tweets") == 1 and log.count("x") == 1
    assert post(engine, "ambiguous")["status"] == "unknown"


def test_connection_refused_is_retried_and_published_once(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    add_post(engine, "refused", minutes=-1)
    first = run_once(world, db_url, graph_url=closed_port_url())
    row = post(engine, "refused")
    assert first.retry_scheduled == 1
    assert (
        row["status"] == "scheduled" and row["attempts"] == 1 and row["next_attempt_at"] > utcnow()
    )
    assert "connect_failed" in row["last_error"]
    # Not due again until the backoff has passed.
    assert run_once(world, db_url).claimed == 0
    second = run_once(world, db_url, now=row["next_attempt_at"] + timedelta(seconds=1))
    assert second.published == 1
    row = post(engine, "refused")
    assert row["status"] == "published" and row["attempts"] == 2
    assert log.count() == 1 and sandbox.request_count("graph_publish.page_feed") == 1
    assert events(engine, "refused") == ["claimed", "retry_scheduled", "claimed", "published"]


def test_gives_up_after_three_attempts(world, db_url):
    engine = world["engine"]
    add_post(engine, "down", minutes=-1)
    now = utcnow()
    for _ in range(3):
        run_once(world, db_url, now=now, graph_url=closed_port_url())
        now = max(now, post(engine, "down")["next_attempt_at"] or now) + timedelta(seconds=1)
    row = post(engine, "down")
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["last_error"].startswith("gave up after 3 attempts")


def test_429_with_retry_after_defers_the_account_without_counting_an_attempt(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    add_post(engine, "throttled", platform="x", minutes=-2)
    add_post(engine, "also-x", platform="x", minutes=-1)
    sandbox.faults.add("x_publish.tweets", "rate_limit", times=1, retry_after=600)
    before = utcnow()
    summary = run_once(world, db_url, concurrency=1)
    assert summary.deferred == 1 and summary.published == 0 and summary.failed == 0
    assert sandbox.request_count("x_publish.tweets") == 1  # the account waited after the 429
    for pid in ("throttled", "also-x"):
        row = post(engine, pid)
        assert row["status"] == "scheduled" and row["attempts"] == 0, row
        assert row["next_attempt_at"] >= before + timedelta(seconds=600)
    assert "rate limited" in post(engine, "throttled")["last_error"]
    assert events(engine, "throttled") == ["claimed", "deferred"]
    assert log.count() == 0
    later = post(engine, "throttled")["next_attempt_at"] + timedelta(seconds=1)
    assert run_once(world, db_url, now=later).published == 2 and log.count("x") == 2


def second_brand(world, accounts=("facebook", "x")):
    """Brand b2 with its own Facebook Page (2001) and X user (2003)."""
    data = platform_data(world["sandbox"].state)
    with world["engine"].begin() as conn:
        conn.execute(schema.brands.insert().values(id="b2", name="Cafe Dos", industry="cafe"))
        for p in accounts:
            ext = {"facebook": "2001", "x": "2003", "instagram": "2002"}[p]
            data.add_account(p, ext, f"{p}-token-b2")
            conn.execute(
                schema.platform_accounts.insert().values(
                    id=f"acct-b2-{p}",
                    brand_id="b2",
                    platform=p,
                    external_account_id=ext,
                    access_token=f"{p}-token-b2",
                )
            )


def add_b2_post(engine, pid, platform, minutes=-1):
    with engine.begin() as conn:
        conn.execute(
            scheduled_content.insert().values(
                id=pid,
                brand_id="b2",
                platform=platform,
                body=f"b2 post {pid}",
                media_urls=[],
                format="text",
                scheduled_at=utcnow() + timedelta(minutes=minutes),
                status="scheduled",
            )
        )


def test_one_pages_429_defers_only_that_pages_posts(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    second_brand(world)
    for i in range(3):
        add_post(engine, f"a{i}", minutes=-5 + i)
        add_b2_post(engine, f"b{i}", "facebook", minutes=-5 + i)
    # Page 1001 is throttled (Graph code 32, page-level, no Retry-After); page 2001 is not.
    sandbox.faults.add(
        "graph_publish.page_feed",
        "status_sequence",
        statuses=[400, 400, 400],  # (a post already in flight when the first came back)
        body='{"error": {"message": "Page request limit reached", "code": 32}}',
        path_contains="/1001/",
    )
    summary = run_once(world, db_url, concurrency=4)
    assert summary.published == 3 and summary.failed == 0 and summary.deferred >= 1
    assert {p for p in ("b0", "b1", "b2") if post(engine, p)["status"] == "published"} == {
        "b0",
        "b1",
        "b2",
    }
    for pid in ("a0", "a1", "a2"):
        row = post(engine, pid)
        assert row["status"] == "scheduled" and row["attempts"] == 0, row
        assert row["next_attempt_at"] > utcnow()
    assert log.count() == 3


def test_account_limit_window_defers_the_rest_and_frees_after_the_window(world, db_url):
    from marba_dagster.core.publishing import Window

    engine, log = world["engine"], world["log"]
    second_brand(world)
    for i in range(4):
        add_post(engine, f"a{i}", minutes=-5 + i)
    add_b2_post(engine, "b0", "facebook")
    limits = {"facebook": (Window(2, 3600),)}
    summary = run_once(world, db_url, concurrency=4, account_limits=limits)
    assert summary.published == 3 and summary.deferred >= 1
    sent = [p for p in ("a0", "a1", "a2", "a3") if post(engine, p)["status"] == "published"]
    waiting = [post(engine, p) for p in ("a0", "a1", "a2", "a3") if p not in sent]
    assert len(sent) == 2 and post(engine, "b0")["status"] == "published"
    first_send = min(post(engine, p)["send_started_at"] for p in sent)
    for row in waiting:
        assert row["status"] == "scheduled" and row["attempts"] == 0
        assert row["next_attempt_at"] >= first_send + timedelta(seconds=3600) - timedelta(seconds=1)
        assert "facebook account limit of 2/1h posts reached" in row["last_error"]
    # Still inside the window: nothing more goes out.
    assert run_once(world, db_url, account_limits=limits).published == 0
    later = max(r["next_attempt_at"] for r in waiting) + timedelta(seconds=1)
    assert run_once(world, db_url, now=later, account_limits=limits).published == 2
    assert log.count() == 5 and max(log.texts().values()) == 1


def test_x_rate_limit_headers_defer_the_user_until_the_reset(world, db_url):
    from marba_dagster.sandbox.routes._published import publish_limits

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    second_brand(world, accounts=("x",))
    publish_limits(sandbox.state).x_per_user = 2  # X answers x-rate-limit-* headers
    for i in range(4):
        add_post(engine, f"x{i}", platform="x", minutes=-5 + i)
    add_b2_post(engine, "other-user", "x")
    summary = run_once(world, db_url, concurrency=2)
    assert summary.published == 3 and summary.failed == 0
    assert post(engine, "other-user")["status"] == "published"
    waiting = [
        post(engine, f"x{i}") for i in range(4) if post(engine, f"x{i}")["status"] != "published"
    ]
    assert len(waiting) == 2 and log.count("x") == 3
    for row in waiting:
        assert row["status"] == "scheduled" and row["attempts"] == 0
        assert row["next_attempt_at"] >= utcnow() + timedelta(seconds=800)  # the 15-min reset


def test_a_pages_business_use_case_usage_at_100_percent_defers_only_that_page(world, db_url):
    from marba_dagster.sandbox.routes._published import publish_limits

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    second_brand(world)
    publish_limits(sandbox.state).page_usage["1001"] = (100, 30)  # 30 min to regain access
    for i in range(3):
        add_post(engine, f"a{i}", minutes=-5 + i)
        add_b2_post(engine, f"b{i}", "facebook", minutes=-5 + i)
    summary = run_once(world, db_url, concurrency=1)
    assert post(engine, "a0")["status"] == "published"  # the answer that said 100%
    for pid in ("a1", "a2"):
        row = post(engine, pid)
        assert row["status"] == "scheduled" and row["attempts"] == 0
        assert row["next_attempt_at"] >= utcnow() + timedelta(minutes=29)
        assert "X-Business-Use-Case-Usage" in row["last_error"]
    assert all(post(engine, f"b{i}")["status"] == "published" for i in range(3))
    assert summary.published == 4 and log.count("facebook") == 4


def test_instagram_content_publishing_limit_defers_the_account(world, db_url):
    from marba_dagster.sandbox.routes._published import publish_limits

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    publish_limits(sandbox.state).ig_quota_total = 1
    add_post(engine, "ig1", platform="instagram", minutes=-2, body="first")
    add_post(engine, "ig2", platform="instagram", minutes=-1, body="second")
    summary = run_once(world, db_url, concurrency=1)
    assert summary.published == 1 and summary.deferred == 1
    row = post(engine, "ig2")
    assert row["status"] == "scheduled" and row["attempts"] == 0
    assert "content publishing limit reached: 1 of 1 posts in 24h" in row["last_error"]
    assert sandbox.request_count("graph_publish.ig_publishing_limit") == 1  # once per account
    assert log.count("instagram") == 1


def test_a_run_claims_until_nothing_is_due_within_its_bound(world, db_url):
    engine, log = world["engine"], world["log"]
    for i in range(7):
        add_post(engine, f"p{i}", platform="x", minutes=-i)
    assert run_once(world, db_url, concurrency=2, max_posts_per_run=5).claimed == 5
    assert run_once(world, db_url, concurrency=2).claimed == 2
    assert log.count() == 7


@pytest.mark.parametrize("platform", ["x", "facebook"])
def test_revoked_token_fails_with_reconnect_reason(world, db_url, platform):
    engine, sandbox = world["engine"], world["sandbox"]
    platform_data(sandbox.state).revoke(platform, ACCOUNTS[platform])
    add_post(engine, "revoked", platform=platform, minutes=-1)
    add_post(engine, "revoked-2", platform=platform, minutes=-2)
    run_once(world, db_url, concurrency=1)
    row = post(engine, "revoked")
    assert row["status"] == "failed" and "reconnect" in row["last_error"]
    assert TOKENS[platform] not in row["last_error"]
    with engine.connect() as conn:
        acct = (
            conn.execute(
                sa.select(schema.platform_accounts).where(
                    schema.platform_accounts.c.id == f"acct-{platform}"
                )
            )
            .mappings()
            .one()
        )
    assert acct["needs_reconnect"] is True and acct["reconnect_reason"]
    second = post(engine, "revoked-2")
    assert second["status"] == "failed" and "reconnect" in second["last_error"]
    assert world["log"].count() == 0


def test_duplicate_rejection_is_permanent(world, db_url):
    engine = world["engine"]
    add_post(engine, "d1", platform="x", minutes=-3, body="same words")
    add_post(engine, "d2", platform="x", minutes=-1, body="same words")
    run_once(world, db_url, concurrency=1)
    assert post(engine, "d1")["status"] == "published"
    row = post(engine, "d2")
    assert row["status"] == "failed" and "duplicate" in row["last_error"]


def test_instagram_container_then_publish_and_unsupported_posts(world, db_url):
    engine, sandbox = world["engine"], world["sandbox"]
    add_post(engine, "ig", platform="instagram", minutes=-1, body="new menu")
    add_post(engine, "ig-no-media", platform="instagram", minutes=-1, media=[])
    add_post(
        engine,
        "ig-carousel",
        platform="instagram",
        minutes=-1,
        body="three mugs",
        media=[
            "https://cdn.example.com/1.jpg",
            "https://cdn.example.com/2.jpg",
            "https://cdn.example.com/3.jpg",
        ],
    )
    run_once(world, db_url)
    assert post(engine, "ig-carousel")["status"] == "published"
    assert sandbox.request_count("graph_publish.ig_container_status") == 1  # polled until FINISHED
    assert sandbox.request_count("graph_publish.ig_media") == 5  # 1 image + 3 children + 1 carousel
    assert sandbox.request_count("graph_publish.ig_media_publish") == 2
    assert post(engine, "ig")["status"] == "published"
    bad = post(engine, "ig-no-media")
    assert bad["status"] == "failed" and "need an image" in bad["last_error"]


def test_posts_a_platform_would_refuse_fail_before_they_are_claimed(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    add_post(engine, "fb-100k", body="x" * 100_000)
    add_post(engine, "x-long", platform="x", body="y" * 281)
    add_post(engine, "ig-file", platform="instagram", media=["file:///etc/passwd"])
    add_post(engine, "ig-http", platform="instagram", media=["http://cdn.example.com/a.jpg"])
    add_post(engine, "ig-private", platform="instagram", media=["https://10.1.2.3/a.jpg"])
    add_post(engine, "ig-text", platform="instagram", media=[], fmt="text")
    add_post(engine, "fb-video", media=["https://cdn.example.com/a.mp4"], fmt="video")
    add_post(engine, "fine", platform="x", body="x" * 280)
    summary = run_once(world, db_url)
    assert summary.invalid == 7 and summary.failed == 7 and summary.published == 1
    assert summary.claimed == 1  # only the valid post was ever claimed
    expected = {
        "fb-100k": "invalid post (facebook.length): the text is 100,000 characters",
        "x-long": "invalid post (x.length): the text is 281 weighted characters, x allows 280",
        "ig-file": "invalid post (media.url): file:///etc/passwd: only https media URLs",
        "ig-http": "invalid post (media.url): http://cdn.example.com/a.jpg: only https",
        "ig-private": "invalid post (media.url): https://10.1.2.3/a.jpg: a private or reserved",
        "ig-text": "invalid post (instagram.media): Instagram posts need an image or a video",
        "fb-video": "invalid post (facebook.format): format 'video' cannot be published",
    }
    for pid, reason in expected.items():
        row = post(engine, pid)
        assert row["status"] == "failed" and row["last_error"].startswith(reason), row
        assert row["attempts"] == 0 and events(engine, pid) == ["failed"]
    assert post(engine, "fine")["status"] == "published"
    assert log.count() == 1 and sandbox.request_count("graph_publish.page_feed") == 0
    assert sandbox.request_count("graph_publish.ig_media") == 0


LOCATION = "accounts/101/locations/201"


def gbp_location(world, token="gbp-token-1"):
    from marba_dagster.sandbox.routes.gbp import gbp_data

    gbp_data(world["sandbox"].state).add_location(LOCATION, token)
    with world["engine"].begin() as conn:
        conn.execute(
            schema.platform_accounts.insert().values(
                id="acct-gbp",
                brand_id="b1",
                platform="google_business",
                external_account_id=LOCATION,
                access_token=token,
            )
        )


def set_options(engine, pid, options):
    with engine.begin() as conn:
        conn.execute(
            sa.update(scheduled_content)
            .where(scheduled_content.c.id == pid)
            .values(publish_options=options)
        )


def sent_bodies(sandbox, route):
    return [json.loads(r["body"]) for r in sandbox.requests(route)]


def test_google_business_standard_event_and_offer_posts(world, db_url):
    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    gbp_location(world)
    add_post(engine, "std", platform="google_business", minutes=-3, body="Fresh bread daily")
    set_options(
        engine,
        "std",
        {"call_to_action": {"action_type": "LEARN_MORE", "url": "https://uno.example/bread"}},
    )
    add_post(engine, "evt", platform="google_business", minutes=-2, body="Live jazz night")
    set_options(
        engine,
        "evt",
        {
            "topic_type": "EVENT",
            "event": {
                "title": "Jazz night",
                "start": "2026-12-24T19:00",
                "end": "2026-12-24T23:00",
            },
            "call_to_action": {"action_type": "BOOK", "url": "https://uno.example/book"},
        },
    )
    add_post(
        engine,
        "offer",
        platform="google_business",
        minutes=-1,
        body="",
        media=["https://cdn.example.com/cake.jpg"],
        fmt="image",
    )
    set_options(
        engine,
        "offer",
        {
            "topic_type": "OFFER",
            "event": {"title": "Cake week", "start": "2026-12-01", "end": "2026-12-07"},
            "offer": {
                "coupon_code": "CAKE10",
                "redeem_url": "https://uno.example/cake",
                "terms": "One per table",
            },
        },
    )
    summary = run_once(world, db_url, concurrency=1)
    assert summary.published == 3, summary.rows
    rows = {p: post(engine, p) for p in ("std", "evt", "offer")}
    assert all(r["status"] == "published" for r in rows.values())
    assert rows["std"]["external_post_id"].startswith(f"{LOCATION}/localPosts/")
    std, evt, offer = sent_bodies(sandbox, "gbp.local_posts")
    assert std == {
        "languageCode": "en",
        "topicType": "STANDARD",
        "summary": "Fresh bread daily",
        "callToAction": {"actionType": "LEARN_MORE", "url": "https://uno.example/bread"},
    }
    assert evt["topicType"] == "EVENT" and evt["event"] == {
        "title": "Jazz night",
        "schedule": {
            "startDate": {"year": 2026, "month": 12, "day": 24},
            "endDate": {"year": 2026, "month": 12, "day": 24},
            "startTime": {"hours": 19, "minutes": 0, "seconds": 0, "nanos": 0},
            "endTime": {"hours": 23, "minutes": 0, "seconds": 0, "nanos": 0},
        },
    }
    assert evt["callToAction"] == {"actionType": "BOOK", "url": "https://uno.example/book"}
    assert offer["topicType"] == "OFFER" and offer["summary"] == "post offer"
    assert offer["offer"] == {
        "couponCode": "CAKE10",
        "redeemOnlineUrl": "https://uno.example/cake",
        "termsConditions": "One per table",
    }
    assert offer["media"] == [
        {"mediaFormat": "PHOTO", "sourceUrl": "https://cdn.example.com/cake.jpg"}
    ]
    assert log.count("google_business") == 3
    assert run_once(world, db_url).published == 0 and log.count("google_business") == 3


def test_google_business_bad_options_fail_before_claiming(world, db_url):
    engine, sandbox = world["engine"], world["sandbox"]
    gbp_location(world)
    add_post(engine, "no-event", platform="google_business", minutes=-1, body="party")
    set_options(engine, "no-event", {"topic_type": "EVENT"})
    add_post(engine, "bad-cta", platform="google_business", minutes=-1, body="menu")
    set_options(
        engine, "bad-cta", {"call_to_action": {"action_type": "BOOK", "url": "http://x.example"}}
    )
    add_post(engine, "alert", platform="google_business", minutes=-1, body="closed")
    set_options(engine, "alert", {"topic_type": "ALERT"})
    add_post(engine, "long", platform="google_business", minutes=-1, body="z" * 1501)
    run_once(world, db_url)
    reasons = {p: post(engine, p)["last_error"] for p in ("no-event", "bad-cta", "alert", "long")}
    assert reasons["no-event"].startswith("invalid post (google_business.event): an EVENT post")
    assert reasons["bad-cta"].startswith("invalid post (google_business.call_to_action): url ")
    assert reasons["alert"].startswith("invalid post (google_business.topic_type)")
    assert reasons["long"].startswith("invalid post (google_business.length): the text is 1,501")
    assert sandbox.request_count("gbp.local_posts") == 0


@pytest.mark.parametrize(
    "fault, status",
    [
        ("rate_limit", "scheduled"),
        ("apply_then_drop", "unknown"),
        ("malformed_body", "unknown"),
        ("revoked", "failed"),
        ("denied", "failed"),
    ],
)
def test_google_business_429_unknown_and_permission(world, db_url, fault, status):
    from marba_dagster.sandbox.routes.gbp import gbp_data

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    gbp_location(world)
    add_post(engine, "g", platform="google_business", minutes=-1, body="Open late today")
    if fault == "denied":
        gbp_data(sandbox.state).deny(LOCATION)
    elif fault == "revoked":
        gbp_data(sandbox.state).add_location(LOCATION, "a-newer-token")  # ours is stale
    else:
        params = {"retry_after": 120} if fault == "rate_limit" else {}
        sandbox.faults.add("gbp.local_posts", fault, times=1, **params)
    summary = run_once(world, db_url, read_timeout=2)
    row = post(engine, "g")
    assert row["status"] == status, row["last_error"]
    if fault == "rate_limit":
        assert summary.deferred == 1 and row["attempts"] == 0
        assert row["next_attempt_at"] >= utcnow() + timedelta(seconds=100)
        assert log.count() == 0
    elif fault in ("apply_then_drop", "malformed_body"):
        assert "outcome unknown" in row["last_error"]
        run_once(world, db_url, now=utcnow() + timedelta(minutes=10))
        assert sandbox.request_count("gbp.local_posts") == 1  # never sent twice
    elif fault == "revoked":
        assert "access token rejected, reconnect" in row["last_error"]
        with engine.connect() as conn:
            acct = conn.execute(
                sa.select(schema.platform_accounts.c.needs_reconnect).where(
                    schema.platform_accounts.c.id == "acct-gbp"
                )
            ).scalar_one()
        assert acct is True and log.count() == 0
    else:
        assert "permission denied, reconnect" in row["last_error"]
        assert "gbp-token-1" not in row["last_error"]


def media_hosts(sandbox):
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    return frozenset({("127.0.0.1", port)})


def sent_tweets(sandbox):
    return sent_bodies(sandbox, "x_publish.tweets")


def test_x_posts_upload_their_media_in_chunks_then_attach_it(world, db_url):
    from marba_dagster.sandbox.routes.x_media import x_media

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    base = sandbox.base_url
    x_media(sandbox.state).processing_polls = 1  # one "in_progress" before "succeeded"
    add_post(
        engine,
        "pics",
        platform="x",
        minutes=-2,
        body="two mugs",
        media=[f"{base}/media/mugs/1.jpg", f"{base}/media/mugs/2.png"],
        fmt="image",
    )
    add_post(
        engine,
        "clip",
        platform="x",
        minutes=-1,
        body="",
        media=[f"{base}/media/clip.mp4"],
        fmt="video",
    )
    add_post(
        engine,
        "pic-only",
        platform="x",
        minutes=0,
        body=" ",
        media=[f"{base}/media/3.gif"],
        fmt="image",
    )
    summary = run_once(world, db_url, concurrency=1, allowed_media_hosts=media_hosts(sandbox))
    assert summary.published == 3, summary.rows
    uploads = sandbox.requests("x_media.upload")
    commands = [
        r["body"].split('name="command"\r\n\r\n', 1)[1].split("\r\n", 1)[0] for r in uploads
    ]
    # 2.5 MB of video in 1 MiB chunks: three APPENDs; each image one.
    assert commands == (
        ["INIT", "APPEND", "FINALIZE"] * 2
        + ["INIT"]
        + ["APPEND"] * 3
        + ["FINALIZE"]
        + ["INIT", "APPEND", "FINALIZE"]
    )
    # Video and GIF are processed: in_progress, then succeeded, each.
    assert sandbox.request_count("x_media.status") == 4
    pics, clip, only = sent_tweets(sandbox)
    assert "text" not in only and len(only["media"]["media_ids"]) == 1
    assert pics["text"] == "two mugs" and len(pics["media"]["media_ids"]) == 2
    assert clip["text"] == "post clip" and len(clip["media"]["media_ids"]) == 1
    assert [len(i.media) for i in log.items("x")] == [2, 1, 1]
    row = post(engine, "pics")
    assert row["status"] == "published" and row["send_started_at"] is not None


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("processing_failed", "failed", "media: X could not process media"),
        ("missing", "failed", "could not be fetched"),
        ("not_media", "failed", "which X does not take"),
        ("upload_500", "scheduled", "media INIT: server error"),
        ("upload_429", "scheduled", "media INIT: rate limited"),
        ("private", "failed", "invalid post (media.url)"),
    ],
)
def test_an_x_media_failure_fails_or_retries_the_post_never_text_alone(
    world, db_url, case, status, reason
):
    from marba_dagster.sandbox.routes.x_media import x_media

    engine, sandbox, log = world["engine"], world["sandbox"], world["log"]
    base = sandbox.base_url
    url = {
        "processing_failed": f"{base}/media/clip.mp4",
        "missing": f"{base}/media/missing.jpg",
        "not_media": f"{base}/media/notes.txt",
        "upload_500": f"{base}/media/a.jpg",
        "upload_429": f"{base}/media/a.jpg",
        "private": "https://10.0.0.8/a.jpg",
    }[case]
    if case == "processing_failed":
        x_media(sandbox.state).fail_processing = {"video/mp4"}
    if case == "upload_500":
        sandbox.faults.add("x_media.upload", "status_sequence", statuses=[500])
    if case == "upload_429":
        sandbox.faults.add("x_media.upload", "rate_limit", retry_after=300)
    fmt = "video" if url.endswith(".mp4") else "image"
    add_post(engine, "m", platform="x", minutes=-1, body="with media", media=[url], fmt=fmt)
    run_once(world, db_url, allowed_media_hosts=media_hosts(sandbox))
    row = post(engine, "m")
    assert row["status"] == status and reason in row["last_error"], row["last_error"]
    assert row["send_started_at"] is None  # the post itself was never about to be sent
    assert sandbox.request_count("x_publish.tweets") == 0 and log.count() == 0


def test_container_failure_is_retried_but_publish_step_500_is_unknown(world, db_url):
    engine, sandbox = world["engine"], world["sandbox"]
    add_post(engine, "ig", platform="instagram", minutes=-1)
    sandbox.faults.add("graph_publish.ig_media", "status_sequence", statuses=[500])
    run_once(world, db_url)
    assert post(engine, "ig")["status"] == "scheduled"  # nothing was published: safe to retry
    sandbox.faults.add("graph_publish.ig_media_publish", "status_sequence", statuses=[500])
    run_once(world, db_url, now=post(engine, "ig")["next_attempt_at"] + timedelta(seconds=1))
    assert post(engine, "ig")["status"] == "unknown"


def test_asset_publishes_through_dagster(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    add_post(engine, "via-dagster", platform="x", minutes=-2)
    add_post(engine, "unclear", platform="facebook", minutes=-2)
    sandbox.faults.add("graph_publish.page_feed", "apply_then_drop", times=1)
    env = sandbox.env()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [published_posts, no_unresolved_posts],
            instance=instance,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"]),
                "gbp_api": ApiEndpoint(base_url=env["MARBA_GBP_API_URL"]),
                "notifier": Notifier(),
                "publisher_settings": PublisherSettings(),
            },
        )
    assert result.success
    meta = result.asset_materializations_for_node("publishing__published_posts")[0].metadata
    assert meta["published"].value == 1 and meta["unknown"].value == 1
    assert post(engine, "via-dagster")["status"] == "published"
    assert post(engine, "unclear")["status"] == "unknown"
    assert world["log"].count("x") == 1
    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = found["no_unresolved_posts"]
    assert check.passed is False and check.metadata["unknown_posts"].value == 1
    brands = found["all_brands_processed"]
    assert brands.passed is False and brands.severity == dg.AssetCheckSeverity.WARN
    assert brands.description.startswith(
        "1 of 1 brand(s) failed: b1 (1 post(s) not published: post unclear (facebook) unknown: "
    )


def publish_through_dagster(
    db_url, sandbox, tmp_path, settings=None, raise_on_error=True, tags=None
):
    env = sandbox.env()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        return dg.materialize(
            [published_posts, no_unresolved_posts],
            instance=instance,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"]),
                "gbp_api": ApiEndpoint(base_url=env["MARBA_GBP_API_URL"]),
                "notifier": Notifier(),
                "publisher_settings": settings or PublisherSettings(),
            },
            raise_on_error=raise_on_error,
            tags=tags,
        )


def test_failed_missed_and_unknown_posts_are_named_by_a_warn_check(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    with engine.begin() as conn:  # a second brand whose post goes out fine
        conn.execute(schema.brands.insert().values(id="b2", name="Cafe Dos", industry="cafe"))
        conn.execute(
            schema.platform_accounts.insert().values(
                id="acct-b2-x",
                brand_id="b2",
                platform="x",
                external_account_id="2003",
                access_token="x-token-b2",
            )
        )
    platform_data(sandbox.state).add_account("x", "2003", "x-token-b2")
    add_post(engine, "fine", platform="x", minutes=-1)
    add_post(engine, "no-media", platform="instagram", minutes=-1, media=[])
    add_post(engine, "too-late", platform="x", minutes=-26 * 60)
    add_post(engine, "unclear", platform="facebook", minutes=-2)
    with engine.begin() as conn:
        conn.execute(
            scheduled_content.insert().values(
                id="b2-post",
                brand_id="b2",
                platform="x",
                body="from b2",
                media_urls=[],
                format="text",
                scheduled_at=utcnow() - timedelta(minutes=1),
                status="scheduled",
            )
        )
    sandbox.faults.add("graph_publish.page_feed", "apply_then_drop", times=1)
    result = publish_through_dagster(db_url, sandbox, tmp_path)
    assert result.success  # the posts that could go out went out; the run says what did not
    assert (
        post(engine, "fine")["status"] == "published"
        and post(engine, "b2-post")["status"] == "published"
    )
    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    brands = found["all_brands_processed"]
    assert brands.passed is False and brands.severity == dg.AssetCheckSeverity.WARN
    text = brands.description
    assert text.startswith("1 of 2 brand(s) failed: b1 (3 post(s) not published: ")
    assert "post no-media (instagram) failed: " in text and "need an image" in text
    assert "post too-late (x) missed: due at " in text
    assert "post unclear (facebook) unknown: feed: outcome unknown" in text
    assert "b2" not in text.replace("b1", "")
    assert all(tok not in text for tok in TOKENS.values())
    meta = result.asset_materializations_for_node("publishing__published_posts")[0].metadata
    assert meta["brands_failed"].value == 1 and meta["brands_processed"].value == 1
    with engine.connect() as conn:
        logged = conn.execute(
            sa.select(
                schema.job_logs.c.brand_id, schema.job_logs.c.level, schema.job_logs.c.message
            )
        ).all()
    assert [(b, lvl) for b, lvl, _ in logged] == [("b1", "error")] and "no-media" in logged[0][2]


def test_a_clean_publisher_run_passes_its_check(world, db_url, tmp_path):
    add_post(world["engine"], "fine", platform="x", minutes=-1)
    found = {
        e.check_name: e
        for e in publish_through_dagster(
            db_url, world["sandbox"], tmp_path
        ).get_asset_check_evaluations()
    }
    assert found["all_brands_processed"].passed is True
    assert found["all_brands_processed"].description == "all 1 brand(s) processed"


@pytest.mark.parametrize(
    "settings, env, expected",
    [
        (
            None,
            "bogus",
            "invalid setting MARBA_PUBLISH_MAX_LATENESS='bogus': invalid maximum lateness 'bogus'",
        ),
        (
            None,
            "-3h",
            "invalid setting MARBA_PUBLISH_MAX_LATENESS='-3h': maximum lateness must be positive",
        ),
        (
            PublisherSettings(concurrency=0),
            None,
            "invalid setting publisher_settings.concurrency=0: must be >= 1",
        ),
        (
            PublisherSettings(account_limits="x=lots"),
            None,
            "invalid setting MARBA_PUBLISH_ACCOUNT_LIMITS='x=lots': 'lots' for x: expected",
        ),
        (
            PublisherSettings(app_limits="tiktok=5/1m"),
            None,
            "invalid setting MARBA_PUBLISH_APP_LIMITS='tiktok=5/1m': 'tiktok=5/1m': expected",
        ),
    ],
)
def test_invalid_publisher_setting_fails_at_once_without_retries(
    world, db_url, tmp_path, monkeypatch, settings, env, expected
):
    from marba_dagster.defs.publishing.resources import publisher_resources

    add_post(world["engine"], "waiting", platform="x", minutes=-1)
    if env is not None:
        monkeypatch.setenv("MARBA_PUBLISH_MAX_LATENESS", env)
        settings = publisher_resources().resources["publisher_settings"]
    result = publish_through_dagster(
        db_url, world["sandbox"], tmp_path, settings, raise_on_error=False
    )
    assert not result.success
    kinds = [
        e.event_type_value for e in result.all_events if e.step_key == "publishing__published_posts"
    ]
    assert (
        kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds
    )  # the asset's RetryPolicy is not used
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith(expected)
    assert post(world["engine"], "waiting")["status"] == "scheduled"  # nothing was claimed


def add_x_brand(world, brand_id: str) -> None:
    """Another active brand with its own X account (a post goes out on its brand's account)."""
    external, token = f"x-{brand_id}", f"x-token-{brand_id}"
    platform_data(world["sandbox"].state).add_account("x", external, token)
    with world["engine"].begin() as conn:
        conn.execute(schema.brands.insert().values(id=brand_id, name=brand_id, industry="cafe"))
        conn.execute(
            schema.platform_accounts.insert().values(
                id=f"acct-{brand_id}-x",
                brand_id=brand_id,
                platform="x",
                external_account_id=external,
                access_token=token,
            )
        )


def add_brand_post(engine, pid, brand_id, minutes=-1):
    with engine.begin() as conn:
        conn.execute(
            scheduled_content.insert().values(
                id=pid,
                brand_id=brand_id,
                platform="x",
                body=f"post {pid}",
                media_urls=[],
                format="text",
                scheduled_at=utcnow() + timedelta(minutes=minutes),
                status="scheduled",
            )
        )


def test_the_default_width_publishes_posts_of_many_accounts_exactly_once(world, db_url, tmp_path):
    """The default publisher (16 posts at once; SQLite and PostgreSQL) with 40 accounts,
    two due posts each and a platform answering in 50-150 ms: every post once."""
    engine, sandbox = world["engine"], world["sandbox"]
    assert PublisherSettings().config().concurrency == 16
    for n in range(40):
        add_x_brand(world, f"w{n:02d}")
        for k in range(2):
            add_brand_post(engine, f"w{n:02d}-{k}", f"w{n:02d}", minutes=-k)
    sandbox.faults.add("x_publish.tweets", "latency", ms=50, ms_max=150)
    result = publish_through_dagster(db_url, sandbox, tmp_path)
    assert result.success
    meta = result.asset_materializations_for_node("publishing__published_posts")[0].metadata
    assert meta["published"].value == 80
    log = world["log"]
    assert log.count("x") == 80 and max(log.texts().values()) == 1
    assert status_counts(engine) == {"published": 80}


def test_the_publishing_width_is_set_by_its_variable(monkeypatch):
    from marba_dagster.defs.publishing.resources import publisher_resources

    monkeypatch.setenv("MARBA_PUBLISH_CONCURRENCY", "24")
    bound = publisher_resources().resources["publisher_settings"].process_config_and_initialize()
    assert bound.config().concurrency == 24
    assert PublisherSettings(concurrency_env=" 3 ").config().concurrency == 3


def test_an_unusable_publishing_width_names_the_variable(world, db_url, tmp_path, monkeypatch):
    from marba_dagster.defs.publishing.resources import publisher_resources

    add_post(world["engine"], "waiting", platform="x", minutes=-1)
    monkeypatch.setenv("MARBA_PUBLISH_CONCURRENCY", "0")
    settings = publisher_resources().resources["publisher_settings"]
    result = publish_through_dagster(
        db_url, world["sandbox"], tmp_path, settings, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith(
        "invalid setting MARBA_PUBLISH_CONCURRENCY='0': must be a whole number >= 1"
    )
    assert post(world["engine"], "waiting")["status"] == "scheduled"


def test_a_shard_run_publishes_only_its_brands_posts(world, db_url, tmp_path):
    """A publisher run of one brand shard (the ``marba/brands_from`` / ``marba/brands_before``
    range a sharded tick gives it) claims only the due posts of brands in its range; the
    other shard's run takes the rest, and nothing goes out twice."""
    engine, sandbox = world["engine"], world["sandbox"]
    for b in ("b2", "b3"):
        add_x_brand(world, b)
    for b in ("b1", "b2", "b3"):
        for n in range(2):
            add_brand_post(engine, f"{b}-{n}", b, minutes=-n)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = publish_through_dagster(
        db_url, sandbox, tmp_path / "one", tags={"marba/brands_before": "b2"}
    )
    assert first.success
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(sa.select(scheduled_content.c.id, scheduled_content.c.status)).all()
        )
    assert {p for p, s in by_status.items() if s == "published"} == {"b1-0", "b1-1"}
    assert {p for p, s in by_status.items() if s == "scheduled"} == {"b2-0", "b2-1", "b3-0", "b3-1"}
    second = publish_through_dagster(
        db_url, sandbox, tmp_path / "two", tags={"marba/brands_from": "b2"}
    )
    assert second.success
    meta = second.asset_materializations_for_node("publishing__published_posts")[0].metadata
    assert meta["published"].value == 4
    assert world["log"].count("x") == 6 and max(world["log"].texts().values()) == 1
