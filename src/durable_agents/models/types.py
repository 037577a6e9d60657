"""Column types that mean the same on PostgreSQL and SQLite: JSON payloads, UTC timestamps, row ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: JSONB on PostgreSQL, JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")

#: A 64-bit id that SQLite also fills in by itself (only INTEGER PRIMARY KEY aliases its rowid).
RowId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    PostgreSQL stores `timestamptz` itself. SQLite has no timestamp type: SQLAlchemy stores text and
    silently drops the offset, so values are converted to UTC before they are written and read back
    as UTC, which also keeps text comparisons in the right order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name == "postgresql":
            return value
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: durable-agents stores UTC timestamps only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
