"""``MarbaInstance``: the Dagster instance that keeps every MARBA run visible and recorded.

Both MARBA instance set-ups (the embedded ``dagster.yaml`` the ``marba`` command writes and
the repository's production one) name it as their ``instance_class``, so it is what every
Dagster process of the deployment uses: the webserver, the daemon, run workers, ``marba
run``, ``dagster job execute``, ``dagster asset materialize`` and the Python API. It adds
three things to Dagster's own instance, however a run was started:

- **Attribution** (every run's creation): a run that materializes the assets of one MARBA job is
  a run of that job. It carries the ``marba/job`` and ``marba/shard`` tags (so the run
  queue's per-job and per-shard limits apply to runs launched from the UI, sensors and
  automation too) and the job's
  name instead of Dagster's implicit asset job, and a run made in-process gets the code
  location's origin, so it is listed on its job's page in the UI like a launched one.
- **Recording** (``handle_new_event``): as a run is queued, starts and ends, its
  ``job_executions`` row and its job's ``background_jobs`` row are written at once by the
  process that reports the event; no daemon is needed. The ``marba_run_tracker`` sensor
  reconciles anything missed (the MARBA database was down, an instance without this class).
- **Liveness** (``handle_new_event`` on run start): the run is tagged with the process
  running it, so a run whose process died is found and marked failed (see ``workers``).

Recording never breaks Dagster: an error is logged once and the run goes on.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._config import Field, Shape, StringSource
from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name
from dagster._core.definitions.materialize import EPHEMERAL_JOB_NAME
from dagster._core.instance.ref import InstanceRef
from dagster._core.instance.runs.run_domain import RunDomain
from dagster._record import copy as copy_record

from marba_dagster import settings
from marba_dagster.core.catalog import JobSpec, job_for_group, resolve
from marba_dagster.core.runs import JOB_TAG, SHARD_TAG, WORKER_TAG
from marba_dagster.core.shards import queue_key
from marba_dagster.instance.workers import Worker

log = logging.getLogger(__name__)

REPOSITORY_NAME = "__repository__"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

_RECORDED_EVENTS = frozenset(
    {
        dg.DagsterEventType.RUN_ENQUEUED,
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.RUN_CANCELED,
    }
)


def location_name() -> str:
    """The code location's name in the workspace (``MARBA_DAGSTER_LOCATION``)."""
    return settings.DAGSTER_LOCATION.value()


def definitions_module() -> str:
    """The module of the code location's definitions (``MARBA_DAGSTER_MODULE``)."""
    return settings.DAGSTER_MODULE.value()


def _implicit_job(name: str) -> bool:
    return is_reserved_asset_job_name(name) or name == EPHEMERAL_JOB_NAME


def job_of_selection(asset_graph: Any, keys) -> JobSpec | None:
    """The MARBA job whose asset group holds every asset (or check's asset) in ``keys``."""
    if asset_graph is None or not keys:
        return None
    groups = set()
    for key in keys:
        asset_key = key.asset_key if isinstance(key, dg.AssetCheckKey) else key
        if not asset_graph.has(asset_key):
            return None
        groups.add(asset_graph.get(asset_key).group_name)
    return job_for_group(groups.pop()) if len(groups) == 1 else None


def job_of_new_run(
    job_name: str, tags: Mapping[str, str], asset_selection, asset_check_selection, asset_graph
) -> JobSpec | None:
    """The MARBA job a run about to be created belongs to, if any."""
    for name in (tags.get(JOB_TAG), job_name):
        if name and not _implicit_job(name):
            try:
                return resolve(name)
            except KeyError:
                continue
    if not _implicit_job(job_name) or asset_graph is None:
        return None
    selected = [*(asset_selection or ()), *(asset_check_selection or ())]
    # No selection: the whole implicit job (``materialize`` of a few assets builds one).
    return job_of_selection(asset_graph, selected or asset_graph.executable_asset_keys)


