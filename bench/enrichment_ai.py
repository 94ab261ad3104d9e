"""Enrichment against the sandbox model: throughput within a rate limit, cache hits, analyzer time.

    python -m bench.enrichment_ai --brands 1000 --rpm 120 --window 2 --latency-ms 50

The sandbox enforces ``rpm`` requests per ``window`` seconds (R = rpm/window calls/s) and
adds ``latency-ms`` to every call (L). Figures: achieved AI calls/s as a fraction of R
(target >= 0.9) with the number of 429s (no storm), the AI calls of an immediate second run
(target 0), and the wall time of the same pass with the analyzer only.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sqlalchemy as sa

from bench.harness import Scenario, measure
from marba_dagster.connectors.llm import LlmLimits
from marba_dagster.core.enrichment.budget import PriceTable
from marba_dagster.sandbox import SandboxServer
from marba_dagster.services.enrichment import AiConfig, EngineConfig, EnrichmentPass
from marba_dagster.store import migrate, schema
from marba_dagster.store.db import make_engine
from marba_dagster.store.types import utcnow
from marba_dagster_tests.enrichment_fixtures import seed_brands


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brands", type=int, default=100)
    ap.add_argument("--rpm", type=int, default=120, help="requests per window (server and client)")
    ap.add_argument("--window", type=float, default=2.0, help="rate-limit window in seconds")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    rate = args.rpm / args.window
    sc = Scenario(
        "enrichment_ai",
        size={
            "brands": args.brands,
            "sections": 6,
            "rpm": args.rpm,
            "window_s": args.window,
            "latency_ms": args.latency_ms,
        },
    )
    now = utcnow()
    with tempfile.TemporaryDirectory() as tmp, SandboxServer() as sandbox:
        ids = [f"brand{i:05d}" for i in range(args.brands)]
        engines = {}
        for name in ("ai", "analyzer"):
            engine = make_engine(f"sqlite:///{Path(tmp) / name}.db")
            migrate.upgrade(engine)
            seed_brands(engine, now, ids, budget="1000")
            engines[name] = engine
        sandbox.state.llm.configure(rpm_limit=args.rpm, window_seconds=args.window)
        sandbox.faults.add("llm.chat_completions", "latency", ms=args.latency_ms)
        ai = AiConfig(
            base_url=sandbox.url("/llm/v1"),
            api_key="sandbox-key",
            model="sandbox-model",
            prices=PriceTable.parse('{"sandbox-model": [0.15, 0.6]}'),
            limits=LlmLimits(rpm=args.rpm, window_seconds=args.window),
            concurrency=args.concurrency,
            request_timeout=30.0,
            deadline=600.0,
        )
        config = EngineConfig(ai=ai)
        with measure() as first:
            report = EnrichmentPass(engines["ai"], config, now=now).run(ids)
        calls = sandbox.state.llm.stats()["calls"]
        limited = sandbox.state.llm.stats()["rate_limited"]
        with measure() as second:
            again = EnrichmentPass(engines["ai"], config, now=now).run(ids)
        with measure() as analyzer:
            EnrichmentPass(engines["analyzer"], EngineConfig(), now=now).run(ids)
        with engines["ai"].connect() as conn:
            fallbacks = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.enrichment_logs)
                .where(schema.enrichment_logs.c.error.is_not(None))
            ).scalar()
        for e in engines.values():
            e.dispose()
    achieved = calls / report.ai_seconds
    sc.figure("ai_calls", calls)
    sc.figure("ai_wall_seconds", first.seconds)
    sc.figure("ai_phase_seconds", report.ai_seconds)
    sc.figure("achieved_calls_per_s", achieved)
    sc.figure("limit_R_calls_per_s", rate)
    sc.figure("server_429s", limited)
    sc.figure("client_429s", report.llm_counters.get("rate_limited", 0))
    sc.figure("ai_fallbacks", fallbacks)
    sc.figure("second_run_ai_calls", again.ai_calls)
    sc.figure("second_run_seconds", second.seconds)
    sc.figure("analyzer_only_seconds", analyzer.seconds)
    sc.figure("ai_cost_usd", float(report.ai_cost_usd))
    sc.ratio("achieved_vs_R", achieved, rate, limit=0.9, higher_is_better=True)
    sc.limit("server_429s", limited, limit=max(1, calls // 100))
    sc.limit("second_run_ai_calls", again.ai_calls, limit=0)
    sc.note(
        f"R = {args.rpm} requests per {args.window:g}s window = {rate:g} calls/s; L = "
        f"{args.latency_ms} ms; "
        f"concurrency {args.concurrency}; ideal time {calls / rate:.1f}s for {calls} calls"
    )
    sc.save()


if __name__ == "__main__":
    main()
