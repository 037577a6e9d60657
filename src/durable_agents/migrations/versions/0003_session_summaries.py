"""session summaries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 18:27:14.470172
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("da_agent_sessions", sa.Column("summary", sa.String(), nullable=True))
    op.add_column("da_agent_sessions", sa.Column("summary_upto", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("da_agent_sessions", "summary_upto")
    op.drop_column("da_agent_sessions", "summary")
