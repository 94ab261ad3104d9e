"""The shared HTTP client against the sandbox: real HTTP on loopback, faults on the server."""

from __future__ import annotations

import email.utils
import pickle
import socket
import threading
import time
import tracemalloc
from urllib.parse import quote

import pytest

from marba_dagster.connectors.http import (
    ApiClient,
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    HttpPolicy,
    MalformedResponse,
    RateLimited,
    ResponseTooLarge,
    ServerError,
    TokenBucket,
    parse_retry_after,
    redact_url,
)
from marba_dagster.connectors.safe_fetch import FetchPolicy

FORECAST = "open_meteo.forecast"
CHAT = "llm.chat_completions"
PARAMS = {
    "latitude": "52.52",
    "longitude": "13.41",
    "hourly": "temperature_2m",
    "forecast_days": "1",
}
# Short waits so the whole module stays fast.
FAST = HttpPolicy(
    backoff_base=0.02, backoff_jitter=0.02, connect_timeout=1, read_timeout=2, deadline=5
)
CHAT_BODY = {
    "model": "sandbox-model",
    "messages": [{"role": "user", "content": 'Facts: {"followers": 10}'}],
}


def meteo(sandbox, policy: HttpPolicy = FAST, **kw) -> ApiClient:
    return ApiClient(sandbox.env()["MARBA_OPEN_METEO_URL"], policy=policy, name="open_meteo", **kw)


def llm(sandbox, policy: HttpPolicy = FAST) -> ApiClient:
    return ApiClient(
        sandbox.env()["MARBA_LLM_BASE_URL"],
        policy=policy,
        name="llm",
        headers={"Authorization": "Bearer sandbox-key"},
    )


# ---- success and URL handling ----------------------------------------------------------


def test_get_json_keeps_base_path_prefix(sandbox):
    with meteo(sandbox) as client:
        resp = client.get("/v1/forecast", params=PARAMS)
        data = resp.json()
    assert resp.status == 200 and resp.attempts == 1 and resp.elapsed > 0
    assert data["hourly_units"]["temperature_2m"] == "°C"
    [record] = sandbox.requests(FORECAST)
    assert record["path"] == "/open-meteo/v1/forecast"
    assert client.metrics()["requests_sent"] == 1 and client.metrics()["bytes_received"] == len(
        resp.content
    )


def test_text_bytes_and_post_json(sandbox):
    with meteo(sandbox) as client:
        assert client.get_text("v1/forecast", params=PARAMS).startswith("{")
        assert client.get_bytes("v1/forecast", params=PARAMS).startswith(b"{")
    with llm(sandbox) as client:
        data = client.post_json("/chat/completions", CHAT_BODY)
    assert data["object"] == "chat.completion"


# ---- retries ---------------------------------------------------------------------------


def test_5xx_twice_then_success_on_third_call(sandbox):
    sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[500, 502])
    with meteo(sandbox) as client:
        resp = client.get("/v1/forecast", params=PARAMS)
        metrics = client.metrics()
    assert resp.status == 200 and resp.attempts == 3
    assert sandbox.request_count(FORECAST) == 3
    assert metrics["retries"] == 2 and metrics["server_errors"] == 2


def test_5xx_until_attempts_run_out_gives_server_error(sandbox):
    sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[503, 503, 503])
    with meteo(sandbox) as client, pytest.raises(ServerError) as info:
        client.get_json("/v1/forecast", params=PARAMS)
    err = info.value
    assert err.status == 503 and err.attempts == 3
    assert "\n" not in str(err) and "after 3 attempts" in str(err)
    assert sandbox.request_count(FORECAST) == 3


@pytest.mark.parametrize("http_date", [False, True], ids=["delta-seconds", "http-date"])
def test_429_retry_after_is_waited_out(sandbox, http_date):
    sandbox.faults.add(
        route=FORECAST, kind="rate_limit", retry_after=1, http_date=http_date, times=1
    )
    started = time.monotonic()
    with meteo(sandbox) as client:
        resp = client.get("/v1/forecast", params=PARAMS)
        metrics = client.metrics()
    waited = time.monotonic() - started
    assert resp.status == 200 and resp.attempts == 2
    assert 0.9 <= waited < 3.0
    assert sandbox.request_count(FORECAST) == 2
    assert metrics["throttled"] == 1 and metrics["retries"] == 1
    first = sandbox.requests(FORECAST)[0]
    assert first["status"] == 429 and first["faults"] == ["rate_limit"]


