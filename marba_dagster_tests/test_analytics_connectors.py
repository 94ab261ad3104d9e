"""Graph API and X API v2 read clients against the sandbox, in the real formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marba_dagster.connectors.graph import GraphClient
from marba_dagster.connectors.http import ApiClient, HttpPolicy, MalformedResponse, RateLimited
from marba_dagster.connectors.social import TokenRejected
from marba_dagster.connectors.x import XClient
from marba_dagster.sandbox.platform_data import platform_data

T0 = datetime(2025, 6, 1, tzinfo=UTC)
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))


def _client(sandbox, var, **kw):
    return ApiClient(
        sandbox.env()[var], policy=HttpPolicy(deadline=10, backoff_base=0.01, **kw), name=var
    )


def _fill(sandbox, n=0, **acct):
    data = platform_data(sandbox.state)
    data.add_account("facebook", "111", "fb-token-abcdef", followers=1234, **acct)
    data.add_account("instagram", "178", "ig-token-abcdef", followers=987)
    for i in range(n):
        data.add_post(
            "facebook",
            "111",
            f"111_{i}",
            T0 + timedelta(hours=i),
            body=f"hello {i}",
            format=("image", "video", "text", "link")[i % 4],
            impressions=100 + i,
            reach=80 + i,
            likes=10 + i,
            comments=2,
            shares=i % 2,
            clicks=3,
            video_views=7,
        )
        data.add_post(
            "instagram",
            "178",
            f"1790{i}",
            T0 + timedelta(hours=i),
            body=f"ig {i} #tag",
            format=("reel", "carousel", "story", "image")[i % 4],
            impressions=200,
            reach=150,
            likes=20,
            comments=4,
            shares=1,
            saves=5,
        )
    return data


def test_graph_page_posts_and_ig_media_in_graph_format_with_paging(sandbox):
    _fill(sandbox, n=230)
    with _client(sandbox, "MARBA_GRAPH_API_URL") as c:
        g = GraphClient(c)
        posts = g.page_posts("111", "fb-token-abcdef", *WINDOW)
        media = g.ig_media("178", "ig-token-abcdef", *WINDOW)
        fb_followers = g.followers("facebook", "111", "fb-token-abcdef")
        raw = c.get_json(
            "111/posts",
            params={
                "access_token": "fb-token-abcdef",
                "limit": 2,
                "fields": "id,insights.metric(post_impressions)",
            },
        )
    assert len(posts) == 230 and len({p.external_post_id for p in posts}) == 230
    assert sandbox.request_count("graph.page_posts") == 4  # 100 + 100 + 30, then the raw call
    p5 = next(p for p in posts if p.external_post_id == "111_5")
    assert (p5.format, p5.impressions, p5.reach, p5.likes, p5.comments, p5.shares, p5.clicks) == (
        "video",
        105,
        85,
        15,
        2,
        1,
        3,
    )
    assert p5.published_at == T0 + timedelta(hours=5)
    reel = next(m for m in media if m.external_post_id == "17900")
    assert (reel.format, reel.reach, reel.saves, reel.video_views, reel.impressions) == (
        "reel",
        150,
        5,
        200,
        200,
    )
    assert {m.format for m in media} == {"reel", "carousel", "story", "image"}
    assert fb_followers.followers == 1234
    # The real shapes: insights as name/period/values, cursor paging with a next link.
    item = raw["data"][0]
    assert item["insights"]["data"][0]["name"] == "post_impressions"
    assert item["insights"]["data"][0]["values"] == [{"value": 329}]
    assert set(raw["paging"]["cursors"]) == {"before", "after"} and "next" in raw["paging"]
    # Only posts in the window come back.
    with _client(sandbox, "MARBA_GRAPH_API_URL") as c:
        few = GraphClient(c).page_posts("111", "fb-token-abcdef", T0, T0 + timedelta(hours=10))
    assert len(few) == 10


@pytest.mark.parametrize(
    "problem, reason",
    [("revoked", "invalidated"), ("expired", "expired"), ("wrong", "token rejected")],
)
def test_graph_token_errors_are_code_190(sandbox, problem, reason):
    data = _fill(sandbox, n=3)
    token = "fb-token-abcdef"
    if problem == "revoked":
        data.revoke("facebook", "111")
    elif problem == "expired":
        data.add_account("facebook", "111", token, token_expires_at=T0)
    else:
        token = "some-other-token"
    with _client(sandbox, "MARBA_GRAPH_API_URL") as c, pytest.raises(TokenRejected) as err:
        GraphClient(c).page_posts("111", token, *WINDOW)
    assert "Graph error 190" in err.value.reason and reason in err.value.reason
    assert token not in str(err.value) and "REDACTED" in str(err.value)


def test_graph_session_error_102_is_a_rejected_token(sandbox):
    _fill(sandbox, n=3)
    body = {"error": {"message": "Session key invalid", "type": "OAuthException", "code": 102}}
    sandbox.faults.add("graph.page_posts", "status_sequence", statuses=[400], body=body)
    with _client(sandbox, "MARBA_GRAPH_API_URL") as c, pytest.raises(TokenRejected) as err:
        GraphClient(c).page_posts("111", "fb-token-abcdef", *WINDOW)
    assert err.value.reason == "Graph error 102 (token rejected)"
    assert "fb-token-abcdef" not in str(err.value)


def test_graph_malformed_page_and_429(sandbox):
    _fill(sandbox, n=3)
    sandbox.faults.add("graph.ig_media", "malformed_body", times=1)
    with _client(sandbox, "MARBA_GRAPH_API_URL") as c, pytest.raises(MalformedResponse):
        GraphClient(c).ig_media("178", "ig-token-abcdef", *WINDOW)
    sandbox.faults.add("graph.page_posts", "rate_limit", retry_after=0.01)
    with (
        _client(sandbox, "MARBA_GRAPH_API_URL", max_attempts=2) as c,
        pytest.raises(RateLimited),
    ):
        GraphClient(c).page_posts("111", "fb-token-abcdef", *WINDOW)
    assert sandbox.request_count("graph.page_posts") == 2


def test_x_timeline_paging_metrics_and_401(sandbox):
    data = platform_data(sandbox.state)
    data.add_account("x", "42", "x-token-abcdef", followers=55)
    data.add_account("x", "43", "x-token-public", followers=9, non_public_metrics=False)
    for acct in ("42", "43"):
        for i in range(150):
            data.add_post(
                "x",
                acct,
                f"{acct}{i:05d}",
                T0 + timedelta(minutes=10 * i),
                body=f"post {i}",
                format=("text", "image", "video", "link", "carousel")[i % 5],
                impressions=1000 + i,
                likes=5,
                comments=1,
                shares=2,
                saves=3,
                clicks=4,
            )
    with _client(sandbox, "MARBA_X_API_URL") as c:
        x = XClient(c)
        posts = x.posts("42", "x-token-abcdef", *WINDOW)
        public = x.posts("43", "x-token-public", *WINDOW)
        followers = x.followers("42", "x-token-abcdef")
        with pytest.raises(TokenRejected) as err:
            x.posts("42", "revoked-or-wrong-token", *WINDOW)
    assert len(posts) == 150 and sandbox.request_count("x.user_tweets") == 2 + 2 + 1
    p = next(p for p in posts if p.external_post_id == "4200003")
    assert (p.format, p.impressions, p.reach, p.likes, p.comments, p.shares, p.saves, p.clicks) == (
        "link",
        1003,
        0,
        5,
        1,
        2,
        3,
        4,
    )
    assert {q.format for q in posts} == {"text", "image", "video", "link", "carousel"}
    # Without the owner-only grant: public impressions, no link clicks.
    q = next(q for q in public if q.external_post_id == "4300003")
    assert (q.impressions, q.clicks) == (1003, 0)
    assert followers.followers == 55
    assert "401" in err.value.reason and "revoked-or-wrong-token" not in str(err.value)
    assert all("Bearer" not in r["query"] for r in sandbox.requests("x.user_tweets"))
