"""Engagement connectors against the sandbox: paging, shapes, windows, bad answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marba_dagster.connectors.engagement import (
    GbpReviews,
    GraphEngagement,
    XEngagement,
    parse_timestamp,
)
from marba_dagster.connectors.http import ApiClient, ClientError, MalformedResponse
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.sandbox.routes.engagement import engagement_data
from marba_dagster.sandbox.routes.gbp import gbp_data

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def test_comments_mentions_dms_and_reviews_page_through_everything(sandbox):
    data, eng, gbp = (
        platform_data(sandbox.state),
        engagement_data(sandbox.state),
        gbp_data(sandbox.state),
    )
    eng.generate = False
    data.add_account("facebook", "11", "tok-fb-1")
    data.add_account("x", "33", "tok-x-3")
    data.add_post("facebook", "11", "11_1", T0)
    for i in range(130):
        eng.add_comment(
            "facebook",
            "11_1",
            f"11_1_{i}",
            f"comment {i}",
            T0 + timedelta(minutes=i),
            author=f"a{i}",
        )
    eng.add_user("900", "fan", 1234)
    for i in range(230):
        eng.add_mention("33", f"{1000 + i}", f"@brand hi {i}", T0 + timedelta(minutes=i), "900")
    for i in range(5):
        eng.add_dm("33", f"e{i}", f"dm {i}", T0 + timedelta(hours=i), "900" if i % 2 else "33")
    gbp.add_location("accounts/1/locations/2", "tok-gbp-9")
    for i in range(60):
        gbp.add_review(
            "accounts/1/locations/2", f"r{i}", 1 + i % 5, f"review {i}", T0 + timedelta(minutes=i)
        )
    env = sandbox.env()
    with (
        ApiClient(env["MARBA_GRAPH_API_URL"]) as g,
        ApiClient(env["MARBA_X_API_URL"]) as x,
        ApiClient(env["MARBA_GBP_API_URL"]) as gb,
    ):
        comments = GraphEngagement(g).facebook_comments("11_1", "tok-fb-1")
        assert len({c.external_id for c in comments}) == 130
        assert comments[5].author == "a5" and comments[5].received_at == T0 + timedelta(minutes=5)
        xe = XEngagement(x)
        mentions = xe.mentions("33", "tok-x-3", T0, T0 + timedelta(hours=3))
        assert len(mentions) == 180  # the window: 3 hours of one-a-minute mentions
        assert mentions[0].author == "fan" and mentions[0].author_followers == 1234
        dms = xe.direct_messages("33", "tok-x-3", T0, T0 + timedelta(days=1))
        assert [d.external_id for d in dms] == [
            "dm:e3",
            "dm:e1",
        ]  # the account's own messages skipped
        reviews = GbpReviews(gb).reviews("accounts/1/locations/2", "tok-gbp-9")
        assert len(reviews) == 60 and {r.rating for r in reviews} == {1, 2, 3, 4, 5}
        with pytest.raises(ClientError) as err:
            GbpReviews(gb).reviews("accounts/1/locations/2", "wrong-token")
        assert err.value.status == 401 and "wrong-token" not in str(err.value)
        with pytest.raises(ValueError):
            GbpReviews(gb).reviews("locations/2", "tok-gbp-9")
    assert sandbox.request_count("engagement.comments") == 2
    assert sandbox.request_count("gbp.reviews") == 3


def test_malformed_answers_are_reported(sandbox):
    data = platform_data(sandbox.state)
    data.add_account("facebook", "11", "tok-fb-1")
    data.add_post("facebook", "11", "11_1", T0)
    sandbox.faults.add("engagement.comments", "malformed_body", times=1)
    with ApiClient(sandbox.env()["MARBA_GRAPH_API_URL"]) as g, pytest.raises(MalformedResponse):
        GraphEngagement(g).facebook_comments("11_1", "tok-fb-1")
    with pytest.raises(MalformedResponse):
        parse_timestamp("yesterday", "x")
    assert parse_timestamp("2026-03-01T08:00:00+0000", "x") == T0


def test_demo_reviews_for_unregistered_locations_are_deterministic(sandbox):
    with ApiClient(sandbox.env()["MARBA_GBP_API_URL"]) as gb:
        first = GbpReviews(gb).reviews("accounts/5/locations/5", "any-token")
        again = GbpReviews(gb).reviews("accounts/5/locations/5", "any-token")
        assert [r.external_id for r in first] == [r.external_id for r in again]
        gbp_data(sandbox.state).generate = False
        with pytest.raises(ClientError) as err:
            GbpReviews(gb).reviews("accounts/5/locations/5", "any-token")
        assert err.value.status == 404
