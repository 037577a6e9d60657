"""One LISTEN connection per database and process, shared by every client thread that waits on an instance.

A wait used to open a connection of its own: a new PostgreSQL backend per wait, whose start costs
both sides more CPU than the wait's reads. Here one daemon thread listens and wakes the waiters of
each instance a notification names. Notifications only shorten waits: a waiter reads the state again
at least every few seconds, and every waiter is woken whenever the connection is (re)made, so one
that is lost while it is down costs a read, not a result.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from . import dialect
from .db import get_engine
from .inbox import NOTIFY_CHANNEL, notify_payload

log = logging.getLogger(__name__)

#: How long a waiter sleeps at most between reads while the listener is up, and while it is not.
LISTENING_POLL = 5.0
DEGRADED_POLL = 0.2
RECONNECT_DELAY = 1.0


class Listener:
    """Wakes the threads that wait for notifications with a given payload."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def waiting_for(self, payload: str) -> Iterator[Callable[[float], None]]:
        """A function that returns when a notification with `payload` may have arrived (or after at most
        its argument, in seconds). A change committed after this call is noticed: if it came before
        the listener listened, the listener wakes every waiter once it does, and until then waiters poll."""
        woken = threading.Event()
        with self._lock:
            self._waiters.setdefault(payload, set()).add(woken)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="durable-agents-listener", daemon=True)
                self._thread.start()

        def wait(remaining: float) -> None:
            poll = LISTENING_POLL if self._listening.is_set() else DEGRADED_POLL
            woken.wait(min(remaining, poll))
            woken.clear()

        try:
            yield wait
        finally:
            with self._lock:
                events = self._waiters.get(payload, set())
                events.discard(woken)
                if not events:
                    self._waiters.pop(payload, None)

    def _listen(self) -> None:
        while True:
            try:
                with self._connect() as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening.set()
                    self._wake(None)  # whatever was committed while no one listened
                    for notice in connection.notifies():
                        self._wake(notice.payload)
            except Exception:
                log.warning(
                    "the notification listener lost its connection; waiters poll until it is back", exc_info=True
                )
            self._listening.clear()
            self._wake(None)
            time.sleep(RECONNECT_DELAY)  # a database that is down is not asked again at once

    def _connect(self) -> psycopg.Connection[Any]:
        # Connected as the engine connects (its URL's query, such as TLS options, included).
        engine = get_engine(self._url)
        args, options = engine.dialect.create_connect_args(engine.url)
        return psycopg.connect(*args, **{**options, "autocommit": True, "application_name": application_name()})

    def _wake(self, payload: str | None) -> None:
        with self._lock:
            if payload is None:
                events = [event for waiting in self._waiters.values() for event in waiting]
            else:
                events = list(self._waiters.get(payload, ()))
        for event in events:
            event.set()


def application_name() -> str:
    """How the listening connection of this process shows in `pg_stat_activity`."""
    return f"durable-agents listener {os.getpid()}"


_listeners: dict[tuple[str, int], Listener] = {}
_listeners_lock = threading.Lock()


def listener(database_url: str) -> Listener:
    """The listener of this process for the PostgreSQL database at `database_url` (a forked child makes
    its own)."""
    key = (database_url, os.getpid())
    with _listeners_lock:
        found = _listeners.get(key)
        if found is None:
            found = _listeners[key] = Listener(database_url)
        return found


@contextmanager
def instance_changes(database_url: str, taskhub: str, instance_id: str) -> Iterator[Callable[[float], None]]:
    """A function that returns when the instance may have changed (or after at most its argument).

    Listening starts before the caller's first read, so a change committed in between is noticed.
    """
    if not dialect.for_url(database_url).notifies:
        # No notifications (SQLite): poll, quickly at first so short waits stay short.
        delays = iter((0.01, 0.02, 0.05, 0.1))

        def poll(remaining: float) -> None:
            time.sleep(min(remaining, next(delays, 0.2)))

        yield poll
        return
    with listener(database_url).waiting_for(notify_payload(taskhub, instance_id)) as wait:
        yield wait
