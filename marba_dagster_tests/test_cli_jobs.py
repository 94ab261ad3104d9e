"""`marba jobs ...`, `marba cleanup-logs`, `marba costs` on a real database and instance."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from marba_dagster.cli_jobs import register
from marba_dagster.store import schema
from marba_dagster.store.types import utcnow
from marba_dagster_tests import monitoring_helpers as mh


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MARBA_DATABASE_URL", db_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MARBA_DAGSTER_MODULE", mh.TEST_MODULE)
    group = click.Group("marba")
    register(group)
    runner = CliRunner()
    return lambda *args: runner.invoke(group, list(args))


def test_list_status_pause_resume_trigger(cli):
    out = cli("jobs", "list")
    assert out.exit_code == 0, out.output
    assert "cron-engagement-collector" in out.output and "unknown" in out.output
    out = cli("jobs", "pause", "cron-learning-engine")
    assert out.exit_code == 0 and "learning_engine: paused (schedule stopped)" in out.output
    out = cli("jobs", "status", "learning_engine")
    assert "state:     paused" in out.output
    out = cli("jobs", "resume", "learning-engine")
    assert "learning_engine: active (schedule running)" in out.output
    out = cli("jobs", "trigger", "auto_publisher")
    assert out.exit_code == 0 and out.output.startswith("queued run ")
    out = cli("jobs", "status", "nope")
    assert out.exit_code == 1 and "unknown job" in out.output


def test_cleanup_logs_and_costs(cli, engine):
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            schema.brands.insert().values(
                id="b1", name="B", industry="x", keywords=[], monthly_ai_budget_usd=1
            )
        )
        conn.execute(
            schema.job_logs.insert(),
            [
                {
                    "job_name": "auto_publisher",
                    "level": "error",
                    "message": f"m{d}",
                    "context": {},
                    "created_at": now - timedelta(days=d),
                }
                for d in (2, 40)
            ],
        )
        conn.execute(
            schema.api_billing_tracker.insert().values(
                brand_id="b1", provider="llm", operation="x", cost_usd=2, occurred_at=now
            )
        )
    out = cli("cleanup-logs", "--older-than", "30d")
    assert out.exit_code == 0 and "deleted 1 " in out.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.job_logs.c.message)).scalars().all() == ["m2"]
    assert cli("cleanup-logs", "--older-than", "soon").exit_code == 1
    out = cli("costs")
    assert out.exit_code == 0 and "b1" in out.output and "exceeded" in out.output
    out = cli("jobs", "logs", "auto_publisher")
    assert "m2" in out.output
