"""workers: their slot counts, which size a fan-out's drainers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("da_workers", sa.Column("concurrency", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    op.drop_column("da_workers", "concurrency")
