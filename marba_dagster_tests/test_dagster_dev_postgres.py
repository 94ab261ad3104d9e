"""`dagster dev` on PostgreSQL instance storage (the repository's dagster.yaml) with the
daemon: trigger, pause and resume through the Python API, the CLI and GraphQL; the
monitoring sensors record the runs in job_executions."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster_graphql import DagsterGraphQLClient
from dagster_postgres.run_storage import PostgresRunStorage

from marba_dagster.api import BackgroundJobScheduler
from marba_dagster.store.db import make_engine
from marba_dagster_tests import monitoring_helpers as mh
from marba_dagster_tests.conftest import create_pg_database, drop_pg_database, require_postgres

pytestmark = pytest.mark.slow

SCHEDULE_STATE = """
query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
  ... on Schedule { scheduleState { id status } } } }"""
STOP = """
mutation($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on ScheduleStateResult { scheduleState { status } } \
... on PythonError { message } } }"""
START = """
mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
  __typename ... on ScheduleStateResult { scheduleState { status } } \
... on PythonError { message } } }"""


def _selector(name):
    return {
        "repositoryLocationName": "marba_dagster",
        "repositoryName": "__repository__",
        "scheduleName": name,
    }


def _schedule_status(client, name):
    return client._execute(SCHEDULE_STATE, {"s": _selector(name)})["scheduleOrError"][
        "scheduleState"
    ]["status"]


def _cli():
    from marba_dagster.cli import main
    from marba_dagster.cli_jobs import register

    register(main)
    return main


def test_dagster_dev_on_postgres_with_daemon(tmp_path, monkeypatch):
    require_postgres()
    pg_dagster = create_pg_database("dagster_dev")
    pg_marba = create_pg_database("marba_dev")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mh.REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        # SQLAlchemy 2.1 defaults postgresql:// to psycopg 3: name the installed driver.
        "DAGSTER_PG_URL": pg_dagster,
        "MARBA_DATABASE_URL": pg_marba,
        "MARBA_DAGSTER_MODULE": mh.TEST_MODULE,
        mh.CONTROL_DIR_VAR: str(tmp_path),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from marba_dagster.store import migrate

    engine = make_engine(pg_marba)
    migrate.upgrade(engine)
    workspace = mh.write_workspace(tmp_path / "workspace.yaml", mh.TEST_MODULE)
    try:
        with mh.dagster_dev(workspace, env, tmp_path / "dagster_dev.log") as port:
            instance = dg.DagsterInstance.from_config(str(home))
            assert isinstance(instance.run_storage, PostgresRunStorage)
            sched = BackgroundJobScheduler(engine=engine, instance=instance)
            try:
                # Python API: trigger -> the daemon launches it -> the sensors record it.
                run_id = sched.trigger_job("cron-learning-engine")
                mh.wait_for(
                    lambda: instance.get_run_by_id(run_id).is_finished, 180, "the triggered run"
                )
                assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
                row = mh.wait_for(
                    lambda: next(
                        (
                            r
                            for r in sched.get_execution_history("learning_engine")
                            if r["run_id"] == run_id and r["status"] == "success"
                        ),
                        None,
                    ),
                    180,
                    "the job_executions row",
                )
                assert row["brands_processed"] == 3 and row["trigger"] == "api"

                client = DagsterGraphQLClient("127.0.0.1", port_number=port)
                # CLI against the running daemon: pause and resume; GraphQL sees it.
                runner = CliRunner()
                result = runner.invoke(_cli(), ["jobs", "pause", "cron-auto-publisher"])
                assert result.exit_code == 0, result.output
                assert "paused" in result.output
                assert _schedule_status(client, "auto_publisher_schedule") == "STOPPED"
                result = runner.invoke(_cli(), ["jobs", "resume", "auto_publisher"])
                assert result.exit_code == 0, result.output
                assert _schedule_status(client, "auto_publisher_schedule") == "RUNNING"
                result = runner.invoke(_cli(), ["jobs", "trigger", "opportunity_detector"])
                assert result.exit_code == 0, result.output
                cli_run = result.output.strip().split()[-1]
                mh.wait_for(lambda: instance.get_run_by_id(cli_run).is_finished, 180, "the CLI run")
                assert instance.get_run_by_id(cli_run).status == dg.DagsterRunStatus.SUCCESS

                # GraphQL: trigger a job, pause and resume a schedule; the API sees the state.
                gql_run = client.submit_job_execution(
                    "engagement_collector",
                    repository_location_name="marba_dagster",
                    repository_name="__repository__",
                    tags={"marba/job": "engagement_collector"},
                )
                assert client.get_run_status(gql_run) in {
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                    dg.DagsterRunStatus.SUCCESS,
                }
                mh.wait_for(
                    lambda: client.get_run_status(gql_run) == dg.DagsterRunStatus.SUCCESS,
                    180,
                    "the GraphQL run",
                )
                state_id = client._execute(
                    SCHEDULE_STATE, {"s": _selector("learning_engine_schedule")}
                )["scheduleOrError"]["scheduleState"]["id"]
                stopped = client._execute(STOP, {"id": state_id})["stopRunningSchedule"]
                assert stopped["scheduleState"]["status"] == "STOPPED", stopped
                assert sched.get_job_status("learning_engine")["schedule_running"] is False
                started = client._execute(START, {"s": _selector("learning_engine_schedule")})[
                    "startSchedule"
                ]
                assert started["scheduleState"]["status"] == "RUNNING", started
                assert sched.get_job_status("learning_engine")["schedule_running"] is True
                result = runner.invoke(_cli(), ["jobs", "history", "learning_engine"])
                assert run_id in result.output
            finally:
                sched.close()
                instance.dispose()
    finally:
        engine.dispose()
        drop_pg_database(pg_marba)
        drop_pg_database(pg_dagster)
