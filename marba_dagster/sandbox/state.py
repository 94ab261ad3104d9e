"""Mutable state shared by the sandbox routes, the fault wrapper and the test process.

Uvicorn runs the app on its own thread, while tests change faults and limits from theirs:
every structure here is guarded by a lock.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from marba_dagster.sandbox.faults import FaultRegistry

T = TypeVar("T")

_SECRET_QUERY = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "access_token",
        "token",
        "client_secret",
        "appsecret_proof",
        "password",
        "signature",
        "sig",
    }
)


def _redact_query(query: str) -> str:
    pieces = []
    for piece in query.split("&") if query else []:
        name, eq, _ = piece.partition("=")
        n = unquote_plus(name).lower()
        if eq and (n in _SECRET_QUERY or n.endswith(("_token", "_secret", "_key"))):
            piece = f"{name}=REDACTED"
        pieces.append(piece)
    return "&".join(pieces)


@dataclass
class RequestRecord:
    id: int
    route: str
    method: str
    path: str
    query: str
    started_at: float  # epoch seconds
    status: int | None = None
    duration_ms: float | None = None
    faults: list[str] = field(default_factory=list)
    body: str | None = None  # the start of a request body, for assertions on what was sent

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "started_at": self.started_at,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "faults": list(self.faults),
            "body": self.body,
        }


class RequestLog:
    """What the sandbox was asked, so tests can count calls on the server side.

    Counts per route are exact; the list of records keeps the most recent ``maxlen``.
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._counts: Counter[str] = Counter()
        self._ids = itertools.count(1)

    def begin(self, route: str, method: str, path: str, query: str) -> RequestRecord:
        rec = RequestRecord(
            id=next(self._ids),
            route=route,
            method=method,
            path=path,
            query=_redact_query(query),
            started_at=time.time(),
        )
        with self._lock:
            self._records.append(rec)
            self._counts[route] += 1
        return rec

    def records(self, route: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._records if route is None or r.route == route]

    def count(self, route: str | None = None) -> int:
        with self._lock:
            return sum(self._counts.values()) if route is None else self._counts.get(route, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counts.clear()


class SlidingWindow:
    """Events with weights over the last ``window`` seconds (for RPM/TPM limits)."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()

    def _trim(self, now: float, window: float) -> None:
        while self._events and self._events[0][0] <= now - window:
            self._events.popleft()

    def used(self, now: float, window: float) -> tuple[int, int]:
        """(number of events, sum of weights) within the window."""
        self._trim(now, window)
        return len(self._events), sum(w for _, w in self._events)

    def add(self, now: float, weight: int = 1) -> None:
        self._events.append((now, weight))

    def wait_for(
        self,
        now: float,
        window: float,
        *,
        count_limit: int | None = None,
        weight_limit: int | None = None,
        weight: int = 0,
    ) -> float:
        """Seconds until one more event (of ``weight``) fits under the limits."""
        self._trim(now, window)
        waits = [0.0]
        if count_limit is not None and len(self._events) >= count_limit:
            idx = len(self._events) - count_limit
            waits.append(self._events[idx][0] + window - now)
        if weight_limit is not None:
            total = sum(w for _, w in self._events)
            for t, w in self._events:
                if total + weight <= weight_limit:
                    break
                total -= w
                waits.append(t + window - now)
        return max(0.0, max(waits))

    def clear(self) -> None:
        self._events.clear()


@dataclass
class LlmState:
    """Settings and counters of the OpenAI-compatible route.

    ``api_keys``: accepted bearer keys (None = any non-empty key). ``rpm_limit`` and
    ``tpm_limit``: server-side limits over ``window_seconds`` (60 like OpenAI; tests shorten
    it). ``models``: accepted model names (None = any, echoed back).
    """

    api_keys: set[str] | None = field(default_factory=lambda: {"sandbox-key"})
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    window_seconds: float = 60.0
    models: set[str] | None = None
    default_model: str = "sandbox-model"
    # counters
    requests: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rate_limited: int = 0
    auth_failures: int = 0
    refusals: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    window: SlidingWindow = field(default_factory=SlidingWindow, repr=False)

    SETTINGS = ("api_keys", "rpm_limit", "tpm_limit", "window_seconds", "models")

    def configure(self, **settings: Any) -> None:
        unknown = set(settings) - set(self.SETTINGS)
        if unknown:
            raise ValueError(f"unknown LLM setting(s): {', '.join(sorted(unknown))}")
        with self.lock:
            for k, v in settings.items():
                if k in ("api_keys", "models") and v is not None:
                    v = {str(x) for x in ([v] if isinstance(v, str) else v)}
                elif k in ("rpm_limit", "tpm_limit") and v is not None:
                    v = int(v)
                    if v < 1:
                        raise ValueError(f"{k} must be >= 1 (or null)")
                elif k == "window_seconds":
                    v = float(v)
                    if v <= 0:
                        raise ValueError("window_seconds must be > 0")
                setattr(self, k, v)

    def settings(self) -> dict[str, Any]:
        with self.lock:
            return {
                "api_keys": None if self.api_keys is None else sorted(self.api_keys),
                "rpm_limit": self.rpm_limit,
                "tpm_limit": self.tpm_limit,
                "window_seconds": self.window_seconds,
                "models": None if self.models is None else sorted(self.models),
            }

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": self.requests,
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "rate_limited": self.rate_limited,
                "auth_failures": self.auth_failures,
                "refusals": self.refusals,
            }

    def reset(self) -> None:
        with self.lock:
            self.api_keys = {"sandbox-key"}
            self.rpm_limit = self.tpm_limit = None
            self.window_seconds = 60.0
            self.models = None
            self.requests = self.calls = self.prompt_tokens = self.completion_tokens = 0
            self.rate_limited = self.auth_failures = self.refusals = 0
            self.window.clear()


class SandboxState:
    """Everything the sandbox app shares: faults, request log, per-API state, the clock."""

    def __init__(self) -> None:
        self.faults = FaultRegistry()
        self.log = RequestLog()
        self.llm = LlmState()
        self._now: dt.datetime | None = None
        self._modules: dict[str, Any] = {}
        self._lock = threading.Lock()

    # The clock: real time unless pinned (demo data and tests may want a fixed "now").
    def now(self) -> dt.datetime:
        return self._now or dt.datetime.now(dt.timezone.utc)

    def set_now(self, when: dt.datetime | str | None) -> None:
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        self._now = when

    def module_state(self, name: str, factory: Callable[[], T]) -> T:
        """Per-route-module state, created on first use (for modules added later).

        If the object has a ``reset()`` method, :meth:`reset` calls it; otherwise it is
        dropped and created afresh.
        """
        with self._lock:
            if name not in self._modules:
                self._modules[name] = factory()
            return self._modules[name]

    def reset(self) -> None:
        """Back to a fresh server: no faults, empty log, default limits, real clock."""
        self.faults.clear()
        self.log.clear()
        self.llm.reset()
        self._now = None
        with self._lock:
            for name, obj in list(self._modules.items()):
                if hasattr(obj, "reset"):
                    obj.reset()
                else:
                    del self._modules[name]
