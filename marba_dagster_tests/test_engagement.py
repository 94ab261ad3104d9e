"""The engagement collector: comments, mentions, DMs and reviews into the inbox, once each,
with sentiment and priority; urgent items pushed to the webhook once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.connectors.engagement import GbpReviews, GraphEngagement, XEngagement
from marba_dagster.connectors.http import ApiClient
from marba_dagster.defs.engagement.assets import engagement_inbox
from marba_dagster.defs.engagement.checks import inbox_items_valid
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.sandbox.routes.engagement import engagement_data
from marba_dagster.sandbox.routes.gbp import gbp_data
from marba_dagster.sandbox.routes.webhook import ROUTE as WEBHOOK_ROUTE
from marba_dagster.sandbox.routes.webhook import WebhookState
from marba_dagster.services.engagement import Collectors, collect_brand, store_rows
from marba_dagster.store import schema as s

HOUR = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # partition 2026-11-02-12:00 covers 12:00-13:00
PARTITION = "2026-11-02-12:00"
LOCATION = "accounts/77/locations/88"
ei = s.engagement_inbox


class Webhook:
    """A Slack-compatible webhook receiver on loopback that records what it is sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def world(engine, sandbox):
    data, eng, gbp = (
        platform_data(sandbox.state),
        engagement_data(sandbox.state),
        gbp_data(sandbox.state),
    )
    eng.generate = False
    data.add_account("facebook", "501", "fb-tok-aaaa")
    data.add_account("instagram", "502", "ig-tok-bbbb")
    data.add_account("x", "503", "x-tok-cccc")
    gbp.add_location(LOCATION, "gbp-tok-dddd")
    posted = HOUR - timedelta(days=1)
    data.add_post("facebook", "501", "501_9001", posted, body="Spring menu")
    data.add_post("instagram", "502", "1790001", posted, body="New mugs")
    t = HOUR - timedelta(minutes=30)
    eng.add_comment("facebook", "501_9001", "501_9001_1", "Looks delicious 😍", t, author="Ana")
    eng.add_comment(
        "facebook",
        "501_9001",
        "501_9001_2",
        "My order arrived broken and nobody answers. I want a refund! 😡",
        t,
        author="Ben",
    )
    eng.add_comment(
        "instagram", "1790001", "1790001_1", "What time do you open on Sunday?", t, author="cleo"
    )
    eng.add_user("9001", "bigvoice", 250_000)
    eng.add_user("9002", "smallfan", 40)
    eng.add_mention(
        "503", "1860000000000000001", "@cafe worst service ever, cancel my order", t, "9001"
    )
    eng.add_mention("503", "1860000000000000002", "@cafe lovely latte today ☕", t, "9002")
    eng.add_mention(
        "503",
        "1860000000000000003",
        "@cafe see you next hour",
        HOUR + timedelta(minutes=65),
        "9002",
    )
    eng.add_dm("503", "dm-1", "Hi, do you have gluten free options?", t, "9002")
    eng.add_dm("503", "dm-2", "Thanks for the help!", t, "503")  # sent by the brand itself
    gbp.add_review(LOCATION, "r1", 1, "Food poisoning after dinner. Disgusting.", t, reviewer="Dee")
    gbp.add_review(LOCATION, "r2", 5, "Wonderful staff", t, reviewer="Eve")
    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b1", name="Cafe", industry="cafe"))
        for p, ext, tok in (
            ("facebook", "501", "fb-tok-aaaa"),
            ("instagram", "502", "ig-tok-bbbb"),
            ("x", "503", "x-tok-cccc"),
            ("google_business", LOCATION, "gbp-tok-dddd"),
        ):
            conn.execute(
                s.platform_accounts.insert().values(
                    id=f"acct-{p}",
                    brand_id="b1",
                    platform=p,
                    external_account_id=ext,
                    access_token=tok,
                )
            )
        for i, (p, ext) in enumerate((("facebook", "501_9001"), ("instagram", "1790001"))):
            conn.execute(
                s.content_posts.insert().values(
                    id=f"cp{i}",
                    brand_id="b1",
                    platform=p,
                    external_post_id=ext,
                    published_at=posted,
                )
            )
    return {"engine": engine, "sandbox": sandbox, "eng": eng}


