"""BackgroundJobScheduler on a real instance and database: status, history, logs, pause,
resume, trigger (queued for the daemon) and log cleanup; both job names."""

from __future__ import annotations

import gc
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.api import BackgroundJobScheduler
from marba_dagster.api.scheduler import JobControlError, ai_costs, budget_status
from marba_dagster.store import jobs as job_store
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow
from marba_dagster_tests import monitoring_helpers as mh
from marba_dagster_tests.conftest import (
    create_pg_database,
    drop_pg_database,
    open_pg_connections,
    production_dagster_home,
    require_postgres,
)


@pytest.fixture
def world(engine, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv(mh.CONTROL_DIR_VAR, str(tmp_path))
    with mh.queued_instance(tmp_path / "home") as instance:
        sched = BackgroundJobScheduler(
            engine=engine, instance=instance, definitions_module=mh.TEST_MODULE
        )
        yield sched, instance, tmp_path
        sched.close()


def test_status_history_and_logs_for_both_names(world, db_url):
    sched, instance, tmp = world
    ok = mh.run_job(instance, "auto_publisher", db_url)
    mh.set_failing(tmp, "auto_publisher", True)
    bad = mh.run_job(instance, "auto_publisher", db_url)
    st = sched.get_job_status("cron-auto-publisher")
    assert st["name"] == "auto_publisher" and st["state"] == "active" and st["schedule_running"]
    assert st["health"] == "unhealthy" and st["success_rate"] == pytest.approx(0.5)
    assert st["last_run"]["run_id"] == bad and st["last_run"]["status"] == "failure"
    assert st["avg_duration_seconds"] is not None
    history = sched.get_execution_history("auto_publisher")
    assert [h["run_id"] for h in history] == [bad, ok]
    assert history[1]["brands_processed"] == 3
    logs = sched.get_logs("cron-auto-publisher", level="error")
    assert [log["run_id"] for log in logs] == [bad]
    assert "told to fail" in logs[0]["message"]
    with pytest.raises(JobControlError, match="known jobs"):
        sched.get_job_status("cron-nope")


def test_pause_resume_and_trigger(world, engine):
    sched, instance, _ = world
    st = sched.pause_job("cron-learning-engine")
    assert st["state"] == "paused" and st["schedule_running"] is False
    with engine.connect() as conn:
        assert job_store.job_row(conn, "learning_engine")["status"] == "paused"
    st = sched.resume_job("learning_engine")
    assert st["state"] == "active" and st["schedule_running"] is True

    run_id = sched.trigger_job("cron-analytics-collector")
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.QUEUED  # the daemon launches it
    assert run.job_name == "analytics_collector"
    assert run.tags["marba/job"] == "analytics_collector" and run.tags["marba/trigger"] == "api"
    assert run.tags["dagster/partition"]  # the latest complete day
    assert run.remote_job_origin.location_name == "marba_dagster"

    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b1", name="B1", industry="bakery", keywords=[]))
    run = instance.get_run_by_id(sched.trigger_job("opportunity_detector", brand_id="b1"))
    assert run.tags["marba/brands"] == "b1"
    with pytest.raises(JobControlError, match="unknown brand"):
        sched.trigger_job("opportunity_detector", brand_id="nope")


def test_cleanup_keeps_newer_logs(world, engine):
    sched, _, _ = world
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            s.job_logs.insert(),
            [
                {
                    "job_name": "auto_publisher",
                    "level": "error",
                    "message": f"m{d}",
                    "context": {},
                    "created_at": now - timedelta(days=d),
                }
                for d in (1, 29, 31, 60)
            ],
        )
    assert sched.cleanup_old_logs("30d") == 2
    with engine.connect() as conn:
        left = (
            conn.execute(sa.select(s.job_logs.c.message).order_by(s.job_logs.c.message))
            .scalars()
            .all()
        )
    assert left == ["m1", "m29"]
    assert sched.cleanup_old_logs(timedelta(hours=12)) == 2
    with pytest.raises(ValueError):
        sched.cleanup_old_logs("-3d")


def test_costs_per_brand_with_budget_status(engine):
    now = utcnow().replace(day=15, hour=12)
    with engine.begin() as conn:
        conn.execute(
            s.brands.insert(),
            [
                {
                    "id": "a",
                    "name": "A",
                    "industry": "x",
                    "keywords": [],
                    "monthly_ai_budget_usd": 10,
                },
                {
                    "id": "b",
                    "name": "B",
                    "industry": "x",
                    "keywords": [],
                    "monthly_ai_budget_usd": 0,
                },
            ],
        )
        conn.execute(
            s.api_billing_tracker.insert(),
            [
                {
                    "brand_id": "a",
                    "provider": "llm",
                    "operation": "enrich",
                    "cost_usd": 2.5,
                    "occurred_at": now - timedelta(hours=1),
                },
                {
                    "brand_id": "a",
                    "provider": "llm",
                    "operation": "enrich",
                    "cost_usd": 6.0,
                    "occurred_at": now - timedelta(days=5),
                },
                {
                    "brand_id": "a",
                    "provider": "llm",
                    "operation": "enrich",
                    "cost_usd": 99,
                    "occurred_at": now - timedelta(days=40),
                },
                {
                    "brand_id": "b",
                    "provider": "llm",
                    "operation": "enrich",
                    "cost_usd": 1,
                    "occurred_at": now - timedelta(days=2),
                },
            ],
        )
    rows = {r["brand_id"]: r for r in ai_costs(engine, now)}
    assert rows["a"]["today_usd"] == pytest.approx(2.5)
    assert rows["a"]["month_usd"] == pytest.approx(8.5)
    assert rows["a"]["budget_status"] == "warning"
    assert rows["b"]["month_usd"] == pytest.approx(1) and rows["b"]["budget_status"] == "no budget"
    assert budget_status(10, 10) == "exceeded" and budget_status(1, 10) == "ok"


def test_close_disposes_the_instance_it_made(engine, tmp_path, monkeypatch):
    """Without an instance given, the scheduler makes one from DAGSTER_HOME on first use and
    close() disposes it: with production's storage that closes its held connections."""
    require_postgres()
    url = create_pg_database("marba_sched_inst")
    production_dagster_home(tmp_path / "home", url, monkeypatch)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    gc.disable()  # connections must be closed by close(), not by a collector pass
    try:
        sched = BackgroundJobScheduler(engine=engine)
        assert sched.instance.get_runs() == []
        assert open_pg_connections(url) >= 1
        sched.close()
        assert open_pg_connections(url) == 0
    finally:
        gc.enable()
        drop_pg_database(url)
