"""instances: the W3C trace context of the call that started them, the root of their trace

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("da_instances", sa.Column("trace_parent", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("da_instances", "trace_parent")
