"""Both Dagster instance set-ups start and store runs: embedded SQLite and production Postgres."""

from __future__ import annotations

import dagster as dg
import pytest

from marba_dagster.instance import ensure_dagster_home
from marba_dagster_tests.conftest import (
    create_pg_database,
    drop_pg_database,
    open_pg_connections,
    production_dagster_home,
    require_postgres,
)


@dg.asset
def probe() -> int:
    """A one-line asset that proves the instance records runs."""
    return 1


def _materialize_on(instance: dg.DagsterInstance) -> None:
    result = dg.materialize([probe], instance=instance)
    assert result.success
    assert instance.get_run_by_id(result.run_id) is not None
    assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None


def test_embedded_instance_is_sqlite_with_telemetry_off(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    home = ensure_dagster_home()
    assert home == (tmp_path / ".marba" / "dagster_home").resolve()
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert "Sqlite" in type(instance.run_storage).__name__
        assert instance.telemetry_enabled is False
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {
            "key": "marba/shard",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        } in limits
        assert instance.run_retries_enabled
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        _materialize_on(instance)
    finally:
        instance.dispose()


def test_production_instance_on_postgres(tmp_path, monkeypatch):
    require_postgres()
    url = create_pg_database("dagster_inst")
    # SQLAlchemy 2.1 defaults bare postgresql:// to psycopg 3: the URL names its driver.
    home = tmp_path / "home"
    production_dagster_home(home, url, monkeypatch)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.get_ref().storage).__name__ == "PooledPostgresStorage"
        from dagster_postgres.event_log import PostgresEventLogStorage

        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        # Brand shards of a job run side by side (up to 4), never two runs of one shard.
        assert {
            "key": "marba/job",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 4,
        } in limits
        assert {
            "key": "marba/shard",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        } in limits
        assert instance.run_retries_enabled
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 7200
        _materialize_on(instance)
    finally:
        instance.dispose()
        drop_pg_database(url)


def _sessions(url: str) -> int:
    """Sessions PostgreSQL has opened to the database so far (pg_stat_database.sessions)."""
    import sqlalchemy as sa

    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return int(
                conn.execute(
                    sa.text(
                        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                    )
                ).scalar()
            )
    finally:
        eng.dispose()


@pytest.mark.parametrize("storage", ["pooled", "stock"])
def test_pooled_storage_stores_events_on_held_connections(tmp_path, monkeypatch, storage):
    """The production storage keeps its connections: storing 40 events opens a handful of
    sessions, where stock dagster-postgres opens at least one per event."""
    require_postgres()
    url = create_pg_database("dagster_pool")
    home = tmp_path / "home"
    production_dagster_home(home, url, monkeypatch)
    if storage == "stock":
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
        )
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        instance.report_runless_asset_event(dg.AssetMaterialization("warm", partition="w"))
        before = _sessions(url)
        for i in range(40):
            instance.report_runless_asset_event(
                dg.AssetMaterialization("pool_probe", partition=f"b{i}")
            )
        opened = _sessions(url) - before - 1  # minus the session that counted
        assert instance.get_latest_materialization_event(dg.AssetKey("pool_probe")) is not None
        if storage == "pooled":
            assert opened <= 5
        else:
            assert opened >= 40
    finally:
        instance.dispose()
        drop_pg_database(url)


def test_disposing_an_instance_on_pooled_storage_closes_its_connections(tmp_path, monkeypatch):
    """dagster-postgres's storages do nothing on dispose (they hold nothing); the pooled ones
    must close what they hold, or every short-lived instance (a CLI call, an API call) leaves
    connections open until the garbage collector finds it."""
    import gc

    require_postgres()
    url = create_pg_database("dagster_pool_dispose")
    home = tmp_path / "home"
    production_dagster_home(home, url, monkeypatch)
    gc.disable()
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        _materialize_on(instance)
        assert open_pg_connections(url) >= 1  # held between operations
        instance.dispose()
        assert open_pg_connections(url) == 0
    finally:
        gc.enable()
        drop_pg_database(url)


