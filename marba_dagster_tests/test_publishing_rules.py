"""Pure publishing rules: due window, lateness, backoff, outcome classification."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from marba_dagster.core import publishing as rules
from marba_dagster.core.publishing import DueDecision, Outcome, Transport
from marba_dagster.settings import PUBLISH_PLATFORMS as PLATFORMS

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "offset, decision",
    [
        (timedelta(minutes=5), DueDecision.PUBLISH),  # the guide's five-minute window, inclusive
        (timedelta(minutes=5, seconds=1), DueDecision.NOT_YET),
        (timedelta(minutes=-30), DueDecision.PUBLISH),  # catch-up
        (timedelta(hours=-24), DueDecision.PUBLISH),
        (timedelta(hours=-24, seconds=-1), DueDecision.MISSED),
    ],
)
def test_due_decision(offset, decision):
    assert rules.decide(NOW + offset, NOW) == decision


def test_next_attempt_in_future_waits_and_lateness_is_configurable():
    assert rules.decide(NOW, NOW, next_attempt=NOW + timedelta(seconds=1)) == DueDecision.NOT_YET
    assert (
        rules.decide(NOW - timedelta(hours=2), NOW, max_lateness=timedelta(hours=1))
        == DueDecision.MISSED
    )
    reason = rules.missed_reason(NOW - timedelta(hours=30), NOW, timedelta(hours=24))
    assert reason.startswith("missed:") and "30.0h late" in reason


def test_parse_max_lateness():
    assert rules.parse_max_lateness("24h") == timedelta(hours=24)
    assert rules.parse_max_lateness("90m") == timedelta(minutes=90)
    assert rules.parse_max_lateness("2d") == timedelta(days=2)
    assert rules.parse_max_lateness("3600") == timedelta(hours=1)
    for bad in ("", "soon", "-1h", "0"):
        with pytest.raises(ValueError):
            rules.parse_max_lateness(bad)


def test_backoff_grows_honours_retry_after_and_is_capped():
    rng = random.Random(1)
    d1, d2, d3 = (rules.backoff_seconds(a, rng=rng) for a in (1, 2, 3))
    assert 24 <= d1 <= 36 and 48 <= d2 <= 72 and 96 <= d3 <= 144
    assert rules.backoff_seconds(1, retry_after=600, rng=rng) >= 600
    assert rules.backoff_seconds(30, rng=rng) <= rules.MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(
    "platform, status, code, message, outcome",
    [
        ("x", 429, None, "", Outcome.RETRY),
        ("facebook", 400, 4, "Application request limit reached", Outcome.RETRY),
        ("x", 503, None, "Service Unavailable", Outcome.RETRY),
        ("facebook", 500, 2, "Service temporarily unavailable", Outcome.RETRY),
        ("x", 500, None, "Internal error", Outcome.UNKNOWN),
        ("facebook", 502, None, "", Outcome.UNKNOWN),
        ("x", 401, None, "Unauthorized", Outcome.RECONNECT),
        ("facebook", 400, 190, "Error validating access token", Outcome.RECONNECT),
        ("instagram", 400, 102, "Session key invalid", Outcome.RECONNECT),
        ("x", 400, 190, "Invalid Request", Outcome.FAILED),  # Graph codes mean nothing on X
        ("instagram", 400, 10, "Application does not have permission", Outcome.RECONNECT),
        ("facebook", 400, 506, "Duplicate status message", Outcome.FAILED),
        (
            "x",
            403,
            None,
            "You are not allowed to create a Tweet with duplicate content.",
            Outcome.FAILED,
        ),
        ("x", 400, None, "Invalid Request", Outcome.FAILED),
    ],
)
def test_classify_http(platform, status, code, message, outcome):
    assert (
        rules.classify_http(platform, status, error_code=code, message=message).outcome is outcome
    )


def test_server_error_on_a_harmless_step_is_retried():
    assert rules.classify_http("instagram", 500, sent_is_harmless=True).outcome is Outcome.RETRY


@pytest.mark.parametrize(
    "kind, outcome",
    [
        (Transport.CONNECT_FAILED, Outcome.RETRY),
        (Transport.POOL_TIMEOUT, Outcome.RETRY),
        (Transport.READ_TIMEOUT, Outcome.UNKNOWN),
        (Transport.WRITE_FAILED, Outcome.UNKNOWN),
        (Transport.CONNECTION_LOST, Outcome.UNKNOWN),
    ],
)
def test_classify_transport(kind, outcome):
    assert rules.classify_transport(kind).outcome is outcome
    assert rules.classify_transport(kind, sent_is_harmless=True).outcome is Outcome.RETRY


def test_retry_after_parsing_and_lateness():
    assert rules.parse_retry_after("120") == 120.0
    assert rules.parse_retry_after("Mon, 02 Mar 2026 12:01:00 GMT", NOW) == 60.0
    assert rules.parse_retry_after("soon") is None and rules.parse_retry_after(None) is None
    assert rules.lateness_seconds(NOW, NOW + timedelta(seconds=90)) == 90.0


def test_settings_resource_builds_the_config_and_rejects_bad_lateness():
    from marba_dagster.defs.publishing.resources import PublisherSettings

    cfg = PublisherSettings(
        max_lateness="90m", concurrency=3, account_limits="x=none; facebook=5/1m,50/1h"
    ).config()
    assert cfg.max_lateness == timedelta(minutes=90) and cfg.concurrency == 3
    assert cfg.account_limits["x"] == ()
    assert cfg.account_limits["facebook"] == (rules.Window(5, 60), rules.Window(50, 3600))
    assert cfg.account_limits["instagram"] == (rules.Window(100, 86400),)  # the default
    assert cfg.app_limits["x"] == (rules.Window(10_000, 86400),)
    with pytest.raises(ValueError, match="maximum lateness"):
        PublisherSettings(max_lateness="whenever").config()


def test_max_lateness_env_var_is_bound_when_dagster_loads(monkeypatch):
    from marba_dagster.defs.publishing.resources import publisher_resources

    monkeypatch.setenv("MARBA_PUBLISH_MAX_LATENESS", "6h")
    res = publisher_resources().resources["publisher_settings"]
    resolved = res.process_config_and_initialize()
    assert resolved.max_lateness == "6h" and resolved.config().max_lateness == timedelta(hours=6)


# ------------------------------------------------------------- what each platform accepts

IMG = "https://cdn.example.com/a.jpg"


def rules_broken(platform, body="hello", media=(), fmt="text", **kw):
    return [v.rule for v in rules.validate_post(platform, body, list(media), fmt, **kw)]


def test_x_counts_weighted_characters_and_urls_as_23():
    assert rules.x_weighted_length("a" * 280) == 280
    assert rules.x_weighted_length("日本語") == 6  # CJK weighs 2
    assert rules.x_weighted_length("café") == 4  # Latin-1 weighs 1 (NFC)
    assert rules.x_weighted_length("see https://example.com/" + "x" * 200) == 4 + 23
    assert rules.x_weighted_length("—“quotes”—") == 10  # general punctuation weighs 1
    assert rules.x_weighted_length("🙂") == 2


@pytest.mark.parametrize(
    "platform, body, broken",
    [
        ("x", "a" * 280, []),
        ("x", "a" * 281, ["x.length"]),
        ("x", "日" * 141, ["x.length"]),  # 282 weighted
        ("x", "日" * 140, []),
        ("x", "   ", ["x.text"]),
        ("facebook", "a" * 63_206, []),
        ("facebook", "a" * 100_000, ["facebook.length"]),
        ("google_business", "a" * 1_500, []),
        ("google_business", "a" * 1_501, ["google_business.length"]),
        ("tiktok", "a", ["platform"]),
    ],
)
def test_text_limits(platform, body, broken):
    assert rules_broken(platform, body) == broken


def test_instagram_caption_length_hashtags_and_media():
    assert rules_broken("instagram", "a" * 2_200, [IMG], "image") == []
    assert rules_broken("instagram", "a" * 2_201, [IMG], "image") == ["instagram.length"]
    tags = " ".join(f"#tag{i}" for i in range(31))
    assert rules_broken("instagram", tags, [IMG], "image") == ["instagram.hashtags"]
    assert rules_broken("instagram", tags.rsplit(" ", 1)[0], [IMG], "image") == []
    assert rules_broken("instagram", "", [IMG], "image") == []  # a caption is optional
    assert rules_broken("instagram", "menu", [], "image") == ["instagram.media"]
    assert rules_broken("instagram", "menu", [], "text") == ["instagram.media"]
    assert rules_broken("instagram", "menu", [IMG] * 3, "image") == ["instagram.media_count"]
    assert rules_broken("instagram", "menu", [IMG] * 3, "carousel") == []
    assert rules_broken("instagram", "menu", [IMG] * 11, "carousel") == ["instagram.media_count"]
    assert rules_broken("instagram", "menu", [IMG], "story") == ["instagram.format"]


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://cdn.example.com/a.jpg", True),
        ("https://93.184.216.34/a.jpg", True),
        ("http://cdn.example.com/a.jpg", False),
        ("file:///etc/passwd", False),
        ("ftp://cdn.example.com/a.jpg", False),
        ("https://127.0.0.1/a.jpg", False),
        ("https://10.0.0.5/a.jpg", False),
        ("https://192.168.1.1/a.jpg", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://[::1]/a.jpg", False),
        ("https://[fd00::1]/a.jpg", False),
        ("https://localhost/a.jpg", False),
        ("https://printer.local/a.jpg", False),
        ("https://user:pw@cdn.example.com/a.jpg", False),
        ("https:///a.jpg", False),
        ("not a url", False),
        ("", False),
        (None, False),
    ],
)
def test_media_urls_must_be_public_https(url, ok):
    assert (rules.media_url_problem(url) is None) is ok


def test_allowed_media_hosts_are_exempt_for_their_port_only():
    allowed = frozenset({("127.0.0.1", 8765)})
    assert rules.media_url_problem("http://127.0.0.1:8765/media/a.jpg", allowed) is None
    assert rules.media_url_problem("http://127.0.0.1:8766/media/a.jpg", allowed) is not None
    assert rules.media_url_problem("file://127.0.0.1:8765/a.jpg", allowed) is not None


def test_formats_never_fall_back_to_text():
    assert rules_broken("facebook", "hi", [IMG], "image") == []
    assert rules_broken("facebook", "hi", [IMG], "video") == ["facebook.format"]
    assert rules_broken("facebook", "hi", [IMG, IMG], "image") == ["facebook.media_count"]
    assert rules_broken("facebook", "hi", [IMG], "text") == ["facebook.media_count"]
    assert rules_broken("facebook", "hi", [], "podcast") == ["facebook.format"]
    assert rules_broken("tiktok", "hi") == ["platform"]
    assert rules_broken("facebook", "hi", ["file:///etc/passwd"], "image") == ["media.url"]
    found = rules.validate_post("facebook", "hi", "https://a.example/x.jpg", "image")
    assert [v.rule for v in found] == ["media.shape", "facebook.media_count"]
    (v,) = rules.validate_post("facebook", "a" * 70_000, [], "text")
    assert v.reason() == (
        "invalid post (facebook.length): the text is 70,000 characters, facebook allows 63,206"
    )


# ------------------------------------------------------------------ publishing limits


def test_parse_limits():
    parsed = rules.parse_limits("instagram=100/24h; x=100/15m,300/3h; facebook=none", PLATFORMS)
    assert parsed == {
        "instagram": (rules.Window(100, 86400),),
        "x": (rules.Window(100, 900), rules.Window(300, 10800)),
        "facebook": (),
    }
    assert [w.label() for w in parsed["x"]] == ["100/15m", "300/3h"]
    assert rules.parse_limits("", PLATFORMS) == {}
    for bad in ("x", "x=100", "x=0/1h", "x=ten/1h", "x=10/soon", "tiktok=1/1h"):
        with pytest.raises(ValueError):
            rules.parse_limits(bad, PLATFORMS)


def test_limit_until():
    w = rules.Window(2, 3600)
    assert rules.limit_until(None, w) is None
    assert rules.limit_until(NOW, w) == NOW + timedelta(hours=1)


def test_x_headers_exhausting_the_user_and_the_app():
    reset = int((NOW + timedelta(minutes=7)).timestamp())
    state = rules.rate_state(
        "x", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}, NOW
    )
    assert state.account_until == NOW + timedelta(minutes=7) and state.app_until is None
    assert rules.rate_state("x", {"x-rate-limit-remaining": "5"}, NOW) == rules.RateState()
    app = rules.rate_state(
        "x",
        {"x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(reset)},
        NOW,
    )
    assert app.app_until == NOW + timedelta(minutes=7) and app.account_until is None


def test_graph_usage_headers():
    buc = '{"1001": [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 5, "estimated_time_to_regain_access": 12}]}'  # noqa: E501
    state = rules.rate_state("facebook", {"X-Business-Use-Case-Usage": buc}, NOW)
    assert state.account_until == NOW + timedelta(minutes=12)
    calm = '{"1001": [{"type": "pages", "call_count": 40, "total_cputime": 2, "total_time": 3, "estimated_time_to_regain_access": 0}]}'  # noqa: E501
    assert (
        rules.rate_state("facebook", {"x-business-use-case-usage": calm}, NOW).account_until is None
    )
    app = rules.rate_state(
        "instagram",
        {"x-app-usage": '{"call_count": 100, "total_time": 3, "total_cputime": 1}'},
        NOW,
    )
    assert app.app_until == NOW + timedelta(seconds=rules.APP_USAGE_COOLDOWN_SECONDS)
    assert rules.rate_state("facebook", {"x-app-usage": "not json"}, NOW) == rules.RateState()


@pytest.mark.parametrize(
    "platform, status, code, scope",
    [
        ("x", 429, None, "account"),
        ("facebook", 400, 4, "app"),
        ("facebook", 400, 32, "account"),
        ("instagram", 400, 9, "account"),
        ("facebook", 400, 100, None),
    ],
)
def test_rate_limits_name_their_scope(platform, status, code, scope):
    assert rules.classify_http(platform, status, error_code=code).rate_scope == scope


# ------------------------------------------------------- Google Business Profile posts


@pytest.mark.parametrize(
    "options, broken",
    [
        (None, []),
        ({"topic_type": "STANDARD"}, []),
        ({"topic_type": "ALERT"}, ["google_business.topic_type"]),
        ({"topic_type": "EVENT"}, ["google_business.event"]),
        (
            {
                "topic_type": "EVENT",
                "event": {"title": "x", "start": "2026-12-02", "end": "2026-12-01"},
            },
            ["google_business.event"],
        ),  # noqa: E501
        (
            {
                "topic_type": "EVENT",
                "event": {"title": "x" * 59, "start": "2026-12-01", "end": "2026-12-01"},
            },
            ["google_business.event"],
        ),  # noqa: E501
        (
            {
                "topic_type": "EVENT",
                "event": {"title": "x", "start": "2026-12-01T10:00+01:00", "end": "2026-12-01"},
            },
            ["google_business.event"],
        ),  # noqa: E501
        (
            {
                "topic_type": "EVENT",
                "event": {"title": "x", "start": "2026-12-01", "end": "2026-12-01"},
            },
            [],
        ),  # noqa: E501
        (
            {
                "topic_type": "OFFER",
                "event": {"title": "x", "start": "2026-12-01", "end": "2026-12-03"},
                "offer": {"redeem_url": "file:///x"},
            },
            ["google_business.offer"],
        ),  # noqa: E501
        ({"call_to_action": {"action_type": "CALL"}}, []),
        ({"call_to_action": {"action_type": "ORDER"}}, ["google_business.call_to_action"]),
        (
            {"call_to_action": {"action_type": "GET_RICH", "url": "https://a.example"}},
            ["google_business.call_to_action"],
        ),  # noqa: E501
        ("EVENT", ["google_business.options"]),
    ],
)
def test_gbp_options(options, broken):
    assert [v.rule for v in rules.gbp_post_problems(options)] == broken


def test_gbp_local_post_shapes():
    post = rules.gbp_local_post(
        "",
        [],
        {
            "topic_type": "OFFER",
            "event": {"title": "Cake week", "start": "2026-12-01", "end": "2026-12-07"},
            "offer": {"coupon_code": "CAKE10"},
            "call_to_action": {"action_type": "CALL", "url": "https://ignored.example"},
            "language_code": "fr",
        },
    )
    assert post == {
        "languageCode": "fr",
        "topicType": "OFFER",
        "event": {
            "title": "Cake week",
            "schedule": {
                "startDate": {"year": 2026, "month": 12, "day": 1},
                "endDate": {"year": 2026, "month": 12, "day": 7},
            },
        },
        "offer": {"couponCode": "CAKE10"},
        "callToAction": {"actionType": "CALL"},
    }
    assert rules_broken("google_business", "", [], "text") == ["google_business.text"]
    assert (
        rules.validate_post(
            "google_business",
            "",
            [],
            "text",
            options={
                "topic_type": "EVENT",
                "event": {"title": "t", "start": "2026-01-01", "end": "2026-01-01"},
            },  # noqa: E501
        )
        == []
    )


# ---------------------------------------------------------------------------- X media


def test_x_media_types_chunks_and_multipart():
    from marba_dagster.sandbox.routes.x_media import parse_multipart

    assert rules.x_media_type("image/png; charset=binary", "https://a.example/x") == "image/png"
    assert rules.x_media_type("application/octet-stream", "https://a.example/v.MP4") == "video/mp4"
    assert rules.x_media_type("text/html", "https://a.example/v.mp4") is None
    assert rules.x_media_type(None, "https://a.example/doc.pdf") is None
    assert rules.chunks(0, 10) == [] and rules.chunks(25, 10) == [(0, 10), (10, 20), (20, 25)]
    body, ctype = rules.multipart(
        {"command": "APPEND", "segment_index": "0"}, ("media", b"\x00\r\n--x\xff", "a/b")
    )
    assert parse_multipart(body, ctype) == {
        "command": b"APPEND",
        "segment_index": b"0",
        "media": b"\x00\r\n--x\xff",
    }
    assert rules_broken("x", "", ["https://a.example/1.jpg"], "image") == []  # media alone
    assert rules_broken("x", "hi", ["https://a.example/1.jpg"] * 5, "image") == ["x.media_count"]
    assert rules_broken("x", "hi", ["https://a.example/1.mp4"] * 2, "video") == ["x.media_count"]
