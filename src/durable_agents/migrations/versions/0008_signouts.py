"""signouts: dashboard cookies signed out before they expired

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "da_signouts",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("taskhub", "token_digest", name=op.f("pk_da_signouts")),
    )
    op.create_index("ix_da_signouts_expiry", "da_signouts", ["taskhub", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_da_signouts_expiry", table_name="da_signouts")
    op.drop_table("da_signouts")
