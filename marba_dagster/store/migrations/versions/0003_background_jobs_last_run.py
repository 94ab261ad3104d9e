"""background_jobs.last_run_*: the newest execution of each job and its last success, kept
with job_executions however the run was started

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marba_dagster.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("last_run_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_run_status", sa.String(20), nullable=True))
        batch.add_column(sa.Column("last_run_started_at", _TS(), nullable=True))
        batch.add_column(sa.Column("last_run_finished_at", _TS(), nullable=True))
        batch.add_column(sa.Column("last_run_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_success_at", _TS(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        for name in (
            "last_success_at",
            "last_run_error",
            "last_run_finished_at",
            "last_run_started_at",
            "last_run_status",
            "last_run_id",
        ):
            batch.drop_column(name)