def materialize(db_url, sandbox, webhook_url, tmp_path, *, with_checks=False):
    env = sandbox.env()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        return dg.materialize(
            [engagement_inbox, *([inbox_items_valid] if with_checks else [])],
            instance=instance,
            partition_key=PARTITION,
            raise_on_error=False,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"]),
                "gbp_api": ApiEndpoint(base_url=env["MARBA_GBP_API_URL"]),
                "notifier": Notifier(webhook_url=webhook_url),
            },
        )


def inbox(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["external_id"]: dict(r) for r in conn.execute(sa.select(ei)).mappings()}


def test_collects_every_source_with_sentiment_priority_and_no_duplicates(
    world, db_url, webhook, tmp_path
):
    engine, sandbox = world["engine"], world["sandbox"]
    assert materialize(db_url, sandbox, webhook.url, tmp_path).success
    rows = inbox(engine)
    assert set(rows) == {
        "501_9001_1",
        "501_9001_2",
        "1790001_1",
        "1860000000000000001",
        "1860000000000000002",
        "dm:dm-1",
        f"{LOCATION}/reviews/r1",
        f"{LOCATION}/reviews/r2",
    }  # the post after the hour and the brand's own DM are not collected
    assert {r["item_type"] for r in rows.values()} == {
        "comment",
        "mention",
        "direct_message",
        "review",
    }
    angry = rows["1860000000000000001"]
    assert angry["author"] == "bigvoice" and angry["author_followers"] == 250_000
    assert angry["sentiment_label"] == "negative" and angry["priority"] == "urgent"
    assert rows["501_9001_2"]["priority"] == "urgent"
    review = rows[f"{LOCATION}/reviews/r1"]
    assert (
        review["rating"] == 1
        and review["priority"] == "urgent"
        and review["platform"] == "google_business"
    )
    assert (
        rows["501_9001_1"]["sentiment_label"] == "positive"
        and rows["501_9001_1"]["priority"] == "low"
    )
    assert rows["1790001_1"]["priority"] in ("normal", "high")
    assert all(-1 <= r["sentiment_score"] <= 1 for r in rows.values())
    urgent = {k for k, r in rows.items() if r["priority"] == "urgent"}
    assert len(webhook.received) == len(urgent) == 3
    assert all("text" in m for m in webhook.received)
    assert not any("tok-" in m["text"] for m in webhook.received)

    # A person works on an item; a new comment arrives; the next run adds only that one.
    with engine.begin() as conn:
        conn.execute(sa.update(ei).where(ei.c.external_id == "501_9001_2").values(status="replied"))
    world["eng"].add_comment(
        "facebook",
        "501_9001",
        "501_9001_3",
        "Where is my refund?! This is a scam 😡",
        HOUR - timedelta(minutes=5),
        author="Ben",
    )
    assert materialize(db_url, sandbox, webhook.url, tmp_path).success
    again = inbox(engine)
    assert len(again) == len(rows) + 1
    assert again["501_9001_2"]["status"] == "replied"  # the app's status is kept
    assert again["501_9001_3"]["priority"] == "urgent"
    assert len(webhook.received) == 4  # only the new urgent item was pushed
    with engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count())
            .select_from(s.notifications)
            .where(s.notifications.c.kind == "engagement_urgent")
        ).scalar_one()
    assert n == 4


