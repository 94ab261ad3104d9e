"""Helpers for the monitoring tests: a Dagster instance with a run queue, real runs of the
test code location, and the tracking sensors applied to them."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.execution.api import execute_run
from dagster._utils.hosted_user_process import recon_job_from_origin

from marba_dagster.core.catalog import resolve
from marba_dagster.defs.monitoring import sensors
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.instance.control import JobControl

CONTROL_DIR_VAR = "MARBA_TEST_CONTROL_DIR"
TEST_MODULE = "marba_dagster_tests.monitoring_location"
QUEUED = {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
}

_DEFS = None


def test_defs() -> dg.Definitions:
    global _DEFS
    if _DEFS is None:
        from marba_dagster_tests.monitoring_location import defs

        _DEFS = defs()
    return _DEFS


@contextmanager
def queued_instance(home: Path):
    """A persistent instance (SQLite under ``home``) with a queued run coordinator."""
    home.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home), overrides=QUEUED) as instance:
        yield instance


MARBA_INSTANCE = {"module": "marba_dagster.instance.marba_instance", "class": "MarbaInstance"}


@contextmanager
def marba_instance(home: Path, db_url: str, **overrides):
    """A persistent ``MarbaInstance`` (SQLite under ``home``) recording into ``db_url``, with a
    queued run coordinator like both MARBA set-ups."""
    home.mkdir(parents=True, exist_ok=True)
    config = {
        **QUEUED,
        "instance_class": MARBA_INSTANCE,
        "marba": {"database_url": db_url},
        **overrides,
    }
    with dg.instance_for_test(temp_dir=str(home), overrides=config) as instance:
        yield instance


def control_for(instance: dg.DagsterInstance) -> JobControl:
    return JobControl(instance, location_name="marba_dagster", module_name=TEST_MODULE)


def set_failing(control_dir: Path, job: str, failing: bool) -> None:
    flag = control_dir / f"{job}.fail"
    if failing:
        flag.write_text("fail")
    elif flag.exists():
        flag.unlink()


def track_run(instance: dg.DagsterInstance, run_id: str, db_url: str) -> None:
    """One tick of the run tracker sensor over the instance's runs, as the daemon would."""
    ctx = dg.build_sensor_context(
        instance=instance,
        resources={"marba_db": MarbaDatabase(url=db_url)},
        repository_def=test_defs().get_repository_def(),
    )
    sensors.marba_run_tracker(ctx)


def run_job(instance: dg.DagsterInstance, job: str, db_url: str, tags: dict | None = None) -> str:
    """A real run of the test location's job on ``instance``, then tracked."""
    spec = resolve(job)
    from datetime import datetime, timezone

    from marba_dagster.instance.partitions import scope_now

    partition_key, scope_tags = scope_now(spec, datetime.now(timezone.utc), instance)
    result = (
        test_defs()
        .resolve_job_def(spec.name)
        .execute_in_process(
            instance=instance,
            partition_key=partition_key,
            tags={**scope_tags, **(tags or {})},
            raise_on_error=False,
        )
    )
    track_run(instance, result.run_id, db_url)
    return result.run_id


def execute_queued(instance: dg.DagsterInstance, run_id: str, db_url: str) -> None:
    """Run a queued run in this process (what the daemon's run worker does), then track it."""
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.QUEUED, run.status
    job = recon_job_from_origin(run.job_code_origin)
    execute_run(job, run.with_status(dg.DagsterRunStatus.NOT_STARTED), instance)
    track_run(instance, run_id, db_url)


# ----------------------------------------------------------------------- dagster dev

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_workspace(path: Path, module: str) -> Path:
    path.write_text(
        "load_from:\n"
        "  - python_module:\n"
        f"      module_name: {module}\n"
        f"      working_directory: {REPO}\n"
        "      location_name: marba_dagster\n"
    )
    return path


@contextmanager
def dagster_dev(workspace: Path, env: dict[str, str], log_path: Path, timeout: float = 180):
    """``dagster dev`` (webserver + daemon) on a free loopback port; yields the port."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    exe = Path(sys.executable).parent / "dagster"
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(exe), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=str(REPO),
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"dagster dev exited: {log_path.read_text()[-3000:]}")
                try:
                    r = httpx.post(
                        f"http://127.0.0.1:{port}/graphql",
                        json={
                            "query": "{ workspaceOrError { __typename ... on Workspace "
                            "{ locationEntries { name locationOrLoadError { __typename } } } } }"
                        },
                        timeout=5,
                    )
                    entries = r.json()["data"]["workspaceOrError"].get("locationEntries", [])
                    if entries and all(
                        e["locationOrLoadError"]
                        and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                        for e in entries
                    ):
                        break
                    if any(
                        e["locationOrLoadError"]
                        and e["locationOrLoadError"]["__typename"] == "PythonError"
                        for e in entries
                    ):
                        raise RuntimeError(f"code location failed to load: {r.text[:2000]}")
                except (httpx.HTTPError, KeyError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dagster dev not ready: {log_path.read_text()[-3000:]}")
                time.sleep(1)
            yield port
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    """Poll ``predicate`` until truthy (a wait, not a timed assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(interval)
