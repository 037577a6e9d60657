"""workers: who serves a task hub, with heartbeats

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 21:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durable_agents.models.types import Json

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "da_workers",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("node_name", sa.String(length=256), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("queues", Json, nullable=False),
        sa.Column("orchestrations", Json, nullable=False),
        sa.Column("activities", Json, nullable=False),
        sa.Column("agents", Json, nullable=False),
        sa.Column("runs_sweeper", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("taskhub", "worker_id", name=op.f("pk_da_workers")),
    )
    op.create_index("ix_da_workers_expiry", "da_workers", ["taskhub", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_da_workers_expiry", table_name="da_workers")
    op.drop_table("da_workers")
