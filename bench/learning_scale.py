"""Benchmark: the learning engine over N brands x 3 platforms x D days in PostgreSQL.

    python -m bench.learning_scale --brands 100            # ~110k posts (default)
    python -m bench.learning_scale --brands 1000           # ~1.1M posts (the issue's size)

Builds a fresh PostgreSQL database (dropped at the end) with one post a day per platform
per brand (plus a Poisson extra), each with one metrics snapshot, loaded with COPY. Then,
in the same run, measures:

* **baseline**: reading the very rows the engine reads (same query: every post of the
  window with its latest metrics) into pandas;
* **learning**: the whole engine as the Dagster asset runs it (``learn_and_store``): read,
  learn every pattern of every brand and platform, replace each brand's
  ``learning_patterns`` in its own transaction.

Verdicts: learning wall time <= 3x the read time, peak RSS of the process < 2048 MB.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bench.harness import Scenario, measure
from marba_dagster.store import migrate
from marba_dagster.store.db import make_engine

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PLATFORMS = ("facebook", "instagram", "x")
FORMATS = np.array(["text", "image", "video", "carousel", "link", "reel"])
TAGS = np.array(["#coffee", "#giveaway", "#shoplocal", "#weekend", "#ad", "#team", "#new"])
WORDS = np.array(
    [
        "our",
        "menu",
        "this",
        "week",
        "visit",
        "beans",
        "roast",
        "morning",
        "city",
        "fresh",
        "free",
        "exclusive",
        "limited",
        "today",
        "team",
        "latte",
    ]
)
ZONES = np.array(
    [
        "Europe/Paris",
        "America/New_York",
        "Asia/Tokyo",
        "Australia/Sydney",
        "America/Los_Angeles",
        "Europe/London",
        "UTC",
    ]
)


def _create_db() -> str:
    name = f"marba_bench_learning_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_db(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _copy(raw, table: str, columns: list[str], frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf)


def build(engine, brands: int, days: int, now: datetime, seed: int = 7, chunk: int = 50) -> int:
    """Write the brands, posts and metrics; returns the number of posts."""
    rng = np.random.default_rng(seed)
    ids = [f"bench-{i:05d}" for i in range(brands)]
    total = 0
    raw = engine.raw_connection()
    try:
        b = pd.DataFrame(
            {
                "id": ids,
                "name": ids,
                "industry": "cafe",
                "timezone": ZONES[rng.integers(0, len(ZONES), brands)],
                "keywords": '["latte", "beans"]',
            }
        )
        _copy(raw, "brands", list(b.columns), b)
        start = now - timedelta(days=days)
        for c0 in range(0, brands, chunk):
            cids = ids[c0 : c0 + chunk]
            per = rng.poisson(0.1, size=(len(cids), len(PLATFORMS), days)) + 1
            n = int(per.sum())
            flat = per.reshape(-1)
            cell = np.repeat(np.arange(flat.size), flat)
            bi, rem = np.divmod(cell, len(PLATFORMS) * days)
            pi, di = np.divmod(rem, days)
            secs = di * 86400 + rng.integers(0, 86400, n)
            published = pd.Timestamp(start) + pd.to_timedelta(secs, unit="s")
            fmt = FORMATS[rng.integers(0, len(FORMATS), n)]
            words = WORDS[rng.integers(0, len(WORDS), (n, 6))]
            tag_mask = rng.random((n, len(TAGS))) < 0.2
            body = pd.Series([" ".join(w) for w in words])
            tag_text = pd.Series([" ".join(TAGS[m]) for m in tag_mask])
            body = body + " " + tag_text
            hour = published.hour.to_numpy()
            factor = np.where((hour >= 17) & (hour <= 19), 1.6, 1.0)
            factor *= np.where(fmt == "video", 1.4, 1.0) * np.where(tag_mask[:, 1], 1.5, 1.0)
            reach = rng.integers(200, 5000, n)
            eng = reach * 0.04 * factor * np.exp(rng.normal(0, 0.35, n))
            post_ids = np.char.add(f"p{c0:05d}-", np.arange(n).astype(str))
            brand_col = np.array(cids)[bi]
            plat_col = np.array(PLATFORMS)[pi]
            posts = pd.DataFrame(
                {
                    "id": post_ids,
                    "brand_id": brand_col,
                    "platform": plat_col,
                    "external_post_id": post_ids,
                    "body": body,
                    "format": fmt,
                    "published_at": published.strftime("%Y-%m-%d %H:%M:%S+00"),
                }
            )
            _copy(raw, "content_posts", list(posts.columns), posts)
            metrics = pd.DataFrame(
                {
                    "post_id": post_ids,
                    "metric_date": now.date().isoformat(),
                    "impressions": (reach * 1.3).astype(int),
                    "reach": reach,
                    "likes": (eng * 0.8).astype(int),
                    "comments": (eng * 0.1).astype(int),
                    "shares": (eng * 0.05).astype(int),
                    "saves": (eng * 0.05).astype(int),
                    "clicks": (reach * 0.01).astype(int),
                    "video_views": 0,
                }
            )
            _copy(raw, "post_metrics", list(metrics.columns), metrics)
            raw.commit()
            total += n
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return total


def main(argv: list[str] | None = None) -> int:
    from marba_dagster.services.learning import WINDOW_DAYS, learn_and_store
    from marba_dagster.store.learning import posts_query

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brands", type=int, default=100)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate read/learn this many times; medians reported",
    )
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = ap.parse_args(argv)

    now = datetime.now(UTC).replace(microsecond=0)
    url = _create_db()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with measure() as build_m:
            posts = build(engine, args.brands, args.days, now)
        brand_ids = [f"bench-{i:05d}" for i in range(args.brands)]
        since = now - timedelta(days=WINDOW_DAYS)
        reads, learns, peaks, patterns = [], [], [], 0
        for _ in range(args.repeat):
            gc.collect()
            with measure() as read_m, engine.connect() as conn:
                df = pd.DataFrame(conn.execute(posts_query(brand_ids, since)).fetchall())
            rows_read = len(df)
            del df
            gc.collect()
            with measure() as learn_m:
                run = learn_and_store(engine, brand_ids, now=now)
            patterns = run.written
            del run
            reads.append(read_m.seconds)
            learns.append(learn_m.seconds)
            peaks.append(learn_m.peak_rss_mb)
        read_s, learn_s, peak = float(np.median(reads)), float(np.median(learns)), max(peaks)

        sc = Scenario(
            "learning_scale",
            size={"brands": args.brands, "platforms": 3, "days": args.days, "posts": posts},
        )
        sc.figure("build_seconds", build_m.seconds)
        sc.figure("rows_read", rows_read)
        sc.figure("read_seconds", read_s)
        sc.figure("learning_seconds", learn_s)
        sc.figure("patterns_written", patterns)
        sc.figure("learning_peak_rss_mb", peak)
        sc.figure("posts_per_second", posts / learn_s if learn_s else 0.0)
        sc.ratio("learning_vs_read", learn_s, read_s, limit=3.0)
        sc.limit("learning_peak_rss_mb", peak, limit=2048)
        sc.note(
            "baseline = the engine's own posts query read into pandas (same rows); "
            "learning = read + learn + replace learning_patterns per brand"
        )
        sc.save()
        return 0 if sc.passed else 1
    finally:
        engine.dispose()
        if args.keep:
            print(f"kept {url}")
        else:
            _drop_db(url)


if __name__ == "__main__":
    sys.exit(main())
