"""One HTTP client for every outside API: bounded in time, size and rate, with clear errors.

Every connector (weather, trends, news, platforms, LLM) talks HTTP through :class:`ApiClient`
so that the same guarantees hold everywhere:

* **Time.** ``HttpPolicy.deadline`` bounds the whole call: connecting, every attempt, the
  waits between attempts, the response headers and the body. A server that drips one byte
  every half second, in its headers or its body, is cut off at the deadline by a watchdog
  that shuts the socket (``deadline.watching``), because per-read timeouts alone never fire
  while bytes keep trickling in.
* **Size.** Bodies are streamed and reading stops as soon as ``max_bytes`` is passed (a
  declared ``Content-Length`` over the cap is refused before reading anything), so memory
  stays bounded whatever the server sends. The cap counts decoded bytes, and gzip/deflate
  bodies are inflated at most up to the cap (``decoding.BoundedDecoder``), so a small
  compressed "bomb" stays bounded too.
* **Retries.** Attempts are made with tenacity: 429 and 5xx (``retry_on_status``) are retried
  with exponential backoff and jitter, or after the server's ``Retry-After`` (delta-seconds
  or HTTP-date) when it sends one. Requests that may have reached the server are re-sent only
  when the method is idempotent: a POST is retried on 429 (the server refused it) and on
  connection failures (nothing was sent), never on 5xx or a lost response, unless
  ``retry_unsafe`` (or ``idempotent=True`` on the call) says repeating it is harmless.
* **Rate.** An optional token bucket (``requests_per_second``) spaces attempts; it is shared
  by every thread using the client.
* **Errors.** One exception class per failure, all :class:`HttpError`, each with a one-line
  message, the URL with secrets redacted and the status when known. Authorization headers,
  API keys and tokens never appear in messages, URLs or body excerpts.

Counters (:meth:`ApiClient.metrics`) are meant to be reported as Dagster metadata.

The parts shared with :mod:`~marba_dagster.connectors.safe_fetch` live beside this module:
``errors`` (the HttpError family), ``policy`` (HttpPolicy), ``decoding`` (the bounded
gzip/deflate decoder), ``redaction`` and ``ratelimit`` (TokenBucket, Retry-After). Import
them from here or from there.
"""

from __future__ import annotations

import json as _json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from .deadline import GuardedBackend, deadline_fired, watching
from .decoding import BoundedDecoder, DecodingFailed, UnsupportedEncoding
from .errors import (
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
    RateLimited,
    ResponseTooLarge,
    ServerError,
)
from .policy import HttpPolicy
from .ratelimit import TokenBucket, parse_retry_after
from .redaction import excerpt, redact_url, remember, scrub, secrets_of

# The names connectors and callers import from here (the client and what it raises).
__all__ = [
    "ApiClient",
    "ApiResponse",
    "ClientError",
    "ConnectFailed",
    "DeadlineExceeded",
    "HttpError",
    "HttpPolicy",
    "MalformedResponse",
    "RateLimited",
    "ResponseTooLarge",
    "ServerError",
    "TokenBucket",
    "parse_retry_after",
    "redact_url",
]

log = logging.getLogger(__name__)

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Error bodies are only read for an excerpt; no reason to hold more of them.
_ERROR_BODY_CAP = 64 * 1024

# --------------------------------------------------------------------------------------
# Response


