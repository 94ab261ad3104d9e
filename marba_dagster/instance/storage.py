"""Dagster instance storage for production: dagster-postgres with held connections.

dagster-postgres opens a new PostgreSQL connection for every storage operation (its engines
use ``NullPool`` so that no process accumulates connections). A run that materializes one
partition per brand and section stores thousands of events, each costing a connection set-up
(measured in ``bench/results/full_cycle.md``: about 11 ms per event against under 2 ms on a
held connection). ``PooledPostgresStorage`` is dagster-postgres's storage, configured the same
way, whose run and event-log storages keep a small pool per process instead: the same
engines dagster-webserver switches to (``optimize_for_webserver``), so the code paths are the
ones Dagster itself runs in production.

Use it in ``dagster.yaml`` (the repository's production file does)::

    storage:
      custom:
        module: marba_dagster.instance.storage
        class: PooledPostgresStorage
        config:
          postgres_url: {env: DAGSTER_PG_URL}
          pool_max_overflow: 4        # optional
          pool_recycle_seconds: 3600  # optional

Each Dagster process (run worker, daemon, webserver, code server) then holds at most
``1 + pool_max_overflow`` connections per storage; size PostgreSQL's ``max_connections`` (or
a pooler in front of it) for the processes you run. Disposing the instance closes them
(dagster-postgres's storages hold nothing, so their ``dispose`` does not try).

Several processes may open an instance on an empty database at the same moment (seven run
workers started together on a new deployment). dagster-postgres creates its tables from
each of them and one loses the race with ``relation "instance_info" already exists``; here
the storages are created under a PostgreSQL advisory lock, so the first process creates
the schema and the others find it. The same workers meeting a pool for the first time, or
any run after ``concurrency.pools.default_limit`` was changed, hit a second failure in
Dagster's code on PostgreSQL; the event-log storage here sets a pool's default with one
upsert instead (see ``_HeldEventLogStorage.initialize_concurrency_limit_to_default``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster import Field, IntSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster._core.storage.event_log.schema import ConcurrencyLimitsTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

DEFAULT_MAX_OVERFLOW = 4
DEFAULT_RECYCLE_SECONDS = 3600
# Any fixed 64-bit key works; it only has to be the same in every process of a deployment.
SCHEMA_LOCK_KEY = 0x6D617262615F6467  # "marba_dg"


@contextmanager
def _schema_creation_lock(
    postgres_url: str, enabled: bool, token_provider: Any = None
) -> Iterator[None]:
    """Hold a session advisory lock on the instance database while the block runs, so that
    only one process at a time checks for and creates Dagster's tables."""
    if not enabled:
        yield
        return
    engine = create_pg_engine(postgres_url, token_provider, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


class _ClosesHeldConnections:
    """``dispose`` also closes the engine's held connections (dagster-postgres's storages do
    nothing there: with ``NullPool`` they hold none)."""

    _engine: sa.Engine

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engine.dispose()


class _HeldRunStorage(_ClosesHeldConnections, PostgresRunStorage):
    """Run storage on held connections."""


class _HeldEventLogStorage(_ClosesHeldConnections, PostgresEventLogStorage):
    """Event-log storage on held connections, which sets a pool's default limit in one
    statement."""

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        """Give ``concurrency_key`` the instance's ``default_limit`` (a pool seen for the first
        time, or a default changed in ``dagster.yaml``).

        Dagster's version INSERTs, catches the duplicate-key error and then UPDATEs in the same
        transaction. PostgreSQL aborts a transaction at its first error, so that UPDATE fails:
        every step of a pool whose row already exists fails once the default is changed, and
        of two runs that meet a new pool together, one fails. An upsert does both cases in one
        statement, and its row lock makes the second run wait for the first one's slots.
        """
        if not (
            self.has_concurrency_limits_table
            and self.has_instance
            and self.has_default_pool_limit_col
        ):
            return super().initialize_concurrency_limit_to_default(concurrency_key)
        default_limit = self._instance.global_op_concurrency_default_limit
        if default_limit is None:
            return super().initialize_concurrency_limit_to_default(concurrency_key)
        self._reconcile_concurrency_limits_from_slots()
        limits = ConcurrencyLimitsTable
        upsert = (
            pg_insert(limits)
            .values(concurrency_key=concurrency_key, limit=default_limit, using_default_limit=True)
            .on_conflict_do_update(
                index_elements=[limits.c.concurrency_key],
                set_={"limit": default_limit},
                where=limits.c.limit != default_limit,
            )
        )
        with self.index_transaction() as conn:
            conn.execute(upsert)
            self._allocate_concurrency_slots(conn, concurrency_key, default_limit)
        return True


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose run and event-log storages hold their connections
    (pool of one per process, plus ``pool_max_overflow`` for concurrent threads), recycled
    after ``pool_recycle_seconds``. Schedule storage is left as it is (a few operations per
    tick)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool_max_overflow: int = DEFAULT_MAX_OVERFLOW,
        pool_recycle_seconds: int = DEFAULT_RECYCLE_SECONDS,
    ):
        if pool_max_overflow < 0 or pool_recycle_seconds < 1:
            raise ValueError("pool_max_overflow must be >= 0 and pool_recycle_seconds >= 1")
        # DagsterPostgresStorage.__init__, with storages that close what they hold on dispose
        # (an instance is disposed when a CLI command or an API call is done with it).
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        with _schema_creation_lock(postgres_url, should_autocreate_tables, token_provider):
            self._run_storage = _HeldRunStorage(
                postgres_url, should_autocreate_tables, token_provider=token_provider
            )
            self._event_log_storage = _HeldEventLogStorage(
                postgres_url, should_autocreate_tables, token_provider=token_provider
            )
            self._schedule_storage = PostgresScheduleStorage(
                postgres_url, should_autocreate_tables, token_provider=token_provider
            )
        DagsterStorage.__init__(self)
        self.pool_max_overflow = pool_max_overflow
        self.pool_recycle_seconds = pool_recycle_seconds
        for storage in (self._event_log_storage, self._run_storage):
            # statement_timeout=0: no limit (a run's writes must not be cut off; the
            # webserver sets its own limit when it calls this again for its queries).
            storage.optimize_for_webserver(
                statement_timeout=0,
                pool_recycle=pool_recycle_seconds,
                max_overflow=pool_max_overflow,
            )

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {
            **pg_config(),
            "pool_max_overflow": Field(
                IntSource,
                is_required=False,
                default_value=DEFAULT_MAX_OVERFLOW,
                description="Connections opened beyond the held one when threads need them.",
            ),
            "pool_recycle_seconds": Field(
                IntSource,
                is_required=False,
                default_value=DEFAULT_RECYCLE_SECONDS,
                description="A held connection is replaced after this many seconds.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            pool_max_overflow=config_value.get("pool_max_overflow", DEFAULT_MAX_OVERFLOW),
            pool_recycle_seconds=config_value.get("pool_recycle_seconds", DEFAULT_RECYCLE_SECONDS),
        )
