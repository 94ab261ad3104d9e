"""The chat completions client against the sandbox model: limits, Retry-After, no 4xx retry."""

from __future__ import annotations

import pytest

from marba_dagster.connectors.http import ClientError, ServerError
from marba_dagster.connectors.llm import LlmClient, LlmLimits

MESSAGES = [
    {"role": "system", "content": "Answer in JSON."},
    {"role": "user", "content": '{"brand": "Cafe", "engagement_rate": 0.03}'},
]


def client(sandbox, **kw) -> LlmClient:
    return LlmClient(
        sandbox.url("/llm/v1"), "sandbox-key", "sandbox-model", request_timeout=5.0, **kw
    )


def test_usage_comes_from_the_answer(sandbox):
    with client(sandbox) as c:
        res = c.chat(MESSAGES)
    stats = sandbox.state.llm.stats()
    assert (res.prompt_tokens, res.completion_tokens) == (
        stats["prompt_tokens"],
        stats["completion_tokens"],
    )
    assert res.usage_reported and res.content.startswith("{")


def test_concurrent_calls_stay_within_the_server_rate_limit(sandbox):
    # The client is configured a little under the provider's limit, as operators should:
    # a loaded machine delays some requests between reservation and arrival, and the
    # headroom keeps that jitter from ever adding up to a 429.
    sandbox.state.llm.configure(rpm_limit=10, window_seconds=1.0)
    with client(sandbox, limits=LlmLimits(rpm=8, window_seconds=1.0)) as c:
        results = c.chat_many([lambda cl: cl.chat(MESSAGES)] * 24, concurrency=8)
    assert all(not isinstance(r, Exception) for r in results)
    assert (
        sandbox.state.llm.stats()["rate_limited"] == 0 and sandbox.state.llm.stats()["calls"] == 24
    )


def test_429_retry_after_pauses_and_retries(sandbox):
    sandbox.faults.add("llm.chat_completions", "status_sequence", statuses=[429], retry_after=1)
    with client(sandbox) as c:
        res = c.chat(MESSAGES)
    assert res.attempts == 2 and sandbox.request_count("llm.chat_completions") == 2
    assert c.counters["rate_limited"] == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_never_retried(sandbox, status):
    sandbox.faults.add("llm.chat_completions", "status_sequence", statuses=[status, status, status])
    with client(sandbox) as c, pytest.raises(ClientError) as err:
        c.chat(MESSAGES)
    assert sandbox.request_count("llm.chat_completions") == 1
    assert "sandbox-key" not in str(err.value)


def test_at_most_three_attempts_on_5xx(sandbox):
    sandbox.faults.add("llm.chat_completions", "status_sequence", statuses=[503, 503, 503, 503])
    with client(sandbox, backoff_base=0.05) as c, pytest.raises(ServerError):
        c.chat(MESSAGES)
    assert sandbox.request_count("llm.chat_completions") == 3


def test_a_wrong_key_is_a_client_error_without_the_key(sandbox):
    with (
        LlmClient(sandbox.url("/llm/v1"), "wrong-secret-key", "sandbox-model") as c,
        pytest.raises(ClientError) as err,
    ):
        c.chat(MESSAGES)
    assert "wrong-secret-key" not in str(err.value) and err.value.status == 401
