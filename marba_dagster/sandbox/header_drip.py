"""The ``header_drip`` fault: a response whose headers never end.

ASGI hands the server a response's status and headers in one message, so no route can send
its headers slowly. The sandbox therefore serves HTTP with :class:`DripH11Protocol`, uvicorn's
h11 protocol over a transport proxy: when the bytes of a response's head carry the marker
header (:data:`MARKER`, set by the fault), the proxy sends ``HTTP/1.1 200 OK\\r\\nX-Slow: ``
and then one byte every ``interval`` seconds until the client goes away; the real head and
body are dropped. Everything else passes through untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["MARKER", "DripH11Protocol"]

MARKER = "x-sandbox-header-drip"
_MARKER_LINE = b"\r\n" + MARKER.encode() + b": "
_PREFIX = b"HTTP/1.1 200 OK\r\nX-Slow: "


class _DripTransport:
    """Passes writes through, except a response head carrying the marker (see the module)."""

    def __init__(self, inner: asyncio.Transport) -> None:
        self._inner = inner
        self.dripping = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, data: bytes) -> None:
        if self.dripping:
            return  # the head never ends, so nothing after it may be sent
        at = data.find(_MARKER_LINE)
        if at == -1:
            self._inner.write(data)
            return
        end = data.find(b"\r\n", at + len(_MARKER_LINE))
        try:
            interval = float(data[at + len(_MARKER_LINE) : end])
        except ValueError:
            interval = 0.5
        self.dripping = True
        self._inner.write(_PREFIX)
        asyncio.get_running_loop().call_later(interval, self._drip, interval, 0)

    def _drip(self, interval: float, sent: int) -> None:
        if self._inner.is_closing():
            return
        self._inner.write(b"abcdefghijklmnopqrstuvwxyz"[sent % 26 : sent % 26 + 1])
        asyncio.get_running_loop().call_later(interval, self._drip, interval, sent + 1)


class DripH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose transport can drip a response head (``header_drip``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_DripTransport(transport))  # type: ignore[arg-type]

    def timeout_keep_alive_handler(self) -> None:
        # uvicorn believes the response complete and would close an idle connection after
        # its keep-alive timeout (5 s); a dripping head goes on until the client gives up.
        if getattr(self.transport, "dripping", False):
            return
        super().timeout_keep_alive_handler()
