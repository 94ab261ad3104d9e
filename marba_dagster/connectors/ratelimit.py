"""Waiting politely: a client-side token bucket and the server's Retry-After."""

from __future__ import annotations

import email.utils
import math
import threading
import time
from datetime import UTC

__all__ = ["TokenBucket", "parse_retry_after"]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class TokenBucket:
    """Thread-safe token bucket: ``rate`` tokens a second, at most ``capacity`` saved up.

    Callers reserve a slot under the lock and sleep outside it, so concurrent threads are
    spaced fairly without holding the lock while waiting.
    """

    def __init__(self, rate: float, capacity: int = 1, clock=time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.capacity = max(1, int(capacity))
        self._clock = clock
        self._tokens = float(self.capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token (possibly borrowing from the future); return seconds to wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self) -> None:
        """Give back a reserved token (the caller gave up instead of waiting)."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1.0)