@dataclass
class ApiResponse:
    """A complete response: the body is fully read (and within ``max_bytes``)."""

    status: int
    headers: httpx.Headers
    content: bytes
    url: str  # redacted
    method: str = "GET"
    attempts: int = 1
    elapsed: float = 0.0
    encoding: str | None = None
    client: str = ""

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # unknown charset name from the server
            return self.content.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; MalformedResponse if it is not JSON."""
        ctype = self.content_type
        if "html" in ctype or ctype.startswith("image/"):
            raise self._malformed(f"expected JSON, got {ctype}")
        if not self.content.strip():
            raise self._malformed("expected JSON, got an empty body")
        try:
            return _json.loads(self.content.decode(self.encoding or "utf-8-sig"))
        except (UnicodeDecodeError, LookupError) as exc:
            raise self._malformed(f"body is not valid text: {exc}") from None
        except ValueError as exc:
            where = getattr(exc, "pos", "?")
            raise self._malformed(
                f"body is not valid JSON ({exc.__class__.__name__} at char {where})"
            ) from None

    def _malformed(self, message: str) -> MalformedResponse:
        return MalformedResponse(
            message,
            url=self.url,
            status=self.status,
            method=self.method,
            client=self.client,
            attempts=self.attempts,
            body_excerpt=excerpt(self.content),
        )


def _error_message_from_json(data: Any) -> str | None:
    """The human message from common API error shapes (OpenAI/Graph, Open-Meteo, X, RFC 7807)."""
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict):
        msg = err.get("message") or err.get("error_user_msg") or err.get("code")
        if msg:
            return str(msg)
    if isinstance(data.get("reason"), str):
        return data["reason"]
    if isinstance(err, str):
        return err
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        msg = errors[0].get("message") or errors[0].get("detail")
        if msg:
            return str(msg)
    for key in ("detail", "title", "message", "error_description"):
        if isinstance(data.get(key), str):
            return data[key]
    return None


# --------------------------------------------------------------------------------------
# Client


@dataclass
class _Call:
    """Per-call context shared by the attempts."""

    method: str
    url: str
    redacted_url: str
    params: Any
    json: Any
    data: Any
    content: Any
    headers: dict[str, str]
    deadline: float  # monotonic
    started: float
    idempotent: bool
    secrets: tuple[str, ...]
    attempts: int = 0
    _delay_for: tuple[int, float] | None = field(default=None, repr=False)


class ApiClient:
    """A client for one API root. Thread-safe; share one per API and close it when done.

    ``base_url`` may carry a path prefix (``http://127.0.0.1:8123/open-meteo``); paths given
    to :meth:`request` are appended to it. Absolute URLs (pagination links) are used as is.
    """

    def __init__(
        self,
        base_url: str,
        policy: HttpPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "api",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or HttpPolicy()
        self.name = name
        self._headers = {"User-Agent": self.policy.user_agent}
        self._headers.update(headers or {})
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=self.policy.follow_redirects,
            max_redirects=self.policy.max_redirects,
            verify=self.policy.verify_tls,
            headers=self._headers,
        )
        if transport is None:
            _guard_transports(self._client)
        self._bucket = (
            TokenBucket(self.policy.requests_per_second, self.policy.burst)
            if self.policy.requests_per_second
            else None
        )
        self._lock = threading.Lock()
        self._counters: dict[str, float] = {
            "requests_sent": 0,
            "retries": 0,
            "rate_limit_waits": 0,
            "rate_limit_wait_seconds": 0.0,
            "throttled": 0,
            "server_errors": 0,
            "failures": 0,
            "bytes_received": 0,
        }
        self._closed = False
        # The rate-limit failures raised (bounded): a step decides its retry from them.
        self._rate_limited: list[RateLimited] = []

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ApiClient(name={self.name!r}, base_url={redact_url(self.base_url)!r})"

    # -- counters ----------------------------------------------------------------------

    def _count(self, key: str, n: float = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def metrics(self) -> dict[str, float]:
        """A snapshot of the counters (requests sent, retries, rate-limit waits, ...)."""
        with self._lock:
            snap = dict(self._counters)
        snap["rate_limit_wait_seconds"] = round(snap["rate_limit_wait_seconds"], 3)
        return snap

    def note_rate_limited(self, err: RateLimited) -> None:
        """Record a rate-limit failure: raised here, or read from an answer by a connector
        (Graph's throttling codes come with HTTP 400/403)."""
        with self._lock:
            if len(self._rate_limited) < 100:
                self._rate_limited.append(err)

    def rate_limited(self) -> list[RateLimited]:
        """The rate-limit failures this client raised (429 after retries, or a Retry-After
        longer than it would wait), oldest first; each has the server's ``retry_after``."""
        with self._lock:
            return list(self._rate_limited)

    # -- public calls ------------------------------------------------------------------

    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path:
            return self.base_url
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        deadline: float | None = None,
    ) -> ApiResponse:
        """Send a request with retries; return the complete response for 2xx/3xx.

        Raises a :class:`HttpError` subclass for every failure. ``idempotent`` overrides
        the method's default (POST/PATCH are not) for the retry decision; ``deadline``
        overrides the policy's for this call.
        """
        if self._closed:
            raise RuntimeError(f"ApiClient {self.name!r} is closed")
        method = method.upper()
        url = self.url_for(path)
        clean_params = None
        if params is not None:
            clean_params = {k: v for k, v in params.items() if v is not None}
        merged_headers = dict(headers or {})
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS or self.policy.retry_unsafe
        started = time.monotonic()
        total = self.policy.deadline if deadline is None else deadline
        secrets = self._secrets(url, clean_params, merged_headers, data, json)
        redacted = redact_url(
            httpx.URL(url).copy_merge_params(clean_params) if clean_params else url
        )
        call = _Call(
            method=method,
            url=url,
            redacted_url=redacted,
            params=clean_params,
            json=json,
            data=data,
            content=content,
            headers=merged_headers,
            deadline=started + total,
            started=started,
            idempotent=idempotent,
            secrets=secrets,
        )
        retrying = tenacity.Retrying(
            stop=lambda rs: self._should_stop(call, rs),
            wait=lambda rs: self._delay(call, rs),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, HttpError) and e.retryable),
            before_sleep=lambda rs: self._before_sleep(call, rs),
            reraise=True,
            sleep=time.sleep,
        )
        try:
            response = retrying(self._attempt, call)
        except HttpError as err:
            err.attempts = call.attempts
            self._count("failures")
            if isinstance(err, RateLimited):
                self.note_rate_limited(err)
            raise
        response.elapsed = time.monotonic() - started
        return response

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> ApiResponse:
        return self.request("GET", path, params=params, headers=headers, **kw)

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> ApiResponse:
        return self.request(
            "POST", path, params=params, json=json, data=data, headers=headers, **kw
        )

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> Any:
        """GET and parse JSON (None for 204). MalformedResponse if the body is not JSON."""
        h = {"Accept": "application/json"}
        h.update(headers or {})
        resp = self.request("GET", path, params=params, headers=h, **kw)
        return None if resp.status == 204 else resp.json()

    def post_json(
        self,
        path: str,
        json: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> Any:
        """POST a JSON body and parse the JSON answer (None for 204)."""
        h = {"Accept": "application/json"}
        h.update(headers or {})
        resp = self.request("POST", path, params=params, json=json, headers=h, **kw)
        return None if resp.status == 204 else resp.json()

    def get_text(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> str:
        return self.request("GET", path, params=params, headers=headers, **kw).text

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kw,
    ) -> bytes:
        return self.request("GET", path, params=params, headers=headers, **kw).content

    # -- internals ---------------------------------------------------------------------

    def _secrets(self, call_url: str, params, headers, data, json_body) -> tuple[str, ...]:
        """Every credential value this call carries (headers, query, form and JSON body), to
        scrub from anything we report; remembered for ``redaction.redact`` too."""
        found = secrets_of(
            call_url,
            params=params,
            headers=(self._headers, headers),
            data=data,
            json_body=json_body,
        )
        remember(found)
        return found

    def _body_deadline(self, call: _Call, received: int, status: int) -> HttpError:
        """The deadline passed while the body was being read."""
        return self._error(
            DeadlineExceeded,
            call,
            f"deadline of {self.policy.deadline:g}s passed while reading the body "
            f"({received} bytes so far)",
            status=status,
        )

    def _error(self, cls: type[HttpError], call: _Call, message: str, **kw) -> HttpError:
        return cls(
            scrub(message, call.secrets),
            url=call.redacted_url,
            method=call.method,
            client=self.name,
            attempts=call.attempts,
            **kw,
        )

    def _remaining(self, call: _Call) -> float:
        return call.deadline - time.monotonic()

    def _delay(self, call: _Call, rs: tenacity.RetryCallState) -> float:
        """Seconds before the next attempt; memoised per attempt for stop() and wait()."""
        if call._delay_for and call._delay_for[0] == rs.attempt_number:
            return call._delay_for[1]
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, HttpError) and exc.retry_after is not None:
            delay = exc.retry_after
        else:
            p = self.policy
            delay = min(
                p.backoff_max,
                p.backoff_base * (2 ** (rs.attempt_number - 1))
                + random.uniform(0, p.backoff_jitter),
            )
        call._delay_for = (rs.attempt_number, delay)
        return delay

    def _should_stop(self, call: _Call, rs: tenacity.RetryCallState) -> bool:
        if rs.attempt_number >= self.policy.max_attempts:
            return True
        # Waiting past the deadline only to fail later helps nobody: give up now with the
        # error we have (RateLimited/ServerError), which says more than "deadline".
        return time.monotonic() + self._delay(call, rs) >= call.deadline

    def _before_sleep(self, call: _Call, rs: tenacity.RetryCallState) -> None:
        self._count("retries")
        exc = rs.outcome.exception() if rs.outcome else None
        log.info(
            "%s: retrying in %.2fs after attempt %d: %s",
            self.name,
            self._delay(call, rs),
            rs.attempt_number,
            exc,
        )

    def _acquire_rate(self, call: _Call) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.reserve()
        if wait <= 0:
            return
        if wait >= self._remaining(call):
            self._bucket.refund()
            raise self._error(
                DeadlineExceeded,
                call,
                f"deadline of {self.policy.deadline:g}s would pass waiting for the client "
                f"rate limit ({wait:.2f}s)",
            )
        self._count("rate_limit_waits")
        self._count("rate_limit_wait_seconds", wait)
        time.sleep(wait)

    def _timeout(self, remaining: float) -> httpx.Timeout:
        p = self.policy
        return httpx.Timeout(
            connect=min(p.connect_timeout, remaining),
            read=min(p.read_timeout, remaining),
            write=min(p.effective_write_timeout, remaining),
            pool=min(p.connect_timeout, remaining),
        )

    def _attempt(self, call: _Call) -> ApiResponse:
        call.attempts += 1
        if self._remaining(call) <= 0:
            raise self._error(
                DeadlineExceeded, call, f"deadline of {self.policy.deadline:g}s passed"
            )
        self._acquire_rate(call)
        # The watchdog covers the whole exchange: connecting, the request, the response
        # headers and the body (a server dripping its headers is cut off too).
        with watching(call.deadline):
            response = self._send(call)
            try:
                return self._handle(call, response)
            finally:
                response.close()

    def _send(self, call: _Call) -> httpx.Response:
        """Send the request; reconnect up to connect_retries times when connecting fails."""
        connect_failures = 0
        while True:
            remaining = self._remaining(call)
            if remaining <= 0:
                raise self._error(
                    DeadlineExceeded,
                    call,
                    f"deadline of {self.policy.deadline:g}s passed while connecting",
                )
            request = self._client.build_request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                data=call.data,
                content=call.content,
                headers=call.headers,
                timeout=self._timeout(remaining),
            )
            self._count("requests_sent")
            try:
                return self._send_within_deadline(call, request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the server: safe to retry whatever the method.
                connect_failures += 1
                if connect_failures <= self.policy.connect_retries and self._remaining(call) > 0:
                    time.sleep(min(0.05 * connect_failures, max(0.0, self._remaining(call))))
                    continue
                err = self._error(
                    ConnectFailed, call, f"connection failed: {type(exc).__name__}: {exc}"
                )
                err.retryable = True
                raise err from exc
            except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
                what = (
                    "no response"
                    if isinstance(exc, httpx.ReadTimeout)
                    else "could not send the request"
                )
                which = "read timeout" if self.policy.read_timeout < remaining else "deadline"
                err = self._error(
                    DeadlineExceeded,
                    call,
                    f"{what} within {min(self.policy.read_timeout, remaining):.2f}s ({which})",
                )
                err.retryable = call.idempotent
                raise err from exc
            except httpx.TooManyRedirects as exc:
                raise self._error(ClientError, call, "too many redirects") from exc
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise self._error(ConnectFailed, call, f"invalid URL: {exc}") from exc
            except httpx.TransportError as exc:
                # The connection broke after (part of) the request was sent: the server may
                # have acted on it, so only idempotent requests are repeated.
                err = self._error(
                    ServerError,
                    call,
                    f"connection lost before a response: {type(exc).__name__}: {exc}",
                )
                err.retryable = call.idempotent
                raise err from exc

    def _send_within_deadline(self, call: _Call, request: httpx.Request) -> httpx.Response:
        """Send and read the response headers; DeadlineExceeded when the watchdog cut them."""
        try:
            return self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            if not deadline_fired() and self._remaining(call) > 0:
                raise
            raise self._error(
                DeadlineExceeded,
                call,
                f"deadline of {self.policy.deadline:g}s passed before the response headers "
                f"were complete ({type(exc).__name__})",
            ) from None

    def _handle(self, call: _Call, response: httpx.Response) -> ApiResponse:
        status = response.status_code
        if status < 400 and status not in self.policy.retry_on_status:
            content = self._read_body(call, response, self.policy.max_bytes, truncate=False)
            return ApiResponse(
                status=status,
                headers=response.headers,
                content=content,
                url=call.redacted_url,
                method=call.method,
                attempts=call.attempts,
                encoding=response.charset_encoding,
                client=self.name,
            )
        # An error: read a bounded excerpt only (within the deadline), then classify.
        try:
            body = self._read_body(
                call, response, min(_ERROR_BODY_CAP, self.policy.max_bytes), truncate=True
            )
        except (MalformedResponse, DeadlineExceeded):
            body = b""
        body_excerpt = excerpt(body, call.secrets) or None
        error_json = None
        if body:
            try:
                # Parsed from the scrubbed text: an API echoing our key must not leak it here.
                error_json = _json.loads(
                    scrub(body.decode("utf-8", errors="replace"), call.secrets)
                )
            except ValueError:
                error_json = None
        detail = _error_message_from_json(error_json)
        detail = scrub(detail, call.secrets)[:200] if detail else None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and response.headers.get("retry-after-ms"):
            try:
                retry_after = max(0.0, float(response.headers["retry-after-ms"]) / 1000.0)
            except ValueError:
                retry_after = None
        reason = response.reason_phrase or ""
        kw = {"status": status, "body_excerpt": body_excerpt, "error_json": error_json}
        if status == 429:
            self._count("throttled")
            too_long = retry_after is not None and retry_after > self.policy.max_retry_after
            msg = f"rate limited (HTTP 429{', ' + detail if detail else ''})"
            if retry_after is not None:
                msg += f"; server asks to wait {retry_after:.1f}s"
                if too_long:
                    msg += f", over the {self.policy.max_retry_after:g}s we accept"
            err = self._error(RateLimited, call, msg, retry_after=retry_after, **kw)
            # A 429 means the server refused the request, so even a POST may be re-sent.
            err.retryable = 429 in self.policy.retry_on_status and not too_long
            raise err
        if status >= 500:
            self._count("server_errors")
            err = self._error(
                ServerError,
                call,
                f"server error HTTP {status} {reason}{': ' + detail if detail else ''}",
                **kw,
            )
            too_long = retry_after is not None and retry_after > self.policy.max_retry_after
            if retry_after is not None and not too_long:
                err.retry_after = retry_after
            err.retryable = (
                status in self.policy.retry_on_status and call.idempotent and not too_long
            )
            raise err
        if status >= 400:
            err = self._error(
                ClientError,
                call,
                f"client error HTTP {status} {reason}{': ' + detail if detail else ''}",
                **kw,
            )
            err.retryable = status in self.policy.retry_on_status and call.idempotent
            raise err
        # A non-error status the caller asked to retry on (unusual, but honour the policy).
        err = self._error(ServerError, call, f"unexpected HTTP {status}", **kw)
        err.retryable = call.idempotent
        raise err

    def _read_body(
        self, call: _Call, response: httpx.Response, cap: int, *, truncate: bool
    ) -> bytes:
        """Stream the body within the deadline and the size cap.

        A watchdog shuts the socket when the deadline passes, so a server that keeps
        sending a byte at a time cannot hold us past it (per-read timeouts never fire then).
        With ``truncate`` the body is cut at ``cap`` silently (used for error excerpts).
        """
        declared = response.headers.get("content-length")
        if not truncate and declared and declared.isdigit() and int(declared) > cap:
            err = self._error(
                ResponseTooLarge,
                call,
                f"response of {int(declared)} bytes is over the {cap} byte limit (Content-Length)",
                status=response.status_code,
            )
            err.limit, err.received = cap, 0
            raise err
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding", ""))
        except UnsupportedEncoding as exc:
            raise self._error(
                MalformedResponse, call, str(exc), status=response.status_code
            ) from None
        remaining = self._remaining(call)
        if remaining <= 0:
            raise self._error(
                DeadlineExceeded,
                call,
                f"deadline of {self.policy.deadline:g}s passed before the body",
                status=response.status_code,
            )
        buf = bytearray()

        def room() -> int:  # decoded bytes wanted next: one over the cap tells it is over
            return cap + 1 - len(buf)

        try:
            for chunk in decoder.decode(response.iter_raw(), room):
                buf += chunk
                if len(buf) > cap:
                    if truncate:
                        del buf[cap:]
                        break
                    self._count("bytes_received", len(buf))
                    err = self._error(
                        ResponseTooLarge,
                        call,
                        f"response is over the {cap} byte limit "
                        f"(stopped reading at {len(buf)} bytes)",
                        status=response.status_code,
                    )
                    err.limit, err.received = cap, len(buf)
                    raise err
                if time.monotonic() >= call.deadline:
                    raise self._body_deadline(call, len(buf), response.status_code)
        except httpx.ReadTimeout as exc:
            if deadline_fired() or self._remaining(call) <= 0.01:
                # Reads are capped at what is left of the deadline: this is the deadline.
                raise self._body_deadline(call, len(buf), response.status_code) from None
            err = self._error(
                DeadlineExceeded,
                call,
                f"body stalled for {self.policy.read_timeout:g}s (read timeout) "
                f"after {len(buf)} bytes",
                status=response.status_code,
            )
            err.retryable = call.idempotent
            raise err from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.StreamError) as exc:
            if deadline_fired():
                raise self._body_deadline(call, len(buf), response.status_code) from None
            err = self._error(
                MalformedResponse,
                call,
                f"truncated body: connection closed after {len(buf)} bytes ({type(exc).__name__})",
                status=response.status_code,
            )
            err.retryable = call.idempotent
            raise err from exc
        except DecodingFailed as exc:
            raise self._error(
                MalformedResponse, call, str(exc), status=response.status_code
            ) from exc
        # If the watchdog fired just as the body completed, the body is whole: keep it.
        self._count("bytes_received", len(buf))
        return bytes(buf)


def _guard_transports(client: httpx.Client) -> None:
    """Put the deadline watchdog's network backend (``deadline.GuardedBackend``) under every
    connection pool of ``client``: its default transport and any proxy transports httpx
    mounted from the environment (``HTTPS_PROXY``, ...), so proxied calls are bounded too."""
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, GuardedBackend):
            pool._network_backend = GuardedBackend(backend)
