"""The `marba` command as a user runs it: a real process, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from marba_dagster.store import schema

MARBA = [sys.executable, "-m", "marba_dagster.cli"]


def marba(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 180
):
    # A user's shell: no MARBA_* settings and no DAGSTER_HOME unless the test gives them.
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("MARBA_") and k != "DAGSTER_HOME"
    }
    full_env.update(env or {})
    return subprocess.run(
        [*MARBA, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def _one_clear_line(proc) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_job_is_one_clear_line(tmp_path):
    env = {"MARBA_DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "DAGSTER_HOME": str(tmp_path)}
    assert marba("db", "upgrade", env=env).returncode == 0
    line = _one_clear_line(marba("run", "cron-does-not-exist", env=env))
    assert "unknown job" in line and "learning_engine" in line


def test_bad_database_url_is_one_clear_line(tmp_path):
    line = _one_clear_line(marba("db", "upgrade", env={"MARBA_DATABASE_URL": "oracle://x/y"}))
    assert "unsupported database" in line


def test_unreachable_database_is_one_clear_line_without_password(tmp_path):
    env = {
        "MARBA_DATABASE_URL": "postgresql://marba:s3cret@127.0.0.1:1/marba",
        "DAGSTER_HOME": str(tmp_path),
    }
    line = _one_clear_line(marba("run", "learning_engine", env=env))
    assert "cannot connect" in line and "s3cret" not in line


def test_missing_schema_is_one_clear_line(tmp_path):
    env = {"MARBA_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "DAGSTER_HOME": str(tmp_path)}
    line = _one_clear_line(marba("run", "auto_publisher", env=env))
    assert "marba db upgrade" in line


def test_unknown_brand_is_one_clear_line(db_url, tmp_path):
    env = {"MARBA_DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path)}
    line = _one_clear_line(
        marba("run", "opportunity_detector", "--brand", "no-such-brand", env=env)
    )
    assert "unknown brand: no-such-brand" in line


def test_db_upgrade_registers_the_seven_jobs(db_url, tmp_path):
    env = {"MARBA_DATABASE_URL": db_url, "MARBA_CRON_LEARNING_ENGINE": "30 4 * * *"}
    proc = marba("db", "upgrade", env=env)
    assert proc.returncode == 0, proc.stderr
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.select(schema.background_jobs.c.name, schema.background_jobs.c.cron)
            ).all()
        )
    engine.dispose()
    assert len(rows) == 7
    assert rows["learning_engine"] == "30 4 * * *"
    assert rows["auto_publisher"] == "*/5 * * * *"


def test_jobs_list_shows_both_names(tmp_path):
    env = {"MARBA_DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "DAGSTER_HOME": str(tmp_path)}
    assert marba("db", "upgrade", env=env).returncode == 0
    proc = marba("jobs", "list", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cron-auto-publisher" in proc.stdout and "*/5 * * * *" in proc.stdout


@pytest.mark.slow
def test_demo_runs_every_job_and_prints_a_summary(tmp_path):
    """The README's main command, end to end on the embedded default (SQLite)."""
    proc = marba("demo", "--brands", "4", "--sandbox-port", "0", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "Summary" in out
    for job in (
        "analytics_collector",
        "learning_engine",
        "engagement_collector",
        "competitive_monitoring",
        "opportunity_detector",
        "enrichment_scheduler",
        "auto_publisher",
    ):
        assert job in out
    assert (tmp_path / ".marba" / "marba.db").exists()
    assert (tmp_path / ".marba" / "dagster_home" / "dagster.yaml").exists()
    # Facebook/Instagram direct messages and competitors' social accounts were exercised.
    dms = next(line for line in out.splitlines() if "direct messages in the inbox:" in line)
    assert "facebook" in dms, dms
    social = next(line for line in out.splitlines() if "social accounts read:" in line)
    assert "instagram" in social and " x " in social, social

    # Every demo run is recorded once, with no daemon, and the job views say so at once.
    engine = sa.create_engine(f"sqlite:///{tmp_path / '.marba' / 'marba.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.job_executions.c.job_name, schema.job_executions.c.status)
        ).all()
        last = dict(
            conn.execute(
                sa.select(schema.background_jobs.c.name, schema.background_jobs.c.last_run_status)
            ).all()
        )
    engine.dispose()
    assert sorted(job for job, _ in rows) == sorted(last)
    assert all(status in ("success", "partial") for _, status in rows), rows
    assert all(last[job] == status for job, status in rows)
    status = marba("jobs", "status", "learning_engine", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert (
        "health:    healthy" in status.stdout and "success:   100% over 1 run(s)" in status.stdout
    )


def test_dagster_definitions_validate_passes(tmp_path):
    """`dagster definitions validate` loads the code location as the webserver does."""
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARBA_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr
