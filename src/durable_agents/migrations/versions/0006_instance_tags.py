"""instances: tags, filtered by containment (a GIN index on PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("da_instances", sa.Column("tags", json, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # jsonb_path_ops answers `tags @> '{"k": "v"}'` from the index, whatever the number of instances.
        op.create_index(
            "ix_da_instances_tags",
            "da_instances",
            ["tags"],
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_da_instances_tags", table_name="da_instances")
    op.drop_column("da_instances", "tags")
