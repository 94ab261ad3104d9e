"""Benchmark: precision of competitor monitoring on a labelled corpus, against a raw GET and
changedetection.io.

    python -m bench.competitive_precision [--workers 8] \\
        [--changedetection-python /path/to/venv/bin/python]

The corpus (``bench/data/competitive_corpus``, written by ``python -m bench.competitive_corpus``)
is served by a local HTTP server in its own process. Each case is a competitor with one or
two watched pages. The monitor runs as the ``competitive_monitoring`` step does - the real
``SafeFetcher``, ``plan_second_loads`` / ``fetch_second_loads`` and ``process_brand`` on a
fresh migrated SQLite database - twice: the first run sees every page for the first time
(it learns the page's noise from three loads and takes the baseline), the second run sees the
next version (noise only, or the labelled change) and writes its signals. The server answers
a page's successive loads in each run with the corpus files in order.

Reported: precision and recall per change type (a signal is a true positive when a labelled
change of its type, and product where one is named, is still unmatched; a second signal for
the same product and change is a false positive), false alerts per 100 noise-only pages,
duplicate product signals, and pages/s of the monitor (both runs, every load, extraction,
comparison, database) against a raw concurrent GET of the same loads (httpx, same worker
count) in the same run. With ``--changedetection-python`` (a Python with
``changedetection-io`` installed, e.g. a separate venv), the same pages go through
changedetection.io's own text extraction and change check at its default settings
(``bench/_competitive_cdio.py``); it says "changed" or not, without a type.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.harness import RESULTS_DIR, Scenario, render_markdown
from marba_dagster.connectors.safe_fetch import FetchPolicy, SafeFetcher, parse_allowed_hosts
from marba_dagster.core.competitive.changes import ChangeThresholds
from marba_dagster.core.competitive.products import name_similarity
from marba_dagster.services.competitive import (
    fetch_second_loads,
    fetch_urls,
    plan_second_loads,
    process_brand,
)
from marba_dagster.store import migrate, schema
from marba_dagster.store.db import insert_many, make_engine

CORPUS = Path(__file__).parent / "data" / "competitive_corpus"
TYPES = ("pricing_change", "product_launch", "website_change", "messaging_shift")
PHASE_LOADS = {1: ("before", "before_again", "before_third"), 2: ("after", "after_again")}


# ------------------------------------------------------------------------ corpus server


class _Handler(BaseHTTPRequestHandler):
    root: Path = CORPUS
    lock = threading.Lock()
    phase = 1
    counters: Counter[str] = Counter()
    served: list[str] = []

    def log_message(self, *_args) -> None:  # quiet
        return

    def _send(self, body: bytes, status: int = 200, ctype: str = "text/html; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        cls = type(self)
        if parts[0] == "_phase":
            with cls.lock:
                cls.phase = int(parts[1])
                cls.counters.clear()
                cls.served.clear()
            return self._send(b"{}", ctype="application/json")
        if parts[0] == "_served":
            with cls.lock:
                body = json.dumps(cls.served).encode()
            return self._send(body, ctype="application/json")
        if parts[0] == "raw" and len(parts) == 3:
            path = cls.root / parts[1] / parts[2]
            return self._send(path.read_bytes()) if path.is_file() else self._send(b"", 404)
        if parts[0] == "c" and len(parts) == 3:
            key = f"{parts[1]}/{parts[2]}"
            with cls.lock:
                loads = PHASE_LOADS[cls.phase]
                load = loads[min(cls.counters[key], len(loads) - 1)]
                cls.counters[key] += 1
                cls.served.append(f"{parts[1]}/{parts[2]}.{load}.html")
            path = cls.root / parts[1] / f"{parts[2]}.{load}.html"
            return self._send(path.read_bytes()) if path.is_file() else self._send(b"", 404)
        return self._send(b"", 404)


def _serve(port: int, root: str) -> None:
    _Handler.root = Path(root)
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


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
            time.sleep(0.05)
    raise RuntimeError("corpus server did not start")


# ---------------------------------------------------------------------------- the monitor


def _seed(engine, manifest: list[dict], base: str) -> dict[str, dict]:
    competitors = {}
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.brands,
            [{"id": f"b-{c['case']}", "name": c["case"], "industry": c["kind"]} for c in manifest],
        )
        rows = []
        for case in manifest:
            urls = [f"{base}/c/{case['case']}/{page}" for page in case["pages"]]
            rows.append(
                {
                    "id": f"comp-{case['case']}",
                    "brand_id": f"b-{case['case']}",
                    "name": case["case"],
                    "website_url": urls[0],
                    "watch_urls": urls[1:],
                    "feed_url": None,
                }
            )
            competitors[case["case"]] = rows[-1]
        insert_many(conn, schema.competitors, rows)
    return competitors


def _monitor_run(engine, fetcher, manifest, competitors, now: datetime) -> dict[str, list]:
    """One run of the step's logic over every case; the signals per case."""
    from marba_dagster.core.competitive.monitoring import competitor_urls

    urls = [url for case in manifest for _kind, url in competitor_urls(competitors[case["case"]])]
    results = fetch_urls(fetcher, urls)
    thresholds = ChangeThresholds()
    with engine.connect() as conn:
        plan = plan_second_loads(conn, list(competitors.values()), results, thresholds=thresholds)
    fetch_second_loads(fetcher, plan)
    signals: dict[str, list] = {}
    for case in manifest:
        with engine.begin() as conn:
            out = process_brand(
                conn,
                f"b-{case['case']}",
                [competitors[case["case"]]],
                results,
                now,
                thresholds=thresholds,
                second_loads=plan,
            )
        signals[case["case"]] = out.signals
    return signals


