"""What differs between PostgreSQL and SQLite, in one object per database that the store asks.

Everything else in the store is portable SQLAlchemy. A fast path that only PostgreSQL allows (a
step's writes as one statement, a claim that records the previous outcome) is chosen by asking the
dialect what it can do, never by comparing names. On SQLite every transaction holds the database's
write lock from its start (see `db.py`), which is what makes the SQLite answers below safe.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..models.types import UtcDateTime


class Dialect:
    """The answers one database gives; `of(session)` or `for_url(url)` picks the right one."""

    #: SQLAlchemy's name of the database, which keys statements built once per database.
    name: str
    #: An INSERT, UPDATE or DELETE can run as a CTE of another statement, so writes that do not
    #: depend on one another go out in one round trip, atomic without a transaction of their own.
    writes_in_one_statement: bool
    #: A commit can notify listeners (LISTEN/NOTIFY); without it, waiting clients poll.
    notifies: bool

    def clock(self) -> ColumnElement[datetime] | datetime:
        """ "Now" inside a statement."""
        raise NotImplementedError

    def clock_column(self) -> ColumnElement[datetime]:
        """`clock()` as a column, to read "now" in the same round trip as a row, for a statement built
        once; `clock_parameters()` gives the parameters it needs each time it runs."""
        raise NotImplementedError

    def clock_parameters(self) -> dict[str, datetime]:
        return {}

    def current_time(self, session: Session) -> datetime:
        """The clock of `clock()`, read as a value."""
        now = self.clock()
        if isinstance(now, datetime):
            return now
        value: datetime | None = session.scalar(select(now))
        assert value is not None
        return value

    def insert(self, table: Any) -> Any:
        """An INSERT that supports `on_conflict_do_nothing(index_elements=...)` on this database."""
        raise NotImplementedError

    def try_exclusive(self, session: Session, name: str) -> bool:
        """Take the transaction-scoped lock `name` if no one else holds it."""
        raise NotImplementedError

    def json_contains(self, column: Any, pairs: dict[str, str]) -> ColumnElement[bool]:
        """`column` (a JSON object) has every key of `pairs` with its value."""
        raise NotImplementedError


class PostgreSQL(Dialect):
    name = "postgresql"
    writes_in_one_statement = True
    notifies = True

    def clock(self) -> ColumnElement[datetime]:
        # The server's clock: the same for every worker host.
        return func.clock_timestamp()

    def clock_column(self) -> ColumnElement[datetime]:
        return func.clock_timestamp()

    def insert(self, table: Any) -> Any:
        return postgresql.insert(table)

    def try_exclusive(self, session: Session, name: str) -> bool:
        key = zlib.crc32(name.encode()) - 2**31  # a stable signed 32-bit key, the same in every process
        return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))

    def json_contains(self, column: Any, pairs: dict[str, str]) -> ColumnElement[bool]:
        # JSONB's @>, which the GIN index answers (the column's generic JSON type would compile to LIKE).
        contained: ColumnElement[bool] = type_coerce(column, postgresql.JSONB()).contains(pairs)
        return contained


class SQLite(Dialect):
    name = "sqlite"
    writes_in_one_statement = False
    notifies = False

    def clock(self) -> datetime:
        # This process's clock: a SQLite file is local, so there is only one host.
        return datetime.now(UTC)

    def clock_column(self) -> ColumnElement[datetime]:
        return bindparam("now", type_=UtcDateTime())

    def clock_parameters(self) -> dict[str, datetime]:
        return {"now": self.clock()}

    def insert(self, table: Any) -> Any:
        return sqlite.insert(table)

    def try_exclusive(self, session: Session, name: str) -> bool:
        return True  # the transaction already holds the whole database

    def json_contains(self, column: Any, pairs: dict[str, str]) -> ColumnElement[bool]:
        # Keys are checked identifiers (see `tags.checked_tags`), so they are safe in a JSON path.
        return and_(*(func.json_extract(column, f'$."{key}"') == value for key, value in pairs.items()))


_DIALECTS: dict[str, Dialect] = {dialect.name: dialect for dialect in (PostgreSQL(), SQLite())}


def named(name: str) -> Dialect:
    """The dialect SQLAlchemy calls `name`."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"durable-agents stores its state in PostgreSQL or SQLite, not {name!r}") from None


def of(session: Session) -> Dialect:
    """The dialect of the database `session` talks to."""
    return named(session.get_bind().dialect.name)


@cache
def for_url(url: str) -> Dialect:
    """The dialect of the database at `url`. Cached: parsing the URL would cost every claim of a fan-out's
    drainers more than the rest of the claim's Python."""
    return named(make_url(url).get_backend_name())
