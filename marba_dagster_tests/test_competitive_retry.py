"""competitive_monitoring retried: a second attempt of the same Dagster run (step retry or
re-execution under the same run id) replaces that run's snapshots instead of adding a second
set, measures changes against the previous run's snapshot, counts a competitor's failure once
and keeps one messaging-shift row. Real sandbox sites, real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import dagster as dg
import sqlalchemy as sa

from marba_dagster.defs.competitive.assets import competitive_gaps, competitor_snapshots
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.sandbox.routes.sites import sites_state
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many

SNAPSHOTS = schema.competitive_intelligence_snapshots


def _seed(engine, sites_url: str) -> None:
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.brands,
            [
                {
                    "id": "b1",
                    "name": "Corner Bakery",
                    "industry": "bakery",
                    "keywords": ["sourdough"],
                }
            ],
        )
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": cid,
                    "brand_id": "b1",
                    "name": cid.title(),
                    "website_url": f"{sites_url}/{cid}/",
                    "watch_urls": [f"{sites_url}/{cid}/pricing"],
                    "feed_url": f"{sites_url}/{cid}/feed.xml",
                    "social_accounts": {},
                }
                for cid in ("comp-ok", "comp-bad")
            ],
        )


def _attempt(db_url, sandbox, run_id: str):
    """One attempt of the competitive job's run ``run_id`` (a fresh instance each time, as a
    retry re-executes the step with the run's id)."""
    job = dg.define_asset_job(
        "competitive_monitoring", selection=dg.AssetSelection.groups("competitive")
    )
    defs = dg.Definitions(
        assets=[competitor_snapshots, competitive_gaps],
        jobs=[job],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"],
                per_host_interval=0,
                per_host_concurrency=8,
            ),
        },
    )
    result = defs.resolve_job_def("competitive_monitoring").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_id=run_id
    )
    meta = result.asset_materializations_for_node(competitor_snapshots.op.name)[0].metadata
    return {k: v.value for k, v in meta.items() if isinstance(v.value, (int, float))}


def _table(engine, table):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def _snapshots_by_run(engine) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in _table(engine, SNAPSHOTS):
        out[r["run_id"]] = out.get(r["run_id"], 0) + 1
    return out


def _comp(engine, cid):
    return next(r for r in _table(engine, schema.competitors) if r["id"] == cid)


def test_retry_replaces_the_runs_snapshots_and_compares_with_the_previous_run(
    db_url, engine, sandbox
):
    _seed(engine, sandbox.url("/sites"))
    ss = sites_state(sandbox.state)
    ss.set_failure("comp-bad", 410)
    r1, r2, r3 = (str(uuid.uuid4()) for _ in range(3))

    ss.set_version(1)
    first = _attempt(db_url, sandbox, r1)
    assert first["snapshots_written"] == 6 and len(_table(engine, SNAPSHOTS)) == 6
    assert _comp(engine, "comp-bad")["consecutive_failures"] == 1

    # Run 2 sees a price change; its retry sees the same change again (compared with run 1,
    # not with its own first attempt) and leaves one set of snapshots and one signal.
    ss.set_version(3)
    attempt1 = _attempt(db_url, sandbox, r2)
    signals_after_attempt1 = _table(engine, schema.intelligence_signals)
    attempt2 = _attempt(db_url, sandbox, r2)
    assert attempt1["signals_pricing_change"] == attempt2["signals_pricing_change"] == 1
    assert attempt2["signals"] == attempt1["signals"]
    assert len(_table(engine, SNAPSHOTS)) == 12
    assert _snapshots_by_run(engine) == {r1: 6, r2: 6}
    assert [x["dedup_key"] for x in _table(engine, schema.intelligence_signals)] == [
        x["dedup_key"] for x in signals_after_attempt1
    ]
    # The failing competitor failed in two runs, whatever the attempts.
    bad = _comp(engine, "comp-bad")
    assert bad["consecutive_failures"] == 2 and bad["reachability"] == "failing"

    # Run 3: a messaging rewrite; retried, still one shift row and the same signals.
    ss.set_version(5)
    m1 = _attempt(db_url, sandbox, r3)
    shifts = _table(engine, schema.messaging_shifts)
    m2 = _attempt(db_url, sandbox, r3)
    assert m1["signals_messaging_shift"] == m2["signals_messaging_shift"] == 1
    assert m2["signals"] == m1["signals"]
    assert [r["id"] for r in _table(engine, schema.messaging_shifts)] == [
        r["id"] for r in shifts
    ] and len(shifts) == 1
    assert _snapshots_by_run(engine) == {r1: 6, r2: 6, r3: 6}
    assert _comp(engine, "comp-bad")["consecutive_failures"] == 3
    assert _comp(engine, "comp-bad")["reachability"] == "unreachable"

    # A competitor that recovers on the retry is reset; the next run's failure counts from 0.
    r4 = str(uuid.uuid4())
    _attempt(db_url, sandbox, r4)
    ss.set_failure("comp-bad", None)
    _attempt(db_url, sandbox, r4)
    assert _comp(engine, "comp-bad")["consecutive_failures"] == 0
    assert _snapshots_by_run(engine)[r4] == 6