def _score(manifest, signals) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    duplicates = 0
    noise_pages = noise_alerts = 0
    wrong: list[str] = []
    for case in manifest:
        got = signals.get(case["case"], [])
        expected = [dict(e) for e in case["expected"]]
        if not expected:
            noise_pages += len(case["pages"])
            noise_alerts += len(got)
        for row in got:
            kind = row["payload"]["change_type"]
            product = row["payload"].get("product")
            match = next(
                (
                    e
                    for e in expected
                    if e["type"] == kind
                    and (
                        not e.get("product")
                        or (product and name_similarity(e["product"], product) >= 0.8)
                    )
                ),
                None,
            )
            if match is not None:
                tp[kind] += 1
                expected.remove(match)
            else:
                fp[kind] += 1
                if kind in ("pricing_change", "product_launch") and any(
                    e["type"] == kind for e in case["expected"]
                ):
                    duplicates += 1
                wrong.append(f"{case['case']}: unexpected {kind} ({row['title'][:80]})")
        for e in expected:
            fn[e["type"]] += 1
            wrong.append(f"{case['case']}: missed {e['type']} {e.get('product') or ''}".strip())
    per_type = {}
    for kind in TYPES:
        p = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0
        r = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else 1.0
        per_type[kind] = {
            "tp": tp[kind],
            "fp": fp[kind],
            "fn": fn[kind],
            "precision": p,
            "recall": r,
        }
    return {
        "per_type": per_type,
        "noise_pages": noise_pages,
        "noise_alerts": noise_alerts,
        "false_alerts_per_100_noise_pages": 100 * noise_alerts / max(1, noise_pages),
        "duplicates": duplicates,
        "wrong": wrong,
    }


def _raw_get(base: str, served: list[str], workers: int) -> float:
    """Seconds for a plain concurrent GET of the same loads the monitor made."""
    urls = [f"{base}/raw/{path}" for path in served]
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(timeout=20, limits=limits) as client:

        def one(url: str) -> int:
            response = client.get(url)
            response.raise_for_status()
            return len(response.text)

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, urls))
        return time.perf_counter() - started


