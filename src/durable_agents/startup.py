"""A worker's start-up: wait, with backoff, for PostgreSQL and the broker to answer, one line per attempt."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

from .config import Settings
from .connections import redis_client
from .errors import ConfigurationError, SchemaMismatchError
from .failures import service_failure
from .store.schema import check_schema

log = logging.getLogger("durable_agents.worker")
T = TypeVar("T")

FIRST_DELAY = 0.5
MAX_DELAY = 10.0


def wait_for_services(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once the database (at our schema) and the broker answer. While one is unreachable, say
    which and retry with backoff; a wrong schema or a wrong setting is final and raises at once."""
    delay, attempt = FIRST_DELAY, 1
    while True:
        waiting_for = _unreachable(settings)
        if waiting_for is None:
            return
        log.warning("waiting for %s (attempt %d); retrying in %.1fs", waiting_for, attempt, delay)
        sleep(delay)
        delay, attempt = min(delay * 2, MAX_DELAY), attempt + 1


def when_reachable(what: str, action: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """`action()`, tried again with backoff (one line per attempt) while a service it needs does not answer;
    any other error is raised at once."""
    delay, attempt = FIRST_DELAY, 1
    while True:
        try:
            return action()
        except Exception as error:
            failure = service_failure(error)
            if failure is None or not failure.unreachable:
                raise
            log.warning("%s: %s (attempt %d); retrying in %.1fs", what, failure.summary, attempt, delay)
        sleep(delay)
        delay, attempt = min(delay * 2, MAX_DELAY), attempt + 1


def _unreachable(settings: Settings) -> str | None:
    """What does not answer yet, in one clause, or None when both do."""
    try:
        check_schema(settings.database_url)
    except SchemaMismatchError:
        raise
    except ConfigurationError as error:
        return f"PostgreSQL: {error}"
    if settings.embedded:
        return None
    broker = settings.effective_broker_url
    if not broker.startswith(("redis://", "rediss://")):
        return None  # another broker (RabbitMQ): Celery's own connection retry covers it
    try:
        client = redis_client(settings, broker, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        failure = service_failure(error)
        if failure is None:
            raise
        return f"the broker at {_masked(broker)}: {failure.reason}"
    return None


def _masked(url: str) -> str:
    """`url` with its password hidden."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
