"""A publisher run in its own process (tests start several at once, or kill one mid-way).

``python -m marba_dagster_tests.publish_worker DB_URL GRAPH_URL X_URL [--concurrency N]
[--lease SECONDS] [--wait-file PATH]`` prints the run summary as JSON. ``--wait-file``
makes the process wait until the file exists, so that several processes start publishing
at the same moment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from marba_dagster.connectors.http import ApiClient, HttpPolicy
from marba_dagster.connectors.publishing import GraphPublisher, XPublisher
from marba_dagster.defs.publishing.publisher import PublisherConfig, PublishRun
from marba_dagster.services.notifications import push_once
from marba_dagster.store.db import make_engine


def build_run(
    db_url: str,
    graph_url: str,
    x_url: str,
    *,
    concurrency: int = 4,
    lease: float = 300.0,
    read_timeout: float = 10.0,
    engine=None,
    webhook_url: str | None = None,
    **cfg,
) -> tuple[PublishRun, list[ApiClient]]:
    policy = HttpPolicy(
        max_attempts=1,
        connect_retries=0,
        read_timeout=read_timeout,
        deadline=max(read_timeout * 2, 5.0),
    )
    graph = ApiClient(graph_url, policy=policy, name="graph_publish")
    x = ApiClient(x_url, policy=policy, name="x_publish")
    gp = GraphPublisher(graph)
    engine = engine or make_engine(db_url)

    def alert(key, kind, text, brand_id):
        push_once(engine, webhook_url, dedup_key=key, kind=kind, text=text, brand_id=brand_id)

    run = PublishRun(
        engine,
        {"facebook": gp, "instagram": gp, "x": XPublisher(x)},
        PublisherConfig(concurrency=concurrency, lease_seconds=lease, **cfg),
        run_id=f"proc-{os.getpid()}",
        alert=alert,
    )
    return run, [graph, x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db_url")
    ap.add_argument("graph_url")
    ap.add_argument("x_url")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--lease", type=float, default=300.0)
    ap.add_argument("--wait-file")
    args = ap.parse_args(argv)
    run, clients = build_run(
        args.db_url, args.graph_url, args.x_url, concurrency=args.concurrency, lease=args.lease
    )
    if args.wait_file:
        deadline = time.monotonic() + 60
        while not os.path.exists(args.wait_file) and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        summary = run.run()
    finally:
        for c in clients:
            c.close()
    print(json.dumps(summary.as_metadata()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