def test_retry_after_beyond_cap_gives_rate_limited_at_once(sandbox):
    sandbox.faults.add(route=FORECAST, kind="rate_limit", retry_after=120)
    started = time.monotonic()
    with (
        meteo(sandbox, HttpPolicy(max_retry_after=5)) as client,
        pytest.raises(RateLimited) as info,
    ):
        client.get_json("/v1/forecast", params=PARAMS)
    assert time.monotonic() - started < 1
    assert info.value.retry_after == pytest.approx(120, abs=1)
    assert info.value.status == 429
    assert sandbox.request_count(FORECAST) == 1


def test_persistent_429_gives_rate_limited_after_attempts(sandbox):
    sandbox.faults.add(route=FORECAST, kind="rate_limit", retry_after=0)
    with meteo(sandbox) as client, pytest.raises(RateLimited) as info:
        client.get_json("/v1/forecast", params=PARAMS)
    assert info.value.attempts == 3
    assert sandbox.request_count(FORECAST) == 3


def test_retry_wait_past_deadline_gives_up_with_the_real_error(sandbox):
    sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[503, 503], retry_after=3)
    started = time.monotonic()
    with meteo(sandbox, HttpPolicy(deadline=1)) as client, pytest.raises(ServerError):
        client.get_json("/v1/forecast", params=PARAMS)
    assert time.monotonic() - started < 0.8
    assert sandbox.request_count(FORECAST) == 1


def test_post_is_not_retried_on_5xx_by_default(sandbox):
    sandbox.faults.add(route=CHAT, kind="status_sequence", statuses=[500, 500])
    with llm(sandbox) as client, pytest.raises(ServerError) as info:
        client.post_json("/chat/completions", CHAT_BODY)
    assert info.value.status == 500 and info.value.attempts == 1
    assert sandbox.request_count(CHAT) == 1


def test_post_marked_idempotent_is_retried_on_5xx(sandbox):
    sandbox.faults.add(route=CHAT, kind="status_sequence", statuses=[500, 500])
    with llm(sandbox) as client:
        data = client.post_json("/chat/completions", CHAT_BODY, idempotent=True)
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert sandbox.request_count(CHAT) == 3


def test_post_is_retried_on_429(sandbox):
    sandbox.faults.add(route=CHAT, kind="rate_limit", retry_after=0, times=1)
    with llm(sandbox) as client:
        client.post_json("/chat/completions", CHAT_BODY)
    assert sandbox.request_count(CHAT) == 2


def test_client_error_is_not_retried_and_keeps_the_body(sandbox):
    with meteo(sandbox) as client, pytest.raises(ClientError) as info:
        client.get_json("/v1/forecast", params={"latitude": "100", "longitude": "13"})
    err = info.value
    assert err.status == 400 and err.attempts == 1
    assert err.error_json == {
        "error": True,
        "reason": "Latitude must be in range of -90 to 90°. Given: 100.0.",
    }
    assert "Latitude must be in range" in err.message and "Latitude must be" in err.body_excerpt
    assert sandbox.request_count(FORECAST) == 1


# ---- bodies: malformed, truncated, too large, slow ----------------------------------------


def test_malformed_body_gives_malformed_response(sandbox):
    sandbox.faults.add(route=FORECAST, kind="malformed_body")
    with meteo(sandbox) as client, pytest.raises(MalformedResponse) as info:
        client.get_json("/v1/forecast", params=PARAMS)
    assert info.value.status == 200 and "not valid JSON" in info.value.message
    assert sandbox.request_count(FORECAST) == 1


def test_html_when_json_expected_is_malformed(sandbox):
    sandbox.faults.add(
        route=FORECAST,
        kind="malformed_body",
        body="<html><body>Gateway</body></html>",
        content_type="text/html",
    )
    with (
        meteo(sandbox) as client,
        pytest.raises(MalformedResponse, match="expected JSON, got text/html"),
    ):
        client.get_json("/v1/forecast", params=PARAMS)


def test_connection_closed_mid_body_is_retried_then_malformed(sandbox):
    sandbox.faults.add(route=FORECAST, kind="truncated_body", mode="connection")
    with meteo(sandbox) as client, pytest.raises(MalformedResponse, match="truncated body"):
        client.get_json("/v1/forecast", params=PARAMS)
    assert sandbox.request_count(FORECAST) == 3  # a GET is safe to repeat
    sandbox.reset()
    sandbox.faults.add(route=FORECAST, kind="truncated_body", mode="connection", times=1)
    with meteo(sandbox) as client:
        assert client.get_json("/v1/forecast", params=PARAMS)["latitude"] == 52.52
    assert sandbox.request_count(FORECAST) == 2


def test_cut_json_is_malformed(sandbox):
    sandbox.faults.add(route=FORECAST, kind="truncated_body", mode="json", fraction=0.5)
    with meteo(sandbox) as client, pytest.raises(MalformedResponse):
        client.get_json("/v1/forecast", params=PARAMS)


