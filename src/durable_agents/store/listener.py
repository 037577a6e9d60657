"""One LISTEN connection per database and process, shared by every client thread that waits on an instance.

A wait used to open a connection of its own: a new PostgreSQL backend per wait, whose start costs
both sides more CPU than the wait's reads. Here one daemon thread listens and wakes the waiters of
each instance a notification names. Notifications only shorten waits: a waiter reads the state again
at least every few seconds, and every waiter is woken whenever the connection is (re)made, so one
that is lost while it is down costs a read, not a result.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, Protocol

import psycopg

from . import dialect
from .db import get_engine
from .inbox import NOTIFY_CHANNEL, STATUS_SEPARATOR, notify_payload

log = logging.getLogger(__name__)

#: How long a waiter sleeps at most between reads while the listener is up, and while it is not.
LISTENING_POLL = 5.0
DEGRADED_POLL = 0.2
RECONNECT_DELAY = 1.0


class Waker(Protocol):
    """What the listener wakes when a waiter's instance may have changed: with the status the change left
    it in when the notification told it, else None (read to know)."""

    def wake(self, status: str | None) -> None: ...


class ThreadWaker(threading.Event):
    """Wakes a waiting thread (which reads the state whatever the status)."""

    def wake(self, status: str | None) -> None:
        self.set()


class LoopWaker:
    """Sets an asyncio.Event of a running loop from the listener's thread: one wait of a coroutine, which
    learns the newest status it was told of since it last woke (None if any wake-up did not tell)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.status: str | None = None
        self._untold = False

    def wake(self, status: str | None) -> None:
        with suppress(RuntimeError):  # the loop has closed: its waiter is gone
            self._loop.call_soon_threadsafe(self._woken, status)

    def _woken(self, status: str | None) -> None:
        # Notifications arrive in commit order, so the last status told is the newest; one that told
        # nothing (a reconnect, a change without a status) leaves only a read to know.
        self._untold = self._untold or status is None
        self.status = None if self._untold else status
        self.event.set()

    def take(self) -> str | None:
        """The status to go by after a wake-up (None: read), and clear it for the next."""
        status = self.status
        self.event.clear()
        self.status, self._untold = None, False
        return status


class Listener:
    """Wakes the threads and coroutines that wait for notifications with a given payload."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waker]] = {}
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def poll_interval(self) -> float:
        """How long a waiter may sleep between reads: long while notifications arrive, short while not."""
        return LISTENING_POLL if self._listening.is_set() else DEGRADED_POLL

    def add(self, payload: str, waker: Waker) -> None:
        """Set `waker` whenever a notification with `payload` may have arrived. A change committed after
        this call is noticed: if it came before the listener listened, the listener wakes every waiter
        once it does, and until then waiters poll."""
        with self._lock:
            self._waiters.setdefault(payload, set()).add(waker)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="durable-agents-listener", daemon=True)
                self._thread.start()

    def remove(self, payload: str, waker: Waker) -> None:
        with self._lock:
            wakers = self._waiters.get(payload, set())
            wakers.discard(waker)
            if not wakers:
                self._waiters.pop(payload, None)

    @contextmanager
    def waiting_for(self, payload: str) -> Iterator[Callable[[float], None]]:
        """A function that returns when a notification with `payload` may have arrived (or after at most
        its argument, in seconds)."""
        woken = ThreadWaker()
        self.add(payload, woken)

        def wait(remaining: float) -> None:
            woken.wait(min(remaining, self.poll_interval))
            woken.clear()

        try:
            yield wait
        finally:
            self.remove(payload, woken)

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
        status: str | None = None
        with self._lock:
            if payload is None:
                wakers = [waker for waiting in self._waiters.values() for waker in waiting]
            else:
                key, _, status = payload.partition(STATUS_SEPARATOR)
                wakers = list(self._waiters.get(key, ()))
        for waker in wakers:
            waker.wake(status or None)


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


@asynccontextmanager
async def async_instance_changes(
    database_url: str, taskhub: str, instance_id: str
) -> AsyncIterator[Callable[[float], Awaitable[str | None]]]:
    """`instance_changes` for coroutines: the wait holds no thread (the process's one listener thread
    wakes every waiting coroutine of every loop). It returns the status the instance changed to when the
    notification told it, else None (after a timeout too): then only a read can tell."""
    if not dialect.for_url(database_url).notifies:
        delays = iter((0.01, 0.02, 0.05, 0.1))

        async def poll(remaining: float) -> str | None:
            await asyncio.sleep(min(remaining, next(delays, 0.2)))
            return None

        yield poll
        return
    shared = listener(database_url)
    payload = notify_payload(taskhub, instance_id)
    waker = LoopWaker()
    shared.add(payload, waker)

    async def wait(remaining: float) -> str | None:
        with suppress(TimeoutError):
            await asyncio.wait_for(waker.event.wait(), min(remaining, shared.poll_interval))
        return waker.take()

    try:
        yield wait
    finally:
        shared.remove(payload, waker)
