"""Benchmark: the safe fetcher on N watched competitor pages vs a plain concurrent httpx GET.

The sandbox runs in its own process (so it does not share this process's GIL); both sides
fetch the same pages (home, pricing and feed of N/3 competitors) with the same number of
worker threads, alternating, and the medians are compared. The safe fetcher does all its
work: URL and address checks, the pinned connection, redirect handling, capped bounded
decompression and charset decoding. The sandbox is one host, so the per-host limit is set
to the worker count and the per-host interval to 0 for this run (politeness between
requests to one host would otherwise be what is measured). A third figure runs the whole
snapshot step (fetch + noise-free extraction) for reference.

    python -m bench.competitive_fetch --pages 3000 --workers 16
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import Scenario, measure
from marba_dagster.connectors.safe_fetch import FetchPolicy, SafeFetcher, parse_allowed_hosts
from marba_dagster.core.competitive import extract_page, parse_feed


def _serve(port: int) -> None:
    from marba_dagster.sandbox.server import serve_forever

    serve_forever("127.0.0.1", port)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("sandbox did not start")


def plain(urls: list[str], workers: int) -> int:
    with httpx.Client(
        timeout=20, limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    ) as c:

        def one(u: str) -> int:
            r = c.get(u)
            r.raise_for_status()
            _ = r.text
            return len(r.content)

        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(one, urls))


def safe(urls: list[str], workers: int, allowed: str, extract: bool = False) -> int:
    policy = FetchPolicy(
        allowed_hosts=parse_allowed_hosts(allowed),
        max_concurrency=workers,
        per_host_concurrency=workers,
        per_host_interval=0,
    )
    with SafeFetcher(policy) as f:

        def one(u: str) -> int:
            r = f.fetch(u)
            if extract:
                if u.endswith(".xml"):
                    parse_feed(r.text)
                else:
                    extract_page(r.text, u)
            return len(r.content)

        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(one, urls))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    port = _free_port()
    proc = mp.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    proc.start()
    try:
        _wait(port)
        base = f"http://127.0.0.1:{port}/sites"
        allowed = f"127.0.0.1:{port}"
        n_comp = max(1, args.pages // 3)
        urls = [
            u
            for i in range(n_comp)
            for u in (
                f"{base}/bench-{i}/",
                f"{base}/bench-{i}/pricing",
                f"{base}/bench-{i}/feed.xml",
            )
        ][: args.pages]
        plain(urls[:50], args.workers)  # warm up both sides
        safe(urls[:50], args.workers, allowed)
        plain_rates, safe_rates, peaks = [], [], []
        for _ in range(args.rounds):
            with measure() as m:
                plain(urls, args.workers)
            plain_rates.append(len(urls) / m.seconds)
            with measure() as m:
                nbytes = safe(urls, args.workers, allowed)
            safe_rates.append(len(urls) / m.seconds)
            peaks.append(m.peak_rss_mb)
        with measure() as full:
            safe(urls, args.workers, allowed, extract=True)
    finally:
        proc.terminate()
        proc.join(5)

    sc = Scenario(
        "competitive_fetch",
        size={"pages": len(urls), "workers": args.workers, "rounds": args.rounds},
    )
    p, s_ = statistics.median(plain_rates), statistics.median(safe_rates)
    sc.figure("plain_httpx_pages_per_s", p)
    sc.figure("safe_fetch_pages_per_s", s_)
    sc.figure("safe_fetch_plus_extract_pages_per_s", len(urls) / full.seconds)
    sc.figure("bytes_per_run", nbytes)
    sc.figure("peak_rss_mb", max(peaks))
    sc.figure("peak_rss_mb_with_extract", full.peak_rss_mb)
    sc.ratio("safe_vs_plain_throughput", s_, p, limit=0.7, higher_is_better=True)
    sc.limit("peak_rss_mb", max(peaks), limit=1024)
    sc.note(
        "same pages, same worker count, alternating rounds, medians; sandbox in its own process"
    )
    sc.note("per-host limit = workers and per-host interval = 0 for this single-host run")
    sc.save()


if __name__ == "__main__":
    main()
