"""A publisher run in its own process (tests start several at once, or kill one mid-way).

``python -m marba_dagster_tests.publish_worker DB_URL GRAPH_URL X_URL [--concurrency N]
[--lease SECONDS] [--wait-file PATH] [--crash-after-platform-call | --crash-at-send-record]
[--hold-others]`` prints the run summary
as JSON. ``--wait-file`` makes the process wait until the file exists, so that several
processes start publishing at the same moment. ``--crash-after-platform-call`` makes the
process die (exit status ``CRASH_EXIT_STATUS``, no cleanup, no commit) the moment a
platform has answered a post, before the publisher records the answer: a real crash
between the platform's answer and the commit. ``--crash-at-send-record`` dies right after
the "about to send" record is committed, before the request leaves. ``--hold-others`` (see
:class:`CrashAfterAnswer`) makes every other claimed post wait, unsent, for the crash.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import threading
import time

from marba_dagster.connectors.http import ApiClient, HttpPolicy
from marba_dagster.connectors.publishing import LimitHeaders, PostRequest, Published
from marba_dagster.services.publishing import (
    Publisher,
    PublisherConfig,
    PublishRun,
    WebhookAlert,
    media_fetcher,
    platform_publishers,
)
from marba_dagster.store.db import make_engine

CRASH_EXIT_STATUS = 86


CRASH_MARK = "[crash]"  # with --hold-others, the post whose send ends the process


class CrashAfterAnswer:
    """A platform's publisher that ends the process right after the platform answered.

    ``at_send_record``: end it right after the "about to send" record was committed,
    before the request goes out (the platform never hears of the post).
    ``hold_others``: every worker first waits until ``workers`` posts are claimed at once;
    then only a post whose body holds ``CRASH_MARK`` goes on, the others are held before
    sending (claimed, never sent) when the process dies.
    """

    def __init__(
        self,
        platform: Publisher,
        *,
        at_send_record: bool = False,
        hold_others: threading.Barrier | None = None,
    ) -> None:
        self.platform = platform
        self.at_send_record = at_send_record
        self.hold_others = hold_others

    def publish(self, post: PostRequest) -> Published:
        if self.hold_others is not None:
            self.hold_others.wait(timeout=60)
            if CRASH_MARK not in post.body:
                time.sleep(3600)  # claimed, never sent: the crash comes first
        if self.at_send_record:
            post = dataclasses.replace(
                post, before_send=functools.partial(_exit_after, post.before_send)
            )
        self.platform.publish(post)
        os._exit(CRASH_EXIT_STATUS)  # no cleanup, no commit: the answer is never recorded


def _exit_after(record) -> None:
    record()
    os._exit(CRASH_EXIT_STATUS)


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
    crash_at_send_record: bool = False,
    hold_others: bool = False,
    gbp_url: str | None = None,
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
    gbp = ApiClient(gbp_url, policy=policy, name="gbp_publish") if gbp_url else None
    headers = LimitHeaders()
    fetcher = media_fetcher(cfg.get("allowed_media_hosts", frozenset()))
    publishers = platform_publishers(graph, x, headers, gbp, fetcher)
    if crash_after_platform_call or crash_at_send_record:
        barrier = threading.Barrier(concurrency) if hold_others else None
        publishers = {
            name: CrashAfterAnswer(p, at_send_record=crash_at_send_record, hold_others=barrier)
            for name, p in publishers.items()
        }
    engine = engine or make_engine(db_url)
    run = PublishRun(
        engine,
        publishers,
        PublisherConfig(concurrency=concurrency, lease_seconds=lease, **cfg),
        run_id=f"proc-{os.getpid()}",
        alert=WebhookAlert(engine, webhook_url),
        limit_headers=headers,
    )
    return run, [c for c in (graph, x, gbp, fetcher) if c is not None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db_url")
    ap.add_argument("graph_url")
    ap.add_argument("x_url")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--lease", type=float, default=300.0)
    ap.add_argument("--wait-file")
    ap.add_argument("--crash-after-platform-call", action="store_true")
    ap.add_argument("--crash-at-send-record", action="store_true")
    ap.add_argument("--hold-others", action="store_true")
    ap.add_argument("--gbp-url")
    args = ap.parse_args(argv)
    run, clients = build_run(
        args.db_url,
        args.graph_url,
        args.x_url,
        concurrency=args.concurrency,
        lease=args.lease,
        crash_after_platform_call=args.crash_after_platform_call,
        crash_at_send_record=args.crash_at_send_record,
        hold_others=args.hold_others,
        gbp_url=args.gbp_url,
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
