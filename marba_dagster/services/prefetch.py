"""Overlapping the outside calls of many brands while their bookkeeping stays in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")

# Brands whose outside-API calls are in flight at once in the collectors (I/O-bound work:
# each brand waits on the platform's latency, so overlapping brands hides it).
BRAND_CONCURRENCY = 8


def prefetch(
    keys: Iterable[K], fn: Callable[[K], T], *, workers: int | None = None
) -> Iterator[tuple[K, Future[T]]]:
    """``(key, future of fn(key))`` in the order of ``keys``, with up to ``workers`` calls
    running in threads and at most ``2 * workers`` results held at a time (bounded memory).

    The caller consumes the futures in order on its own thread (``future.result()`` re-raises
    the call's exception there), so per-brand bookkeeping (``BrandBatch``, writes, totals)
    stays sequential and exactly as without threads; only the calls overlap. ``workers=1``
    runs every call on the caller's thread when its turn comes (the default is
    ``BRAND_CONCURRENCY``, read at call time).
    """
    workers = BRAND_CONCURRENCY if workers is None else workers
    if workers <= 1:
        for key in keys:
            fut: Future[T] = Future()
            try:
                fut.set_result(fn(key))
            except Exception as exc:  # handed to the caller through result(), as with threads
                fut.set_exception(exc)
            yield key, fut
        return
    it = iter(keys)
    with ThreadPoolExecutor(workers, thread_name_prefix="marba-brand") as pool:
        pending: deque[tuple[K, Future[T]]] = deque()

        def top_up() -> None:
            while len(pending) < 2 * workers:
                try:
                    key = next(it)
                except StopIteration:
                    return
                pending.append((key, pool.submit(fn, key)))

        top_up()
        try:
            while pending:
                item = pending.popleft()
                top_up()
                yield item
        finally:
            for _, fut in pending:
                fut.cancel()
