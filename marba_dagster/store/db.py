"""Engines and portable write helpers for the MARBA database (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

DEFAULT_SQLITE_PATH = Path(".marba") / "marba.db"


class DatabaseError(RuntimeError):
    """The MARBA database cannot be used: bad URL, unreachable server, missing schema."""


def default_database_url() -> str:
    """The embedded default: a SQLite file under ``.marba/`` in the working directory."""
    return f"sqlite:///{DEFAULT_SQLITE_PATH.as_posix()}"


def database_url_from_env() -> str:
    from marba_dagster.settings import DATABASE_URL

    return DATABASE_URL.raw() or default_database_url()


def normalise_url(url: str) -> str:
    """Give bare ``postgresql://`` URLs an explicit driver (SQLAlchemy 2.1 needs one)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def redact_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL: say nothing of its contents
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers work while a job writes; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: ``MARBA_DATABASE_URL`` or the embedded SQLite file)."""
    url = normalise_url(url or database_url_from_env())
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:
        raise DatabaseError(f"invalid database URL {redact_url(url)!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    try:
        return sa.create_engine(url, **kwargs)
    except Exception as exc:
        raise DatabaseError(f"cannot use database {redact_url(url)}: {exc}") from exc


def check_connection(engine: Engine) -> None:
    """Raise ``DatabaseError`` with one clear line if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else ""
        raise DatabaseError(
            f"cannot connect to the MARBA database at {redact_url(str(engine.url))}: {reason}"
        ) from exc


def _insert_for(conn: Connection, table: sa.Table):
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise DatabaseError(f"no upsert for dialect {name}")


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Iterable[str],
    update_columns: Iterable[str] | None = None,
    *,
    chunk_size: int = 500,
) -> int:
    """Insert ``rows``, updating ``update_columns`` where ``conflict_columns`` already exist.

    ``update_columns=None`` updates every supplied column but the conflict ones; an empty
    list inserts only the new rows (``DO NOTHING``). Works the same on SQLite and PostgreSQL.
    Returns the number of rows sent.
    """
    if not rows:
        return 0
    conflict = list(conflict_columns)
    keys = list(rows[0].keys())
    if update_columns is None:
        update_columns = [k for k in keys if k not in conflict]
    update_columns = list(update_columns)
    stmt = _insert_for(conn, table)
    if update_columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict,
            set_={c: stmt.excluded[c] for c in update_columns},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=conflict)
    # One statement, its rows as parameters (executemany): SQLAlchemy compiles it once per
    # process and batches the rows into multi-row VALUES itself ("insertmanyvalues"), where
    # a statement with the rows inlined was compiled again on every call (a fifth of the
    # analytics collector's CPU). Chunks bound the memory of one round trip.
    for start in range(0, len(rows), chunk_size):
        conn.execute(stmt, [dict(r) for r in rows[start : start + chunk_size]])
    return len(rows)


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Plain bulk insert (executemany)."""
    if not rows:
        return 0
    conn.execute(table.insert(), list(rows))
    return len(rows)


# One engine (and connection pool) per URL per process, shared by every resource and job.
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One engine (and connection pool) per URL per process."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
