"""Outside-call failures described in one line for operators (checks, logs, job_logs)."""

from __future__ import annotations

from marba_dagster.connectors.http import (
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
    RateLimited,
    ResponseTooLarge,
    ServerError,
)

# Longest cause kept for one failed brand or lost source in a description.
CAUSE_CHARS = 500


def one_line(text: str, limit: int = CAUSE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    """The cause of an outside call's failure in one line: timeout, unreachable, HTTP status,
    malformed answer. Never the URL (it may carry a key) and never a token: an ``HttpError``
    message is scrubbed by the client and is used without its URL."""
    if isinstance(exc, HttpError):
        message = exc.message
        if exc.url:
            message = message.replace(exc.url, "<url>")
        if isinstance(exc, DeadlineExceeded):
            cause = "timeout"
        elif isinstance(exc, ConnectFailed):
            cause = "unreachable"
        elif isinstance(exc, MalformedResponse):
            cause = "malformed answer"
        elif isinstance(exc, ResponseTooLarge):
            cause = "answer too large"
        elif isinstance(exc, (RateLimited, ServerError, ClientError)) and exc.status is not None:
            cause = f"HTTP {exc.status}"
        else:
            cause = type(exc).__name__
        text = message if cause.lower() in message.lower() else f"{cause}: {message}"
        if exc.attempts > 1:
            text += f" (after {exc.attempts} attempts)"
        return one_line(text)
    return one_line(f"{type(exc).__name__}: {exc}")