def _changedetection(python: str, base: str) -> dict[str, Any] | None:
    runner = Path(__file__).with_name("_competitive_cdio.py")
    try:
        done = subprocess.run(
            [python, str(runner), "--base", base, "--corpus", str(CORPUS)],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"changedetection.io column skipped: {exc}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--changedetection-python", default=None)
    args = ap.parse_args(argv)
    manifest = json.loads((CORPUS / "manifest.json").read_text())

    port = _free_port()
    proc = mp.get_context("spawn").Process(target=_serve, args=(port, str(CORPUS)), daemon=True)
    proc.start()
    tmp = tempfile.TemporaryDirectory()
    try:
        _wait(port)
        base = f"http://127.0.0.1:{port}"
        engine = make_engine(f"sqlite:///{tmp.name}/marba.db")
        migrate.upgrade(engine)
        competitors = _seed(engine, manifest, base)
        policy = FetchPolicy(
            allowed_hosts=parse_allowed_hosts(f"127.0.0.1:{port}"),
            max_concurrency=args.workers,
            per_host_concurrency=args.workers,
            per_host_interval=0,
        )
        now = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
        served: list[str] = []
        seconds = 0.0
        with SafeFetcher(policy) as fetcher:
            for phase in (1, 2):
                httpx.get(f"{base}/_phase/{phase}")
                started = time.perf_counter()
                signals = _monitor_run(
                    engine, fetcher, manifest, competitors, now + timedelta(hours=6 * phase)
                )
                seconds += time.perf_counter() - started
                served += httpx.get(f"{base}/_served").json()
        engine.dispose()
        raw_seconds = _raw_get(base, served, args.workers)
        cdio = (
            _changedetection(args.changedetection_python, base)
            if args.changedetection_python
            else None
        )
    finally:
        proc.terminate()
        proc.join(5)
        tmp.cleanup()

    score = _score(manifest, signals)
    pages = sum(len(c["pages"]) for c in manifest)
    judged = 2 * pages  # every page in both runs
    report(manifest, score, pages, judged, seconds, raw_seconds, len(served), cdio, args)


def report(manifest, score, pages, judged, seconds, raw_seconds, loads, cdio, args) -> None:
    cases = len(manifest)
    sc = Scenario(
        "competitive_precision",
        size={"cases": cases, "pages": pages, "loads": loads, "workers": args.workers},
    )
    for kind, s in score["per_type"].items():
        sc.figure(f"{kind}_precision", s["precision"])
        sc.figure(f"{kind}_recall", s["recall"])
    sc.figure("false_alerts_per_100_noise_pages", score["false_alerts_per_100_noise_pages"])
    sc.figure("duplicate_product_signals", score["duplicates"])
    sc.figure("monitor_pages_per_s", judged / seconds)
    sc.figure("raw_get_pages_per_s", judged / raw_seconds)
    sc.limit("false_alerts_per_100_noise_pages", score["noise_alerts"], limit=0)
    sc.limit("missed_or_mistyped", sum(s["fn"] for s in score["per_type"].values()), limit=0)
    sc.limit("duplicate_product_signals", score["duplicates"], limit=0)
    if cdio is not None:
        sc.figure("cdio_false_alerts_per_100_noise_pages", cdio["false_alerts_per_100_noise_pages"])
        sc.figure("cdio_change_recall", cdio["recall"])
        sc.figure("cdio_pages_per_s", judged / cdio["seconds"])
    sc.note(
        "monitor: the competitive step's own service functions (SafeFetcher, second loads, "
        "process_brand) on SQLite, two runs; raw GET: httpx, the same loads, same workers"
    )
    sc.save()
    history = json.loads((RESULTS_DIR / "competitive_precision.json").read_text())
    (RESULTS_DIR / "competitive_precision.md").write_text(
        _markdown(manifest, score, pages, judged, seconds, raw_seconds, loads, cdio, args)
        + "\n## History\n\n"
        + render_markdown("competitive_precision", history).split("\n", 2)[2]
    )


