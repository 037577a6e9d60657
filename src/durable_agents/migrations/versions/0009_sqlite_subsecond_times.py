"""sqlite: row times to the millisecond (CURRENT_TIMESTAMP has whole seconds)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 11:00:00.000000

On SQLite every `created_at` (and the instances' `updated_at`, the work items' `dispatched_at`)
defaulted to CURRENT_TIMESTAMP, so a history showed all its events at +0.000 s. Only the defaults
change, so the tables are not rebuilt (a rebuild drops da_instances, and with it, by its cascades,
every row that refers to it): the schema text is rewritten, as SQLite documents for changing a
column's default (https://www.sqlite.org/lang_altertable.html, "making other kinds of table schema
changes"). PostgreSQL's now() has microseconds already.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SECONDS = "DEFAULT CURRENT_TIMESTAMP"
# The text SQLAlchemy writes for a SQLite DATETIME, in UTC, to the microsecond (SQLite gives milliseconds).
MILLISECONDS = "DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


def _replace_defaults(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name LIKE 'da!_%' ESCAPE '!'",
        (old, new),
    )
    # A new schema version makes every connection read the schema again.
    bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    _replace_defaults(SECONDS, MILLISECONDS)


def downgrade() -> None:
    _replace_defaults(MILLISECONDS, SECONDS)
