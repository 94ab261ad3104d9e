"""Every credential the clients send stays out of everything the project reports.

An API that echoes the request (its query, headers and body) in a 400/500 error is the
worst case: the sandbox's ``echo_error`` fault (and a raw echoing server) quote every request
back, and a known token is sent through every collect path (Graph, X, Google Business
Profile, engagement, analytics) and the publisher. The token must appear nowhere: not in the
exceptions, nor in any table (``job_logs``, ``job_executions``, ``scheduled_content``,
``publish_events``, ``notifications``, ...; only ``platform_accounts.access_token`` holds it),
nor in the payloads the webhook received, nor in the Dagster event log of the run.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.connectors.http import ApiClient, ClientError, HttpPolicy, ServerError
from marba_dagster.connectors.redaction import redact, secrets_of
from marba_dagster.defs.engagement.assets import engagement_inbox
from marba_dagster.defs.publishing.assets import published_posts
from marba_dagster.defs.publishing.checks import no_unresolved_posts
from marba_dagster.defs.publishing.resources import PublisherSettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.sandbox.routes.webhook import WebhookState
from marba_dagster.store import schema as s
from marba_dagster_tests import monitoring_helpers
from marba_dagster_tests import test_analytics_collector as analytics_tests
from marba_dagster_tests import test_engagement as engagement_tests
from marba_dagster_tests import test_publishing as publishing_tests
from marba_dagster_tests.hostile_servers import HostileServer

ONE_SHOT = HttpPolicy(max_attempts=1, deadline=10)
ANALYTICS_ROUTES = ("graph.page_posts", "graph.ig_media", "graph.node", "x.user_tweets", "x.user")
ENGAGEMENT_ROUTES = (
    "engagement.comments",
    "engagement.x_mentions",
    "engagement.x_dm_events",
    "gbp.reviews",
)
PUBLISH_ROUTES = (
    "graph_publish.page_feed",
    "graph_publish.page_photos",
    "graph_publish.ig_media",
    "graph_publish.ig_media_publish",
)


def everything_stored(engine) -> str:
    """Every row of every table as text, but the one column meant to hold the tokens."""
    parts = []
    with engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            columns = [
                c
                for c in table.c
                if not (table.name == "platform_accounts" and c.name == "access_token")
            ]
            for row in conn.execute(sa.select(*columns)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def event_log(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(dg.serialize_value(entry) for entry in instance.all_logs(run_id))


def webhook_payloads(sandbox) -> str:
    return json.dumps(sandbox.state.module_state("webhook", WebhookState).all())


def assert_nowhere(tokens, *texts: str) -> None:
    for token in tokens:
        for text in texts:
            assert token not in text


# ------------------------------------------------------------------ the client itself


@pytest.mark.parametrize("status", [400, 500])
def test_secrets_in_form_json_query_and_headers_are_scrubbed_from_errors(status):
    token = "tok-FormBody-5f2a9c"
    key = "key-JsonBody-77e1b0"
    bearer = "bearer-Header-c0ffee"
    query = "tok+Query/with=chars"
    with (
        HostileServer("echo_error", status=status) as server,
        ApiClient(
            server.url, policy=ONE_SHOT, name="echo", headers={"Authorization": f"Bearer {bearer}"}
        ) as client,
    ):
        with pytest.raises(ClientError if status == 400 else ServerError) as form_error:
            client.post("/me/feed", data={"message": "hi", "access_token": token})
        with pytest.raises(ClientError if status == 400 else ServerError) as json_error:
            client.post(
                "/v1/chat",
                json={"messages": [{"content": "hi"}], "auth": {"api_key": key}},
                params={"access_token": query},
            )
    for exc in (form_error.value, json_error.value):
        text = " ".join(
            [str(exc), repr(exc), exc.message, exc.body_excerpt or "", json.dumps(exc.error_json)]
        )
        assert "bad request" in text  # the echo did arrive: its quote of the request is kept
        assert_nowhere([token, key, bearer, query], text)
        assert "REDACTED" in text


def test_secrets_of_finds_every_place_and_spelling():
    found = secrets_of(
        "https://graph.example/x?access_token=abc%2Bdef1&fields=id",
        params={"appsecret_proof": "proof-1234", "fields": "id"},
        headers=[{"Authorization": "Bearer bear-5678", "Accept": "json"}],
        data={"access_token": "form tok/9"},
        json_body={"nested": [{"client_secret": "sec-0000"}], "text": "not a secret"},
    )
    for value in ("abc+def1", "abc%2Bdef1", "proof-1234", "bear-5678", "form tok/9"):
        assert value in found
    assert "form+tok%2F9" in found  # as a form body spells it
    assert "sec-0000" in found and "not a secret" not in found and "id" not in found


def test_a_sent_secret_is_redacted_from_any_later_text(sandbox):
    token = "tok-Remembered-91d3e2a"
    with ApiClient(sandbox.env()["MARBA_GRAPH_API_URL"], policy=ONE_SHOT, name="graph") as client:
        sandbox.faults.add("graph.node", "echo_error", status=400)
        with pytest.raises(ClientError):
            client.get("/123", params={"access_token": token})
    assert token not in redact(f"an app error quoting {token} later")


# ------------------------------------------------------------------ collect paths


@pytest.mark.slow  # every brand fails, so the step's retry policy runs it three times
def test_analytics_collect_paths_leak_no_token(db_url, engine, sandbox, tmp_path):
    day = analytics_tests._setup(engine, sandbox)
    for route in ANALYTICS_ROUTES:
        sandbox.faults.add(route, "echo_error", status=400)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            analytics_tests.ASSETS,
            resources=analytics_tests._resources(db_url, sandbox),
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
        )
        events = event_log(instance, result.run_id)
    assert sum(sandbox.request_count(route) for route in ANALYTICS_ROUTES) > 0
    assert "cannot process" in everything_stored(engine) + events  # the echo was recorded
    assert_nowhere(analytics_tests.TOKENS.values(), everything_stored(engine), events)


@pytest.mark.slow  # every brand fails, so the step's retry policy runs it three times
def test_engagement_collect_paths_leak_no_token(db_url, engine, sandbox, tmp_path):
    engagement_tests.world.__wrapped__(engine, sandbox)
    for route in ENGAGEMENT_ROUTES:
        sandbox.faults.add(route, "echo_error", status=500)
    env = sandbox.env()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [engagement_inbox],
            instance=instance,
            partition_key=engagement_tests.PARTITION,
            raise_on_error=False,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"]),
                "gbp_api": ApiEndpoint(base_url=env["MARBA_GBP_API_URL"]),
                "notifier": Notifier(webhook_url=sandbox.url("/webhook/slack/T0/B0/hook")),
            },
        )
        events = event_log(instance, result.run_id)
    assert sum(sandbox.request_count(route) for route in ENGAGEMENT_ROUTES) > 0
    tokens = ["fb-tok-aaaa", "ig-tok-bbbb", "x-tok-cccc", "gbp-tok-dddd"]
    assert_nowhere(tokens, everything_stored(engine), events, webhook_payloads(sandbox))


# ------------------------------------------------------------------ publish paths


def test_publisher_leaks_no_token_to_columns_alerts_or_the_event_log(
    db_url, engine, sandbox, tmp_path
):
    world = publishing_tests.world.__wrapped__(engine, sandbox)
    # 500 on Facebook: the post may have gone out (unknown, alerted); 400 on Instagram.
    sandbox.faults.add("graph_publish.page_feed", "echo_error", status=500)
    for route in PUBLISH_ROUTES[1:]:
        sandbox.faults.add(route, "echo_error", status=400)
    publishing_tests.add_post(engine, "fb-1", platform="facebook", minutes=-1)
    publishing_tests.add_post(engine, "ig-1", platform="instagram", minutes=-1)
    hook = sandbox.url("/webhook/slack/T0/B0/hook")
    publishing_tests.run_once(world, db_url, webhook_url=hook)
    env = sandbox.env()
    publishing_tests.add_post(engine, "fb-2", platform="facebook", minutes=-1)
    # A MarbaInstance: the run is recorded in job_executions (and its error with it).
    with monitoring_helpers.marba_instance(tmp_path / "home", db_url) as instance:
        result = dg.materialize(
            [published_posts, no_unresolved_posts],
            instance=instance,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"]),
                "gbp_api": ApiEndpoint(base_url=env["MARBA_GBP_API_URL"]),
                "notifier": Notifier(webhook_url=hook),
                "publisher_settings": PublisherSettings(),
            },
            raise_on_error=False,
        )
        events = event_log(instance, result.run_id)
    stored = everything_stored(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.job_executions)).scalar()
    assert sum(sandbox.request_count(route) for route in PUBLISH_ROUTES) >= 3
    with engine.connect() as conn:
        errors = [r[0] for r in conn.execute(sa.select(s.scheduled_content.c.last_error))]
    assert all(errors) and any("cannot process" in e for e in errors)
    assert_nowhere(
        publishing_tests.TOKENS.values(), stored, events, webhook_payloads(sandbox), *errors
    )
