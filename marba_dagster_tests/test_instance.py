"""Both Dagster instance set-ups start and store runs: embedded SQLite and production Postgres."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from marba_dagster.instance import ensure_dagster_home
from marba_dagster_tests.conftest import create_pg_database, drop_pg_database, require_postgres

REPO = Path(__file__).resolve().parent.parent


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
        assert instance.run_retries_enabled
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        _materialize_on(instance)
    finally:
        instance.dispose()


def test_production_instance_on_postgres(tmp_path, monkeypatch):
    require_postgres()
    url = create_pg_database("dagster_inst")
    # SQLAlchemy 2.1 defaults bare postgresql:// to psycopg 3: the URL names its driver.
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "marba/job", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert instance.run_retries_enabled
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 7200
        _materialize_on(instance)
    finally:
        instance.dispose()
        drop_pg_database(url)
