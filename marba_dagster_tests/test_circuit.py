"""Circuit breaker: pure decisions, then opening, probing and closing on a real instance
with real runs, its state in the MARBA database surviving a new process's view."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marba_dagster.core import circuit as c
from marba_dagster.core.catalog import resolve
from marba_dagster.core.runs import PROBE_TAG
from marba_dagster.services.supervision import supervise
from marba_dagster.store import jobs as job_store
from marba_dagster.store import schema as s
from marba_dagster_tests import monitoring_helpers as mh

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def outcomes(statuses):
    return [
        c.RunOutcome(f"r{i}", st, NOW - timedelta(hours=i + 1)) for i, st in enumerate(statuses)
    ]


ACTIVE = c.CircuitState("active")


@pytest.mark.parametrize(
    "statuses,action",
    [
        (["failure"] * 3, "open"),  # 3 of 3
        (["failure"] * 2, "none"),  # under the minimum of 3
        (["failure"] * 3 + ["success"] * 3, "none"),  # 3 of 6 = 50%: not over 50%
        (["failure"] * 4 + ["success"] * 3, "open"),  # 4 of 7
        (["failure", "success"] * 2 + ["failure"] * 2 + ["success"] * 4, "none"),  # 4 of 10
        (["success"] * 10 + ["failure"] * 10, "none"),  # failures outside the last 10
        (["partial"] * 5 + ["failure"] * 2, "none"),  # partial runs are not failures
        (["canceled"] * 3, "open"),
    ],
)
def test_opening_threshold(statuses, action):
    assert c.decide(ACTIVE, outcomes(statuses), NOW).action == action


def test_threshold_is_configurable():
    cfg = c.CircuitConfig(window=5, min_failures=2, failure_rate=0.3)
    assert (
        c.decide(
            ACTIVE, outcomes(["failure", "success", "failure", "success", "success"]), NOW, cfg
        ).action
        == "open"
    )
    with pytest.raises(ValueError):
        c.CircuitConfig(failure_rate=1.5)


def test_reset_ignores_runs_before_it():
    state = c.CircuitState("active", reset_at=NOW - timedelta(minutes=90))
    assert c.decide(state, outcomes(["success"] + ["failure"] * 5), NOW).action == "none"


def test_open_cooldown_probe_close_and_reopen():
    cfg = c.CircuitConfig(cooldown=timedelta(minutes=30))
    opened = c.CircuitState("circuit_open", opened_at=NOW - timedelta(minutes=10))
    assert c.decide(opened, [], NOW, cfg).action == "none"
    assert c.decide(opened, [], NOW + timedelta(minutes=20), cfg).action == "probe"
    probing = c.CircuitState("circuit_open", opened_at=NOW, probe_run_id="p")
    assert c.decide(probing, [], NOW, cfg, "queued").action == "none"
    assert c.decide(probing, [], NOW, cfg, "running").action == "none"
    assert c.decide(probing, [], NOW, cfg, "success").action == "close"
    assert c.decide(probing, [], NOW, cfg, "failure").action == "reopen"
    assert c.decide(probing, [], NOW, cfg, None).action == "reopen"
    assert c.decide(c.CircuitState("paused"), outcomes(["failure"] * 9), NOW).action == "none"


def _state(engine, job):
    with engine.connect() as conn:
        return job_store.job_row(conn, job)


def test_breaker_opens_probes_and_closes_on_a_real_instance(engine, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv(mh.CONTROL_DIR_VAR, str(tmp_path))
    spec = resolve("cron-learning-engine")
    cfg = c.CircuitConfig(cooldown=timedelta(0))
    with mh.queued_instance(tmp_path / "home") as instance:
        mh.set_failing(tmp_path, spec.name, True)
        runs = [mh.run_job(instance, spec.name, db_url) for _ in range(3)]
        control = mh.control_for(instance)
        assert control.schedule_running(spec)

        actions = supervise(engine, control, cfg)
        assert [a.action for a in actions if a.job == spec.name] == ["open", "unhealthy"]
        assert not control.schedule_running(spec)
        control.close()

        # A new process: the state comes back from the MARBA database and the instance.
        row = _state(engine, spec.name)
        assert row["status"] == "circuit_open" and row["circuit_opened_at"] is not None
        assert row["health"] == "unhealthy"
        control = mh.control_for(instance)
        assert not control.schedule_running(spec)

        # Probe fails -> reopens; schedule stays stopped.
        (probe,) = [a.run_id for a in supervise(engine, control, cfg) if a.action == "probe"]
        assert _state(engine, spec.name)["probe_run_id"] == probe
        assert instance.get_run_by_id(probe).tags[PROBE_TAG] == "true"
        mh.execute_queued(instance, probe, db_url)
        assert [a.action for a in supervise(engine, control, cfg) if a.job == spec.name] == [
            "reopen"
        ]
        assert _state(engine, spec.name)["status"] == "circuit_open"
        assert not control.schedule_running(spec)

        # Next probe succeeds -> closes and restarts the schedule; old failures no longer count.
        mh.set_failing(tmp_path, spec.name, False)
        (probe,) = [a.run_id for a in supervise(engine, control, cfg) if a.action == "probe"]
        mh.execute_queued(instance, probe, db_url)
        assert [a.action for a in supervise(engine, control, cfg) if a.job == spec.name] == [
            "close"
        ]
        row = _state(engine, spec.name)
        assert row["status"] == "active" and row["probe_run_id"] is None and row["circuit_reset_at"]
        assert control.schedule_running(spec)
        assert [
            a for a in supervise(engine, control, cfg) if a.job == spec.name and a.action == "open"
        ] == []
        control.close()

    with engine.connect() as conn:
        execs = {r["run_id"]: r for r in job_store.executions(conn, spec.name)}
        logs = [r["message"] for r in job_store.logs(conn, spec.name)]
        notes = conn.execute(sa.select(s.notifications.c.dedup_key)).scalars().all()
    assert all(execs[r]["status"] == "failure" for r in runs)
    assert execs[probe]["status"] == "success" and execs[probe]["trigger"] == "circuit_probe"
    assert execs[probe]["brands_processed"] == 3
    assert "told to fail by the test" in execs[runs[0]]["error"]
    assert any(m.startswith("circuit opened") for m in logs)
    assert any(m.startswith("circuit reopened") for m in logs)
    assert any(m.startswith("circuit closed") for m in logs)
    assert (
        sum(1 for m in logs if m.startswith("run failure")) == 4
    )  # three runs and the failed probe
    assert any(k.startswith(f"job_unhealthy:{spec.name}") for k in notes)
    assert any(k.startswith(f"circuit_open:{spec.name}") for k in notes)
