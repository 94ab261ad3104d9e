"""Fault injection for sandbox routes, by route name.

A fault is ``(route, kind, times, params)``: ``route`` is a route name
(``open_meteo.forecast``) or ``"*"`` for every route; ``times`` limits it to the first N
matching requests (None = every one). Any fault may carry ``path_contains``: it then matches
only requests whose path (with its query string) contains that text, e.g. one account's id,
so a test can break one account whatever order the requests arrive in. Faults are applied
in the order they were added: every matching ``latency`` fault adds its delay, then the
first matching fault of another kind decides the response. Route modules may register extra
kinds that their own handler applies (the LLM route's ``refusal``); the generic wrapper
leaves those alone.

Generic kinds and their parameters (defaults in brackets):

``latency``          ms: delay added before the handler runs; ms_max [None]: each request's
                     delay is drawn uniformly from ms..ms_max instead (a real API's spread)
``status_sequence``  statuses: e.g. [500, 500] - one per matching request, then normal
                     behaviour (a status < 400 in the list also means "normal");
                     retry_after [None]: adds a Retry-After header (seconds); body [None]
``rate_limit``       429 with Retry-After: retry_after [1] seconds, http_date [false]
                     sends it as an HTTP-date instead; status [429]; body [None]
``read_timeout``     seconds [30]: hold the response (longer than the client waits), then
                     answer normally if the client is still there
``malformed_body``   200 with a body that is not valid JSON: body, status [200],
                     content_type [application/json]
``truncated_body``   mode ["connection"]: declare the full Content-Length, send part of the
                     real body and close the connection; "json": a complete HTTP message
                     whose JSON is cut short. fraction [0.5] of the body is sent
``slow_drip``        chunk_bytes [1] every interval [1.0] seconds; size [None]: drip the real
                     body, or a generated JSON body of this many bytes
``header_drip``      ``HTTP/1.1 200 OK\r\nX-Slow: `` then one byte every interval [0.5]
                     seconds, forever: the response headers never end (``header_drip.py``)
``never_answer``     accept the request and never answer nor close (until the client goes)
``echo_error``       status [400] with a JSON error whose message echoes the request: method,
                     path and query, headers and body (an API quoting what it was sent)
``oversized_body``   megabytes [50] of valid JSON generated lazily (never held in memory);
                     declare_length [false] sends Content-Length up front; chunk_kb [64]
``gzip_bomb``        200 with ``Content-Encoding: gzip`` whose small body (about 1 KB per
                     MB) inflates to megabytes [100] of JSON; compressed bytes are sent in
                     writes of chunk_kb [64], generated lazily (bounded memory);
                     encoding ["gzip"]: the Content-Encoding, gzip and/or deflate
                     (``"gzip, gzip"`` stacks them); raw_deflate [false] sends deflate
                     without its zlib wrapper, as some servers do
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from marba_dagster.sandbox.compression import compress, parse_encoding
from marba_dagster.sandbox.header_drip import MARKER as HEADER_DRIP_MARKER

__all__ = [
    "Fault",
    "FaultError",
    "FaultRegistry",
    "GENERIC_KINDS",
    "apply_faults",
    "latency_seconds",
    "register_route_kinds",
]

_REQUIRED = object()

# kind -> {param: default}; _REQUIRED marks mandatory parameters.
GENERIC_KINDS: dict[str, dict[str, Any]] = {
    "latency": {"ms": _REQUIRED, "ms_max": None},
    "status_sequence": {"statuses": _REQUIRED, "retry_after": None, "body": None},
    "rate_limit": {"retry_after": 1.0, "http_date": False, "status": 429, "body": None},
    "read_timeout": {"seconds": 30.0},
    "malformed_body": {
        "body": '{"latitude": 52.52, "hourly": {"time": ["2025-01-01T00:00", ], '
        "temperature_2m: [NaN",
        "status": 200,
        "content_type": "application/json",
    },
    "truncated_body": {"mode": "connection", "fraction": 0.5},
    "slow_drip": {"chunk_bytes": 1, "interval": 1.0, "size": None},
    "header_drip": {"interval": 0.5},
    "never_answer": {},
    "echo_error": {"status": 400},
    "oversized_body": {"megabytes": 50.0, "declare_length": False, "chunk_kb": 64},
    "gzip_bomb": {"megabytes": 100.0, "chunk_kb": 64, "encoding": "gzip", "raw_deflate": False},
}
_PRE_KINDS = frozenset({"latency"})
_RESPONSE_KINDS = frozenset(GENERIC_KINDS) - _PRE_KINDS

# route name -> {kind: {param: default}} for kinds that the route's own handler applies.
_ROUTE_KINDS: dict[str, dict[str, dict[str, Any]]] = {}
_ROUTE_KINDS_LOCK = threading.Lock()


def register_route_kinds(route: str, kinds: dict[str, dict[str, Any]]) -> None:
    """Declare fault kinds that the handler of ``route`` applies itself (via ``take_first``)."""
    with _ROUTE_KINDS_LOCK:
        _ROUTE_KINDS.setdefault(route, {}).update(kinds)


def route_kinds(route: str) -> dict[str, dict[str, Any]]:
    with _ROUTE_KINDS_LOCK:
        return dict(_ROUTE_KINDS.get(route, {}))


class FaultError(ValueError):
    """An invalid fault specification (HTTP callers get a 400 with this message)."""


@dataclass
class Fault:
    id: int
    route: str
    kind: str
    times: int | None
    params: dict[str, Any] = field(default_factory=dict)
    hits: int = 0
    path_contains: str | None = None

    def matches(self, route: str, target: str | None) -> bool:
        if self.route not in (route, "*") or self.exhausted:
            return False
        return self.path_contains is None or (target is not None and self.path_contains in target)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "kind": self.kind,
            "times": self.times,
            "hits": self.hits,
            "params": dict(self.params),
            **({"path_contains": self.path_contains} if self.path_contains is not None else {}),
        }


def _coerce(kind: str, name: str, value: Any, default: Any) -> Any:
    """Light type checking so a typo over HTTP gives a 400, not a broken fault."""
    try:
        if name == "statuses":
            if not isinstance(value, list | tuple) or not value:
                raise FaultError("statuses must be a non-empty list of HTTP statuses")
            out = [int(s) for s in value]
            if any(not 100 <= s <= 599 for s in out):
                raise FaultError("statuses must be HTTP statuses (100-599)")
            return out
        if name == "encoding":
            return ", ".join(parse_encoding(value))
        if value is None:
            return None
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if name in ("status", "chunk_bytes", "size"):
            v = int(value)
            if v < (100 if name == "status" else 1):
                raise FaultError(f"{kind}.{name} is out of range")
            return v
        if name in (
            "ms",
            "ms_max",
            "retry_after",
            "seconds",
            "interval",
            "megabytes",
            "fraction",
            "chunk_kb",
        ):
            v = float(value)
            if not math.isfinite(v) or v < 0:
                raise FaultError(f"{kind}.{name} must be a finite number >= 0")
            if name == "fraction" and not 0 <= v < 1:
                raise FaultError("truncated_body.fraction must be in [0, 1)")
            if name == "chunk_kb" and v <= 0:
                raise FaultError("oversized_body.chunk_kb must be > 0")
            return v
        if name == "mode":
            if value not in ("connection", "json"):
                raise FaultError("truncated_body.mode must be 'connection' or 'json'")
            return value
        if name == "body" and not isinstance(value, str | dict | list):
            raise FaultError("body must be a string or JSON value")
        return value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FaultError):
            raise
        raise FaultError(f"{kind}.{name}: invalid value {value!r}") from None


class FaultRegistry:
    """Thread-safe list of faults; Python (tests) and HTTP (other processes) share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        # Set by the server once routes are known, so typos in route names are caught.
        self.known_routes: frozenset[str] | None = None

    def add(self, route: str, kind: str, *, times: int | None = None, **params: Any) -> Fault:
        """Add a fault; returns it (its ``id`` can be removed later)."""
        path_contains = params.pop("path_contains", None)
        if path_contains is not None and (not isinstance(path_contains, str) or not path_contains):
            raise FaultError("path_contains must be a non-empty string")
        if not isinstance(route, str) or not route:
            raise FaultError("route must be a route name or '*'")
        if route != "*" and self.known_routes is not None and route not in self.known_routes:
            raise FaultError(
                f"unknown route {route!r}; known: {', '.join(sorted(self.known_routes))}"
            )
        spec = GENERIC_KINDS.get(kind)
        if spec is None:
            spec = route_kinds(route).get(kind)
        if spec is None:
            extra = sorted(route_kinds(route)) if route != "*" else []
            raise FaultError(
                f"unknown fault kind {kind!r} for route {route!r}; "
                f"kinds: {', '.join(sorted(GENERIC_KINDS) + extra)}"
            )
        unknown = set(params) - set(spec)
        if unknown:
            raise FaultError(f"unknown parameter(s) for {kind}: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, default in spec.items():
            if name in params:
                values[name] = _coerce(kind, name, params[name], default)
            elif default is _REQUIRED:
                raise FaultError(f"{kind} needs {name!r}")
            else:
                values[name] = default
        if kind == "latency" and values["ms_max"] is not None and values["ms_max"] < values["ms"]:
            raise FaultError("latency.ms_max must be >= latency.ms")
        if times is not None:
            times = int(times)
            if times < 1:
                raise FaultError("times must be >= 1 (or omitted for every request)")
        if kind == "status_sequence":
            if times is not None and times != len(values["statuses"]):
                raise FaultError("status_sequence applies once per status; omit times")
            times = len(values["statuses"])
        with self._lock:
            fault = Fault(
                id=self._next_id,
                route=route,
                kind=kind,
                times=times,
                params=values,
                path_contains=path_contains,
            )
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: dict[str, Any]) -> Fault:
        """Add from a JSON object: {"route", "kind", "times"?, ...params} (params inline or
        under "params")."""
        if not isinstance(spec, dict):
            raise FaultError("a fault is a JSON object")
        spec = dict(spec)
        params = dict(spec.pop("params", None) or {})
        route = spec.pop("route", None)
        kind = spec.pop("kind", None)
        times = spec.pop("times", None)
        params.update(spec)
        if route is None or kind is None:
            raise FaultError("a fault needs 'route' and 'kind'")
        return self.add(route, kind, times=times, **params)

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self, route: str | None = None) -> int:
        """Remove every fault (or only those of ``route``); returns how many."""
        with self._lock:
            before = len(self._faults)
            self._faults = [] if route is None else [f for f in self._faults if f.route != route]
            return before - len(self._faults)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def _matching(self, route: str, kinds: Iterable[str], target: str | None) -> Iterable[Fault]:
        kinds = frozenset(kinds)
        for f in self._faults:
            if f.kind in kinds and f.matches(route, target):
                yield f

    def take_all(
        self, route: str, kinds: Iterable[str], *, target: str | None = None
    ) -> list[tuple[Fault, int]]:
        """Consume one hit of every active fault of these kinds; (fault, hit index) pairs.
        ``target`` (the request's path and query) is what ``path_contains`` is matched on;
        without it, faults scoped by ``path_contains`` never match."""
        with self._lock:
            out = []
            for f in self._matching(route, kinds, target):
                out.append((f, f.hits))
                f.hits += 1
            return out

    def take_first(
        self,
        route: str,
        kinds: Iterable[str],
        *,
        predicate: Callable[[Fault], bool] | None = None,
        target: str | None = None,
    ) -> tuple[Fault, int] | None:
        """Consume one hit of the first active fault of these kinds, if any; with
        ``predicate``, of the first one it accepts (the others are left untouched). The
        predicate runs under the registry's lock: keep it quick and do not call back into
        the registry."""
        with self._lock:
            for f in self._matching(route, kinds, target):
                if predicate is not None and not predicate(f):
                    continue
                idx = f.hits
                f.hits += 1
                return f, idx
            return None


