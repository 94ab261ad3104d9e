"""Queries shared by the jobs, the CLI and the API (SQLAlchemy Core, portable)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema as s
from .types import utcnow
from marba_dagster.core.catalog import JOBS


def active_brand_ids(conn: Connection) -> list[str]:
    rows = conn.execute(
        sa.select(s.brands.c.id).where(s.brands.c.is_active.is_(True)).order_by(s.brands.c.id)
    )
    return [r[0] for r in rows]


def active_brand_names(conn: Connection) -> dict[str, str]:
    """Active brands' names by id."""
    rows = conn.execute(
        sa.select(s.brands.c.id, s.brands.c.name)
        .where(s.brands.c.is_active.is_(True))
        .order_by(s.brands.c.id)
    )
    return {r[0]: r[1] or "" for r in rows}


def existing_brand_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    ids = list(ids)
    if not ids:
        return set()
    rows = conn.execute(sa.select(s.brands.c.id).where(s.brands.c.id.in_(ids)))
    return {r[0] for r in rows}


def brands_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, dict]:
    if not ids:
        return {}
    rows = conn.execute(sa.select(s.brands).where(s.brands.c.id.in_(list(ids)))).mappings()
    return {r["id"]: dict(r) for r in rows}


def sync_background_jobs(conn: Connection, crons: dict[str, str] | None = None) -> None:
    """Make sure ``background_jobs`` lists the seven jobs; keep their state, refresh the cron."""
    from .db import upsert

    crons = crons or {}
    rows = [
        {
            "name": j.name,
            "alias": j.alias,
            "description": j.description,
            "cron": crons.get(j.name, j.cron),
            "status": "active",
            "updated_at": utcnow(),
        }
        for j in JOBS
    ]
    # Status is owned by pause/resume and the circuit breaker: never reset it here.
    upsert(conn, s.background_jobs, rows, ["name"], ["alias", "description", "cron", "updated_at"])


def write_job_log(
    conn: Connection,
    job_name: str,
    level: str,
    message: str,
    *,
    run_id: str | None = None,
    brand_id: str | None = None,
    context: dict | None = None,
) -> None:
    conn.execute(
        s.job_logs.insert().values(
            job_name=job_name,
            run_id=run_id,
            level=level,
            brand_id=brand_id,
            message=message,
            context=context or {},
            created_at=utcnow(),
        )
    )
