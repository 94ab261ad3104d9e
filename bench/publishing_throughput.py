"""Auto-publisher throughput and bursts: N posts due at once over A accounts, sandbox latency.

Measured in the same run, against the same sandbox (``marba sandbox`` in its own process, so
its CPU is not this process's; every answer delayed by ``--latency-ms`` or by a draw from
``--latency-ms-min``..``--latency-ms-max``, the sandbox's ``latency`` fault with ``ms_max``):

* **baseline**: a plain concurrent POST loop (a thread pool of the same width, one httpx
  client) sending the same N posts straight to the sandbox's publish routes from mirror
  accounts: no database, no claims, no limits (an Instagram post is its two POSTs: the
  container and ``media_publish``).
* **publisher**: one run of the auto-publisher's service (``publish_due_posts``, what the
  ``publishing/published_posts`` asset calls: claim, commit, per-account and per-app limits,
  the Instagram content publishing limit, call, commit the id, record events) over N due
  posts in the MARBA database, the same concurrency.

Figures: posts/s of both and their ratio, p50/p99/max lateness of the published posts from
their scheduled time (every post is due when the run starts, so lateness is how long each
waited for its turn), per platform too, where a post's time goes (claim to published against
the sandbox's own answer time), peak RSS of this process during the run and of the sandbox,
and the sandbox's count of posts received: every post exactly once, no text twice.

Without ``--accounts`` it is the publisher's cost per post (``publishing_throughput``): one
account per platform, limits off (one account could not send 10,000 posts under them).
With ``--accounts`` it is a burst (``publishing_burst``): the posts spread round-robin over
A accounts (account i on platform i mod P, three accounts a brand), the publisher's default
per-account and per-app limits on (``--limits off`` to compare) and p99 lateness judged
against ``--max-p99-lateness`` (300 s).

    python -m bench.publishing_throughput --posts 10000 --latency-ms 50 --concurrency 16
    python -m bench.publishing_throughput --pg --posts 10000 --accounts 5000 \\
        --platforms facebook,instagram,x --latency-ms-min 100 --latency-ms-max 300
    python -m bench.publishing_throughput --pg --posts 10000 --accounts 5000 \\
        --latency-ms-min 100 --latency-ms-max 300 --daemon --shards 4

``--pg`` creates a throwaway PostgreSQL database on ``MARBA_BENCH_PG_URL``'s server
(default ``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``) and drops it after;
``--db URL`` uses (and empties the publishing tables of) an existing one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.full_cycle import Sandbox, _free_port, create_db, drop_db
from bench.harness import Scenario, measure
from marba_dagster.connectors.http import HttpPolicy
from marba_dagster.services.publishing import (
    PublisherConfig,
    publish_due_posts,
    single_attempt_client,
)
from marba_dagster.store import migrate, schema
from marba_dagster.store.db import make_engine
from marba_dagster.store.types import utcnow

PLATFORMS = ("facebook", "instagram", "x")
BRAND_PREFIX = "bench-b"
BASE_BRAND_PREFIX = "bench-base-b"
# Account ids: publisher accounts 5xxxxxxxx, their baseline mirrors 6xxxxxxxx (the sandbox's
# per-account post lists grow with every post; sharing them would favour whichever phase
# ran first). Neither collides with the sandbox's container (1789...) or media ids.
PUBLISHER_ID, BASELINE_ID = 500_000_000, 600_000_000


@dataclass(frozen=True)
class Account:
    index: int
    platform: str
    ext: str
    token: str
    brand_id: str


def accounts_for(n: int, platforms: tuple[str, ...], *, baseline: bool) -> list[Account]:
    """Account i is on platform i mod P, in brand i // P (a brand has one of each)."""
    first, prefix = (BASELINE_ID, BASE_BRAND_PREFIX) if baseline else (PUBLISHER_ID, BRAND_PREFIX)
    tag = "base" if baseline else "pub"
    return [
        Account(
            index=i,
            platform=platforms[i % len(platforms)],
            ext=str(first + i),
            token=f"bench-{tag}-{i}-token",
            brand_id=f"{prefix}{i // len(platforms):05d}",
        )
        for i in range(n)
    ]


@dataclass(frozen=True)
class BenchPost:
    index: int
    account: int
    text: str
    media: tuple[str, ...]


