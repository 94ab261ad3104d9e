"""job_execution_shards: the per-shard detail of a job execution split into brand shards
(its job_executions row stays one row per execution)

Revision ID: 0007_brand_shards
Revises: 0006_publishing
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marba_dagster.store.types

revision = "0007_brand_shards"
down_revision = "0006_publishing"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "job_execution_shards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("job_name", sa.String(64), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(40), nullable=True),
        sa.Column("partition_key", sa.String(200), nullable=True),
        sa.Column("started_at", _TS(), nullable=True),
        sa.Column("finished_at", _TS(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("brands_processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("brands_failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_execution_shards")),
        sa.UniqueConstraint("run_id", name=op.f("uq_job_execution_shards_run_id")),
    )
    with op.batch_alter_table("job_execution_shards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_execution_shards_execution_id_shard_index"),
            ["execution_id", "shard_index"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("job_execution_shards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_execution_shards_execution_id_shard_index"))
    op.drop_table("job_execution_shards")
