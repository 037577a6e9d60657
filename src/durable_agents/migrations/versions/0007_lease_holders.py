"""lease holders: each process that holds leases heartbeats, so its death frees them in seconds; and
the sweeper records when it last woke an instance

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "da_lease_holders",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("parent_pid", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("taskhub", "holder", name=op.f("pk_da_lease_holders")),
    )
    op.create_index("ix_da_lease_holders_expiry", "da_lease_holders", ["taskhub", "expires_at"], unique=False)
    op.add_column("da_instances", sa.Column("woken_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("da_instances", "woken_at")
    op.drop_index("ix_da_lease_holders_expiry", table_name="da_lease_holders")
    op.drop_table("da_lease_holders")
