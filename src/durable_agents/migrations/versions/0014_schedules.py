"""schedules: recurring schedules fired by the workers' sweepers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durable_agents.models.types import Json

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: As migration 0009 made every row time on SQLite: to the microsecond in the text, UTC.
SQLITE_NOW = sa.text("(strftime('%Y-%m-%d %H:%M:%f000', 'now'))")


def upgrade() -> None:
    now = SQLITE_NOW if op.get_bind().dialect.name == "sqlite" else sa.func.now()
    op.create_table(
        "da_schedules",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("schedule_id", sa.String(length=200), nullable=False),
        sa.Column("orchestration", sa.String(length=256), nullable=False),
        sa.Column("input", Json, nullable=True),
        sa.Column("cron", sa.String(length=256), nullable=True),
        sa.Column("every_seconds", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("catchup_window_seconds", sa.Float(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("buffered_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_instance_id", sa.String(length=256), nullable=True),
        sa.Column("fired_count", sa.BigInteger(), nullable=False),
        sa.Column("skipped_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("taskhub", "schedule_id", name=op.f("pk_da_schedules")),
    )
    op.create_index("ix_da_schedules_due", "da_schedules", ["taskhub", "next_fire_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_da_schedules_due", table_name="da_schedules")
    op.drop_table("da_schedules")