# --------------------------------------------------------------------------------------
# Applying generic faults around a handler


def latency_seconds(params: dict[str, Any], rng: random.Random | None = None) -> float:
    """The delay a ``latency`` fault adds to one request: ``ms``, or with ``ms_max`` a draw
    uniform in ``ms..ms_max``."""
    low, high = params["ms"], params.get("ms_max")
    if high is None or high == low:
        return low / 1000.0
    return (rng or random).uniform(low, high) / 1000.0


def _error_body(status: int, body: Any) -> Response:
    if body is None:
        return JSONResponse(
            {"error": True, "reason": f"sandbox fault: HTTP {status}"}, status_code=status
        )
    if isinstance(body, str):
        return Response(body, status_code=status, media_type="text/plain")
    return JSONResponse(body, status_code=status)


def _retry_after_value(seconds: float, http_date: bool) -> str:
    if http_date:
        # Rounded up: an HTTP-date has one-second resolution and must not be early.
        return email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)
    return str(math.ceil(seconds))


async def _hold(request: Request, seconds: float) -> None:
    """Wait ``seconds`` or until the client goes away, whichever is first."""
    await request.body()  # consume the body first: is_disconnected() would eat it otherwise
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(0.0, end - time.monotonic())))


async def _echo_error(request: Request, status: int) -> Response:
    """An error quoting the whole request, as some APIs do (secrets included)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    headers = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    query = f"?{request.url.query}" if request.url.query else ""
    # The body and query first: error messages are often cut short, so they must come early.
    message = f"cannot process {body} ({request.method} {request.url.path}{query}) [{headers}]"
    return JSONResponse(
        {"error": {"message": message, "type": "OAuthException", "code": 100}},
        status_code=status,
    )


async def _response_body(response: Response) -> bytes:
    body = getattr(response, "body", None)
    if isinstance(body, bytes | memoryview):
        return bytes(body)
    chunks = []
    async for chunk in response.body_iterator:  # type: ignore[attr-defined]
        chunks.append(chunk if isinstance(chunk, bytes) else chunk.encode())
    return b"".join(chunks)


def _copy_headers(response: Response) -> dict[str, str]:
    return {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "transfer-encoding")
    }


class _TruncatedResponse(StreamingResponse):
    """Declares the full Content-Length, sends part of the body, then drops the connection."""

    def __init__(
        self, part: bytes, full_length: int, status_code: int, headers: dict[str, str]
    ) -> None:
        async def one():
            yield part

        headers = dict(headers)
        headers["content-length"] = str(full_length)
        super().__init__(one(), status_code=status_code, headers=headers)

    async def stream_response(self, send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        # Returning without the final message makes the server close the connection.


async def _drip(body: bytes, chunk_bytes: int, interval: float):
    for i in range(0, len(body), chunk_bytes):
        if i:
            await asyncio.sleep(interval)
        yield body[i : i + chunk_bytes]


async def _oversized(total: int, chunk: int):
    """Valid JSON of exactly ``total`` bytes, built from one reused chunk (bounded memory)."""
    head, tail = b'{"data": "', b'"}'
    filler = b"x" * chunk
    left = total - len(head) - len(tail)
    yield head
    while left > 0:
        n = min(chunk, left)
        yield filler if n == chunk else filler[:n]
        left -= n
        await asyncio.sleep(0)  # let disconnects and other requests through
    yield tail


def _bomb_json(total: int) -> Iterator[bytes]:
    """``total`` bytes of JSON, ``{"data": "000..."}``, in blocks of 1 MiB."""
    head, tail = b'{"data": "', b'"}'
    block = b"0" * (1024 * 1024)
    yield head
    left = total - len(head) - len(tail)
    while left > 0:
        n = min(len(block), left)
        yield block if n == len(block) else block[:n]
        left -= n
    yield tail


async def _gzip_bomb(total: int, chunk: int, encoding: str, raw_deflate: bool):
    """``total`` bytes of JSON compressed with ``encoding``, sent ``chunk`` compressed bytes
    at a time."""
    pending = bytearray()
    codings = parse_encoding(encoding)
    for piece in compress(_bomb_json(total), codings, raw_deflate=raw_deflate):
        pending += piece
        if len(pending) >= chunk:
            yield bytes(pending)
            pending.clear()
            await asyncio.sleep(0)  # let disconnects and other requests through
    yield bytes(pending)


async def apply_faults(
    registry: FaultRegistry,
    route: str,
    request: Request,
    handler: Callable[[Request], Awaitable[Response]],
    applied: list[str],
) -> Response:
    """Run ``handler`` for ``request`` with the generic faults of ``route`` applied.

    ``applied`` receives the kinds used (for the request log).
    """
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    for fault, _ in registry.take_all(route, _PRE_KINDS, target=target):
        applied.append(fault.kind)
        await asyncio.sleep(latency_seconds(fault.params))
    hit = registry.take_first(route, _RESPONSE_KINDS, target=target)
    if hit is None:
        return await handler(request)
    fault, idx = hit
    p = fault.params
    kind = fault.kind
    applied.append(kind)

    if kind == "status_sequence":
        status = p["statuses"][idx]
        if status < 400:
            return await handler(request)
        response = _error_body(status, p["body"])
        if p["retry_after"] is not None:
            response.headers["retry-after"] = _retry_after_value(p["retry_after"], False)
        return response

    if kind == "rate_limit":
        response = _error_body(
            p["status"],
            p["body"]
            if p["body"] is not None
            else {"error": True, "reason": "Too many requests (sandbox fault)"},
        )
        response.headers["retry-after"] = _retry_after_value(p["retry_after"], p["http_date"])
        return response

    if kind == "read_timeout":
        await _hold(request, p["seconds"])
        return await handler(request)

    if kind == "header_drip":
        return Response(b"", headers={HEADER_DRIP_MARKER: str(max(0.01, p["interval"]))})

    if kind == "never_answer":
        await _hold(request, math.inf)
        return Response(b"", status_code=504)  # the client has gone; nobody reads this

    if kind == "echo_error":
        return await _echo_error(request, p["status"])

    if kind == "malformed_body":
        body = p["body"] if isinstance(p["body"], str) else json.dumps(p["body"])[:-1]
        return Response(body, status_code=p["status"], media_type=p["content_type"])

    if kind == "oversized_body":
        total = int(p["megabytes"] * 1024 * 1024)
        headers = {"content-length": str(total)} if p["declare_length"] else {}
        chunk = max(1, int(p["chunk_kb"] * 1024))
        return StreamingResponse(
            _oversized(total, chunk), media_type="application/json", headers=headers
        )

    if kind == "gzip_bomb":
        total = int(p["megabytes"] * 1024 * 1024)
        chunk = max(1, int(p["chunk_kb"] * 1024))
        return StreamingResponse(
            _gzip_bomb(total, chunk, p["encoding"], p["raw_deflate"]),
            media_type="application/json",
            headers={"content-encoding": p["encoding"]},
        )

    # The remaining kinds reshape the real answer.
    real = await handler(request)
    if kind == "slow_drip" and p["size"] is not None:
        body = (b'{"data": "' + b"x" * max(0, p["size"] - 12) + b'"}')[: p["size"]]
        headers = {"content-type": "application/json"}
    else:
        body = await _response_body(real)
        headers = _copy_headers(real)

    if kind == "truncated_body":
        cut = int(len(body) * p["fraction"])
        if p["mode"] == "json":
            return Response(body[:cut], status_code=real.status_code, headers=headers)
        return _TruncatedResponse(body[:cut], len(body), real.status_code, headers)

    if kind == "slow_drip":
        headers["content-length"] = str(len(body))
        return StreamingResponse(
            _drip(body, p["chunk_bytes"], p["interval"]),
            status_code=real.status_code,
            headers=headers,
        )

    raise AssertionError(f"unhandled fault kind {kind}")  # pragma: no cover