def posts_for(n: int, accounts: list[Account], run_tag: str) -> list[BenchPost]:
    """Post i goes to account i mod A; Instagram posts carry one public https image."""
    out = []
    for i in range(n):
        a = accounts[i % len(accounts)]
        media = (
            (f"https://cdn.example.com/bench/{run_tag}/{i}.jpg",)
            if a.platform == "instagram"
            else ()
        )
        out.append(BenchPost(i, a.index, f"post {i} {run_tag}", media))
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM), MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _prepare_db(url: str, pub: list[Account], base: list[Account]):
    engine = make_engine(url)
    migrate.upgrade(engine)
    brands = {a.brand_id for a in pub + base}
    with engine.begin() as conn:
        for table in (schema.publish_events, schema.scheduled_content, schema.notifications):
            conn.execute(table.delete())
        bench_brands = sa.or_(
            schema.brands.c.id.like(f"{BRAND_PREFIX}%"),
            schema.brands.c.id.like(f"{BASE_BRAND_PREFIX}%"),
        )
        conn.execute(
            schema.platform_accounts.delete().where(
                schema.platform_accounts.c.brand_id.in_(
                    sa.select(schema.brands.c.id).where(bench_brands)
                )
            )
        )
        conn.execute(schema.brands.delete().where(bench_brands))
        conn.execute(
            schema.brands.insert(),
            [{"id": b, "name": f"Bench {b}", "industry": "cafe"} for b in sorted(brands)],
        )
        rows = [
            {
                "id": f"acct-{a.ext}",
                "brand_id": a.brand_id,
                "platform": a.platform,
                "external_account_id": a.ext,
                "access_token": a.token,
            }
            for a in pub + base
        ]
        for start in range(0, len(rows), 2000):
            conn.execute(schema.platform_accounts.insert(), rows[start : start + 2000])
    return engine


def _seed_posts(engine, posts: list[BenchPost], accounts: list[Account], due_at) -> None:
    rows = []
    for p in posts:
        a = accounts[p.account]
        rows.append(
            {
                "id": f"bench-{p.index:06d}",
                "brand_id": a.brand_id,
                "platform": a.platform,
                "body": p.text,
                "media_urls": list(p.media),
                "format": "image" if p.media else "text",
                "scheduled_at": due_at,
                "status": "scheduled",
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(schema.scheduled_content.insert(), rows[start : start + 1000])


def _sandbox_json(sb: Sandbox, path: str, body: dict | None = None, timeout: float = 60) -> dict:
    req = urllib.request.Request(
        f"{sb.base_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def baseline(
    base_url: str, posts: list[BenchPost], accounts: list[Account], concurrency: int
) -> float:
    """Seconds for a plain concurrent POST of the posts, each from its mirror account."""
    graph, x = f"{base_url}/graph/v21.0", f"{base_url}/x/2"
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency * 2)) as client:

        def send(p: BenchPost) -> None:
            a = accounts[p.account]
            if a.platform == "facebook":
                r = client.post(
                    f"{graph}/{a.ext}/feed", data={"message": p.text, "access_token": a.token}
                )
            elif a.platform == "instagram":
                c = client.post(
                    f"{graph}/{a.ext}/media",
                    data={"image_url": p.media[0], "caption": p.text, "access_token": a.token},
                )
                c.raise_for_status()
                r = client.post(
                    f"{graph}/{a.ext}/media_publish",
                    data={"creation_id": c.json()["id"], "access_token": a.token},
                )
            else:
                r = client.post(
                    f"{x}/tweets",
                    json={"text": p.text},
                    headers={"Authorization": f"Bearer {a.token}"},
                )
            r.raise_for_status()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, posts))
        return time.perf_counter() - t0


