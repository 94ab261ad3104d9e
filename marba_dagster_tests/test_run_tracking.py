"""Every run of a MARBA job is on its job's page and in ``job_executions`` exactly once,
however it was started, with or without a daemon; partial runs and causes are truthful;
dead runs are failed; SIGTERM stops ``marba run`` cleanly.

Real Dagster instances (SQLite under a temporary home) of the MARBA instance class, the real
MARBA database on SQLite and PostgreSQL, real processes for the signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.runs import BRANDS_CHECK, WORKER_TAG
from marba_dagster.defs.batches import completeness_check_specs
from marba_dagster.instance.run_launcher import MarbaRunLauncher
from marba_dagster.instance.workers import Worker, _start_ticks, fail_dead_runs
from marba_dagster.runner import run_job
from marba_dagster.store import jobs as job_store
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow
from marba_dagster_tests import monitoring_helpers as mh

REPOSITORY_TAG = ".dagster/repository"


def _executions(engine, job: str) -> list[dict]:
    with engine.connect() as conn:
        return job_store.executions(conn, job)


def _job_row(engine, job: str) -> dict:
    with engine.connect() as conn:
        return job_store.job_row(conn, job)


def _on_job_page(instance, job: str) -> list[str]:
    """Run ids the UI's job page lists: runs of the job tagged with the code location."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job, tags={REPOSITORY_TAG: "__repository__@marba_dagster"})
    )
    return [r.run_id for r in runs]


