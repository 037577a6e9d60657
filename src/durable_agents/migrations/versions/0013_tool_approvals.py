"""tool approvals: agent tool calls that wait for a person to approve or reject them

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "da_tool_approvals",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("session_key", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("tool_call_id", sa.String(length=128), nullable=False),
        sa.Column("tool", sa.String(length=256), nullable=False),
        sa.Column("arguments", json, nullable=False),
        sa.Column("orchestration_instance_id", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timed_out", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("approved_arguments", json, nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["taskhub", "instance_id"],
            ["da_instances.taskhub", "da_instances.instance_id"],
            name="fk_da_tool_approvals_instance",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("taskhub", "approval_id", name=op.f("pk_da_tool_approvals")),
    )
    op.create_index(
        "ix_da_tool_approvals_status", "da_tool_approvals", ["taskhub", "status", "requested_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_da_tool_approvals_status", table_name="da_tool_approvals")
    op.drop_table("da_tool_approvals")