def _markdown(manifest, score, pages, judged, seconds, raw_seconds, loads, cdio, args) -> str:
    langs = Counter(c["lang"] for c in manifest)
    currencies = Counter(c["currency"] for c in manifest)
    kinds = Counter(c["kind"] for c in manifest)
    noise_kinds = Counter(k for c in manifest for k in c["noise"])
    labelled = Counter(e["type"] for c in manifest for e in c["expected"])
    noise_cases = sum(1 for c in manifest if not c["expected"])
    command = "python -m bench.competitive_precision --workers " + str(args.workers)
    if args.changedetection_python:
        command += " --changedetection-python <venv with changedetection-io>/bin/python"
    lines = [
        "# Benchmark: competitive_precision",
        "",
        "Competitor monitoring on a labelled corpus of its own (`bench/data/competitive_corpus`,"
        " generated by `python -m bench.competitive_corpus`), side by side with a raw GET of"
        " the same pages and with changedetection.io.",
        "",
        "Reproduce:",
        "",
        "```",
        "python -m bench.competitive_corpus   # only to regenerate the corpus (deterministic)",
        command,
        "```",
        "",
        f"Corpus: {len(manifest)} cases, {pages} pages ({noise_cases} noise-only cases, "
        f"{score['noise_pages']} noise-only pages); "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + "; languages "
        + ", ".join(f"{k} {v}" for k, v in sorted(langs.items()))
        + "; currencies "
        + ", ".join(f"{k} {v}" for k, v in sorted(currencies.items()))
        + "; labelled changes "
        + ", ".join(f"{k} {v}" for k, v in sorted(labelled.items()))
        + ". Noise kinds (cases carrying them): "
        + ", ".join(f"{k} {v}" for k, v in sorted(noise_kinds.items()))
        + ".",
        "",
        "| change type | labelled | signals right | wrong or extra | missed | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, s in score["per_type"].items():
        lines.append(
            f"| {kind} | {labelled.get(kind, 0)} | {s['tp']} | {s['fp']} | {s['fn']} | "
            f"{s['precision']:.2f} | {s['recall']:.2f} |"
        )
    lines += [
        "",
        "| | monitor | changedetection.io (default settings) |",
        "|---|---|---|",
        f"| false alerts per 100 noise-only pages | {score['false_alerts_per_100_noise_pages']:.1f}"
        f" ({score['noise_alerts']} of {score['noise_pages']}) | "
        + (
            f"{cdio['false_alerts_per_100_noise_pages']:.1f} ({cdio['noise_alerts']} of "
            f"{cdio['noise_pages']})"
            if cdio
            else "not run"
        )
        + " |",
        "| labelled pages flagged (any type) | "
        + f"{sum(s['tp'] for s in score['per_type'].values())} right signals, "
        + f"{sum(s['fn'] for s in score['per_type'].values())} missed | "
        + (f"recall {cdio['recall']:.2f} (changed or not, no type)" if cdio else "not run")
        + " |",
        f"| duplicate signals for one product and change | {score['duplicates']} | n/a |",
        f"| pages/s (each page judged in both runs) | {judged / seconds:.1f} ({loads} loads:"
        " three on first sight, one more where the text changed) | "
        + (
            f"{judged / cdio['seconds']:.1f} ({judged} loads, one per check, sequential)"
            if cdio
            else "not run"
        )
        + " |",
        "",
        f"Raw concurrent GET of the same {loads} loads (httpx, {args.workers} workers): "
        f"{judged / raw_seconds:.1f} pages/s ({raw_seconds:.2f} s against the monitor's "
        f"{seconds:.2f} s, which includes the noise learning loads, extraction, comparison "
        "and the SQLite writes of both runs).",
        "",
        "How the monitor runs here: the `competitive_monitoring` step's own service functions "
        "(`SafeFetcher`, `plan_second_loads`, `fetch_second_loads`, `process_brand`) on a fresh"
        " migrated SQLite database, twice (first sight, then the next version); all pages are"
        " on one local host, so the per-host limit is the worker count and the interval 0."
        " changedetection.io: its `html_to_text` and its MD5 check with its default"
        " `ignore_whitespace`, first check on the first load, second check on the next"
        " version (`bench/_competitive_cdio.py`).",
        "",
        "A website_change needs 5 changed words, or 3 words that are at least 5 % of the page"
        " (after the mask, with prices masked and blocks compared as a multiset).",
        "",
        "The rules were developed with this corpus in view; the pages of"
        " `marba_dagster_tests/test_competitive_noise.py` (other markup, class names, noise"
        " wordings and token shapes) are the held-out check. changedetection.io"
        f" {cdio.get('version', '?') if cdio else '(not installed)'} was installed from PyPI"
        " into a separate venv (`pip install changedetection-io`, a few minutes).",
    ]
    if score["wrong"]:
        lines += ["", "Errors:", ""] + [f"- {w}" for w in score["wrong"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
