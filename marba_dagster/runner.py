"""Run a MARBA job now through the Dagster instance (so it shows in the UI) and report it.

Used by `marba run`, `marba demo` and the Python API. The run covers the job's current work:
the latest complete UTC day or hour for the collectors, every active brand unless narrowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from marba_dagster.core.catalog import JobSpec, resolve
from marba_dagster.store import migrate
from marba_dagster.store.brands import existing_brand_ids
from marba_dagster.store.db import (
    DatabaseError,
    check_connection,
    database_url_from_env,
    make_engine,
)


class RunError(RuntimeError):
    """The run could not be started (bad job, brand or database): one clear line."""


@dataclass
class Materialization:
    asset: str
    partition: str | None
    metadata: dict[str, Any]


@dataclass
class RunOutcome:
    """What a run did. ``status`` is the run's status as recorded in ``job_executions``:
    success, partial (it succeeded but left brands or a source out: see ``error`` and
    ``warnings``), failure or canceled."""

    job: str
    run_id: str | None
    success: bool
    seconds: float
    partition_key: str | None = None
    materializations: list[Materialization] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None
    status: str = "success"
    error: str | None = None
    brands_failed: int = 0

    @property
    def label(self) -> str:
        """One word for the terminal: ok, skipped, PARTIAL, FAILED or CANCELED."""
        if self.skipped:
            return "skipped"
        return {"success": "ok", "partial": "PARTIAL", "canceled": "CANCELED"}.get(
            self.status, "FAILED"
        )


def _metadata_value(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, (int, float, str, bool)) or raw is None:
        return raw
    return getattr(value, "text", None) or str(raw)


def open_database(url: str | None = None):
    """An engine on a reachable, migrated MARBA database, or ``RunError`` saying why not."""
    try:
        engine = make_engine(url or database_url_from_env())
        check_connection(engine)
    except DatabaseError as exc:
        raise RunError(str(exc)) from None
    if not migrate.is_up_to_date(engine):
        raise RunError(
            "the MARBA database schema is missing or out of date: run `marba db upgrade`"
        )
    return engine


def run_job(
    name: str,
    brand_ids: list[str] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
    now: datetime | None = None,
    definitions: dg.Definitions | None = None,
    log_level: str = "CRITICAL",
    refresh: bool = False,
) -> RunOutcome:
    """Run job ``name`` in this process on ``instance`` (default: the one of ``DAGSTER_HOME``,
    made for this call and disposed after it, since its storage may hold connections).

    The run is the job's scheduled work, so cached enrichment stays TTL-aware
    (``marba/refresh=due``); ``refresh=True`` recomputes it as a person's Materialize does.
    SIGTERM or Ctrl-C stops the run cleanly: the step in progress is interrupted, the
    publisher gives back what it claimed but did not send, and the run ends CANCELED.
    """
    from marba_dagster.instance import given_or_own_instance

    with given_or_own_instance(instance) as inst:
        return _run_job(name, brand_ids, inst, now, definitions, log_level, refresh)


def _run_job(
    name: str,
    brand_ids: list[str] | None,
    instance: dg.DagsterInstance,
    now: datetime | None,
    definitions: dg.Definitions | None,
    log_level: str,
    refresh: bool,
) -> RunOutcome:
    from marba_dagster.core.run_scope import NothingToRun
    from marba_dagster.core.runs import REFRESH_TAG
    from marba_dagster.instance.partitions import scope_now, sync_brand_partitions
    from marba_dagster.instance.workers import fail_dead_runs

    try:
        spec: JobSpec = resolve(name)
    except KeyError as exc:
        raise RunError(str(exc)) from None
    engine = open_database()
    try:
        if brand_ids:
            with engine.connect() as conn:
                known = existing_brand_ids(conn, brand_ids)
            unknown = [b for b in brand_ids if b not in known]
            if unknown:
                raise RunError(f"unknown brand: {', '.join(unknown)}")
        sync_brand_partitions(instance, engine)
        # A run left STARTED by a process that died (SIGKILL) is failed now, not left
        # holding its job's slot in the run queue.
        fail_dead_runs(instance)

        if definitions is None:
            from marba_dagster.definitions import load_definitions

            definitions = load_definitions()
        job_def = definitions.resolve_job_def(spec.name)
        started = time.monotonic()
        if not job_def.nodes_in_topological_order:
            return RunOutcome(spec.name, None, True, 0.0, skipped="the job has no assets yet")
        try:
            partition_key, tags = scope_now(
                spec, now or datetime.now(timezone.utc), instance, brand_ids
            )
        except NothingToRun as exc:
            return RunOutcome(spec.name, None, True, 0.0, skipped=str(exc))
        if spec.group == "enrichment":  # the one job with cached, TTL-bound results
            tags[REFRESH_TAG] = "force" if refresh else "due"
        run_id, events = _execute(
            job_def,
            instance,
            partition_key,
            tags,
            # The full event stream is in the instance (and the UI); the caller prints the
            # outcome (with each failure's cause), so the console log is quiet by default.
            {"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        outcome = _outcome(
            spec, instance, engine, run_id, events, partition_key, time.monotonic() - started
        )
    finally:
        engine.dispose()
    return outcome


def _interrupted(event) -> bool:
    """Whether a step event reports an interrupt (SIGTERM or Ctrl-C in the step): a failure
    from one, or a retry Dagster scheduled for one (its RetryPolicy retries interrupts)."""
    from dagster._core.execution.plan.objects import ErrorSource

    if event.is_step_failure:
        return event.step_failure_data.error_source == ErrorSource.INTERRUPT
    if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
        error = event.event_specific_data.error
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


def _execute(job_def, instance, partition_key, tags, run_config) -> tuple[str, list]:
    """Execute ``job_def`` in this process, as ``execute_in_process`` does, but stopping
    cleanly on SIGTERM or Ctrl-C.

    Dagster raises the interrupt inside the running step (and would retry the step under
    its RetryPolicy, made for preempted workers). Here the run is marked CANCELING, as a
    termination from the UI does, and the interrupt is raised again into the execution so
    nothing is retried: the run ends CANCELED, not failed, and is not re-executed.
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._core.execution.api import execute_run_iterator
    from dagster._core.execution.execute_in_process import merge_run_tags

    job = job_def.as_ephemeral_job(resource_defs={}, input_values={})
    run_tags = merge_run_tags(
        job_def=job,
        partition_key=partition_key,
        tags=tags,
        asset_selection=None,
        instance=instance,
        run_config=run_config,
    )
    run = instance.create_run_for_job(
        job_def=job, run_config=run_config, tags={**job.run_tags, **run_tags}
    )
    events = []
    iterator = execute_run_iterator(InMemoryJob(job), run, instance)
    stop: BaseException | None = None
    while True:
        try:
            event = iterator.throw(stop) if stop is not None else next(iterator)
        except StopIteration:
            break
        stop = None
        events.append(event)
        if _interrupted(event):
            current = instance.get_run_by_id(run.run_id)
            if current is not None and current.status == dg.DagsterRunStatus.STARTED:
                instance.report_run_canceling(current, message="stop requested (SIGTERM or Ctrl-C)")
            if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
                stop = DagsterExecutionInterruptedError("stop requested (SIGTERM or Ctrl-C)")
    return run.run_id, events


