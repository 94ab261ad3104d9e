"""A code location for the distributed-engine test: the real learning_engine job and
schedule (with the executor MARBA_EXECUTOR chooses) over one asset that does what every
MARBA asset does with its run's brands: ``scoped_brand_ids`` (the brand shard's range), then
one write per brand. Each brand's write is a ``job_logs`` row naming the process that did
it, so the test can count every brand's processing across runs and workers.

Each step records its start (with its process id) and waits, up to two minutes, until as many
steps have started as ``MARBA_TEST_BARRIER`` says: two shards must then run at once, on two
workers (a single worker would take them one after the other and the test would see it);
and with one shard and a barrier of two, the first attempt of the step holds until the test
kills its worker and the attempt that replaces it starts.
"""

import os
import time

import dagster as dg
import sqlalchemy as sa

from marba_dagster.defs.batches import scoped_brand_ids
from marba_dagster.defs.jobs import build_jobs_and_schedules
from marba_dagster.defs.resources import MarbaDatabase, build_resources
from marba_dagster.store import schema
from marba_dagster.store.jobs import write_job_log

BARRIER_VAR = "MARBA_TEST_BARRIER"
JOB = "learning_engine"


def _started(marba_db: MarbaDatabase) -> int:
    with marba_db.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.job_logs)
            .where(schema.job_logs.c.job_name == JOB, schema.job_logs.c.message == "started")
        ).scalar_one()


@dg.asset(name="learning_probe", group_name="learning", description="Processes its run's brands.")
def learning_probe(context: dg.AssetExecutionContext, marba_db: MarbaDatabase):
    brands = scoped_brand_ids(context, marba_db)
    with marba_db.begin() as conn:
        write_job_log(
            conn, JOB, "info", "started", run_id=context.run.run_id, context={"pid": os.getpid()}
        )
    wanted = int(os.environ.get(BARRIER_VAR, "1"))
    deadline = time.monotonic() + 120
    while _started(marba_db) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    with marba_db.begin() as conn:
        for brand in brands:
            write_job_log(
                conn,
                JOB,
                "info",
                "processed",
                run_id=context.run.run_id,
                brand_id=brand,
                context={"pid": os.getpid()},
            )
    return dg.MaterializeResult(metadata={"brands_processed": len(brands), "brands_failed": 0})


@dg.definitions
def defs() -> dg.Definitions:
    jobs, schedules = build_jobs_and_schedules()
    return dg.Definitions(
        assets=[learning_probe],
        jobs=[j for j in jobs if j.name == JOB],
        schedules=[s for s in schedules if s.name == f"{JOB}_schedule"],
        resources=build_resources(),
    )
