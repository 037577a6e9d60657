"""The times a caller may hand the engine: a start time, a filter's bounds.

Python, PostgreSQL and SQLite each hold a different range of timestamps, and a time Python accepts
with a far offset (9999-12-31T23:59:59-14:00) is year 10000 in UTC, which PostgreSQL stores and
Python cannot read back. Every entry point (the client, the HTTP API, the CLI) bounds its times to
one range that all of them hold, with room for any real schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
RANGE = "between 1970-01-01 and 9999-01-01 UTC"


def bounded(moment: datetime, what: str) -> datetime:
    """`moment` in UTC, or ValueError naming `what` if it is naive or outside the range every store holds."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (e.g. datetime.now(timezone.utc) + ...), not a naive one")
    # Compared before converting: the conversion itself overflows for the values refused here.
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{what} {moment.isoformat()} is out of range: give a time {RANGE}")
    return moment.astimezone(UTC)


def bounded_or_none(moment: datetime | None, what: str) -> datetime | None:
    return None if moment is None else bounded(moment, what)


def clamped(moment: datetime | None, what: str) -> datetime | None:
    """A filter's bound in UTC, moved into the range (no instance lies outside it, so the answer is
    the same); ValueError naming `what` if it is naive."""
    if moment is None:
        return None
    return bounded(min(max(moment, EARLIEST), LATEST) if moment.utcoffset() is not None else moment, what)