def test_urgent_item_whose_push_failed_is_pushed_by_the_next_run(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    url = sandbox.url("/webhook/slack/T000/B000/secret")
    sandbox.faults.add(WEBHOOK_ROUTE, "rate_limit", status=503)  # the webhook is down for this run
    assert materialize(
        db_url, sandbox, url, tmp_path
    ).success  # a failed alert does not fail the run
    urgent = {k for k, r in inbox(engine).items() if r["priority"] == "urgent"}
    assert len(urgent) == 3
    assert all(inbox(engine)[k]["notified_at"] is None for k in urgent)
    with engine.connect() as conn:
        states = conn.execute(
            sa.select(s.notifications.c.status, s.notifications.c.error).where(
                s.notifications.c.kind == "engagement_urgent"
            )
        ).all()
    assert len(states) == 3 and all(
        st == "failed" and "503" in err and "secret" not in err for st, err in states
    )

    sandbox.faults.clear()
    assert materialize(db_url, sandbox, url, tmp_path).success
    assert all(inbox(engine)[k]["notified_at"] is not None for k in urgent)
    sent = [r["payload"]["text"] for r in sandbox.state.module_state("webhook", WebhookState).all()]
    assert len(sent) == 3 and all("Urgent" in t for t in sent)
    assert materialize(db_url, sandbox, url, tmp_path).success  # nothing left to push
    assert len(sandbox.state.module_state("webhook", WebhookState).all()) == 3


def test_rejected_token_flags_reconnect_and_other_sources_still_collected(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    platform_data(sandbox.state).revoke("x", "503")
    result = materialize(db_url, sandbox, None, tmp_path)
    assert result.success
    rows = inbox(engine)
    assert not any(r["platform"] == "x" for r in rows.values())
    assert any(r["platform"] == "facebook" for r in rows.values())
    with engine.connect() as conn:
        acct = (
            conn.execute(sa.select(s.platform_accounts).where(s.platform_accounts.c.id == "acct-x"))
            .mappings()
            .one()
        )
    assert acct["needs_reconnect"] is True and "x-tok" not in (acct["reconnect_reason"] or "")


def test_platform_outage_is_reported_and_other_sources_still_collected(world, db_url):
    """A source that keeps failing is reported as the brand's error (the asset then fails
    that brand through BrandBatch); what the other sources returned is still stored."""
    engine, sandbox = world["engine"], world["sandbox"]
    sandbox.faults.add("gbp.reviews", "status_sequence", statuses=[500, 500, 500])
    env = sandbox.env()
    with (
        ApiClient(env["MARBA_GRAPH_API_URL"]) as g,
        ApiClient(env["MARBA_X_API_URL"]) as x,
        ApiClient(env["MARBA_GBP_API_URL"]) as gb,
    ):
        collected = collect_brand(
            engine,
            "b1",
            HOUR + timedelta(hours=1),
            Collectors(GraphEngagement(g), XEngagement(x), GbpReviews(gb)),
            lambda brand_id, level, message: print(brand_id, level, message),
        )
    errors = [str(f) for f in collected.failures]
    assert len(errors) == 1 and errors[0].startswith("google_business:") and "500" in errors[0]
    assert collected.failures[0].cause.startswith("server error HTTP 500")
    assert sorted(collected.asked) == ["facebook", "google_business", "instagram", "x"]
    store_rows(engine, collected.rows)
    stored = inbox(engine)
    assert len(stored) == 6 and not any(r["platform"] == "google_business" for r in stored.values())
    assert sandbox.request_count("gbp.reviews") == 3  # the client's retries, then it gave up


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _second_brand(engine, sandbox):
    """Brand b2 with an X account of its own, which keeps answering."""
    platform_data(sandbox.state).add_account("x", "603", "x-tok-b2b2")
    engagement_data(sandbox.state).add_mention(
        "603", "1860000000000000099", "@shop love it", HOUR - timedelta(minutes=9), "9002"
    )
    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b2", name="Shop", industry="retail"))
        conn.execute(
            s.platform_accounts.insert().values(
                id="acct-b2-x",
                brand_id="b2",
                platform="x",
                external_account_id="603",
                access_token="x-tok-b2b2",
            )
        )


def test_an_account_down_names_the_brand_and_the_lost_platform_api(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    _second_brand(engine, sandbox)
    sandbox.faults.add("gbp.reviews", "status_sequence", statuses=[500, 500, 500])
    result = materialize(db_url, sandbox, None, tmp_path)
    assert result.success  # b2 was collected; b1's other sources too
    stored = inbox(engine)
    assert "1860000000000000099" in stored and "501_9001_1" in stored
    found = _checks(result)
    brands = found["all_brands_processed"]
    assert brands.passed is False and brands.severity == dg.AssetCheckSeverity.WARN
    assert brands.description.startswith(
        "1 of 2 brand(s) failed: b1 (RuntimeError: google_business account "
        "acct-google_business: server error HTTP 500"
    )
    sources = found["sources_available"]
    assert sources.passed is False
    assert sources.description.startswith(
        "lost 1 source(s): Google Business Profile API (server error HTTP 500"
    )
    assert sources.description.endswith("; 1 brand(s) without it)")
    text = brands.description + sources.description
    assert "tok-" not in text and "REDACTED" not in text  # neither tokens nor URLs
    with engine.connect() as conn:
        errors = (
            conn.execute(sa.select(s.job_logs.c.message).where(s.job_logs.c.level == "error"))
            .scalars()
            .all()
        )
    assert any(
        "google_business account acct-google_business not collected" in e and "500" in e
        for e in errors
    )
    assert not any("gbp-tok" in e for e in errors)


def test_one_platform_answering_keeps_its_api_available(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    _second_brand(engine, sandbox)
    # Only b1's X account fails; b2's X account answers: the X API is not lost.
    sandbox.faults.add(
        "engagement.x_mentions",
        "status_sequence",
        statuses=[503, 503, 503],
        path_contains="/users/503/",
    )
    result = materialize(db_url, sandbox, None, tmp_path)
    assert result.success
    found = _checks(result)
    assert (
        found["all_brands_processed"].passed is False
        and "b1 (" in found["all_brands_processed"].description
    )
    assert found["sources_available"].passed is True


def test_inbox_items_valid_passes_on_collected_items_and_names_bad_ones(world, db_url, tmp_path):
    engine, sandbox = world["engine"], world["sandbox"]
    first = _checks(materialize(db_url, sandbox, None, tmp_path, with_checks=True))
    assert first["inbox_items_valid"].passed is True
    assert first["inbox_items_valid"].metadata["items_checked"].value == 8
    assert (
        first["all_brands_processed"].passed is True and first["sources_available"].passed is True
    )
    now = datetime.now(UTC)
    base = {
        "brand_id": "b1",
        "platform": "facebook",
        "item_type": "comment",
        "body": "x",
        "received_at": now,
        "status": "new",
        "collected_at": now,
        "rating": None,
    }
    with engine.begin() as conn:
        conn.execute(
            ei.insert(),
            [
                {
                    **base,
                    "id": "bad-1",
                    "external_id": "bad-1",
                    "sentiment_score": 1.7,
                    "sentiment_label": "positive",
                    "priority": "low",
                    "priority_score": 0.1,
                },
                {
                    **base,
                    "id": "bad-2",
                    "external_id": "bad-2",
                    "sentiment_score": -0.6,
                    "sentiment_label": "positive",
                    "priority": "critical",
                    "priority_score": 0.9,
                },
                {
                    **base,
                    "id": "bad-3",
                    "external_id": "bad-3",
                    "sentiment_score": 0.0,
                    "sentiment_label": "neutral",
                    "priority": "urgent",
                    "priority_score": 0.2,
                    "item_type": "review",
                    "rating": 9,
                },
                # Collected long ago: outside the checked window.
                {
                    **base,
                    "id": "old",
                    "external_id": "old",
                    "sentiment_score": 5.0,
                    "sentiment_label": "nope",
                    "priority": "low",
                    "priority_score": 0.1,
                    "collected_at": now - timedelta(days=30),
                },
            ],
        )
    check = _checks(materialize(db_url, sandbox, None, tmp_path, with_checks=True))[
        "inbox_items_valid"
    ]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("5 problem(s) in 11 inbox item(s): ")
    assert "1 with a sentiment score missing or outside [-1, 1]" in check.description
    assert (
        "1 with a sentiment label missing, unknown or not matching its score" in check.description
    )
    assert "2 with a priority missing, unknown or not matching its score" in check.description
    assert "1 with a rating outside 1..5" in check.description
    assert {e["external_id"] for e in check.metadata["examples"].value} == {
        "bad-1",
        "bad-2",
        "bad-3",
    }
