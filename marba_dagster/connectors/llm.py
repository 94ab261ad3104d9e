"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``).

Built on :class:`~marba_dagster.connectors.http.ApiClient` (one attempt per request there;
the attempts are made here so that every thread shares what the server said):

* **Limits.** A client-side sliding window of ``rpm`` requests and ``tpm`` tokens per
  ``window_seconds`` (the way OpenAI and the sandbox count), shared by every thread. A
  request reserves its estimated tokens; the reservation is corrected to the usage the
  server reports.
* **429.** ``Retry-After`` (or ``retry-after-ms``) pauses *every* thread until then, not
  only the one that was refused, so a burst does not turn into a storm of 429s.
* **Attempts.** At most ``max_attempts`` (3) per call: 429, 5xx, timeouts and connection
  failures are retried with exponential backoff and jitter (or the server's Retry-After);
  a 4xx other than 429 is never retried.
* **Usage.** ``usage.prompt_tokens`` / ``completion_tokens`` from the answer, for billing.

The API key is sent as a Bearer token and never appears in errors or logs (ApiClient scrubs
it). Refusals (``message.refusal``) are returned, not raised: the caller decides.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .http import (
    ApiClient,
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    HttpPolicy,
    MalformedResponse,
    RateLimited,
    ServerError,
)

__all__ = ["ChatResult", "LlmClient", "LlmLimits", "SlidingWindowLimiter", "estimate_tokens"]

RETRYABLE = (RateLimited, ServerError, DeadlineExceeded, ConnectFailed)


def estimate_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Prompt tokens, estimated like OpenAI's accounting (about 4 characters a token)."""
    total = 3
    for m in messages:
        total += (
            4
            + math.ceil(len(str(m.get("role", ""))) / 4)
            + math.ceil(len(str(m.get("content") or "")) / 4)
        )
    return total


@dataclass(frozen=True)
class ChatResult:
    content: str | None
    refusal: str | None
    finish_reason: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    usage_reported: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class LlmLimits:
    rpm: int | None = None
    tpm: int | None = None
    window_seconds: float = 60.0
    # Requests are spaced by this fraction of the window more than the server needs, so the
    # client's clock and the server's never disagree into a 429.
    safety: float = 0.02
    # ... and by at least this many seconds: the jitter between when a request is reserved
    # here and when the server counts it.
    min_margin: float = 0.15


class _Reservation:
    __slots__ = ("at", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at, self.tokens = at, tokens


@dataclass
class SlidingWindowLimiter:
    """At most ``rpm`` requests and ``tpm`` tokens in any ``window_seconds``; thread-safe."""

    limits: LlmLimits
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _events: deque = field(default_factory=deque)
    _lock: threading.Condition = field(
        default_factory=lambda: threading.Condition(threading.Lock())
    )
    _paused_until: float = 0.0
    waited_seconds: float = 0.0

    @property
    def _window(self) -> float:
        w = self.limits.window_seconds
        return w + max(w * self.limits.safety, self.limits.min_margin)

    def _trim(self, now: float) -> None:
        while self._events and self._events[0].at <= now - self._window:
            self._events.popleft()

    def _wait_needed(self, now: float, tokens: int) -> float:
        waits = [self._paused_until - now]
        rpm, tpm = self.limits.rpm, self.limits.tpm
        if rpm is not None and len(self._events) >= rpm:
            waits.append(self._events[len(self._events) - rpm].at + self._window - now)
        if tpm is not None:
            used = sum(e.tokens for e in self._events)
            if used + tokens > tpm and self._events:
                # Wait until enough of the oldest reservations have left the window.
                excess = used + tokens - tpm
                freed = 0
                for e in self._events:
                    freed += e.tokens
                    if freed >= excess:
                        waits.append(e.at + self._window - now)
                        break
        return max(waits)

    def acquire(self, tokens: int, deadline: float | None = None) -> _Reservation:
        """Block until a request of ``tokens`` fits; DeadlineExceeded if it will not in time."""
        tpm = self.limits.tpm
        if tpm is not None and tokens > tpm:
            raise ValueError(
                f"a request of {tokens} tokens can never fit a {tpm} tokens-per-window limit"
            )
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                self._trim(now)
                wait = self._wait_needed(now, tokens)
                if wait <= 0:
                    res = _Reservation(now, tokens)
                    self._events.append(res)
                    self.waited_seconds += waited
                    return res
                if deadline is not None and now + wait > deadline:
                    raise DeadlineExceeded(
                        f"rate limit wait of {wait:.2f}s would pass the deadline", client="llm"
                    )
                self._lock.wait(timeout=wait)
                waited += self.clock() - now

    def settle(self, res: _Reservation, actual_tokens: int) -> None:
        """Correct a reservation to the tokens the server counted."""
        with self._lock:
            res.tokens = int(actual_tokens)
            self._lock.notify_all()

    def pause(self, seconds: float) -> None:
        """The server said wait: nobody sends before then."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)


class LlmClient:
    """Chat completions against one OpenAI-compatible API root, shared by many threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        limits: LlmLimits | None = None,
        max_attempts: int = 3,
        request_timeout: float = 30.0,
        deadline: float = 60.0,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
    ) -> None:
        if not base_url or not api_key or not model:
            raise ValueError("LlmClient needs a base URL, an API key and a model")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.model = model
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.max_retry_after = max_retry_after
        self.limiter = SlidingWindowLimiter(limits or LlmLimits())
        policy = HttpPolicy(
            connect_timeout=min(5.0, request_timeout),
            read_timeout=request_timeout,
            deadline=max(request_timeout, 1.0) + 5.0,
            max_attempts=1,
            connect_retries=1,
            max_bytes=2 * 1024 * 1024,
            max_retry_after=max_retry_after,
        )
        self._api = ApiClient(
            base_url, policy=policy, headers={"Authorization": f"Bearer {api_key}"}, name="llm"
        )
        self._request_timeout = request_timeout
        self._lock = threading.Lock()
        self._completion_estimate = 200.0
        self.counters = {"calls": 0, "attempts": 0, "rate_limited": 0, "retries": 0, "failures": 0}

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> LlmClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def _backoff(self, attempt: int) -> float:
        return min(
            self.backoff_max,
            self.backoff_base * 2 ** (attempt - 1) + random.uniform(0, self.backoff_base),
        )

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int = 700,
        temperature: float = 0.2,
        json_mode: bool = True,
    ) -> ChatResult:
        """One chat completion with up to ``max_attempts`` attempts; HttpError when it fails."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        prompt_est = estimate_tokens(messages)
        with self._lock:
            completion_est = int(min(max_tokens, self._completion_estimate))
        reserve = prompt_est + completion_est
        deadline = time.monotonic() + self.deadline
        self._count("calls")
        attempt = 0
        while True:
            attempt += 1
            self._count("attempts")
            slot = self.limiter.acquire(reserve, deadline=deadline)
            try:
                resp = self._api.request(
                    "POST",
                    "chat/completions",
                    json=body,
                    headers={"Accept": "application/json"},
                    idempotent=True,
                    deadline=min(
                        self._request_timeout + 5.0, max(0.1, deadline - time.monotonic())
                    ),
                )
                doc = resp.json()
            except HttpError as err:
                err.attempts = attempt
                if isinstance(err, RateLimited):
                    self._count("rate_limited")
                    wait = (
                        err.retry_after if err.retry_after is not None else self._backoff(attempt)
                    )
                    if wait > self.max_retry_after:
                        self._count("failures")
                        raise
                    self.limiter.pause(wait)
                    # A refused request consumed nothing on the server.
                    self.limiter.settle(slot, 0)
                    delay = 0.0  # the shared pause does the waiting
                else:
                    delay = (
                        err.retry_after if err.retry_after is not None else self._backoff(attempt)
                    )
                    if isinstance(err, (ClientError, MalformedResponse)):
                        self.limiter.settle(
                            slot, 0 if isinstance(err, ClientError) else slot.tokens
                        )
                        self._count("failures")
                        raise
                retry = isinstance(err, RETRYABLE) and attempt < self.max_attempts
                if not retry or time.monotonic() + delay >= deadline:
                    self._count("failures")
                    raise
                self._count("retries")
                if delay > 0:
                    time.sleep(delay)
                continue
            result = self._parse(doc, attempt, prompt_est)
            self.limiter.settle(slot, result.total_tokens)
            with self._lock:
                self._completion_estimate = (
                    0.8 * self._completion_estimate + 0.2 * result.completion_tokens
                )
            return result

    def _parse(self, doc: Any, attempts: int, prompt_est: int) -> ChatResult:
        def bad(msg: str) -> MalformedResponse:
            return MalformedResponse(
                f"chat completion answer {msg}", client="llm", status=200, attempts=attempts
            )

        if not isinstance(doc, dict):
            raise bad("is not a JSON object")
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad("has no message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise bad("content is not a string")
        refusal = message.get("refusal")
        usage = doc.get("usage")
        reported = (
            isinstance(usage, dict)
            and isinstance(usage.get("prompt_tokens"), int)
            and isinstance(usage.get("completion_tokens"), int)
        )
        if reported:
            p, c = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        else:  # an API that does not report usage: estimate, and say so
            p, c = prompt_est, math.ceil(len(content or refusal or "") / 4)
        return ChatResult(
            content=content,
            refusal=refusal if isinstance(refusal, str) and refusal else None,
            finish_reason=choices[0].get("finish_reason"),
            model=str(doc.get("model") or self.model),
            prompt_tokens=p,
            completion_tokens=c,
            attempts=attempts,
            usage_reported=reported,
        )

    def chat_many(
        self, jobs: Sequence[Callable[[LlmClient], Any]], concurrency: int = 8
    ) -> list[Any]:
        """Run ``job(self)`` for each job on ``concurrency`` threads; results (or the
        exception each raised) in order. The limits hold across all of them."""
        if not jobs:
            return []

        def run(job):
            try:
                return job(self)
            except Exception as exc:  # returned, not raised: one call's failure is its own
                return exc

        with ThreadPoolExecutor(
            max_workers=max(1, min(concurrency, len(jobs))), thread_name_prefix="llm"
        ) as pool:
            return list(pool.map(run, jobs))
