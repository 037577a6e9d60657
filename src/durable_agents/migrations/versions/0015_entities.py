"""entities: durable entities' state and their recent operations

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durable_agents.models.types import Json, RowId

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _instance_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["taskhub", "instance_id"],
        ["da_instances.taskhub", "da_instances.instance_id"],
        ondelete="CASCADE",
        name=f"fk_{table}_instance",
    )


def upgrade() -> None:
    op.create_table(
        "da_entities",
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("state", Json, nullable=True),
        sa.Column("locked_by", sa.String(length=600), nullable=True),
        sa.Column("lock_holder", sa.String(length=256), nullable=True),
        sa.Column("queued", Json, nullable=False),
        sa.Column("operation_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("taskhub", "instance_id", name=op.f("pk_da_entities")),
        _instance_fk("da_entities"),
    )
    op.create_index("ix_da_entities_name", "da_entities", ["taskhub", "name", "key"], unique=False)
    op.create_index("ix_da_entities_holder", "da_entities", ["taskhub", "lock_holder"], unique=False)
    op.create_table(
        "da_entity_operations",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("taskhub", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=256), nullable=False),
        sa.Column("caller", sa.String(length=256), nullable=True),
        sa.Column("input", Json, nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("failure", Json, nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_da_entity_operations")),
        _instance_fk("da_entity_operations"),
    )
    op.create_index(
        "ix_da_entity_operations_entity", "da_entity_operations", ["taskhub", "instance_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_da_entity_operations_entity", table_name="da_entity_operations")
    op.drop_table("da_entity_operations")
    op.drop_index("ix_da_entities_holder", table_name="da_entities")
    op.drop_index("ix_da_entities_name", table_name="da_entities")
    op.drop_table("da_entities")