def test_pooled_storage_rejects_bad_pool_settings(monkeypatch):
    from marba_dagster.instance.storage import PooledPostgresStorage

    require_postgres()
    url = create_pg_database("dagster_pool_bad")
    try:
        with pytest.raises(ValueError, match="pool_max_overflow"):
            PooledPostgresStorage(url, pool_max_overflow=-1)
    finally:
        drop_pg_database(url)


def _open_production_instance(home: str, urls: list[str], start, results) -> None:
    """In a new process, for each database of ``urls``: wait until every worker is ready,
    open the production instance on it; wait again, set up a pool never seen before (what a
    run's first step in that pool does). Put the error as text, or ``None``, on ``results``."""
    import os

    for url in urls:
        os.environ["DAGSTER_PG_URL"] = url
        instance = None
        try:
            start.wait()  # raises at once for every worker once one has failed (abort)
            instance = dg.DagsterInstance.from_config(home)
            start.wait()
            instance.event_log_storage.initialize_concurrency_limit_to_default("platform_api_reads")
            results.put(None)
        except Exception as exc:  # reported to the parent, which fails the test with it
            results.put(f"{type(exc).__name__}: {exc}")
            start.abort()
        finally:
            if instance is not None:
                instance.dispose()


def test_workers_starting_together_on_a_new_database_do_not_race(tmp_path, monkeypatch):
    """Seven run workers started at once on a new deployment. Each opens an empty instance
    database: dagster-postgres creates the tables from each of them and one can lose the race
    (``relation "instance_info" already exists``); the pooled storage creates them under an
    advisory lock. Then each meets a pool for the first time: Dagster's default-limit set-up
    fails one of two such runs on PostgreSQL (its UPDATE after a duplicate INSERT runs in an
    aborted transaction); the pooled storage upserts. The workers start each step together
    (a barrier); three new databases, because a race is not lost every time."""
    import multiprocessing

    require_postgres()
    ctx = multiprocessing.get_context("spawn")
    urls = [create_pg_database("dagster_start_race") for _ in range(3)]
    home = tmp_path / "home"
    production_dagster_home(home, urls[0], monkeypatch)  # each worker sets DAGSTER_PG_URL per round
    try:
        start, results = ctx.Barrier(7), ctx.Queue()
        workers = [
            ctx.Process(target=_open_production_instance, args=(str(home), urls, start, results))
            for _ in range(7)
        ]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=120) for _ in range(7 * len(urls))]
        for w in workers:
            w.join(timeout=30)
        errors = [e for e in outcomes if e]
        assert not errors, errors[0]
        for url in urls:
            monkeypatch.setenv("DAGSTER_PG_URL", url)
            instance = dg.DagsterInstance.from_config(str(home))
            try:
                info = instance.event_log_storage.get_concurrency_info("platform_api_reads")
                assert info.slot_count == instance.global_op_concurrency_default_limit
            finally:
                instance.dispose()
            assert open_pg_connections(url) == 0
    finally:
        for url in urls:
            drop_pg_database(url)


def test_changing_the_default_pool_limit_applies_to_existing_pools(tmp_path, monkeypatch):
    """Raising ``concurrency.pools.default_limit`` (docs/scaling.md) must reach pools already
    in the database. On stock dagster-postgres every step of such a pool then fails with
    ``current transaction is aborted``; the pooled storage sets the new limit."""
    require_postgres()
    url = create_pg_database("dagster_pool_default")
    home = tmp_path / "home"
    production_dagster_home(home, url, monkeypatch)
    production = (home / "dagster.yaml").read_text()
    assert "default_limit: 4" in production
    try:
        for limit in (4, 6, 2):
            (home / "dagster.yaml").write_text(
                production.replace("default_limit: 4", f"default_limit: {limit}")
            )
            instance = dg.DagsterInstance.from_config(str(home))
            try:
                assert instance.global_op_concurrency_default_limit == limit
                assert instance.event_log_storage.initialize_concurrency_limit_to_default(
                    "open_meteo"
                )
                info = instance.event_log_storage.get_concurrency_info("open_meteo")
                assert (info.slot_count, info.limit) == (limit, limit)
            finally:
                instance.dispose()
    finally:
        drop_pg_database(url)
