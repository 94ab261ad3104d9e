"""What the sandbox platforms received to publish, shared by the publishing route modules.

Every post a publishing route accepts is recorded here (platform, account, post id, text)
and added to ``sandbox.platform_data`` so the read routes list it like any other post.
Tests count posts on the platform side with :func:`published_log` (``count()``,
``texts()``); the benchmark reads the same counts over HTTP
(``GET /_sandbox/published``, route ``sandbox.published``).

Publishing routes also apply two route-specific fault kinds, registered for each of them:

``apply_then_hang``  seconds [30]: create the post, then hold the answer (a timeout after
                     the request was sent and applied)
``apply_then_drop``  create the post, then drop the connection without a complete answer
                     (a connection reset after the platform applied the request)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from marba_dagster.sandbox.faults import register_route_kinds

APPLY_FAULT_KINDS = {"apply_then_hang": {"seconds": 30.0}, "apply_then_drop": {}}


@dataclass(frozen=True)
class Received:
    platform: str
    account_id: str
    post_id: str
    text: str
    media: tuple[str, ...]
    at: datetime


class PublishLog:
    """Thread-safe record of every post the sandbox platforms accepted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Received] = []
        self._by_text: dict[tuple[str, str, str], list[datetime]] = {}
        self._seq = 0

    def reset(self) -> None:
        with self._lock:
            self._items = []
            self._by_text = {}

    def next_id(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, item: Received) -> None:
        with self._lock:
            self._items.append(item)
            self._by_text.setdefault((item.platform, item.account_id, item.text), []).append(
                item.at
            )

    def items(self, platform: str | None = None) -> list[Received]:
        with self._lock:
            return [i for i in self._items if platform is None or i.platform == platform]

    def count(self, platform: str | None = None) -> int:
        return len(self.items(platform))

    def texts(self, platform: str | None = None) -> Counter:
        """How many times each text was published (a value above 1 is a double post)."""
        return Counter(i.text for i in self.items(platform))

    def since(self, platform: str, account_id: str, since: datetime) -> list[datetime]:
        """When the account's posts on ``platform`` were accepted since ``since``, oldest first."""
        with self._lock:
            return sorted(
                i.at
                for i in self._items
                if i.platform == platform and i.account_id == account_id and i.at >= since
            )

    def recent_text(
        self, platform: str, account_id: str, text: str, within_seconds: float, now: datetime
    ) -> bool:
        with self._lock:
            times = self._by_text.get((platform, account_id, text), ())
            return any((now - at).total_seconds() < within_seconds for at in times)


@dataclass
class PublishLimits:
    """The platforms' publishing limits the sandbox enforces (tests change them).

    ``x_per_user``: POST /2/tweets per user per ``x_window_seconds`` (None: no limit and no
    ``x-rate-limit-*`` headers); ``ig_quota_total``: Instagram's content publishing limit per
    account in a moving 24 hours (reported by ``content_publishing_limit``; ``media_publish``
    past it answers Graph's error 9, subcode 2207042); ``page_usage``: Page id -> (percent,
    minutes to regain access) sent as ``X-Business-Use-Case-Usage`` on its posts.
    """

    x_per_user: int | None = None
    x_window_seconds: float = 900.0
    ig_quota_total: int = 100
    page_usage: dict[str, tuple[int, int]] = field(default_factory=dict)

    def reset(self) -> None:
        self.x_per_user, self.x_window_seconds, self.ig_quota_total = None, 900.0, 100
        self.page_usage = {}


def publish_limits(state) -> PublishLimits:
    return state.module_state("publish_limits", PublishLimits)


def published_log(state) -> PublishLog:
    return state.module_state("publish_log", PublishLog)


def register_apply_faults(route_name: str) -> None:
    register_route_kinds(route_name, APPLY_FAULT_KINDS)


class _DroppedResponse(StreamingResponse):
    """Starts a 200 answer with a Content-Length, sends nothing of it, closes the connection."""

    def __init__(self) -> None:
        async def nothing():
            if False:  # pragma: no cover - an empty async generator
                yield b""

        super().__init__(
            nothing(),
            status_code=200,
            headers={"content-length": "64", "content-type": "application/json"},
        )

    async def stream_response(self, send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # Returning without the final body message makes the server drop the connection.


async def after_apply(state, route_name: str, request: Request, response: Response) -> Response:
    """Apply the route's apply_* faults to a request the platform has already applied."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    hit = state.faults.take_first(route_name, APPLY_FAULT_KINDS, target=target)
    if hit is None:
        return response
    fault, _ = hit
    if fault.kind == "apply_then_drop":
        return _DroppedResponse()
    end = time.monotonic() + fault.params["seconds"]
    while time.monotonic() < end:
        if await request.is_disconnected():
            break
        await asyncio.sleep(0.05)
    return response


def published_index(state):
    """``GET /_sandbox/published[?platform=x]``: counts of accepted posts and double posts."""

    async def endpoint(request: Request) -> JSONResponse:
        log = published_log(state)
        platform = request.query_params.get("platform")
        texts = log.texts(platform)
        return JSONResponse(
            {
                "count": log.count(platform),
                "duplicates": {t: n for t, n in texts.items() if n > 1},
            }
        )

    return endpoint
