"""The data-quality checks' one query shape: count rows per problem, fetch a few examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def count_problems(
    conn: Connection,
    scope: Sequence[ColumnElement[bool]],
    problems: Mapping[str, ColumnElement[bool]],
    example_columns: Sequence[ColumnElement],
    order_by: Sequence[ColumnElement],
    limit: int,
) -> tuple[int, dict[str, int], list[dict]]:
    """(rows in ``scope``, rows per problem, up to ``limit`` examples tagged with their problem).

    One pass counts every problem (``COUNT(*) FILTER``); examples are read only for problems
    that occur, first problem first, so the query cost stays with the clean case."""
    found = conn.execute(
        sa.select(*[sa.func.count().filter(cond) for cond in problems.values()]).where(*scope)
    ).one()
    counts = {name: int(n) for name, n in zip(problems, found, strict=True)}
    checked = int(conn.execute(sa.select(sa.func.count()).where(*scope)).scalar_one())
    examples: list[dict] = []
    for name, cond in problems.items():
        if counts[name] and len(examples) < limit:
            rows = conn.execute(
                sa.select(*example_columns)
                .where(*scope, cond)
                .order_by(*order_by)
                .limit(limit - len(examples))
            ).mappings()
            examples.extend({"problem": name, **dict(row)} for row in rows)
    return checked, counts, examples