def test_a_marba_run_is_recorded_at_once_and_listed_on_its_job_page(
    engine, db_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("MARBA_DATABASE_URL", db_url)
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        outcome = run_job("cron-learning-engine", instance=instance, definitions=mh.test_defs())
        assert outcome.status == "success"
        run = instance.get_run_by_id(outcome.run_id)
        assert run.job_name == "learning_engine" and run.tags["marba/job"] == "learning_engine"
        assert _on_job_page(instance, "learning_engine") == [outcome.run_id]
        assert Worker.parse(run.tags[WORKER_TAG]).pid == os.getpid()

        # No daemon, no sensor: the row is there as soon as the run ended.
        (row,) = _executions(engine, "learning_engine")
        assert (row["run_id"], row["status"], row["brands_processed"]) == (
            outcome.run_id,
            "success",
            3,
        )
        assert row["finished_at"] is not None and row["duration_seconds"] is not None
        job = _job_row(engine, "learning_engine")
        assert job["last_run_id"] == outcome.run_id and job["last_run_status"] == "success"
        assert job["last_success_at"] == row["finished_at"]
        with engine.connect() as conn:
            report = job_store.job_health(conn, "learning_engine")
        assert (report.health, report.runs) == ("healthy", 1)

        # A daemon coming up later reconciles and counts nothing twice.
        mh.track_run(instance, outcome.run_id, db_url)
        mh.track_run(instance, outcome.run_id, db_url)
        assert len(_executions(engine, "learning_engine")) == 1


def test_assets_materialized_outside_a_job_are_runs_of_their_job(engine, db_url, tmp_path):
    """`dagster asset materialize`, the UI's Materialize button and Python's ``materialize``
    run Dagster's implicit asset job: the MARBA instance makes them runs of the MARBA job
    whose assets they are, with its ``marba/job`` tag (the run queue's per-job limit)."""
    analytics_probe = next(
        a for a in mh.test_defs().assets if a.key == dg.AssetKey("analytics_probe")
    )
    day = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        result = dg.materialize([analytics_probe], instance=instance, partition_key=day)
        run = instance.get_run_by_id(result.run_id)
        assert run.job_name == "analytics_collector"
        assert run.tags["marba/job"] == "analytics_collector"
        assert _on_job_page(instance, "analytics_collector") == [result.run_id]
        (row,) = _executions(engine, "analytics_collector")
        assert (row["run_id"], row["status"], row["partition_key"]) == (
            result.run_id,
            "success",
            day,
        )


def _learning_asset(body, **kw):
    @dg.asset(name="learning_probe", group_name="learning", **kw)
    def _asset(context):
        return body(context)

    return _asset


def test_a_run_that_left_brands_out_is_partial_and_names_them(engine, db_url, tmp_path):
    def body(context):
        return dg.MaterializeResult(
            metadata={"brands_processed": 2, "brands_failed": 1},
            check_results=[
                dg.AssetCheckResult(
                    check_name=BRANDS_CHECK,
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    description="1 of 3 brand(s) failed: b-2 (facebook: HTTP 500)",
                    metadata={"brands_failed": 1},
                )
            ],
        )

    asset = _learning_asset(body, check_specs=completeness_check_specs("learning_probe"))
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        result = dg.materialize([asset], instance=instance)
        assert result.success  # the run kept the other brands' results
        # Green in Dagster, but the Runs page says at a glance that it left something out.
        assert (
            instance.get_run_by_id(result.run_id).tags["marba/outcome"] == "partial: 1 brand failed"
        )
    (row,) = _executions(engine, "learning_engine")
    assert row["status"] == "partial" and row["brands_failed"] == 1
    assert "b-2 (facebook: HTTP 500)" in row["error"]
    with engine.connect() as conn:
        (line,) = job_store.logs(conn, "learning_engine")
    assert line["level"] == "warning" and "b-2" in line["message"]


def test_a_failed_steps_error_is_its_cause_not_the_retry_wrapper(engine, db_url, tmp_path):
    def body(context):
        raise ValueError("invalid maximum lateness 'bogus'")

    asset = _learning_asset(body, retry_policy=dg.RetryPolicy(max_retries=1, delay=0))
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        result = dg.materialize([asset], instance=instance, raise_on_error=False)
        assert not result.success
    (row,) = _executions(engine, "learning_engine")
    assert row["status"] == "failure"
    assert row["error"] == "learning_probe: ValueError: invalid maximum lateness 'bogus'"
    assert _job_row(engine, "learning_engine")["last_run_error"] == row["error"]


def test_runs_made_before_the_daemon_came_up_are_recorded_once(engine, db_url, tmp_path):
    """An instance without the MARBA class records nothing itself; the tracker's first tick
    finds every run of the last days, later ticks only what changed."""
    with mh.queued_instance(tmp_path / "home") as instance:
        job = mh.test_defs().resolve_job_def("learning_engine")
        run_ids = [job.execute_in_process(instance=instance).run_id for _ in range(3)]
        assert _executions(engine, "learning_engine") == []
        context = dg.build_sensor_context(
            instance=instance,
            resources={"marba_db": mh.MarbaDatabase(url=db_url)},
            repository_def=mh.test_defs().get_repository_def(),
        )
        from marba_dagster.defs.monitoring.sensors import marba_run_tracker

        marba_run_tracker(context)
        assert sorted(r["run_id"] for r in _executions(engine, "learning_engine")) == sorted(
            run_ids
        )
        assert context.cursor is not None
        marba_run_tracker(context)
        assert len(_executions(engine, "learning_engine")) == 3


def _dead_process_worker() -> Worker:
    """The identity of a real process of this host, killed."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = Worker(Worker.current().host, proc.pid, _start_ticks(proc.pid) or "")
    assert worker.alive() is True
    proc.kill()
    proc.wait()
    assert worker.alive() is False
    return worker


def _started_run(instance, worker: Worker) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        mh.test_defs().resolve_job_def("learning_engine"), tags={WORKER_TAG: worker.tag()}
    )
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name
        ),
    )
    return instance.get_run_by_id(run.run_id)


def test_a_run_whose_process_died_is_failed_and_recorded(engine, db_url, tmp_path):
    dead = _dead_process_worker()
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        run = _started_run(instance, dead)
        assert run.status == dg.DagsterRunStatus.STARTED
        alive = _started_run(instance, Worker.current())
        elsewhere = _started_run(instance, Worker("another-host", 1, "1"))
        launcher = MarbaRunLauncher()
        assert launcher.check_run_worker_health(run).status.value == "FAILED"
        assert launcher.check_run_worker_health(alive).status.value == "RUNNING"
        assert launcher.check_run_worker_health(elsewhere).status.value == "RUNNING"

        assert fail_dead_runs(instance) == [run.run_id]
        assert fail_dead_runs(instance) == []
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    rows = {r["run_id"]: r for r in _executions(engine, "learning_engine")}
    assert rows[run.run_id]["status"] == "failure"
    assert f"pid {dead.pid}" in rows[run.run_id]["error"] and "is gone" in rows[run.run_id]["error"]


# ------------------------------------------------------------------ signals, real processes


def _marba(args, env, **kw):
    exe = os.path.join(os.path.dirname(sys.executable), "marba")
    return subprocess.Popen(
        [exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw
    )


@pytest.fixture
def publishing_world(engine, db_url, sandbox, tmp_path, monkeypatch):
    from marba_dagster.sandbox.platform_data import platform_data
    from marba_dagster.sandbox.routes._published import published_log

    data = platform_data(sandbox.state)
    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b1", name="Cafe Uno", industry="cafe"))
        data.add_account("facebook", "1001", "fb-token-123")
        conn.execute(
            s.platform_accounts.insert().values(
                id="acct-fb",
                brand_id="b1",
                platform="facebook",
                external_account_id="1001",
                access_token="fb-token-123",
            )
        )
        conn.execute(
            s.scheduled_content.insert(),
            [
                {
                    "id": f"p{i:03d}",
                    "brand_id": "b1",
                    "platform": "facebook",
                    "body": f"post {i}",
                    "media_urls": [],
                    "format": "text",
                    "scheduled_at": utcnow() - timedelta(minutes=1),
                    "status": "scheduled",
                }
                for i in range(80)
            ],
        )
    # Each post takes a while at the platform and four go at once, so the run (about 10 s)
    # is mid-way when it is signalled, however loaded the machine.
    sandbox.faults.add("graph_publish.page_feed", "latency", ms=500)
    # This process opens the same instance afterwards: it records into the same database.
    monkeypatch.setenv("MARBA_DATABASE_URL", db_url)
    env = {
        **os.environ,
        **sandbox.env(),
        "MARBA_DATABASE_URL": db_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "MARBA_PUBLISH_CONCURRENCY": "4",
    }
    return {"env": env, "log": published_log(sandbox.state), "engine": engine}


def _statuses(engine) -> dict[str, int]:
    sc = s.scheduled_content
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(sc.c.status, sa.func.count()).group_by(sc.c.status)).all()
        )


def _wait_published(log, n: int, proc) -> None:
    mh.wait_for(lambda: log.count() >= n or proc.poll() is not None, 120, f"{n} posts published")
    assert proc.poll() is None, proc.stdout.read().decode()


@pytest.mark.slow
def test_sigterm_stops_marba_run_cleanly(publishing_world):
    w = publishing_world
    proc = _marba(["run", "auto_publisher"], w["env"])
    _wait_published(w["log"], 5, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    text = out.decode()
    assert proc.returncode == 1, text
    assert "auto_publisher was STOPPED" in text

    statuses = _statuses(w["engine"])
    assert statuses.get("publishing", 0) == 0 and statuses.get("unknown", 0) == 0
    sent = w["log"].count()
    # Every post that reached the platform is recorded as published, the rest wait again.
    assert statuses["published"] == sent and statuses["scheduled"] == 80 - sent > 0
    (row,) = _executions(w["engine"], "auto_publisher")
    assert row["status"] == "canceled"
    with dg.DagsterInstance.from_config(w["env"]["DAGSTER_HOME"]) as instance:
        assert instance.get_run_by_id(row["run_id"]).status == dg.DagsterRunStatus.CANCELED

    # The next run publishes the rest, once each.
    again = _marba(["run", "auto_publisher"], w["env"])
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out.decode()
    assert _statuses(w["engine"]) == {"published": 80}
    assert w["log"].count() == 80


@pytest.mark.slow
def test_sigkill_leaves_no_run_holding_its_slot(publishing_world, db_url):
    w = publishing_world
    proc = _marba(["run", "auto_publisher"], w["env"])
    _wait_published(w["log"], 2, proc)
    proc.kill()
    proc.wait()
    with dg.DagsterInstance.from_config(w["env"]["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # nobody said otherwise
        # What run monitoring asks the launcher, and what every `marba` command does first.
        assert MarbaRunLauncher().check_run_worker_health(run).status.value == "FAILED"
        assert fail_dead_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    (row,) = _executions(w["engine"], "auto_publisher")
    assert row["status"] == "failure" and "is gone" in row["error"]


@pytest.mark.slow
def test_the_daemon_fails_a_killed_run_and_the_queue_moves_on(publishing_world, tmp_path):
    """With `dagster dev` up, a `marba run` killed with SIGKILL is failed by Dagster's run
    monitoring (through MarbaRunLauncher) and recorded by the daemon; a run of the same job
    queued afterwards is not held back by it."""
    from marba_dagster.instance import EMBEDDED_YAML

    w = publishing_world
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        EMBEDDED_YAML.replace("poll_interval_seconds: 30", "poll_interval_seconds: 5")
    )
    proc = _marba(["run", "auto_publisher"], w["env"])
    _wait_published(w["log"], 2, proc)
    proc.kill()
    proc.wait()
    with (
        mh.dagster_dev(mh.REPO / "workspace.yaml", w["env"], tmp_path / "dagster_dev.log"),
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        (killed,) = instance.get_runs()

        def failed():
            return instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE

        mh.wait_for(failed, 120, "run monitoring to fail the killed run")

        def recorded():  # by the daemon, just after it stored the failure
            rows = {r["run_id"]: r for r in _executions(w["engine"], "auto_publisher")}
            return rows[killed.run_id] if rows[killed.run_id]["status"] != "running" else None

        row = mh.wait_for(recorded, 30, "the daemon to record the failure")
        assert row["status"] == "failure" and "is gone" in row["error"]

        trigger = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "marba"),
                "jobs",
                "trigger",
                "auto_publisher",
            ],
            env=w["env"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert trigger.returncode == 0, trigger.stderr
        queued = trigger.stdout.split()[-1]

        def done():
            run = instance.get_run_by_id(queued)
            return run if run.is_finished else None

        assert mh.wait_for(done, 180, "the queued run").status == dg.DagsterRunStatus.SUCCESS
    # Everything went out but what the killed run held when it died (those wait for their
    # lease, as a crash mid-send must).
    sc, pe = s.scheduled_content, s.publish_events
    with w["engine"].connect() as conn:
        held = set(conn.execute(sa.select(sc.c.id).where(sc.c.status == "publishing")).scalars())
        claimed_by_killed = set(
            conn.execute(
                sa.select(pe.c.scheduled_content_id).where(
                    pe.c.run_id == killed.run_id, pe.c.status == "claimed"
                )
            ).scalars()
        )
    assert held <= claimed_by_killed
    assert _statuses(w["engine"]).get("scheduled", 0) == 0
