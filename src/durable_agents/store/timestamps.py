"""Reading any `timestamptz` PostgreSQL holds, including those Python's datetime cannot.

PostgreSQL stores years up to 294276 and 'infinity'; Python stops at 9999. The entry points refuse
such times (`moments.py`), but a row written before they did, or by hand, would otherwise make every
query that reads it fail: listing, terminating and purging the instance with it. Such a value reads
as the nearest time Python holds, as psycopg's documentation suggests for 'infinity'.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import psycopg
from psycopg.adapt import Loader

_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@cache
def saturating_loader(default: type[Loader]) -> type[Loader]:
    """psycopg's own loader (its C one when installed: every step reads timestamps), wrapped."""

    class SaturatingTimestamptzLoader(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self.read = default(oid, context).load

        def load(self, data: Any) -> datetime:
            try:
                value: datetime = self.read(data)
            except psycopg.DataError:
                text = bytes(data)
                return _EARLIEST if text.startswith(b"-") or text.endswith(b"BC") else _LATEST
            return value

    return SaturatingTimestamptzLoader


def read_any_timestamp(connection: psycopg.Connection[Any]) -> None:
    """Make `connection` read every timestamptz, mapping those out of Python's range to its ends."""
    oid = connection.adapters.types["timestamptz"].oid
    default = connection.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
    if default is not None:
        connection.adapters.register_loader(oid, saturating_loader(default))
