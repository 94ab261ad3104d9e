"""Auto-publisher throughput: N posts due at once, sandbox latency L per platform call.

Measured in the same run, against the same sandbox:

* **baseline**: a plain concurrent POST loop (a thread pool of the same width, one httpx
  client) sending N posts straight to the sandbox's publish routes: no database, no claims.
* **publisher**: one :class:`PublishRun` over N due posts in the MARBA database (claim,
  commit, call, commit the id, record events), the same concurrency.

Figures: posts/s of both, their ratio, p50/p99/max lateness of the published posts from
their scheduled time (every post is due at the run's start, so lateness is how long the
last of them waited), and a check that the sandbox received every post exactly once.

    python -m bench.publishing_throughput --posts 10000 --latency-ms 50 --concurrency 16
    python -m bench.publishing_throughput --db postgresql+psycopg2://postgres@127.0.0.1/marba_bench
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.harness import Scenario, measure
from marba_dagster.connectors.http import ApiClient, HttpPolicy
from marba_dagster.connectors.publishing import GraphPublisher, XPublisher
from marba_dagster.sandbox import SandboxServer
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.sandbox.routes._published import published_log
from marba_dagster.services.publishing import PublisherConfig, PublishRun
from marba_dagster.store import migrate, schema
from marba_dagster.store.db import make_engine
from marba_dagster.store.types import utcnow

ACCOUNTS = {"facebook": ("2001", "bench-fb-token"), "x": ("2003", "bench-x-token")}
# The baseline posts from its own accounts, so both phases start from empty accounts on the
# sandbox (its per-account post lists grow with every post; sharing them would favour
# whichever phase ran first).
BASELINE_ACCOUNTS = {"facebook": ("2101", "base-fb-token"), "x": ("2103", "base-x-token")}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def _prepare_db(url: str | None, tmp: Path):
    if url is None:
        url = f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for table in (schema.publish_events, schema.scheduled_content, schema.notifications):
            conn.execute(
                table.delete().where(sa.true())
                if table is not schema.notifications
                else table.delete()
            )
        conn.execute(
            schema.platform_accounts.delete().where(
                schema.platform_accounts.c.brand_id == "bench-brand"
            )
        )
        conn.execute(schema.brands.delete().where(schema.brands.c.id == "bench-brand"))
        conn.execute(schema.brands.insert().values(id="bench-brand", name="Bench", industry="cafe"))
        for p, (ext, tok) in ACCOUNTS.items():
            conn.execute(
                schema.platform_accounts.insert().values(
                    id=f"bench-{p}",
                    brand_id="bench-brand",
                    platform=p,
                    external_account_id=ext,
                    access_token=tok,
                )
            )
    return engine


def _seed_posts(engine, n: int, due_at) -> None:
    rows = [
        {
            "id": f"bench-{i:06d}",
            "brand_id": "bench-brand",
            "platform": ("facebook", "x")[i % 2],
            "body": f"bench post {i} {uuid.uuid4().hex[:6]}",
            "media_urls": [],
            "format": "text",
            "scheduled_at": due_at,
            "status": "scheduled",
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        for start in range(0, n, 1000):
            conn.execute(schema.scheduled_content.insert(), rows[start : start + 1000])


def baseline(sb: SandboxServer, n: int, concurrency: int) -> float:
    """Seconds for a plain concurrent POST of n posts (half Page feed, half X)."""
    env = sb.env()
    import httpx

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency * 2)) as client:

        def send(i: int) -> None:
            if i % 2 == 0:
                ext, tok = BASELINE_ACCOUNTS["facebook"]
                r = client.post(
                    f"{env['MARBA_GRAPH_API_URL']}/{ext}/feed",
                    data={"message": f"baseline {i}", "access_token": tok},
                )
            else:
                r = client.post(
                    f"{env['MARBA_X_API_URL']}/tweets",
                    json={"text": f"baseline {i}"},
                    headers={"Authorization": f"Bearer {BASELINE_ACCOUNTS['x'][1]}"},
                )
            r.raise_for_status()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, range(n)))
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    ap.add_argument(
        "--limit-ratio",
        type=float,
        default=0.5,
        help="publisher posts/s must be at least this fraction of the plain POST loop",
    )
    args = ap.parse_args(argv)
    n, conc = args.posts, args.concurrency

    with tempfile.TemporaryDirectory() as tmp, SandboxServer() as sb:
        engine = _prepare_db(args.db, Path(tmp))
        data = platform_data(sb.state)
        for accounts in (ACCOUNTS, BASELINE_ACCOUNTS):
            for p, (ext, tok) in accounts.items():
                data.add_account(p, ext, tok)
        sb.faults.add("*", "latency", ms=args.latency_ms)
        log = published_log(sb.state)

        base_seconds = baseline(sb, n, conc)
        base_count = log.count()

        due_at = utcnow() + timedelta(seconds=1)
        _seed_posts(engine, n, due_at)
        env = sb.env()
        policy = HttpPolicy(max_attempts=1, read_timeout=30, deadline=60)
        with (
            ApiClient(env["MARBA_GRAPH_API_URL"], policy=policy) as g,
            ApiClient(env["MARBA_X_API_URL"], policy=policy) as x,
        ):
            gp = GraphPublisher(g)
            run = PublishRun(
                engine,
                {"facebook": gp, "x": XPublisher(x)},
                # One account per platform here: the per-account and per-app limits are
                # off, the benchmark measures the publisher's own cost per post.
                PublisherConfig(concurrency=conc, account_limits={}, app_limits={}),
            )
            while utcnow() < due_at:
                time.sleep(0.01)
            with measure() as work:
                summary = run.run()
        published_count = log.count() - base_count
        texts = log.texts()
        doubles = sum(1 for count in texts.values() if count > 1)
        with engine.connect() as conn:
            lateness = [
                (pub - sched).total_seconds()
                for pub, sched in conn.execute(
                    sa.select(
                        schema.scheduled_content.c.published_at,
                        schema.scheduled_content.c.scheduled_at,
                    ).where(schema.scheduled_content.c.status == "published")
                )
            ]
            left = conn.execute(
                sa.select(sa.func.count()).where(schema.scheduled_content.c.status != "published")
            ).scalar_one()
        engine.dispose()

    sc = Scenario(
        "publishing_throughput",
        size={
            "posts": n,
            "latency_ms": args.latency_ms,
            "concurrency": conc,
            "db": "postgresql" if args.db and args.db.startswith("postgres") else "sqlite",
        },
    )
    base_rate = n / base_seconds
    pub_rate = summary.published / work.seconds if work.seconds else 0.0
    sc.figure("baseline_posts_per_second", base_rate)
    sc.figure("publisher_posts_per_second", pub_rate)
    sc.figure("publisher_seconds", work.seconds)
    sc.figure("baseline_seconds", base_seconds)
    sc.figure("lateness_p50_seconds", _percentile(lateness, 0.50))
    sc.figure("lateness_p99_seconds", _percentile(lateness, 0.99))
    sc.figure("lateness_max_seconds", max(lateness) if lateness else 0.0)
    sc.figure("peak_rss_mb", work.peak_rss_mb)
    sc.ratio(
        "publisher_vs_plain_post",
        pub_rate,
        base_rate,
        limit=args.limit_ratio,
        higher_is_better=True,
    )
    sc.limit(
        "published_exactly_once",
        float(published_count == n and doubles == 0 and left == 0),
        limit=1.0,
        higher_is_better=True,
    )
    sc.note(
        f"sandbox received {published_count} publisher posts for {n} due; {doubles} texts twice; "
        f"{left} posts not published"
    )
    sc.save()
    return 0 if sc.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