def _parse_platforms(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in PLATFORMS]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"platforms: a comma-separated list of {', '.join(PLATFORMS)} (got {text!r})"
        )
    return names


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="spread the posts over this many accounts (a burst: publishing_burst, default "
        "limits on); default one per platform (publishing_throughput, limits off)",
    )
    ap.add_argument(
        "--platforms",
        type=_parse_platforms,
        default=None,
        help="comma-separated, of facebook,instagram,x (default: facebook,x without "
        "--accounts, all three with it)",
    )
    ap.add_argument("--latency-ms", type=float, default=50.0, help="every sandbox answer")
    ap.add_argument("--latency-ms-min", type=float, default=None, help="with --latency-ms-max")
    ap.add_argument(
        "--latency-ms-max",
        type=float,
        default=None,
        help="each sandbox answer delayed by a draw uniform in min..max (replaces --latency-ms)",
    )
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument(
        "--limits",
        choices=("default", "off"),
        default=None,
        help="the publisher's default per-account and per-app limits, or none (default: "
        "on with --accounts, off without)",
    )
    ap.add_argument(
        "--max-p99-lateness",
        type=float,
        default=None,
        help="seconds the p99 lateness is judged against (default 300 with --accounts)",
    )
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temporary SQLite)")
    where.add_argument(
        "--pg",
        action="store_true",
        help="a throwaway PostgreSQL database (MARBA_BENCH_PG_URL's server), dropped after",
    )
    ap.add_argument(
        "--limit-ratio",
        type=float,
        default=0.5,
        help="publisher posts/s must be at least this fraction of the plain POST loop",
    )
    ap.add_argument("--results", type=Path, default=None, help="results directory")
    ap.add_argument(
        "--daemon",
        action="store_true",
        help="publish through dagster-daemon: the auto_publisher job queued in --shards brand "
        "shards as its schedule would, each run at the publisher's default width "
        "(bench/publishing_daemon.py; needs --pg)",
    )
    ap.add_argument("--shards", type=int, default=4, help="with --daemon: brand shards")
    ap.add_argument(
        "--keep",
        action="store_true",
        help="with --pg: keep the MARBA database (posts, publish_events) to look into",
    )
    args = ap.parse_args(argv)
    burst = args.accounts is not None
    args.platforms = args.platforms or (PLATFORMS if burst else ("facebook", "x"))
    args.accounts = args.accounts if burst else len(args.platforms)
    args.limits = args.limits or ("default" if burst else "off")
    if args.max_p99_lateness is None and burst:
        args.max_p99_lateness = 300.0
    args.name = "publishing_burst" if burst else "publishing_throughput"
    if (args.latency_ms_min is None) != (args.latency_ms_max is None):
        ap.error("--latency-ms-min and --latency-ms-max go together")
    if args.latency_ms_min is None:
        args.latency_ms_min = args.latency_ms_max = args.latency_ms
    if not 0 <= args.latency_ms_min <= args.latency_ms_max:
        ap.error("latency: 0 <= --latency-ms-min <= --latency-ms-max")
    if args.posts < 1 or args.concurrency < 1:
        ap.error("--posts and --concurrency must be >= 1")
    if args.daemon and not args.pg:
        ap.error("--daemon needs --pg (the Dagster instance and the runs share PostgreSQL)")
    if args.daemon and not (1 <= args.shards <= args.accounts // len(args.platforms)):
        ap.error("--shards must be between 1 and the number of brands")
    if args.accounts < len(args.platforms):
        ap.error(f"--accounts must be at least the number of platforms ({len(args.platforms)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    command = "python -m bench.publishing_throughput " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    n, conc = args.posts, args.concurrency
    daemon_run: dict = {}
    if args.daemon:
        from bench import publishing_daemon

        # Runs of the job at once, each at the publisher's width: the baseline gets as many
        # requests in flight.
        conc = args.concurrency * min(args.shards, publishing_daemon.JOB_RUN_LIMIT)
    run_tag = uuid.uuid4().hex[:6]
    pub_accounts = accounts_for(args.accounts, args.platforms, baseline=False)
    base_accounts = accounts_for(args.accounts, args.platforms, baseline=True)
    load_start = _loadavg()
    pg_name = None
    sb = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.pg:
            pg_name, url = create_db("marba_bench_burst")
        engine = None
        try:
            engine = _prepare_db(url, pub_accounts, base_accounts)
            sb = Sandbox(url, _free_port(), Path(tmp) / "sandbox.log")
            latency = {"route": "*", "kind": "latency", "ms": args.latency_ms_min}
            if args.latency_ms_max > args.latency_ms_min:
                latency["ms_max"] = args.latency_ms_max
            _sandbox_json(sb, "/_sandbox/faults", latency)

            base_posts = posts_for(n, base_accounts, f"base-{run_tag}")
            print(f"baseline: {n} posts, plain concurrent POST ({conc} at once)", flush=True)
            base_seconds = baseline(sb.base_url, base_posts, base_accounts, conc)
            base_count = _sandbox_json(sb, "/_sandbox/published")["count"]

            posts = posts_for(n, pub_accounts, f"pub-{run_tag}")
            if args.daemon:
                summary, work, daemon_run = _publish_through_daemon(
                    args, engine, url, sb, posts, pub_accounts, Path(tmp)
                )
                req0, cpu0, started_epoch = (
                    daemon_run["requests_before"],
                    daemon_run["sandbox_cpu_before"],
                    daemon_run["started_epoch"],
                )
            else:
                due_at = utcnow() + timedelta(seconds=2)
                _seed_posts(engine, posts, pub_accounts, due_at)
                policy = HttpPolicy(read_timeout=15.0, deadline=30.0)  # ApiEndpoint's defaults
                config = PublisherConfig(concurrency=conc)
                if args.limits == "off":
                    config = PublisherConfig(concurrency=conc, account_limits={}, app_limits={})
                print(f"publisher: {n} posts over {args.accounts} accounts", flush=True)
                req0, cpu0 = sb.request_count(), sb.cpu_seconds()
                with (
                    single_attempt_client(f"{sb.base_url}/graph/v21.0", policy, "graph") as g,
                    single_attempt_client(f"{sb.base_url}/x/2", policy, "x") as x,
                ):
                    while utcnow() < due_at:
                        time.sleep(0.01)
                    started_epoch = time.time()
                    with measure() as work:
                        summary = publish_due_posts(
                            engine,
                            g,
                            x,
                            config,
                            run_id=f"bench-{run_tag}",
                            brand_ids=None,
                            webhook_url=None,
                        )
            sandbox_requests = sb.request_count() - req0
            sandbox_cpu = sb.cpu_seconds() - cpu0
            published = _sandbox_json(sb, "/_sandbox/published")
            log = _sandbox_json(sb, "/_sandbox/requests")["requests"]
            answer_ms = [
                r["duration_ms"]
                for r in log
                if r["started_at"] >= started_epoch and r["duration_ms"] is not None
            ]
            sandbox_rss = _peak_rss_mb(sb.proc.pid)
            rows = _post_rows(engine)
        finally:
            if sb is not None:
                sb.stop()
            if engine is not None:
                engine.dispose()
            if pg_name is not None and args.keep:
                print(f"kept the MARBA database: {pg_name}", flush=True)
            elif pg_name is not None:
                drop_db(pg_name)
    load_end = _loadavg()

    published_count = published["count"] - base_count
    doubles = len(published["duplicates"])
    lateness = [r["lateness"] for r in rows if r["status"] == "published"]
    service = [r["service"] for r in rows if r["service"] is not None]
    left = sum(1 for r in rows if r["status"] != "published")
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1

    size = {
        "posts": n,
        "latency_ms": args.latency_ms_min
        if args.latency_ms_min == args.latency_ms_max
        else f"{args.latency_ms_min:g}-{args.latency_ms_max:g}",
        "concurrency": conc,
        "db": "postgresql" if url.startswith("postgres") else "sqlite",
    }
    if args.name.startswith("publishing_burst"):
        size = {
            "posts": n,
            "accounts": args.accounts,
            "platforms": ",".join(args.platforms),
            **{k: v for k, v in size.items() if k != "posts"},
            "limits": args.limits,
        }
    size["publisher"] = (
        f"dagster-daemon, {args.shards} shard runs of width {args.concurrency}"
        if args.daemon
        else "in-process service call"
    )
    sc = Scenario(args.name, size=size)
    base_rate = n / base_seconds
    pub_rate = summary.published / work.seconds if work.seconds else 0.0
    sc.figure("baseline_posts_per_second", base_rate)
    sc.figure("publisher_posts_per_second", pub_rate)
    sc.figure("publisher_seconds", work.seconds)
    sc.figure("baseline_seconds", base_seconds)
    sc.figure("lateness_p50_seconds", _percentile(lateness, 0.50))
    sc.figure("lateness_p99_seconds", _percentile(lateness, 0.99))
    sc.figure("lateness_max_seconds", max(lateness) if lateness else 0.0)
    if len(args.platforms) > 1:
        for platform in args.platforms:
            mine = [r["lateness"] for r in rows if r["platform"] == platform and r["lateness"]]
            sc.figure(f"lateness_p99_{platform}_seconds", _percentile(mine, 0.99))
    if work.peak_rss_mb is not None:
        sc.figure("peak_rss_mb", work.peak_rss_mb)
    if work.cpu_seconds is not None:
        sc.figure("publisher_cpu_seconds", work.cpu_seconds)
    sc.figure("sandbox_peak_rss_mb", sandbox_rss)
    sc.figure("sandbox_cpu_seconds", sandbox_cpu)
    sc.figure("sandbox_requests_per_post", sandbox_requests / n)
    mean_answer = statistics.fmean(answer_ms) / 1000 if answer_ms else 0.0
    mean_service = statistics.fmean(service) if service else 0.0
    sc.figure("sandbox_answer_mean_seconds", mean_answer)
    sc.figure("claim_to_published_mean_seconds", mean_service)
    sc.figure(
        "publisher_own_seconds_per_post",
        max(0.0, mean_service - mean_answer * sandbox_requests / n),
    )
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
    if args.max_p99_lateness is not None:
        sc.limit("lateness_p99_seconds", _percentile(lateness, 0.99), limit=args.max_p99_lateness)
    sc.note(f"command: `{command}`")
    if args.daemon:
        sc.note(
            f"through dagster-daemon: {daemon_run['shards']} auto_publisher runs (one per brand "
            f"shard, at most {publishing_daemon.JOB_RUN_LIMIT} at once, each "
            f"{args.concurrency} posts wide), queued as the schedule queues them when the "
            f"posts fell due; run times {daemon_run['shard_run_seconds']} s; statuses "
            f"{daemon_run['statuses']}; execution {daemon_run['execution_status']}; peak RSS of "
            f"one run process {daemon_run['peak_process_rss_mb']} MB; other runs meanwhile "
            f"{daemon_run['other_runs']} {daemon_run['other_run_jobs']}; the baseline sends "
            f"{conc} at once (runs at once x width)"
        )
    sc.note(f"load average (1, 5, 15 min) at start {load_start}, at end {load_end}")
    sc.note(
        f"sandbox received {published_count} publisher posts for {n} due; {doubles} texts "
        f"more than once; {left} posts not published; statuses {statuses}; run summary "
        f"deferred={summary.deferred}, retry_scheduled={summary.retry_scheduled}, "
        f"failed={summary.failed}"
    )
    sc.note(
        f"where a post's time goes: claim to published {mean_service:.3f} s on average, of "
        f"which the sandbox's answers {mean_answer * sandbox_requests / n:.3f} s "
        f"({sandbox_requests / n:.2f} requests of {mean_answer:.3f} s); {conc} at once bound "
        f"the run to {conc / mean_service if mean_service else 0:.1f} posts/s"
    )
    sc.save(args.results) if args.results else sc.save()
    return 0 if sc.passed else 1


@dataclass
class _DaemonSummary:
    published: int
    deferred: int
    retry_scheduled: int
    failed: int


@dataclass
class _DaemonWork:
    seconds: float
    peak_rss_mb: float | None
    cpu_seconds: float | None = None  # the run processes' CPU is not measured


def _publish_through_daemon(args, engine, url, sb, posts, accounts, tmp: Path):
    """The burst published by ``auto_publisher`` runs the daemon launches (one per shard)."""
    from bench import publishing_daemon

    brands = {a.brand_id for a in accounts}
    publishing_daemon.only_brands_active(engine, brands)
    with publishing_daemon.daemon(
        url, sb.base_url, len(brands), args.shards, args.concurrency, tmp
    ) as (
        sched,
        instance,
        peaks,
    ):
        due_at = utcnow() + timedelta(seconds=2)
        _seed_posts(engine, posts, accounts, due_at)
        print(
            f"publisher through dagster-daemon: {len(posts)} posts over {args.accounts} "
            f"accounts in {args.shards} shard runs",
            flush=True,
        )
        req0, cpu0 = sb.request_count(), sb.cpu_seconds()
        while utcnow() < due_at:
            time.sleep(0.01)
        started_epoch = time.time()
        run = publishing_daemon.publish(sched, instance, peaks, len(posts))
    print(f"  runs: {run}", flush=True)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(schema.scheduled_content.c.status, sa.func.count()).group_by(
                    schema.scheduled_content.c.status
                )
            ).all()
        )
    summary = _DaemonSummary(
        published=counts.get("published", 0),
        deferred=counts.get("scheduled", 0),
        retry_scheduled=counts.get("retry_scheduled", 0),
        failed=counts.get("failed", 0),
    )
    run.update(requests_before=req0, sandbox_cpu_before=cpu0, started_epoch=started_epoch)
    return summary, _DaemonWork(run["seconds"], run["peak_process_rss_mb"]), run


def _post_rows(engine) -> list[dict]:
    """Each post's status, platform, lateness and claim-to-published seconds."""
    sc_t, ev = schema.scheduled_content, schema.publish_events
    claimed = (
        sa.select(ev.c.scheduled_content_id, sa.func.max(ev.c.occurred_at).label("at"))
        .where(ev.c.status == "claimed")
        .group_by(ev.c.scheduled_content_id)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                sc_t.c.status,
                sc_t.c.platform,
                sc_t.c.scheduled_at,
                sc_t.c.published_at,
                claimed.c.at,
            ).select_from(sc_t.outerjoin(claimed, claimed.c.scheduled_content_id == sc_t.c.id))
        ).all()
    out = []
    for status, platform, scheduled_at, published_at, claimed_at in rows:
        out.append(
            {
                "status": status,
                "platform": platform,
                "lateness": (published_at - scheduled_at).total_seconds() if published_at else None,
                "service": (published_at - claimed_at).total_seconds()
                if published_at and claimed_at
                else None,
            }
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
