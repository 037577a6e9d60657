"""versions: an instance's orchestration version, a worker's code version and versioning match

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns with no default: SQLite adds them without rebuilding the tables.
    op.add_column("da_instances", sa.Column("version", sa.String(64), nullable=True))
    op.add_column("da_workers", sa.Column("code_version", sa.String(64), nullable=True))
    op.add_column("da_workers", sa.Column("version_match", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("da_workers") as batch:
        batch.drop_column("version_match")
        batch.drop_column("code_version")
    with op.batch_alter_table("da_instances") as batch:
        batch.drop_column("version")
