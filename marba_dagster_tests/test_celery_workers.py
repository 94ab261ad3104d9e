"""The distributed engine end to end: a job split into brand shards, queued through the
Python API, launched by a real ``dagster-daemon`` on PostgreSQL instance storage (the
repository's dagster.yaml), its steps executed by two Celery worker processes
(``dagster-celery worker start`` with celery_worker.yaml) on the Redis broker. Every brand is
processed exactly once, both workers take a shard, and the tick is one job execution."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.api import BackgroundJobScheduler
from marba_dagster.store import migrate
from marba_dagster.store import schema as s
from marba_dagster.store.db import make_engine
from marba_dagster_tests import monitoring_helpers as mh
from marba_dagster_tests.celery_location import BARRIER_VAR
from marba_dagster_tests.conftest import create_pg_database, drop_pg_database, require_postgres

MODULE = "marba_dagster_tests.celery_location"
# A Redis database of its own, emptied before and after, so no other task is in the way.
REDIS_DB = 13
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
BIN = Path(sys.executable).parent


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


@contextmanager
def _process(args: list[str], env: dict[str, str], log_path: Path, ready: str | None = None):
    """A background process in its own session, stopped (TERM, then KILL) when done;
    with ``ready``, waits until its log says so."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=str(mh.REPO),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if ready:
                mh.wait_for(
                    lambda: (
                        ready in log_path.read_text(errors="replace") or proc.poll() is not None
                    ),
                    120,
                    f"{log_path.name}: {ready}",
                )
                assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _worker_of(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The Celery workers that executed the run's steps (from the workers' engine events)."""
    workers = set()
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data
        meta = dict(data.metadata or {}) if data else {}
        if "Celery worker" in meta:
            workers.add(meta["Celery worker"].value)
    return workers


def test_the_workers_and_the_runs_share_one_celery_configuration(monkeypatch):
    import yaml

    from marba_dagster.defs.execution import CELERY_APP_CONFIG, run_executor

    config = yaml.safe_load((mh.REPO / "celery_worker.yaml").read_text())["execution"]["config"]
    assert config["config_source"] == CELERY_APP_CONFIG
    assert config["broker"] == {"env": "MARBA_CELERY_BROKER_URL"}
    assert config["backend"] == {"env": "MARBA_CELERY_BACKEND_URL"}
    monkeypatch.delenv("MARBA_EXECUTOR", raising=False)
    assert run_executor() is None  # Dagster's default: steps in subprocesses of the run
    monkeypatch.setenv("MARBA_EXECUTOR", "celery")
    assert run_executor().name == "marba_celery"
    monkeypatch.setenv("MARBA_EXECUTOR", "kubernetes")
    with pytest.raises(ValueError, match="MARBA_EXECUTOR='kubernetes': must be one of"):
        run_executor()


@contextmanager
def _celery_world(tmp_path: Path, brands: list[str], per_run: int, barrier: int):
    """PostgreSQL for the MARBA tables and the Dagster instance (the repository's
    dagster.yaml), two Celery workers, ``dagster-daemon``; yields what a test needs."""
    require_postgres()
    if not _redis_up():
        pytest.fail("Redis is not running at 127.0.0.1:6379 (.ci/run starts it)")
    pg_dagster = create_pg_database("dagster_celery")
    pg_marba = create_pg_database("marba_celery")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mh.REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_dagster,
        "MARBA_DATABASE_URL": pg_marba,
        "MARBA_DAGSTER_MODULE": MODULE,
        "MARBA_EXECUTOR": "celery",
        "MARBA_CELERY_BROKER_URL": BROKER,
        "MARBA_CELERY_BACKEND_URL": BROKER,
        "MARBA_BRANDS_PER_RUN": str(per_run),
        BARRIER_VAR: str(barrier),
        "PYTHONPATH": str(mh.REPO),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    engine = make_engine(pg_marba)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            s.brands.insert(),
            [{"id": b, "name": b, "industry": "bakery", "keywords": []} for b in brands],
        )
    workspace = mh.write_workspace(tmp_path / "workspace.yaml", MODULE)
    names = [f"marba-test-{i}-{uuid.uuid4().hex[:6]}" for i in (1, 2)]
    _flush_redis()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the scheduler below queues runs of this location on this home
    try:
        with ExitStack() as stack:
            for name in names:
                stack.enter_context(
                    _process(
                        [
                            str(BIN / "dagster-celery"),
                            "worker",
                            "start",
                            "-A",
                            "dagster_celery.app",
                            "-y",
                            str(mh.REPO / "celery_worker.yaml"),
                            "-n",
                            name,
                            "--",
                            "--pool=prefork",
                            "--concurrency=1",
                        ],
                        env,
                        tmp_path / f"{name}.log",
                        ready=f"{name}@",
                    )
                )
            stack.enter_context(
                _process(
                    [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                    env,
                    tmp_path / "daemon.log",
                )
            )
            instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
            sched = BackgroundJobScheduler(engine=engine, instance=instance)
            stack.callback(sched.close)
            yield instance, sched, engine, names
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _flush_redis()
        engine.dispose()
        drop_pg_database(pg_marba)
        drop_pg_database(pg_dagster)


def _wait_finished(instance, run_ids: list[str], tmp_path: Path) -> list[dg.DagsterRun]:
    mh.wait_for(
        lambda: all(instance.get_run_by_id(r).is_finished for r in run_ids),
        300,
        "the runs",
        interval=2,
    )
    runs = [instance.get_run_by_id(r) for r in run_ids]
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), (
        tmp_path / "daemon.log"
    ).read_text(errors="replace")[-3000:]
    return runs


def _execution(sched, execution_id: str) -> dict:
    return mh.wait_for(
        lambda: next(
            (
                h
                for h in sched.get_execution_history("learning_engine")
                if h["run_id"] == execution_id and h["status"] == "success"
            ),
            None,
        ),
        120,
        "the execution's row",
    )


def _log_rows(engine, message: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(s.job_logs.c.brand_id, s.job_logs.c.run_id, s.job_logs.c.context).where(
                s.job_logs.c.message == message
            )
        ).all()


@pytest.mark.slow
def test_a_sharded_job_runs_on_two_celery_workers_each_brand_once(tmp_path):
    brands = [f"brand-{i:02d}" for i in range(6)]
    with _celery_world(tmp_path, brands, per_run=3, barrier=2) as (instance, sched, engine, names):
        execution_id, run_ids = sched.trigger_job_runs("learning_engine")
        assert len(run_ids) == 2
        _wait_finished(instance, run_ids, tmp_path)
        workers = [_worker_of(instance, r) for r in run_ids]
        row = _execution(sched, execution_id)
        processed = _log_rows(engine, "processed")
    # Every brand exactly once, each by the run of its shard.
    assert Counter(b for b, _, _ in processed) == Counter(brands)
    assert {r for _, r, _ in processed} == set(run_ids)
    # Each shard's step ran on one worker, and the two shards on different workers.
    assert all(len(w) == 1 for w in workers), workers
    assert {w.split("@")[0] for found in workers for w in found} == set(names)
    assert row["shards"] == 2 and row["brands_processed"] == 6


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
def test_a_step_whose_worker_is_killed_is_run_by_the_other_worker_once(tmp_path):
    brands = [f"brand-{i:02d}" for i in range(4)]
    # One run (4 brands <= 10), one step; its first attempt waits for a second to start.
    with _celery_world(tmp_path, brands, per_run=10, barrier=2) as (instance, sched, engine, _):
        _, (run_id,) = sched.trigger_job_runs("learning_engine")
        (first,) = mh.wait_for(lambda: _log_rows(engine, "started"), 180, "the step to start")
        (victim,) = mh.wait_for(lambda: _worker_of(instance, run_id), 60, "the step's worker")
        child = first.context["pid"]  # the worker's pool process running the step
        worker = _parent_of(child)
        # The worker is told to stop (it takes no new step) and its process running the
        # step dies mid-step: the step goes back to the queue, the other worker takes it.
        os.kill(worker, signal.SIGTERM)
        os.kill(child, signal.SIGKILL)
        _wait_finished(instance, [run_id], tmp_path)
        workers = _worker_of(instance, run_id)
        started = _log_rows(engine, "started")
        processed = _log_rows(engine, "processed")
    assert len(started) == 2  # the killed attempt and the one that replaced it
    assert len(workers) == 2 and victim in workers  # run again on the other worker
    # The killed attempt wrote nothing: every brand processed exactly once.
    assert Counter(b for b, _, _ in processed) == Counter(brands)