def test_oversized_streamed_body_stops_at_the_cap(sandbox):
    sandbox.faults.add(route=FORECAST, kind="oversized_body", megabytes=50)
    cap = 1024 * 1024
    tracemalloc.start()
    started = time.monotonic()
    try:
        with (
            meteo(sandbox, HttpPolicy(max_bytes=cap)) as client,
            pytest.raises(ResponseTooLarge) as info,
        ):
            client.get_json("/v1/forecast", params=PARAMS)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = info.value
    assert elapsed < 3
    assert err.limit == cap and cap < err.received <= cap + 256 * 1024
    assert peak < 8 * cap  # bounded: nowhere near the 50 MB on offer
    assert sandbox.request_count(FORECAST) == 1


def test_declared_oversized_body_is_refused_before_reading(sandbox):
    sandbox.faults.add(route=FORECAST, kind="oversized_body", megabytes=50, declare_length=True)
    with (
        meteo(sandbox, HttpPolicy(max_bytes=1024 * 1024)) as client,
        pytest.raises(ResponseTooLarge) as info,
    ):
        client.get_json("/v1/forecast", params=PARAMS)
    assert info.value.received == 0 and "Content-Length" in info.value.message


def test_slow_drip_body_ends_at_the_deadline(sandbox):
    # A byte every 2 s never trips the 5 s read timeout; the total deadline must, at 1.5 s
    # (checking only between chunks would end at 2 s).
    sandbox.faults.add(route=FORECAST, kind="slow_drip", chunk_bytes=1, interval=2.0)
    started = time.monotonic()
    with (
        meteo(sandbox, HttpPolicy(deadline=1.5, read_timeout=5)) as client,
        pytest.raises(DeadlineExceeded) as info,
    ):
        client.get_json("/v1/forecast", params=PARAMS)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 1.95
    assert "while reading the body" in info.value.message


def test_read_timeout_gives_deadline_exceeded(sandbox):
    sandbox.faults.add(route=FORECAST, kind="read_timeout", seconds=10)
    policy = HttpPolicy(read_timeout=0.3, deadline=1.0, backoff_base=0.02, backoff_jitter=0.01)
    started = time.monotonic()
    with meteo(sandbox, policy) as client, pytest.raises(DeadlineExceeded):
        client.get_json("/v1/forecast", params=PARAMS)
    assert time.monotonic() - started < 1.5
    assert sandbox.request_count(FORECAST) >= 2  # a GET is retried while the deadline allows


def test_latency_within_timeouts_is_fine(sandbox):
    sandbox.faults.add(route=FORECAST, kind="latency", ms=150)
    with meteo(sandbox) as client:
        resp = client.get("/v1/forecast", params=PARAMS)
    assert resp.elapsed >= 0.15


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_gives_connect_failed():
    port = _closed_port()
    started = time.monotonic()
    with (
        ApiClient(f"http://127.0.0.1:{port}/open-meteo", policy=FAST, name="closed") as client,
        pytest.raises(ConnectFailed) as info,
    ):
        client.get_json("/v1/forecast")
    assert time.monotonic() - started < 2
    assert info.value.status is None and info.value.attempts == 3
    assert client.metrics()["requests_sent"] == 6  # 3 attempts x (1 + connect_retries)


# ---- rate limiting ---------------------------------------------------------------------------


def test_rate_limiter_spaces_requests(sandbox):
    with meteo(sandbox, HttpPolicy(requests_per_second=10)) as client:
        started = time.monotonic()
        for _ in range(6):
            client.get("/v1/forecast", params=PARAMS)
        elapsed = time.monotonic() - started
        metrics = client.metrics()
    assert elapsed >= 0.45
    assert metrics["rate_limit_waits"] >= 5 and metrics["rate_limit_wait_seconds"] > 0.3
    stamps = [r["started_at"] for r in sandbox.requests(FORECAST)]
    assert min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) >= 0.07


def test_rate_limiter_is_shared_by_threads(sandbox):
    errors: list[BaseException] = []
    with meteo(sandbox, HttpPolicy(requests_per_second=20)) as client:

        def work():
            try:
                for _ in range(4):
                    client.get("/v1/forecast", params=PARAMS)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(3)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    assert not errors
    assert elapsed >= 0.5  # 12 requests at 20/s: 11 intervals of 50 ms
    assert sandbox.request_count(FORECAST) == 12


def test_token_bucket_burst():
    bucket = TokenBucket(rate=10, capacity=3)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1, abs=0.02)


# ---- secrets ---------------------------------------------------------------------------------


SECRET_KEY = "sk-live-5ecret-Key-998877"
SECRET_TOKEN = "EAAB-page-access-token-123456"
SECRET_PARAM = "q-api-key-abcdef"


