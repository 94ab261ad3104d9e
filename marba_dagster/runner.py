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
from marba_dagster.store.db import DatabaseError, check_connection, make_engine, database_url_from_env
from marba_dagster.store.queries import existing_brand_ids


class RunError(RuntimeError):
    """The run could not be started (bad job, brand or database): one clear line."""


@dataclass
class Materialization:
    asset: str
    partition: str | None
    metadata: dict[str, Any]


@dataclass
class RunOutcome:
    job: str
    run_id: str | None
    success: bool
    seconds: float
    partition_key: str | None = None
    materializations: list[Materialization] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None


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
        raise RunError("the MARBA database schema is missing or out of date: run `marba db upgrade`")
    return engine


def run_job(
    name: str,
    brand_ids: list[str] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
    now: datetime | None = None,
    definitions: dg.Definitions | None = None,
    log_level: str = "ERROR",
) -> RunOutcome:
    """Run job ``name`` in this process on ``instance`` (default: the one of ``DAGSTER_HOME``,
    made for this call and disposed after it, since its storage may hold connections)."""
    from marba_dagster.instance import given_or_own_instance

    with given_or_own_instance(instance) as inst:
        return _run_job(name, brand_ids, inst, now, definitions, log_level)


def _run_job(
    name: str,
    brand_ids: list[str] | None,
    instance: dg.DagsterInstance,
    now: datetime | None,
    definitions: dg.Definitions | None,
    log_level: str,
) -> RunOutcome:
    from marba_dagster.defs.brands import sync_brand_partitions
    from marba_dagster.defs.jobs import NothingToRun, run_scope

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
    finally:
        engine.dispose()

    if definitions is None:
        from marba_dagster.definitions import load_definitions

        definitions = load_definitions()
    job_def = definitions.resolve_job_def(spec.name)
    started = time.monotonic()
    if not job_def.nodes_in_topological_order:
        return RunOutcome(spec.name, None, True, 0.0, skipped="the job has no assets yet")
    try:
        partition_key, tags = run_scope(spec, now or datetime.now(timezone.utc), instance, brand_ids)
    except NothingToRun as exc:
        return RunOutcome(spec.name, None, True, 0.0, skipped=str(exc))
    result = job_def.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        raise_on_error=False,
        # The full event stream is in the instance (and the UI); the terminal gets errors.
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    outcome = RunOutcome(
        job=spec.name,
        run_id=result.run_id,
        success=result.success,
        seconds=time.monotonic() - started,
        partition_key=partition_key,
    )
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            outcome.materializations.append(
                Materialization(
                    asset=mat.asset_key.to_user_string(),
                    partition=mat.partition,
                    metadata={k: _metadata_value(v) for k, v in mat.metadata.items()},
                )
            )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            err = event.step_failure_data.error
            message = err.message.strip().splitlines()[0] if err else "step failed"
            outcome.errors.append(f"{event.step_key}: {message}")
    return outcome
