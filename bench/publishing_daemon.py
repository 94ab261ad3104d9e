"""The publishing burst's publisher launched through ``dagster-daemon`` in brand shards.

``python -m bench.publishing_throughput ... --daemon --shards K``: instead of calling the
publisher's service in the benchmark's process, the burst's due posts are published by the
``auto_publisher`` job as its schedule queues it: ``K`` runs of one brand shard each (the
accounts' brands split by ``MARBA_BRANDS_PER_RUN``), launched by a real ``dagster-daemon``
from its run queue (the seven jobs' own schedules stopped, so none of their ticks runs
beside it; the repository's ``dagster.yaml``: 4 runs of a job at once, one per
shard) on a PostgreSQL Dagster instance, every run process at ``--concurrency`` posts at
once (``MARBA_PUBLISH_CONCURRENCY``) with the publisher's default limits. A post's time then
includes what a scheduled burst pays in production: the queue's dequeue interval and each
run process's start and code loading.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.sharded_cycle import (
    ROOT,
    VENV_BIN,
    ProcessPeaks,
    background,
    run_job_in_shards,
    stop_instigators,
)

# dagster.yaml: runs of one job at once (the `marba/job` tag's limit).
JOB_RUN_LIMIT = 4
PUBLISHER_JOB = "auto_publisher"


@contextmanager
def daemon(db_url: str, sandbox_base_url: str, brands: int, shards: int, width: int, work: Path):
    """A Dagster instance on its own PostgreSQL database and a running ``dagster-daemon``
    whose runs publish through the sandbox at ``sandbox_base_url``; yields
    ``(scheduler, instance, peaks)``."""
    import dagster as dg

    from bench.full_cycle import create_db, drop_db
    from marba_dagster.api import BackgroundJobScheduler
    from marba_dagster.sandbox.server import sandbox_env
    from marba_dagster.settings import job_crons
    from marba_dagster.store.db import make_engine
    from marba_dagster.store.jobs import sync_background_jobs

    dg_name, dg_url = create_db("marba_bench_burst_dagster")
    saved = dict(os.environ)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            sync_background_jobs(conn, job_crons())
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        os.environ.update(sandbox_env(sandbox_base_url, llm=False))
        os.environ.update(
            {
                "MARBA_DATABASE_URL": db_url,
                "DAGSTER_HOME": str(home),
                "DAGSTER_PG_URL": dg_url,
                "MARBA_BRANDS_PER_RUN": str(math.ceil(brands / shards)),
                "MARBA_PUBLISH_CONCURRENCY": str(width),
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        for k in ("MARBA_NOTIFY_WEBHOOK_URL", "MARBA_EXECUTOR"):
            os.environ.pop(k, None)
        # The benchmark queues the publisher itself; the jobs' own ticks (the hourly
        # collectors, the publisher's five-minute one) would run beside it.
        stop_instigators(with_automation=False)
        peaks = ProcessPeaks(home)
        args = [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")]
        try:
            with (
                background(args, dict(os.environ), work / "daemon.log"),
                dg.DagsterInstance.get() as instance,
            ):
                time.sleep(5)  # the daemon loads the code location before its first dequeue
                sched = BackgroundJobScheduler(engine=engine, instance=instance)
                try:
                    yield sched, instance, peaks
                finally:
                    sched.close()
        finally:
            peaks.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        engine.dispose()
        drop_db(dg_name)


def only_brands_active(engine, brand_ids: set[str]) -> None:
    """The publisher's shards cover the active brands: the baseline's mirror brands (no
    posts) are deactivated so every shard holds burst accounts."""
    from marba_dagster.store import schema

    with engine.begin() as conn:
        conn.execute(
            schema.brands.update()
            .where(schema.brands.c.id.not_in(sorted(brand_ids)))
            .values(is_active=False)
        )
        active = conn.execute(
            sa.select(sa.func.count()).where(schema.brands.c.is_active.is_(True))
        ).scalar_one()
    if active != len(brand_ids):
        raise RuntimeError(f"{active} active brands, expected {len(brand_ids)}")


def publish(sched, instance, peaks, posts: int) -> dict[str, Any]:
    """Queue the publisher as its schedule would (one run per shard) and wait for them."""
    return run_job_in_shards(sched, instance, PUBLISHER_JOB, posts, peaks)