def _assert_clean(err: HttpError) -> None:
    rendered = " ".join(
        [str(err), repr(err), err.url, err.message, err.body_excerpt or "", str(err.error_json)]
    )
    for secret in (SECRET_KEY, SECRET_TOKEN, SECRET_PARAM):
        assert secret not in rendered


def test_secrets_never_appear_in_errors(sandbox):
    sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[500, 500, 500])
    params = dict(PARAMS, api_key=SECRET_PARAM, access_token=SECRET_TOKEN)
    with meteo(sandbox, headers={"Authorization": f"Bearer {SECRET_KEY}"}) as client:
        with pytest.raises(ServerError) as info:
            client.get_json("/v1/forecast", params=params)
        err = info.value
        _assert_clean(err)
        assert "api_key=REDACTED" in err.url and "access_token=REDACTED" in err.url
        assert "latitude=52.52" in err.url

        # A server that echoes the credentials back in its error body.
        echo = {"error": {"message": f"bad token {SECRET_TOKEN} for key {SECRET_KEY}"}}
        sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[401], body=echo)
        with pytest.raises(ClientError) as info:
            client.get_json("/v1/forecast", params=params)
        _assert_clean(info.value)
        assert "REDACTED" in info.value.message

    # Connection failures too.
    with ApiClient(
        f"http://127.0.0.1:{_closed_port()}/x",
        policy=FAST,
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    ) as closed:
        with pytest.raises(ConnectFailed) as info:
            closed.get_json(f"/path?access_token={SECRET_TOKEN}")
        _assert_clean(info.value)
    # The sandbox's own log redacts them as well.
    assert all(SECRET_TOKEN not in r["query"] for r in sandbox.requests())


def test_redact_url():
    url = "https://user:pw@graph.example.com/v21.0/me?fields=id,name&access_token=abc&appsecret_proof=x&q=coffee#frag"
    assert (
        redact_url(url)
        == "https://graph.example.com/v21.0/me?fields=id,name&access_token=REDACTED&appsecret_proof=REDACTED&q=coffee#frag"
    )
    assert redact_url("http://h/p") == "http://h/p"


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after("7") == 7
    assert parse_retry_after(
        email.utils.formatdate(now + 30, usegmt=True), now=now
    ) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# ---- the types themselves ------------------------------------------------------------------------


def test_policy_is_frozen_and_validated():
    policy = HttpPolicy(retry_on_status=[429, 503])
    assert policy.retry_on_status == frozenset({429, 503})
    with pytest.raises(AttributeError):
        policy.deadline = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        HttpPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        HttpPolicy(requests_per_second=0)


def test_one_policy_class_for_both_clients():
    fetch = FetchPolicy(allowed_hosts=[("LOCALHOST", "8765"), ("[::1]", 80)])
    assert isinstance(fetch, HttpPolicy)
    # The fetcher's defaults; everything else as for the API client.
    assert (fetch.deadline, fetch.read_timeout) == (20.0, 10.0) and "monitor" in fetch.user_agent
    assert (HttpPolicy().deadline, HttpPolicy().read_timeout) == (30.0, 15.0)
    assert fetch.max_bytes == HttpPolicy().max_bytes and fetch.max_redirects == 5
    assert fetch.allowed_hosts == {("localhost", 8765), ("::1", 80)}
    assert HttpPolicy(read_timeout=3).effective_write_timeout == 3
    assert HttpPolicy(read_timeout=3, write_timeout=1).effective_write_timeout == 1
    with pytest.raises(ValueError, match=r"FetchPolicy\.max_redirects must be >= 0"):
        FetchPolicy(max_redirects=-1)
    with pytest.raises(ValueError, match="HttpPolicy concurrency limits"):
        HttpPolicy(per_host_concurrency=0)
    with pytest.raises(ValueError, match=r"FetchPolicy\.max_attempts"):
        FetchPolicy(max_attempts=0)


def test_api_client_follows_at_most_max_redirects(sandbox):
    page = sandbox.url("/sites/comp-r/pricing")
    once = sandbox.url(f"/sites/_special/redirect?to={quote(page, safe='')}")
    twice = sandbox.url(f"/sites/_special/redirect?to={quote(once, safe='')}")
    with ApiClient(sandbox.base_url, policy=HttpPolicy(max_redirects=1), name="sites") as c:
        assert c.get(once).status == 200
        with pytest.raises(ClientError, match="too many redirects"):
            c.get(twice)


def test_errors_pickle_and_stay_one_line():
    err = RateLimited(
        "rate limited\nsecond line",
        url="http://h/p",
        status=429,
        method="GET",
        client="c",
        attempts=2,
        retry_after=3.0,
    )
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimited and clone.retry_after == 3.0 and str(clone) == str(err)
    assert "\n" not in str(err) and isinstance(err, HttpError)
