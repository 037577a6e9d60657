"""The sweeper loop: a worker-side thread (or a celery beat task) that keeps Postgres and the broker in step."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..steps.outcome import Dispatch
from ..store import sessions
from ..store.db import transaction
from ..store.sweeper import sweep
from .dispatch import publish

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


def sweep_once(app: DurableApp) -> int:
    """Fire due timers and re-dispatch lost work; returns how many messages it sent."""
    with transaction(app.settings.database_url) as session:
        swept = sweep(session, app.settings.taskhub, app.settings.redispatch_after)
        if app.agents:
            sessions.expire(session, app.settings.taskhub)
    publish(app, Dispatch(activities=swept.activities, steps=swept.steps))
    return len(swept.activities) + len(swept.steps)


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