def _outcome(spec, instance, engine, run_id, events, partition_key, seconds) -> RunOutcome:
    from marba_dagster.core.runs import root_cause, step_label
    from marba_dagster.instance.tracking import sync_run

    run = instance.get_run_by_id(run_id)
    # Recorded already when the instance is a MarbaInstance; idempotent otherwise.
    facts = sync_run(instance, engine, run, spec)
    outcome = RunOutcome(
        job=spec.name,
        run_id=run_id,
        success=run.status == dg.DagsterRunStatus.SUCCESS,
        seconds=seconds,
        partition_key=partition_key,
        status=facts.status if facts else run.status.value.lower(),
        error=facts.error if facts else None,
        brands_failed=facts.brands_failed if facts else 0,
    )
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            outcome.materializations.append(
                Materialization(
                    asset=mat.asset_key.to_user_string(),
                    partition=mat.partition,
                    metadata={k: _metadata_value(v) for k, v in mat.metadata.items()},
                )
            )
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                severity = (
                    "warning"
                    if evaluation.severity == dg.AssetCheckSeverity.WARN
                    else "check failed"
                )
                what = (evaluation.description or evaluation.check_name).strip().splitlines()[0]
                outcome.warnings.append(
                    f"{severity}: {evaluation.asset_key.to_user_string()}"
                    f" {evaluation.check_name}: {what}"
                )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            described = data.user_failure_data.description if data.user_failure_data else None
            message = described.strip().splitlines()[0] if described else root_cause(data.error)
            outcome.errors.append(f"{step_label(event.step_key)}: {message}")
    return outcome
