"""Turning any error a command meets into the one line a user reads (the traceback only on request)."""

from __future__ import annotations

import os

from pydantic import ValidationError

from ..errors import DurableAgentsError

#: Set to 1 to see the full traceback of an error instead of its one line.
DEBUG_ENV = "DURABLE_AGENTS_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def describe(error: BaseException) -> str:
    """What went wrong and what to do, for every error a command can meet.

    Libraries wrap the cause (Celery raises a RuntimeError from a refused Redis connection), so the
    chain of causes is searched for an error we know before giving up."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        known = _known(cause)
        if known is not None:
            return known
        cause = cause.__cause__ or cause.__context__
    return (
        f"unexpected {type(error).__name__}: {_sentence(error)} "
        f"Run again with {DEBUG_ENV}=1 to see the traceback, and please report it."
    )


def _known(error: BaseException) -> str | None:
    import kombu.exceptions
    import psycopg
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(error, DurableAgentsError):
        return str(error)
    if isinstance(error, ValidationError):
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        return f"invalid setting: {'; '.join(problems)}"
    if isinstance(error, sqlalchemy.exc.OperationalError | psycopg.OperationalError):
        cause = error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error
        return f"cannot use the database: {_sentence(cause)} Check DATABASE_URL and that the database is running."
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return (
            f"the database refused the operation: {_sentence(error.orig)} "
            "Check that its schema is current with `durable-agents db check`."
        )
    if isinstance(error, psycopg.Error):
        return f"the database refused the operation: {_sentence(error)}"
    if isinstance(error, redis.exceptions.RedisError):
        return f"cannot use Redis: {_sentence(error)} Check REDIS_URL and that Redis is running."
    if isinstance(error, kombu.exceptions.OperationalError):
        return (
            f"cannot reach the broker: {_sentence(error)} Check BROKER_URL (or REDIS_URL) and that it is running; "
            "anything already written to the database is kept and will be dispatched by a worker's sweeper."
        )
    if isinstance(error, ValueError | OSError | TimeoutError):
        return str(error) or type(error).__name__
    return None


def _sentence(cause: object) -> str:
    text = " ".join(str(cause).split())
    return text if text.endswith((".", "?", "!")) else text + "."
