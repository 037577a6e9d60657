"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 17:34:16.910308
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durable_agents.models.types import Json, RowId

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "da_instances",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("execution_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("input", Json, nullable=True),
        sa.Column("output", Json, nullable=True),
        sa.Column("custom_status", Json, nullable=True),
        sa.Column("failure", Json, nullable=True),
        sa.Column("parent_instance_id", sa.String(length=256), nullable=True),
        sa.Column("parent_execution_id", sa.String(length=32), nullable=True),
        sa.Column("parent_task_id", sa.Integer(), nullable=True),
        sa.Column("history_length", sa.Integer(), nullable=False),
        sa.Column("scheduled_start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("taskhub", "instance_id", name=op.f("pk_da_instances")),
    )
    op.create_index("ix_da_instances_created", "da_instances", ["taskhub", "created_at"], unique=False)
    op.create_index("ix_da_instances_name", "da_instances", ["taskhub", "name", "created_at"], unique=False)
    op.create_index("ix_da_instances_parent", "da_instances", ["taskhub", "parent_instance_id"], unique=False)
    op.create_index("ix_da_instances_status", "da_instances", ["taskhub", "status", "created_at"], unique=False)
    op.create_table(
        "da_history",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(length=32), nullable=False),
        sa.Column("event", Json, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["taskhub", "instance_id"],
            ["da_instances.taskhub", "da_instances.instance_id"],
            name="fk_da_history_instance",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("taskhub", "instance_id", "seq", name=op.f("pk_da_history")),
    )
    op.create_table(
        "da_inbox",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("execution_id", sa.String(length=32), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("event", Json, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["taskhub", "instance_id"],
            ["da_instances.taskhub", "da_instances.instance_id"],
            name="fk_da_inbox_instance",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_da_inbox")),
        sa.UniqueConstraint("taskhub", "instance_id", "dedupe_key", name="uq_da_inbox_dedupe"),
    )
    op.create_index("ix_da_inbox_created", "da_inbox", ["taskhub", "created_at"], unique=False)
    op.create_index("ix_da_inbox_instance", "da_inbox", ["taskhub", "instance_id", "id"], unique=False)
    op.create_table(
        "da_timers",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("execution_id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["taskhub", "instance_id"],
            ["da_instances.taskhub", "da_instances.instance_id"],
            name="fk_da_timers_instance",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_da_timers")),
    )
    op.create_index("ix_da_timers_due", "da_timers", ["taskhub", "fire_at"], unique=False)
    op.create_table(
        "da_work_items",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("execution_id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("input", Json, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["taskhub", "instance_id"],
            ["da_instances.taskhub", "da_instances.instance_id"],
            name="fk_da_work_items_instance",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_da_work_items")),
        sa.UniqueConstraint("taskhub", "instance_id", "execution_id", "task_id", name="uq_da_work_items_task"),
    )
    op.create_index("ix_da_work_items_lease", "da_work_items", ["taskhub", "lease_expires_at"], unique=False)
    op.create_index("ix_da_work_items_sweep", "da_work_items", ["taskhub", "status", "dispatched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_da_work_items_sweep", table_name="da_work_items")
    op.drop_index("ix_da_work_items_lease", table_name="da_work_items")
    op.drop_table("da_work_items")
    op.drop_index("ix_da_timers_due", table_name="da_timers")
    op.drop_table("da_timers")
    op.drop_index("ix_da_inbox_instance", table_name="da_inbox")
    op.drop_index("ix_da_inbox_created", table_name="da_inbox")
    op.drop_table("da_inbox")
    op.drop_table("da_history")
    op.drop_index("ix_da_instances_status", table_name="da_instances")
    op.drop_index("ix_da_instances_parent", table_name="da_instances")
    op.drop_index("ix_da_instances_name", table_name="da_instances")
    op.drop_index("ix_da_instances_created", table_name="da_instances")
    op.drop_table("da_instances")
