"""A publisher run in its own process (tests start several at once, or kill one mid-way).

``python -m marba_dagster_tests.publish_worker DB_URL GRAPH_URL X_URL [--concurrency N]
[--lease SECONDS] [--wait-file PATH] [--crash-after-platform-call]`` prints the run summary
as JSON. ``--wait-file`` makes the process wait until the file exists, so that several
processes start publishing at the same moment. ``--crash-after-platform-call`` makes the
process die (exit status ``CRASH_EXIT_STATUS``, no cleanup, no commit) the moment a
platform has answered a post, before the publisher records the answer: a real crash
between the platform's answer and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from marba_dagster.connectors.http import ApiClient, HttpPolicy
from marba_dagster.connectors.publishing import PostRequest, Published
from marba_dagster.services.publishing import (
    Publisher,
    PublisherConfig,
    PublishRun,
    WebhookAlert,
    platform_publishers,
)
from marba_dagster.store.db import make_engine

CRASH_EXIT_STATUS = 86


class CrashAfterAnswer:
    """A platform's publisher that ends the process right after the platform answered."""

    def __init__(self, platform: Publisher) -> None:
        self.platform = platform

    def publish(self, post: PostRequest) -> Published:
        self.platform.publish(post)
        os._exit(CRASH_EXIT_STATUS)  # no cleanup, no commit: the answer is never recorded


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
    crash_after_platform_call: bool = False,
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
    publishers = platform_publishers(graph, x)
    if crash_after_platform_call:
        publishers = {name: CrashAfterAnswer(p) for name, p in publishers.items()}
    engine = engine or make_engine(db_url)
    run = PublishRun(
        engine,
        publishers,
        PublisherConfig(concurrency=concurrency, lease_seconds=lease, **cfg),
        run_id=f"proc-{os.getpid()}",
        alert=WebhookAlert(engine, webhook_url),
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
    ap.add_argument("--crash-after-platform-call", action="store_true")
    args = ap.parse_args(argv)
    run, clients = build_run(
        args.db_url,
        args.graph_url,
        args.x_url,
        concurrency=args.concurrency,
        lease=args.lease,
        crash_after_platform_call=args.crash_after_platform_call,
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
