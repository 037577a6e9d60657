"""Failures of the services behind us (PostgreSQL, Redis, the broker), told apart in one place.

The interfaces (the API, the dashboard, the CLI) each answer such a failure in their own words; this
is the only module that knows the drivers' exception types, so none of them catches one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Service = Literal["database", "Redis", "broker"]


@dataclass(frozen=True)
class ServiceFailure:
    service: Service
    #: The service is down, unreachable or too slow: the operation may succeed if tried again. Otherwise
    #: the service answered and refused it.
    unreachable: bool
    #: What happened, as a clause: "the database is unreachable or refused the connection".
    summary: str
    #: The driver's own words, on one line.
    reason: str
    #: The database refused a value the operation carried (out of range, not storable): the caller's
    #: input was at fault, not the service.
    bad_value: bool = False


def service_failure(error: BaseException) -> ServiceFailure | None:
    """What `error` says of a service, or None if it is not a service's failure."""
    # Imported here: the CLI's quick commands and the pure engine never pay for the drivers.
    import kombu.exceptions
    import psycopg
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(error, sqlalchemy.exc.DBAPIError):
        reason = one_line(error.orig if error.orig is not None else error)
        if isinstance(error, sqlalchemy.exc.DataError):
            first_line = str(error.orig).splitlines()[0] if error.orig is not None else "a value was refused"
            return ServiceFailure("database", False, "the database refused a value", first_line, bad_value=True)
        if isinstance(error, sqlalchemy.exc.OperationalError):
            return ServiceFailure("database", True, "the database is unreachable or refused the connection", reason)
        if isinstance(error, sqlalchemy.exc.InterfaceError):
            return ServiceFailure("database", True, "the database connection failed", reason)
        return ServiceFailure("database", False, "the database refused the operation", reason)
    if isinstance(error, psycopg.OperationalError):
        return ServiceFailure(
            "database", True, "the database is unreachable or refused the connection", one_line(error)
        )
    if isinstance(error, psycopg.Error):
        return ServiceFailure("database", False, "the database refused the operation", one_line(error))
    if isinstance(error, redis.exceptions.TimeoutError):
        return ServiceFailure("Redis", True, "Redis did not answer in time", one_line(error))
    if isinstance(error, redis.exceptions.ConnectionError):
        return ServiceFailure("Redis", True, "Redis is unreachable", one_line(error))
    if isinstance(error, redis.exceptions.RedisError):
        return ServiceFailure("Redis", False, "Redis refused the operation", one_line(error))
    if isinstance(error, kombu.exceptions.OperationalError):
        return ServiceFailure("broker", True, "the broker is unreachable", one_line(error))
    return None


def one_line(cause: object) -> str:
    """An error's text on one line, ending as a sentence does."""
    text = " ".join(str(cause).split())
    return text if text.endswith((".", "?", "!")) else text + "."
