"""agent sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 17:58:39.144075
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durable_agents.models.types import Json, RowId

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "da_agent_sessions",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("session_key", sa.String(length=128), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("taskhub", "agent", "session_key", name=op.f("pk_da_agent_sessions")),
    )
    op.create_index("ix_da_agent_sessions_expiry", "da_agent_sessions", ["taskhub", "expires_at"], unique=False)
    op.create_table(
        "da_agent_messages",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("session_key", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.String(), nullable=True),
        sa.Column("tool_calls", Json, nullable=True),
        sa.Column("tool_call_id", sa.String(length=128), nullable=True),
        sa.Column("usage", Json, nullable=True),
        sa.Column("orchestration_instance_id", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["taskhub", "agent", "session_key"],
            ["da_agent_sessions.taskhub", "da_agent_sessions.agent", "da_agent_sessions.session_key"],
            name="fk_da_agent_messages_session",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_da_agent_messages")),
        sa.UniqueConstraint(
            "taskhub", "agent", "session_key", "correlation_id", "position", name="uq_da_agent_messages_turn"
        ),
    )
    op.create_index(
        "ix_da_agent_messages_instance", "da_agent_messages", ["taskhub", "orchestration_instance_id"], unique=False
    )
    op.create_index(
        "ix_da_agent_messages_session", "da_agent_messages", ["taskhub", "agent", "session_key", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_da_agent_messages_session", table_name="da_agent_messages")
    op.drop_index("ix_da_agent_messages_instance", table_name="da_agent_messages")
    op.drop_table("da_agent_messages")
    op.drop_index("ix_da_agent_sessions_expiry", table_name="da_agent_sessions")
    op.drop_table("da_agent_sessions")
