"""The sweeper loop: a worker-side thread (or a celery beat task) that keeps Postgres and the broker in step."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..steps.outcome import Dispatch
from ..store import sessions
from ..store.db import transaction
from ..store.sweeper import sweep
from .dispatch import publish
from .schedules import fire_schedules

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


class Reach:
    """Since when this process's sweeps have reached the database without a failure.

    A holder's silence means death only if the sweeper could have heard it: after a database outage
    every heartbeat is old, and the live holders need a timeout's length to speak again."""

    def __init__(self) -> None:
        self._since: float | None = None

    def may_judge(self, timeout: float) -> bool:
        if self._since is None:
            self._since = time.monotonic()
        return time.monotonic() - self._since >= timeout

    def lost(self) -> None:
        self._since = None


def sweep_once(app: DurableApp) -> int:
    """Fire due timers and schedules and re-dispatch lost work; returns how many messages it sent."""
    settings = app.settings
    judge = app.sweep_reach.may_judge(settings.lease_holder_timeout)
    try:
        with transaction(settings.database_url) as session:
            swept = sweep(session, settings.taskhub, settings.redispatch_after, free_dead_holders=judge)
            if app.agents:
                sessions.expire(session, settings.taskhub)
    except Exception:
        app.sweep_reach.lost()
        raise
    publish(app, Dispatch(activities=swept.activities, steps=swept.steps))
    # In a transaction of its own, on every worker: schedules are claimed row by row, not under the sweep's lock.
    fired = fire_schedules(app)
    return len(swept.activities) + len(swept.steps) + fired


class SweeperThread(threading.Thread):
    def __init__(self, app: DurableApp) -> None:
        super().__init__(name="durable-agents-sweeper", daemon=True)
        self._app = app
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._app.settings.sweep_interval):
            try:
                sweep_once(self._app)
            except Exception:
                log.exception("sweep failed; retrying in %ss", self._app.settings.sweep_interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
