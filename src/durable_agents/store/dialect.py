"""What differs between PostgreSQL and SQLite: the clock, upserts, the sweep lock, change notifications.

Everything else in the store is portable SQLAlchemy. On SQLite every transaction holds the database's
write lock from its start (see `db.py`), which is what makes the answers below safe there.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models.types import UtcDateTime


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def clock(session: Session) -> ColumnElement[datetime] | datetime:
    """ "Now" inside a statement: the server's clock on PostgreSQL (the same for every worker host),
    this process's clock on SQLite (a local file, so there is only one host)."""
    if dialect_name(session) == "postgresql":
        return func.clock_timestamp()
    return datetime.now(UTC)


def clock_column(backend: str) -> ColumnElement[datetime]:
    """`clock()` as a column, to read "now" in the same round trip as a row, for a statement built once.
    On SQLite it is the bind parameter `now`, which `clock_parameters()` fills in each time it runs."""
    if backend == "postgresql":
        return func.clock_timestamp()
    return bindparam("now", type_=UtcDateTime())


def clock_parameters(session: Session) -> dict[str, datetime]:
    """The parameters a statement with `clock_column()` needs."""
    now = clock(session)
    return {"now": now} if isinstance(now, datetime) else {}


def current_time(session: Session) -> datetime:
    """The clock of `clock()`, read as a value."""
    now = clock(session)
    if isinstance(now, datetime):
        return now
    value: datetime | None = session.scalar(select(now))
    assert value is not None
    return value


def insert(session: Session, table: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing(index_elements=...)` on this database."""
    return insert_for(dialect_name(session), table)


def insert_for(backend: str, table: Any) -> Any:
    """`insert()` for the database named `backend`, for statements built once per database."""
    if backend == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def try_exclusive(session: Session, name: str) -> bool:
    """Take the transaction-scoped lock `name` if no one else holds it.

    PostgreSQL uses an advisory lock; a SQLite transaction already holds the whole database.
    """
    if dialect_name(session) != "postgresql":
        return True
    key = zlib.crc32(name.encode()) - 2**31  # a stable signed 32-bit key, the same in every process
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))


def supports_writing_ctes(session: Session) -> bool:
    """Whether an INSERT or DELETE can run as a CTE of another statement."""
    return dialect_name(session) == "postgresql"


def supports_notify(session: Session) -> bool:
    return dialect_name(session) == "postgresql"