def code_location_origin(location: str | None = None):
    """The origin of the MARBA code location as ``workspace.yaml`` loads it."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    return ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=definitions_module(),
            working_directory=str(PROJECT_ROOT),
        ),
        location_name=location or location_name(),
    )


def remote_job_origin(job_name: str):
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin

    return RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(code_location_origin(), REPOSITORY_NAME),
        job_name=job_name,
    )


def attribute_run(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``create_run``'s arguments for a run of a MARBA job: tagged, named after the job and
    with an origin in the code location. Other runs are returned unchanged."""
    tags = dict(kwargs.get("tags") or {})
    spec = job_of_new_run(
        kwargs["job_name"],
        tags,
        kwargs.get("asset_selection"),
        kwargs.get("asset_check_selection"),
        kwargs.get("asset_graph"),
    )
    if spec is None:
        return kwargs
    out = dict(kwargs)
    tags.setdefault(JOB_TAG, spec.name)
    # A run that is not one shard of a tick: one brand's partition, or every brand (the
    # first shard's key, so two such runs of a job never overlap).
    tags.setdefault(SHARD_TAG, queue_key(spec.name, tags))
    out["tags"] = tags
    if _implicit_job(kwargs["job_name"]):
        # The assets of one MARBA job, materialized from the asset graph, the CLI or Python:
        # a run of that job with an asset selection, as if launched from the job's page.
        # (The job snapshot keeps its name: the execution plan snapshot refers to it by id.)
        out["job_name"] = spec.name
        if kwargs.get("remote_job_origin") is not None:
            out["remote_job_origin"] = copy_record(kwargs["remote_job_origin"], job_name=spec.name)
        if kwargs.get("job_code_origin") is not None:
            out["job_code_origin"] = kwargs["job_code_origin"]._replace(job_name=spec.name)
    if out.get("remote_job_origin") is None:
        out["remote_job_origin"] = remote_job_origin(spec.name)
    return out


class _MarbaRunDomain(RunDomain):
    def create_run(self, **kwargs: Any) -> dg.DagsterRun:
        return super().create_run(**attribute_run(kwargs))


class MarbaInstance(dg.DagsterInstance):
    """Dagster's instance, plus attribution, recording and liveness of MARBA runs."""

    def __init__(self, *args: Any, marba: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._marba_database_url = (marba or {}).get("database_url")
        self._marba_engine = None
        self._marba_lock = threading.Lock()
        self._marba_errors: set[str] = set()

    @classmethod
    def config_schema(cls) -> dict[str, Field]:
        return {
            "marba": Field(
                Shape({"database_url": Field(StringSource, is_required=False)}),
                is_required=False,
                description="Where run tracking writes (default: MARBA_DATABASE_URL).",
            )
        }

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, Any]:
        return InstanceRef.config_defaults(base_dir)

    # ------------------------------------------------------------------ attribution

    @cached_property
    def run_domain(self):
        # Every way Dagster makes a run (create_run, create_run_for_job, re-execution) goes
        # through the run domain's create_run.
        return _MarbaRunDomain(self)

    # ------------------------------------------------------------------ recording

    def handle_new_event(self, event, *, batch_metadata=None) -> None:
        super().handle_new_event(event, batch_metadata=batch_metadata)
        dagster_event = event.dagster_event
        if dagster_event is None or dagster_event.event_type not in _RECORDED_EVENTS:
            return
        try:
            if dagster_event.event_type == dg.DagsterEventType.RUN_START:
                self.add_run_tags(event.run_id, {WORKER_TAG: Worker.current().tag()})
            self._record(event.run_id)
        except Exception as exc:  # tracking must never fail a run
            self._warn_once(exc)

    def _engine(self):
        with self._marba_lock:
            if self._marba_engine is None:
                from marba_dagster.store.db import database_url_from_env, make_engine

                self._marba_engine = make_engine(
                    self._marba_database_url or database_url_from_env()
                )
            return self._marba_engine

    def _record(self, run_id: str) -> None:
        from marba_dagster.instance.tracking import marba_job_of, sync_run

        run = self.get_run_by_id(run_id)
        if run is None or marba_job_of(run) is None:
            return
        sync_run(self, self._engine(), run)

    def _warn_once(self, exc: Exception) -> None:
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if key in self._marba_errors:
            return
        self._marba_errors.add(key)
        log.warning(
            "MARBA run tracking could not record a run (the run is unaffected; the "
            "marba_run_tracker sensor will retry): %s",
            key,
        )

    def dispose(self) -> None:
        try:
            super().dispose()
        finally:
            if self._marba_engine is not None:
                self._marba_engine.dispose()
                self._marba_engine = None
