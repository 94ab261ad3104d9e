"""Shared fixtures: a real MARBA database on SQLite and on PostgreSQL, the API sandbox.

Database tests take the ``db_url`` (or ``engine``) fixture and run once per backend. Each
test session gets a fresh PostgreSQL database (dropped at the end); each test starts from
empty tables. Under ``CI=true`` a missing PostgreSQL server fails the run instead of
skipping the PostgreSQL half.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from marba_dagster.store import migrate
from marba_dagster.store.db import make_engine
from marba_dagster.store.schema import metadata

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["marba_dagster_tests.fixtures_sandbox"]

PG_ADMIN_URL = os.environ.get(
    "MARBA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    engine = make_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


def require_postgres() -> None:
    reason = _pg_available()
    if reason is None:
        return
    message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {reason}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database(prefix: str = "marba_test") -> str:
    """A new empty PostgreSQL database; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(
        sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    )


def drop_pg_database(url: str) -> None:
    from marba_dagster.store.db import dispose_engines

    dispose_engines()
    name = sa.engine.make_url(url).database
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def open_pg_connections(url: str) -> int:
    """Connections open right now to the database of ``url``, other than this probe's."""
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with probe.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            )
    finally:
        probe.dispose()


def production_dagster_home(home, pg_url: str, monkeypatch) -> None:
    """``home`` set up with the repository's dagster.yaml (PooledPostgresStorage) on ``pg_url``."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", pg_url)


@pytest.fixture(scope="session")
def pg_session_url():
    """A PostgreSQL database for this test session, migrated to head."""
    require_postgres()
    url = create_pg_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "marba.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template):
    """A migrated, empty MARBA database; the test runs once on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "marba.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_session_url")
        _truncate_all(url)
        yield url


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _dispose_shared_engines():
    yield
    from marba_dagster.store.db import dispose_engines

    dispose_engines()


@pytest.fixture
def marba_env(db_url, sandbox, monkeypatch, tmp_path):
    """Environment of a deployed code location: database, sandbox URLs, a Dagster home."""
    monkeypatch.setenv("MARBA_DATABASE_URL", db_url)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return {"db_url": db_url, "sandbox": sandbox, "dagster_home": home}
