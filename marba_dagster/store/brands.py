"""Queries on ``brands`` shared by every job, the CLI and the API."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema


def active_brand_ids(conn: Connection) -> list[str]:
    rows = conn.execute(
        sa.select(schema.brands.c.id)
        .where(schema.brands.c.is_active.is_(True))
        .order_by(schema.brands.c.id)
    )
    return [r[0] for r in rows]


def active_brand_names(conn: Connection) -> dict[str, str]:
    """Active brands' names by id."""
    rows = conn.execute(
        sa.select(schema.brands.c.id, schema.brands.c.name)
        .where(schema.brands.c.is_active.is_(True))
        .order_by(schema.brands.c.id)
    )
    return {r[0]: r[1] or "" for r in rows}


def existing_brand_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    ids = list(ids)
    if not ids:
        return set()
    rows = conn.execute(sa.select(schema.brands.c.id).where(schema.brands.c.id.in_(ids)))
    return {r[0] for r in rows}


def brands_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, dict]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(schema.brands).where(schema.brands.c.id.in_(list(ids)))
    ).mappings()
    return {r["id"]: dict(r) for r in rows}
