"""The failures of an outside call, one class each, all :class:`HttpError`: what both HTTP
paths (``ApiClient`` and ``SafeFetcher``) raise and every connector builds on."""

from __future__ import annotations

from typing import Any

from .redaction import redact, redact_json

__all__ = [
    "ClientError",
    "ConnectFailed",
    "DeadlineExceeded",
    "HttpError",
    "MalformedResponse",
    "RateLimited",
    "ResponseTooLarge",
    "ServerError",
]


def _rebuild_error(cls: type, state: dict) -> HttpError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class HttpError(Exception):
    """Base of every failure of an outside call.

    ``url`` has credentials redacted; ``status`` is the HTTP status when a response arrived.
    ``str(err)`` is one line: client, method, URL, what went wrong, status and attempts.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int | None = None,
        method: str = "",
        client: str = "",
        attempts: int = 1,
        body_excerpt: str | None = None,
        error_json: Any = None,
        retry_after: float | None = None,
    ) -> None:
        # One line, whatever the source said, and no credential the process has sent (a
        # connector building its own error from an answer that echoes a token included).
        message = redact(" ".join(str(message).split()))
        super().__init__(message)
        self.message = message
        self.url = redact(url)
        self.status = status
        self.method = method
        self.client = client
        self.attempts = attempts
        self.body_excerpt = redact(body_excerpt)
        self.error_json = redact_json(error_json)
        self.retry_after = retry_after
        # Set by the client for its retry decision; not part of the public contract.
        self.retryable = False

    def __str__(self) -> str:
        where = " ".join(p for p in (self.method, self.url) if p)
        parts = [f"[{self.client}] " if self.client else "", f"{where}: " if where else ""]
        parts.append(self.message)
        if self.status is not None and f"HTTP {self.status}" not in self.message:
            parts.append(f" (HTTP {self.status})")
        if self.attempts > 1:
            parts.append(f" after {self.attempts} attempts")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self):  # keyword-only constructor: pickle the state, not the args
        return (_rebuild_error, (type(self), dict(self.__dict__)))


class ConnectFailed(HttpError):
    """Could not open a connection (refused, DNS, connect timeout, TLS); nothing was sent."""


class DeadlineExceeded(HttpError):
    """The call's total deadline passed, or the server did not answer within read_timeout."""


class RateLimited(HttpError):
    """429 after retries, or a Retry-After longer than we are willing to wait.

    ``retry_after`` is the server's wait in seconds when it gave one (else None).
    """


class ServerError(HttpError):
    """5xx after retries, or the connection was lost before a complete response."""


class ClientError(HttpError):
    """4xx other than 429: the request is wrong and repeating it will not help.

    ``body_excerpt`` keeps the start of the body; ``error_json`` the parsed JSON if any.
    """


class MalformedResponse(HttpError):
    """The body is not what was expected: invalid JSON, wrong content type, truncated."""


class ResponseTooLarge(HttpError):
    """The body is over ``max_bytes``; reading stopped there. ``received`` bytes were read."""

    limit: int = 0
    received: int = 0
