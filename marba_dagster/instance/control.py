"""Control of the MARBA jobs through the Dagster instance: schedules and launched runs.

Runs are *submitted* to the instance's run coordinator (queued), so the daemon launches
them on the code location it serves and the UI shows them like any other run. To build a
run (its job snapshot, execution plan and origin) the code location is loaded in-process
under the same location name as in ``workspace.yaml`` (``marba_dagster``): the daemon finds
the location by that name, and schedule state is keyed by (location, repository, schedule)
names, so pausing here pauses the schedule the daemon ticks.

Requires a queued run coordinator (the default, and both MARBA instance set-ups) and a
running daemon (``dagster dev`` or ``dagster-daemon run``) on the same ``DAGSTER_HOME``.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timezone

import dagster as dg
from dagster._core.definitions.selector import InstigatorSelector, JobSubsetSelector
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

from marba_dagster.core.catalog import JobSpec
from marba_dagster.core.runs import TICK_TAG
from marba_dagster.instance.marba_instance import (
    PROJECT_ROOT,
    REPOSITORY_NAME,
    definitions_module,
)
from marba_dagster.instance.marba_instance import location_name as default_location


class ControlError(RuntimeError):
    """A job cannot be controlled as asked (no schedule, no assets, no queue...)."""


def schedule_name(spec: JobSpec) -> str:
    return f"{spec.name}_schedule"


class JobControl:
    """Schedules and run submission for the MARBA jobs on one Dagster instance."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        *,
        location_name: str | None = None,
        module_name: str | None = None,
    ) -> None:
        self.instance = instance
        self.location_name = location_name or default_location()
        self.module_name = module_name or definitions_module()
        self._process_ctx: WorkspaceProcessContext | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ workspace

    def _workspace(self):
        with self._lock:
            if self._process_ctx is None:
                origin = InProcessCodeLocationOrigin(
                    loadable_target_origin=LoadableTargetOrigin(
                        executable_path=sys.executable,
                        module_name=self.module_name,
                        working_directory=str(PROJECT_ROOT),
                    ),
                    location_name=self.location_name,
                )
                self._process_ctx = WorkspaceProcessContext(
                    self.instance, InProcessWorkspaceLoadTarget(origin)
                )
            return self._process_ctx.create_request_context()

    def _location(self):
        workspace = self._workspace()
        if not workspace.has_code_location(self.location_name):
            error = workspace.get_code_location_error(self.location_name)
            reason = error.message.strip().splitlines()[-1] if error else "not loaded"
            raise ControlError(f"the MARBA code location could not be loaded: {reason}")
        return workspace, workspace.get_code_location(self.location_name)

    def close(self) -> None:
        with self._lock:
            if self._process_ctx is not None:
                self._process_ctx.__exit__(None, None, None)
                self._process_ctx = None

    def __enter__(self) -> JobControl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ schedules

    def schedule_selector_id(self, spec: JobSpec) -> str:
        return InstigatorSelector(
            location_name=self.location_name,
            repository_name=REPOSITORY_NAME,
            name=schedule_name(spec),
        ).get_id()

    def schedule_running(self, spec: JobSpec) -> bool:
        """Whether the daemon ticks the job's schedule (the MARBA schedules default to on)."""
        state = self.instance.get_instigator_state(
            schedule_name(spec), self.schedule_selector_id(spec)
        )
        return state is None or state.status != InstigatorStatus.STOPPED

    def _remote_schedule(self, spec: JobSpec):
        _workspace, location = self._location()
        repo = location.get_repository(REPOSITORY_NAME)
        name = schedule_name(spec)
        if not repo.has_schedule(name):
            raise ControlError(f"{spec.name} has no schedule {name!r} in the code location")
        return repo.get_schedule(name)

    def stop_schedule(self, spec: JobSpec) -> None:
        remote = self._remote_schedule(spec)
        self.instance.stop_schedule(remote.get_remote_origin_id(), remote.selector_id, remote)

    def start_schedule(self, spec: JobSpec) -> None:
        self.instance.start_schedule(self._remote_schedule(spec))

    # ------------------------------------------------------------------ runs

    def submit(
        self,
        spec: JobSpec,
        *,
        brand_ids: list[str] | None = None,
        tags: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> str:
        """Queue one run of the job covering its current work (every brand, or
        ``brand_ids``); returns the run id."""
        from marba_dagster.core.run_scope import NothingToRun
        from marba_dagster.instance.partitions import scope_now

        try:
            partition_key, scope_tags = scope_now(
                spec, now or datetime.now(timezone.utc), self.instance, brand_ids
            )
        except NothingToRun as exc:
            raise ControlError(f"{spec.name}: nothing to run ({exc})") from None
        return self._queue(spec, [(partition_key, {**scope_tags, **(tags or {})})])[0]

    def submit_shards(
        self,
        spec: JobSpec,
        *,
        tags: dict[str, str] | None = None,
        now: datetime | None = None,
        per_run: int | None = None,
    ) -> tuple[str, list[str]]:
        """Queue the job's current work over every brand as a schedule tick would: one run
        per brand shard of at most ``per_run`` (``MARBA_BRANDS_PER_RUN``) brands. Returns
        (the execution's id in ``job_executions``, the run ids): the run id itself when
        one run covers every brand, else the tick's id ``<job>:<time>``."""
        from marba_dagster.core.run_scope import NothingToRun
        from marba_dagster.instance.partitions import shard_runs_now

        try:
            runs = shard_runs_now(
                spec, now or datetime.now(timezone.utc), self.instance, per_run=per_run
            )
        except NothingToRun as exc:
            raise ControlError(f"{spec.name}: nothing to run ({exc})") from None
        run_ids = self._queue(spec, [(r.partition_key, {**r.tags, **(tags or {})}) for r in runs])
        tick = runs[0].tags.get(TICK_TAG)
        return (tick or run_ids[0]), run_ids

    def _queue(self, spec: JobSpec, scopes: list[tuple[str | None, dict[str, str]]]) -> list[str]:
        """Create and submit one run of the job per (partition key, tags)."""
        workspace, location = self._location()
        repo = location.get_repository(REPOSITORY_NAME)
        if not repo.has_job(spec.name):
            raise ControlError(f"job {spec.name} is not in the code location")
        selector = JobSubsetSelector(
            location_name=location.name,
            repository_name=repo.name,
            job_name=spec.name,
            op_selection=None,
        )
        remote_job = location.get_job(selector)
        if not remote_job.job_snapshot.dep_structure_snapshot.node_invocation_snaps:
            raise ControlError(f"{spec.name} has no assets yet")
        plan = location.get_execution_plan(
            remote_job, {}, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        snapshot = plan.execution_plan_snapshot
        run_ids = []
        for partition_key, scope_tags in scopes:
            run_tags = dict(scope_tags)
            if partition_key:
                run_tags[PARTITION_NAME_TAG] = partition_key
            run = self.instance.create_run(
                job_name=spec.name,
                run_id=None,
                run_config={},
                resolved_op_selection=None,
                step_keys_to_execute=snapshot.step_keys_to_execute,
                op_selection=None,
                status=None,
                root_run_id=None,
                parent_run_id=None,
                tags={**remote_job.tags, **run_tags},
                job_snapshot=remote_job.job_snapshot,
                execution_plan_snapshot=snapshot,
                parent_job_snapshot=remote_job.parent_job_snapshot,
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                asset_selection=None,
                asset_check_selection=None,
                asset_graph=repo.asset_graph,
            )
            run_ids.append(self.instance.submit_run(run.run_id, workspace).run_id)
        return run_ids
