"""A deadline over a whole HTTP exchange, enforced from outside the read.

Per-read timeouts never fire while a server keeps sending: a server that answers
``HTTP/1.1 200 OK\\r\\nX-Slow: `` and then one byte every half second holds a reader in the
header phase forever, each byte resetting the read timeout. So both HTTP paths
(:class:`~marba_dagster.connectors.http.ApiClient` and
:class:`~marba_dagster.connectors.safe_fetch.SafeFetcher`) open a :func:`watching` block
around each exchange (connect, TLS, request, headers, body): every socket the exchange
reads or writes is attached to a :class:`Watchdog`, and one shared reaper thread shuts
those sockets when the deadline passes. The blocked ``recv()`` then returns end-of-file and
the client raises its deadline error (``Watchdog.fired`` tells the two apart).

The sockets come from a network backend wrapper (:class:`GuardedBackend`) placed under
httpcore's connection pool, so a connection reused from the pool is attached by its first
read or write in the new exchange. Every blocking operation also gets a timeout no longer
than what is left of the deadline, so connecting (before there is a socket to shut) is
bounded too.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpcore

__all__ = ["GuardedBackend", "Watchdog", "current", "deadline_fired", "watching"]


class Watchdog:
    """The sockets of one exchange and its deadline (``time.monotonic()`` seconds)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` for the rest of the exchange (shut it now if the deadline passed)."""
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            if not self.fired.is_set():
                if all(s is not sock for s in self._sockets):
                    self._sockets.append(sock)
                return
        _shutdown(sock)

    def fire(self) -> None:
        """The deadline passed: shut every attached socket (their readers see end-of-file)."""
        with self._lock:
            if self._done:
                return
            self.fired.set()
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def finish(self) -> None:
        """The exchange is over: forget the sockets (they go back to the pool untouched)."""
        with self._lock:
            self._done = True
            self._sockets = []


def _shutdown(sock: socket.socket) -> None:
    # The base-class call works for TLS sockets too, without touching the SSL state.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread firing every watchdog whose deadline passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, dog: Watchdog) -> None:
        with self._cond:
            heapq.heappush(self._heap, (dog.deadline, next(self._counter), dog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="marba-http-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, dog = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not dog.fired.is_set():
                dog.fire()


_reaper = _Reaper()
_local = threading.local()


def current() -> Watchdog | None:
    """The watchdog of the exchange running on this thread, if any."""
    return getattr(_local, "dog", None)


def deadline_fired() -> bool:
    dog = current()
    return dog is not None and dog.fired.is_set()


@contextlib.contextmanager
def watching(deadline: float) -> Iterator[Watchdog]:
    """Watch every socket this thread uses until the block ends; shut them at ``deadline``."""
    dog = Watchdog(deadline)
    previous = current()
    _local.dog = dog
    _reaper.add(dog)
    try:
        yield dog
    finally:
        dog.finish()
        _local.dog = previous


def _capped(timeout: float | None) -> float | None:
    dog = current()
    if dog is None:
        return timeout
    left = max(0.001, dog.remaining())
    return left if timeout is None else min(timeout, left)


def _socket_of(stream: Any) -> socket.socket | None:
    try:
        sock = stream.get_extra_info("socket")
    except Exception:  # noqa: BLE001 - streams differ; an unwatched read still has timeouts
        return None
    return sock if isinstance(sock, socket.socket) else None


class GuardedStream(httpcore.NetworkStream):
    """A network stream whose reads and writes are watched by the thread's watchdog."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def _watch(self) -> None:
        dog = current()
        if dog is not None:
            dog.attach(_socket_of(self._inner))

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._watch()
        return self._inner.read(max_bytes, _capped(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._watch()
        self._inner.write(buffer, _capped(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> GuardedStream:
        self._watch()
        return GuardedStream(self._inner.start_tls(ssl_context, server_hostname, _capped(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Wraps a network backend so every stream it opens is watched (see the module doc)."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=_capped(timeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        guarded = GuardedStream(stream)
        guarded._watch()
        return guarded

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return GuardedStream(
            self._inner.connect_unix_socket(
                path, timeout=_capped(timeout), socket_options=socket_options
            )
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
