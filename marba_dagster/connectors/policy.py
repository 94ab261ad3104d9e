"""The one policy of both HTTP paths: time, size, retry, rate, redirect and politeness limits.

:class:`HttpPolicy` configures :class:`~marba_dagster.connectors.http.ApiClient` (the APIs we
are configured for) and :class:`~marba_dagster.connectors.safe_fetch.SafeFetcher` (URLs users
typed). :class:`FetchPolicy` is the same class with the fetcher's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MiB", "FetchPolicy", "HttpPolicy"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class HttpPolicy:
    """How one HTTP client behaves. Defaults suit a typical JSON API; all times in seconds.

    Both clients read the time and size limits: ``connect_timeout``, ``read_timeout``,
    ``write_timeout`` (None: same as ``read_timeout``), ``deadline`` (the whole call: every
    attempt, redirect and wait, and reading the body), ``max_bytes`` (counted after
    decompression), ``max_redirects``, ``user_agent`` and ``verify_tls``.

    Retries and rate are :class:`ApiClient`'s: ``max_attempts`` counts every attempt (3 = one
    try and two retries); ``connect_retries`` are extra immediate reconnects inside one
    attempt, for connection failures only (the request has not been sent, so repeating it is
    always safe); ``backoff_*``, ``max_retry_after``, ``retry_on_status``, ``retry_unsafe``,
    ``requests_per_second`` / ``burst`` (a token bucket) and ``follow_redirects``.

    Politeness is :class:`SafeFetcher`'s, which makes one attempt per URL and checks every
    redirect hop itself: ``max_concurrency`` fetches at once, ``per_host_concurrency`` and a
    ``per_host_interval`` between requests to one host, and ``allowed_hosts``, the
    ``(host, port)`` pairs reachable even though they are loopback or private.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    write_timeout: float | None = None  # None: same as read_timeout
    deadline: float = 30.0
    max_bytes: int = 5 * MiB
    max_attempts: int = 3
    connect_retries: int = 1
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    backoff_jitter: float = 0.5
    max_retry_after: float = 60.0
    requests_per_second: float | None = None
    burst: int = 1
    retry_on_status: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_unsafe: bool = False
    follow_redirects: bool = True
    max_redirects: int = 5
    user_agent: str = "marba-dagster/0.1"
    verify_tls: bool = True
    max_concurrency: int = 16
    per_host_concurrency: int = 2
    per_host_interval: float = 0.5
    allowed_hosts: frozenset[tuple[str, int]] = frozenset()

    def __post_init__(self) -> None:
        # Accept any iterables for the sets, but keep the policy hashable and immutable.
        object.__setattr__(self, "retry_on_status", frozenset(int(s) for s in self.retry_on_status))
        object.__setattr__(self, "allowed_hosts", _normalise_hosts(self.allowed_hosts))
        cls = type(self).__name__
        for name in ("connect_timeout", "read_timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{cls}.{name} must be > 0")
        if self.write_timeout is not None and not self.write_timeout > 0:
            raise ValueError(f"{cls}.write_timeout must be > 0")
        if self.max_bytes < 1:
            raise ValueError(f"{cls}.max_bytes must be >= 1")
        if self.max_attempts < 1:
            raise ValueError(f"{cls}.max_attempts must be >= 1")
        if self.connect_retries < 0:
            raise ValueError(f"{cls}.connect_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.backoff_jitter < 0:
            raise ValueError(f"{cls} backoff values must be >= 0")
        if self.max_retry_after < 0:
            raise ValueError(f"{cls}.max_retry_after must be >= 0")
        if self.requests_per_second is not None and not self.requests_per_second > 0:
            raise ValueError(f"{cls}.requests_per_second must be > 0 (or None)")
        if self.burst < 1:
            raise ValueError(f"{cls}.burst must be >= 1")
        if self.max_redirects < 0:
            raise ValueError(f"{cls}.max_redirects must be >= 0")
        if self.max_concurrency < 1 or self.per_host_concurrency < 1:
            raise ValueError(f"{cls} concurrency limits must be >= 1")
        if self.per_host_interval < 0:
            raise ValueError(f"{cls}.per_host_interval must be >= 0")

    @property
    def effective_write_timeout(self) -> float:
        return self.write_timeout if self.write_timeout is not None else self.read_timeout


@dataclass(frozen=True)
class FetchPolicy(HttpPolicy):
    """:class:`HttpPolicy` with the defaults for fetching competitor sites and feeds: a
    shorter deadline and read timeout, and a user agent that says who is looking."""

    read_timeout: float = 10.0
    deadline: float = 20.0
    user_agent: str = "marba-dagster-monitor/0.1 (+https://github.com/marba)"


def _normalise_hosts(hosts: Iterable[tuple[str, int]]) -> frozenset[tuple[str, int]]:
    return frozenset((h.lower().strip("[]"), int(p)) for h, p in hosts)
