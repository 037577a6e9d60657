"""Turning any error a command meets into the one line a user reads (the traceback only on request)."""

from __future__ import annotations

import os

from pydantic import ValidationError

from ..errors import DurableAgentsError
from ..failures import one_line, service_failure

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
        f"unexpected {type(error).__name__}: {one_line(error)} "
        f"Run again with {DEBUG_ENV}=1 to see the traceback, and please report it."
    )


def _known(error: BaseException) -> str | None:
    if isinstance(error, DurableAgentsError):
        return str(error)
    if isinstance(error, ValidationError):
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        return f"invalid setting: {'; '.join(problems)}"
    failure = service_failure(error)
    if failure is not None:
        return f"{_ADVICE[failure.service, failure.unreachable].format(reason=failure.reason)}"
    if isinstance(error, ValueError | OSError | TimeoutError):
        return str(error) or type(error).__name__
    return None


#: What a user reads when a service failed, by (service, unreachable).
_ADVICE = {
    ("database", True): "cannot use the database: {reason} Check DATABASE_URL and that the database is running.",
    ("database", False): "the database refused the operation: {reason} "
    "Check that its schema is current with `durable-agents db check`.",
    ("Redis", True): "cannot use Redis: {reason} Check REDIS_URL and that Redis is running.",
    ("Redis", False): "cannot use Redis: {reason} Check REDIS_URL and that Redis is running.",
    ("broker", True): "cannot reach the broker: {reason} Check BROKER_URL (or REDIS_URL) and that it is running; "
    "anything already written to the database is kept and will be dispatched by a worker's sweeper.",
}
